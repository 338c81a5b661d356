"""Categories: how a categorical feature's text is normalised, and which categories a fitted model knows.

Exports pad and re-space their text (" owner ", "Fiber  optic"); a model must not take those for new
categories, and drift tests must not count them as a shift. ``normalize_categories`` is the one place
that decides what a category is: ingestion, the test data, the ingested data read back and every
form of API input go through it. ``known_categories`` reads what a fitted pipeline's one-hot encoder
was trained on, so the API can say which values of a request it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from drs.config import CATEGORY_MODES

# Every character Python's str.isspace calls whitespace, written out: pandas runs a regex with Python's
# re, or on Arrow-backed columns (by version) with pyarrow's RE2, whose `\s` is ASCII only; spelt out,
# the class means the same to both.
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE_RUN = f"[{WHITESPACE}]+"
UNSEEN_WARNING = "category never seen in training"
MAX_WARNINGS = 100  # warnings per answer; the rest are counted
MAX_VALUE_CHARS = 200  # of a value quoted in a warning: an answer stays bounded whatever a client sends


def normalize_text(values: pd.Series, mode: str = "trim") -> pd.Series:
    """`values` (text, missing as NaN or None) normalised: "trim" trims surrounding whitespace and
    collapses each inner run of whitespace to one space; "casefold" also applies Unicode NFKC
    normalisation and str.casefold, so "Ｏｗｎｅｒ" and "OWNER" are "owner". Missing values stay missing;
    the dtype is kept."""
    if mode not in CATEGORY_MODES:
        raise ValueError(f"unknown category normalisation {mode!r} (known: {', '.join(CATEGORY_MODES)})")
    if mode == "casefold":
        # First: NFKC turns some characters (an ideographic space) into plain whitespace.
        values = values.str.normalize("NFKC").str.casefold()
    return values.str.replace(WHITESPACE_RUN, " ", regex=True).str.strip(" ")


def normalize_categories(
    frame: pd.DataFrame, columns: Iterable[str], mode: str = "trim", na_values: Iterable[str] = ()
) -> pd.DataFrame:
    """`frame` with each of `columns` (the categorical features) normalised by `normalize_text`, in place
    and returned. A value that is empty after normalisation, or a spelling of missing (`na_values`,
    normalised alike), is missing, as an empty cell is. Columns of numbers are left as they are."""
    spellings = list(normalize_text(pd.Series(["", *na_values], dtype=object), mode))
    for name in columns:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values.dtype):
            continue
        # A feature holds few categories in many rows: each distinct one is normalised once (a million rows
        # of four categories: 30 ms, against 500 ms row by row), then spread back over the rows.
        codes, distinct = values.factorize()
        text = normalize_text(pd.Series(distinct, dtype=values.dtype), mode)
        text = text.mask(text.isin(spellings))
        taken = pd.api.extensions.take(text.array, codes, allow_fill=True)
        frame[name] = pd.Series(taken, index=values.index, dtype=values.dtype)
    return frame


def known_categories(model: Any) -> dict[str, frozenset]:
    """Feature -> the categories the fitted pipeline's one-hot encoders were trained on (every one seen,
    those encoded together as infrequent included); empty for a pipeline without an encoder (numeric
    features only) or one of another shape. Never raises.

    The shape drs/train.py builds: a Pipeline whose column transformer holds, per group of columns, an
    encoder or a Pipeline ending in one; an encoder is what has `categories_` (scikit-learn's, read by
    its attributes: this module is imported by ingestion, which needs no scikit-learn).
    """
    known: dict[str, frozenset] = {}
    for _, step in getattr(model, "steps", None) or ():
        for _, transformer, columns in getattr(step, "transformers_", None) or ():
            steps = getattr(transformer, "steps", None)
            encoder = steps[-1][1] if steps else transformer
            categories = getattr(encoder, "categories_", None)
            if categories is None or isinstance(columns, str):
                continue
            for column, seen in zip(columns, categories, strict=False):
                if isinstance(column, str):
                    known[column] = frozenset(seen.tolist())
    return known


def unseen_categories(features: Any, known: dict[str, frozenset], limit: int = MAX_WARNINGS) -> tuple[list[dict], int]:
    """(warnings, how many more there were) for the values of `features` (the model's input, a DataFrame
    for a categorical schema) that are not among the `known` categories of their feature: the first
    `limit`, by record then feature, each {"record": row, "feature", "value", "warning"}. A missing value
    is imputed, never unseen."""
    if not isinstance(features, pd.DataFrame) or not known:
        return [], 0
    names = [name for name in features.columns if name in known]
    rows: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    for position, name in enumerate(names):
        values = features[name]
        hits = np.flatnonzero((values.notna() & ~values.isin(list(known[name]))).to_numpy())
        rows.append(hits)
        positions.append(np.full(len(hits), position))
    if not rows:
        return [], 0
    every_row, every_position = np.concatenate(rows), np.concatenate(positions)
    first = np.lexsort((every_position, every_row))[:limit]
    warnings = []
    for index in first:
        row, name = int(every_row[index]), names[every_position[index]]
        value = str(features[name].iat[row])
        warnings.append({"record": row, "feature": name, "value": value[:MAX_VALUE_CHARS], "warning": UNSEEN_WARNING})
    return warnings, len(every_row) - len(warnings)
