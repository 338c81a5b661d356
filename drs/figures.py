"""The figures of the report and the status page: each a function from data to PNG bytes.

matplotlib's object interface (Figure, no pyplot) with the Agg backend: no global state and no display,
so the API can draw in several threads at once and cron needs no screen. No PDF library here: the
status page draws the score history without loading the report's layout.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display under cron or in a server

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from drs.config import COURSE_SCHEMA, Schema  # noqa: E402
from drs.drift import category_counts  # noqa: E402
from drs.status_views import NO_DATA  # noqa: E402

# Distribution plots: a grid at most this many across and down per image (one image fits a page).
PLOTS_ACROSS, PLOTS_DOWN = 3, 4
TOP_CATEGORIES_PLOTTED = 10
# The prediction drift test counts a row as predicted positive above this probability.
PREDICTED_POSITIVE_ABOVE = 0.5
PROBABILITY_BINS = 20


@dataclass(frozen=True)
class ConfusionMatrix:
    """What the confusion-matrix figure draws: the labels and predictions of the labelled test rows,
    the model's classes in its own order, and the title's version and F1 (None when unknown)."""

    labels: np.ndarray
    predictions: np.ndarray
    classes: list
    version: str
    f1: float | None
    target_column: str


@dataclass(frozen=True)
class PredictedProbabilities:
    """What the prediction histogram draws: the positive-class probabilities model `version` gives the
    reference sample and the new rows (None or empty for a side without rows)."""

    reference: np.ndarray | None
    new: np.ndarray | None
    version: str
    reference_label: str = "training sample"
    new_label: str = "new rows"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_matrix_png(matrix: ConfusionMatrix) -> bytes:
    """PNG of a confusion matrix: one row and column per class of the model, named by its label
    (the course's 0 and 1, or e.g. "No", "Yes")."""
    figure = Figure(figsize=(5.5, 4.8), dpi=120)
    axes = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        matrix.labels,
        matrix.predictions,
        labels=matrix.classes,
        display_labels=[str(label) for label in matrix.classes],
        cmap="Blues",
        colorbar=False,
        ax=axes,
    )
    axes.set_title(
        f"Confusion matrix, model {matrix.version}\n"
        f"test data: {len(matrix.labels)} rows" + (f", F1 {matrix.f1:.3f}" if matrix.f1 is not None else "")
    )
    axes.set_xlabel(f"predicted {matrix.target_column}")
    axes.set_ylabel(f"actual {matrix.target_column}")
    figure.tight_layout()
    return _png(figure)


def calibration_curve_png(record: dict) -> bytes | None:
    """PNG of a calibration record's curves (drs.train.Calibration's "curve": mean predicted probability
    against the fraction of positives per bin, before and after calibration) with the diagonal of a
    perfect calibration; None for a record without curves."""
    curves = record.get("curve") if record.get("calibrated") else None
    if not isinstance(curves, dict) or not curves:
        return None
    figure = Figure(figsize=(5.5, 4.2), dpi=120)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for name, style in (("before", "o--"), ("after", "s-")):
        curve = curves.get(name) or {}
        if curve.get("mean_predicted"):
            axes.plot(curve["mean_predicted"], curve["fraction_positive"], style, label=f"{name} calibration")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean predicted probability of the positive class")
    axes.set_ylabel("fraction of positives")
    before, after = record.get("brier_before", math.nan), record.get("brier_after", math.nan)
    axes.set_title(
        f"Calibration on {record.get('held_out_rows', '?')} held-out rows\nBrier {before:.4f} before, {after:.4f} after"
    )
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def prediction_histogram_png(probabilities: PredictedProbabilities) -> bytes | None:
    """PNG of the positive-class probabilities on the reference sample and on the new rows, overlaid as
    densities on the same 20 bins over [0, 1], each side's predicted positive rate (probability above
    0.5) in the legend; None when neither side has a probability."""
    sides = [
        (_finite(probabilities.reference), probabilities.reference_label, "tab:blue"),
        (_finite(probabilities.new), probabilities.new_label, "tab:orange"),
    ]
    if not any(len(values) for values, _, _ in sides):
        return None
    figure = Figure(figsize=(6.5, 3.6), dpi=120)
    axes = figure.subplots()
    bins = np.linspace(0.0, 1.0, PROBABILITY_BINS + 1).tolist()
    rates = []
    for values, label, colour in sides:
        if not len(values):
            rates.append("-")
            axes.plot([], [], color=colour, label=f"{label}: {NO_DATA}")
            continue
        rate = f"{float(np.mean(values > PREDICTED_POSITIVE_ABOVE)):.1%}"
        rates.append(rate)
        axes.hist(
            values,
            bins=bins,
            density=True,
            alpha=0.55,
            color=colour,
            label=f"{label} ({len(values)} rows): {rate} predicted positive",
        )
    axes.axvline(PREDICTED_POSITIVE_ABOVE, linestyle=":", color="grey")
    axes.set_xlim(0, 1)
    axes.set_xlabel("probability of the positive class")
    axes.set_ylabel("density")
    axes.set_title(
        f"Predictions of model {probabilities.version}\npredicted positive rate {rates[0]} -> {rates[1]}", fontsize=10
    )
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def _finite(values) -> np.ndarray:
    if values is None:
        return np.empty(0)
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def score_history_png(history: list[dict]) -> bytes | None:
    """PNG of the test F1 of every deployment and rollback (deployment records, oldest first); None when
    no record has an F1."""
    points = [r for r in history if r.get("f1") is not None]
    if not points:
        return None
    figure = Figure(figsize=(7.5, 3.2), dpi=120)
    axes = figure.subplots()
    positions = list(range(1, len(points) + 1))
    axes.plot(positions, [float(r["f1"]) for r in points], color="tab:blue", linewidth=1.5, zorder=1)
    for action, marker, colour in (("deploy", "o", "tab:blue"), ("rollback", "s", "tab:orange")):
        chosen = [
            (x, float(r["f1"])) for x, r in zip(positions, points, strict=False) if r.get("action", "deploy") == action
        ]
        if chosen:
            axes.scatter(*zip(*chosen, strict=False), marker=marker, color=colour, zorder=2, label=action)
    # Label every point only while the labels stay readable.
    step = max(1, len(points) // 12)
    axes.set_xticks(positions[::step], [str(r.get("version", "?")) for r in points][::step], fontsize=8)
    axes.set_xlim(0.5, len(points) + 0.5)
    low = min(float(r["f1"]) for r in points)
    high = max(float(r["f1"]) for r in points)
    margin = max(0.05, (high - low) * 0.2)
    axes.set_ylim(max(0.0, low - margin), min(1.0, high + margin))
    axes.set_xlabel("deployment (version)")
    axes.set_ylabel("F1 on the test data")
    axes.set_title("Score history")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def distribution_pngs(reference, new, reference_label: str, schema: Schema = COURSE_SCHEMA) -> list[bytes]:
    """PNGs of the training data (`reference`) against the new data, one small plot per feature of
    the schema in a grid at most 3 across and 4 down, as many PNGs as the features need: numeric
    features as histograms (densities), categorical ones as side-by-side bars of the shares of their
    10 most frequent categories."""
    names = list(schema.features)
    per_image = PLOTS_ACROSS * PLOTS_DOWN
    parts = [names[start : start + per_image] for start in range(0, len(names), per_image)]
    return [
        _distribution_grid(
            reference, new, reference_label, schema, part, f" ({number} of {len(parts)})" if len(parts) > 1 else ""
        )
        for number, part in enumerate(parts, start=1)
    ]


def _distribution_grid(reference, new, reference_label: str, schema: Schema, names: list[str], part: str) -> bytes:
    across = min(PLOTS_ACROSS, len(names))
    down = math.ceil(len(names) / across)
    # Constrained layout makes room for the title above the grid and the legend below it.
    figure = Figure(figsize=(10, 3.2 * down), dpi=120, layout="constrained")
    cells = figure.subplots(down, across, squeeze=False).ravel()
    for axes, name in zip(cells, names, strict=False):
        if name in schema.categorical_features:
            _category_bars(axes, reference[name], new[name], name, reference_label)
        else:
            _histograms(axes, reference[name], new[name], name, reference_label)
        axes.tick_params(labelsize=7)
    for axes in cells[len(names) :]:
        axes.set_visible(False)
    # One legend for the figure: inside a plot it would hide bars or bins.
    figure.legend(*cells[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7)
    words = []
    if any(name in schema.numeric_features for name in names):
        words.append("densities; values above the 99th percentile not shown")
    if any(name in schema.categorical_features for name in names):
        words.append(f"categories: share of rows, the {TOP_CATEGORIES_PLOTTED} most frequent")
    figure.suptitle(f"Feature distributions{part} ({'; '.join(words)})", fontsize=9)
    return _png(figure)


def _histograms(axes, reference, new, name: str, reference_label: str) -> None:
    old = reference.dropna().to_numpy(dtype=float)
    cur = new.dropna().to_numpy(dtype=float)
    both = np.concatenate([old, cur])
    if len(both) == 0:
        axes.set_title(f"{name}\n({NO_DATA})", fontsize=9)
        return
    # Heavy right tails would squeeze the bulk into one bar: cut the view at the 99th percentile.
    upper = float(np.quantile(both, 0.99))
    lower = float(both.min())
    bins = np.linspace(lower, upper if upper > lower else lower + 1, 31)
    axes.hist(old, bins=bins, density=True, alpha=0.55, color="tab:blue", label=reference_label)
    axes.hist(cur, bins=bins, density=True, alpha=0.55, color="tab:orange", label="new data")
    axes.set_title(name, fontsize=9)
    axes.set_yticks([])


def _category_bars(axes, reference, new, name: str, reference_label: str) -> None:
    old, cur = category_counts(reference), category_counts(new)
    old, cur = (old / max(old.sum(), 1)).align(cur / max(cur.sum(), 1), fill_value=0.0)
    if len(old) == 0:
        axes.set_title(f"{name}\n({NO_DATA})", fontsize=9)
        return
    shown = (old + cur).sort_values(ascending=False, kind="stable").index[:TOP_CATEGORIES_PLOTTED]
    positions = np.arange(len(shown))
    axes.bar(positions - 0.2, old[shown], width=0.4, color="tab:blue", alpha=0.8, label=reference_label)
    axes.bar(positions + 0.2, cur[shown], width=0.4, color="tab:orange", alpha=0.8, label="new data")
    # Long category names would run into the next plot.
    labels = [str(category) if len(str(category)) <= 14 else str(category)[:13] + "\u2026" for category in shown]
    axes.set_xticks(positions, labels, rotation=35, ha="right", fontsize=7)
    more = f" (top {len(shown)} of {len(old)})" if len(old) > len(shown) else ""
    axes.set_title(f"{name}{more}", fontsize=9)
