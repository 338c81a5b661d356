"""The PDF report's layout: functions from the gathered data (``ReportData``) and the figures' PNG bytes to
reportlab flowables, and the flowables to the PDF's bytes.

No file is read or written and no metric is computed here: each section shows what ``gather`` found,
and a piece that is missing reads "no data yet".
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Table, TableStyle

from drs.files import FINAL_DATA_FILE, INGESTED_DETAIL_FILE
from drs.history import QuietRun
from drs.report.gather import ReportData
from drs.status_views import (
    NO_DATA,
    RECENT_TICKS,
    display_time,
    drift_test_rows,
    drift_verdict_words,
    fit_warnings_words,
    headline_words,
    rejected_file_rows,
    seconds,
    tick_rows,
)

# Stage columns in the order a tick runs them; a stage no tick ran is left out.
STAGE_ORDER = ("detect", "ingest", "drift", "train", "score", "deploy", "report", "apicalls", "diagnostics")
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 2 * cm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
# reportlab cannot split a table row across pages, so no row may outgrow one: a longer cell is cut, and
# a list of files (a year of daily exports, say) shows its first and last names and a count, so that
# the report stays a few pages whatever the number of files.
CELL_CHARS = 600
LISTED_FILES = 30
NAMED_FILES = 10


@dataclass(frozen=True)
class ReportFigures:
    """The figures of a report as PNG bytes; None (or []) for a figure there is no data for."""

    confusion_matrix: bytes | None = None
    score_history: bytes | None = None
    distributions: list[bytes] = field(default_factory=list)
    calibration_curve: bytes | None = None
    prediction_histogram: bytes | None = None


class _NumberedCanvas(pdf_canvas.Canvas):
    """Draws the version the report describes and "page N of M" in each footer: pages are held back until
    the total is known."""

    def __init__(self, *args, footer: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict] = []

    def showPage(self):  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for page in self._pages:
            self.__dict__.update(page)
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.grey)
            self.drawString(MARGIN, 1.2 * cm, self._footer)
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


STYLES = _Styles()


def pdf_bytes(data: ReportData, figures: ReportFigures) -> bytes:
    """The whole report as the bytes of an A4 PDF with numbered pages."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=1.8 * cm,
        bottomMargin=2 * cm,
        title="Model report",
        author="Dynamic Risk Assessment System",
    )
    footer = "Dynamic Risk Assessment System: model report" + (f" of {data.deployed.version}" if data.deployed else "")
    document.build(story(data, figures), canvasmaker=functools.partial(_NumberedCanvas, footer=footer))
    return buffer.getvalue()


def story(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The report's flowables: a title, then sections 1 to 7."""
    title = "Model report" + (f": {data.deployed.version}" if data.deployed else "")
    # What to act on comes first: what moved, and a retrained model scoring below the one it replaced.
    headline = headline_words(data.drift_tick)
    return [
        Paragraph(escape(title), STYLES.title),
        text(f"Generated {data.generated} from {data.config_name}.", STYLES.note),
        *([text(headline, STYLES.verdict)] if headline else []),
        *deployed_section(data, figures),
        *data_section(data),
        *drift_section(data, figures),
        *history_section(data, figures),
        *ticks_section(data),
        *files_section(data),
        *packages_section(data),
    ]


# --- building blocks -----------------------------------------------------------------


def text(words: str, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of plain words (markup characters shown as they are)."""
    return Paragraph(escape(words), style or STYLES.body)


def cell(words) -> Paragraph:
    """A table cell whose words wrap inside the column, cut after CELL_CHARS characters."""
    words = str(words)
    if len(words) > CELL_CHARS:
        words = words[: CELL_CHARS - 1] + "\u2026"
    return Paragraph(escape(words), STYLES.cell)


def named(names: list[str], limit: int = NAMED_FILES) -> str:
    """The names joined with commas; more than `limit` of them: the first and last few and how many in all."""
    if len(names) <= limit:
        return ", ".join(names)
    half = limit // 2
    return f"{', '.join(names[:half])}, \u2026, {', '.join(names[-half:])} ({len(names):,} in all)"


def first_and_last(items: list, limit: int = LISTED_FILES) -> tuple[list, list]:
    """(the first `limit`/2 items, the last ones), or (all of them, []) when there are no more than `limit`."""
    if len(items) <= limit:
        return items, []
    half = limit // 2
    return items[:half], items[-half:]


def no_data(what: str = "") -> Paragraph:
    """The note "<what>: no data yet." for a piece that does not exist yet."""
    return text(f"{what}: {NO_DATA}." if what else f"{NO_DATA.capitalize()}.", STYLES.note)


def table(rows: list[list], widths: list[float], numeric_columns=(), font_size: float = 8, padding: float = 6) -> Table:
    """A table with a shaded header row, light grid and right-aligned numeric columns."""
    result = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
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
    result.setStyle(TableStyle(style))
    return result


def image(png: bytes, max_width: float, max_height: float) -> Image:
    """The PNG scaled to fit the box, keeping its aspect ratio."""
    width, height = ImageReader(io.BytesIO(png)).getSize()
    scale = min(max_width / width, max_height / height)
    result = Image(io.BytesIO(png), width=width * scale, height=height * scale)
    result.hAlign = "CENTER"
    return result


def fixed(value) -> str:
    """A number with 4 decimals, "-" when it is not a number."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def integer(value) -> str:
    """A whole number with thousands separators, "-" when it is not one."""
    return f"{value:,}" if isinstance(value, int) else "-"


# --- 1. Deployed model ---------------------------------------------------------------


def deployed_section(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The deployed version's manifest, its scores on the test data and its confusion matrix."""
    parts: list[Flowable] = [Paragraph("1. Deployed model", STYLES.heading)]
    if data.deployed is None:
        return parts + [text(f"No model deployed yet ({data.deployed_problem}).", STYLES.note)]
    parts.append(_manifest_table(data.deployed.manifest))
    fit_warnings = fit_warnings_words(data.deployed.manifest.get("fit_warnings"))
    if fit_warnings:
        parts.append(text(fit_warnings, STYLES.verdict))
    parts.append(Paragraph("Scores on the test data", STYLES.subheading))
    if data.scores is None or figures.confusion_matrix is None:
        return (
            parts
            + [text(f"Test data: {NO_DATA} ({data.scores_problem}).", STYLES.note)]
            + calibration_part(data, figures)
        )
    scores = data.scores
    positive, target = data.schema.positive_label, data.schema.target_column
    rows = [
        ["metric", "value"],
        ["F1", f"{scores.f1:.4f}"],
        ["precision", f"{scores.precision:.4f}"],
        ["recall", f"{scores.recall:.4f}"],
        ["ROC AUC", "n/a" if scores.roc_auc is None else f"{scores.roc_auc:.4f}"],
        ["test rows", f"{scores.rows}"],
        [cell(f"positives ({target} = {positive})"), f"{scores.positives}"],
    ]
    scores_table = table(rows, [4.2 * cm, 2.2 * cm], numeric_columns=(1,), font_size=8.5)
    matrix = image(figures.confusion_matrix, TEXT_WIDTH - 7.4 * cm, 8 * cm)
    side_by_side = Table([[scores_table, matrix]], colWidths=[7.2 * cm, TEXT_WIDTH - 7.2 * cm], hAlign="LEFT")
    side_by_side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return parts + [side_by_side, *importances_part(data)] + calibration_part(data, figures)


def calibration_part(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The deployed version's probability calibration: what the drift test "estimated" estimates F1 with,
    and how well it fits (Brier scores on the held-out part of the training rows, lower is better)."""
    parts: list[Flowable] = [Paragraph("Probability calibration", STYLES.subheading)]
    record = data.calibration
    if record is None:
        return parts + [text("Not recorded: this version was deployed before calibrations were kept.", STYLES.note)]
    if not record.get("calibrated"):
        words = f"Not calibrated ({record.get('reason')}): F1 without labels is estimated from the raw probabilities."
        return parts + [text(words, STYLES.note)]
    intro = (
        f"Calibrated ({record.get('method')}) on {integer(record.get('held_out_rows'))} labelled rows held out of "
        'training; F1 on rows without labels is estimated from these probabilities (drift test "estimated"). '
        "The Brier score after calibration is measured out of fold."
    )
    rows = [
        ["Brier score", "value"],
        ["before calibration", fixed(record.get("brier_before"))],
        ["after calibration", fixed(record.get("brier_after"))],
    ]
    parts += [text(intro), table(rows, [4.2 * cm, 2.2 * cm], numeric_columns=(1,), font_size=8.5)]
    if figures.calibration_curve is not None:
        parts.append(image(figures.calibration_curve, TEXT_WIDTH * 0.6, 6.5 * cm))
    return parts


def importances_part(data: ReportData) -> list[Flowable]:
    """The permutation importance of each feature for the deployed model's F1 on the test data, most
    important first (nothing when none were measured, and why when there is a reason)."""
    heading = Paragraph("Feature importances", STYLES.subheading)
    if not data.importances:
        return (
            [heading, no_data(f"Feature importances ({data.importances_problem})")] if data.importances_problem else []
        )
    note = text(
        f"How much the F1 on {data.importance_rows} test rows falls when a feature's values are shuffled "
        "(permutation importance): mean and standard deviation over the repeats. Near zero or below: the "
        "model does not rely on that feature.",
        STYLES.note,
    )
    rows = [["feature", "mean", "std"]]
    rows += [[cell(item.feature), f"{item.mean:.4f}", f"{item.std:.4f}"] for item in data.importances]
    return [KeepTogether([heading, note, table(rows, [7 * cm, 2.4 * cm, 2.4 * cm], numeric_columns=(1, 2))])]


def _manifest_table(manifest: dict) -> Table:
    facts = [
        ["version", manifest.get("version", "?")],
        ["deployed", display_time(manifest.get("created")) + " UTC"],
        ["previous version", manifest.get("previous_version") or "-"],
        ["note", cell(manifest.get("note") or "-")],
        ["training data", cell(training_data_words(manifest.get("training_files") or {}))],
    ]
    result = Table(facts, colWidths=[3.5 * cm, TEXT_WIDTH - 3.5 * cm], hAlign="LEFT")
    result.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 8.5),
                ("FONT", (1, 0), (1, -1), "Helvetica", 8.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d0d0d0")),
            ]
        )
    )
    return result


def training_data_words(training_files: dict) -> str:
    """The files a version was trained on, each with its rows; past NAMED_FILES of them, how many files and
    rows in all, from the first file to the last (section 6 lists more)."""
    if not training_files:
        return NO_DATA
    names = sorted(training_files)
    if len(names) <= NAMED_FILES:
        return ", ".join(
            f"{name} ({training_files[name]['rows']} rows)" if training_files[name].get("rows") is not None else name
            for name in names
        )
    rows = [info.get("rows") for info in training_files.values()]
    total = f", {sum(rows):,} rows" if all(isinstance(count, int) for count in rows) else ""
    return f"{len(names):,} files{total}: {names[0]} to {names[-1]} (see section 6)"


# --- 2. Ingested data ----------------------------------------------------------------


def data_section(data: ReportData) -> list[Flowable]:
    """Summary statistics and missing values of the ingested data."""
    parts: list[Flowable] = [Paragraph(f"2. Ingested data ({FINAL_DATA_FILE})", STYLES.heading)]
    if data.final_data is None:
        return parts + [no_data("Ingested data")]
    categorical = data.schema.categorical_features
    parts.append(
        text(
            f"{len(data.final_data)} rows. Summary statistics of each feature and the share of missing values "
            "in every column."
        )
    )
    rows = [["column", "mean", "median", "std", "missing %"]]
    for column in data.final_data.columns:
        if column in categorical:
            continue
        stats = data.summary.get(column, {})
        rows.append(
            [
                cell(column),
                *(fixed(stats.get(stat)) for stat in ("mean", "median", "std")),
                f"{data.missing.get(column, 0.0):.2f}",
            ]
        )
    parts.append(table(rows, [5 * cm, 2.8 * cm, 2.8 * cm, 2.8 * cm, 2.2 * cm], numeric_columns=(1, 2, 3, 4)))
    if categorical:
        parts += [Paragraph("Categorical features", STYLES.subheading), _categories_table(data)]
    return parts


def _categories_table(data: ReportData) -> Table:
    rows = [["feature", "categories", "mode", "most frequent (rows)", "missing %"]]
    for column in data.schema.categorical_features:
        stats = data.summary[column]
        shown = list(stats["counts"].items())[:5]
        frequent = ", ".join(f"{name} ({count:,})" for name, count in shown)
        if stats["categories"] > len(shown):
            frequent += f", and {stats['categories'] - len(shown)} more"
        rows.append(
            [
                cell(column),
                str(stats["categories"]),
                cell(stats["mode"] or "-"),
                cell(frequent),
                f"{data.missing.get(column, 0.0):.2f}",
            ]
        )
    return table(rows, [3.8 * cm, 1.8 * cm, 3 * cm, TEXT_WIDTH - 10.8 * cm, 2.2 * cm], numeric_columns=(1, 4))


# --- 3. Drift ------------------------------------------------------------------------


def drift_section(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The drift tests of the last tick that ran them, per test and per feature, with distribution plots
    and the predicted positive rate before and after."""
    parts: list[Flowable] = [Paragraph("3. Drift", STYLES.heading)]
    record = data.drift_tick
    if record is None:
        return parts + [text(drift_verdict_words(None), STYLES.note)]
    when = text(
        f"Drift tests of the tick started {display_time(record.start)} UTC, "
        f"new files: {named(record.new_files) or 'none'}.",
        STYLES.note,
    )
    verdict = text(drift_verdict_words(record), STYLES.verdict)
    test_rows = drift_test_rows(record)
    rows = [["test", "verdict", "statistic", "threshold", "trigger", "what it measures"]]
    for row in test_rows:
        # A p-value test's figures ("p 1.5e-68 (stat. 0.45)") wrap inside their cells.
        rows.append(
            [
                row["test"],
                row["verdict"],
                cell(row["statistic"]),
                cell(row["threshold"]),
                row["trigger"],
                cell(row["detail"]),
            ]
        )
    tests = table(
        rows, [2.2 * cm, 2.4 * cm, 2.6 * cm, 1.8 * cm, 1.3 * cm, TEXT_WIDTH - 10.3 * cm], numeric_columns=(2, 3)
    )
    parts = [KeepTogether(parts + [when, verdict, tests])]
    per_feature = [(row["test"], feature) for row in test_rows for feature in row["features"]]
    if per_feature:
        parts += [Paragraph("Per feature", STYLES.subheading), _per_feature_table(per_feature)]
    return parts + predictions_part(data, figures) + _distributions(data, figures)


def predicted_rate_words(record) -> str | None:
    """The sentence "Predicted positive rate: <before> on the training sample, <after> on the new rows
    (prediction test p = <p-value>)." from the drift tick's record; None when its test "prediction"
    recorded no rates."""
    result = ((record.drift or {}).get("tests") or {}).get("prediction") or {}
    before, after = result.get("positive_rate_reference"), result.get("positive_rate_new")
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return None
    pvalue = result.get("pvalue")
    test = f"prediction test p = {pvalue:.2g}" if isinstance(pvalue, (int, float)) else "prediction test"
    return f"Predicted positive rate: {before:.1%} on the training sample, {after:.1%} on the new rows ({test})."


def predictions_part(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The deployed model's predicted positive rate before and after (drift test "prediction"), with the
    histogram of its probabilities when the tick that ran the test drew it."""
    words = predicted_rate_words(data.drift_tick) if data.drift_tick is not None else None
    if words is None:
        return []
    parts: list[Flowable] = [Paragraph("Predictions on training data against new data", STYLES.subheading)]
    parts.append(text(words))
    if figures.prediction_histogram is not None:
        return [KeepTogether(parts + [image(figures.prediction_histogram, TEXT_WIDTH * 0.75, 8 * cm)])]
    why = data.predictions_problem or (
        "The histogram of the probabilities is drawn by the tick that ran the test; this report was rebuilt "
        "from its recorded rates."
    )
    return [KeepTogether(parts + [text(why, STYLES.note)])]


def _per_feature_table(per_feature: list[tuple[str, dict]]) -> Table:
    # "decided by": the adjusted p-value, or above large_sample_rows new rows the distance, that gave the verdict.
    rows = [["test", "feature", "statistic", "p-value", "verdict", "decided by", "samples\n(training / new)"]]
    for test, feature in per_feature:
        rows.append(
            [
                test,
                cell(feature["feature"]),
                feature["statistic"],
                feature["pvalue"],
                feature["verdict"],
                cell(feature["measure"]),
                feature["samples"],
            ]
        )
    widths = [1.4 * cm, TEXT_WIDTH - 13.4 * cm, 2.0 * cm, 2.0 * cm, 2.2 * cm, 2.6 * cm, 3.2 * cm]
    return table(rows, widths, numeric_columns=(2, 3, 6))


def _distributions(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    heading = Paragraph("Training data against new data", STYLES.subheading)
    plotted = data.distributions
    if plotted is None or not figures.distributions:
        return [heading, text(data.distributions_problem or f"Distributions: {NO_DATA}.", STYLES.note)]
    note = text(
        f"Blue: a sample of the data {plotted.reference_version} was trained on ({len(plotted.reference)} rows). "
        f"Orange: {plotted.new_words}.",
        STYLES.note,
    )
    # A grid of up to 4 rows of plots is one image, sized to fill a page with its heading.
    images = [image(png, TEXT_WIDTH, 22 * cm) for png in figures.distributions]
    return [KeepTogether([heading, note, images[0]]), *images[1:]]


# --- 4. Score history ----------------------------------------------------------------


def history_section(data: ReportData, figures: ReportFigures) -> list[Flowable]:
    """The score-history figure and the last deployments and rollbacks."""
    parts: list[Flowable] = [Paragraph("4. Score history", STYLES.heading)]
    history = data.deployments
    if figures.score_history is None:
        return parts + [no_data("Deployments")]
    parts.append(image(figures.score_history, TEXT_WIDTH, 7 * cm))
    rows = [["time (UTC)", "action", "version", "F1", "note"]]
    for record in reversed(history[-RECENT_TICKS:]):
        rows.append(
            [
                display_time(record.get("time")),
                record.get("action", "?"),
                record.get("version", "?"),
                fixed(record.get("f1")),
                cell(record.get("note") or ""),
            ]
        )
    parts.append(
        Paragraph(
            f"Last {min(len(history), RECENT_TICKS)} of {len(history)} deployments and rollbacks, newest first",
            STYLES.subheading,
        )
    )
    parts.append(table(rows, [3.4 * cm, 1.8 * cm, 1.8 * cm, 1.8 * cm, TEXT_WIDTH - 8.8 * cm], numeric_columns=(3,)))
    return parts


# --- 5. Recent ticks -----------------------------------------------------------------


def ticks_section(data: ReportData) -> list[Flowable]:
    """The last ticks with their decisions, then the duration of each of their stages."""
    parts: list[Flowable] = [Paragraph("5. Recent ticks", STYLES.heading)]
    ticks = tick_rows(data.history_rows or list(data.history))
    if not ticks:
        return parts + [no_data("Run history")]
    recorded = max(data.history_records, len(data.history))
    shown = sum(row.count if isinstance(row, QuietRun) else 1 for row in data.history_rows) or len(ticks)
    quiet = " (a run of ticks with no new data is one row)" if shown > len(ticks) else ""
    intro = text(f"The last {shown} of {recorded} ticks{quiet}, newest first. Times in seconds.")
    rows = [["start (UTC)", "decision", "version", "new files", "exit", "seconds"]]
    for tick in ticks:
        rows.append(
            [
                tick["start"],
                cell(tick["decision"]),
                tick["version"],
                str(tick["new_files"]),
                str(tick["exit_status"]) if tick["exit_status"] is not None else "-",
                tick["seconds"],
            ]
        )
    ticks_table = table(
        rows, [3.4 * cm, TEXT_WIDTH - 11 * cm, 1.8 * cm, 1.8 * cm, 1.2 * cm, 2.8 * cm], numeric_columns=(3, 4, 5)
    )
    parts = [KeepTogether(parts + [intro, ticks_table])]
    stages = [name for name in STAGE_ORDER if any(name in tick["stages"] for tick in ticks)]
    stages += sorted({name for tick in ticks for name in tick["stages"]} - set(stages))
    if stages:
        parts += [Paragraph("Duration of each stage (seconds)", STYLES.subheading), _stages_table(ticks, stages)]
    return parts


def _stages_table(ticks: list[dict], stages: list[str]) -> Table:
    rows = [["start (UTC)", *stages]]
    for tick in ticks:
        rows.append([tick["start"][5:], *(seconds(tick["stages"].get(name)) for name in stages)])
    # Narrow padding: nine stage columns, "diagnostics" the widest, still fit the page.
    width = min(2 * cm, (TEXT_WIDTH - 2.2 * cm) / len(stages))
    return table(
        rows, [2.2 * cm] + [width] * len(stages), numeric_columns=range(1, len(stages) + 1), font_size=7, padding=3
    )


# --- 6. Ingested and rejected files --------------------------------------------------


def files_section(data: ReportData) -> list[Flowable]:
    """The files the deployed version was trained on, and the files its ingestion or recent ticks rejected."""
    parts: list[Flowable] = [Paragraph("6. Ingested and rejected files", STYLES.heading)]
    detail = data.ingested_detail
    ingested = detail.get("files") or {}
    parts.append(Paragraph("Files the deployed version was trained on", STYLES.subheading))
    if ingested:
        parts.append(_ingested_table(ingested, data.deployed.version if data.deployed else "the deployed version"))
    else:
        parts.append(no_data(f"{INGESTED_DETAIL_FILE} of the deployed version"))
    version = data.deployed.version if data.deployed else None
    rejected = rejected_file_rows(data.history, version, detail.get("rejected") or {})
    parts.append(Paragraph("Rejected files", STYLES.subheading))
    if rejected:
        shown = rejected[:LISTED_FILES]
        rows = [["file", "reason", "seen by"]]
        rows += [[cell(name), cell(reason), cell(", ".join(seen))] for name, reason, seen in shown]
        parts.append(table(rows, [4.5 * cm, TEXT_WIDTH - 9.5 * cm, 5 * cm]))
        if len(rejected) > len(shown):
            parts.append(
                text(
                    f"The first {len(shown)} of {len(rejected):,} rejected files; the others are in "
                    f"{INGESTED_DETAIL_FILE} of {version or 'the deployed version'} and in the run history.",
                    STYLES.note,
                )
            )
    elif data.history or detail:
        ticks = min(len(data.history), RECENT_TICKS)
        scope = " or the last tick" if ticks == 1 else f" or the last {ticks} ticks" if ticks else ""
        parts.append(text(f"None: no file was rejected by the deployed version's ingestion{scope}.", STYLES.note))
    else:
        parts.append(no_data("Rejected files"))
    return parts


def _ingested_table(ingested: dict, version: str) -> Flowable:
    """One row per file, by name; past LISTED_FILES files, the first and the last ones around one row
    summing up the others."""
    names = sorted(ingested)
    first, last = first_and_last(names)
    rows = [["file", "rows", "bytes", "sha256"]]
    rows += [_ingested_row(name, ingested[name]) for name in first]
    if last:
        left_out = [ingested[name] for name in names[len(first) : -len(last)]]
        rows.append(
            [
                cell(f"\u2026 {len(left_out):,} more files \u2026"),
                _total(info.get("rows") for info in left_out),
                _total(info.get("size") for info in left_out),
                "",
            ]
        )
        rows += [_ingested_row(name, ingested[name]) for name in last]
    listed = table(rows, [TEXT_WIDTH - 9.6 * cm, 1.8 * cm, 2.2 * cm, 5.6 * cm], numeric_columns=(1, 2))
    if not last:
        return listed
    note = text(
        f"The first {len(first)} and the last {len(last)} of {len(names):,} files by name, "
        f"{_total(info.get('rows') for info in ingested.values())} rows in all; every file is in "
        f"{INGESTED_DETAIL_FILE} of {version}.",
        STYLES.note,
    )
    return KeepTogether([note, listed])


def _ingested_row(name: str, info: dict) -> list:
    return [cell(name), integer(info.get("rows")), integer(info.get("size")), str(info.get("sha256", ""))[:16]]


def _total(values) -> str:
    """The sum of whole numbers with thousands separators, "-" when one is not a number."""
    values = list(values)
    return integer(sum(values)) if all(isinstance(value, int) for value in values) else "-"


# --- 7. Outdated packages ------------------------------------------------------------


def packages_section(data: ReportData) -> list[Flowable]:
    """The project's requirements with their installed and latest versions."""
    parts: list[Flowable] = [Paragraph("7. Outdated packages", STYLES.heading)]
    packages = data.packages
    if not packages:
        return parts + [no_data("Requirements")]
    rows = [["package", "installed", "latest", "status"]]
    for package in packages:
        status = "unknown" if package["latest"] == "unknown" else "outdated" if package["outdated"] else "up to date"
        rows.append([package["package"], package["installed"], package["latest"], status])
    parts.append(table(rows, [4.5 * cm, 3 * cm, 3 * cm, 3 * cm]))
    if any(package["latest"] == "unknown" for package in packages):
        parts.append(text('"unknown": the package index did not answer in time.', STYLES.note))
    return [KeepTogether(parts)]
