"""Deployment: promote the trained model, its score and the ingested-file record.

``store_model_into_pickle()`` publishes ``trainedmodel.pkl`` and ``latestscore.txt``
(from ``output_model_path``) and ``ingestedfiles.txt`` (from ``output_folder_path``)
as a new production version with its manifest, and switches production to it in
one atomic step (the production store, drs.production, owns the layout). The course
file names in ``prod_deployment_path`` always show the deployed version. The last
``keep_versions`` versions are kept; ``--rollback [VERSION]`` switches back, then rewrites the
reports for the version it switched to (``reports_after_rollback``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from drs.config import Config, PipelineError, load_config
from drs.files import (
    CALIBRATOR_FILE,
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    MODEL_FILE,
    MODEL_RECORD_FILE,
    REFERENCE_SAMPLE_FILE,
    REPORTS_RECORD_FILE,
    SCORE_FILE,
    TRAINING_ROWS_FILE,
)
from drs.history import Decision, HistoryLog, TickRecord
from drs.ingest import read_final_data, row_keys
from drs.production import (
    ANY_VERSION,
    CHECKPOINTS,
    DeployedModel,
    ModelUnavailable,
    ProductionChanged,
    model_config_of,
    open_production,
    production_store,
    schema_crossing,
)
from drs.storage import fingerprint_files, list_input_csvs, read_json, sha256_file
from drs.train import read_trained_calibrator_bytes, read_trained_model_bytes

__all__ = [
    "CHECKPOINTS",
    "DeployedModel",
    "ModelUnavailable",
    "ProductionChanged",
    "deploy",
    "deployed_score_history",
    "deployment_history",
    "load_deployed_model",
    "reports_after_rollback",
    "rollback",
    "store_model_into_pickle",
]

log = logging.getLogger("deployment")

# Published beside the model when training's output has them; the others are required.
OPTIONAL_FILES = (INGESTED_DETAIL_FILE, REFERENCE_SAMPLE_FILE)


def store_model_into_pickle(config: Config | None = None, note: str = "") -> str:
    """Publish the trained model as a new production version; returns its id (e.g. "v0004")."""
    return deploy(config or load_config(), note=note)["version"]


def deploy(
    config: Config,
    note: str = "",
    expected_current: str | None = ANY_VERSION,
    data=None,
) -> dict:
    """store_model_into_pickle, returning the new version's manifest.

    Only the model that training.py wrote (its sha256 is in trainedmodel.json)
    is published, with the score scoring.py gave it and the ingestion record
    it was trained from. `data` is the ingested data the model was trained on
    (read from finaldata.csv when not given): a key of each of its rows is
    kept with the version, so later ticks can tell new rows from ones it saw.
    With `expected_current` (a version, or None for an empty production),
    ProductionChanged is raised and nothing deployed when production no longer
    serves that version.
    """
    # Read once and checked against training's record: these exact bytes are what is published.
    model_bytes = read_trained_model_bytes(config, "cannot deploy")
    sources = _training_outputs(config)
    f1 = _read_score(sources[SCORE_FILE])
    record = read_json(config.model_folder / MODEL_RECORD_FILE)
    _check_belongs_to_model(config, record, f1, sources)
    files = {MODEL_FILE: model_bytes, **{name: path.read_bytes() for name, path in sources.items()}}
    calibrator = read_trained_calibrator_bytes(config, "cannot deploy")
    if calibrator is not None:
        files[CALIBRATOR_FILE] = calibrator
    keys = _training_row_keys(config, data)
    if keys is not None:
        files[TRAINING_ROWS_FILE] = keys
    fields = {
        "training_files": _training_files(sources),
        "scores": {"f1": f1},
        "note": note,
        # What the model takes: a tick retrains when the config's schema no longer matches.
        "schema": config.schema.as_record(),
    }
    if isinstance(record.get("model_config"), dict):
        # What the model was fitted with (a model trained before this was recorded: unknown, left out).
        fields["model_config"] = record["model_config"]
    if isinstance(record.get("calibration"), dict):
        # How well the calibrator the drift test "estimated" uses fits, or why there is none.
        fields["calibration"] = record["calibration"]
    if isinstance(record.get("fit_warnings"), list):
        # What its fit warned about (a ConvergenceWarning...), shown beside the deployed model.
        fields["fit_warnings"] = record["fit_warnings"]
    store = production_store(config)
    manifest, removed = store.publish(files, fields, expected_current, config.keep_versions)
    log.info(
        "deployed %s (F1 %.4f) to %s%s",
        manifest["version"],
        f1,
        store.location,
        f"; pruned {', '.join(removed)}" if removed else "",
    )
    return manifest


def _training_outputs(config: Config) -> dict[str, Path]:
    """The files training's stages wrote that a version publishes: {published name: where it is now}."""
    sources = {
        SCORE_FILE: config.model_folder / SCORE_FILE,
        INGESTED_RECORD_FILE: config.output_folder / INGESTED_RECORD_FILE,
        INGESTED_DETAIL_FILE: config.output_folder / INGESTED_DETAIL_FILE,
        REFERENCE_SAMPLE_FILE: config.output_folder / REFERENCE_SAMPLE_FILE,
    }
    for name, path in list(sources.items()):
        if not path.is_file():
            if name not in OPTIONAL_FILES:
                raise PipelineError(f"cannot deploy: {path} not found")
            sources.pop(name)
    return sources


def _training_files(sources: dict[str, Path]) -> dict[str, dict]:
    """{name: {sha256, rows}} of the input files the model was trained on, for the manifest."""
    if INGESTED_DETAIL_FILE in sources:
        detail = read_json(sources[INGESTED_DETAIL_FILE])
        return {name: {"sha256": f["sha256"], "rows": f.get("rows")} for name, f in detail.get("files", {}).items()}
    # An ingestion that kept only the course's record: the names, without fingerprints.
    names = [n.strip() for n in sources[INGESTED_RECORD_FILE].read_text().splitlines() if n.strip()]
    return {name: {} for name in names}


def _read_score(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except FileNotFoundError:
        raise PipelineError(f"no score at {path}: run scoring.py first") from None
    except ValueError:
        raise PipelineError(f"{path} does not hold a number") from None


def _check_belongs_to_model(config: Config, record: dict, f1: float, sources: dict[str, Path]) -> None:
    """Refuse to publish a score or an ingestion record that is not the trained model's own."""
    if record.get("f1") is None or abs(float(record["f1"]) - f1) > 1e-12:
        raise PipelineError(
            f"cannot deploy: {config.model_folder / SCORE_FILE} is not the score of the model "
            "training.py last wrote: run scoring.py first"
        )
    ingested = record.get("ingested_sha256")
    detail = sources.get(INGESTED_DETAIL_FILE)
    if ingested and (detail is None or sha256_file(detail) != ingested):
        raise PipelineError(
            f"cannot deploy: the ingested data in {config.output_folder} changed since the model was "
            "trained (ingestion.py ran after training.py): run training.py and scoring.py first"
        )


def _training_row_keys(config: Config, data) -> bytes | None:
    """The .npy bytes of a key of each training row, or None when the ingested data cannot be read."""
    if data is None:
        try:
            data = read_final_data(config)
        except PipelineError:
            return None
    buffer = io.BytesIO()
    np.save(buffer, row_keys(data))
    return buffer.getvalue()


def rollback(config: Config | None = None, version: str | None = None) -> str:
    """Switch production to `version`, or to the version that served before the current one; returns it."""
    config = config or load_config()
    store = production_store(config)
    # The config's estimator and parameters stay held back against the version rolled back to: a tick does not
    # retrain for them (a person who wants that changes the config).
    record = store.roll_back(version, lambda: _input_fingerprints(config), model_config_of(config))
    version = record["version"]
    # The run history shows rollbacks beside the ticks, so `fullprocess.py --status` tells the whole story.
    try:
        HistoryLog.of(config).append(
            TickRecord(
                start=record["time"],
                end=record["time"],
                seconds=0.0,
                decision=Decision.ROLLBACK,
                rolled_back_from=record["previous"],
                deployed_version=version,
                exit_status=0,
            )
        )
    except OSError as exc:  # production has switched and deployments.jsonl says so: that stands
        log.warning("rolled back to %s, but could not add it to the run history: %s", version, exc)
    log.info("rolled back %s to %s", store.location, version)
    crossing = schema_crossing(store, version, record["previous"], config.schema.as_record())
    if crossing:
        log.warning("%s", crossing)
    return version


def reports_after_rollback(config: Config, version: str) -> str | None:
    """Rewrite the reports for `version`, the one a rollback switched to; None when done, else one line
    saying they are stale and why. The rollback stands either way."""
    from drs import report  # pandas, matplotlib, reportlab: paid by a rollback, never by the API or a tick's import

    try:
        report.write_reports(config)
    except Exception as exc:  # whatever broke the reports, production has switched: say it, do not fail
        described = read_json(config.model_folder / REPORTS_RECORD_FILE).get("version") or "no version"
        error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        log.debug("rebuilding the reports failed", exc_info=True)
        return f"the reports are stale: they describe {described}, not {version} ({error}); the next tick tries again"
    return None


def _input_fingerprints(config: Config) -> list[dict]:
    """[{name, sha256, size, mtime_ns}] of the config's input files now ([] without an input folder)."""
    with contextlib.suppress(PipelineError):
        prints = fingerprint_files(list_input_csvs(config.input_folder), max_bytes=config.max_input_file_bytes)
        return [{"name": name, **info} for name, info in prints.items()]
    return []


def deployment_history(config: Config) -> list[dict]:
    """Every deploy and rollback recorded in production, oldest first."""
    return production_store(config).deployment_log()


def deployed_score_history(config: Config) -> list[float]:
    """Test F1 of every deployment made (not rollbacks), oldest first; a record without a number is skipped."""
    return [
        float(r["f1"])
        for r in deployment_history(config)
        if r.get("action") == "deploy" and isinstance(r.get("f1"), (int, float)) and not isinstance(r["f1"], bool)
    ]


def load_deployed_model(prod_folder: Path | str) -> DeployedModel:
    """The course's name: the model deployed in `prod_folder`, checked against its manifest
    (ModelUnavailable when none is deployed or it fails the check)."""
    return open_production(prod_folder).load_model()
