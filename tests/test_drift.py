"""Each drift test on data built to drift, not to drift, and too small to tell."""
import numpy as np
import pandas as pd
import pytest

from drift import (
    INSUFFICIENT,
    nonparametric_test,
    parametric_test,
    population_stability_index,
    psi_test,
    ks_test,
    raw_test,
    run_drift_tests,
)
from settings import DEFAULT_DRIFT, FEATURE_COLUMNS


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
