"""The PDF report: written by every redeploy and by reporting.py; sections, figures, and "no data yet"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import PYTHON, ROOT
from pypdf import PdfReader

# Nothing listens there: outdated packages read "unknown" at once instead of asking PyPI.
OFFLINE_INDEX = {"DRS_PYPI_URL": "http://127.0.0.1:9/{package}/json"}

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


def read_pdf(path) -> tuple[PdfReader, str]:
    """The parsed PDF and its text with all whitespace runs made single spaces."""
    reader = PdfReader(path)
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    return reader, text


def images_on(page) -> int:
    resources = page.get("/Resources") or {}
    objects = resources.get("/XObject") or {}
    return sum(1 for ref in objects.values() if ref.get_object().get("/Subtype") == "/Image")


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


def test_a_report_with_nothing_deployed_says_so(project):
    config = project.config()
    code = f"import reporting, settings; reporting.write_report(settings.load_config({str(config.path)!r}))"
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **OFFLINE_INDEX}
    )

    assert result.returncode == 0, result.stderr
    reader, text = read_pdf(project.path("models", "report.pdf"))
    assert "No model deployed yet" in text
    assert "Score history" in text and "Deployments: no data yet" in text
    assert len(reader.pages) >= 1
