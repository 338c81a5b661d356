"""Ingestion: merging, validation, rejection of bad files, and its records."""
import json

import pandas as pd
import pytest

from ingestion import merge_multiple_dataframe

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


@pytest.fixture
def inbox(project):
    folder = project.path("inbox")
    folder.mkdir()
    project.write_config(input_folder_path="inbox")
    return folder


def test_merges_every_csv_in_sorted_order_and_dedupes(inbox, project):
    (inbox / "b.csv").write_text(HEADER + "bbbb,1,2,3,0\ndupe,5,6,7,1\n")
    (inbox / "a.csv").write_text(HEADER + "aaaa,1,2,3,1\ndupe,5,6,7,1\n")
    (inbox / "notes.txt").write_text("not data")
    (inbox / "folder.csv").mkdir()  # a folder named like a CSV is ignored too
    result = project.run("ingestion.py")
    assert result.returncode == 0, result.stderr
    final = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert list(final["corporation"]) == ["aaaa", "dupe", "bbbb"]
    assert list(final.columns) == ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
    assert project.path("ingesteddata", "ingestedfiles.txt").read_text() == "a.csv\nb.csv\n"
    detail = json.loads(project.path("ingesteddata", "ingestedfiles.json").read_text())
    assert detail["files"]["a.csv"]["rows"] == 2 and len(detail["files"]["a.csv"]["sha256"]) == 64
    assert detail["rows_read"] == 4 and detail["rows"] == 3
    # atomic writes leave no temporary files behind
    assert not list(project.path("ingesteddata").rglob("*.tmp"))


def test_accepts_bom_crlf_quotes_reordered_and_extra_columns_and_missing_values(inbox, project):
    (inbox / "quirky.csv").write_bytes(
        b"\xef\xbb\xbfexited,number_of_employees,notes,lastyear_activity,lastmonth_activity,corporation\r\n"
        b'1,10,"free, text",500,20,"acme, inc"\r\n'
        b"0,,x,600,30,beta\r\n"
    )
    result = merge_multiple_dataframe(project.config())
    assert result.rejected == {}
    data = result.data
    assert list(data.columns) == ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
    assert data.loc[0, "corporation"] == "acme, inc"
    assert data.loc[0, "lastmonth_activity"] == 20
    assert pd.isna(data.loc[1, "number_of_employees"])
    written = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert written["number_of_employees"].isna().sum() == 1


@pytest.mark.parametrize("content, reason", [
    (HEADER.replace(",exited", "") + "a,1,2,3\n", "missing column(s): exited"),
    (HEADER + "a,one,2,3,0\n", "In column 'lastmonth_activity'"),
    (HEADER + "a,1,inf,3,0\n", "non-finite"),
    (HEADER + "a,1,2,3,2\n", "must be 0 or 1, found 2"),
    ("", "Empty CSV file"),
    (HEADER + "a,1,2,3,0,9\n", "Expected 5 columns, got 6"),
])
def test_a_bad_file_is_rejected_whole_and_the_others_still_ingested(inbox, project, content, reason):
    (inbox / "bad.csv").write_text(content)
    (inbox / "good.csv").write_text(HEADER + "good,1,2,3,0\n")
    result = project.run("ingestion.py")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if "bad.csv" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and reason in warnings[0]
    assert project.path("ingesteddata", "ingestedfiles.txt").read_text() == "good.csv\n"
    detail = json.loads(project.path("ingesteddata", "ingestedfiles.json").read_text())
    assert reason in detail["rejected"]["bad.csv"]


def test_non_utf8_file_is_rejected(inbox, project):
    (inbox / "latin1.csv").write_bytes((HEADER + "caf\xe9,1,2,3,0\n").encode("latin-1"))
    (inbox / "good.csv").write_text(HEADER + "good,1,2,3,0\n")
    result = merge_multiple_dataframe(project.config())
    assert "latin1.csv" in result.rejected and "UTF8" in result.rejected["latin1.csv"].upper().replace("-", "")


def test_no_valid_file_is_an_error_and_keeps_earlier_outputs(inbox, project):
    (inbox / "good.csv").write_text(HEADER + "good,1,2,3,0\n")
    assert project.run("ingestion.py").returncode == 0
    before = project.path("ingesteddata", "finaldata.csv").read_text()
    (inbox / "good.csv").unlink()
    (inbox / "bad.csv").write_text("x,y\n1,2\n")
    result = project.run("ingestion.py")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no valid CSV file" in result.stderr and "bad.csv" in result.stderr
    assert project.path("ingesteddata", "finaldata.csv").read_text() == before


def test_missing_input_folder_is_a_one_line_error(project):
    project.write_config(input_folder_path="does-not-exist")
    result = project.run("ingestion.py")
    assert result.returncode == 1
    assert "input folder not found" in result.stderr and "Traceback" not in result.stderr
