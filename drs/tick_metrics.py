"""The last tick's figures as a node_exporter textfile (config "metrics_textfile", a *.prom path).

Written at the end of every tick, failed and skipped ones included: the
file always describes the last tick (drift figures only when that tick ran
the drift tests). prometheus_client's own exposition renders it; storage's
atomic write puts it in place (a temp file in the same folder, fsynced, then
one rename; the temp name does not end in .prom), so the collector never
reads half a file.

Every tick: drs_tick_last_timestamp_seconds, drs_tick_duration_seconds,
drs_tick_exit_status, drs_tick_new_files, drs_tick_decision_info{decision},
drs_tick_alerts_undelivered, drs_tick_alerts{outcome} (a tick that alerted);
drs_tick_deployed_info{version} and drs_tick_deployed_f1 (the version serving
after the tick). A tick that ran the drift tests adds
drs_drift_triggered, drs_drift_detected{test}, drs_drift_test_statistic{test},
drs_drift_test_pvalue{test}, drs_drift_feature_statistic{test,feature} and
drs_drift_feature_pvalue{test,feature}.

Importing prometheus_client costs about 70 ms: fullprocess imports this
module only when a textfile is configured.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from drs.history import AlertOutcome, TickRecord, alert_outcome
from drs.storage import write_bytes_atomic


def write_tick_metrics(path: Path, record: TickRecord, deployed: dict | None = None) -> None:
    """Write the metrics of a finished tick's record to `path`, atomically.

    deployed: {"version", "f1"} of the version serving after the tick, or None when unknown.
    """
    write_bytes_atomic(Path(path), generate_latest(tick_registry(record, deployed)))


def tick_registry(record: TickRecord, deployed: dict | None = None) -> CollectorRegistry:
    """A registry holding the gauges (named in the module's docstring) of one tick's history record."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value=None, labels: tuple[str, ...] = ()) -> Gauge:
        metric = Gauge(name, documentation, labels, registry=registry)
        if not labels and _is_number(value):
            metric.set(value)
        return metric

    end = _timestamp(record.end)
    gauge("drs_tick_last_timestamp_seconds", "Unix time the last tick of the pipeline ended.", end)
    gauge("drs_tick_duration_seconds", "How long the last tick ran.", record.seconds)
    gauge(
        "drs_tick_exit_status",
        "Exit status of the last tick: 0 done, 1 failed, 2 config error, 130 interrupted.",
        record.exit_status,
    )
    gauge("drs_tick_new_files", "Input files the last tick found new.", len(record.new_files))
    decision = gauge(
        "drs_tick_decision_info", "The last tick's decision, as its history record words it.", labels=("decision",)
    )
    # The decision's words without the version ("failed", not "failed after deploying v0003"): the version is in
    # drs_tick_deployed_info, and the label keeps a bounded set of values.
    decision.labels(record.decision.words if record.decision else "none").set(1)
    sent = [alert for alert in record.alerts or [] if isinstance(alert, dict)]
    gauge(
        "drs_tick_alerts_undelivered",
        "Alerts of the last tick that the webhook did not accept (held back ones included).",
        sum(1 for alert in sent if alert.get("delivered") is False),
    )
    if sent:
        outcomes = gauge(
            "drs_tick_alerts",
            "Alerts of the last tick by outcome: delivered, unconfirmed (sent, answer not seen), not_delivered, "
            "held_back (the receiver keeps failing), cooldown.",
            labels=("outcome",),
        )
        found = [alert_outcome(alert) for alert in sent]
        for outcome in AlertOutcome:  # zeros included: a rule can compare outcomes without absent()
            outcomes.labels(outcome.value).set(found.count(outcome))

    if record.lock_holder is not None and _is_number(record.lock_holder.get("age_seconds")):
        gauge(
            "drs_tick_lock_held_seconds",
            "How long another tick had held the lock when the last tick found it taken.",
            record.lock_holder.get("age_seconds"),
        )
    if record.drift is not None and isinstance(record.drift.get("tests"), dict):
        _drift_gauges(gauge, record.drift)

    if deployed and deployed.get("version"):
        gauge("drs_tick_deployed_info", "The version production serves.", labels=("version",)).labels(
            deployed["version"]
        ).set(1)
        gauge("drs_tick_deployed_f1", "Test F1 of the version production serves.", deployed.get("f1"))
    return registry


def _drift_gauges(gauge, drift: dict) -> None:
    gauge(
        "drs_drift_triggered",
        "1 when the last tick's drift trigger fired (a retrain), 0 when it did not.",
        1 if drift.get("drift") else 0,
    )
    detected = gauge(
        "drs_drift_detected",
        "1 when a drift test found drift on the last tick's new rows, whether or not it triggers a retrain.",
        labels=("test",),
    )
    statistic = gauge(
        "drs_drift_test_statistic", "A drift test's statistic (F1, KS D, chi2, PSI) on the last tick.", labels=("test",)
    )
    pvalue = gauge("drs_drift_test_pvalue", "A drift test's smallest p-value on the last tick.", labels=("test",))
    feature_statistic = gauge(
        "drs_drift_feature_statistic",
        "A per-feature drift test's statistic on the last tick.",
        labels=("test", "feature"),
    )
    feature_pvalue = gauge(
        "drs_drift_feature_pvalue", "A per-feature drift test's p-value on the last tick.", labels=("test", "feature")
    )
    for name, test in drift["tests"].items():
        if not isinstance(test, dict):
            continue
        detected.labels(name).set(1 if test.get("verdict") == "drift" else 0)
        for metric, value in ((statistic, test.get("statistic")), (pvalue, test.get("pvalue"))):
            if _is_number(value):
                metric.labels(name).set(value)
        for feature, figures in (test.get("features") or {}).items():
            if not isinstance(figures, dict):
                continue
            for metric, key in ((feature_statistic, "statistic"), (feature_pvalue, "pvalue")):
                value = figures.get(key)
                if _is_number(value):
                    metric.labels(name, feature).set(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _timestamp(text) -> float | None:
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None
