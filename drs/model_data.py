"""The model's input and output as arrays: the feature matrix of a schema, the labels, and the positive
class's probabilities.

numpy and pandas only: the drift tests and the report take the model's view of the data without loading
scikit-learn or the training code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drs.config import COURSE_SCHEMA, Schema


def feature_matrix(data, schema: Schema = COURSE_SCHEMA):
    """The model's input from the schema's features of `data` (a DataFrame, or a dict of columns).

    Numeric features only (the course): a float array (n_rows, n_features), as the course's model
    takes. With categorical features: a DataFrame of the features, missing categories as NaN.
    """
    if not schema.categorical_features:
        return np.column_stack([np.asarray(data[name], dtype=np.float64) for name in schema.numeric_features])
    frame = pd.DataFrame({name: np.asarray(data[name], dtype=np.float64) for name in schema.numeric_features})
    for name in schema.categorical_features:
        # By position: `data` may be a subset (the labelled rows) whose index has gaps.
        values = pd.Series(np.asarray(data[name], dtype=object), index=frame.index)
        frame[name] = values.where(values.notna(), np.nan)
    return frame


def target_labels(values: pd.Series, schema: Schema) -> np.ndarray:
    """A target column as the labels the model learns and predicts: whole numbers as int64
    (the course's 0 and 1), other numbers as float64, text as text."""
    if not schema.numeric_target:
        return values.to_numpy(dtype=object)
    numbers = values.to_numpy(dtype=np.float64)
    return numbers.astype(np.int64) if np.all(numbers == np.round(numbers)) else numbers


def labelled_rows(data: pd.DataFrame, schema: Schema = COURSE_SCHEMA):
    """(X, y) for the rows that have a label."""
    labelled = data[data[schema.target_column].notna()]
    return feature_matrix(labelled, schema), target_labels(labelled[schema.target_column], schema)


def positive_probabilities(model, features, schema: Schema):
    """Probability of the positive label for each row, or None when the estimator has no predict_proba."""
    if not hasattr(model, "predict_proba"):
        return None
    classes = list(model.classes_)
    return model.predict_proba(features)[:, classes.index(schema.positive_label)]
