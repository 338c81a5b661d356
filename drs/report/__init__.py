"""Reporting: the deployed model and the pipeline, laid out for people.

* ``save_confusion_matrix()`` writes ``output_model_path/confusionmatrix.png``
  (the course's output): the deployed model on the test data.
* ``write_report()`` writes ``output_model_path/report.pdf``: the deployed
  version, its scores and confusion matrix; summary statistics and missing
  data of the ingested data; the drift tests of the last tick that ran them,
  with distribution plots and the predicted positive rate before and after
  (its histogram when the tick draws the report); the score history; recent ticks with their stage
  durations; ingested and rejected files; outdated packages. A piece that does
  not exist yet (no history, no drift tick, no reference sample) reads
  "no data yet" instead of failing the report.
* ``write_reports()`` writes both, diagnostics.json, then reports.json (the version they describe);
  ``record_failed_rebuild()`` notes in reports.json a rebuild for another version that failed, so a tick
  does not retry it every time (reports.json keeps naming the version the reports still describe).

In layers: ``gather`` reads and computes what the report shows, once; ``drs.figures`` draws it;
``pdf`` lays it out; this module writes the files. The status page shares the history views
(``drs.status_views``) and the score-history figure, not the PDF layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from drs import deploy, diagnostics, score
from drs.config import Config, load_config
from drs.deploy import DeployedModel
from drs.figures import (
    calibration_curve_png,
    confusion_matrix_png,
    distribution_pngs,
    prediction_histogram_png,
    score_history_png,
)
from drs.files import CONFUSION_MATRIX_FILE, REPORT_FILE, REPORTS_RECORD_FILE
from drs.history import TickRecord
from drs.report.gather import ReportData, confusion_matrix_inputs, gather_report_data
from drs.report.pdf import ReportFigures, pdf_bytes
from drs.storage import now_iso, read_json, write_bytes_atomic, write_json_atomic

__all__ = ["record_failed_rebuild", "save_confusion_matrix", "score_model", "write_report", "write_reports"]

log = logging.getLogger("reporting")


def write_reports(
    config: Config,
    deployed: DeployedModel | None = None,
    final_data: pd.DataFrame | None = None,
    test_data: pd.DataFrame | None = None,
    current_tick: TickRecord | None = None,
    drift_inputs: dict | None = None,
) -> list[Path]:
    """Every report of the deployed version: confusionmatrix.png, report.pdf, diagnostics.json,
    then reports.json naming the version they describe (written last: the tick regenerates
    reports whose record names another version than the deployed one); returns their paths but reports.json's.

    Inputs not given are read here; the tick hands on what it has already loaded. The package index is
    asked once for all the reports.
    """
    data = gather_report_data(
        config,
        deployed=deployed,
        final_data=final_data,
        test_data=test_data,
        current_tick=current_tick,
        drift_inputs=drift_inputs,
    )
    assert data.deployed is not None and data.test_data is not None  # read by gather when not given
    # Without labelled test rows there are no scores; drawn from the rows anyway, the confusion matrix fails as before.
    matrix = data.confusion or confusion_matrix_inputs(data.deployed, data.test_data, config.schema)
    confusion_png = confusion_matrix_png(matrix)
    written = [
        _write(config.model_folder / CONFUSION_MATRIX_FILE, confusion_png),
        _write(config.model_folder / REPORT_FILE, pdf_bytes(data, draw_figures(data, confusion_png))),
    ]
    report = diagnostics.diagnostics_report(
        config, data.deployed, data.final_data, data.test_data, data.packages, current_tick
    )
    written.append(diagnostics.write_diagnostics(config, report))
    write_json_atomic(
        config.model_folder / REPORTS_RECORD_FILE,
        {"version": data.deployed.version, "written": now_iso(), "files": [path.name for path in written]},
    )
    return written


def record_failed_rebuild(config: Config, version: str, error: str) -> dict:
    """Note in reports.json that rebuilding the reports for `version` failed with `error`; returns the record.

    The version the reports describe stays as it was: they still describe it, whole (each file is
    replaced in one rename). A later write_reports() drops the note.
    """
    record = read_json(config.model_folder / REPORTS_RECORD_FILE)
    # A layout error quotes the cell that did not fit: the start says enough.
    record["failed"] = {"version": version, "time": now_iso(), "error": error[:500]}
    write_json_atomic(config.model_folder / REPORTS_RECORD_FILE, record)
    return record


def write_report(
    config: Config,
    current_tick: TickRecord | None = None,
    deployed: DeployedModel | None = None,
    final_data: pd.DataFrame | None = None,
    test_data: pd.DataFrame | None = None,
    packages: list[dict] | None = None,
    deployed_problem: str | None = None,
    drift_inputs: dict | None = None,
) -> Path:
    """Write ``output_model_path/report.pdf`` atomically from the data given; returns its path.

    A missing piece (None) is shown as "no data yet" (the outdated packages are asked of the package
    index). `current_tick` is the history record of a tick still running, shown as the newest tick:
    its own line reaches history.jsonl only when it ends. `drift_inputs` ({"version", "reference",
    "new"}) are the frames that tick's drift tests compared, plotted per feature.
    """
    data = gather_report_data(
        config,
        deployed=deployed,
        final_data=final_data,
        test_data=test_data,
        current_tick=current_tick,
        drift_inputs=drift_inputs,
        packages=packages,
        deployed_problem=deployed_problem,
        read_missing=False,
    )
    return _write(config.model_folder / REPORT_FILE, pdf_bytes(data, draw_figures(data)))


def draw_figures(data: ReportData, confusion_png: bytes | None = None) -> ReportFigures:
    """The report's figures from its data; `confusion_png` is the confusion matrix when already drawn.

    The confusion matrix is drawn only beside the scores, the distributions only for a drift tick
    with both frames, the prediction histogram only from the frames that tick handed on.
    """
    if data.scores is None or data.confusion is None:
        confusion_png = None
    elif confusion_png is None:
        confusion_png = confusion_matrix_png(data.confusion)
    plotted = data.distributions
    distributions = (
        distribution_pngs(plotted.reference, plotted.new, f"training data of {plotted.reference_version}", data.schema)
        if plotted is not None
        else []
    )
    calibration = calibration_curve_png(data.calibration) if data.calibration is not None else None
    predictions = prediction_histogram_png(data.predictions) if data.predictions is not None else None
    return ReportFigures(confusion_png, score_history_png(data.deployments), distributions, calibration, predictions)


def save_confusion_matrix(config: Config, deployed: DeployedModel, test_data: pd.DataFrame) -> Path:
    """Write the deployed model's confusion matrix on the test data to confusionmatrix.png; returns its path."""
    matrix = confusion_matrix_inputs(deployed, test_data, config.schema)
    return _write(config.model_folder / CONFUSION_MATRIX_FILE, confusion_matrix_png(matrix))


def score_model(config: Config | None = None) -> Path:
    """The course's name for this stage: write the confusion matrix of the deployed model."""
    config = config or load_config()
    return save_confusion_matrix(config, deploy.load_deployed_model(config.prod_folder), score.load_test_data(config))


def _write(target: Path, content: bytes) -> Path:
    write_bytes_atomic(target, content)
    log.info("wrote %s", target)
    return target
