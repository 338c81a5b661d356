"""Categories: how a categorical feature's text is normalised, and which categories a fitted model knows.

Exports pad and re-space their text (" owner ", "Fiber  optic"); a model must not take those for new
categories, and drift tests must not count them as a shift. ``normalize_value`` is the one place that
decides what a category's text is: ``normalize_categories`` applies it to the columns of a table
(ingestion, the test data, the ingested data read back, a CSV sent to the API), the API to each value
of a JSON record. ``known_categories`` reads what a fitted pipeline's one-hot encoder was trained on,
so the API can say which values of a request it never saw.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from drs.config import CATEGORY_MODES

UNSEEN_WARNING = "category never seen in training"
MAX_WARNINGS = 100  # warnings per answer; the rest are counted
MAX_VALUE_CHARS = 200  # of a value quoted in a warning: an answer stays bounded whatever a client sends


def normalize_value(text: str, mode: str = "trim") -> str:
    """One category's text normalised: "trim" trims surrounding whitespace and makes each inner run of
    whitespace (str.isspace's, the no-break space included) one space; "casefold" also applies Unicode
    NFKC normalisation and str.casefold, so "Ｏｗｎｅｒ" and " OWNER " are "owner"."""
    if mode == "trim":
        return " ".join(text.split())
    if mode == "casefold":
        # NFKC first: it turns some characters (an ideographic space) into plain whitespace.
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    raise ValueError(f"unknown category normalisation {mode!r} (known: {', '.join(CATEGORY_MODES)})")


def missing_spellings(mode: str = "trim", na_values: Iterable[str] = ()) -> frozenset[str]:
    """The normalised texts that mean a missing value: the empty text (a blank cell) and `na_values`."""
    return frozenset(normalize_value(text, mode) for text in ("", *na_values))


def normalize_categories(
    frame: pd.DataFrame, columns: Iterable[str], mode: str = "trim", na_values: Iterable[str] = ()
) -> pd.DataFrame:
    """`frame` with each of `columns` (the categorical features) normalised by `normalize_value`, in place
    and returned; each column keeps its dtype. Missing values stay missing; a value that is empty once
    normalised, or a spelling of missing (`na_values`, normalised alike), is missing, as an empty cell
    is. Columns of numbers are left as they are."""
    missing = missing_spellings(mode, na_values)
    for name in columns:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values.dtype):
            continue
        # A feature holds few categories in many rows: each distinct one is normalised once (pandas'
        # hashing finds them), then spread back over the rows by an array take.
        codes, distinct = values.factorize()
        texts = [_text_or_missing(value, mode, missing) for value in distinct.tolist()]
        normalized = pd.array(texts, dtype=values.dtype)
        frame[name] = pd.Series(normalized.take(codes, allow_fill=True), index=values.index, dtype=values.dtype)
    return frame


def _text_or_missing(value, mode: str, missing: frozenset[str]):
    """A cell's text normalised, or None when that is a spelling of missing; anything but text as it is."""
    if not isinstance(value, str):
        return value
    text = normalize_value(value, mode)
    return None if text in missing else text


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
    found: list[tuple[int, int, str, str]] = []
    total = 0
    for position, name in enumerate(name for name in features.columns if name in known):
        column = features[name]
        # Each distinct value is looked up once, and the rows are searched only for an unseen one: the
        # common request, every category known, pays a set of its values, not pandas' per-call costs.
        unseen = {value for value in set(column.tolist()) if isinstance(value, str) and value not in known[name]}
        if not unseen:
            continue
        rows = np.flatnonzero(column.isin(list(unseen)).to_numpy())
        total += len(rows)
        found.extend((int(row), position, name, column.iat[row]) for row in rows[:limit])
    found.sort(key=lambda hit: hit[:2])
    warnings = [
        {"record": row, "feature": name, "value": value[:MAX_VALUE_CHARS], "warning": UNSEEN_WARNING}
        for row, _, name, value in found[:limit]
    ]
    return warnings, total - len(warnings)
