"""The PDF report: written by every redeploy and by reporting.py; sections, figures, and "no data yet"."""

from __future__ import annotations

import builtins
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import OFFLINE_INDEX, PYTHON, ROOT, images_on, read_pdf
from pypdf import PdfReader
from report_fixtures import FIGURES, hand_made_data, tiny_png
from reportlab.platypus import Paragraph

from drs.config import COURSE_SCHEMA
from drs.report import write_report
from drs.report.gather import ReportData
from drs.report.pdf import ReportFigures, pdf_bytes, story

SECTIONS = (
    "1. Deployed model",
    "2. Ingested data",
    "3. Drift",
    "4. Score history",
    "5. Recent ticks",
    "6. Ingested and rejected files",
    "7. Outdated packages",
)
ODD_NAME = "odd <&> name.csv"


@pytest.fixture
def drifted(deployed):
    """The practice model deployed, then a production tick on shifted data: drift, retrain, redeploy."""
    # A file ingestion rejects (no `exited` column), named with characters that are markup in a PDF paragraph.
    deployed.path("sourcedata", ODD_NAME).write_text("corporation,lastmonth_activity\nabc,1\n")
    result = deployed.run("fullprocess.py", config="config_production.json", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    last = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert last["decision"] == "drift, redeployed"
    return deployed


def test_a_redeploy_writes_a_report_with_every_section_and_figure(drifted):
    manifest = json.loads(drifted.path("production_deployment", "current", "manifest.json").read_text())
    reader, text = read_pdf(drifted.path("models", "report.pdf"))

    assert len(reader.pages) >= 3
    assert f"Model report: {manifest['version']}" in text
    for heading in SECTIONS:
        assert heading in text
    assert f"F1 {manifest['scores']['f1']:.4f}" in text
    for metric in ("precision", "recall", "ROC AUC"):
        assert metric in text
    for name in manifest["training_files"]:
        assert name in text
    assert "Drift: the trigger test(s) raw found drift, so the model was retrained" in text
    # Every feature of the drift record, under each test that compared it, with its figures.
    drift = json.loads(drifted.path("logs", "history.jsonl").read_text().splitlines()[-1])["drift"]["tests"]
    assert "Per feature" in text and "p-value" in text
    for test in ("ks", "psi"):
        for feature, figures in drift[test]["features"].items():
            assert f"{test} {feature} {figures['statistic']:.4f}" in text
    assert "chi2 insufficient data - p < 0.0100 no the schema has no categorical features" in text
    assert ODD_NAME in text and "missing column(s): lastyear_activity" in text
    assert "Duration of each stage (seconds)" in text
    assert "no data yet" not in text
    assert f"page 1 of {len(reader.pages)}" in text

    per_page = [images_on(page) for page in reader.pages]
    # Confusion matrix, feature distributions, score history.
    assert sum(per_page) >= 3
    assert per_page[0] >= 1


def test_reporting_script_writes_both_files_and_says_no_data_yet_for_missing_pieces(deployed):
    bootstrap_report = deployed.path("models", "report.pdf")
    _, text = read_pdf(bootstrap_report)
    assert "Model report: v0001" in text
    assert "Drift tests: no data yet" in text

    shutil.rmtree(deployed.path("logs"))
    deployed.path("ingesteddata", "finaldata.csv").unlink()
    deployed.path("models", "confusionmatrix.png").unlink()
    bootstrap_report.unlink()

    result = deployed.run("reporting.py", env=OFFLINE_INDEX)

    assert result.returncode == 0, result.stderr
    assert deployed.path("models", "confusionmatrix.png").read_bytes().startswith(b"\x89PNG")
    reader, text = read_pdf(deployed.path("models", "report.pdf"))
    for heading in SECTIONS:
        assert heading in text
    assert "Ingested data: no data yet" in text
    assert "Drift tests: no data yet" in text
    assert "Run history: no data yet" in text
    # Still there: production's own records.
    assert "Model report: v0001" in text
    assert images_on(reader.pages[0]) >= 1
    assert not list(deployed.path("models").glob(".report.pdf.*"))  # no temp file left behind


def test_a_report_with_nothing_deployed_says_so(project, monkeypatch):
    for name, value in OFFLINE_INDEX.items():
        monkeypatch.setenv(name, value)

    path = write_report(project.config())

    assert path == project.path("models", "report.pdf")
    reader, text = read_pdf(path)
    assert "No model deployed yet" in text
    assert "Score history" in text and "Deployments: no data yet" in text
    assert len(reader.pages) >= 1


# --- the layout alone: hand-made data, no files ----------------------------------------


def layout_text(data: ReportData, figures: ReportFigures) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf_bytes(data, figures)))
    return reader, " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_the_layout_shows_every_piece_it_is_given_and_reads_no_file(monkeypatch):
    data = hand_made_data()

    def no_reading(*args, **kwargs):
        raise AssertionError(f"the layout opened a file: {args}")

    monkeypatch.setattr(builtins, "open", no_reading)
    monkeypatch.setattr(Path, "open", no_reading)
    content = pdf_bytes(data, FIGURES)
    monkeypatch.undo()

    reader = PdfReader(io.BytesIO(content))
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    assert text.startswith("Model report: v0002 Generated 2024-05-01 10:00 UTC from config_production.json.")
    for heading in SECTIONS:
        assert heading in text
    assert "F1 0.6195 precision 0.8861 recall 0.4762 ROC AUC n/a test rows 400 positives (exited = 1) 147" in text
    assert "dataset3.csv (400 rows)" in text and "lastmonth_activity 1.5000 1.5000 0.7071 33.33" in text
    assert (
        "Drift: the trigger test(s) raw found drift, so the model was retrained (decision: drift, redeployed)" in text
    )
    assert "ks lastmonth_activity 0.4500 1.000e-09 drift -" in text
    assert "Orange: the 3 new rows the drift tests used." in text
    assert "Last 1 of 1 deployments and rollbacks" in text and "Duration of each stage (seconds)" in text
    assert ODD_NAME in text and "tick 2024-05-01 10:00:00" in text and "12,345" in text
    assert "pandas 2.2.0 unknown unknown" in text and "no data yet" not in text
    assert f"page 1 of {len(reader.pages)}" in text
    # Confusion matrix, two distribution grids, score history.
    assert sum(images_on(page) for page in reader.pages) == 4


def test_the_layout_says_no_data_yet_for_each_missing_piece():
    bare = ReportData(config_name="config.json", schema=COURSE_SCHEMA, generated="2024-05-01 10:00 UTC")
    _, text = layout_text(bare, ReportFigures())
    assert "Model report Generated" in text and "No model deployed yet (None)" in text
    for missing in ("Ingested data", "Deployments", "Run history", "Rejected files", "Requirements"):
        assert f"{missing}: no data yet." in text
    assert "Drift tests: no data yet" in text

    no_scores = hand_made_data(scores=None, scores_problem="no test data at testdata/testdata.csv")
    no_plots = hand_made_data(
        distributions=None, distributions_problem="Reference sample of the training data: no data yet."
    )
    _, text = layout_text(no_scores, FIGURES)
    assert "Test data: no data yet (no test data at testdata/testdata.csv)." in text and "ROC AUC" not in text
    _, text = layout_text(no_plots, ReportFigures(score_history=tiny_png()))
    assert "Training data against new data Reference sample of the training data: no data yet." in text


def test_the_story_is_flowables_with_no_io():
    flowables = story(hand_made_data(), FIGURES)
    assert isinstance(flowables[0], Paragraph) and flowables[0].getPlainText() == "Model report: v0002"
    headings = [f.getPlainText() for f in flowables if isinstance(f, Paragraph) and f.style.name == "section"]
    assert headings[:2] == ["1. Deployed model", "2. Ingested data (finaldata.csv)"]


def test_an_api_worker_loads_no_pdf_library():
    # The status page draws the score history through drs.figures: reportlab stays out of API workers.
    code = (
        "import sys, drs.api, app; app.create_app; "
        "print('reportlab' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
