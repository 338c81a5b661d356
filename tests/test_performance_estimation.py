"""F1 estimated without labels (CBPE): the expected confusion matrix on constructed probabilities, the
calibration learned at training time and published with the version, and a tick on unlabelled rows."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import SUBSCRIPTIONS_SCHEMA, Project, client_for
from pypdf import PdfReader
from sklearn.metrics import f1_score

from drs import train
from drs.config import COURSE_SCHEMA, load_config
from drs.deploy import DeployedModel
from drs.drift_registry import DRIFT, INSUFFICIENT, NO_DRIFT, DriftInputs, DriftSettingsError, validate_settings
from drs.figures import calibration_curve_png
from drs.files import CALIBRATOR_FILE, MODEL_RECORD_FILE
from drs.performance_estimation import estimated_f1, expected_confusion, f1_of_confusion, run_estimated
from drs.production import LocalProductionStore, ModelUnavailable
from drs.report.gather import ReportData, gather_report_data
from drs.report.pdf import ReportFigures, pdf_bytes
from drs.train import calibration_skip_reason, feature_matrix, fit_calibration, fit_model, save_model
from generate_data import generate, generate_categorical

SETTINGS = {"estimated_margin": 0.05}


# --- the arithmetic ---------------------------------------------------------------


def test_the_expected_confusion_matrix_sums_the_probabilities_by_predicted_label():
    confusion = expected_confusion(np.array([0.9, 0.6, 0.2, 0.1]), np.array([True, True, False, False]))
    assert confusion == pytest.approx({"tp": 1.5, "fp": 0.5, "fn": 0.3, "tn": 1.7})
    assert f1_of_confusion(confusion) == pytest.approx(3.0 / (3.0 + 0.5 + 0.3))


def test_f1_is_undefined_when_no_positive_is_expected_nor_predicted():
    assert estimated_f1(np.zeros(5), np.zeros(5, dtype=bool)) is None


def test_on_perfectly_calibrated_probabilities_the_estimate_is_the_realized_f1():
    rng = np.random.default_rng(3)
    for skew in (1.0, 3.0):  # balanced, then positives rare
        probabilities = rng.random(200_000) ** skew
        labels = rng.random(probabilities.size) < probabilities  # each row positive with its probability
        predicted = probabilities >= 0.4
        assert abs(estimated_f1(probabilities, predicted) - f1_score(labels, predicted)) < 0.03


# --- the drift test on a real model -------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(config, model, calibration) fitted on 700 generated practice rows."""
    config = load_config(Project(tmp_path_factory.mktemp("fitted")).write_config())
    data = generate(700, "practice", seed=1)
    return config, fit_model(data, config), fit_calibration(data, config)


def inputs(new: pd.DataFrame, model=None, calibrator=None, calibration=None, new_f1=None) -> DriftInputs:
    return DriftInputs(new_f1, 0.7, [], None, new, COURSE_SCHEMA, model, calibrator, calibration)


def test_the_estimate_uses_the_calibrator_and_records_the_realized_f1(fitted):
    _, model, calibration = fitted
    new = generate(3000, "practice", seed=2)
    realized = f1_score(new["exited"], model.predict(feature_matrix(new)))
    result = run_estimated(inputs(new, model, calibration.calibrator, calibration.record, realized), SETTINGS)
    assert result["probabilities"] == "calibrated" and result["rows"] == 3000
    assert result["realized_f1"] == round(realized, 6) and result["threshold"] == pytest.approx(0.65)
    # Same population as the training rows: the labels the estimate never saw agree with it.
    assert abs(result["statistic"] - realized) < 0.05
    assert result["verdict"] == (DRIFT if result["statistic"] < 0.65 else NO_DRIFT)
    strict = run_estimated(inputs(new, model, calibration.calibrator, calibration.record), {"estimated_margin": 0})
    assert strict["realized_f1"] is None and strict["threshold"] == pytest.approx(0.7)


def test_without_a_calibration_the_raw_probabilities_are_used_and_said(fitted):
    _, model, _ = fitted
    new = generate(200, "practice", seed=4)
    skipped = {"calibrated": False, "reason": "40 labelled row(s), fewer than 100"}
    result = run_estimated(inputs(new, model, None, skipped), SETTINGS)
    assert result["probabilities"] == "raw" and isinstance(result["statistic"], float)
    assert "raw probabilities" in result["detail"] and "fewer than 100" in result["detail"]


@pytest.mark.parametrize(
    ("has_model", "calibration", "words"),
    [
        (False, None, "no deployed model"),
        (True, None, "no probability calibration"),
        (True, {"calibrated": True, "method": "sigmoid"}, "could not be loaded"),
    ],
)
def test_without_what_it_needs_the_estimate_is_insufficient_data_with_the_reason(fitted, has_model, calibration, words):
    model = fitted[1] if has_model else None
    result = run_estimated(inputs(generate(50, "practice", seed=5), model, None, calibration), SETTINGS)
    assert result["verdict"] == INSUFFICIENT and result["statistic"] is None and words in result["detail"]


def test_the_margin_is_a_registered_setting_checked_by_the_config():
    assert validate_settings({})["estimated_margin"] == 0.05
    with pytest.raises(DriftSettingsError, match="drift.estimated_margin"):
        validate_settings({"estimated_margin": -0.1})


# --- calibration at training time ---------------------------------------------------


def test_too_few_rows_or_a_rare_class_in_the_held_out_part_skip_calibration():
    assert "fewer than 100" in calibration_skip_reason(np.zeros(99), None, 1)
    held_out = np.array([1] * 9 + [0] * 100)
    assert "a class has 9 row(s)" in calibration_skip_reason(np.zeros(400), held_out, 1)
    assert calibration_skip_reason(np.zeros(400), np.array([1] * 10 + [0] * 90), 1) is None


def test_calibration_on_few_rows_is_skipped_with_the_reason(fitted):
    config = fitted[0]
    calibration = fit_calibration(generate(60, "practice", seed=6), config)
    assert calibration.calibrator is None
    assert calibration.record == {"calibrated": False, "reason": "60 labelled row(s), fewer than 100"}


def test_the_calibration_record_holds_brier_scores_and_the_curve(fitted):
    record = fitted[2].record
    assert record["calibrated"] and record["method"] == "sigmoid" and record["held_out_rows"] == 175
    assert 0 < record["brier_before"] < 0.25 and 0 < record["brier_after"] < 0.25
    for curve in record["curve"].values():
        assert 1 <= len(curve["mean_predicted"]) == len(curve["fraction_positive"]) <= 10
        assert all(0 <= value <= 1 for value in curve["mean_predicted"] + curve["fraction_positive"])


def test_a_text_target_is_calibrated_too(project):
    # "Yes"/"No" labels: scikit-learn's cross_val_predict would hand the calibrator integers instead.
    project.write_config(schema=SUBSCRIPTIONS_SCHEMA)
    config = project.config()
    data = generate_categorical(800, "practice", 31)
    calibration = fit_calibration(data, config)
    assert calibration.record["calibrated"], calibration.record
    probabilities = calibration.calibrator.predict_proba(feature_matrix(data, config.schema))
    assert list(calibration.calibrator.classes_) == ["No", "Yes"] and probabilities.shape == (800, 2)
    assert 0 < calibration.record["brier_after"] < 0.25


def test_beyond_the_row_cap_a_stratified_sample_is_calibrated_on(fitted, monkeypatch):
    monkeypatch.setattr(train, "CALIBRATION_MAX_ROWS", 400)
    record = fit_calibration(generate(700, "practice", seed=1), fitted[0]).record
    assert record["calibrated"] and record["held_out_rows"] == 100


def test_a_model_saved_without_a_calibrator_removes_an_older_one(fitted, tmp_path):
    config, model, calibration = fitted
    save_model(model, config, calibration=calibration)
    assert (config.model_folder / CALIBRATOR_FILE).is_file()
    save_model(model, config, calibration=fit_calibration(generate(60, "practice", seed=6), config))
    assert not (config.model_folder / CALIBRATOR_FILE).exists()
    record = json.loads((config.model_folder / MODEL_RECORD_FILE).read_text())
    assert record["calibrator_sha256"] is None and record["calibration"]["calibrated"] is False


def test_a_bootstrap_publishes_the_calibrator_and_records_its_quality(deployed):
    store = LocalProductionStore(deployed.path("production_deployment"))
    version = store.current_version()
    manifest = store.manifest(version)
    assert CALIBRATOR_FILE in manifest["files"]
    assert manifest["calibration"]["calibrated"] is True and "brier_after" in manifest["calibration"]
    calibrator = store.load_calibrator(version)
    deployed_model = store.load_model().model
    features = feature_matrix(generate(20, "practice", seed=8))
    assert calibrator.predict_proba(features).shape == (20, 2)
    # The model that serves is the one fitted on every labelled row, not the calibrator's copy.
    assert pickle.dumps(deployed_model) != pickle.dumps(calibrator.estimator.estimator)


def test_a_tampered_calibrator_is_refused_before_it_is_unpickled(deployed):
    store = LocalProductionStore(deployed.path("production_deployment"))
    version = store.current_version()
    path = deployed.path("production_deployment", "versions", version, CALIBRATOR_FILE)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelUnavailable, match="integrity check"):
        store.load_calibrator(version)


# --- the report ------------------------------------------------------------------------


def report_text(calibration: dict | None, figures: ReportFigures) -> str:
    deployed = DeployedModel(model=None, manifest={"version": "v0001", "calibration": calibration})
    data = ReportData("config.json", COURSE_SCHEMA, "2024-05-01 10:00 UTC", deployed=deployed, calibration=calibration)
    reader = PdfReader(io.BytesIO(pdf_bytes(data, figures)))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_the_report_shows_the_calibration_quality_and_curve(fitted):
    record = fitted[2].record
    png = calibration_curve_png(record)
    assert png is not None and png.startswith(b"\x89PNG")
    text = report_text(record, ReportFigures(calibration_curve=png))
    assert "Probability calibration Calibrated (sigmoid) on 175 labelled rows held out of training" in text
    assert f"before calibration {record['brier_before']:.4f} after calibration {record['brier_after']:.4f}" in text
    skipped = {"calibrated": False, "reason": "60 labelled row(s), fewer than 100"}
    assert calibration_curve_png(skipped) is None
    assert "Not calibrated (60 labelled row(s), fewer than 100): F1 without labels is estimated from the raw" in (
        report_text(skipped, ReportFigures())
    )


def test_the_report_data_carry_the_deployed_calibration(deployed):
    config = deployed.config()
    data = gather_report_data(config, packages=[])
    assert data.calibration is not None and data.calibration["calibrated"] is True


# --- a tick on new rows without labels ----------------------------------------------


def test_a_tick_on_unlabelled_rows_records_the_estimated_f1(deployed):
    new = generate(1500, "practice", seed=9)
    new.assign(exited=None).to_csv(deployed.path("practicedata", "dataset3.csv"), index=False)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    record = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    estimated = record["drift"]["tests"]["estimated"]
    assert estimated["probabilities"] == "calibrated" and estimated["rows"] == 1500
    assert estimated["realized_f1"] is None and record["scores"]["new_data_f1"] is None
    assert record["scores"]["estimated_f1"] == estimated["statistic"]
    # The labels held back agree with the estimate made without them.
    model = LocalProductionStore(deployed.path("production_deployment")).load_model().model
    realized = f1_score(new["exited"], model.predict(feature_matrix(new)))
    assert abs(estimated["statistic"] - realized) < 0.05
    # The status page shows it beside the realized F1, which waits for the labels.
    page = client_for(deployed).get("/").get_data(as_text=True)
    table = page[page.index('<table id="estimates">') :]
    table = table[: table.index("</table>")]
    assert f"{estimated['statistic']:.4f}" in table and "awaiting labels" in table and "calibrated" in table


def test_a_tick_with_a_damaged_calibrator_still_judges_drift_and_says_why_it_cannot_estimate(deployed):
    store = LocalProductionStore(deployed.path("production_deployment"))
    path = deployed.path("production_deployment", "versions", store.current_version(), CALIBRATOR_FILE)
    path.write_bytes(b"not the calibrator")
    generate(300, "practice", seed=10).to_csv(deployed.path("practicedata", "dataset3.csv"), index=False)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    record = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    estimated = record["drift"]["tests"]["estimated"]
    assert estimated["verdict"] == INSUFFICIENT and "could not be loaded" in estimated["detail"]
    assert record["scores"]["estimated_f1"] is None and isinstance(record["scores"]["new_data_f1"], float)
    assert estimated["realized_f1"] == round(record["scores"]["new_data_f1"], 6)
    assert "fails its integrity check" in deployed.path("logs", "fullprocess.log").read_text()
