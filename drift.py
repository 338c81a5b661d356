"""Drift tests: is the deployed model still fit for the data now arriving?

Each test returns a dict ``{"test", "verdict", "statistic", "threshold", ...}``
where verdict is "drift", "no drift", "watch" (PSI only) or "insufficient data".

The F1 tests need labelled new rows; without them they report "insufficient data".

* raw            - the course's test: F1 on the new data below the deployed test F1.
* parametric     - new F1 more than 2 standard deviations below the mean of past F1 scores.
* nonparametric  - new F1 below Q1 - 1.5 * IQR of past F1 scores.
* ks             - per feature, two-sample Kolmogorov-Smirnov between the training
                   data of the deployed model and the new data; drift when p < ks_pvalue.
* psi            - per feature, population stability index over `psi_bins` bins cut at
                   the training data's quantiles (empty bins floored at 1e-4):
                   below psi_watch stable, from psi_watch "watch", from psi_drift drift.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from settings import FEATURE_COLUMNS

DRIFT, NO_DRIFT, WATCH, INSUFFICIENT = "drift", "no drift", "watch", "insufficient data"


NO_LABELS = "the new rows have no labels: no F1 to compare"


def raw_test(new_f1: float | None, deployed_f1: float) -> dict:
    if new_f1 is None:
        return {"test": "raw", "statistic": None, "threshold": round(deployed_f1, 6), "verdict": INSUFFICIENT,
                "detail": NO_LABELS}
    return {"test": "raw", "statistic": round(new_f1, 6), "threshold": round(deployed_f1, 6),
            "verdict": DRIFT if new_f1 < deployed_f1 else NO_DRIFT,
            "detail": "F1 on the new data vs the deployed model's test F1"}


def _history_test(name: str, new_f1: float | None, history: list[float], min_history: int, threshold_of,
                  detail: str) -> dict:
    """A test of the new F1 against a threshold computed from past F1 scores."""
    if new_f1 is None:
        return {"test": name, "statistic": None, "history_size": len(history), "threshold": None,
                "verdict": INSUFFICIENT, "detail": NO_LABELS}
    result = {"test": name, "statistic": round(new_f1, 6), "history_size": len(history)}
    if len(history) < min_history:
        return {**result, "threshold": None, "verdict": INSUFFICIENT,
                "detail": f"needs {min_history} past scores, has {len(history)}"}
    threshold = float(threshold_of(np.asarray(history, dtype=np.float64)))
    return {**result, "threshold": round(threshold, 6), "verdict": DRIFT if new_f1 < threshold else NO_DRIFT,
            "detail": detail}


def parametric_test(new_f1: float, history: list[float], min_history: int) -> dict:
    return _history_test("parametric", new_f1, history, min_history,
                         lambda past: past.mean() - 2 * past.std(), "mean - 2 std of past F1 scores")


def _iqr_floor(past: np.ndarray) -> float:
    q1, q3 = np.quantile(past, [0.25, 0.75])
    return q1 - 1.5 * (q3 - q1)


def nonparametric_test(new_f1: float, history: list[float], min_history: int) -> dict:
    return _history_test("nonparametric", new_f1, history, min_history, _iqr_floor, "Q1 - 1.5 IQR of past F1 scores")


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def ks_test(reference: pd.DataFrame, new: pd.DataFrame, pvalue: float, min_samples: int) -> dict:
    from scipy.stats import ks_2samp

    features = {}
    for name in FEATURE_COLUMNS:
        ref, cur = _clean(reference[name]), _clean(new[name])
        if min(len(ref), len(cur)) < min_samples:
            features[name] = {"verdict": INSUFFICIENT, "statistic": None, "pvalue": None,
                              "samples": [len(ref), len(cur)]}
            continue
        outcome = ks_2samp(ref, cur)
        features[name] = {"statistic": round(float(outcome.statistic), 6), "pvalue": float(outcome.pvalue),
                          "samples": [len(ref), len(cur)],
                          "verdict": DRIFT if outcome.pvalue < pvalue else NO_DRIFT}
    pvalues = [f["pvalue"] for f in features.values() if f.get("pvalue") is not None]
    # The verdict compares p-values with the threshold: the smallest p-value is the test's figure.
    return {"test": "ks", "threshold": pvalue, "features": features, "verdict": _overall(features),
            "pvalue": min(pvalues) if pvalues else None, "statistic": _max_stat(features),
            "detail": "two-sample Kolmogorov-Smirnov per feature, drift when the p-value < threshold"}


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI of `current` against `reference`, bins cut at the reference's quantiles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: one bin for it, one for everything else
        edges = np.array([edges[0], edges[0]])
    inner = edges[1:-1]
    ref_counts = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1)
    cur_counts = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1)
    if len(edges) == 2 and edges[0] == edges[1]:
        ref_counts = np.array([np.sum(reference == edges[0]), np.sum(reference != edges[0])])
        cur_counts = np.array([np.sum(current == edges[0]), np.sum(current != edges[0])])
    floor = 1e-4
    ref_share = np.maximum(ref_counts / ref_counts.sum(), floor)
    cur_share = np.maximum(cur_counts / cur_counts.sum(), floor)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi_test(reference: pd.DataFrame, new: pd.DataFrame, bins: int, watch: float, drift: float, min_samples: int) -> dict:
    features = {}
    for name in FEATURE_COLUMNS:
        ref, cur = _clean(reference[name]), _clean(new[name])
        if min(len(ref), len(cur)) < min_samples:
            features[name] = {"verdict": INSUFFICIENT, "statistic": None, "samples": [len(ref), len(cur)]}
            continue
        psi = population_stability_index(ref, cur, bins)
        verdict = DRIFT if psi >= drift else WATCH if psi >= watch else NO_DRIFT
        features[name] = {"statistic": round(psi, 6), "samples": [len(ref), len(cur)], "verdict": verdict}
    return {"test": "psi", "threshold": drift, "watch": watch, "bins": bins, "features": features,
            "verdict": _overall(features), "statistic": _max_stat(features),
            "detail": f"population stability index, {bins} quantile bins; >= {watch} watch, >= {drift} drift"}


def _overall(features: dict) -> str:
    verdicts = [f["verdict"] for f in features.values()]
    for verdict in (DRIFT, WATCH, NO_DRIFT):
        if verdict in verdicts:
            return verdict
    return INSUFFICIENT


def _max_stat(features: dict):
    values = [f["statistic"] for f in features.values() if f.get("statistic") is not None]
    return max(values) if values else None


def summary(test: dict) -> str:
    """One line of a test's figures: a p-value test shows its p-value against the p-value threshold."""
    if "pvalue" in test:
        return f"p-value {test['pvalue']} (statistic {test.get('statistic')}) vs threshold p < {test.get('threshold')}"
    return f"statistic {test.get('statistic')}, threshold {test.get('threshold')}"


def run_drift_tests(settings: dict, new_f1: float | None, deployed_f1: float, history: list[float],
                    reference: pd.DataFrame | None, new: pd.DataFrame) -> dict:
    """Run every test; decide with the configured trigger. Returns {"tests": {...}, "drift": bool, "trigger": ...}."""
    tests = {
        "raw": raw_test(new_f1, deployed_f1),
        "parametric": parametric_test(new_f1, history, settings["min_history"]),
        "nonparametric": nonparametric_test(new_f1, history, settings["min_history"]),
    }
    if reference is not None:
        tests["ks"] = ks_test(reference, new, settings["ks_pvalue"], settings["min_samples"])
        tests["psi"] = psi_test(reference, new, settings["psi_bins"], settings["psi_watch"],
                                settings["psi_drift"], settings["min_samples"])
    else:
        for name in ("ks", "psi"):
            tests[name] = {"test": name, "verdict": INSUFFICIENT, "statistic": None, "threshold": None,
                           "detail": "the deployed version has no reference sample of its training data"}
    chosen = settings["trigger_tests"]
    fired = [name for name in chosen if tests[name]["verdict"] == DRIFT]
    drift = bool(fired) if settings["trigger_mode"] == "any" else len(fired) == len(chosen)
    return {"tests": tests, "drift": drift, "trigger": {"tests": chosen, "mode": settings["trigger_mode"], "fired": fired}}
