"""The run history and the deployment log as people read them: the status page (``GET /``) and the PDF report.

Pure functions from history records (`TickRecord`s of ``<log_folder>/history.jsonl``, oldest first) and
deployment records (``deployments.jsonl``) to display strings and rows. ``history_view`` and
``read_history`` are the readers here (of the history's end and its summary only). Standard library
only, so an API worker that shows the status page loads no plotting or PDF library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drs import drift_registry
from drs.config import Config
from drs.files import HISTORY_FILE
from drs.headline import drift_headline
from drs.history import Decision, HistoryLog, QuietRun, TickRecord

NO_DATA = "no data yet"
RECENT_TICKS = 10


def read_history(config: Config, last: int | None = RECENT_TICKS) -> list[TickRecord]:
    """The last `last` ticks recorded in ``<log_folder>/history.jsonl`` (None: all), oldest first ([] when
    none). Only the end of the file is read."""
    return HistoryLog(config.log_folder / HISTORY_FILE).read(last=last)


@dataclass(frozen=True)
class HistoryView:
    """What the status page and the report show of the history, read from its end and its summary."""

    recent: list[TickRecord] = field(default_factory=list)  # the last RECENT_TICKS, oldest first
    records: int = 0  # how many there are in all, rotated parts included
    drift_tick: TickRecord | None = None  # the newest tick that ran the drift tests
    # The last RECENT_TICKS rows of the tables, oldest first: runs of quiet ticks as one row each, so a
    # 10-minute cron does not push the last deployment and the last drift verdict off the table.
    rows: list[TickRecord | QuietRun] = field(default_factory=list)

    def with_current(self, tick: TickRecord | None) -> HistoryView:
        """The view with a tick still running (not yet in the file) as its newest record."""
        if tick is None:
            return self
        drift_tick = tick if tick.drift is not None else self.drift_tick
        return HistoryView(
            [*self.recent, tick][-RECENT_TICKS:], self.records + 1, drift_tick, [*self.rows, tick][-RECENT_TICKS:]
        )


def history_paths(config: Config) -> list:
    """The files a HistoryView is read from (for a cache keyed by files)."""
    history = HistoryLog(config.log_folder / HISTORY_FILE)
    return [history.path, history.summary_path]


def history_view(config: Config) -> HistoryView:
    """The history as the status page and the report show it; its cost does not grow with the history."""
    history = HistoryLog(config.log_folder / HISTORY_FILE)
    figures = history.figures()
    recent = history.read(last=RECENT_TICKS)
    rows = history.read_rows(RECENT_TICKS)
    return HistoryView(recent, max(figures.records, len(recent)), figures.drift_tick, rows)


def last_drift_tick(records: list[TickRecord]) -> TickRecord | None:
    """The newest tick that ran the drift tests, or None."""
    return next((record for record in reversed(records) if record.drift is not None), None)


def headline_words(record: TickRecord | None) -> str | None:
    """The report's first sentences: what the drift tests of a tick found to move and whether its retrained
    model scores below the one it replaced (``drs.headline.drift_headline``); None without a drift tick."""
    if record is None:
        return None
    promoted = record.promotion.get("promoted") if isinstance(record.promotion, dict) else None
    return drift_headline(record.drift, record.scores, record.deployed_version_before, promoted)


def fit_warnings_words(fit_warnings) -> str | None:
    """ "Fit warnings: ConvergenceWarning: lbfgs failed to converge ..." from a manifest's fit_warnings
    (one line each), or None when its fit raised none (or a version deployed before they were recorded)."""
    if not isinstance(fit_warnings, list):
        return None
    lines = [str(line).rstrip(".") for line in fit_warnings if line]
    return f"Fit warnings: {'; '.join(lines)}." if lines else None


def drift_verdict_words(record: TickRecord | None) -> str:
    """One or two sentences saying what the drift tests of a tick found and what was done."""
    if record is None:
        return f"Drift tests: {NO_DATA} (no tick has compared new data with the deployed model)."
    drift = record.drift or {}
    tests = drift.get("tests", {})
    trigger = drift.get("trigger", {})
    chosen = trigger.get("tests", [])
    fired = trigger.get("fired", [])
    version = record.deployed_version_before or "the deployed model"
    words = []
    scores_words = _drift_scores_words(record, version)
    if scores_words:
        words.append(scores_words)
    if drift.get("drift") and record.decision is Decision.DRIFT_AWAITING_LABELS:
        words.append(
            f"Drift: the trigger test(s) {', '.join(fired) or '?'} found drift, but none of the new rows has a label: "
            f"{version} was kept until labels arrive."
        )
    elif drift.get("drift"):
        # A report written during the tick itself comes before the tick's decision is recorded.
        decision = f" (decision: {record.decision_words})" if record.decision else ""
        words.append(
            f"Drift: the trigger test(s) {', '.join(fired) or '?'} found drift, so the model was retrained{decision}."
        )
    else:
        words.append(f"No drift: the trigger test(s) {', '.join(chosen) or '?'} found none, so {version} was kept.")
    others = [name for name, test in tests.items() if name not in chosen and test.get("verdict") == "drift"]
    if others:
        words.append(f"Not used as triggers but also reporting drift: {', '.join(others)}.")
    return " ".join(words)


def _drift_scores_words(record: TickRecord, version: str) -> str | None:
    """The sentence comparing the deployed model's F1 on the new data with its test F1, or None."""
    scores = record.scores
    if not (
        isinstance(scores.get("new_data_f1"), (int, float)) and isinstance(scores.get("deployed_f1"), (int, float))
    ):
        return None
    # Rounded as the drift tests round, so the sentence and the test table agree.
    rows = f"the {record.new_rows} new rows" if record.new_rows is not None else "the new data"
    return (
        f"Model {version} scored F1 {number(round(scores['new_data_f1'], 6))} on {rows} "
        f"against {number(round(scores['deployed_f1'], 6))} on its test data."
    )


def drift_test_rows(record: TickRecord | None) -> list[dict]:
    """One row per drift test of a tick: test, verdict, statistic, threshold, trigger, detail (display
    strings) and "features": the test's per-feature rows (see ``drift_feature_rows``), [] for the F1 tests."""
    if record is None or record.drift is None:
        return []
    return drift_registry.report_rows(record.drift, number)


def drift_feature_rows(test: dict) -> list[dict]:
    """One row per feature a drift test compared, whatever the schema's features were: feature,
    verdict, statistic, p-value ("-" for PSI, which has none), samples ("training / new")."""
    return drift_registry.feature_rows(test, number)


def score_fall_warning(deployments: list[dict], margin: float | None) -> str | None:
    """A sentence when the serving version's test F1 is lower, by more than `margin` (0 when unset),
    than that of the version which served before it; None otherwise.

    `deployments` is the deployment log, oldest first: its last record is the serving version.
    """
    if not deployments:
        return None
    current = deployments[-1]
    earlier = [r for r in deployments[:-1] if r.get("version") == current.get("previous")]
    if not earlier or not all(isinstance(r.get("f1"), (int, float)) for r in (current, earlier[-1])):
        return None
    fall = earlier[-1]["f1"] - current["f1"]
    if fall <= (margin or 0.0):
        return None
    guard = f"the promotion margin {margin:g}" if margin is not None else "zero (no promotion_margin is set)"
    return (
        f"The deployed model's test F1 fell from {earlier[-1]['f1']:.4f} ({current['previous']}) to "
        f"{current['f1']:.4f} ({current.get('version')}), by {fall:.4f}: more than {guard}. "
        f"`deployment.py --rollback` restores {current['previous']}."
    )


def tick_rows(records: list[TickRecord | QuietRun], last: int = RECENT_TICKS) -> list[dict]:
    """The last ticks, newest first, as display strings: start, decision, version, new files, seconds, stages
    (a run of quiet ticks: one row, started when its newest tick started)."""
    rows = []
    for record in reversed(records[-last:]):
        if isinstance(record, QuietRun):
            rows.append(_quiet_row(record))
            continue
        decision = record.decision_words or "in progress"
        if not record.finished and record.decision:
            decision += " (in progress)"
        if record.error:
            decision += f" [{record.failed_stage or '?'}: {record.error}]"
        rows.append(
            {
                "start": display_time(record.start),
                "decision": decision,
                "version": record.deployed_version or "-",
                "new_files": len(record.new_files),
                "seconds": seconds(record.seconds),
                "exit_status": record.exit_status,
                "stages": {name: float(value) for name, value in record.stages.items()},
            }
        )
    return rows


def _quiet_row(run: QuietRun) -> dict:
    return {
        "start": display_time(run.last.start),
        "decision": run.words,
        "version": run.last.deployed_version or "-",
        "new_files": 0,
        "seconds": "-",
        "exit_status": 0,
        "stages": {},
    }


def rejected_file_rows(
    records: list[TickRecord], version: str | None, rejected_at_ingestion: dict, last: int = RECENT_TICKS
) -> list[tuple[str, str, list[str]]]:
    """(file, reason, seen by) for every file rejected by the ingestion of the deployed `version`
    (`rejected_at_ingestion`: file name to reason) or by one of the last ticks, newest tick first.

    The same file rejected for the same reason by several ticks is one row naming them all.
    """
    rejected: dict[tuple[str, str], list[str]] = {}
    for name, reason in sorted(rejected_at_ingestion.items()):
        rejected.setdefault((name, reason), []).append(f"{version} ingestion")
    for record in reversed(records[-last:]):
        for name, reason in sorted(record.rejected_files.items()):
            rejected.setdefault((name, reason), []).append(f"tick {display_time(record.start)}")
    return [(name, reason, seen) for (name, reason), seen in rejected.items()]


def display_time(timestamp) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM:SS" (the history writes UTC)."""
    return str(timestamp or "?")[:19].replace("T", " ")


def number(value) -> str:
    """A statistic for a table column: 4 decimals, an exponent for tiny or huge values, "-" for None."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        # Fixed decimals line up in a column; tiny p-values need an exponent.
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def seconds(value) -> str:
    """A duration in seconds with 2 decimals, "-" when it is not a number."""
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"
