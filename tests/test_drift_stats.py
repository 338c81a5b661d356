"""The label and prediction drift tests, the multiple-testing correction of the per-feature tests, and
the distances that decide on big batches (where a p-value calls the least shift drift)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, false_discovery_control, wasserstein_distance
from sklearn.linear_model import LogisticRegression

from drs.alerts.messages import drift_text
from drs.config import DEFAULT_DRIFT, FEATURE_COLUMNS, Schema
from drs.drift import (
    INSUFFICIENT,
    adjust_pvalues,
    chi2_test,
    judge_features,
    ks_test,
    label_test,
    prediction_test,
    run_drift_tests,
    summary,
)
from drs.drift_registry import NO_REFERENCE, DriftSettingsError, feature_rows, report_rows, validate_settings

ONE_NUMBER = Schema(
    id_column=None, target_column="y", positive_label=1, numeric_features=("x",), categorical_features=(), labels=None
)
ONE_CATEGORY = Schema(
    id_column=None, target_column="y", positive_label=1, numeric_features=(), categorical_features=("c",), labels=None
)
MILLION = 1_000_000


def labelled(rng, rows, bad_rate, shift=0.0):
    """Course-schema rows whose label is 1 on exactly round(bad_rate * rows) of them."""
    frame = pd.DataFrame({name: rng.normal(100 + shift, 20, rows) for name in FEATURE_COLUMNS})
    bad = round(bad_rate * rows)
    frame["exited"] = rng.permutation(np.r_[np.ones(bad), np.zeros(rows - bad)])
    return frame


# --- label ---------------------------------------------------------------------------


def test_the_label_test_flags_a_72_percent_bad_rate_against_43_and_not_the_same_mix():
    rng = np.random.default_rng(10)
    reference = labelled(rng, 1000, 0.43)
    worse = label_test(reference, labelled(rng, 200, 0.72), 0.01, 30)
    assert worse["verdict"] == "drift" and worse["measure"] == "pvalue"
    assert (worse["positive_rate_reference"], worse["positive_rate_new"]) == (0.43, 0.72)
    expected = chi2_contingency(np.array([[570, 430], [56, 144]]))
    assert worse["pvalue"] == pytest.approx(float(expected.pvalue), rel=1e-9) and worse["pvalue"] < 1e-10
    assert worse["statistic"] == pytest.approx(float(expected.statistic), abs=1e-6) and worse["samples"] == [1000, 200]
    same = label_test(reference, labelled(rng, 200, 0.43), 0.01, 30)
    assert same["verdict"] == "no drift" and same["pvalue"] > 0.5
    record = {"new_rows": 200, "drift": {"drift": True, "tests": {"label": worse}, "trigger": {"fired": ["label"]}}}
    assert drift_text(record).endswith(
        f"Drift on 200 new row(s): label p-value {worse['pvalue']:.2g} < 0.01 (positive share 0.430 -> 0.720). "
        "Retraining."
    )


def test_the_label_test_says_why_it_cannot_tell():
    rng = np.random.default_rng(11)
    reference, new = labelled(rng, 500, 0.4), labelled(rng, 200, 0.7)
    unlabelled = label_test(reference, new.assign(exited=np.nan), 0.01, 30)
    assert unlabelled["verdict"] == INSUFFICIENT and unlabelled["detail"] == "the new rows have no labels"
    no_labels = label_test(reference.drop(columns="exited"), new, 0.01, 30)
    assert no_labels["verdict"] == INSUFFICIENT and no_labels["detail"] == "the reference sample holds no labels"
    few = label_test(reference, new.head(10), 0.01, 30)
    assert few["verdict"] == INSUFFICIENT and few["samples"] == [500, 10]
    without = run_drift_tests(dict(DEFAULT_DRIFT), 0.5, 0.6, [], None, new)["tests"]["label"]
    assert without["verdict"] == INSUFFICIENT and without["detail"] == NO_REFERENCE


# --- prediction ----------------------------------------------------------------------


def fitted_model(reference: pd.DataFrame) -> LogisticRegression:
    features = reference[list(FEATURE_COLUMNS)].to_numpy()
    return LogisticRegression().fit(features, (reference["lastmonth_activity"] > 100).astype(int))


def test_the_prediction_test_flags_shifted_inputs_and_needs_the_model():
    rng = np.random.default_rng(12)
    reference = labelled(rng, 800, 0.4)
    model = fitted_model(reference)
    calm = prediction_test(model, reference, labelled(rng, 300, 0.4).assign(exited=np.nan), 0.01, 30)
    assert calm["verdict"] == "no drift" and calm["measure"] == "pvalue" and calm["pvalue"] > 0.01
    shifted = prediction_test(model, reference, labelled(rng, 300, 0.4, shift=15), 0.01, 30)
    assert shifted["verdict"] == "drift" and shifted["pvalue"] < 1e-10
    probabilities = model.predict_proba(reference[list(FEATURE_COLUMNS)].to_numpy())[:, 1]
    assert shifted["positive_rate_reference"] == round(float(np.mean(probabilities > 0.5)), 6)
    assert shifted["positive_rate_new"] > 0.7 > 0.6 > shifted["positive_rate_reference"]

    settings = dict(DEFAULT_DRIFT)
    ran = run_drift_tests(settings, None, 0.6, [], reference, labelled(rng, 300, 0.4, shift=15), model=model)
    assert ran["tests"]["prediction"]["verdict"] == "drift"
    without = run_drift_tests(settings, None, 0.6, [], reference, labelled(rng, 300, 0.4, shift=15))
    assert without["tests"]["prediction"]["verdict"] == INSUFFICIENT
    assert without["tests"]["prediction"]["detail"] == "no deployed model was given to predict with"
    big = prediction_test(model, reference, labelled(rng, 3000, 0.4, shift=15), 0.01, 30, large_sample_rows=1000)
    assert big["measure"] == "wasserstein" and big["verdict"] == "drift" and big["pvalue"] < 1e-10
    assert summary(big).startswith("normalised Wasserstein distance ")


# --- the multiple-testing correction ---------------------------------------------------------

PVALUES = [0.001, 0.002, 0.003, 0.009, 0.5]


def constructed(pvalues):
    return {
        f"f{i}": {"statistic": 0.1, "pvalue": p, "samples": [100, 100], "distance": None} for i, p in enumerate(pvalues)
    }


@pytest.mark.parametrize("correction, drifting", [("none", 4), ("fdr", 3), ("bonferroni", 1)])
def test_each_correction_changes_the_verdicts_and_keeps_the_raw_p_value(correction, drifting):
    features = judge_features(constructed(PVALUES), 0.01, correction, 0.1)
    assert sum(f["verdict"] == "drift" for f in features.values()) == drifting
    assert [f["pvalue"] for f in features.values()] == PVALUES
    assert all(f["measure"] == "pvalue" and f["measure_value"] == f["adjusted_pvalue"] for f in features.values())


def test_the_adjusted_p_values():
    assert adjust_pvalues(PVALUES, "none") == PVALUES
    assert adjust_pvalues(PVALUES, "bonferroni") == pytest.approx([0.005, 0.01, 0.015, 0.045, 1.0])
    assert adjust_pvalues(PVALUES, "fdr") == pytest.approx(false_discovery_control(PVALUES).tolist())
    assert adjust_pvalues(PVALUES, "fdr") == pytest.approx([0.005, 0.005, 0.005, 0.01125, 0.5])
    assert adjust_pvalues([], "fdr") == []


def test_ks_records_raw_and_adjusted_p_values_and_the_words_name_the_correction():
    rng = np.random.default_rng(13)
    reference = labelled(rng, 600, 0.4)
    new = labelled(rng, 300, 0.4).assign(lastmonth_activity=lambda f: f["lastmonth_activity"] + 8)
    plain = ks_test(reference, new, 0.01, 30, correction="none")
    adjusted = ks_test(reference, new, 0.01, 30)
    raw = [plain["features"][name]["pvalue"] for name in FEATURE_COLUMNS]
    assert [adjusted["features"][name]["pvalue"] for name in FEATURE_COLUMNS] == raw
    expected = false_discovery_control(raw).tolist()
    assert [adjusted["features"][name]["adjusted_pvalue"] for name in FEATURE_COLUMNS] == pytest.approx(expected)
    assert adjusted["verdict"] == "drift" and adjusted["measure"] == "pvalue" and adjusted["correction"] == "fdr"
    words = drift_text(
        {"new_rows": 300, "drift": {"drift": True, "tests": {"ks": adjusted}, "trigger": {"fired": ["ks"]}}}
    )
    assert (
        words.startswith("Drift in lastmonth_activity (ks p-value ")
        and " Drift on 300 new row(s): ks p-value (fdr-adjusted) " in words
    )
    assert words.endswith(" < 0.01 on lastmonth_activity. Retraining.")
    (row,) = report_rows({"tests": {"ks": adjusted}, "trigger": {"tests": ["ks"]}}, lambda v: f"{v:.3g}")
    assert row["statistic"].startswith("p ") and "(fdr)" in row["statistic"] and row["threshold"] == "p < 0.01"
    assert (
        feature_rows(adjusted, str)[0]["measure"]
        == f"p {adjusted['features']['lastmonth_activity']['measure_value']} (fdr)"
    )


# --- big batches: a distance decides -----------------------------------------------------


def numbers(rng, rows, shift):
    return pd.DataFrame({"x": rng.normal(shift, 1.0, rows)})


def test_a_trivial_shift_in_a_million_rows_is_not_drift_a_real_one_is():
    rng = np.random.default_rng(14)
    reference = numbers(rng, MILLION, 0.0)
    trivial = numbers(rng, MILLION, 0.02)
    result = ks_test(reference, trivial, 0.01, 30, ONE_NUMBER)
    figures = result["features"]["x"]
    # The p-value alone would call it drift; the distance, a fiftieth of a standard deviation, does not.
    assert figures["pvalue"] < 1e-20 and figures["adjusted_pvalue"] < 1e-20
    assert figures["measure"] == "wasserstein" and figures["verdict"] == "no drift"
    expected = wasserstein_distance(reference["x"], trivial["x"]) / np.std(reference["x"])
    assert figures["measure_value"] == pytest.approx(expected, abs=1e-6) and 0.01 < expected < 0.03
    assert result["verdict"] == "no drift" and result["measure"] == "wasserstein"
    assert summary(result).startswith("normalised Wasserstein distance 0.0")

    real = ks_test(reference, numbers(rng, MILLION, 0.5), 0.01, 30, ONE_NUMBER)
    distance = real["features"]["x"]["measure_value"]
    assert real["verdict"] == "drift" and 0.45 < distance < 0.55
    alert = drift_text({"new_rows": MILLION, "drift": {"tests": {"ks": real}, "trigger": {"fired": ["ks"]}}})
    assert f": ks normalised Wasserstein distance {distance:.3f} >= 0.1 on x. Retraining." in alert
    (row,) = report_rows({"tests": {"ks": real}, "trigger": {"tests": ["ks"]}}, lambda v: f"{v:.3g}")
    assert (
        row["statistic"].startswith(f"wasserstein {distance:.3g} (stat. ") and row["threshold"] == "wasserstein >= 0.1"
    )
    assert "Wasserstein" in row["detail"] and feature_rows(real, str)[0]["measure"] == f"wasserstein {distance}"

    kept = ks_test(reference, trivial, 0.01, 30, ONE_NUMBER, large_sample_rows=None)
    assert kept["verdict"] == "drift" and kept["features"]["x"]["measure"] == "pvalue"


def categories(rng, rows, shares):
    return pd.DataFrame({"c": rng.choice(np.array(["a", "b", "c"], dtype=object), size=rows, p=shares)})


def test_a_trivial_shift_of_category_shares_in_a_million_rows_is_not_drift_a_real_one_is():
    rng = np.random.default_rng(15)
    reference = categories(rng, MILLION, [0.5, 0.3, 0.2])
    trivial = categories(rng, MILLION, [0.505, 0.3, 0.195])
    result = chi2_test(reference, trivial, 0.01, 30, ONE_CATEGORY)
    figures = result["features"]["c"]
    assert figures["pvalue"] < 1e-10 and figures["measure"] == "jensenshannon" and figures["verdict"] == "no drift"
    shares = [
        frame["c"].value_counts(normalize=True).reindex(["a", "b", "c"]).to_numpy() for frame in (reference, trivial)
    ]
    # The natural logarithm, as Evidently: scipy's default base.
    assert figures["measure_value"] == pytest.approx(jensenshannon(*shares), abs=1e-6)

    real = chi2_test(reference, categories(rng, MILLION, [0.3, 0.3, 0.4]), 0.01, 30, ONE_CATEGORY)
    assert real["verdict"] == "drift" and real["measure"] == "jensenshannon"
    assert real["features"]["c"]["measure_value"] > 0.1
    assert summary(real).startswith("Jensen-Shannon distance 0.")

    kept = chi2_test(reference, trivial, 0.01, 30, ONE_CATEGORY, large_sample_rows=None)
    assert kept["verdict"] == "drift" and kept["features"]["c"]["measure"] == "pvalue"


def test_the_distance_decides_only_above_large_sample_rows_new_rows():
    rng = np.random.default_rng(16)
    reference = numbers(rng, 5000, 0.0)
    at, above = numbers(rng, 1000, 0.3), numbers(rng, 1001, 0.3)
    assert ks_test(reference, at, 0.01, 30, ONE_NUMBER)["features"]["x"]["measure"] == "pvalue"
    assert ks_test(reference, above, 0.01, 30, ONE_NUMBER)["features"]["x"]["measure"] == "wasserstein"
    # A constant reference: its standard deviation is floored, as Evidently's, not divided by.
    constant = ks_test(pd.DataFrame({"x": np.ones(2000)}), numbers(rng, 2000, 1.0), 0.01, 30, ONE_NUMBER)
    assert constant["verdict"] == "drift" and np.isfinite(constant["features"]["x"]["measure_value"])


# --- settings ----------------------------------------------------------------------------


def test_the_new_settings_and_their_defaults():
    settings = validate_settings({})
    assert {key: settings[key] for key in ("correction", "large_sample_rows", "label_pvalue", "prediction_pvalue")} == {
        "correction": "fdr",
        "large_sample_rows": 1000,
        "label_pvalue": 0.01,
        "prediction_pvalue": 0.01,
    }
    assert settings["wasserstein_threshold"] == settings["jensenshannon_threshold"] == 0.1
    assert settings["trigger_tests"] == ["raw"]
    assert validate_settings({"large_sample_rows": None, "correction": "none"})["large_sample_rows"] is None


@pytest.mark.parametrize(
    "given, words",
    [
        ({"correction": "holm"}, 'drift.correction must be "bonferroni", "fdr" or "none", got \'holm\''),
        ({"large_sample_rows": 0}, "drift.large_sample_rows must be an integer >= 1 or null, got 0"),
        ({"large_sample_rows": 1000.0}, "drift.large_sample_rows must be an integer >= 1 or null, got 1000.0"),
        ({"large_sample_rows": True}, "drift.large_sample_rows must be an integer >= 1 or null, got True"),
        ({"wasserstein_threshold": 0}, "drift.wasserstein_threshold must be a positive number, got 0"),
        ({"jensenshannon_threshold": "0.1"}, "drift.jensenshannon_threshold must be a positive number, got '0.1'"),
        ({"label_pvalue": 1.5}, "drift.label_pvalue must be a p-value between 0 and 1, got 1.5"),
        ({"prediction_pvalue": 0}, "drift.prediction_pvalue must be a p-value between 0 and 1, got 0"),
    ],
)
def test_each_invalid_new_setting_is_named_in_one_line(given, words):
    with pytest.raises(DriftSettingsError) as caught:
        validate_settings(given)
    assert str(caught.value) == words


# --- end to end --------------------------------------------------------------------------


def test_a_drift_tick_records_the_label_and_prediction_tests(deployed):
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    tests = record["drift"]["tests"]
    for name in ("label", "prediction"):
        assert tests[name]["verdict"] in ("drift", "no drift"), tests[name]
        assert 0 <= tests[name]["pvalue"] <= 1 and tests[name]["measure"] == "pvalue"
        assert tests[name]["samples"][1] == record["new_rows"]
    assert 0 < tests["label"]["positive_rate_new"] < 1 and 0 <= tests["prediction"]["positive_rate_new"] <= 1
    assert all(figures["measure"] == "pvalue" for figures in tests["ks"]["features"].values())
    assert record["decision"] == "drift, redeployed"  # the course's trigger, raw, still decides
