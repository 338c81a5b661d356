"""The drift-test registry: what it lists, validates and runs, and a test registered here going through
the config, the tick's drift stage, the alert and the report's rows without any other file changed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from drs import drift_registry, status_views
from drs.alerts.messages import drift_text
from drs.config import DEFAULT_DRIFT, DRIFT_TESTS, ConfigError, load_config
from drs.drift import INSUFFICIENT, ks_test, run_drift_tests, summary
from drs.drift_registry import (
    DriftInputs,
    DriftSettingsError,
    DriftTest,
    Kind,
    Setting,
    positive,
    register_drift_test,
    registered_names,
    report_rows,
    unregister_drift_test,
    validate_settings,
)
from drs.history import TickRecord

COLUMNS = ("lastmonth_activity", "lastyear_activity", "number_of_employees")


def frame(rng, rows, shift=0.0):
    return pd.DataFrame({name: rng.normal(100 + shift, 20, rows) for name in COLUMNS})


def test_the_built_in_tests_and_their_defaults():
    assert (
        DRIFT_TESTS
        == registered_names()
        == (
            "raw",
            "parametric",
            "nonparametric",
            "ks",
            "chi2",
            "psi",
            "label",
            "prediction",
            "estimated",
        )
    )
    assert DEFAULT_DRIFT == {
        "trigger_tests": ["raw"],
        "trigger_mode": "any",
        "ks_pvalue": 0.01,
        "chi2_pvalue": 0.01,
        "psi_bins": 10,
        "psi_watch": 0.1,
        "psi_drift": 0.25,
        "min_samples": 30,
        "min_history": 3,
        "correction": "fdr",
        "large_sample_rows": 1000,
        "wasserstein_threshold": 0.1,
        "jensenshannon_threshold": 0.1,
        "label_pvalue": 0.01,
        "prediction_pvalue": 0.01,
        "estimated_margin": 0.05,
    }
    kinds = {test.name: test.kind for test in drift_registry.drift_tests()}
    assert kinds == {
        "raw": Kind.SCORE,
        "parametric": Kind.SCORE,
        "nonparametric": Kind.SCORE,
        "ks": Kind.NUMERIC,
        "chi2": Kind.CATEGORICAL,
        "psi": Kind.ALL_FEATURES,
        "label": Kind.LABEL,
        "prediction": Kind.PREDICTION,
        "estimated": Kind.SCORE,
    }


def test_listing_and_validating_the_tests_imports_no_numpy():
    code = "import sys, drs.config; drs.config.load_operations(); print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"numpy", "pandas", "scipy"} & set(json.loads(result.stdout.replace("'", '"')))


@pytest.mark.parametrize(
    "given, words",
    [
        ({"ks_pvalue": 5}, "drift.ks_pvalue must be a p-value between 0 and 1, got 5"),
        ({"ks_pvalue": 1}, "drift.ks_pvalue must be a p-value between 0 and 1, got 1"),
        ({"chi2_pvalue": 0}, "drift.chi2_pvalue must be a p-value between 0 and 1, got 0"),
        ({"chi2_pvalue": True}, "drift.chi2_pvalue must be a p-value between 0 and 1, got True"),
        ({"psi_bins": 1}, "drift.psi_bins must be an integer >= 2, got 1"),
        ({"psi_bins": 2.0}, "drift.psi_bins must be an integer >= 2, got 2.0"),
        ({"psi_watch": -0.1}, "drift.psi_watch must be a positive number, got -0.1"),
        ({"psi_drift": float("nan")}, "drift.psi_drift must be a positive number, got nan"),
        ({"psi_watch": 0.3}, "drift.psi_watch must not be above drift.psi_drift"),
        ({"min_samples": 1}, "drift.min_samples must be an integer >= 2, got 1"),
        ({"min_history": "3"}, "drift.min_history must be an integer >= 2, got '3'"),
        ({"trigger_mode": "most"}, 'drift.trigger_mode must be "any" or "all"'),
        ({"trigger_tests": []}, "drift.trigger_tests must be a non-empty list drawn from raw, parametric, "),
        ({"trigger_tests": ["nope"]}, "drift.trigger_tests must be a non-empty list drawn from raw, parametric, "),
        ({"trigger_tests": {"raw": 1}}, "drift.trigger_tests must be a non-empty list"),
        ({"ks_value": 0.1, "bins": 3}, "unknown drift setting(s): bins, ks_value"),
    ],
)
def test_each_invalid_setting_is_named(given, words):
    with pytest.raises(DriftSettingsError) as caught:
        validate_settings(given)
    assert str(caught.value).startswith(words)


def test_valid_settings_get_their_defaults_and_a_single_trigger_test_becomes_a_list():
    settings = validate_settings({"trigger_tests": "ks", "psi_watch": 0.25})
    assert settings == {**DEFAULT_DRIFT, "trigger_tests": ["ks"], "psi_watch": 0.25}
    assert validate_settings({}) == DEFAULT_DRIFT and validate_settings({}) is not DEFAULT_DRIFT


def test_the_config_reports_a_drift_setting_with_its_file(tmp_path):
    folders = {key: key for key in ("input_folder_path", "output_folder_path", "test_data_path")}
    folders.update(output_model_path="m", prod_deployment_path="p")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**folders, "drift": {"psi_bins": 0}}))
    with pytest.raises(ConfigError, match=r"config\.json: drift\.psi_bins must be an integer >= 2, got 0$"):
        load_config(path)
    path.write_text(json.dumps({**folders, "drift": {"trigger_tests": ["raw", "psi"], "trigger_mode": "all"}}))
    assert load_config(path).drift == {**DEFAULT_DRIFT, "trigger_tests": ["raw", "psi"], "trigger_mode": "all"}


def test_the_ks_p_values_are_scipys():
    rng = np.random.default_rng(4)
    reference, new = frame(rng, 700), frame(rng, 300, shift=3)
    result = ks_test(reference, new, 0.01, 30)
    for name in COLUMNS:
        expected = ks_2samp(reference[name].to_numpy(), new[name].to_numpy())
        assert result["features"][name]["pvalue"] == float(expected.pvalue)
        assert result["features"][name]["statistic"] == round(float(expected.statistic), 6)


def test_the_recorded_results_keep_their_keys_in_order():
    rng = np.random.default_rng(5)
    outcome = run_drift_tests(dict(DEFAULT_DRIFT), 0.5, 0.6, [0.6, 0.62, 0.61], frame(rng, 200), frame(rng, 200))
    assert list(outcome) == ["tests", "drift", "trigger"]
    assert list(outcome["trigger"]) == ["tests", "mode", "fired"]
    keys = {name: list(result) for name, result in outcome["tests"].items()}
    assert keys == {
        "raw": ["test", "statistic", "threshold", "verdict", "detail"],
        "parametric": ["test", "statistic", "history_size", "threshold", "verdict", "detail"],
        "nonparametric": ["test", "statistic", "history_size", "threshold", "verdict", "detail"],
        "ks": [
            "test",
            "threshold",
            "features",
            "verdict",
            "pvalue",
            "statistic",
            "detail",
            "adjusted_pvalue",
            "correction",
            "distance_threshold",
            "measure",
            "measure_value",
        ],
        "chi2": ["test", "threshold", "features", "verdict", "pvalue", "statistic", "detail"],
        "psi": ["test", "threshold", "watch", "bins", "features", "verdict", "statistic", "detail"],
        "label": ["test", "verdict", "statistic", "pvalue", "threshold", "samples", "detail"],
        "prediction": ["test", "verdict", "statistic", "pvalue", "threshold", "samples", "detail"],
        "estimated": ["test", "statistic", "threshold", "realized_f1", "verdict", "detail"],
    }
    without = run_drift_tests(dict(DEFAULT_DRIFT), 0.5, 0.6, [], None, frame(rng, 200))
    for name in ("ks", "chi2", "psi", "label", "prediction"):
        assert without["tests"][name] == {
            "test": name,
            "verdict": INSUFFICIENT,
            "statistic": None,
            "threshold": None,
            "detail": "the deployed version has no reference sample of its training data",
        }
    assert summary(without["tests"]["ks"]) == "statistic None, threshold None"
    assert summary(outcome["tests"]["ks"]).startswith("p-value ")


def mean_shift(inputs: DriftInputs, settings: dict) -> dict:
    """A registered test: drift when a numeric feature's mean moved by more than `mean_shift_limit` of its spread."""
    features = {}
    for name in Kind.NUMERIC.features(inputs.schema):
        assert inputs.reference is not None
        reference, new = inputs.reference[name], inputs.new[name]
        shift = abs(new.mean() - reference.mean()) / reference.std()
        verdict = "drift" if shift > settings["mean_shift_limit"] else "no drift"
        features[name] = {"statistic": round(float(shift), 6), "verdict": verdict}
    verdict = "drift" if any(f["verdict"] == "drift" for f in features.values()) else "no drift"
    statistic = max(f["statistic"] for f in features.values())
    threshold = settings["mean_shift_limit"]
    return {
        "test": "mean_shift",
        "statistic": statistic,
        "threshold": threshold,
        "verdict": verdict,
        "features": features,
    }


@pytest.fixture
def mean_shift_registered():
    test = register_drift_test(
        DriftTest(
            "mean_shift",
            Kind.NUMERIC,
            mean_shift,
            (Setting("mean_shift_limit", 0.5, positive, "a positive number"),),
            figures=lambda name, result: f"{name}: means moved by {result['statistic']:.2f} spreads",
        )
    )
    yield test
    unregister_drift_test("mean_shift")


def test_a_test_registered_here_is_validated_listed_run_worded_and_reported(mean_shift_registered):
    assert registered_names()[-1] == "mean_shift"
    settings = validate_settings({"trigger_tests": ["mean_shift"]})
    assert settings["mean_shift_limit"] == 0.5
    with pytest.raises(DriftSettingsError, match="drift.mean_shift_limit must be a positive number, got 0"):
        validate_settings({"mean_shift_limit": 0})
    with pytest.raises(
        DriftSettingsError,
        match="drawn from raw, parametric, nonparametric, ks, chi2, psi, label, prediction, estimated, mean_shift",
    ):
        validate_settings({"trigger_tests": ["nope"]})

    rng = np.random.default_rng(6)
    reference = frame(rng, 500)
    calm = run_drift_tests(settings, 0.9, 0.6, [], reference, frame(rng, 500))
    assert calm["drift"] is False and calm["tests"]["mean_shift"]["verdict"] == "no drift"
    moved = run_drift_tests(settings, 0.9, 0.6, [], reference, frame(rng, 500, shift=20))
    assert moved["drift"] is True and moved["trigger"]["fired"] == ["mean_shift"]
    assert list(moved["tests"]) == [*DRIFT_TESTS, "mean_shift"]
    # A feature test needs the reference sample: without one the registry answers for it.
    without = run_drift_tests(settings, 0.9, 0.6, [], None, frame(rng, 500))
    assert without["tests"]["mean_shift"]["verdict"] == INSUFFICIENT and without["drift"] is False

    text = drift_text({"new_rows": 500, "drift": moved})
    assert (
        f" Drift on 500 new row(s): mean_shift: means moved by {moved['tests']['mean_shift']['statistic']:.2f}" in text
    )
    assert summary(moved["tests"]["mean_shift"]).startswith("statistic ")
    rows = report_rows(moved, str)
    assert [row["test"] for row in rows] == [*DRIFT_TESTS, "mean_shift"]
    assert rows[-1]["trigger"] == "yes" and [f["feature"] for f in rows[-1]["features"]] == list(COLUMNS)


def test_a_name_or_a_setting_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_drift_test(DriftTest("ks", Kind.NUMERIC, mean_shift))
    clash = Setting("min_samples", 10, positive, "a positive number")
    with pytest.raises(ValueError, match="'min_samples' is already defined differently"):
        register_drift_test(DriftTest("clash", Kind.NUMERIC, mean_shift, (clash,)))
    assert "clash" not in registered_names()


def test_the_page_and_the_report_list_tests_in_registration_order_unknown_ones_last():
    rng = np.random.default_rng(7)
    drift = run_drift_tests(
        {**DEFAULT_DRIFT, "trigger_tests": ["raw", "ks"]},
        0.5,
        0.6,
        [0.6, 0.7, 0.65],
        frame(rng, 300),
        frame(rng, 300, 9),
    )
    record = {"start": "x", "drift": json.loads(json.dumps(drift))}
    record["drift"]["tests"] = {"gone": {"verdict": "drift", "statistic": 1.0}, **record["drift"]["tests"]}
    rows = status_views.drift_test_rows(TickRecord.from_json(record))
    assert [row["test"] for row in rows] == [*registered_names(), "gone"]
    ks = next(row for row in rows if row["test"] == "ks")
    assert ks["statistic"].startswith("p ") and ks["threshold"] == "p < 0.0100" and ks["trigger"] == "yes"
    assert ks["features"] and all(row["samples"] == "300 / 300" for row in ks["features"])
