"""Each drift test on data built to drift, not to drift, and too small to tell."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from drs.config import COURSE_SCHEMA, DEFAULT_DRIFT, FEATURE_COLUMNS, Schema
from drs.drift import (
    INSUFFICIENT,
    category_stability_index,
    chi2_test,
    ks_test,
    nonparametric_test,
    parametric_test,
    population_stability_index,
    psi_test,
    raw_test,
    run_drift_tests,
)
from generate_data import generate_categorical

CATEGORICAL = Schema(
    id_column="customer_id",
    target_column="churn",
    positive_label="Yes",
    numeric_features=("tenure", "monthly_charges", "total_charges"),
    categorical_features=("contract", "internet_service", "payment_method", "paperless_billing"),
    labels=None,
)


def frame(rng, rows, shift=0.0, scale=1.0):
    return pd.DataFrame({name: rng.normal(100 + shift, 20 * scale, rows) for name in FEATURE_COLUMNS})


def test_raw_test_is_the_course_comparison():
    assert raw_test(0.5, 0.6)["verdict"] == "drift"
    assert raw_test(0.6, 0.6)["verdict"] == "no drift"
    assert raw_test(0.7, 0.6)["verdict"] == "no drift"


def test_parametric_test():
    history = [0.70, 0.72, 0.71, 0.69, 0.70]
    assert parametric_test(0.50, history, 3)["verdict"] == "drift"
    result = parametric_test(0.70, history, 3)
    assert result["verdict"] == "no drift"
    assert result["threshold"] == pytest.approx(np.mean(history) - 2 * np.std(history), abs=1e-6)
    assert parametric_test(0.10, history[:2], 3)["verdict"] == INSUFFICIENT


def test_nonparametric_test():
    history = [0.70, 0.72, 0.71, 0.69, 0.70, 0.73]
    q1, q3 = np.quantile(history, [0.25, 0.75])
    result = nonparametric_test(0.60, history, 3)
    assert result["verdict"] == "drift" and result["threshold"] == pytest.approx(q1 - 1.5 * (q3 - q1), abs=1e-6)
    assert nonparametric_test(0.70, history, 3)["verdict"] == "no drift"
    assert nonparametric_test(0.0, [0.7], 3)["verdict"] == INSUFFICIENT


def test_ks_test_sees_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    reference = frame(rng, 2000)
    assert ks_test(reference, frame(rng, 2000), 0.01, 30)["verdict"] == "no drift"
    shifted = ks_test(reference, frame(rng, 2000, shift=15), 0.01, 30)
    assert shifted["verdict"] == "drift"
    assert all(f["pvalue"] < 0.01 for f in shifted["features"].values())
    small = ks_test(reference, frame(rng, 10, shift=50), 0.01, 30)
    assert small["verdict"] == INSUFFICIENT
    assert small["features"]["lastmonth_activity"]["samples"] == [2000, 10]


def test_psi_known_values_and_verdicts():
    rng = np.random.default_rng(1)
    same = rng.normal(0, 1, 5000)
    assert population_stability_index(same, rng.normal(0, 1, 5000), 10) < 0.02
    # Hand-checked value: half the mass moves from the lower to the upper half of two bins.
    reference = np.array([0.0] * 50 + [1.0] * 50)
    current = np.array([0.0] * 25 + [1.0] * 75)
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert population_stability_index(reference, current, 2) == pytest.approx(expected)

    reference_frame = frame(rng, 3000)
    assert psi_test(reference_frame, frame(rng, 3000), 10, 0.1, 0.25, 30)["verdict"] == "no drift"
    assert psi_test(reference_frame, frame(rng, 3000, shift=8), 10, 0.1, 0.25, 30)["verdict"] == "watch"
    assert psi_test(reference_frame, frame(rng, 3000, shift=30), 10, 0.1, 0.25, 30)["verdict"] == "drift"
    assert psi_test(reference_frame, frame(rng, 5), 10, 0.1, 0.25, 30)["verdict"] == INSUFFICIENT


def test_psi_with_a_constant_reference_is_defined():
    assert population_stability_index(np.ones(100), np.ones(100), 10) == pytest.approx(0.0)
    assert population_stability_index(np.ones(100), np.full(100, 2.0), 10) > 0.25


def test_trigger_any_all_and_named():
    rng = np.random.default_rng(2)
    reference, shifted = frame(rng, 500), frame(rng, 500, shift=30)
    settings = dict(DEFAULT_DRIFT)
    assert run_drift_tests(settings, 0.5, 0.6, [], reference, shifted)["drift"] is True  # raw fires
    settings.update(trigger_tests=["ks"])
    outcome = run_drift_tests(settings, 0.9, 0.6, [], reference, shifted)
    assert outcome["drift"] is True and outcome["trigger"]["fired"] == ["ks"]
    settings.update(trigger_tests=["raw", "ks"], trigger_mode="all")
    assert run_drift_tests(settings, 0.9, 0.6, [], reference, shifted)["drift"] is False
    assert run_drift_tests(settings, 0.5, 0.6, [], reference, shifted)["drift"] is True
    no_reference = run_drift_tests(settings, 0.5, 0.6, [], None, shifted)
    assert no_reference["tests"]["ks"]["verdict"] == INSUFFICIENT and no_reference["drift"] is False


def test_chi2_finds_the_shift_from_practice_to_source_categories():
    practice, source = generate_categorical(2000, "practice", 1), generate_categorical(2000, "source", 3)
    result = chi2_test(practice, source, 0.01, 30, CATEGORICAL)
    assert result["test"] == "chi2" and result["verdict"] == "drift" and result["threshold"] == 0.01
    assert set(result["features"]) == set(CATEGORICAL.categorical_features)  # numeric features are KS's
    for name in ("contract", "internet_service", "payment_method"):
        assert result["features"][name]["pvalue"] < 1e-20 and result["features"][name]["verdict"] == "drift"
        assert result["features"][name]["samples"] == [2000, 2000]
    assert result["pvalue"] == min(f["pvalue"] for f in result["features"].values())
    assert result["statistic"] == max(f["statistic"] for f in result["features"].values())


def test_chi2_finds_no_drift_between_two_samples_of_one_regime():
    result = chi2_test(
        generate_categorical(2000, "practice", 1), generate_categorical(2000, "practice", 2), 0.01, 30, CATEGORICAL
    )
    assert result["verdict"] == "no drift"
    assert all(f["pvalue"] > 0.05 for f in result["features"].values())


def test_chi2_is_not_decided_by_one_typo_but_finds_a_new_category_many_rows_hold():
    reference = generate_categorical(1000, "practice", 1)
    new = generate_categorical(40, "practice", 2)
    new.loc[0, "contract"] = "Month-to-Month"  # one mistyped row among forty ordinary ones
    assert chi2_test(reference, new, 0.01, 30, CATEGORICAL)["features"]["contract"]["verdict"] == "no drift"
    new.loc[:9, "contract"] = "Quarterly"  # a real new plan, on a quarter of the rows
    assert chi2_test(reference, new, 0.01, 30, CATEGORICAL)["features"]["contract"]["verdict"] == "drift"


def test_chi2_needs_min_samples_per_side():
    result = chi2_test(
        generate_categorical(2000, "practice", 1), generate_categorical(20, "source", 3), 0.01, 30, CATEGORICAL
    )
    assert result["verdict"] == INSUFFICIENT and result["pvalue"] is None
    assert result["features"]["contract"] == {
        "verdict": INSUFFICIENT,
        "statistic": None,
        "pvalue": None,
        "samples": [2000, 20],
    }


def test_chi2_counts_a_missing_value_as_a_category():
    schema = Schema(
        id_column=None,
        target_column="y",
        positive_label=1,
        numeric_features=(),
        categorical_features=("plan",),
        labels=None,
    )
    reference = pd.DataFrame({"plan": ["a"] * 50 + ["b"] * 50})
    # Among the values present the shares are the same (half and half); only the gaps differ.
    new = pd.DataFrame({"plan": ["a"] * 40 + ["b"] * 40 + [None] * 20})
    result = chi2_test(reference, new, 0.01, 30, schema)["features"]["plan"]
    expected = chi2_contingency(np.array([[50, 50, 0], [40, 40, 20]]))
    assert result["samples"] == [100, 100]
    assert result["statistic"] == pytest.approx(expected.statistic, abs=1e-6)
    assert result["pvalue"] == pytest.approx(expected.pvalue) and result["verdict"] == "drift"
    # Without the gaps the two samples are alike.
    assert chi2_test(reference, new.dropna().reset_index(drop=True), 0.01, 30, schema)["verdict"] == "no drift"


def test_psi_of_categories_matches_a_hand_computation():
    reference = pd.Series(["a"] * 60 + ["b"] * 40)
    current = pd.Series(["a"] * 30 + ["b"] * 50 + [None] * 20)
    floor = 1e-4  # "(missing)" never occurs in the reference: its share is floored
    expected = (0.3 - 0.6) * np.log(0.3 / 0.6) + (0.5 - 0.4) * np.log(0.5 / 0.4) + (0.2 - floor) * np.log(0.2 / floor)
    assert category_stability_index(reference, current) == pytest.approx(expected)
    assert category_stability_index(reference, reference.sample(frac=1, random_state=0)) == pytest.approx(0.0)
    # A category only the reference holds counts too (its current share floored).
    assert category_stability_index(pd.Series(["a", "b"] * 50), pd.Series(["a"] * 100)) == pytest.approx(
        (1 - 0.5) * np.log(1 / 0.5) + (floor - 0.5) * np.log(floor / 0.5)
    )


def test_psi_covers_numeric_and_categorical_features():
    practice, source = generate_categorical(2000, "practice", 1), generate_categorical(2000, "source", 3)
    result = psi_test(practice, source, 10, 0.1, 0.25, 30, CATEGORICAL)
    assert list(result["features"]) == list(CATEGORICAL.features)
    assert result["features"]["internet_service"]["verdict"] == "drift"
    assert result["features"]["internet_service"]["statistic"] == pytest.approx(
        category_stability_index(practice["internet_service"], source["internet_service"]), abs=1e-6
    )
    assert result["features"]["monthly_charges"]["statistic"] == pytest.approx(
        population_stability_index(practice["monthly_charges"].to_numpy(), source["monthly_charges"].to_numpy(), 10),
        abs=1e-6,
    )
    assert "categories" in result["detail"]
    same = psi_test(practice, generate_categorical(2000, "practice", 2), 10, 0.1, 0.25, 30, CATEGORICAL)
    assert same["verdict"] == "no drift"


def test_a_schema_without_categorical_or_numeric_features_makes_that_test_insufficient():
    rng = np.random.default_rng(3)
    reference, shifted = frame(rng, 500), frame(rng, 500, shift=30)
    settings = {**DEFAULT_DRIFT, "trigger_tests": ["raw", "chi2"]}
    outcome = run_drift_tests(settings, 0.9, 0.6, [], reference, shifted, COURSE_SCHEMA)
    chi2 = outcome["tests"]["chi2"]
    assert chi2["verdict"] == INSUFFICIENT and chi2["features"] == {} and "no categorical features" in chi2["detail"]
    assert outcome["drift"] is False and outcome["tests"]["ks"]["verdict"] == "drift"
    assert list(outcome["tests"]) == [
        "raw",
        "parametric",
        "nonparametric",
        "ks",
        "chi2",
        "psi",
        "label",
        "prediction",
        "estimated",
    ]

    categories_only = Schema(
        id_column=None,
        target_column="churn",
        positive_label="Yes",
        numeric_features=(),
        categorical_features=("contract",),
        labels=None,
    )
    practice, source = generate_categorical(500, "practice", 1), generate_categorical(500, "source", 3)
    ks = ks_test(practice, source, 0.01, 30, categories_only)
    assert ks["verdict"] == INSUFFICIENT and "no numeric features" in ks["detail"]
    assert list(psi_test(practice, source, 10, 0.1, 0.25, 30, categories_only)["features"]) == ["contract"]


def test_chi2_triggers_a_retrain_on_categorical_drift():
    practice, source = generate_categorical(1000, "practice", 1), generate_categorical(1000, "source", 3)
    settings = {**DEFAULT_DRIFT, "trigger_tests": ["chi2"]}
    outcome = run_drift_tests(settings, 0.9, 0.6, [], practice, source, CATEGORICAL)
    assert outcome["drift"] is True and outcome["trigger"]["fired"] == ["chi2"]
    assert set(outcome["tests"]["ks"]["features"]) == set(CATEGORICAL.numeric_features)
    calm = run_drift_tests(settings, 0.9, 0.6, [], practice, generate_categorical(1000, "practice", 2), CATEGORICAL)
    assert calm["drift"] is False and calm["tests"]["chi2"]["verdict"] == "no drift"
    no_reference = run_drift_tests(settings, 0.9, 0.6, [], None, source, CATEGORICAL)
    assert no_reference["tests"]["chi2"]["verdict"] == INSUFFICIENT and no_reference["drift"] is False
