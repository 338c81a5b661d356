"""The report stays a few pages whatever the number of files; a report that cannot be rebuilt fails one
tick, not every tick; a rollback rewrites the reports for the version it switched to."""

from __future__ import annotations

import io
import json

import pytest
from conftest import OFFLINE_INDEX, client_for, read_pdf
from pypdf import PdfReader
from report_fixtures import FIGURES, hand_made_data

from drs.deploy import DeployedModel
from drs.history import Decision, HistoryLog, TickRecord
from drs.report import write_reports
from drs.report.pdf import cell, pdf_bytes


def many_files_data(count: int):
    """The hand-made report's data for a version trained on `count` daily exports, with as many rejected
    files and a drift tick that saw all of them as new."""
    names = [f"export-{day:05d}.csv" for day in range(count)]
    manifest = {
        "version": "v0002",
        "created": "2024-05-01T10:00:05+00:00",
        "previous_version": "v0001",
        "training_files": {name: {"rows": 100} for name in names},
    }
    data = hand_made_data(
        deployed=DeployedModel(model=None, manifest=manifest),
        ingested_detail={
            "files": {name: {"rows": 100, "size": 1_000, "sha256": "ab" * 32} for name in names},
            "rejected": {f"broken-{day:05d}.csv": "missing column(s): exited" for day in range(count)},
        },
    )
    assert data.drift_tick is not None
    data.drift_tick.new_files = names
    return data, names


def pages_and_text(content: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(content))
    return len(reader.pages), " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_five_thousand_training_files_give_a_report_of_a_few_pages():
    data, names = many_files_data(5_000)
    content = pdf_bytes(data, FIGURES)  # a LayoutError when every name went into one table cell

    pages, text = pages_and_text(content)
    few_pages, _ = pages_and_text(pdf_bytes(many_files_data(3)[0], FIGURES))
    assert pages <= few_pages + 2 and len(content) < 100_000
    # Correct all the same: how many files and rows, the first and the last ones, where the rest are.
    assert f"5,000 files, 500,000 rows: {names[0]} to {names[-1]}" in text
    assert "The first 15 and the last 15 of 5,000 files by name, 500,000 rows in all" in text
    assert "4,970 more files" in text and "497,000 4,970,000" in text
    assert names[14] in text and names[-15] in text and names[15] not in text and names[2_500] not in text
    assert "The first 30 of 5,001 rejected files" in text
    assert f"new files: {', '.join(names[:5])}, …, {', '.join(names[-5:])} (5,000 in all)." in text


def test_a_few_files_are_all_listed():
    data, names = many_files_data(10)
    _, text = pages_and_text(pdf_bytes(data, FIGURES))
    assert ", ".join(f"{name} (100 rows)" for name in names) in text
    assert "more files" not in text and "in all" not in text


def test_no_cell_outgrows_a_page():
    long_reason = "x" * 50_000
    data = hand_made_data(ingested_detail={"files": {}, "rejected": {"huge.csv": long_reason}})
    pages, text = pages_and_text(pdf_bytes(data, FIGURES))
    assert pages < 10 and "huge.csv" in text
    assert len(cell(long_reason).getPlainText()) < 1_000


def test_every_page_names_the_version_it_describes():
    reader = PdfReader(io.BytesIO(pdf_bytes(hand_made_data(), FIGURES)))
    for page in reader.pages:
        assert "model report of v0002" in (page.extract_text() or "")


# --- end to end ------------------------------------------------------------------------------


def reports_record(project) -> dict:
    return json.loads(project.path("models", "reports.json").read_text())


def history(project) -> list[dict]:
    return [json.loads(line) for line in project.path("logs", "history.jsonl").read_text().splitlines()]


@pytest.fixture
def two_versions(deployed):
    """v0001 from the bootstrap, then v0002 deployed by hand: the reports describe v0002."""
    assert deployed.run("deployment.py").returncode == 0
    write_reports(deployed.config())
    assert reports_record(deployed)["version"] == "v0002"
    return deployed


def test_a_rollback_rewrites_the_reports_for_the_version_it_switched_to(two_versions):
    result = two_versions.run("deployment.py", "--rollback", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "production now serves v0001"
    assert reports_record(two_versions)["version"] == "v0001"
    _, text = read_pdf(two_versions.path("models", "report.pdf"))
    assert text.startswith("Model report: v0001") and "model report of v0001" in text
    assert json.loads(two_versions.path("models", "diagnostics.json").read_text())["version"] == "v0001"


def test_a_rollback_whose_reports_fail_stands_and_says_they_are_stale(two_versions):
    two_versions.path("models", "report.pdf").unlink()
    two_versions.path("models", "report.pdf").mkdir()  # the report cannot be written
    result = two_versions.run("deployment.py", "--rollback", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    last = result.stdout.splitlines()[-1]
    assert last.startswith("production now serves v0001; the reports are stale: they describe v0002, not v0001")
    assert "the next tick tries again" in last
    manifest = json.loads(two_versions.path("production_deployment", "current", "manifest.json").read_text())
    assert manifest["version"] == "v0001" and reports_record(two_versions)["version"] == "v0002"
    # The status page says whose reports it links, and that they are not the served model's.
    page = client_for(two_versions).get("/").get_data(as_text=True)
    assert 'describes <span id="reports-version">v0002</span>' in page
    assert "The reports describe v0002, production serves v0001 (not rebuilt yet)" in page


def test_reports_that_cannot_be_rebuilt_fail_one_quiet_tick_not_every_tick(two_versions):
    # Production switched back with the reports left describing v0002, as a kill after the switch leaves them.
    record = reports_record(two_versions)
    two_versions.path("models", "report.pdf").unlink()
    two_versions.path("models", "report.pdf").mkdir()
    assert two_versions.run("deployment.py", "--rollback", env=OFFLINE_INDEX).returncode == 0
    assert reports_record(two_versions) == record

    first = two_versions.run("fullprocess.py", env=OFFLINE_INDEX)
    assert first.returncode == 1 and first.stderr.count("\n") == 1
    assert history(two_versions)[-1]["failed_stage"] == "report"
    assert reports_record(two_versions)["failed"]["version"] == "v0001"
    assert reports_record(two_versions)["version"] == "v0002"

    for _ in range(2):
        later = two_versions.run("fullprocess.py", env=OFFLINE_INDEX)
        assert later.returncode == 0, later.stderr
        tick = history(two_versions)[-1]
        assert tick["decision"] == "no new data" and "report" not in tick["stages"]
        assert tick["warning"].startswith("the reports describe v0002, production serves v0001: rebuilding them")
    page = client_for(two_versions).get("/").get_data(as_text=True)
    assert "The reports describe v0002, production serves v0001 (rebuilding them failed: " in page

    # Fixed, and rebuilt by hand: the note of the failure goes.
    two_versions.path("models", "report.pdf").rmdir()
    assert two_versions.run("reporting.py", env=OFFLINE_INDEX).returncode == 0
    assert "failed" not in reports_record(two_versions) and reports_record(two_versions)["version"] == "v0001"
    page = client_for(two_versions).get("/").get_data(as_text=True)
    assert 'describes <span id="reports-version">v0001</span>' in page and "reports-stale" not in page
    quiet = two_versions.run("fullprocess.py", env=OFFLINE_INDEX)
    assert quiet.returncode == 0 and "warning" not in history(two_versions)[-1]


def test_a_day_of_quiet_ticks_is_one_row_and_the_bootstrap_stays_in_view(deployed):
    history = HistoryLog(deployed.path("logs", "history.jsonl"))
    for minute in range(0, 1440, 10):
        history.append(
            TickRecord(
                start=f"2030-01-01T{minute // 60:02d}:{minute % 60:02d}:00+00:00",
                decision=Decision.NO_NEW_DATA,
                exit_status=0,
                deployed_version="v0001",
            )
        )
    page = client_for(deployed).get("/").get_data(as_text=True)
    assert "144 ticks with no new data since 2030-01-01 00:00" in page and "bootstrap" in page
    write_reports(deployed.config())
    _, text = read_pdf(deployed.path("models", "report.pdf"))
    assert "144 ticks with no new data since" in " ".join(text.split()) and "bootstrap" in text
    assert "The last 145 of 145 ticks (a run of ticks with no new data is one row)" in " ".join(text.split())
    status = deployed.run("fullprocess.py", "--status", "3")
    lines = status.stdout.splitlines()
    assert "bootstrap" in lines[2] and lines[3].endswith("144 ticks with no new data since 2030-01-01 00:00")
