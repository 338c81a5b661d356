"""The run history: one typed record per tick (and per rollback), its one writer and its readers.

``<log_folder_path>/history.jsonl`` holds one JSON object per line, oldest first. Every line is
written by `HistoryLog.append` (a tick's end, a rollback), whole or not at all as readers can tell;
readers get `TickRecord`s back and never parse the decision's words: the decision is a `Decision`.

Format versions (the ``format_version`` key of a line):
- 0, lines written before the key existed: the decision is known only by its words, read once here
  (`_decision_of_words`); everything else has the same keys as format 1.
- 1: adds ``decision_code`` (a `Decision` value) and ``format_version``.

Long histories: a tick every 10 minutes is 52,560 lines a year, so no reader parses the whole file.
`HistoryLog.read(last=N)` reads the file backwards from its end, and what needs every record (how many
there are, the last stage timings, the last drift tick) is kept folded in ``historysummary.json``
(`HistoryFigures`), which `append` brings up to date under a lock on the file. `append` also rotates
the file by size (``history.jsonl.1`` the newest old part, up to `backups` parts kept); the summary's
figures cover the rotated parts too, whether kept or dropped.

Standard library only: the cheap no-new-data tick writes its line through this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from drs.files import HISTORY_FILE, HISTORY_SUMMARY_FILE
from drs.storage import append_jsonl, read_json, write_json_atomic

# typing.TYPE_CHECKING without importing typing: the no-new-data tick loads this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from drs.config import Config

FORMAT_VERSION = 1


class Decision(enum.Enum):
    """What a tick (or a rollback) decided; the value is the code kept in the history."""

    BOOTSTRAP = "bootstrap"
    BOOTSTRAP_PRODUCTION_CHANGED = "bootstrap_production_changed"
    SCHEMA_REDEPLOYED = "schema_redeployed"
    SCHEMA_PRODUCTION_CHANGED = "schema_production_changed"
    CONFIG_REDEPLOYED = "config_redeployed"
    CONFIG_NOT_PROMOTED = "config_not_promoted"
    CONFIG_PRODUCTION_CHANGED = "config_production_changed"
    NO_NEW_DATA = "no_new_data"
    NO_USABLE_NEW_DATA = "no_usable_new_data"
    NO_NEW_ROWS = "no_new_rows"
    NO_DRIFT = "no_drift"
    DRIFT_AWAITING_LABELS = "drift_awaiting_labels"
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
        return self in (
            Decision.BOOTSTRAP,
            Decision.SCHEMA_REDEPLOYED,
            Decision.CONFIG_REDEPLOYED,
            Decision.DRIFT_REDEPLOYED,
        )


_PRODUCTION_CHANGED = "not deployed: production changed during the tick"
_WORDS = {
    Decision.BOOTSTRAP: "bootstrap",
    Decision.BOOTSTRAP_PRODUCTION_CHANGED: f"bootstrap, {_PRODUCTION_CHANGED}",
    Decision.SCHEMA_REDEPLOYED: "schema changed, redeployed",
    Decision.SCHEMA_PRODUCTION_CHANGED: f"schema changed, {_PRODUCTION_CHANGED}",
    Decision.CONFIG_REDEPLOYED: "config changed, redeployed",
    Decision.CONFIG_NOT_PROMOTED: "config changed, retrained, not promoted",
    Decision.CONFIG_PRODUCTION_CHANGED: f"config changed, {_PRODUCTION_CHANGED}",
    Decision.NO_NEW_DATA: "no new data",
    Decision.NO_USABLE_NEW_DATA: "no usable new data",
    Decision.NO_NEW_ROWS: "no new rows",
    Decision.NO_DRIFT: "no drift",
    Decision.DRIFT_AWAITING_LABELS: "drift, awaiting labels",
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
    new_labels: int | None = None  # with an id_column: new rows that gained or changed a label (drs.latest_rows)
    scores: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None
    warning: str | None = None
    warnings: list[str] | None = None  # the retrained model's fit warnings, one line each
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


TIMED_STAGES = ("ingest", "train")  # the stages whose last timings diagnostics reports
_CHECKED_BYTES = 64  # the summary recognises the part of the file it covers by its last bytes
_BLOCK = 1 << 16
# How far back a table looks for the start of a run of quiet ticks: 20,000 ticks are ~140 days of a
# 10-minute cron, and telling a quiet line costs a byte search, not a parse.
QUIET_SCAN = 20_000
# No writer makes a line this long (a tick with 100,000 new files writes ~10 MB): a longer one is a
# torn or foreign write, skipped unread past this size so a reader's time and memory stay bounded.
LONGEST_LINE = 1 << 26
_OVERLONG = b"\xff"  # what the readers yield in place of an overlong line: unreadable, counted as torn


@dataclass
class HistoryFigures:
    """What needs every record of the history, folded one history line at a time (oldest first)."""

    records: int = 0
    # {stage: seconds} of the newest record that timed every one of TIMED_STAGES.
    stage_timings: dict[str, float] | None = None
    # The newest record that ran the drift tests, as its history line.
    drift_line: dict[str, Any] | None = None

    def add(self, line: dict[str, Any]) -> None:
        self.records += 1
        stages = line.get("stages")
        if isinstance(stages, dict) and all(_is_number(stages.get(name)) for name in TIMED_STAGES):
            self.stage_timings = {name: stages[name] for name in TIMED_STAGES}
        if isinstance(line.get("drift"), dict):
            self.drift_line = line

    def then(self, later: HistoryFigures) -> HistoryFigures:
        """These figures followed by those of the records after them."""
        return HistoryFigures(
            self.records + later.records,
            later.stage_timings or self.stage_timings,
            later.drift_line or self.drift_line,
        )

    @property
    def drift_tick(self) -> TickRecord | None:
        return None if self.drift_line is None else TickRecord.from_json(self.drift_line)

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "stage_timings": self.stage_timings, "drift_line": self.drift_line}

    @classmethod
    def from_json(cls, value: object) -> HistoryFigures:
        value = value if isinstance(value, dict) else {}
        records = value.get("records")
        timings = value.get("stage_timings")
        drift = value.get("drift_line")
        return cls(
            records if isinstance(records, int) and not isinstance(records, bool) and records >= 0 else 0,
            timings if isinstance(timings, dict) else None,
            drift if isinstance(drift, dict) else None,
        )


class HistoryLog:
    """The history file: `append` is its one writer; `read` gives records oldest first, `figures` what
    needs them all. `max_bytes`: the size at which `append` rotates the file (None: never)."""

    def __init__(self, path: Path, max_bytes: int | None = None, backups: int = 1):
        self.path = Path(path)
        self.summary_path = self.path.with_name(HISTORY_SUMMARY_FILE)
        self.max_bytes, self.backups = max_bytes, backups

    @classmethod
    def of(cls, config: Config) -> HistoryLog:
        """The history of the config's log folder, rotated as the config says."""
        return cls(config.log_folder / HISTORY_FILE, config.history_max_bytes, config.log_backups)

    def part(self, number: int) -> Path:
        """An old part of the history: 1 the newest."""
        return self.path.with_name(f"{self.path.name}.{number}")

    def append(self, record: TickRecord) -> None:
        with self._locked():
            append_jsonl(self.path, record.to_json())
            try:
                self._update_summary()
            except OSError as exc:  # the line is written; the next append folds it in from the same offset
                logging.getLogger("history").warning("could not update %s: %s", self.summary_path, exc)

    def read(self, last: int | None = None) -> list[TickRecord]:
        """Records, oldest first, the old parts' first; torn lines are skipped and logged.

        With `last`, only the last `last` records, read backwards from the end of the file (and of the
        old parts when the current one holds fewer): the cost does not grow with the history.
        """
        torn = 0
        lines: list[dict[str, Any]] = []
        if last is None:
            for path in reversed(self._parts()):
                for raw, _, _ in _lines_forwards(path):
                    line = _decode(raw)
                    torn += line is None and bool(raw.strip())
                    lines += [line] if line is not None else []
        elif last > 0:
            for path in self._parts():
                for raw in _lines_backwards(path):
                    line = _decode(raw)
                    torn += line is None and bool(raw.strip())
                    lines += [line] if line is not None else []
                    if len(lines) == last:
                        break
                if len(lines) == last:
                    break
            lines.reverse()
        if torn:
            logging.getLogger("history").warning("%s: skipped %d torn or unreadable line(s)", self.path, torn)
        return [TickRecord.from_json(line) for line in lines]

    def read_rows(self, rows: int, scan: int = QUIET_SCAN) -> list[TickRecord | QuietRun]:
        """The last `rows` rows of the history as tables show it, oldest first: records, and each run of
        two or more quiet ticks (`is_quiet`) as one `QuietRun`. At most `scan` lines are looked at; a
        quiet line is told by its bytes, so only the other lines and the two ends of each run are parsed."""
        found: list[TickRecord | QuietRun] = []  # newest first
        run: list[bytes] = []  # the quiet lines of the run being read: its newest, then its oldest so far
        count = torn = 0

        def close_run(complete: bool = True) -> None:
            nonlocal count
            records = [TickRecord.from_json(_decode(raw) or {}) for raw in run]
            if count == 1:
                found.append(records[0])
            elif count:
                found.append(QuietRun(count, first=records[-1], last=records[0], complete=complete))
            run.clear()
            count = 0

        for scanned, raw in enumerate(self._raw_lines_backwards(), start=1):
            if scanned > scan:
                close_run(complete=False)
                break
            quiet, line = _quiet_or_parsed(raw)
            if quiet:
                if not count and len(found) >= rows:
                    break
                if run:
                    run[1:] = [raw]  # the oldest so far
                else:
                    run.append(raw)  # the newest
                count += 1
            elif line is None:
                torn += 1
            else:
                close_run()
                if len(found) >= rows:
                    break
                found.append(TickRecord.from_json(line))
        else:
            close_run()
        if torn:
            logging.getLogger("history").warning("%s: skipped %d torn or unreadable line(s)", self.path, torn)
        return list(reversed(found[:rows]))

    def _raw_lines_backwards(self) -> Iterator[bytes]:
        """The non-blank lines of every part, last first."""
        for path in self._parts():
            yield from (raw for raw in _lines_backwards(path) if raw.strip())

    def figures(self) -> HistoryFigures:
        """The figures of every record ever appended (rotated parts included): the summary's, plus the
        lines appended since it was written. Without a summary that matches the file (a history
        written before summaries existed, or rewritten by hand) the current file is read once."""
        summary = read_json(self.summary_path)
        earlier = HistoryFigures.from_json(summary.get("earlier"))
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return earlier
        with handle:
            active, _ = _fold(handle, summary.get("active"), complete_only=False)
        return earlier.then(active)

    def _parts(self) -> list[Path]:
        """The current file (if any), then the old parts, newest first."""
        parts = [self.path] if self.path.exists() else []
        number = 1
        while self.part(number).exists():
            parts.append(self.part(number))
            number += 1
        return parts

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The history file locked against other writers (a tick, a rollback), the lock taken on the
        file the path names now: a writer that waited while another rotated it tries again."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with contextlib.suppress(FileNotFoundError):
                    if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                        break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)

    def _update_summary(self) -> None:
        """Fold the lines appended since the summary was written into it; rotate the file when due."""
        summary = read_json(self.summary_path)
        earlier = HistoryFigures.from_json(summary.get("earlier"))
        with open(self.path, "rb") as handle:
            active, state = _fold(handle, summary.get("active"), complete_only=True)
        if self.max_bytes is not None and state["offset"] >= self.max_bytes:
            self._rotate()
            # No inode: the next file is read from its start until an append records it.
            earlier, active, state = earlier.then(active), HistoryFigures(), {"inode": None, "offset": 0, "check": ""}
        write_json_atomic(
            self.summary_path,
            {"format_version": 1, "earlier": earlier.to_json(), "active": {**state, **active.to_json()}},
        )

    def _rotate(self) -> None:
        self.part(self.backups).unlink(missing_ok=True)
        for number in range(self.backups - 1, 0, -1):
            if self.part(number).exists():
                os.replace(self.part(number), self.part(number + 1))
        os.replace(self.path, self.part(1))


def _fold(handle, state: object, complete_only: bool) -> tuple[HistoryFigures, dict[str, Any]]:
    """(the figures of the open history file, the summary's state {"inode", "offset", "check"} after them).

    `state`: the summary's record of how far it has read the file; when it does not match the file
    (another file, or one rewritten) the file is read from its start. With `complete_only` a last line
    without its newline is left for later (a writer's view); otherwise it counts if it parses.
    """
    inode = os.fstat(handle.fileno()).st_ino
    start, figures = 0, HistoryFigures()
    if isinstance(state, dict) and state.get("inode") == inode:
        offset = state.get("offset")
        if isinstance(offset, int) and offset >= 0 and _check(handle, offset) == state.get("check"):
            start, figures = offset, HistoryFigures.from_json(state)
    handle.seek(start)
    offset = start
    for raw, length, ended in _read_lines(handle):
        if not ended:
            if not complete_only:
                _add(figures, raw)
            break
        offset += length
        _add(figures, raw)
    return figures, {"inode": inode, "offset": offset, "check": _check(handle, offset)}


def _add(figures: HistoryFigures, raw: bytes) -> None:
    """Fold one line in, parsing it only when it can carry stage timings or drift tests: a file read
    from its start (a history from before summaries) costs a scan, not 50,000 parses a year."""
    if b'"train"' in raw or b'"drift"' in raw:
        line = _decode(raw)
        if line is not None:
            figures.add(line)
    elif raw.lstrip().startswith(b"{") and raw.rstrip().endswith(b"}"):  # a whole line (a torn one is not)
        figures.records += 1


def _check(handle, offset: int) -> str:
    """A digest of the bytes just before `offset`: "" when the file is shorter than that."""
    size = os.fstat(handle.fileno()).st_size
    if offset > size:
        return "?"
    start = max(0, offset - _CHECKED_BYTES)
    return hashlib.sha256(os.pread(handle.fileno(), offset - start, start)).hexdigest()


def _decode(raw: bytes) -> dict[str, Any] | None:
    """A history line as a dict, or None for a torn or unreadable one (or a blank)."""
    try:
        line = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    return line if isinstance(line, dict) else None


def _lines_forwards(path: Path) -> Iterator[tuple[bytes, int, bool]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return
    with handle:
        yield from _read_lines(handle)


def _read_lines(handle) -> Iterator[tuple[bytes, int, bool]]:
    """(line, its length in the file, whether it ends with a newline) from the handle's position on;
    a line longer than `LONGEST_LINE` comes as `_OVERLONG`, read in blocks and dropped."""
    longest = LONGEST_LINE
    while raw := handle.readline(longest + 1):
        if len(raw) <= longest or raw.endswith(b"\n"):
            yield raw, len(raw), raw.endswith(b"\n")
            continue
        length, ended = len(raw), False
        while not ended and (rest := handle.readline(_BLOCK)):
            length, ended = length + len(rest), rest.endswith(b"\n")
        yield _OVERLONG, length, ended


def _lines_backwards(path: Path, block: int = _BLOCK) -> Iterator[bytes]:
    """The file's lines, last first, reading it in blocks from its end; a line longer than
    `LONGEST_LINE` comes as `_OVERLONG`, its bytes dropped as they are read."""
    longest = LONGEST_LINE
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return
    with handle:
        end = handle.seek(0, os.SEEK_END)
        tail: list[bytes] = []  # the end of a line that began before this block, last piece first
        size = 0  # its length; above `longest` its pieces are dropped
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            pieces = handle.read(end - start).split(b"\n")
            end = start
            if len(pieces) > 1:
                yield _OVERLONG if size + len(pieces[-1]) > longest else b"".join([pieces[-1], *reversed(tail)])
                yield from reversed(pieces[1:-1])
                tail, size = [], 0
            size += len(pieces[0])
            if size > longest:
                tail.clear()
            else:
                tail.append(pieces[0])
        yield _OVERLONG if size > longest else b"".join(reversed(tail))


# --- views built on the records ---------------------------------------------------------

# The keys a quiet tick's line never has (None fields are not written); see `is_quiet`.
_NOT_QUIET_FIELDS = ("warning", "error", "alerts", "apicalls_error", "metrics_textfile_error", "reports_regenerated")
_NOT_QUIET_KEYS = tuple(f'"{name}"'.encode() for name in _NOT_QUIET_FIELDS)


def is_quiet(record: TickRecord) -> bool:
    """A tick that found no new data and had nothing else to say: tables show a run of them as one row."""
    return (
        record.decision is Decision.NO_NEW_DATA
        and record.exit_status == 0
        and not any(getattr(record, name) for name in _NOT_QUIET_FIELDS)
    )


def _quiet_line(raw: bytes) -> bool:
    """Whether a history line of format 1 is a quiet tick's, without parsing it (never true of another)."""
    return (
        b'"decision_code": "no_new_data"' in raw
        and (b'"exit_status": 0,' in raw or b'"exit_status": 0}' in raw)
        and b'"format_version": 1' in raw
        and not any(key in raw for key in _NOT_QUIET_KEYS)
    )


def _quiet_or_parsed(raw: bytes) -> tuple[bool, dict[str, Any] | None]:
    """(whether the line is a quiet tick's, the line parsed unless its bytes told it quiet; None: torn)."""
    if _quiet_line(raw):
        return True, None
    line = _decode(raw)
    return line is not None and is_quiet(TickRecord.from_json(line)), line


@dataclass(frozen=True)
class QuietRun:
    """Consecutive quiet ticks shown as one row: how many, the oldest and the newest."""

    count: int
    first: TickRecord
    last: TickRecord
    complete: bool = True  # False: the scan stopped before the run's start, which lies further back

    @property
    def words(self) -> str:
        """ "87 ticks with no new data since 2026-12-04 10:00"."""
        since = self.first.start[:16].replace("T", " ")
        return f"{self.count}{'' if self.complete else '+'} ticks with no new data since {since}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def last_stage_timings(records: list[TickRecord], stages: tuple[str, ...] = ("ingest", "train")) -> dict | None:
    """{stage: seconds} of the newest record that timed every one of `stages`, or None."""
    for record in reversed(records):
        timed = {name: record.stages.get(name) for name in stages}
        if all(_is_number(value) for value in timed.values()):
            return timed
    return None


def last_finished(records: list[TickRecord]) -> TickRecord | None:
    """The newest record that ended (a rollback included)."""
    return next((record for record in reversed(records) if record.finished), None)


def status_rows(records: list[TickRecord | QuietRun]) -> list[str]:
    """`fullprocess.py --status`: a header, a rule and one line per record (or run of quiet ticks), oldest first."""
    header = (
        f"{'start (UTC)':<20} {'secs':>7} {'exit':>4}  {'version':<8} {'new':>3}  "
        f"{'F1 test/new -> retrained':<24} decision"
    )
    lines = [header, "-" * len(header)]
    for record in records:
        if isinstance(record, QuietRun):
            last = record.last
            lines.append(
                f"{last.start[:19]:<20} {'-':>7} {0:>4}  {last.deployed_version or '-':<8} {0:>3}  {'':<24} "
                f"{record.words}"
            )
            continue
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
