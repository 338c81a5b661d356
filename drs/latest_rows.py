"""One row per id: the schema's ``id_column`` names an application (a customer), and its outcome often
arrives months after its features. A later export that brings the label for a row seen without one,
or corrects a label, replaces the earlier row instead of standing beside it.

Of the rows that share an id, the one kept is a labelled one rather than an unlabelled one (a
re-sent application without its outcome does not erase a known outcome), then the one from the
newest file (by modification time, then name), then the later one within that file. Rows without
an id are all kept. Without an ``id_column`` nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from drs.config import Schema


@dataclass
class LatestRows:
    """`latest_per_id`'s answer: the rows kept (in the order they came), how many rows another row of
    their id replaced, and per file how many of its kept rows gained or changed a label that way."""

    data: pd.DataFrame
    replaced: int = 0
    new_labels: dict[str, int] = field(default_factory=dict)


def file_ranks(fingerprints: dict[str, dict]) -> dict[str, int]:
    """File name -> its rank, 0 the oldest: by modification time, then by name."""
    order = sorted(fingerprints, key=lambda name: (fingerprints[name].get("mtime_ns") or 0, name))
    return {name: rank for rank, name in enumerate(order)}


def latest_per_id(data: pd.DataFrame, files: np.ndarray, ranks: dict[str, int], schema: Schema) -> LatestRows:
    """`data` with one row per id (see the module's docstring). `files`: each row's file name;
    `ranks`: `file_ranks` of those files. The rows keep their order; the index is reset."""
    if schema.id_column is None:
        return LatestRows(data.reset_index(drop=True))
    ids = data[schema.id_column]
    shared = (ids.duplicated(keep=False) & ids.notna()).to_numpy()
    if not shared.any():  # the common case, the course's data among it: nothing to choose
        return LatestRows(data.reset_index(drop=True))
    labels = data[schema.target_column]
    candidates = pd.DataFrame(
        {
            "id": ids[shared].to_numpy(),
            "labelled": labels[shared].notna().to_numpy(),
            "rank": [ranks[name] for name in files[shared]],
            "position": np.flatnonzero(shared),
            "label": labels[shared].to_numpy(),
        }
    ).sort_values(["id", "labelled", "rank", "position"], kind="stable")
    winners = candidates.drop_duplicates("id", keep="last")
    losers = candidates.drop(winners.index).merge(
        winners[["id", "label", "labelled", "rank", "position"]], on="id", suffixes=("", "_kept")
    )
    # A kept label that an earlier row of its id did not have (no label, or another one); a later row
    # without a label gives nothing to the one kept.
    earlier = (losers["rank"] < losers["rank_kept"]) | (
        (losers["rank"] == losers["rank_kept"]) & (losers["position"] < losers["position_kept"])
    )
    changed = ~losers["labelled"] | (losers["label"] != losers["label_kept"])
    gained = losers[losers["labelled_kept"] & earlier & changed]
    relabelled = winners[winners["id"].isin(set(gained["id"]))]
    new_labels: dict[str, int] = {}
    for name in files[relabelled["position"].to_numpy()]:
        new_labels[name] = new_labels.get(name, 0) + 1
    keep = ~shared
    keep[winners["position"].to_numpy()] = True
    return LatestRows(data[keep].reset_index(drop=True), int(shared.sum() - len(winners)), new_labels)
