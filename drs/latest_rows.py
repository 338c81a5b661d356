"""One row per id: the schema's ``id_column`` names an application (a customer), and its outcome often
arrives months after its features. A later export that brings the label for a row seen without one,
or corrects a label, replaces the earlier row instead of standing beside it.

Of the rows that share an id, the one kept is a labelled one rather than an unlabelled one (a
re-sent application without its outcome does not erase a known outcome), then the one from the
newest file (by modification time, then by when it came into the folder, then by name), then the later
one within that file. Ids are text, trimmed; a blank id or a spelling of missing is no id. Rows without
an id are all kept. Without an ``id_column`` nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drs.config import Schema

# Spellings an export uses for "no id": such rows are kept one by one, never merged as one id.
MISSING_ID_SPELLINGS = ("NA", "N/A", "null", "NULL", "NaN", "nan", "None", "-")


def clean_ids(ids: pd.Series, missing: tuple[str, ...] = MISSING_ID_SPELLINGS) -> pd.Series:
    """An id column as text ids: surrounding whitespace trimmed (" a17" is "a17"), and a blank or a
    spelling of missing no id. Vectorised: every id is distinct, so there is no per-value shortcut."""
    if pd.api.types.is_numeric_dtype(ids.dtype):
        return ids
    trimmed = ids.str.strip()
    return trimmed.where(~(trimmed.isin(missing) | (trimmed == "")), None)


@dataclass
class LatestRows:
    """`latest_per_id`'s answer: the rows kept (in the order they came), how many rows another row of
    their id replaced, and per file how many of its kept rows gained or changed a label that way."""

    data: pd.DataFrame
    replaced: int = 0
    new_labels: dict[str, int] = field(default_factory=dict)


def file_ranks(fingerprints: dict[str, dict]) -> dict[str, int]:
    """File name -> its rank, 0 the oldest: by modification time, then by the time it came into the
    folder (ctime: a copy that kept its source's mtime, `cp -p`, `rsync -a`, an unpacked archive, still
    came later), then by name."""

    def age(name: str) -> tuple:
        found = fingerprints[name]
        return (found.get("mtime_ns") or 0, found.get("ctime_ns") or 0, name)

    order = sorted(fingerprints, key=age)
    return {name: rank for rank, name in enumerate(order)}


def latest_per_id(data: pd.DataFrame, files: np.ndarray, ranks: dict[str, int], schema: Schema) -> LatestRows:
    """`data` with one row per id (see the module's docstring). `files`: each row's file name;
    `ranks`: `file_ranks` of those files. The rows keep their order; the index is reset.

    Unique ids (the common case) cost one hash of the column; otherwise the work is in integer arrays
    (ids factorised, one sort of the rows that share an id)."""
    if schema.id_column is None:
        return LatestRows(data.reset_index(drop=True))
    if data[schema.id_column].is_unique:  # the common case, the course's data among it: nothing to choose
        return LatestRows(data.reset_index(drop=True))
    codes, _ = pd.factorize(data[schema.id_column])  # a missing id is -1
    counts = np.bincount(codes[codes >= 0], minlength=1)
    shared = (codes >= 0) & (counts[np.maximum(codes, 0)] > 1)
    if not shared.any():  # only missing ids repeat
        return LatestRows(data.reset_index(drop=True))
    file_codes, names = pd.factorize(files)
    rank = np.array([ranks[name] for name in names])[file_codes]
    labels = data[schema.target_column].to_numpy()
    labelled = data[schema.target_column].notna().to_numpy()
    rows = np.flatnonzero(shared)
    # By id, then a labelled row after one without, then the newer file, then the later row: the last wins.
    rows = rows[np.lexsort((rows, rank[rows], labelled[rows], codes[rows]))]
    last = np.append(codes[rows][1:] != codes[rows][:-1], True)
    winners = rows[last]
    kept_by = np.repeat(winners, np.diff(np.append(0, np.flatnonzero(last) + 1)))  # each row's winner
    losers, kept_by = rows[~last], kept_by[~last]
    # A kept label that a row of its id in an older file did not have (no label, or another one): a
    # label that arrived later. A later row without a label gives nothing to the one kept, and two rows
    # of one file are one export, not a label that came afterwards.
    earlier = rank[losers] < rank[kept_by]
    changed = ~labelled[losers] | (labels[losers] != labels[kept_by])
    relabelled = np.unique(kept_by[labelled[kept_by] & earlier & changed])
    new_labels: dict[str, int] = {}
    for name in files[relabelled]:
        new_labels[name] = new_labels.get(name, 0) + 1
    keep = ~shared
    keep[winners] = True
    return LatestRows(data[keep].reset_index(drop=True), int(shared.sum() - len(winners)), new_labels)
