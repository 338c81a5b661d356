"""Training: fit the churn classifier on the ingested data.

Reads ``output_folder_path/finaldata.csv``, writes ``output_model_path/trainedmodel.pkl``.

The model is one scikit-learn pipeline over the config's schema: numeric
features median-imputed, categorical ones most-frequent-imputed and one-hot
encoded (at most ``max_categories`` columns per feature, the rarer categories
sharing one; a category never seen in training goes there, or is ignored), then
the estimator the config names (default: the course's LogisticRegression; its
parameters under ``"training"``). The encoding stays sparse for an estimator
that takes sparse input; one that does not gets it dense, within
``max_dense_bytes``. ``scale_numeric`` standardises the numeric features after
imputation; ``decision_threshold`` wraps the estimator in scikit-learn's
FixedThresholdClassifier, so a row is positive from that probability on.
Files with gaps still train and predict. Rows with no label are not used for
training; the model predicts the data's own labels.

Beside the model, training learns a probability calibration of the positive class
(``fit_calibration``): a copy of the pipeline fitted on a stratified part of the labelled
rows, calibrated by scikit-learn's CalibratedClassifierCV on the rest. It is used only to
estimate the deployed model's F1 on rows without labels (drs.performance_estimation); the
model that serves is always the one fitted on every labelled row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import FixedThresholdClassifier, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import get_tags

from drs.config import Config, ConfigError, PipelineError, Schema, load_config
from drs.files import CALIBRATOR_FILE, INGESTED_DETAIL_FILE, MODEL_FILE, MODEL_RECORD_FILE
from drs.ingest import read_final_data
from drs.model_data import feature_matrix, labelled_rows
from drs.production import model_config_of
from drs.storage import now_iso, read_json, sha256_file, write_bytes_atomic, write_json_atomic

log = logging.getLogger("training")


# Importing a module runs it: an estimator comes from scikit-learn, or from a module the config opts into.
ALLOWED_ESTIMATOR_MODULES = ("sklearn",)
# The probe fit of check_training_parameters caps the parameters that set how much work a fit is
# (20,000 trees took 63 s); their values were validated before they were capped.
PROBE_CAPS = {"n_estimators": 2, "max_iter": 5, "max_fun": 50, "n_restarts_optimizer": 0}
PROBE_ROWS = 20


def estimator_allowed(path: str, extra_modules: tuple[str, ...] = ()) -> bool:
    """Whether a dotted path lies in sklearn or in a module `extra_modules` (config estimator_modules) names."""
    return any(path.startswith(f"{module.rstrip('.')}.") for module in (*ALLOWED_ESTIMATOR_MODULES, *extra_modules))


def estimator_class(path: str, extra_modules: tuple[str, ...] = ()):
    """The classifier class a dotted path names; ConfigError when it is outside the allowed modules (never
    imported then), cannot be imported or is no classifier."""
    if not estimator_allowed(path, extra_modules):
        allowed = ", ".join(f"{module}." for module in (*ALLOWED_ESTIMATOR_MODULES, *extra_modules))
        raise ConfigError(
            f"estimator {path!r} is not in an allowed module ({allowed}): add its package to "
            "'estimator_modules' to use it"
        )
    module_name, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"estimator {path!r} cannot be imported: {exc}") from None
    if not isinstance(found, type) or not (hasattr(found, "fit") and hasattr(found, "predict")):
        raise ConfigError(f"estimator {path!r} is not a classifier class with fit and predict")
    return found


def takes_sparse(classifier) -> bool:
    """Whether the estimator accepts a sparse matrix, as its scikit-learn input tags say (no tags: no)."""
    try:
        return bool(get_tags(classifier).input_tags.sparse)
    except (AttributeError, TypeError, ValueError):
        return False


def encoded_width_at_most(features: pd.DataFrame, schema: Schema, max_categories: int | None) -> int:
    """An upper bound on the columns the pipeline's preparation makes of `features`: one per numeric
    feature, and per categorical one its distinct values, at most `max_categories`."""
    width = len(schema.numeric_features)
    for name in schema.categorical_features:
        distinct = int(features[name].nunique(dropna=True))
        width += max(1, min(distinct, max_categories) if max_categories is not None else distinct)
    return width


def dense_input_bytes(model: Pipeline, rows: int) -> int:
    """The bytes of the dense matrix a fitted model's classifier is given for `rows` rows; 0 when its
    preparation gives it a sparse one."""
    if len(model.steps) > 1 and getattr(model.steps[0][1], "sparse_output_", False):
        return 0
    return rows * int(getattr(model[-1], "n_features_in_", 0)) * np.dtype(np.float64).itemsize


def _check_dense_fits(model: Pipeline, features, config: Config) -> None:
    """PipelineError, before fitting, when the estimator takes no sparse input and the one-hot encoded
    training data would be larger dense than max_dense_bytes: one line, not a MemoryError later."""
    if not config.schema.categorical_features or takes_sparse(model[-1]):
        return
    rows, width = len(features), encoded_width_at_most(features, config.schema, config.max_categories)
    need = rows * width * np.dtype(np.float64).itemsize
    if need > config.max_dense_bytes:
        raise PipelineError(
            f"the encoded training data ({rows} rows x up to {width} columns) would take {need / 1024**3:.2f} GiB "
            f"dense, over max_dense_bytes {config.max_dense_bytes}, and {type(model[-1]).__name__} takes no "
            "sparse input: lower max_categories or set min_frequency"
        )


def build_model(config: Config) -> Pipeline:
    """The unfitted pipeline: imputation (and one-hot encoding of categories), then the estimator.

    With numeric features only the pipeline takes a float array, which keeps a one-record
    prediction at ~0.4 ms; a ColumnTransformer over a DataFrame costs ~2.3 ms (measured), so it is
    used only when there are categories to encode. A parameter the estimator does not take is a
    ConfigError naming it (exit 2). The categories are capped by scikit-learn's own max_categories and
    min_frequency (the config's); an unseen one joins the rare ones, or is ignored when there are none.
    """
    schema, cls = config.schema, estimator_class(config.estimator, config.estimator_modules)
    known = set(inspect.signature(cls).parameters)
    unknown = sorted(set(config.training) - known)
    if unknown:
        raise ConfigError(f"unknown training parameter(s) for {config.estimator}: {', '.join(unknown)}")
    try:
        classifier = cls(**config.training)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid training parameter in config: {exc}") from None
    if not is_classifier(classifier):
        raise ConfigError(f"estimator {config.estimator!r} is not a scikit-learn classifier")
    sparse = takes_sparse(classifier)
    if config.decision_threshold is not None:
        if not hasattr(classifier, "predict_proba"):
            raise ConfigError(f"decision_threshold needs probabilities: {config.estimator} has no predict_proba")
        classifier = FixedThresholdClassifier(
            classifier,
            threshold=config.decision_threshold,
            pos_label=schema.positive_label,
            response_method="predict_proba",
        )
    numeric: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if config.scale_numeric:
        numeric.append(("scale", StandardScaler()))
    if not schema.categorical_features:
        return Pipeline([*numeric, ("classifier", classifier)])
    encode = OneHotEncoder(
        handle_unknown="infrequent_if_exist", max_categories=config.max_categories, min_frequency=config.min_frequency
    )
    categories = Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", encode)])
    # Sparse when it is mostly zeros (scikit-learn's own threshold) and the classifier takes it: dense,
    # 40,000 rows of 20,000 categories asked for 6 GiB. Some (HistGradientBoosting) take only dense.
    prepare = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric) if len(numeric) > 1 else numeric[0][1], list(schema.numeric_features)),
            ("categorical", categories, list(schema.categorical_features)),
        ],
        sparse_threshold=0.3 if sparse else 0,
    )
    return Pipeline([("prepare", prepare), ("classifier", classifier)])


def check_training_parameters(config: Config) -> None:
    """Fail early, as a ConfigError, on an estimator or parameters that would only fail at fit time.

    The parameters are set on the estimator and checked by scikit-learn's own parameter validation
    without fitting; then a fit on a few synthetic rows of the schema, with the parameters that set
    a fit's size capped (PROBE_CAPS), finds what only a fit checks (a solver that does not take a
    penalty) in milliseconds, whatever the real fit costs.
    """
    cls = estimator_class(config.estimator, config.estimator_modules)
    known = set(inspect.signature(cls).parameters)
    unknown = sorted(set(config.training) - known)
    if unknown:
        raise ConfigError(f"unknown training parameter(s) for {config.estimator}: {', '.join(unknown)}")
    try:
        estimator = cls(**config.training)
        validate = getattr(estimator, "_validate_params", None)  # scikit-learn's, on every estimator of its own
        if callable(validate):
            validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid training parameter in config: {str(exc).splitlines()[0]}") from None
    capped = {
        name: min(value, cap)
        for name, cap in PROBE_CAPS.items()
        if isinstance(value := config.training.get(name), int) and not isinstance(value, bool)
    }
    if "n_jobs" in config.training:
        capped["n_jobs"] = 1  # a few rows: no worker processes
    rows = PROBE_ROWS
    probe = {name: np.arange(rows, dtype=np.float64) for name in config.schema.numeric_features}
    probe.update(
        {name: np.array(["a", "b"] * (rows // 2), dtype=object) for name in config.schema.categorical_features}
    )
    # Labels of the data's kind; a class_weight dict names the real ones, so it must see those.
    weights = config.training.get("class_weight")
    if isinstance(weights, dict) and len(weights) == 2:
        labels = list(weights)
    elif config.schema.numeric_target:
        labels = [0, 1]
    else:
        labels = [config.schema.positive_label, "(another label)"]
    bounded = dataclasses.replace(config, training={**config.training, **capped})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a capped max_iter does not converge: that is not the point
            build_model(bounded).fit(feature_matrix(probe, config.schema), np.array(labels * (rows // 2)))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid training parameter in config: {str(exc).splitlines()[0]}") from None


# A fit's warnings as the history, the manifest and the report keep them: a few short lines.
MAX_FIT_WARNINGS = 5
FIT_WARNING_CHARS = 240


def fit_warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """The warnings a fit raised as distinct one-line texts ("ConvergenceWarning: lbfgs failed to converge
    ..."), in the order first raised, each cut to FIT_WARNING_CHARS; past MAX_FIT_WARNINGS of them, the
    last line says how many more there were."""
    lines: list[str] = []
    for caught_warning in caught:
        words = " ".join(str(caught_warning.message).split())
        line = f"{caught_warning.category.__name__}: {words}"
        if len(line) > FIT_WARNING_CHARS:
            line = line[: FIT_WARNING_CHARS - 1] + "\u2026"
        if line not in lines:
            lines.append(line)
    if len(lines) > MAX_FIT_WARNINGS:
        more = len(lines) - (MAX_FIT_WARNINGS - 1)
        lines = [*lines[: MAX_FIT_WARNINGS - 1], f"and {more} more distinct warning(s)"]
    return lines


def fit_model(data: pd.DataFrame, config: Config, warnings_out: list[str] | None = None) -> Pipeline:
    """Fit a fresh model on a DataFrame in the schema; returns the fitted pipeline.

    The fit's warnings (a ConvergenceWarning...) are not printed: each distinct one is logged as one
    line and, when `warnings_out` is given, appended to it (``fit_warning_lines``).
    """
    schema = config.schema
    features, labels = labelled_rows(data, schema)
    if len(labels) == 0:
        raise PipelineError("no labelled rows to train on")
    values = pd.unique(labels)
    if len(values) < 2:
        raise PipelineError(
            f"training data has only one class ({schema.target_column}={values[0]}): cannot fit a classifier"
        )
    if len(values) > 2:
        raise PipelineError(
            f"column {schema.target_column!r} has {len(values)} distinct values: a churn classifier needs exactly two"
        )
    if schema.positive_label not in set(values.tolist()):
        raise ConfigError(
            f"schema.positive_label {schema.positive_label!r} is not a value of column "
            f"{schema.target_column!r} (its values: {', '.join(sorted(map(repr, values.tolist())))})"
        )
    model = build_model(config)
    _check_dense_fits(model, features, config)
    with warnings.catch_warnings(record=True) as caught:
        # Recorded, not printed: a cron mail of raw warnings helps nobody; the history and the report keep them.
        warnings.simplefilter("always")
        try:
            model.fit(features, labels)
        except ValueError as exc:
            raise PipelineError(f"training failed: {exc}") from None
    lines = fit_warning_lines(caught)
    for line in lines:
        log.warning("fit warning: %s", line)
    if warnings_out is not None:
        warnings_out.extend(lines)
    return model


# Calibration: fewer labelled rows, or fewer rows of a class in the held-out part, give a calibration
# noisier than the raw probabilities it would correct.
CALIBRATION_MIN_ROWS = 100
CALIBRATION_MIN_CLASS_ROWS = 10
CALIBRATION_HELD_OUT = 0.25
# Beyond this many labelled rows a stratified sample of them is calibrated on: a calibration needs no
# more, and the copy's fit is then bounded whatever the data's size.
CALIBRATION_MAX_ROWS = 100_000
# scikit-learn's advice: isotonic regression overfits below about a thousand calibration rows.
ISOTONIC_MIN_ROWS = 1000
CALIBRATION_BINS = 10
CALIBRATION_FOLDS = 5


@dataclasses.dataclass
class Calibration:
    """A probability calibration learned at training time: the fitted calibrator (scikit-learn's
    CalibratedClassifierCV over a frozen copy of the pipeline; None when skipped) and its record for
    the manifest ("calibrated"; when calibrated: "method", "held_out_rows", "brier_before",
    "brier_after" and "curve"; when skipped: "reason")."""

    calibrator: Any
    record: dict

    @classmethod
    def skipped(cls, reason: str) -> Calibration:
        return cls(None, {"calibrated": False, "reason": reason})


def calibration_skip_reason(labels: np.ndarray, held_out: np.ndarray | None, positive: Any) -> str | None:
    """Why the labelled rows are too few to calibrate on (`held_out`: the labels of the held-out part), or None."""
    if len(labels) < CALIBRATION_MIN_ROWS:
        return f"{len(labels)} labelled row(s), fewer than {CALIBRATION_MIN_ROWS}"
    if held_out is not None:
        positives = int(np.sum(held_out == positive))
        fewest = min(positives, len(held_out) - positives)
        if fewest < CALIBRATION_MIN_CLASS_ROWS:
            return f"a class has {fewest} row(s) in the held-out part, fewer than {CALIBRATION_MIN_CLASS_ROWS}"
    return None


def calibration_curve_record(is_positive: np.ndarray, probabilities: np.ndarray) -> dict:
    """scikit-learn's calibration curve over CALIBRATION_BINS equal-width bins (empty bins left out), as lists."""
    fraction, mean = calibration_curve(is_positive, probabilities, n_bins=CALIBRATION_BINS)
    return {
        "mean_predicted": [round(float(v), 6) for v in mean],
        "fraction_positive": [round(float(v), 6) for v in fraction],
    }


def calibration_summary(record: dict) -> str:
    """The log line of a calibration record."""
    if not record.get("calibrated"):
        return f"no probability calibration: {record.get('reason')}"
    return (
        f"probability calibration ({record['method']}, {record['held_out_rows']} held-out rows): "
        f"Brier {record['brier_before']:.4f} before, {record['brier_after']:.4f} after"
    )


def _out_of_fold_probabilities(calibrator, features, labels: np.ndarray, column: int) -> np.ndarray:
    """Each row's calibrated probability from a calibrator fitted on the other folds. By hand rather than
    with cross_val_predict, which hands the calibrator labels encoded as integers while the frozen
    model's classes stay the data's own ("Yes"/"No")."""
    probabilities = np.empty(len(labels))
    folds = StratifiedKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=0)
    for fitted_on, predicted in folds.split(np.zeros(len(labels)), labels):
        part = clone(calibrator).fit(_rows(features, fitted_on), labels[fitted_on])
        probabilities[predicted] = part.predict_proba(_rows(features, predicted))[:, column]
    return probabilities


def _rows(features, positions: np.ndarray):
    return features.iloc[positions] if isinstance(features, pd.DataFrame) else features[positions]


def fit_calibration(data: pd.DataFrame, config: Config) -> Calibration:
    """Learn the positive class's probability calibration from the labelled rows of `data`.

    A copy of the pipeline is fitted on a stratified 75 % of them (of a stratified sample of
    CALIBRATION_MAX_ROWS when there are more) and calibrated (sigmoid; isotonic from
    ISOTONIC_MIN_ROWS held-out rows) on the other 25 %. The Brier score "after" is measured out of fold
    (each held-out row calibrated by a calibrator not fitted on it), so it is not flattered. Too few rows,
    an estimator without probabilities or a failed fit: skipped, with the reason.
    """
    schema = config.schema
    features, labels = labelled_rows(data, schema)
    reason = calibration_skip_reason(labels, None, schema.positive_label)
    if reason:
        return Calibration.skipped(reason)
    try:
        if len(labels) > CALIBRATION_MAX_ROWS:
            features, _, labels, _ = train_test_split(
                features, labels, train_size=CALIBRATION_MAX_ROWS, stratify=labels, random_state=0
            )
        train_x, held_x, train_y, held_y = train_test_split(
            features, labels, test_size=CALIBRATION_HELD_OUT, stratify=labels, random_state=0
        )
    except ValueError as exc:
        return Calibration.skipped(f"no stratified held-out part: {exc}")
    reason = calibration_skip_reason(labels, held_y, schema.positive_label)
    if reason:
        return Calibration.skipped(reason)
    copy = build_model(config)
    if not hasattr(copy, "predict_proba"):
        return Calibration.skipped(f"{config.estimator} gives no probabilities")
    try:
        with warnings.catch_warnings():
            # The copy warns as the served model's fit did, whose warnings are the ones recorded.
            warnings.simplefilter("ignore")
            copy.fit(train_x, train_y)
        method = "isotonic" if len(held_y) >= ISOTONIC_MIN_ROWS else "sigmoid"
        calibrator = CalibratedClassifierCV(FrozenEstimator(copy), method=method)
        column = list(copy.classes_).index(schema.positive_label)
        after = _out_of_fold_probabilities(calibrator, held_x, held_y, column)
        calibrator.fit(held_x, held_y)
    except ValueError as exc:
        return Calibration.skipped(f"calibration failed: {str(exc).splitlines()[0]}")
    before = copy.predict_proba(held_x)[:, column]
    is_positive = (held_y == schema.positive_label).astype(np.int64)
    record = {
        "calibrated": True,
        "method": method,
        "held_out_rows": len(held_y),
        "brier_before": round(float(brier_score_loss(is_positive, before)), 6),
        "brier_after": round(float(brier_score_loss(is_positive, after)), 6),
        "curve": {
            "before": calibration_curve_record(is_positive, before),
            "after": calibration_curve_record(is_positive, after),
        },
    }
    return Calibration(calibrator, record)


def record_score(config: Config, score: float) -> None:
    """Add the trained model's test F1 to trainedmodel.json (this module is the file's one writer)."""
    record = read_json(config.model_folder / MODEL_RECORD_FILE)
    if record:
        write_json_atomic(config.model_folder / MODEL_RECORD_FILE, {**record, "f1": score})


def save_model(
    model,
    config: Config,
    rows: int | None = None,
    calibration: Calibration | None = None,
    fit_warnings: list[str] | None = None,
) -> Path:
    """Write trainedmodel.pkl (and calibrator.pkl, with a `calibration` that has a calibrator) and, after
    them, trainedmodel.json recording their sha256, the calibration's record, the sha256 of the
    ingestedfiles.json it was trained from, the estimator and parameters it was fitted with, and the
    warnings its fit raised (`fit_warnings`, [] when none).

    Deployment and scoring unpickle or publish only a model file whose bytes
    match that record: a pickle dropped into the folder by anything else is
    refused before it is ever loaded, and a model is published only with the
    ingestion record and the score that belong to it.
    """
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    path = config.model_folder / MODEL_FILE
    detail = config.output_folder / INGESTED_DETAIL_FILE
    calibrator_path = config.model_folder / CALIBRATOR_FILE
    calibrator_sha256 = None
    if calibration is not None and calibration.calibrator is not None:
        calibrator_bytes = pickle.dumps(calibration.calibrator, protocol=pickle.HIGHEST_PROTOCOL)
        write_bytes_atomic(calibrator_path, calibrator_bytes)
        calibrator_sha256 = hashlib.sha256(calibrator_bytes).hexdigest()
    else:
        calibrator_path.unlink(missing_ok=True)  # an older model's: never published with this one
    write_bytes_atomic(path, data)
    write_json_atomic(
        config.model_folder / MODEL_RECORD_FILE,
        {
            "sha256": hashlib.sha256(data).hexdigest(),
            "created": now_iso(),
            "rows": rows,
            "ingested_sha256": sha256_file(detail) if detail.is_file() else None,
            # Published in the version's manifest: a tick retrains when the config's estimator or parameters change.
            "model_config": model_config_of(config),
            "calibrator_sha256": calibrator_sha256,
            "calibration": calibration.record if calibration is not None else None,
            "fit_warnings": list(fit_warnings or []),
        },
    )
    return path


def read_trained_model_bytes(config: Config, purpose: str = "cannot use the trained model") -> bytes:
    """The bytes of trainedmodel.pkl, checked against the sha256 training recorded (PipelineError otherwise)."""
    path = config.model_folder / MODEL_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{purpose}: {path} not found: run training.py first") from None
    expected = read_json(config.model_folder / MODEL_RECORD_FILE).get("sha256")
    actual = hashlib.sha256(data).hexdigest()
    if expected is None:
        raise PipelineError(
            f"{purpose}: {path} has no {MODEL_RECORD_FILE} beside it: only a model training.py "
            "wrote is used; run training.py"
        )
    if actual != expected:
        raise PipelineError(
            f"{purpose}: {path} is not the model training.py wrote (sha256 {actual[:12]}..., "
            f"recorded {str(expected)[:12]}...): refusing to load it; run training.py"
        )
    return data


def read_trained_calibrator_bytes(config: Config, purpose: str = "cannot use the calibrator") -> bytes | None:
    """The bytes of calibrator.pkl, checked against the sha256 training recorded; None when training
    recorded no calibrator (PipelineError when the file is missing or is not the one recorded)."""
    expected = read_json(config.model_folder / MODEL_RECORD_FILE).get("calibrator_sha256")
    if expected is None:
        return None
    path = config.model_folder / CALIBRATOR_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{purpose}: {path} not found: run training.py") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise PipelineError(f"{purpose}: {path} is not the calibrator training.py wrote: run training.py")
    return data


def load_trained_model(config: Config):
    """The model training.py wrote, unpickled only after its bytes match the recorded sha256."""
    data = read_trained_model_bytes(config)
    try:
        return pickle.loads(data)
    except Exception as exc:  # a matching hash with a broken pickle: still not usable
        raise PipelineError(f"cannot load model {config.model_folder / MODEL_FILE}: {exc}") from None


def train_model(config: Config | None = None):
    """Train on finaldata.csv and save trainedmodel.pkl in output_model_path; returns the model."""

    config = config or load_config()
    check_training_parameters(config)
    data = read_final_data(config)
    fit_warnings: list[str] = []
    model = fit_model(data, config, warnings_out=fit_warnings)
    calibration = fit_calibration(data, config)
    rows = int(data[config.schema.target_column].notna().sum())
    save_model(model, config, rows=rows, calibration=calibration, fit_warnings=fit_warnings)
    log.info("trained on %d row(s); saved %s", rows, config.model_folder / MODEL_FILE)
    log.info("%s", calibration_summary(calibration.record))
    return model
