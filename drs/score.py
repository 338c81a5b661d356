"""Scoring: F1 of the trained model on the test data.

Reads ``output_model_path/trainedmodel.pkl`` and ``test_data_path/testdata.csv``;
writes the F1 score (for the schema's positive label), as a bare number, to ``output_model_path/latestscore.txt``.
"""

from __future__ import annotations

import logging

import pandas as pd
from sklearn.metrics import f1_score

from drs.config import COURSE_SCHEMA, Config, PipelineError, Schema, load_config
from drs.files import SCORE_FILE
from drs.ingest import read_labelled_csv
from drs.storage import write_text_atomic
from drs.train import labelled_rows, load_trained_model, record_score

log = logging.getLogger("scoring")


def load_test_data(config: Config) -> pd.DataFrame:

    path = config.test_data_file
    if not path.is_file():
        raise PipelineError(f"test data not found: {path}")
    return read_labelled_csv(path, config.schema, config.na_values, config.normalize_categories)


def f1_on(model, data: pd.DataFrame, schema: Schema = COURSE_SCHEMA) -> float:
    """F1 for the positive label of `model` on the labelled rows of `data` (0.0 when nothing is
    predicted positive)."""

    features, labels = labelled_rows(data, schema)
    if len(labels) == 0:
        raise PipelineError("no labelled rows to score on")
    unknown = set(pd.unique(labels).tolist()) - set(model.classes_.tolist())
    if unknown:
        raise PipelineError(
            f"column {schema.target_column!r} holds label(s) the model never saw: "
            f"{', '.join(sorted(map(repr, unknown)))[:120]}"
        )
    predictions = model.predict(features)
    return float(f1_score(labels, predictions, pos_label=schema.positive_label, average="binary", zero_division=0.0))


def all_positive_f1(data: pd.DataFrame, schema: Schema = COURSE_SCHEMA) -> float:
    """F1 of the model that calls every customer a churner: the floor any model must clear."""
    labels = data[schema.target_column].dropna()
    share = float((labels == schema.positive_label).mean()) if len(labels) else 0.0
    return 2 * share / (1 + share)


def save_score(config: Config, score: float) -> None:
    """Write the score, as a bare number, to latestscore.txt (the course's record), and beside the
    trained model's sha256 in trainedmodel.json: deployment publishes a model only with its own score."""
    write_text_atomic(config.model_folder / SCORE_FILE, f"{score}\n")
    record_score(config, score)
    log.info("F1 on %s: %.4f; wrote %s", config.test_data_file, score, config.model_folder / SCORE_FILE)


def score_model(config: Config | None = None, model=None, write: bool = True) -> float:
    """F1 of the model (default: the one training.py wrote) on testdata.csv; writes latestscore.txt when `write`."""
    config = config or load_config()
    if model is None:
        model = load_trained_model(config)
    score = f1_on(model, load_test_data(config), config.schema)
    if write:
        save_score(config, score)
    return score
