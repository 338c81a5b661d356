"""Performance estimated without labels: confidence-based performance estimation (CBPE, as NannyML
defines it).

When the probabilities of the positive class are calibrated, a row predicted positive is a true
positive with probability p and a false positive with 1 - p; a row predicted negative is a false
negative with probability p. Summed over the new rows these give the expected confusion matrix, and
from it the F1 the deployed model is expected to have on rows whose labels have not arrived:

    TP = sum of p over rows predicted positive     FP = sum of (1 - p) over them
    FN = sum of p over rows predicted negative     TN = sum of (1 - p) over them
    estimated F1 = 2 TP / (2 TP + FP + FN)

The probabilities come from the calibrator training learned beside the model (drs.train.fit_calibration);
the predicted labels from the deployed model itself. A model trained on too few rows to calibrate on
is estimated from its raw probabilities, and the result says so.

The drift test "estimated" (registered in drs.drift_registry) compares the estimate with the deployed
model's test F1 minus ``drift.estimated_margin``; when the new rows have labels, the F1 they give is
recorded beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drs.config import Schema
from drs.drift_registry import DRIFT, INSUFFICIENT, NO_DRIFT, DriftInputs
from drs.model_data import feature_matrix, positive_probabilities

NAME = "estimated"


def expected_confusion(probabilities: np.ndarray, predicted_positive: np.ndarray) -> dict[str, float]:
    """The expected confusion matrix {"tp", "fp", "fn", "tn"} of rows whose positive-class probabilities
    are `probabilities` and whose predicted labels are positive where `predicted_positive` is True."""
    p = np.asarray(probabilities, dtype=np.float64)
    positive = np.asarray(predicted_positive, dtype=bool)
    return {
        "tp": float(p[positive].sum()),
        "fp": float((1.0 - p[positive]).sum()),
        "fn": float(p[~positive].sum()),
        "tn": float((1.0 - p[~positive]).sum()),
    }


def f1_of_confusion(confusion: dict[str, float]) -> float | None:
    """2 TP / (2 TP + FP + FN); None when the denominator is 0 (no positive expected nor predicted)."""
    denominator = 2 * confusion["tp"] + confusion["fp"] + confusion["fn"]
    return 2 * confusion["tp"] / denominator if denominator > 0 else None


def estimated_f1(probabilities: np.ndarray, predicted_positive: np.ndarray) -> float | None:
    """The F1 expected from calibrated positive-class probabilities and the predicted labels."""
    return f1_of_confusion(expected_confusion(probabilities, predicted_positive))


def calibrated_probabilities(calibrator: Any, features: Any, schema: Schema) -> np.ndarray:
    """The calibrator's probability of the positive label for each row."""
    column = list(calibrator.classes_).index(schema.positive_label)
    return calibrator.predict_proba(features)[:, column]


def probability_source(inputs: DriftInputs) -> tuple[str | None, str]:
    """("calibrated" / "raw", words for the result's detail), or (None, why F1 cannot be estimated)."""
    if inputs.model is None:
        return None, "no deployed model was given to estimate with"
    if inputs.calibrator is not None:
        method = (inputs.calibration or {}).get("method", "")
        return "calibrated", f"calibrated probabilities{f' ({method})' if method else ''}"
    record = inputs.calibration
    if record is None:
        return None, "the deployed version has no probability calibration (deployed before one was kept)"
    if record.get("calibrated"):
        return None, "the deployed version's calibrator could not be loaded"
    if not hasattr(inputs.model, "predict_proba"):
        return None, f"no calibration ({record.get('reason')}) and the model gives no probabilities"
    return "raw", f"raw probabilities, not calibrated: {record.get('reason')}"


def run_estimated(inputs: DriftInputs, settings: dict) -> dict:
    """The drift test "estimated": the deployed model's F1 on the new rows estimated without their labels."""
    margin = float(settings["estimated_margin"])
    threshold = round(inputs.deployed_f1 - margin, 6)
    realized = round(inputs.new_f1, 6) if inputs.new_f1 is not None else None
    result: dict = {"test": NAME, "statistic": None, "threshold": threshold, "realized_f1": realized}
    source, words = probability_source(inputs)
    if source is None or len(inputs.new) == 0:
        return {**result, "verdict": INSUFFICIENT, "detail": words if source is None else "no new rows"}
    features = feature_matrix(inputs.new, inputs.schema)
    if source == "calibrated":
        probabilities = calibrated_probabilities(inputs.calibrator, features, inputs.schema)
    else:
        probabilities = positive_probabilities(inputs.model, features, inputs.schema)
    predicted_positive = np.asarray(inputs.model.predict(features)) == inputs.schema.positive_label
    confusion = expected_confusion(probabilities, predicted_positive)
    estimate = f1_of_confusion(confusion)
    if estimate is None:
        return {**result, "verdict": INSUFFICIENT, "detail": "no positive row expected nor predicted: F1 undefined"}
    verdict = DRIFT if estimate < threshold else NO_DRIFT
    fewest = int(settings.get("min_samples", 0))
    if len(inputs.new) < fewest:  # recorded, but a handful of rows is no verdict (nor a trigger)
        return {
            **result,
            "statistic": round(estimate, 6),
            "verdict": INSUFFICIENT,
            "rows": len(inputs.new),
            "detail": f"{len(inputs.new)} new row(s), fewer than min_samples {fewest}: the estimate is not judged",
        }
    return {
        **result,
        "statistic": round(estimate, 6),
        "verdict": verdict,
        "probabilities": source,
        "rows": len(inputs.new),
        "expected_confusion": {name: round(value, 3) for name, value in confusion.items()},
        "detail": f"F1 estimated without labels from {words}, vs the deployed test F1 minus {margin:g}",
    }
