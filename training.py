"""Training: fit the churn classifier on the ingested data.

Reads ``output_folder_path/finaldata.csv``, writes ``output_model_path/trainedmodel.pkl``.

The model is the course's LogisticRegression (hyperparameters overridable
under ``"training"`` in the config) behind a median imputer: a missing
feature value is replaced by that feature's median in the training data, so
files with gaps still train and predict. Rows with no ``exited`` label are
not used for training.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from cli import stage_main
from settings import (
    FEATURE_COLUMNS,
    INGESTED_DETAIL_FILE,
    MODEL_FILE,
    MODEL_RECORD_FILE,
    TARGET_COLUMN,
    Config,
    ConfigError,
    PipelineError,
    load_config,
)
from storage import now_iso, read_json, sha256_file, write_bytes_atomic, write_json_atomic

log = logging.getLogger("training")


def feature_matrix(data: pd.DataFrame) -> np.ndarray:
    """Features in schema order as a float array (n_rows, n_features)."""
    return data.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64, na_value=np.nan)


def labelled_rows(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) for the rows that have a label."""
    labelled = data[data[TARGET_COLUMN].notna()]
    return feature_matrix(labelled), labelled[TARGET_COLUMN].to_numpy(dtype=np.int64)


def build_model(params: dict) -> Pipeline:
    """The unfitted model; a parameter scikit-learn refuses is a ConfigError (exit 2)."""
    try:
        classifier = LogisticRegression(**params)
    except TypeError as exc:
        raise ConfigError(f"invalid training parameter in config: {exc}") from None
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("classifier", classifier)])


def check_training_parameters(params: dict) -> None:
    """Fail early, as a ConfigError, on parameters that would only fail at fit time.

    scikit-learn checks parameter values when fitting; a fit on two rows
    does that in milliseconds, before a tick spends time on ingestion.
    """
    probe = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    try:
        build_model(params).fit(probe, np.array([0, 1]))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid training parameter in config: {str(exc).splitlines()[0]}") from None


def fit_model(data: pd.DataFrame, params: dict) -> Pipeline:
    """Fit a fresh model on a DataFrame in the schema; returns the fitted pipeline."""
    features, labels = labelled_rows(data)
    if len(labels) == 0:
        raise PipelineError("no labelled rows to train on")
    if len(np.unique(labels)) < 2:
        raise PipelineError(f"training data has only one class ({TARGET_COLUMN}={labels[0]}): cannot fit a classifier")
    model = build_model(params)
    try:
        model.fit(features, labels)
    except ValueError as exc:
        raise PipelineError(f"training failed: {exc}") from None
    return model


def save_model(model, config: Config, rows: int | None = None) -> Path:
    """Write trainedmodel.pkl and, after it, trainedmodel.json recording its sha256 and the
    sha256 of the ingestedfiles.json it was trained from.

    Deployment and scoring unpickle or publish only a model file whose bytes
    match that record: a pickle dropped into the folder by anything else is
    refused before it is ever loaded, and a model is published only with the
    ingestion record and the score that belong to it.
    """
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    path = config.model_folder / MODEL_FILE
    detail = config.output_folder / INGESTED_DETAIL_FILE
    write_bytes_atomic(path, data)
    write_json_atomic(config.model_folder / MODEL_RECORD_FILE, {
        "sha256": hashlib.sha256(data).hexdigest(), "created": now_iso(), "rows": rows,
        "ingested_sha256": sha256_file(detail) if detail.is_file() else None})
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
        raise PipelineError(f"{purpose}: {path} has no {MODEL_RECORD_FILE} beside it: only a model training.py "
                            "wrote is used; run training.py")
    if actual != expected:
        raise PipelineError(f"{purpose}: {path} is not the model training.py wrote (sha256 {actual[:12]}..., "
                            f"recorded {str(expected)[:12]}...): refusing to load it; run training.py")
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
    from ingestion import read_final_data

    config = config or load_config()
    check_training_parameters(config.training)
    data = read_final_data(config)
    model = fit_model(data, config.training)
    save_model(model, config, rows=int(data[TARGET_COLUMN].notna().sum()))
    log.info("trained on %d row(s); saved %s", int(data[TARGET_COLUMN].notna().sum()), config.model_folder / MODEL_FILE)
    return model


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        train_model(config)
        return f"wrote {config.model_folder / MODEL_FILE}"

    return stage_main("training", "Train the model on the ingested data.", run, argv, lock=True)


if __name__ == "__main__":
    sys.exit(main())
