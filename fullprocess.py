"""The cron entry point: one tick of the pipeline.

* nothing deployed        -> bootstrap: ingest, train, score, deploy, report;
* no new input files      -> "no new data", exit 0 (this path imports no pandas,
                              scikit-learn or matplotlib, so a tick costs little);
* new files (by name or content) -> ingest, score the deployed model on the new
  data, run the drift tests; drift -> retrain, score, deploy (subject to the
  optional promotion guard), report, and call the API if one answers;
  no drift -> stop, and remember the files so the next tick does not re-check them.

Each tick holds an exclusive lock, logs every decision with its numbers, and
appends one JSON line to ``<log_folder_path>/history.jsonl``.
``--status`` prints the last ticks.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import time
import traceback
from pathlib import Path

from settings import (
    HISTORY_FILE,
    INGESTED_DETAIL_FILE,
    LOCK_FILE,
    LOG_FILE,
    REFERENCE_SAMPLE_FILE,
    Config,
    ConfigError,
    PipelineError,
    argument_parser,
    load_config,
    setup_logging,
)
from storage import (
    CHECKED_FILE,
    LockBusy,
    append_jsonl,
    deployed_state,
    exclusive_lock,
    fingerprint_files,
    list_input_csvs,
    read_jsonl,
    remember_checked,
    write_json_atomic,
)

log = logging.getLogger("fullprocess")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Tick:
    """What one run did: filled in as it goes, appended to the history at the end."""

    def __init__(self, config: Config):
        self.config = config
        self.started = time.perf_counter()
        self.record: dict = {"start": _now(), "config": str(config.path), "stages": {}, "new_files": [],
                             "rejected_files": {}, "decision": None, "exit_status": None}

    @contextlib.contextmanager
    def stage(self, name: str):
        log.info("stage %s: start", name)
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.record["failed_stage"] = name
            self.record["error"] = str(exc) or type(exc).__name__
            raise
        finally:
            seconds = round(time.perf_counter() - started, 4)
            self.record["stages"][name] = seconds
        log.info("stage %s: done in %.2f s", name, seconds)

    def finish(self, status: int) -> int:
        self.record.update(end=_now(), seconds=round(time.perf_counter() - self.started, 4), exit_status=status)
        append_jsonl(self.config.log_folder / HISTORY_FILE, self.record)
        return status


# --- what is new -----------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def find_new_files(config: Config, deployed: dict) -> tuple[list[str], dict]:
    """Input CSVs not yet used by production (new name or changed content), minus files a
    previous tick already checked against this same deployed version.

    Returns (new file names, fingerprints of every input CSV).
    """
    version_folder = Path(deployed["folder"])
    detail = _read_json(version_folder / INGESTED_DETAIL_FILE).get("files", {})
    checked = _read_json(config.log_folder / CHECKED_FILE)
    checked_files = checked.get("files", {}) if checked.get("version") == deployed.get("version") else {}
    prints = fingerprint_files(list_input_csvs(config.input_folder), {**detail, **checked_files})
    deployed_files = deployed.get("training_files", {})
    new = []
    for name, fingerprint in prints.items():
        for known in (deployed_files.get(name), checked_files.get(name)):
            if known and known.get("sha256") == fingerprint["sha256"]:
                break
        else:
            new.append(name)
    return new, prints


# --- the tick --------------------------------------------------------------------

def run_tick(config: Config, tick: Tick) -> int:
    deployed = deployed_state(config.prod_folder)
    if deployed is None:
        log.info("nothing deployed in %s: bootstrapping from %s", config.prod_folder, config.input_folder)
        tick.record["decision"] = "bootstrap"
        ingestion = _ingest(config, tick)
        tick.record["new_files"] = sorted(ingestion.ingested)
        _retrain_and_deploy(config, tick, deployed=None, note="bootstrap")
        return 0

    tick.record["deployed_version_before"] = deployed.get("version")
    with tick.stage("detect"):
        new_files, prints = find_new_files(config, deployed)
    tick.record["new_files"] = new_files
    if not new_files:
        log.info("no new data in %s (%d file(s) already used by %s)", config.input_folder, len(prints), deployed.get("version"))
        tick.record["decision"] = "no new data"
        tick.record["deployed_version"] = deployed.get("version")
        return 0
    log.info("new data: %s", ", ".join(new_files))

    ingestion = _ingest(config, tick)
    if not set(new_files) & set(ingestion.ingested):
        # Every new file was rejected: the data the model sees has not changed.
        tick.record["decision"] = "no usable new data"
        tick.record["deployed_version"] = deployed.get("version")
        remember_checked(config.log_folder, deployed.get("version"), prints)
        log.info("decision: every new file was rejected, keeping %s", deployed.get("version"))
        return 0
    verdict = _check_drift(config, tick, deployed, ingestion)
    if not verdict["drift"]:
        tick.record["decision"] = "no drift"
        tick.record["deployed_version"] = deployed.get("version")
        remember_checked(config.log_folder, deployed.get("version"), prints)
        log.info("decision: no drift, keeping %s", deployed.get("version"))
        return 0
    log.info("decision: drift (%s), retraining", ", ".join(verdict["trigger"]["fired"]))
    promoted = _retrain_and_deploy(config, tick, deployed, note="drift: " + ", ".join(verdict["trigger"]["fired"]))
    if not promoted:
        remember_checked(config.log_folder, deployed.get("version"), prints)
    return 0


def _ingest(config: Config, tick: Tick):
    from ingestion import merge_multiple_dataframe
    from training import check_training_parameters

    # A tick that may retrain checks the training settings first, not after ingesting.
    check_training_parameters(config.training)

    with tick.stage("ingest"):
        result = merge_multiple_dataframe(config)
    tick.record["rejected_files"] = result.rejected
    tick.record["rows"] = {"read": result.rows_read, "unique": result.rows}
    for name, reason in result.rejected.items():
        log.warning("rejected file %s: %s", name, reason)
    tick.ingestion = result
    return result


def _check_drift(config: Config, tick: Tick, deployed: dict, ingestion) -> dict:
    from deployment import deployed_score_history, load_deployed_model
    from drift import run_drift_tests
    from ingestion import read_final_data
    from scoring import f1_on

    with tick.stage("drift"):
        model = load_deployed_model(config.prod_folder)
        new_f1 = f1_on(model.model, ingestion.data)
        deployed_f1 = float(model.f1)
        history = deployed_score_history(config)
        reference_path = model.folder / REFERENCE_SAMPLE_FILE
        reference = read_final_data(config, reference_path) if reference_path.is_file() else None
        verdict = run_drift_tests(config.drift, new_f1, deployed_f1, history, reference, ingestion.data)
    tick.record["scores"] = {"deployed_f1": deployed_f1, "new_data_f1": new_f1}
    tick.record["drift"] = verdict
    for name, test in verdict["tests"].items():
        log.info("drift test %s: statistic %s, threshold %s -> %s", name, test.get("statistic"), test.get("threshold"), test["verdict"])
    log.info("deployed model %s: F1 %.4f on its test data, %.4f on the new data; drift: %s",
             model.version, deployed_f1, new_f1, "yes" if verdict["drift"] else "no")
    return verdict


def _retrain_and_deploy(config: Config, tick: Tick, deployed: dict | None, note: str) -> bool:
    """Train, score, deploy (unless the promotion guard says no), report. True if deployed."""
    from deployment import store_model_into_pickle
    from scoring import score_model
    from training import train_model

    with tick.stage("train"):
        model = train_model(config)
    with tick.stage("score"):
        test_f1 = score_model(config, model=model)
    tick.record.setdefault("scores", {})["retrained_test_f1"] = test_f1
    log.info("retrained model: F1 %.4f on the test data", test_f1)

    if deployed is not None and config.promotion_margin is not None:
        deployed_f1 = float(deployed.get("scores", {}).get("f1", 0.0))
        floor = deployed_f1 - config.promotion_margin
        promote = test_f1 >= floor
        tick.record["promotion"] = {"deployed_test_f1": deployed_f1, "retrained_test_f1": test_f1,
                                    "margin": config.promotion_margin, "promoted": promote}
        if not promote:
            reason = (f"retrained F1 {test_f1:.4f} is below the deployed {deployed_f1:.4f} "
                      f"minus margin {config.promotion_margin:g}")
            tick.record["promotion"]["reason"] = reason
            tick.record["decision"] = "drift, retrained, not promoted"
            tick.record["deployed_version"] = deployed.get("version")
            log.warning("promotion guard: %s; keeping %s", reason, deployed.get("version"))
            return False

    with tick.stage("deploy"):
        version = store_model_into_pickle(config, note=note)
    tick.record["deployed_version"] = version
    if tick.record["decision"] is None:
        tick.record["decision"] = "drift, redeployed"
    with tick.stage("report"):
        _report(config, tick.record)
    _api_or_diagnostics(config, tick)
    return True


def _report(config: Config, current_tick: dict | None = None) -> None:
    import reporting

    reporting.score_model(config)
    writer = getattr(reporting, "write_report", None)
    if writer is not None:
        # This tick's history line is appended only when it ends: the report gets the record so far.
        writer(config, current_tick=current_tick)


def _api_or_diagnostics(config: Config, tick: Tick) -> None:
    import requests

    try:
        requests.get(config.api_url + "/health", timeout=1.0)
        server = True
    except requests.RequestException:
        server = False
    if server:
        from apicalls import call_api, save_api_returns

        with tick.stage("apicalls"):
            path = save_api_returns(config, call_api(config))
        log.info("API at %s answered; wrote %s", config.api_url, path)
    else:
        from diagnostics import all_diagnostics, dataframe_summary, model_predictions
        from settings import DIAGNOSTICS_FILE

        with tick.stage("diagnostics"):
            report = {"predictions": model_predictions(config=config), "summary_statistics": dataframe_summary(config),
                      **all_diagnostics(config)}
            write_json_atomic(config.model_folder / DIAGNOSTICS_FILE, report)
        log.info("no API at %s: ran diagnostics in process, wrote %s", config.api_url, config.model_folder / DIAGNOSTICS_FILE)


# --- status ----------------------------------------------------------------------

def print_status(config: Config, last: int) -> None:
    records = read_jsonl(config.log_folder / HISTORY_FILE, last=last)
    if not records:
        print(f"no ticks recorded in {config.log_folder / HISTORY_FILE}")
        return
    header = f"{'start (UTC)':<20} {'secs':>7} {'exit':>4}  {'version':<8} {'new':>3}  {'F1 dep/new':<13} decision"
    print(header)
    print("-" * len(header))
    for r in records:
        scores = r.get("scores", {})
        f1 = ""
        if "deployed_f1" in scores:
            f1 = f"{scores['deployed_f1']:.3f}/{scores['new_data_f1']:.3f}"
        decision = r.get("decision") or ""
        if r.get("error"):
            decision += f" [{r.get('failed_stage', '?')}: {r['error']}]"
        print(f"{r.get('start', '')[:19]:<20} {r.get('seconds', 0):>7.2f} {r.get('exit_status', ''):>4}  "
              f"{str(r.get('deployed_version') or '-'):<8} {len(r.get('new_files', [])):>3}  {f1:<13} {decision}")


def main(argv=None) -> int:
    parser = argument_parser("Run one tick of the pipeline (cron entry point).")
    parser.add_argument("--status", nargs="?", const=10, type=int, metavar="N", help="print the last N ticks (default 10) and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"fullprocess: config error: {exc}", file=sys.stderr)
        return 2
    if args.status is not None:
        print_status(config, args.status)
        return 0

    setup_logging(config.log_folder / LOG_FILE)
    tick = Tick(config)
    try:
        with exclusive_lock(config.log_folder / LOCK_FILE):
            status = run_tick(config, tick)
    except LockBusy:
        log.info("another run in progress: skipping this tick")
        tick.record["decision"] = "skipped: another run in progress"
        return tick.finish(0)
    except ConfigError as exc:
        log.error("tick failed: config error: %s; production unchanged", exc)
        print(f"fullprocess: config error: {exc}", file=sys.stderr)
        tick.record.update(error=str(exc), decision="failed (config)")
        return tick.finish(2)
    except PipelineError as exc:
        log.error("tick failed%s: %s; production unchanged",
                  f" in stage {tick.record.get('failed_stage')}" if tick.record.get("failed_stage") else "", exc)
        print(f"fullprocess: error: {exc}", file=sys.stderr)
        tick.record.setdefault("error", str(exc))
        tick.record["decision"] = tick.record.get("decision") or "failed"
        tick.record["decision"] = f"failed ({tick.record['decision']})" if not tick.record["decision"].startswith("failed") else tick.record["decision"]
        return tick.finish(1)
    except ImportError as exc:
        # The no-new-data path needs only the standard library, so a tick run with the wrong
        # interpreter looks healthy until data arrives: say plainly what is wrong.
        reason = f"{exc}: run fullprocess.py with the project's virtualenv ({Path(__file__).parent / '.venv/bin/python'})"
        log.error("tick failed: %s", reason)
        print(f"fullprocess: error: {reason}", file=sys.stderr)
        tick.record.update(error=reason, decision="failed")
        return tick.finish(1)
    except Exception as exc:  # unexpected: keep the traceback in the log, one line on stderr
        log.error("tick failed unexpectedly: %s\n%s", exc, traceback.format_exc())
        print(f"fullprocess: unexpected error: {type(exc).__name__}: {exc} (traceback in {config.log_folder / LOG_FILE})", file=sys.stderr)
        tick.record.setdefault("error", f"{type(exc).__name__}: {exc}")
        tick.record["decision"] = "failed"
        return tick.finish(1)
    return tick.finish(status)


if __name__ == "__main__":
    sys.exit(main())
