"""Drift tests: is the deployed model still fit for the data now arriving?

Each test returns a dict ``{"test", "verdict", "statistic", "threshold", ...}``
where verdict is "drift", "no drift", "watch" (PSI only) or "insufficient data".
Which tests run, their settings and their words are in the registry
(drift_registry.py); this module holds their computations.

The F1 tests need labelled new rows; without them they report "insufficient data".
The data tests compare the training data of the deployed model (a reference
sample) with the new data, per feature of the schema; each feature's figures
are under ``"features"``, and a missing categorical value counts as the
category "(missing)".

* raw            - the course's test: F1 on the new data below the deployed test F1.
* parametric     - new F1 more than 2 standard deviations below the mean of past F1 scores.
* nonparametric  - new F1 below Q1 - 1.5 * IQR of past F1 scores.
* ks             - per numeric feature, two-sample Kolmogorov-Smirnov; drift when the p-value,
                   adjusted across the features by `correction`, is < ks_pvalue.
* chi2           - per categorical feature, chi-square test of the 2 x k table of category
                   counts (training data, new data); drift when the adjusted p-value < chi2_pvalue.
                   Above `large_sample_rows` new rows of a feature, a distance decides ks and chi2
                   instead (a p-value finds the least shift in a big sample): the normalised
                   Wasserstein distance (numeric) >= wasserstein_threshold, the Jensen-Shannon
                   distance of the category shares (categorical) >= jensenshannon_threshold.
                   Each feature records the measure that decided and its value.
* psi            - per feature, population stability index: numeric features over `psi_bins`
                   bins cut at the training data's quantiles, categorical features over the
                   categories' shares (empty bins and categories floored at 1e-4):
                   below psi_watch stable, from psi_watch "watch", from psi_drift drift.
* label          - chi-square test of the label counts of the labelled new rows against the
                   training rows' (the reference sample's); drift when p < label_pvalue.
* prediction     - the deployed model's positive-class probabilities on the new rows against
                   those on the reference sample: KS, drift when p < prediction_pvalue; above
                   `large_sample_rows` new rows the normalised Wasserstein distance decides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drs.config import COURSE_SCHEMA, Schema
from drs.drift_registry import (
    CORRECTION,
    DRIFT,
    INSUFFICIENT,
    JENSENSHANNON_THRESHOLD,
    LARGE_SAMPLE_ROWS,
    NO_DRIFT,
    WASSERSTEIN_THRESHOLD,
    WATCH,
    DriftInputs,
    deciding_measures,
    run_registered,
)
from drs.drift_registry import summary as summary  # the tick logs each result in its test's words
from drs.model_data import feature_matrix, positive_probabilities

MISSING_CATEGORY = "(missing)"
PSI_FLOOR = 1e-4

NO_LABELS = "the new rows have no labels: no F1 to compare"


def raw_test(new_f1: float | None, deployed_f1: float) -> dict:
    if new_f1 is None:
        return {
            "test": "raw",
            "statistic": None,
            "threshold": round(deployed_f1, 6),
            "verdict": INSUFFICIENT,
            "detail": NO_LABELS,
        }
    return {
        "test": "raw",
        "statistic": round(new_f1, 6),
        "threshold": round(deployed_f1, 6),
        "verdict": DRIFT if new_f1 < deployed_f1 else NO_DRIFT,
        "detail": "F1 on the new data vs the deployed model's test F1",
    }


def _history_test(
    name: str, new_f1: float | None, history: list[float], min_history: int, threshold_of, detail: str
) -> dict:
    """A test of the new F1 against a threshold computed from past F1 scores."""
    if new_f1 is None:
        return {
            "test": name,
            "statistic": None,
            "history_size": len(history),
            "threshold": None,
            "verdict": INSUFFICIENT,
            "detail": NO_LABELS,
        }
    result: dict = {"test": name, "statistic": round(new_f1, 6), "history_size": len(history)}
    if len(history) < min_history:
        return {
            **result,
            "threshold": None,
            "verdict": INSUFFICIENT,
            "detail": f"needs {min_history} past scores, has {len(history)}",
        }
    threshold = float(threshold_of(np.asarray(history, dtype=np.float64)))
    return {
        **result,
        "threshold": round(threshold, 6),
        "verdict": DRIFT if new_f1 < threshold else NO_DRIFT,
        "detail": detail,
    }


def parametric_test(new_f1: float | None, history: list[float], min_history: int) -> dict:
    return _history_test(
        "parametric",
        new_f1,
        history,
        min_history,
        lambda past: past.mean() - 2 * past.std(),
        "mean - 2 std of past F1 scores",
    )


def _iqr_floor(past: np.ndarray) -> float:
    q1, q3 = np.quantile(past, [0.25, 0.75])
    return q1 - 1.5 * (q3 - q1)


def nonparametric_test(new_f1: float | None, history: list[float], min_history: int) -> dict:
    return _history_test("nonparametric", new_f1, history, min_history, _iqr_floor, "Q1 - 1.5 IQR of past F1 scores")


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def category_counts(values: pd.Series) -> pd.Series:
    """How many times each category occurs, a missing value counted as the category "(missing)"."""
    values = values.astype(object)
    return values.where(values.notna(), MISSING_CATEGORY).value_counts()


def _no_features(name: str, threshold: float, kind: str) -> dict:
    """A per-feature test the schema gives nothing to work on: recorded, never a verdict."""
    return {
        "test": name,
        "threshold": threshold,
        "features": {},
        "verdict": INSUFFICIENT,
        "pvalue": None,
        "statistic": None,
        "detail": f"the schema has no {kind} features",
    }


def adjust_pvalues(pvalues: list[float], correction: str) -> list[float]:
    """The p-values of one test's features adjusted for testing them all: "bonferroni" (each times
    their number, at most 1), "fdr" (Benjamini-Hochberg) or "none" (unchanged)."""
    if correction == "none" or not pvalues:
        return list(pvalues)
    if correction == "bonferroni":
        return [min(1.0, value * len(pvalues)) for value in pvalues]
    from scipy.stats import false_discovery_control

    return [float(value) for value in false_discovery_control(np.asarray(pvalues, dtype=np.float64), method="bh")]


def is_large(new_samples: int, large_sample_rows: int | None) -> bool:
    """Whether a distance, not a p-value, decides on this many new rows (large_sample_rows None: never)."""
    return large_sample_rows is not None and new_samples > large_sample_rows


def normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein distance of the two samples in units of the reference's standard deviation."""
    from scipy.stats import wasserstein_distance

    # Evidently's normalisation, with its floor of 0.001 for a constant reference.
    return float(wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance of the shares of two count vectors over the same categories."""
    from scipy.spatial.distance import jensenshannon

    # scipy's default base, the natural logarithm, as Evidently: the distance is at most sqrt(ln 2).
    return float(jensenshannon(reference_counts / reference_counts.sum(), current_counts / current_counts.sum()))


def judge_features(
    compared: dict[str, dict], pvalue: float, correction: str, distance_threshold: float
) -> dict[str, dict]:
    """Each feature's adjusted p-value, the measure that decides it and its verdict.

    compared: per feature {"statistic", "pvalue", "samples", "distance": (measure, value) or None},
    or a result already decided (too few rows). The family corrected is every feature with a p-value.
    """
    tested = [name for name, figures in compared.items() if figures.get("pvalue") is not None]
    adjusted = dict(zip(tested, adjust_pvalues([compared[name]["pvalue"] for name in tested], correction), strict=True))
    features: dict[str, dict] = {}
    for name, figures in compared.items():
        if name not in adjusted:
            features[name] = figures
            continue
        measure, value = figures["distance"] or ("pvalue", adjusted[name])
        drift = value < pvalue if measure == "pvalue" else value >= distance_threshold
        features[name] = {
            "statistic": figures["statistic"],
            "pvalue": figures["pvalue"],
            "adjusted_pvalue": adjusted[name],
            "samples": figures["samples"],
            "measure": measure,
            "measure_value": value,
            "verdict": DRIFT if drift else NO_DRIFT,
        }
    return features


def _pvalue_test(
    name: str, features: dict, pvalue: float, correction: str, distance_threshold: float, detail: str
) -> dict:
    pvalues = [f["pvalue"] for f in features.values() if f.get("pvalue") is not None]
    adjusted = [f["adjusted_pvalue"] for f in features.values() if f.get("adjusted_pvalue") is not None]
    result = {
        "test": name,
        "threshold": pvalue,
        "features": features,
        "verdict": _overall(features),
        # The smallest raw p-value and the largest statistic stay the test's figures; what decided is beside them.
        "pvalue": min(pvalues) if pvalues else None,
        "statistic": _max_stat(features),
        "detail": detail,
        "adjusted_pvalue": min(adjusted) if adjusted else None,
        "correction": correction,
        "distance_threshold": distance_threshold,
    }
    decided = deciding_measures(result)
    result["measure"] = ", ".join(measure for measure, _, _ in decided) if decided else None
    result["measure_value"] = decided[0][1] if len(decided) == 1 else None
    return result


def _distance_words(large_sample_rows: int | None, distance: str, threshold: float) -> str:
    if large_sample_rows is None:
        return ""
    return f"; above {large_sample_rows} new rows the {distance} decides, drift when >= {threshold:g}"


def _judged_words(test: str, correction: str, large_sample_rows: int | None, distance: str, threshold: float) -> str:
    adjusted = "" if correction == "none" else f", p-values {correction}-adjusted across features"
    above = _distance_words(large_sample_rows, distance, threshold)
    return f"{test} per feature{adjusted}, drift when the p-value < threshold{above}"


def ks_test(
    reference: pd.DataFrame,
    new: pd.DataFrame,
    pvalue: float,
    min_samples: int,
    schema: Schema = COURSE_SCHEMA,
    correction: str = CORRECTION.default,
    large_sample_rows: int | None = LARGE_SAMPLE_ROWS.default,
    distance_threshold: float = WASSERSTEIN_THRESHOLD.default,
) -> dict:
    """Two-sample Kolmogorov-Smirnov per numeric feature (missing values left out); above
    `large_sample_rows` new values of a feature its normalised Wasserstein distance decides."""
    # scipy.stats costs a few hundred ms to import: paid by a tick that tests, not by the report's readers.
    from scipy.stats import ks_2samp

    if not schema.numeric_features:
        return _no_features("ks", pvalue, "numeric")
    compared: dict[str, dict] = {}
    for name in schema.numeric_features:
        ref, cur = _clean(reference[name]), _clean(new[name])
        if min(len(ref), len(cur)) < min_samples:
            compared[name] = {
                "verdict": INSUFFICIENT,
                "statistic": None,
                "pvalue": None,
                "samples": [len(ref), len(cur)],
            }
            continue
        outcome = ks_2samp(ref, cur)
        large = is_large(len(cur), large_sample_rows)
        compared[name] = {
            "statistic": round(float(outcome.statistic), 6),
            "pvalue": float(outcome.pvalue),
            "samples": [len(ref), len(cur)],
            "distance": ("wasserstein", round(normalised_wasserstein(ref, cur), 6)) if large else None,
        }
    features = judge_features(compared, pvalue, correction, distance_threshold)
    words = _judged_words(
        "two-sample Kolmogorov-Smirnov",
        correction,
        large_sample_rows,
        "normalised Wasserstein distance",
        distance_threshold,
    )
    return _pvalue_test("ks", features, pvalue, correction, distance_threshold, words)


MIN_CATEGORY_COUNT = 5


def chi2_test(
    reference: pd.DataFrame,
    new: pd.DataFrame,
    pvalue: float,
    min_samples: int,
    schema: Schema = COURSE_SCHEMA,
    correction: str = CORRECTION.default,
    large_sample_rows: int | None = LARGE_SAMPLE_ROWS.default,
    distance_threshold: float = JENSENSHANNON_THRESHOLD.default,
) -> dict:
    """Chi-square test of homogeneity per categorical feature, on the 2 x k table of category counts
    (reference, new) over the categories either holds; a missing value is the category "(missing)".
    Above `large_sample_rows` new rows the Jensen-Shannon distance of the category shares decides."""
    from scipy.stats import chi2_contingency

    if not schema.categorical_features:
        return _no_features("chi2", pvalue, "categorical")
    compared: dict[str, dict] = {}
    for name in schema.categorical_features:
        # Categories absent from both frames never appear in their counts: the table has no empty column.
        ref, cur = category_counts(reference[name]).align(category_counts(new[name]), fill_value=0)
        samples = [int(ref.sum()), int(cur.sum())]
        # The chi-square approximation needs counts of about 5: a category seen fewer times in both
        # samples together (one typo) is left out, or it alone would decide the verdict.
        kept = (ref + cur) >= MIN_CATEGORY_COUNT
        if min(samples) < min_samples or not kept.any():
            compared[name] = {"verdict": INSUFFICIENT, "statistic": None, "pvalue": None, "samples": samples}
            continue
        # One category in both: nothing can have shifted (scipy answers statistic 0, p-value 1).
        outcome = chi2_contingency(np.vstack([ref[kept].to_numpy(), cur[kept].to_numpy()]))
        large = is_large(samples[1], large_sample_rows)
        # The distance is over every category, rare ones included: it is not an approximation's.
        distance = jensen_shannon(ref.to_numpy(dtype=np.float64), cur.to_numpy(dtype=np.float64)) if large else None
        compared[name] = {
            "statistic": round(float(outcome.statistic), 6),
            "pvalue": float(outcome.pvalue),
            "samples": samples,
            "distance": ("jensenshannon", round(distance, 6)) if distance is not None else None,
        }
    features = judge_features(compared, pvalue, correction, distance_threshold)
    words = _judged_words(
        "chi-square test of the category counts",
        correction,
        large_sample_rows,
        "Jensen-Shannon distance",
        distance_threshold,
    )
    return _pvalue_test("chi2", features, pvalue, correction, distance_threshold, words)


def _psi_of_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two count vectors over the same bins; an empty bin's share is floored at 1e-4."""
    ref_share = np.maximum(reference_counts / reference_counts.sum(), PSI_FLOOR)
    cur_share = np.maximum(current_counts / current_counts.sum(), PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


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
    return _psi_of_counts(ref_counts, cur_counts)


def category_stability_index(reference: pd.Series, current: pd.Series) -> float:
    """PSI of `current` against `reference` over the categories' shares (the union of both's
    categories, a missing value the category "(missing)")."""
    ref, cur = category_counts(reference).align(category_counts(current), fill_value=0)
    return _psi_of_counts(ref.to_numpy(dtype=np.float64), cur.to_numpy(dtype=np.float64))


def psi_test(
    reference: pd.DataFrame,
    new: pd.DataFrame,
    bins: int,
    watch: float,
    drift: float,
    min_samples: int,
    schema: Schema = COURSE_SCHEMA,
) -> dict:
    features: dict[str, dict] = {}
    for name in schema.features:
        numeric = name in schema.numeric_features
        if numeric:
            ref, cur = _clean(reference[name]), _clean(new[name])
        else:  # a missing value is a category: every row counts
            ref, cur = reference[name], new[name]
        samples = [len(ref), len(cur)]
        if min(samples) < min_samples:
            features[name] = {"verdict": INSUFFICIENT, "statistic": None, "samples": samples}
            continue
        psi = population_stability_index(ref, cur, bins) if numeric else category_stability_index(ref, cur)
        verdict = DRIFT if psi >= drift else WATCH if psi >= watch else NO_DRIFT
        features[name] = {"statistic": round(psi, 6), "samples": samples, "verdict": verdict}
    categories = "; categories' shares for categorical features" if schema.categorical_features else ""
    return {
        "test": "psi",
        "threshold": drift,
        "watch": watch,
        "bins": bins,
        "features": features,
        "verdict": _overall(features),
        "statistic": _max_stat(features),
        "detail": f"population stability index, {bins} quantile bins{categories}; >= {watch} watch, >= {drift} drift",
    }


def _insufficient(name: str, threshold: float, detail: str, samples: list[int] | None = None) -> dict:
    result = {"test": name, "verdict": INSUFFICIENT, "statistic": None, "pvalue": None, "threshold": threshold}
    return {**result, **({"samples": samples} if samples is not None else {}), "detail": detail}


def _positive_rate(values, positive_label) -> float:
    return round(float(np.mean(np.asarray(values) == positive_label)), 6) if len(values) else 0.0


def label_test(
    reference: pd.DataFrame, new: pd.DataFrame, pvalue: float, min_samples: int, schema: Schema = COURSE_SCHEMA
) -> dict:
    """Chi-square test of the 2 x k table of label counts (the reference sample's, the labelled new
    rows'); records the positive label's share on each side."""
    from scipy.stats import chi2_contingency

    target = schema.target_column
    cur, ref = (
        frame[target].dropna() if target in frame else pd.Series([], dtype=object) for frame in (new, reference)
    )
    samples = [len(ref), len(cur)]
    if not len(cur):
        return _insufficient("label", pvalue, "the new rows have no labels", samples)
    if not len(ref):
        return _insufficient("label", pvalue, "the reference sample holds no labels", samples)
    if min(samples) < min_samples:
        return _insufficient("label", pvalue, f"needs {min_samples} labelled rows on each side", samples)
    ref_counts, cur_counts = ref.value_counts().align(cur.value_counts(), fill_value=0)
    # One label on both sides: nothing can have shifted (scipy answers statistic 0, p-value 1).
    outcome = chi2_contingency(np.vstack([ref_counts.to_numpy(), cur_counts.to_numpy()]))
    return {
        "test": "label",
        "verdict": DRIFT if outcome.pvalue < pvalue else NO_DRIFT,
        "statistic": round(float(outcome.statistic), 6),
        "pvalue": float(outcome.pvalue),
        "threshold": pvalue,
        "samples": samples,
        "measure": "pvalue",
        "measure_value": float(outcome.pvalue),
        "positive_rate_reference": _positive_rate(ref, schema.positive_label),
        "positive_rate_new": _positive_rate(cur, schema.positive_label),
        "detail": "chi-square test of the label counts, training rows against the labelled new rows",
    }


def prediction_test(
    model,
    reference: pd.DataFrame,
    new: pd.DataFrame,
    pvalue: float,
    min_samples: int,
    schema: Schema = COURSE_SCHEMA,
    large_sample_rows: int | None = LARGE_SAMPLE_ROWS.default,
    distance_threshold: float = WASSERSTEIN_THRESHOLD.default,
) -> dict:
    """KS of the deployed model's positive-class probabilities on the new rows (labelled or not)
    against those on the reference sample; above `large_sample_rows` new rows their normalised
    Wasserstein distance decides. Records the predicted positive rate (probability above 0.5) of each."""
    from scipy.stats import ks_2samp

    samples = [len(reference), len(new)]
    if model is None:
        return _insufficient("prediction", pvalue, "no deployed model was given to predict with", samples)
    if min(samples) < min_samples:
        return _insufficient("prediction", pvalue, f"needs {min_samples} rows on each side", samples)
    ref = positive_probabilities(model, feature_matrix(reference, schema), schema)
    if ref is None:
        return _insufficient("prediction", pvalue, "the deployed model gives no probabilities", samples)
    cur = positive_probabilities(model, feature_matrix(new, schema), schema)
    outcome = ks_2samp(ref, cur)
    if is_large(len(cur), large_sample_rows):
        measure, value = "wasserstein", round(normalised_wasserstein(ref, cur), 6)
        drift = value >= distance_threshold
    else:
        measure, value = "pvalue", float(outcome.pvalue)
        drift = value < pvalue
    return {
        "test": "prediction",
        "verdict": DRIFT if drift else NO_DRIFT,
        "statistic": round(float(outcome.statistic), 6),
        "pvalue": float(outcome.pvalue),
        "threshold": pvalue,
        "distance_threshold": distance_threshold,
        "samples": samples,
        "measure": measure,
        "measure_value": value,
        "positive_rate_reference": _positive_rate(ref > 0.5, True),
        "positive_rate_new": _positive_rate(cur > 0.5, True),
        "detail": "two-sample Kolmogorov-Smirnov of the positive-class probabilities, drift when the p-value "
        f"< threshold{_distance_words(large_sample_rows, 'normalised Wasserstein distance', distance_threshold)}",
    }


def _overall(features: dict) -> str:
    verdicts = [f["verdict"] for f in features.values()]
    for verdict in (DRIFT, WATCH, NO_DRIFT):
        if verdict in verdicts:
            return verdict
    return INSUFFICIENT


def _max_stat(features: dict):
    values = [f["statistic"] for f in features.values() if f.get("statistic") is not None]
    return max(values) if values else None


# --- the registered tests: each takes (DriftInputs, the "drift" settings) -------------


def run_raw(inputs: DriftInputs, settings: dict) -> dict:
    return raw_test(inputs.new_f1, inputs.deployed_f1)


def run_parametric(inputs: DriftInputs, settings: dict) -> dict:
    return parametric_test(inputs.new_f1, inputs.history, settings["min_history"])


def run_nonparametric(inputs: DriftInputs, settings: dict) -> dict:
    return nonparametric_test(inputs.new_f1, inputs.history, settings["min_history"])


def run_ks(inputs: DriftInputs, settings: dict) -> dict:
    assert inputs.reference is not None  # the registry answers for a missing reference
    return ks_test(
        inputs.reference,
        inputs.new,
        settings["ks_pvalue"],
        settings["min_samples"],
        inputs.schema,
        settings["correction"],
        settings["large_sample_rows"],
        settings["wasserstein_threshold"],
    )


def run_chi2(inputs: DriftInputs, settings: dict) -> dict:
    assert inputs.reference is not None
    return chi2_test(
        inputs.reference,
        inputs.new,
        settings["chi2_pvalue"],
        settings["min_samples"],
        inputs.schema,
        settings["correction"],
        settings["large_sample_rows"],
        settings["jensenshannon_threshold"],
    )


def run_label(inputs: DriftInputs, settings: dict) -> dict:
    assert inputs.reference is not None
    return label_test(inputs.reference, inputs.new, settings["label_pvalue"], settings["min_samples"], inputs.schema)


def run_prediction(inputs: DriftInputs, settings: dict) -> dict:
    assert inputs.reference is not None
    return prediction_test(
        inputs.model,
        inputs.reference,
        inputs.new,
        settings["prediction_pvalue"],
        settings["min_samples"],
        inputs.schema,
        settings["large_sample_rows"],
        settings["wasserstein_threshold"],
    )


def run_psi(inputs: DriftInputs, settings: dict) -> dict:
    assert inputs.reference is not None
    return psi_test(
        inputs.reference,
        inputs.new,
        settings["psi_bins"],
        settings["psi_watch"],
        settings["psi_drift"],
        settings["min_samples"],
        inputs.schema,
    )


def run_drift_tests(
    settings: dict,
    new_f1: float | None,
    deployed_f1: float,
    history: list[float],
    reference: pd.DataFrame | None,
    new: pd.DataFrame,
    schema: Schema = COURSE_SCHEMA,
    model=None,
) -> dict:
    """Run every registered test on the schema's features (the prediction test with `model`, the
    deployed fitted model; None: "insufficient data"); decide with the configured trigger.

    Returns {"tests": {name: result}, "drift": bool, "trigger": {"tests", "mode", "fired"}}.
    """
    return run_registered(DriftInputs(new_f1, deployed_f1, history, reference, new, schema, model), settings)
