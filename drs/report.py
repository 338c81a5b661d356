"""Reporting: the deployed model and the pipeline, laid out for people.

* ``save_confusion_matrix()`` writes ``output_model_path/confusionmatrix.png``
  (the course's output): the deployed model on the test data.
* ``write_report()`` writes ``output_model_path/report.pdf``: the deployed
  version, its scores and confusion matrix; summary statistics and missing
  data of the ingested data; the drift tests of the last tick that ran them,
  with distribution plots; the score history; recent ticks with their stage
  durations; ingested and rejected files; outdated packages. A piece that does
  not exist yet (no history, no drift tick, no reference sample) reads
  "no data yet" instead of failing the report.

The helpers that read the run history and draw the score history are shared
with the API's status page (``GET /`` in app.py).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib

matplotlib.use("Agg")  # no display under cron or in a server

from matplotlib.figure import Figure  # noqa: E402
from reportlab.lib import colors  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # noqa: E402
from reportlab.lib.units import cm  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402
from reportlab.pdfgen import canvas as pdf_canvas  # noqa: E402
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Table, TableStyle  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from drs.config import (  # noqa: E402
    CONFUSION_MATRIX_FILE,
    COURSE_SCHEMA,
    DIAGNOSTICS_FILE,
    DRIFT_TESTS,
    FINAL_DATA_FILE,
    HISTORY_FILE,
    INGESTED_DETAIL_FILE,
    REPORT_FILE,
    REPORTS_RECORD_FILE,
    Config,
    PipelineError,
    Schema,
    load_config,
)
from drs.drift import category_counts  # noqa: E402
from drs.production import production_store  # noqa: E402
from drs.storage import atomic_path, now_iso, read_jsonl, write_json_atomic  # noqa: E402

log = logging.getLogger("reporting")

NO_DATA = "no data yet"
RECENT_TICKS = 10
# Stage columns in the order a tick runs them; a stage no tick ran is left out.
STAGE_ORDER = ("detect", "ingest", "drift", "train", "score", "deploy", "report", "apicalls", "diagnostics")
# Distribution plots: a grid at most this many across and down per image (one image fits a page).
PLOTS_ACROSS, PLOTS_DOWN = 3, 4
TOP_CATEGORIES_PLOTTED = 10


# --- the run history, read for people (also used by the status page) ----------------


def read_history(config: Config) -> list[dict]:
    """Every tick recorded in ``<log_folder>/history.jsonl``, oldest first ([] when none)."""
    return read_jsonl(config.log_folder / HISTORY_FILE)


def last_drift_tick(records: list[dict]) -> dict | None:
    """The newest tick that ran the drift tests, or None."""
    for record in reversed(records):
        if isinstance(record.get("drift"), dict):
            return record
    return None


def drift_verdict_words(record: dict | None) -> str:
    """One or two sentences saying what the drift tests of a tick found and what was done."""
    if record is None:
        return f"Drift tests: {NO_DATA} (no tick has compared new data with the deployed model)."
    drift = record["drift"]
    tests = drift.get("tests", {})
    trigger = drift.get("trigger", {})
    chosen = trigger.get("tests", [])
    fired = trigger.get("fired", [])
    version = record.get("deployed_version_before") or "the deployed model"
    scores = record.get("scores", {})
    words = []
    if isinstance(scores.get("new_data_f1"), (int, float)) and isinstance(scores.get("deployed_f1"), (int, float)):
        # Rounded as the drift tests round, so the sentence and the test table agree.
        rows = f"the {record['new_rows']} new rows" if isinstance(record.get("new_rows"), int) else "the new data"
        words.append(
            f"Model {version} scored F1 {_number(round(scores['new_data_f1'], 6))} on {rows} "
            f"against {_number(round(scores['deployed_f1'], 6))} on its test data."
        )
    if drift.get("drift"):
        # A report written during the tick itself comes before the tick's decision is recorded.
        decision = f" (decision: {record['decision']})" if record.get("decision") else ""
        words.append(
            f"Drift: the trigger test(s) {', '.join(fired) or '?'} found drift, so the model was retrained{decision}."
        )
    else:
        words.append(f"No drift: the trigger test(s) {', '.join(chosen) or '?'} found none, so {version} was kept.")
    others = [name for name, test in tests.items() if name not in chosen and test.get("verdict") == "drift"]
    if others:
        words.append(f"Not used as triggers but also reporting drift: {', '.join(others)}.")
    return " ".join(words)


def drift_test_rows(record: dict | None) -> list[dict]:
    """One row per drift test of a tick: test, verdict, statistic, threshold, trigger, detail (display
    strings) and "features": the test's per-feature rows (see ``drift_feature_rows``), [] for the F1 tests."""
    if record is None:
        return []
    chosen = record["drift"].get("trigger", {}).get("tests", [])
    tests = record["drift"].get("tests", {})
    order = {name: position for position, name in enumerate(DRIFT_TESTS)}
    rows = []
    for name, test in sorted(tests.items(), key=lambda item: order.get(item[0], len(order))):
        statistic, threshold = _number(test.get("statistic")), _number(test.get("threshold"))
        if "pvalue" in test:
            # Its verdict compares a p-value with a p-value threshold: show those, the statistic beside.
            statistic = f"p {_number(test['pvalue'])} (stat. {statistic})" if test["pvalue"] is not None else "-"
            threshold = f"p < {threshold}"
        rows.append(
            {
                "test": name,
                "verdict": test.get("verdict", "?"),
                "statistic": statistic,
                "threshold": threshold,
                "trigger": "yes" if name in chosen else "no",
                "detail": test.get("detail", ""),
                "features": drift_feature_rows(test),
            }
        )
    return rows


def drift_feature_rows(test: dict) -> list[dict]:
    """One row per feature a drift test compared, whatever the schema's features were: feature,
    verdict, statistic, p-value ("-" for PSI, which has none), samples ("training / new")."""
    rows = []
    for feature, figures in (test.get("features") or {}).items():
        rows.append(
            {
                "feature": feature,
                "verdict": figures.get("verdict", "?"),
                "statistic": _number(figures.get("statistic")),
                "pvalue": _number(figures.get("pvalue")),
                "samples": " / ".join(str(n) for n in figures.get("samples") or []) or "-",
            }
        )
    return rows


def score_fall_warning(deployments: list[dict], margin: float | None) -> str | None:
    """A sentence when the serving version's test F1 is lower, by more than `margin` (0 when unset),
    than that of the version which served before it; None otherwise.

    `deployments` is the deployment log, oldest first: its last record is the serving version.
    """
    if not deployments:
        return None
    current = deployments[-1]
    earlier = [r for r in deployments[:-1] if r.get("version") == current.get("previous")]
    if not earlier or not all(isinstance(r.get("f1"), (int, float)) for r in (current, earlier[-1])):
        return None
    fall = earlier[-1]["f1"] - current["f1"]
    if fall <= (margin or 0.0):
        return None
    guard = f"the promotion margin {margin:g}" if margin is not None else "zero (no promotion_margin is set)"
    return (
        f"The deployed model's test F1 fell from {earlier[-1]['f1']:.4f} ({current['previous']}) to "
        f"{current['f1']:.4f} ({current.get('version')}), by {fall:.4f}: more than {guard}. "
        f"`deployment.py --rollback` restores {current['previous']}."
    )


def tick_rows(records: list[dict], last: int = RECENT_TICKS) -> list[dict]:
    """The last ticks, newest first, as display strings: start, decision, version, new files, seconds, stages."""
    rows = []
    for record in reversed(records[-last:]):
        decision = record.get("decision") or "in progress"
        if "end" not in record and record.get("decision"):
            decision += " (in progress)"
        if record.get("error"):
            decision += f" [{record.get('failed_stage', '?')}: {record['error']}]"
        rows.append(
            {
                "start": display_time(record.get("start")),
                "decision": decision,
                "version": str(record.get("deployed_version") or "-"),
                "new_files": len(record.get("new_files") or []),
                "seconds": _seconds(record.get("seconds")),
                "exit_status": record.get("exit_status"),
                "stages": {name: float(value) for name, value in (record.get("stages") or {}).items()},
            }
        )
    return rows


def display_time(timestamp) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM:SS" (the history writes UTC)."""
    return str(timestamp or "?")[:19].replace("T", " ")


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        # Fixed decimals line up in a column; tiny p-values need an exponent.
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def _seconds(value) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"


# --- figures ----------------------------------------------------------------------
# matplotlib's object interface (Figure, no pyplot): no global state, so the API
# can draw in several threads at once.


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_matrix_png(deployed, test_data, schema: Schema = COURSE_SCHEMA) -> bytes:
    """PNG of the deployed model's confusion matrix on the labelled rows of `test_data`: one row and
    column per class of the model, named by its label (the course's 0 and 1, or e.g. "No", "Yes")."""
    from drs.train import labelled_rows

    features, labels = labelled_rows(test_data, schema)
    predictions = deployed.model.predict(features)
    classes = list(deployed.model.classes_)
    figure = Figure(figsize=(5.5, 4.8), dpi=120)
    axes = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        labels,
        predictions,
        labels=classes,
        display_labels=[str(label) for label in classes],
        cmap="Blues",
        colorbar=False,
        ax=axes,
    )
    f1 = deployed.f1
    axes.set_title(
        f"Confusion matrix, model {deployed.version}\n"
        f"test data: {len(labels)} rows" + (f", F1 {f1:.3f}" if f1 is not None else "")
    )
    axes.set_xlabel(f"predicted {schema.target_column}")
    axes.set_ylabel(f"actual {schema.target_column}")
    figure.tight_layout()
    return _png(figure)


def score_history_png(history: list[dict]) -> bytes | None:
    """PNG of the test F1 of every deployment and rollback, oldest first; None when there is none."""
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
    import numpy as np

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
    import numpy as np

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


def save_confusion_matrix(config: Config, deployed, test_data) -> Path:
    """Write the deployed model's confusion matrix on the test data to confusionmatrix.png; returns its path."""
    target = config.model_folder / CONFUSION_MATRIX_FILE
    with atomic_path(target) as tmp:
        tmp.write_bytes(confusion_matrix_png(deployed, test_data, config.schema))
    log.info("wrote %s", target)
    return target


def score_model(config: Config | None = None) -> Path:
    """The course's name for this stage: write the confusion matrix of the deployed model."""
    from drs.score import load_test_data

    config = config or load_config()
    return save_confusion_matrix(config, production_store(config).load_model(), load_test_data(config))


# --- the PDF ------------------------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 2 * cm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN


class _NumberedCanvas(pdf_canvas.Canvas):
    """Draws "page N of M" in each footer: pages are held back until the total is known."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages = []

    def showPage(self):  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for page in self._pages:
            self.__dict__.update(page)
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.grey)
            self.drawString(MARGIN, 1.2 * cm, "Dynamic Risk Assessment System: model report")
            self.drawRightString(PAGE_WIDTH - MARGIN, 1.2 * cm, f"page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


class _Styles:
    def __init__(self):
        sheet = getSampleStyleSheet()
        self.title = sheet["Title"]
        self.heading = ParagraphStyle(
            "section", parent=sheet["Heading1"], fontSize=15, spaceBefore=14, spaceAfter=6, keepWithNext=1
        )
        self.subheading = ParagraphStyle(
            "subsection", parent=sheet["Heading3"], spaceBefore=8, spaceAfter=4, keepWithNext=1
        )
        self.body = ParagraphStyle("body", parent=sheet["BodyText"], fontSize=9.5, leading=12.5)
        self.note = ParagraphStyle("note", parent=self.body, textColor=colors.HexColor("#555555"), fontSize=8.5)
        self.cell = ParagraphStyle("cell", parent=sheet["BodyText"], fontSize=8, leading=10)
        self.verdict = ParagraphStyle(
            "verdict",
            parent=self.body,
            backColor=colors.HexColor("#f2f2f2"),
            borderPadding=6,
            spaceBefore=4,
            spaceAfter=10,
        )


def _table(
    rows: list[list], widths: list[float], numeric_columns=(), font_size: float = 8, padding: float = 6
) -> Table:
    """A table with a shaded header row, light grid and right-aligned numeric columns."""
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", font_size),
        ("FONT", (0, 1), (-1, -1), "Helvetica", font_size),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b0b0")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), padding / 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), padding / 2),
    ]
    for column in numeric_columns:
        style.append(("ALIGN", (column, 0), (column, -1), "RIGHT"))
    table.setStyle(TableStyle(style))
    return table


def _image(png: bytes, max_width: float, max_height: float) -> Image:
    """The PNG scaled to fit the box, keeping its aspect ratio."""
    width, height = ImageReader(io.BytesIO(png)).getSize()
    scale = min(max_width / width, max_height / height)
    image = Image(io.BytesIO(png), width=width * scale, height=height * scale)
    image.hAlign = "CENTER"
    return image


class _ReportBuilder:
    """Gathers what the report shows; each section copes with its pieces missing."""

    def __init__(
        self,
        config: Config,
        current_tick: dict | None,
        deployed,
        deployed_problem: str | None,
        final_data,
        test_data,
        packages: list[dict],
        drift_inputs: dict | None = None,
    ):
        self.config = config
        self.styles = _Styles()
        self.history = read_history(config) + ([current_tick] if current_tick else [])
        self.deployed = deployed
        self.deployed_problem = deployed_problem
        self.final_data = final_data
        self.test_data = test_data
        self.packages = packages
        self.drift_inputs = drift_inputs

    def text(self, words: str, style=None) -> Paragraph:
        return Paragraph(escape(words), style or self.styles.body)

    def cell(self, words) -> Paragraph:
        return Paragraph(escape(str(words)), self.styles.cell)

    def no_data(self, what: str = "") -> Paragraph:
        return self.text(f"{what}: {NO_DATA}." if what else f"{NO_DATA.capitalize()}.", self.styles.note)

    def story(self) -> list:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        title = "Model report" + (f": {self.deployed.version}" if self.deployed else "")
        story = [
            Paragraph(escape(title), self.styles.title),
            self.text(f"Generated {now} from {self.config.path.name}.", self.styles.note),
        ]
        for section in (
            self.deployed_section,
            self.data_section,
            self.drift_section,
            self.history_section,
            self.ticks_section,
            self.files_section,
            self.packages_section,
        ):
            story += section()
        return story

    # 1
    def deployed_section(self) -> list:
        parts = [Paragraph("1. Deployed model", self.styles.heading)]
        if self.deployed is None:
            return parts + [self.text(f"No model deployed yet ({self.deployed_problem}).", self.styles.note)]
        manifest = self.deployed.manifest
        training_files = manifest.get("training_files") or {}
        files = (
            ", ".join(
                f"{name} ({info['rows']} rows)" if info.get("rows") is not None else name
                for name, info in sorted(training_files.items())
            )
            or NO_DATA
        )
        facts = [
            ["version", manifest.get("version", "?")],
            ["deployed", display_time(manifest.get("created")) + " UTC"],
            ["previous version", manifest.get("previous_version") or "-"],
            ["note", self.cell(manifest.get("note") or "-")],
            ["training data", self.cell(files)],
        ]
        table = Table(facts, colWidths=[3.5 * cm, TEXT_WIDTH - 3.5 * cm], hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 8.5),
                    ("FONT", (1, 0), (1, -1), "Helvetica", 8.5),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d0d0d0")),
                ]
            )
        )
        parts += [table, Paragraph("Scores on the test data", self.styles.subheading)]
        try:
            parts += self._scores()
        except PipelineError as exc:
            parts.append(self.text(f"Test data: {NO_DATA} ({exc}).", self.styles.note))
        return parts

    def _scores(self) -> list:
        from sklearn.metrics import precision_score, recall_score, roc_auc_score

        from drs.score import f1_on
        from drs.train import labelled_rows, positive_probabilities

        schema, model = self.config.schema, self.deployed.model
        test_data = self.test_data
        if test_data is None:
            raise PipelineError(f"no test data at {self.config.test_data_file}")
        features, labels = labelled_rows(test_data, schema)
        if len(labels) == 0:
            raise PipelineError("no labelled rows in the test data")
        f1 = f1_on(model, test_data, schema)  # a PipelineError for a label the model never saw
        predictions = model.predict(features)
        positive = schema.positive_label
        is_positive = labels == positive
        probabilities = positive_probabilities(model, features, schema)
        try:
            auc = "n/a" if probabilities is None else f"{roc_auc_score(is_positive, probabilities):.4f}"
        except ValueError:  # one class only in the test data
            auc = "n/a"
        rows = [
            ["metric", "value"],
            ["F1", f"{f1:.4f}"],
            ["precision", f"{precision_score(labels, predictions, pos_label=positive, zero_division=0.0):.4f}"],
            ["recall", f"{recall_score(labels, predictions, pos_label=positive, zero_division=0.0):.4f}"],
            ["ROC AUC", auc],
            ["test rows", f"{len(labels)}"],
            [self.cell(f"positives ({schema.target_column} = {positive})"), f"{int(is_positive.sum())}"],
        ]
        scores = _table(rows, [4.2 * cm, 2.2 * cm], numeric_columns=(1,), font_size=8.5)
        matrix = _image(confusion_matrix_png(self.deployed, test_data, schema), TEXT_WIDTH - 7.4 * cm, 8 * cm)
        side_by_side = Table([[scores, matrix]], colWidths=[7.2 * cm, TEXT_WIDTH - 7.2 * cm], hAlign="LEFT")
        side_by_side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        return [side_by_side]

    # 2
    def data_section(self) -> list:
        from drs.diagnostics import dataframe_summary, missing_data

        parts = [Paragraph(f"2. Ingested data ({FINAL_DATA_FILE})", self.styles.heading)]
        if self.final_data is None:
            return parts + [self.no_data("Ingested data")]
        data = self.final_data
        summary = dataframe_summary(self.config, data=data)
        missing = missing_data(self.config, data=data)
        categorical = self.config.schema.categorical_features
        parts.append(
            self.text(
                f"{len(data)} rows. Summary statistics of each feature and the share of missing values in every column."
            )
        )
        rows = [["column", "mean", "median", "std", "missing %"]]
        for column in data.columns:
            if column in categorical:
                continue
            stats = summary.get(column, {})
            rows.append(
                [
                    self.cell(column),
                    *(_fixed(stats.get(stat)) for stat in ("mean", "median", "std")),
                    f"{missing.get(column, 0.0):.2f}",
                ]
            )
        parts.append(_table(rows, [5 * cm, 2.8 * cm, 2.8 * cm, 2.8 * cm, 2.2 * cm], numeric_columns=(1, 2, 3, 4)))
        if categorical:
            parts.append(Paragraph("Categorical features", self.styles.subheading))
            rows = [["feature", "categories", "mode", "most frequent (rows)", "missing %"]]
            for column in categorical:
                stats = summary[column]
                shown = list(stats["counts"].items())[:5]
                frequent = ", ".join(f"{name} ({count:,})" for name, count in shown)
                if stats["categories"] > len(shown):
                    frequent += f", and {stats['categories'] - len(shown)} more"
                rows.append(
                    [
                        self.cell(column),
                        str(stats["categories"]),
                        self.cell(stats["mode"] or "-"),
                        self.cell(frequent),
                        f"{missing.get(column, 0.0):.2f}",
                    ]
                )
            parts.append(
                _table(rows, [3.8 * cm, 1.8 * cm, 3 * cm, TEXT_WIDTH - 10.8 * cm, 2.2 * cm], numeric_columns=(1, 4))
            )
        return parts

    # 3
    def drift_section(self) -> list:
        parts = [Paragraph("3. Drift", self.styles.heading)]
        record = last_drift_tick(self.history)
        if record is None:
            return parts + [self.text(drift_verdict_words(None), self.styles.note)]
        when = self.text(
            f"Drift tests of the tick started {display_time(record.get('start'))} UTC, "
            f"new files: {', '.join(record.get('new_files') or []) or 'none'}.",
            self.styles.note,
        )
        verdict = self.text(drift_verdict_words(record), self.styles.verdict)
        rows = [["test", "verdict", "statistic", "threshold", "trigger", "what it measures"]]
        test_rows = drift_test_rows(record)
        for row in test_rows:
            # A p-value test's figures ("p 1.5e-68 (stat. 0.45)") wrap inside their cells.
            rows.append(
                [
                    row["test"],
                    row["verdict"],
                    self.cell(row["statistic"]),
                    self.cell(row["threshold"]),
                    row["trigger"],
                    self.cell(row["detail"]),
                ]
            )
        table = _table(
            rows, [2.2 * cm, 2.4 * cm, 2.6 * cm, 1.8 * cm, 1.3 * cm, TEXT_WIDTH - 10.3 * cm], numeric_columns=(2, 3)
        )
        parts = [KeepTogether(parts + [when, verdict, table])]
        per_feature = [(row["test"], feature) for row in test_rows for feature in row["features"]]
        if per_feature:
            parts.append(Paragraph("Per feature", self.styles.subheading))
            rows = [["test", "feature", "statistic", "p-value", "verdict", "samples\n(training / new)"]]
            for test, feature in per_feature:
                rows.append(
                    [
                        test,
                        self.cell(feature["feature"]),
                        feature["statistic"],
                        feature["pvalue"],
                        feature["verdict"],
                        feature["samples"],
                    ]
                )
            parts.append(
                _table(
                    rows,
                    [1.4 * cm, TEXT_WIDTH - 11.4 * cm, 2.2 * cm, 2.2 * cm, 2.4 * cm, 3.2 * cm],
                    numeric_columns=(2, 3, 5),
                )
            )
        parts += self._distributions(record)
        return parts

    def _distributions(self, record: dict) -> list:
        from drs.ingest import read_final_data

        heading = Paragraph("Training data against new data", self.styles.subheading)
        given = self.drift_inputs or {}
        if given.get("version") == record.get("deployed_version_before") and given.get("reference") is not None:
            # What the drift tests of this tick compared, handed on by the tick.
            reference, reference_version, new = given["reference"], given["version"], given["new"]
            new_words = f"the {len(new)} new rows the drift tests used"
        else:
            # The drift tests compared the new data with the training data of the version
            # deployed *before* the tick; after a redeploy that is no longer the current one.
            candidates = [record.get("deployed_version_before"), self.deployed.version if self.deployed else None]
            store = production_store(self.config)
            sample, reference_version = None, None
            for version in candidates:
                sample = store.reference_sample(version) if version else None
                if sample is not None:
                    reference_version = version
                    break
            if sample is None:
                return [heading, self.no_data("Reference sample of the training data")]
            if self.final_data is None:
                return [heading, self.no_data("New data")]
            try:
                reference = read_final_data(self.config, io.BytesIO(sample))
            except PipelineError as exc:  # e.g. written under another schema
                return [heading, self.text(f"Reference sample of the training data: {exc}", self.styles.note)]
            new = self.final_data
            new_words = f"the ingested data ({len(new)} rows)"
        pngs = distribution_pngs(reference, new, f"training data of {reference_version}", self.config.schema)
        note = self.text(
            f"Blue: a sample of the data {reference_version} was trained on ({len(reference)} rows). "
            f"Orange: {new_words}.",
            self.styles.note,
        )
        # A grid of up to 4 rows of plots is one image, sized to fill a page with its heading.
        images = [_image(png, TEXT_WIDTH, 22 * cm) for png in pngs]
        return [KeepTogether([heading, note, images[0]]), *images[1:]]

    # 4
    def history_section(self) -> list:
        parts = [Paragraph("4. Score history", self.styles.heading)]
        history = production_store(self.config).deployment_log()
        png = score_history_png(history)
        if png is None:
            return parts + [self.no_data("Deployments")]
        parts.append(_image(png, TEXT_WIDTH, 7 * cm))
        rows = [["time (UTC)", "action", "version", "F1", "note"]]
        for record in reversed(history[-RECENT_TICKS:]):
            rows.append(
                [
                    display_time(record.get("time")),
                    record.get("action", "?"),
                    record.get("version", "?"),
                    _fixed(record.get("f1")),
                    self.cell(record.get("note") or ""),
                ]
            )
        parts.append(
            Paragraph(
                f"Last {min(len(history), RECENT_TICKS)} of {len(history)} deployments and rollbacks, newest first",
                self.styles.subheading,
            )
        )
        parts.append(
            _table(rows, [3.4 * cm, 1.8 * cm, 1.8 * cm, 1.8 * cm, TEXT_WIDTH - 8.8 * cm], numeric_columns=(3,))
        )
        return parts

    # 5
    def ticks_section(self) -> list:
        parts = [Paragraph("5. Recent ticks", self.styles.heading)]
        ticks = tick_rows(self.history)
        if not ticks:
            return parts + [self.no_data("Run history")]
        intro = self.text(f"The last {len(ticks)} of {len(self.history)} ticks, newest first. Times in seconds.")
        rows = [["start (UTC)", "decision", "version", "new files", "exit", "seconds"]]
        for tick in ticks:
            rows.append(
                [
                    tick["start"],
                    self.cell(tick["decision"]),
                    tick["version"],
                    str(tick["new_files"]),
                    str(tick["exit_status"]) if tick["exit_status"] is not None else "-",
                    tick["seconds"],
                ]
            )
        table = _table(
            rows, [3.4 * cm, TEXT_WIDTH - 11 * cm, 1.8 * cm, 1.8 * cm, 1.2 * cm, 2.8 * cm], numeric_columns=(3, 4, 5)
        )
        parts = [KeepTogether(parts + [intro, table])]
        stages = [name for name in STAGE_ORDER if any(name in tick["stages"] for tick in ticks)]
        stages += sorted({name for tick in ticks for name in tick["stages"]} - set(stages))
        if stages:
            parts.append(Paragraph("Duration of each stage (seconds)", self.styles.subheading))
            rows = [["start (UTC)", *stages]]
            for tick in ticks:
                rows.append([tick["start"][5:], *(_seconds(tick["stages"].get(name)) for name in stages)])
            # Narrow padding: nine stage columns, "diagnostics" the widest, still fit the page.
            width = min(2 * cm, (TEXT_WIDTH - 2.2 * cm) / len(stages))
            parts.append(
                _table(
                    rows,
                    [2.2 * cm] + [width] * len(stages),
                    numeric_columns=range(1, len(stages) + 1),
                    font_size=7,
                    padding=3,
                )
            )
        return parts

    # 6
    def files_section(self) -> list:

        parts = [Paragraph("6. Ingested and rejected files", self.styles.heading)]
        detail = {}
        if self.deployed is not None:
            detail = production_store(self.config).ingested_detail(self.deployed.version)
        ingested = detail.get("files") or {}
        parts.append(Paragraph("Files the deployed version was trained on", self.styles.subheading))
        if ingested:
            rows = [["file", "rows", "bytes", "sha256"]]
            for name, info in sorted(ingested.items()):
                rows.append(
                    [
                        self.cell(name),
                        _integer(info.get("rows")),
                        _integer(info.get("size")),
                        str(info.get("sha256", ""))[:16],
                    ]
                )
            parts.append(_table(rows, [TEXT_WIDTH - 9.6 * cm, 1.8 * cm, 2.2 * cm, 5.6 * cm], numeric_columns=(1, 2)))
        else:
            parts.append(self.no_data(f"{INGESTED_DETAIL_FILE} of the deployed version"))

        # The same file rejected for the same reason by several ticks is one row naming them all.
        rejected: dict[tuple[str, str], list[str]] = {}
        for name, reason in sorted((detail.get("rejected") or {}).items()):
            rejected.setdefault((name, reason), []).append(f"{self.deployed.version} ingestion")
        for record in reversed(self.history[-RECENT_TICKS:]):
            for name, reason in sorted((record.get("rejected_files") or {}).items()):
                rejected.setdefault((name, reason), []).append(f"tick {display_time(record.get('start'))}")
        parts.append(Paragraph("Rejected files", self.styles.subheading))
        if rejected:
            rows = [["file", "reason", "seen by"]]
            rows += [
                [self.cell(name), self.cell(reason), self.cell(", ".join(seen))]
                for (name, reason), seen in rejected.items()
            ]
            parts.append(_table(rows, [4.5 * cm, TEXT_WIDTH - 9.5 * cm, 5 * cm]))
        elif self.history or detail:
            ticks = min(len(self.history), RECENT_TICKS)
            scope = " or the last tick" if ticks == 1 else f" or the last {ticks} ticks" if ticks else ""
            parts.append(
                self.text(f"None: no file was rejected by the deployed version's ingestion{scope}.", self.styles.note)
            )
        else:
            parts.append(self.no_data("Rejected files"))
        return parts

    # 7
    def packages_section(self) -> list:
        parts = [Paragraph("7. Outdated packages", self.styles.heading)]
        packages = self.packages
        if not packages:
            return parts + [self.no_data("Requirements")]
        rows = [["package", "installed", "latest", "status"]]
        for package in packages:
            status = (
                "unknown" if package["latest"] == "unknown" else "outdated" if package["outdated"] else "up to date"
            )
            rows.append([package["package"], package["installed"], package["latest"], status])
        parts.append(_table(rows, [4.5 * cm, 3 * cm, 3 * cm, 3 * cm]))
        if any(package["latest"] == "unknown" for package in packages):
            parts.append(self.text('"unknown": the package index did not answer in time.', self.styles.note))
        return [KeepTogether(parts)]


def _fixed(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _integer(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def write_report(
    config: Config,
    current_tick: dict | None = None,
    deployed=None,
    final_data=None,
    test_data=None,
    packages: list[dict] | None = None,
    deployed_problem: str | None = None,
    drift_inputs: dict | None = None,
) -> Path:
    """Write ``output_model_path/report.pdf`` atomically from the data given; returns its path.

    A missing piece (None) is shown as "no data yet". `current_tick` is the
    history record of a tick still running, shown as the newest tick: its own
    line reaches history.jsonl only when it ends. `drift_inputs`
    ({"version", "reference", "new"}) are the frames that tick's drift tests
    compared, plotted per feature.
    """
    from drs.diagnostics import outdated_packages_list

    target = config.model_folder / REPORT_FILE
    packages = outdated_packages_list() if packages is None else packages
    builder = _ReportBuilder(
        config, current_tick, deployed, deployed_problem, final_data, test_data, packages, drift_inputs
    )
    story = builder.story()
    with atomic_path(target) as tmp:
        document = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=1.8 * cm,
            bottomMargin=2 * cm,
            title="Model report",
            author="Dynamic Risk Assessment System",
        )
        document.build(story, canvasmaker=_NumberedCanvas)
    log.info("wrote %s", target)
    return target


def _optional(read):
    try:
        return read()
    except PipelineError:
        return None


def write_reports(
    config: Config,
    deployed=None,
    final_data=None,
    test_data=None,
    current_tick: dict | None = None,
    drift_inputs: dict | None = None,
) -> list[Path]:
    """Every report of the deployed version: confusionmatrix.png, report.pdf, diagnostics.json,
    then reports.json naming the version they describe (written last: the tick regenerates
    reports whose record names another version than the deployed one).

    Inputs not given are read here; the tick hands on what it has already loaded.
    """
    from drs.diagnostics import diagnostics_report, outdated_packages_list
    from drs.ingest import read_final_data
    from drs.score import load_test_data

    deployed = deployed or production_store(config).load_model()
    final_data = final_data if final_data is not None else _optional(lambda: read_final_data(config))
    test_data = test_data if test_data is not None else load_test_data(config)
    packages = outdated_packages_list()  # the package index is asked once for all the reports
    written = [
        save_confusion_matrix(config, deployed, test_data),
        write_report(config, current_tick, deployed, final_data, test_data, packages, drift_inputs=drift_inputs),
    ]
    diagnostics = diagnostics_report(config, deployed, final_data, test_data, packages, current_tick)
    written.append(config.model_folder / DIAGNOSTICS_FILE)
    write_json_atomic(written[-1], diagnostics)
    write_json_atomic(
        config.model_folder / REPORTS_RECORD_FILE,
        {"version": deployed.version, "written": now_iso(), "files": [p.name for p in written]},
    )
    return written
