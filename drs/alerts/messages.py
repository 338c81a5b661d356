"""What the alerts say: one JSON payload per event, ``{"event", "text", "version", "time", "details"}``.

``text`` is one sentence with the numbers, so a Slack or Mattermost incoming-webhook URL works as
is; ``details`` holds the tick's scores, the drift tests that fired and the error, as its history
record has them. Pure functions of the tick's record.
"""

from __future__ import annotations

import datetime

from drs.drift_registry import DRIFT, figures
from drs.headline import drift_headline
from drs.history import Decision

DETAIL_KEYS = (
    "decision",
    "exit_status",
    "failed_stage",
    "error",
    "scores",
    "promotion",
    "deployed_version",
    "deployed_version_before",
    "new_files",
    "new_rows",
    "rejected_files",
    "start",
    "seconds",
)


def parse_time(text) -> datetime.datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def outcome_alerts(record: dict, now: str) -> list[dict]:
    """The drift, deployed and not_promoted alerts of a finished tick's record (every event, unfiltered);
    `now`: the alerts' time (ISO 8601)."""
    payloads = []
    drift = record.get("drift")
    if isinstance(drift, dict) and drift.get("drift"):
        payloads.append(payload("drift", record, drift_text(record), now))
    version, before = record.get("deployed_version"), record.get("deployed_version_before")
    if version and version != before and "not_deployed" not in record:
        payloads.append(payload("deployed", record, deployed_text(record), now))
    promotion = record.get("promotion")
    if isinstance(promotion, dict) and promotion.get("promoted") is False:
        payloads.append(payload("not_promoted", record, not_promoted_text(record), now))
    return payloads


def payload(event: str, record: dict, text: str, now: str, **extra) -> dict:
    """An alert about `record`: its details are the record's non-empty DETAIL_KEYS, the drift tests
    that fired, and `extra`."""
    details = {key: record[key] for key in DETAIL_KEYS if record.get(key) not in (None, [], {})}
    drift = record.get("drift")
    if isinstance(drift, dict) and drift.get("tests"):
        fired = drift.get("trigger", {}).get("fired", [])
        details["drift"] = {
            "drift": drift.get("drift"),
            "trigger": drift.get("trigger"),
            "fired": {name: drift["tests"].get(name) for name in fired},
        }
    return {
        "event": event,
        "text": text,
        "version": record.get("deployed_version"),
        "time": now,
        "details": {**details, **extra},
    }


def _number(value, pattern: str = "{:.4f}") -> str:
    return pattern.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def drift_text(record: dict) -> str:
    """ "Drift in lastmonth_activity (ks p-value 3.2e-05). Drift on 800 new row(s): F1 0.574 vs deployed
    0.675 (raw); ks, psi also found drift. Retraining."

    First the report's headline (``drs.headline``: the features that moved, and a retrained model
    scoring below the one it replaced), then each test that fired in its registered words; drift in
    new rows without labels says the tick is not retraining.
    """
    drift = record["drift"]
    promotion = record.get("promotion")
    headline = drift_headline(
        drift,
        record.get("scores"),
        record.get("deployed_version_before"),
        promotion.get("promoted") if isinstance(promotion, dict) else None,
    )
    return f"{headline} {_trigger_text(record)}" if headline else _trigger_text(record)


def _trigger_text(record: dict) -> str:
    drift = record["drift"]
    tests = drift.get("tests", {})
    fired = drift.get("trigger", {}).get("fired", [])
    words = "; ".join(figures(name, tests.get(name) or {}) for name in fired) or "the trigger fired"
    others = [
        name
        for name, test in tests.items()
        if name not in fired and isinstance(test, dict) and test.get("verdict") == DRIFT
    ]
    if others:
        words += f"; {', '.join(others)} also found drift"
    rows = record.get("new_rows")
    where = f"{rows} new row(s)" if isinstance(rows, int) else "the new data"
    if record.get("decision_code") == Decision.DRIFT_AWAITING_LABELS.value:
        # Retraining would fit the same labelled rows again: the tick waits for files that bring the labels.
        return f"Drift on {where}: {words}. None of the new rows has a label: not retraining until labels arrive."
    return f"Drift on {where}: {words}. Retraining."


def deployed_text(record: dict) -> str:
    """ "Deployed v0003: test F1 0.6195 (was v0002, 0.5714)." """
    scores = record.get("scores") or {}
    version, before = record["deployed_version"], record.get("deployed_version_before")
    f1 = _number(scores.get("retrained_test_f1"))
    if not before:
        return f"Deployed {version} (bootstrap): test F1 {f1}."
    return f"Deployed {version}: test F1 {f1} (was {before}, {_number(scores.get('deployed_f1'))})."


def not_promoted_text(record: dict) -> str:
    """ "Not promoted: retrained F1 0.378 is below deployed 0.675 minus margin 0.1; keeping v0002." """
    promotion = record["promotion"]
    retrained, deployed = promotion.get("retrained_test_f1"), promotion.get("deployed_test_f1")
    return (
        f"Not promoted: retrained F1 {_number(retrained, '{:.3f}')} is below deployed "
        f"{_number(deployed, '{:.3f}')} minus margin {_number(promotion.get('margin'), '{:g}')}; "
        f"keeping {record.get('deployed_version') or 'the deployed version'}."
    )


def failure_text(record: dict, entry: dict) -> str:
    """ "Tick failed in stage ingest: <reason>." plus, for a failure seen before, how often it repeated.

    entry: the failure's cooldown entry {"first", "last_sent", "repeats", "last_seen"}.
    """
    stage = record.get("failed_stage")
    reason = str(record.get("error") or record.get("decision") or "unknown error").removeprefix("error: ").rstrip(".")
    text = f"Tick failed{f' in stage {stage}' if stage else ''}: {reason}"
    repeats, since = repeats_since(entry)
    if repeats:
        moment = parse_time(since)
        when = f" at {moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC" if moment else ""
        text += f" (repeated {repeats} time(s) since the {'alert' if entry.get('last_sent') else 'first'}{when})"
    return text + "."


def repeats_since(entry: dict) -> tuple[int, str | None]:
    """How many times a failure repeated (this tick included) since its last delivered alert,
    or since it first failed if no alert about it was delivered; and since when."""
    if entry.get("last_sent"):
        return entry["repeats"] + 1, entry["last_sent"]
    return entry["repeats"], entry.get("first")


def recovered_text(record: dict, failed_ticks: int) -> str:
    """ "Recovered: the tick succeeded (no new data) after 3 failed tick(s)." """
    return f"Recovered: the tick succeeded ({record.get('decision')}) after {failed_ticks} failed tick(s)."
