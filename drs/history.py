"""The run history: one typed record per tick (and per rollback), its one writer and its readers.

``<log_folder_path>/history.jsonl`` holds one JSON object per line, oldest first. Every line is
written by `HistoryLog.append` (a tick's end, a rollback), whole or not at all as readers can tell;
readers get `TickRecord`s back and never parse the decision's words: the decision is a `Decision`.

Format versions (the ``format_version`` key of a line):
- 0, lines written before the key existed: the decision is known only by its words, read once here
  (`_decision_of_words`); everything else has the same keys as format 1.
- 1: adds ``decision_code`` (a `Decision` value) and ``format_version``.

Standard library only: the cheap no-new-data tick writes its line through this module.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path

from drs.storage import append_jsonl, read_jsonl

# typing.TYPE_CHECKING without importing typing: the no-new-data tick loads this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT_VERSION = 1


class Decision(enum.Enum):
    """What a tick (or a rollback) decided; the value is the code kept in the history."""

    BOOTSTRAP = "bootstrap"
    BOOTSTRAP_PRODUCTION_CHANGED = "bootstrap_production_changed"
    SCHEMA_REDEPLOYED = "schema_redeployed"
    SCHEMA_PRODUCTION_CHANGED = "schema_production_changed"
    NO_NEW_DATA = "no_new_data"
    NO_USABLE_NEW_DATA = "no_usable_new_data"
    NO_NEW_ROWS = "no_new_rows"
    NO_DRIFT = "no_drift"
    DRIFT_REDEPLOYED = "drift_redeployed"
    DRIFT_NOT_PROMOTED = "drift_not_promoted"
    DRIFT_PRODUCTION_CHANGED = "drift_production_changed"
    SKIPPED = "skipped"
    FAILED = "failed"
    FAILED_CONFIG = "failed_config"
    FAILED_PRODUCTION_DAMAGED = "failed_production_damaged"
    FAILED_RECORDS = "failed_records"
    INTERRUPTED = "interrupted"
    ROLLBACK = "rollback"

    @property
    def words(self) -> str:
        """How the history line, the log, the alerts and the status page word it."""
        return _WORDS[self]

    @property
    def failed(self) -> bool:
        return self in _FAILURES

    @property
    def deployed(self) -> bool:
        """Whether this decision put a new version into production."""
        return self in (Decision.BOOTSTRAP, Decision.SCHEMA_REDEPLOYED, Decision.DRIFT_REDEPLOYED)


_PRODUCTION_CHANGED = "not deployed: production changed during the tick"
_WORDS = {
    Decision.BOOTSTRAP: "bootstrap",
    Decision.BOOTSTRAP_PRODUCTION_CHANGED: f"bootstrap, {_PRODUCTION_CHANGED}",
    Decision.SCHEMA_REDEPLOYED: "schema changed, redeployed",
    Decision.SCHEMA_PRODUCTION_CHANGED: f"schema changed, {_PRODUCTION_CHANGED}",
    Decision.NO_NEW_DATA: "no new data",
    Decision.NO_USABLE_NEW_DATA: "no usable new data",
    Decision.NO_NEW_ROWS: "no new rows",
    Decision.NO_DRIFT: "no drift",
    Decision.DRIFT_REDEPLOYED: "drift, redeployed",
    Decision.DRIFT_NOT_PROMOTED: "drift, retrained, not promoted",
    Decision.DRIFT_PRODUCTION_CHANGED: f"drift, {_PRODUCTION_CHANGED}",
    Decision.SKIPPED: "skipped: another run in progress",
    Decision.FAILED: "failed",
    Decision.FAILED_CONFIG: "failed (config)",
    Decision.FAILED_PRODUCTION_DAMAGED: "failed (production damaged)",
    Decision.FAILED_RECORDS: "failed (records)",
    Decision.INTERRUPTED: "interrupted",
    Decision.ROLLBACK: "rollback",
}
_FAILURES = frozenset(
    {
        Decision.FAILED,
        Decision.FAILED_CONFIG,
        Decision.FAILED_PRODUCTION_DAMAGED,
        Decision.FAILED_RECORDS,
        Decision.INTERRUPTED,
    }
)


class AlertOutcome(enum.Enum):
    """What became of one alert of a tick (an entry of its record's ``alerts``); the value is the
    ``outcome`` the entry keeps."""

    DELIVERED = "delivered"  # the receiver answered 2xx
    UNCONFIRMED = "unconfirmed"  # the whole request went out, its answer did not come back in time: not sent again
    NOT_DELIVERED = "not_delivered"  # refused, unreachable, or an error answer
    HELD_BACK = "held_back"  # not tried: the receiver keeps failing and is tried once per growing interval
    COOLDOWN = "cooldown"  # not sent: the same was sent within cooldown_minutes

    @property
    def words(self) -> str:
        return _ALERT_WORDS[self]


_ALERT_WORDS = {
    AlertOutcome.DELIVERED: "delivered",
    AlertOutcome.UNCONFIRMED: "sent, answer not seen",
    AlertOutcome.NOT_DELIVERED: "not delivered",
    AlertOutcome.HELD_BACK: "held back",
    AlertOutcome.COOLDOWN: "cooldown",
}


def alert_outcome(entry: object) -> AlertOutcome | None:
    """The outcome of one entry of a record's ``alerts``, lines written before ``outcome`` existed included."""
    if not isinstance(entry, dict):
        return None
    try:
        return AlertOutcome(entry.get("outcome"))
    except ValueError:
        pass
    if entry.get("suppressed"):
        return AlertOutcome.COOLDOWN
    if isinstance(entry.get("delivered"), bool):
        return AlertOutcome.DELIVERED if entry["delivered"] else AlertOutcome.NOT_DELIVERED
    return None


_AFTER_DEPLOYING = " after deploying "
_ROLLBACK_FROM = "rollback from "
_DAMAGED = "damaged production"


def _decision_of_words(words: str) -> Decision | None:
    """Format 0 only: the decision of a line written before decisions had codes."""
    base = words.split(_AFTER_DEPLOYING)[0]
    if base.startswith(_ROLLBACK_FROM):
        return Decision.ROLLBACK
    return next((decision for decision, text in _WORDS.items() if text == base), None)


@dataclass
class TickRecord:
    """One line of the run history: what a tick (or a rollback) found, did and decided.

    ``deployed_version`` is the version serving after it; ``deployed_by_tick`` says this tick put it
    there (a tick that failed after its switch still deployed). Keys this version of the code does not
    know are kept in ``extra`` and written back unchanged.
    """

    start: str
    end: str | None = None
    seconds: float | None = None
    config: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    new_files: list[str] = field(default_factory=list)
    rejected_files: dict[str, str] = field(default_factory=dict)
    decision: Decision | None = None
    exit_status: int | None = None
    deployed_version: str | None = None
    deployed_version_before: str | None = None
    deployed_by_tick: bool = False
    rolled_back_from: str | None = None
    failed_stage: str | None = None
    error: str | None = None
    rows: dict[str, int] | None = None
    new_rows: int | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None
    warning: str | None = None
    not_deployed: str | None = None
    lock_holder: dict[str, Any] | None = None  # a skipped tick: {"pid", "age_seconds"} of the tick holding the lock
    reports_regenerated: str | None = None
    apicalls_error: str | None = None
    # One entry per alert: {"event", "outcome" (an AlertOutcome value), "delivered", "attempts", "error"?, ...}.
    alerts: list[dict[str, Any]] | None = None
    metrics_textfile_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decision_words(self) -> str:
        """The decision as people read it: "failed after deploying v0003", "rollback from v0002"."""
        if self.decision is None:
            return ""
        if self.decision is Decision.ROLLBACK:
            return _ROLLBACK_FROM + (self.rolled_back_from or _DAMAGED)
        if self.decision.failed and self.deployed_by_tick and self.deployed_version:
            return self.decision.words + _AFTER_DEPLOYING + self.deployed_version
        return self.decision.words

    @property
    def finished(self) -> bool:
        return self.end is not None

    def to_json(self) -> dict[str, Any]:
        """The history line: every set field, the decision as words and as its code."""
        line: dict[str, Any] = dict(self.extra)
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in ("extra", "decision", "deployed_by_tick", "rolled_back_from"):
                continue
            if value is not None or item.name in _ALWAYS_WRITTEN:
                line[item.name] = value
        line["decision"] = self.decision_words or None
        line["decision_code"] = self.decision.value if self.decision else None
        if self.decision is Decision.ROLLBACK:
            line["rolled_back_from"] = self.rolled_back_from
        if self.deployed_by_tick:
            line["deployed_by_tick"] = True
        line["format_version"] = FORMAT_VERSION
        return line

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> TickRecord:
        """A record from a history line of any format version; odd values become None, never an error."""
        known = {item.name: item for item in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in line.items():
            if key in ("decision", "decision_code", "format_version", "deployed_by_tick", "extra"):
                continue
            if key in known and _fits(value, known[key].type):
                values[key] = value
            elif key not in known:
                extra[key] = value
        words: str = line["decision"] if isinstance(line.get("decision"), str) else ""
        if isinstance(line.get("format_version"), int):
            decision = _decision_of_code(line.get("decision_code"))
            deployed_by_tick = line.get("deployed_by_tick") is True
        else:  # format 0: the words are all there is
            decision = _decision_of_words(words)
            deployed_by_tick = _AFTER_DEPLOYING in words
        if decision is Decision.ROLLBACK and "rolled_back_from" not in values and words.startswith(_ROLLBACK_FROM):
            previous = words.removeprefix(_ROLLBACK_FROM)  # format 0 kept it in the words alone
            values["rolled_back_from"] = None if previous == _DAMAGED else previous
        values.setdefault("start", str(line.get("start") or ""))
        return cls(**values, decision=decision, deployed_by_tick=deployed_by_tick, extra=extra)


_ALWAYS_WRITTEN = frozenset({"stages", "new_files", "exit_status", "deployed_version"})


def _decision_of_code(code: object) -> Decision | None:
    try:
        return Decision(code)
    except ValueError:
        return None


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "float": (int, float),
    "int": (int,),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


def _fits(value: object, annotation: object) -> bool:
    """Whether a history value has the field's type (annotations are strings here: `from __future__`)."""
    names = {part.split("[")[0].strip() for part in str(annotation).split(" | ")}
    if value is None:
        return "None" in names
    if isinstance(value, bool) and "bool" not in names:
        return False
    return any(isinstance(value, _TYPES[name]) for name in names if name in _TYPES)


class HistoryLog:
    """The history file: `append` is its one writer; `read` gives records oldest first."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, record: TickRecord) -> None:
        append_jsonl(self.path, record.to_json())

    def read(self, last: int | None = None) -> list[TickRecord]:
        """Records, oldest first (the last `last` lines only); torn lines are skipped and logged."""
        return [TickRecord.from_json(line) for line in read_jsonl(self.path, last=last)]


# --- views built on the records ---------------------------------------------------------


def last_stage_timings(records: list[TickRecord], stages: tuple[str, ...] = ("ingest", "train")) -> dict | None:
    """{stage: seconds} of the newest record that timed every one of `stages`, or None."""
    for record in reversed(records):
        timed = {name: record.stages.get(name) for name in stages}
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in timed.values()):
            return timed
    return None


def last_finished(records: list[TickRecord]) -> TickRecord | None:
    """The newest record that ended (a rollback included)."""
    return next((record for record in reversed(records) if record.finished), None)


def status_rows(records: list[TickRecord]) -> list[str]:
    """`fullprocess.py --status`: a header, a rule and one line per record, oldest first."""
    header = (
        f"{'start (UTC)':<20} {'secs':>7} {'exit':>4}  {'version':<8} {'new':>3}  "
        f"{'F1 test/new -> retrained':<24} decision"
    )
    lines = [header, "-" * len(header)]
    for record in records:
        decision = record.decision_words
        if record.error:
            # One line per record whatever the error says.
            decision += f" [{record.failed_stage or '?'}: {' '.join(record.error.split())}]"
        decision += _alerts_cell(record.alerts)
        lines.append(
            f"{record.start[:19]:<20} {_number(record.seconds, '{:>7.2f}', '      -')} "
            f"{'' if record.exit_status is None else record.exit_status:>4}  {record.deployed_version or '-':<8} "
            f"{len(record.new_files):>3}  {_f1_cell(record.scores):<24} {decision}"
        )
    return lines


def _alerts_cell(alerts: list[dict[str, Any]] | None) -> str:
    """ " (alerts: failed sent, answer not seen; drift held back)", or "" for a tick that alerted nothing."""
    words = []
    for entry in alerts or []:
        outcome = alert_outcome(entry)
        if outcome is not None:
            words.append(f"{entry.get('event') or 'alerting'} {outcome.words}")
    return f" (alerts: {'; '.join(words)})" if words else ""


def _f1_cell(scores: dict[str, Any]) -> str:
    # The deployed model on its test data and on the new rows, then the retrained model on the test data.
    cell = ""
    if _number(scores.get("deployed_f1"), "{}"):
        cell = _number(scores["deployed_f1"], "{:.3f}") + "/" + _number(scores.get("new_data_f1"), "{:.3f}", "n/a")
    if _number(scores.get("retrained_test_f1"), "{}"):
        cell = f"{cell:<11} -> " + _number(scores["retrained_test_f1"], "{:.3f}")
    return cell


def _number(value: object, pattern: str, missing: str = "") -> str:
    return pattern.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else missing
