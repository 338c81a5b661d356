"""The cron entry point: one tick of the pipeline.

* production empty        -> bootstrap: ingest, train, score, deploy, report;
* production damaged      -> exit 1, "run deployment.py --rollback" (never a silent bootstrap);
* no new input files      -> "no new data", exit 0 (this path imports no pandas,
                              scikit-learn or matplotlib, so a tick costs little);
                              reports that describe another version than the
                              deployed one are regenerated;
* estimator or training  -> retrain on the input folder and deploy under the promotion guard,
  changed in the config     new data or not; a config the guard refused is held back against
                            the deployed version and not retrained again until it changes;
* new files (by content)  -> ingest; the drift tests run on the *new rows*
  (rows of the new files the deployed model was not trained on); drift ->
  retrain on all ingested data, score, deploy (subject to the optional
  promotion guard), report, and call the API if one answers; no drift, or
  drift in new rows none of which has a label ("awaiting labels") -> stop,
  and remember the files so the next tick does not re-check them.

The tick is facts -> decision -> execution: `run_tick` gathers one fact at a time
(`_Work`), `drs.tick_decision.next_step` (a pure function) says what to do next or
how the tick ends, and drs.tick_stages does the costly stages, imported only once
there is new data. Each input is read once per tick and handed on: the ingested
data, the test data, the deployed model. Each tick holds the production store's
tick lock (the stage scripts take the same one), logs every decision with its
numbers, and appends one `TickRecord` to the history (drs.history). ``--status``
prints the last ticks.

With "alerts" in the config, a tick POSTs its events (drift, deployed,
not_promoted, failed, recovered) to a webhook (drs.alerts; ``--test-alert``
sends a test); with "metrics_textfile", it writes its figures for
node_exporter (drs.tick_metrics). Neither can fail a tick or change its
exit status; a config that does not load still alerts, if its "alerts" can be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from drs.cli import setup_logging
from drs.config import PROJECT_DIR, Config, ConfigError, PipelineError, load_operations
from drs.files import HISTORY_FILE, LOG_FILE, REPORTS_RECORD_FILE
from drs.history import Decision, HistoryLog, TickRecord, status_rows
from drs.production import (
    ProductionDamaged,
    model_config_of,
    open_production,
    production_store,
    same_model_config,
    trained_model_config,
    trained_schema,
)
from drs.storage import (
    LockBusy,
    fingerprint_files,
    input_csvs,
    now_iso,
    read_json,
    remove_stale_temp_files,
)
from drs.tick_decision import Action, Facts, RetrainOutcome, Step, next_step, reason_to_retrain

# typing.TYPE_CHECKING without importing typing: the no-new-data tick loads this module.
TYPE_CHECKING = False
if TYPE_CHECKING:  # the no-new-data tick imports neither pandas nor the stages
    import pandas as pd

    from drs.ingest import IngestionResult

log = logging.getLogger("fullprocess")


class Tick:
    """What one run did: filled in as it goes, appended to the history at the end."""

    def __init__(self, config: Config):
        self.config = config
        self.started = time.perf_counter()
        self.record = TickRecord(start=now_iso(), config=str(config.path))

    @contextlib.contextmanager
    def stage(self, name: str):
        log.info("stage %s: start", name)
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.record.failed_stage = name
            self.record.error = str(exc) or type(exc).__name__
            raise
        finally:
            seconds = round(time.perf_counter() - started, 4)
            self.record.stages[name] = seconds
        log.info("stage %s: done in %.2f s", name, seconds)

    def decide(self, decision: Decision, version: str | None, status: int = 0) -> int:
        """The one place a tick's outcome is set: its decision and the version serving after it."""
        self.record.decision = decision
        self.record.deployed_version = version
        log.info("decision: %s; production serves %s", self.record.decision_words, version or "(unchanged)")
        return status

    def finish(self, status: int) -> int:
        self.record.end = now_iso()
        self.record.seconds = round(time.perf_counter() - self.started, 4)
        self.record.exit_status = status
        config = self.config
        notify(self.record, config.alerts, config.metrics_textfile, config.log_folder, config.prod_folder)
        HistoryLog.of(config).append(self.record)
        return status


def notify(
    record: TickRecord,
    alerts: dict | None,
    textfile: Path | None,
    log_folder: Path | None,
    prod_folder: Path | None = None,
) -> None:
    """Send a finished tick's alerts and write its metrics textfile, each when configured.

    Neither can fail the tick: what became of them is noted in `record` ("alerts",
    "metrics_textfile_error") before it goes to the history.
    """
    if alerts:
        from drs import alerts as alerting  # the webhook's code: only a tick with alerts configured loads it

        sent = alerting.tick_alerts(alerts, record.to_json(), log_folder)
        if sent:
            record.alerts = sent
    if textfile:
        try:
            # prometheus_client costs ~70 ms to import: paid only by a tick that writes the textfile.
            from drs.tick_metrics import write_tick_metrics

            write_tick_metrics(textfile, record, _serving(prod_folder) if prod_folder else None)
        except Exception as exc:  # a full disk, a folder we may not write, a bad value: noted, never fatal
            log.warning("cannot write the metrics textfile %s: %s", textfile, exc)
            record.metrics_textfile_error = f"{type(exc).__name__}: {exc}"


def _serving(prod_folder: Path) -> dict | None:
    """{"version", "f1"} of the version production serves now, or None."""
    store = open_production(prod_folder)
    version = store.current_version()
    manifest = store.manifest(version) if version else None
    return {"version": manifest["version"], "f1": manifest.get("scores", {}).get("f1")} if manifest else None


# --- what is new -----------------------------------------------------------------


def find_new_files(config: Config, deployed: dict) -> tuple[list[str], dict]:
    """Input CSVs whose content production has not weighed: neither trained on by the
    deployed version nor checked against it by an earlier tick (or a rollback).

    Returns (new file names, fingerprints of every input CSV).
    """
    store = production_store(config)
    detail = store.ingested_detail(deployed["version"]).get("files", {})
    checked = store.checked_files(deployed.get("version"))
    # Hashes recorded for a file of the same name, size, mtime, ctime and inode are reused, not recomputed.
    known = {**detail, **{f["name"]: f for f in checked if isinstance(f.get("name"), str)}}
    paths, refused = input_csvs(config.input_folder)
    for name, reason in refused.items():
        # Never read, so never new data: said on every tick until someone removes it.
        log.warning("refused input file %s: %s", name, reason)
    prints = fingerprint_files(paths, known, max_bytes=config.max_input_file_bytes)
    weighed = {f.get("sha256") for f in (deployed.get("training_files") or {}).values()} | {
        f["sha256"] for f in checked
    }
    new = [name for name, fingerprint in prints.items() if fingerprint["sha256"] not in weighed]
    return new, prints


# --- the tick --------------------------------------------------------------------


def run_tick(config: Config, tick: Tick) -> int:
    """Gather facts step by step, asking `next_step` after each what to do, until it says how the tick ends."""
    store = production_store(config)
    removed = [
        *remove_stale_temp_files(config.output_folder, config.model_folder, config.log_folder),
        *store.remove_temp_files(),
    ]
    if removed:
        log.info("removed %d temp file(s) left by an interrupted run", len(removed))
    work = _Work(config, tick, store.deployed_state())
    facts = work.first_facts()
    while (step := next_step(facts)).action is not Action.STOP:
        facts = work.do(step, facts)
    if step.remember_checked:
        store.remember_checked(facts.deployed_version, work.weighed())
    if step.hold_config:
        store.hold_model_config(facts.deployed_version, model_config_of(config))
    if step.refresh_reports and facts.deployed_version:
        _refresh_stale_reports(config, tick, facts.deployed_version)
    assert step.decision is not None  # every STOP carries its decision
    return tick.decide(step.decision, work.serving or facts.deployed_version)


class _Work:
    """The doing half of a tick: each action gathers one more fact (and keeps what later steps need)."""

    def __init__(self, config: Config, tick: Tick, deployed: dict | None):
        self.config, self.tick, self.deployed = config, tick, deployed
        self.prints: dict = {}
        self.ingestion: IngestionResult | None = None
        self.new_rows: pd.DataFrame | None = None
        self.drift_inputs: dict | None = None
        self.serving: str | None = None  # the version serving after a retrain

    def first_facts(self) -> Facts:
        if self.deployed is None:
            log.info("nothing deployed in %s: bootstrapping from %s", self.config.prod_folder, self.config.input_folder)
            return Facts(deployed_version=None)
        version = self.deployed["version"]
        self.tick.record.deployed_version_before = version
        matches = trained_schema(self.deployed) == self.config.schema.as_record()
        if not matches:
            log.info("the config's schema differs from the one %s was trained with: retraining", version)
        config_matches, config_held = self.model_config_facts(version)
        return Facts(
            deployed_version=version, schema_matches=matches, config_matches=config_matches, config_held=config_held
        )

    def model_config_facts(self, version: str) -> tuple[bool, bool]:
        """(whether the config's estimator and parameters are those `version` was trained with, whether they
        are held back against it); a JSON comparison: the no-new-data tick stays standard library only."""
        assert self.deployed is not None
        configured = model_config_of(self.config)
        if same_model_config(trained_model_config(self.deployed), configured):
            return True, False
        held = production_store(self.config).held_model_config(version)
        config_held = held is not None and same_model_config(held, configured)
        log.info(
            "the config's estimator or training parameters differ from those %s was trained with: %s",
            version,
            "held back against it (not promoted, or rolled back to): not retraining" if config_held else "retraining",
        )
        return False, config_held

    def do(self, step: Step, facts: Facts) -> Facts:
        if step.action is Action.DETECT:
            return self.detect(facts)
        if step.action is Action.INGEST:
            return self.ingest(facts)
        if step.action is Action.FIND_NEW_ROWS:
            return self.find_new_rows(facts)
        if step.action is Action.JUDGE_DRIFT:
            verdict, self.drift_inputs = stages().check_drift(self.config, self.tick, self.new_rows)
            return dataclasses.replace(facts, drift=bool(verdict["drift"]))
        return self.retrain(step, facts)

    def detect(self, facts: Facts) -> Facts:
        assert self.deployed is not None
        with self.tick.stage("detect"):
            new_files, self.prints = find_new_files(self.config, self.deployed)
        self.tick.record.new_files = new_files
        if new_files:
            log.info("new data: %s", ", ".join(new_files))
        else:
            log.info(
                "no new data in %s (%d file(s) already weighed by %s)",
                self.config.input_folder,
                len(self.prints),
                facts.deployed_version,
            )
        return dataclasses.replace(facts, new_files=tuple(new_files))

    def ingest(self, facts: Facts) -> Facts:
        self.ingestion = ingestion = stages().ingest(self.config, self.tick)
        if facts.new_files is None:  # a bootstrap or a schema change: everything ingested counts
            self.tick.record.new_files = sorted(ingestion.ingested)
            return dataclasses.replace(facts, ingested=True)
        assert self.deployed is not None
        gone = sorted(set(self.deployed.get("training_files") or {}) - set(self.prints))
        if gone:
            log.warning(
                "%d file(s) %s was trained on are no longer in %s (%s): a retrain uses only what is there",
                len(gone),
                facts.deployed_version,
                self.config.input_folder,
                ", ".join(gone),
            )
        usable = tuple(name for name in facts.new_files if name in ingestion.ingested)
        return dataclasses.replace(facts, ingested=True, usable_new_files=usable)

    def find_new_rows(self, facts: Facts) -> Facts:
        assert self.deployed is not None and facts.usable_new_files is not None and self.ingestion is not None
        keys = production_store(self.config).training_row_keys(self.deployed["version"])
        self.new_rows = stages().new_rows(keys, self.deployed, self.ingestion, list(facts.usable_new_files))
        count = len(self.new_rows)
        labelled = int(self.new_rows[self.config.schema.target_column].notna().sum())
        self.tick.record.new_rows = count
        if self.config.schema.id_column is not None:
            gained = self.ingestion.new_labels
            self.tick.record.new_labels = sum(gained.get(name, 0) for name in facts.usable_new_files)
        log.info(
            "%d new row(s) (%d labelled) in %d new file(s) that %s was not trained on",
            count,
            labelled,
            len(facts.usable_new_files),
            facts.deployed_version,
        )
        return dataclasses.replace(facts, new_rows=count, new_labelled_rows=labelled)

    def retrain(self, step: Step, facts: Facts) -> Facts:
        reason = reason_to_retrain(facts)
        note = {"bootstrap": "bootstrap", "schema": "schema changed", "config": "config changed"}.get(reason)
        if note is None:
            fired = ", ".join(self.tick.record.drift["trigger"]["fired"]) if self.tick.record.drift else "?"
            log.info("drift (%s): retraining", fired)
            note = f"drift: {fired}"
        assert self.ingestion is not None
        outcome, self.serving = stages().retrain_and_deploy(
            self.config,
            self.tick,
            self.ingestion.data,
            deployed=self.deployed,
            note=note,
            drift_inputs=self.drift_inputs,
            guard=step.guard,
        )
        return dataclasses.replace(facts, retrain=RetrainOutcome(outcome))

    def weighed(self) -> dict:
        return _weighed(self.prints, self.ingestion) if self.ingestion is not None else {}


def stages() -> ModuleType:
    """drs.tick_stages, imported on first use: only a tick with data to weigh (or reports to rebuild) pays for it."""
    from drs import tick_stages  # pandas, scikit-learn, matplotlib, reportlab: not for the no-new-data tick

    return tick_stages


def _weighed(prints: dict, ingestion) -> dict:
    """The fingerprints of the files this tick really read (or rejected having read them): only those
    may be remembered as checked. A file that was briefly away is looked at again next tick."""
    return {
        name: fingerprint
        for name, fingerprint in prints.items()
        if ingestion.ingested.get(name, {}).get("sha256") == fingerprint["sha256"]
        or (name in ingestion.rejected and not ingestion.rejected[name].startswith("vanished"))
    }


def _refresh_stale_reports(config: Config, tick: Tick, version: str) -> None:
    """Regenerate the reports when they describe another version than the deployed one.

    A run killed between the switch and its reports, or a rollback, leaves
    them behind; reading one small JSON file keeps the common case cheap.
    A rebuild for `version` that fails fails this tick, once: it is noted in
    reports.json and later ticks leave it (the model serves all the same),
    noting the stale reports in their record, until reporting.py or the next
    deployment writes them.
    """
    record = read_json(config.model_folder / REPORTS_RECORD_FILE)
    described = record.get("version")
    if described == version:
        return
    failed = record.get("failed")
    failed = failed if isinstance(failed, dict) else {}
    if failed.get("version") == version:
        tick.record.warning = (
            f"the reports describe {described or 'no version'}, production serves {version}: rebuilding them "
            f"failed at {failed.get('time')} ({failed.get('error')}); run reporting.py once it is fixed"
        )
        log.info("%s", tick.record.warning)
        return
    log.info(
        "the reports in %s describe %s, production serves %s: regenerating them",
        config.model_folder,
        described or "no version",
        version,
    )
    try:
        with tick.stage("report"):
            stages().reporting.write_reports(config, current_tick=tick.record)
    except Exception as exc:
        with contextlib.suppress(Exception):  # not even noted: the next tick tries again
            stages().reporting.record_failed_rebuild(config, version, f"{type(exc).__name__}: {exc}")
        raise
    tick.record.reports_regenerated = version


# --- status ----------------------------------------------------------------------


def print_status(config: Config, last: int) -> None:
    records = HistoryLog(config.log_folder / HISTORY_FILE).read_rows(last)
    if not records:
        print(f"no ticks recorded in {config.log_folder / HISTORY_FILE}")
        return
    print("\n".join(status_rows(records)))


def run(config: Config) -> int:
    """One tick under the lock, logged to the log folder and recorded in the history; its exit status."""
    try:
        setup_logging(config.log_folder / LOG_FILE, max_bytes=config.log_max_bytes, backups=config.log_backups)
        return _run_locked(config, Tick(config))
    except OSError as exc:
        # A read-only or full disk, a log folder that is a file: nothing can be recorded, so say it here.
        print(f"fullprocess: error: cannot write the run's records: {exc}", file=sys.stderr)
        if not logging.getLogger().handlers:  # the log file could not be opened: alert warnings go to stdout
            setup_logging()
        notify(
            _failure_record(Decision.FAILED_RECORDS, "records", f"cannot write the run's records: {exc}", 1),
            config.alerts,
            config.metrics_textfile,
            config.log_folder,
            config.prod_folder,
        )
        return 1


def _failure_record(decision: Decision, stage: str, error: str, status: int) -> TickRecord:
    """The record of a tick that failed before it could keep one, for its alert and textfile."""
    now = now_iso()
    return TickRecord(
        start=now, end=now, seconds=0.0, decision=decision, exit_status=status, failed_stage=stage, error=error
    )


def notify_config_error(config_path: str, error: ConfigError) -> None:
    """Alert (and write the textfile for) a tick whose config does not load, if those settings can be read."""
    settings = load_operations(config_path)
    if not settings["alerts"] and not settings["metrics_textfile"]:
        return
    log_folder = settings["log_folder"]
    try:
        setup_logging(log_folder / LOG_FILE if log_folder else None)
    except OSError:
        setup_logging()
    log.error("tick failed: config error: %s", error)
    notify(
        _failure_record(Decision.FAILED_CONFIG, "config", str(error), 2),
        settings["alerts"],
        settings["metrics_textfile"],
        log_folder,
    )


def send_test(config: Config) -> int:
    """--test-alert: 0 delivered, 1 not delivered, 2 no webhook configured."""
    if not config.alerts:
        print(f'fullprocess: no "alerts" with a webhook_url in {config.path}: nothing to test', file=sys.stderr)
        return 2
    from drs import alerts as alerting  # as in notify: only with alerts configured

    result = alerting.send_test_alert(config.alerts, production_store(config).current_version())
    where = alerting.channel_for(config.alerts).destination
    if result["delivered"]:
        print(f"test alert delivered to {where} (HTTP {result['status']})")
        return 0
    # Sent whole but unanswered in time: it may well have arrived; the receiver's side will tell.
    what = "not confirmed" if result["delivered"] is None else "not delivered"
    print(
        f"fullprocess: test alert {what}: {result['error']} ({where}, {result['attempts']} attempt(s))",
        file=sys.stderr,
    )
    return 1


def _run_locked(config: Config, tick: Tick) -> int:
    """run_tick under the lock, then its records (history, alert state, textfile) written before the lock
    goes, so that they land in tick order; a tick that finds the lock taken records that it skipped."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(production_store(config).tick_lock())
        except LockBusy as busy:
            return tick.finish(_skipped(config, tick, busy))
        except OSError as exc:  # production's folder cannot hold the lock (a file in its place, a read-only disk)
            return tick.finish(_failed(tick, f"error: cannot take the tick's lock: {exc}", Decision.FAILED, 1))
        return tick.finish(_run_guarded(config, tick))


def _skipped(config: Config, tick: Tick, busy: LockBusy) -> int:
    """A tick that found the lock taken: skipped (cron ticks overlap), or failed when the holder has held it
    longer than lock_stale_seconds, so that a stuck tick is not hidden behind a stream of healthy skips."""
    age = busy.age_seconds
    tick.record.lock_holder = {"pid": busy.pid, "age_seconds": None if age is None else round(age, 1)}
    if age is not None and age > config.lock_stale_seconds:
        message = (
            f"error: another tick (pid {busy.pid}) has held the lock for {age:.0f} s, over lock_stale_seconds "
            f"{config.lock_stale_seconds:g}: is it stuck?"
        )
        return _failed(tick, message, Decision.FAILED, 1)
    log.info("another run in progress %s: skipping this tick", busy.holder)
    return tick.decide(Decision.SKIPPED, None)


def _run_guarded(config: Config, tick: Tick) -> int:
    """run_tick, every failure turned into a recorded decision and an exit status."""
    try:
        return run_tick(config, tick)
    except ConfigError as exc:
        return _failed(tick, f"config error: {exc}", Decision.FAILED_CONFIG, 2)
    except ProductionDamaged as exc:
        return _failed(tick, f"error: {exc}", Decision.FAILED_PRODUCTION_DAMAGED, 1)
    except (PipelineError, OSError) as exc:  # an expected problem: bad input or state, a full or read-only disk
        return _failed(tick, f"error: {exc}", Decision.FAILED, 1)
    except ImportError as exc:
        # The no-new-data path needs only the standard library, so a tick run with the wrong
        # interpreter looks healthy until data arrives: say plainly what is wrong.
        return _failed(
            tick,
            f"error: {exc}: run fullprocess.py with the project's virtualenv ({PROJECT_DIR / '.venv/bin/python'})",
            Decision.FAILED,
            1,
        )
    except KeyboardInterrupt:
        return _failed(tick, "interrupted", Decision.INTERRUPTED, 130)
    except Exception as exc:  # unexpected: keep the traceback in the log, one line on stderr
        return _failed(
            tick,
            f"unexpected error: {type(exc).__name__}: {exc} (traceback in {config.log_folder / LOG_FILE})",
            Decision.FAILED,
            1,
            traceback.format_exc(),
        )


def _failed(tick: Tick, message: str, decision: Decision, status: int, details: str | None = None) -> int:
    """Record and report a failed tick; says whether production changed before the failure."""
    if tick.record.error is None:
        tick.record.error = message
    serving = tick.record.deployed_version if tick.record.deployed_by_tick else None
    stage = tick.record.failed_stage
    after = f"production serves {serving}, deployed by this tick" if serving else "production unchanged"
    log.error(
        "tick failed%s: %s; %s%s",
        f" in stage {stage}" if stage else "",
        message,
        after,
        f"\n{details}" if details else "",
    )
    print(f"fullprocess: {message}", file=sys.stderr)
    return tick.decide(decision, serving or tick.record.deployed_version_before, status)
