"""The costly half of a tick: ingesting, judging drift, retraining, deploying, reporting, calling the API.

drs/tick.py imports this module only once a tick has new data to weigh (or reports to rebuild), so
the common no-new-data tick never pays for pandas, scikit-learn, matplotlib or reportlab. Each
function takes the tick (for its stage timings and record) and returns what the next step needs.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from drs import report as reporting
from drs.api_client import api_listening, call_api, save_api_returns, shown_url
from drs.config import Config, PipelineError
from drs.deploy import DeployedModel, ProductionChanged, deploy, deployed_score_history
from drs.drift import summary
from drs.drift_registry import INSUFFICIENT, DriftInputs, run_registered
from drs.ingest import IngestionResult, merge_multiple_dataframe, read_final_data, row_keys
from drs.production import ModelUnavailable, ProductionStore, production_store
from drs.score import all_positive_f1, f1_on, load_test_data, save_score
from drs.train import calibration_summary, check_training_parameters, fit_calibration, fit_model, save_model

if TYPE_CHECKING:
    from drs.tick import Tick

log = logging.getLogger("fullprocess")


def new_rows(training_row_keys: bytes | None, deployed: dict, ingestion, usable: list[str]):
    """The rows of the usable new files that the deployed model was not trained on
    (`training_row_keys`: the deployed version's trainingrows.npy).

    Drift is judged on these alone: history diluting them would hide a shift, and a file
    that grew (or a cumulative export replacing one) brings only its added rows.
    """

    candidates = ingestion.rows_from(usable)
    if training_row_keys is not None:
        seen = np.load(io.BytesIO(training_row_keys))
    else:  # a version deployed before row keys were kept: the unchanged files it was trained on tell
        trained = {f.get("sha256") for f in (deployed.get("training_files") or {}).values()}
        seen = row_keys(ingestion.rows_from([name for name, f in ingestion.ingested.items() if f["sha256"] in trained]))
    return candidates[~np.isin(row_keys(candidates), seen)].reset_index(drop=True)


def ingest(config: Config, tick: Tick) -> IngestionResult:

    # A tick that may retrain checks the training settings first, not after ingesting.
    check_training_parameters(config)
    with tick.stage("ingest"):
        result = merge_multiple_dataframe(config)
    tick.record.rejected_files = result.rejected
    tick.record.rows = {"read": result.rows_read, "unique": result.rows}
    return result


def check_drift(config: Config, tick: Tick, new_rows: pd.DataFrame) -> tuple[dict, dict]:
    """Run the drift tests on the new rows; returns (verdict, the frames compared, for the report)."""

    with tick.stage("drift"):
        store = production_store(config)
        model = store.load_model()
        labelled = new_rows[config.schema.target_column].notna().any()
        new_f1 = f1_on(model.model, new_rows, config.schema) if labelled else None
        if model.f1 is None:
            raise PipelineError(f"{model.version}'s manifest records no test F1: cannot judge drift")
        deployed_f1 = model.f1
        sample = store.reference_sample(model.version)
        reference = read_final_data(config, io.BytesIO(sample)) if sample is not None else None
        calibrator, calibration = _deployed_calibrator(store, model)
        inputs = DriftInputs(
            new_f1,
            deployed_f1,
            deployed_score_history(config),
            reference,
            new_rows,
            config.schema,
            model=model.model,
            calibrator=calibrator,
            calibration=calibration,
        )
        verdict = run_registered(inputs, config.drift)
    estimated = verdict["tests"].get("estimated", {}).get("statistic")
    tick.record.scores = {"deployed_f1": deployed_f1, "new_data_f1": new_f1, "estimated_f1": estimated}
    tick.record.drift = verdict
    for name, test in verdict["tests"].items():
        log.info("drift test %s: %s -> %s", name, summary(test), test["verdict"])
    log.info(
        "deployed model %s: F1 %.4f on its test data, %s on the %d new row(s), %s estimated without labels; drift: %s",
        model.version,
        deployed_f1,
        f"{new_f1:.4f}" if new_f1 is not None else "n/a (no labels)",
        len(new_rows),
        f"{estimated:.4f}" if estimated is not None else "n/a",
        "yes" if verdict["drift"] else "no",
    )
    unjudged = unjudged_triggers(verdict)
    if unjudged:
        tick.record.warning = unjudged
        log.warning("%s", unjudged)
    return verdict, {"version": model.version, "reference": reference, "new": new_rows}


def unjudged_triggers(verdict: dict) -> str | None:
    """Words for a drift verdict none of whose trigger tests could judge the new rows (each "insufficient
    data"): "no drift" then means no test looked, which the record must say. None otherwise."""
    tests, chosen = verdict.get("tests", {}), verdict.get("trigger", {}).get("tests", [])
    if not chosen or any((tests.get(name) or {}).get("verdict") != INSUFFICIENT for name in chosen):
        return None
    reasons = "; ".join(f"{name}: {(tests.get(name) or {}).get('detail') or 'no reason recorded'}" for name in chosen)
    return f"no trigger test could judge the new rows ({reasons}): recorded as no drift without a verdict"


def _deployed_calibrator(store: ProductionStore, model: DeployedModel) -> tuple[object | None, dict | None]:
    """(the deployed version's calibrator or None, its manifest's calibration record); a damaged
    calibrator is logged and left out: the drift test "estimated" then says it cannot estimate."""
    try:
        return store.load_calibrator(model.version), model.calibration
    except ModelUnavailable as exc:
        log.warning("%s: F1 is not estimated without labels", exc)
        return None, model.calibration


def retrain_and_deploy(
    config: Config,
    tick: Tick,
    data: pd.DataFrame,
    deployed: dict | None,
    note: str,
    drift_inputs: dict | None = None,
    guard: bool = True,
) -> tuple[str, str | None]:
    """Train, score, deploy (unless the promotion guard says no), report.

    Returns (outcome, version serving afterwards), outcome a drs.tick_decision.RetrainOutcome value.
    """
    kept = deployed["version"] if deployed else None
    model, test_data, test_f1 = _train_and_score(config, tick, data)
    if guard and deployed is not None and config.promotion_margin is not None:
        refusal = _promotion_refusal(tick, test_f1, deployed, config.promotion_margin)
        if refusal is not None:
            log.warning("promotion guard: %s; keeping %s", refusal, kept)
            return "not promoted", kept
    with tick.stage("deploy"):
        try:
            manifest = deploy(config, note=note, expected_current=kept, data=data)
        except ProductionChanged as exc:
            # A person switched production (a rollback) while this tick worked: theirs stands.
            log.warning("%s", exc)
            tick.record.not_deployed = str(exc)
            return "production changed", production_store(config).current_version()
    version = manifest["version"]
    # From here production serves the new version, whatever fails next.
    tick.record.deployed_version = version
    tick.record.deployed_by_tick = True
    new_model = DeployedModel(model=model, manifest=manifest)
    with tick.stage("report"):
        # This tick's history line is appended only when it ends: the report gets the record so far.
        reporting.write_reports(config, new_model, data, test_data, current_tick=tick.record, drift_inputs=drift_inputs)
    try:
        call_the_api(config, tick)
    except PipelineError as exc:
        # The API is a service of its own: its answer is recorded, the redeploy stands.
        log.warning("the API answered badly after the redeploy: %s", exc)
        tick.record.apicalls_error = str(exc)
    return "deployed", version


def _train_and_score(config: Config, tick: Tick, data: pd.DataFrame) -> tuple[object, pd.DataFrame, float]:
    """(the retrained model, the test data, its F1 on it), both written to output_model_path."""
    fit_warnings: list[str] = []
    with tick.stage("train"):
        model = fit_model(data, config, warnings_out=fit_warnings)
        calibration = fit_calibration(data, config)  # only for estimating F1 without labels
        rows = int(data[config.schema.target_column].notna().sum())
        save_model(model, config, rows=rows, calibration=calibration, fit_warnings=fit_warnings)
        log.info("%s", calibration_summary(calibration.record))
    tick.record.warnings = fit_warnings or None
    with tick.stage("score"):
        test_data = load_test_data(config)
        test_f1 = f1_on(model, test_data, config.schema)
        save_score(config, test_f1)
    floor = all_positive_f1(test_data, config.schema)
    tick.record.scores.update(retrained_test_f1=test_f1, all_positive_f1=round(floor, 6))
    log.info("retrained model: F1 %.4f on the test data", test_f1)
    if test_f1 <= floor:
        # Deployed all the same (a bootstrap has nothing better), but nobody should miss it.
        tick.record.warning = (
            f"the retrained model's F1 {test_f1:.4f} is no better than calling every row "
            f"{config.schema.positive_label!r} ({floor:.4f}): check the estimator and its parameters"
        )
        log.warning("%s", tick.record.warning)
    return model, test_data, test_f1


def _promotion_refusal(tick: Tick, test_f1: float, deployed: dict, margin: float) -> str | None:
    """Why the promotion guard keeps the deployed model, or None to deploy; recorded in the tick either way."""
    deployed_f1 = float(deployed.get("scores", {}).get("f1", 0.0))
    promote = test_f1 >= deployed_f1 - margin
    tick.record.promotion = {
        "deployed_test_f1": deployed_f1,
        "retrained_test_f1": test_f1,
        "margin": margin,
        "promoted": promote,
    }
    if promote:
        return None
    reason = f"retrained F1 {test_f1:.4f} is below the deployed {deployed_f1:.4f} minus margin {margin:g}"
    tick.record.promotion["reason"] = reason
    return reason


def call_the_api(config: Config, tick: Tick) -> None:
    # Both bounded in all (a connection within 1 s, every call within api_timeout_seconds): a
    # slow or stalled peer on api_url must not hold the deploying tick and its lock.
    if not api_listening(config.api_url):
        log.info("no API at %s: skipped apicalls (diagnostics.json was written in process)", shown_url(config.api_url))
        return
    with tick.stage("apicalls"):
        path = save_api_returns(config, call_api(config))
    log.info("API at %s answered; wrote %s", shown_url(config.api_url), path)
