"""Ingestion: merging, validation, rejection of bad files, and its records."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from drs.config import FEATURE_COLUMNS
from drs.ingest import InvalidFile, merge_multiple_dataframe, read_validated_csv, row_keys

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
    assert list(final.columns) == [
        "corporation",
        "lastmonth_activity",
        "lastyear_activity",
        "number_of_employees",
        "exited",
    ]
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
    assert list(data.columns) == [
        "corporation",
        "lastmonth_activity",
        "lastyear_activity",
        "number_of_employees",
        "exited",
    ]
    assert data.loc[0, "corporation"] == "acme, inc"
    assert data.loc[0, "lastmonth_activity"] == 20
    assert pd.isna(data.loc[1, "number_of_employees"])
    written = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert written["number_of_employees"].isna().sum() == 1


@pytest.mark.parametrize(
    "content, reason",
    [
        (HEADER.replace(",exited", "") + "a,1,2,3\n", "missing column(s): exited"),
        (HEADER + "a,1,2,3,0\nb,one,2,3,0\n", "line 3, column 'lastmonth_activity': not a number"),
        (HEADER + "a,1,inf,3,0\n", "line 2, column 'lastyear_activity': not a finite number"),
        (HEADER + "a,1,2,3,0\na,1,2,-inf,1\n", "line 3, column 'number_of_employees': not a finite number"),
        (HEADER + "a,1,2,3,0\na,1e308,2,3,1\n", "line 3, column 'lastmonth_activity': not a finite number below 1e+15"),
        (HEADER + "a,1,2,3,2\n", "line 2, column 'exited': must be 0 or 1"),
        (HEADER + "a,1,2,3,yes\n", "line 2, column 'exited': not a number"),
        ("", "empty file: no header line"),
        (HEADER + "a,1,2,3,0\na,1,2,3,0,9\n", "line 3: 6 field(s), expected 5"),
        (HEADER + 'a,1,2,3,0\n"unterminated,1,2,3,0\n', "line 3: 1 field(s), expected 5"),
        (HEADER.replace("\n", ",lastyear_activity\n") + "a,1,2,3,0,4\n", "duplicate column name 'lastyear_activity'"),
    ],
)
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
    assert result.rejected == {"latin1.csv": "line 2: not UTF-8 text"}


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


def test_duplicates_keep_the_first_occurrence_across_files_like_pandas(inbox, project):
    (inbox / "a.csv").write_text(HEADER + "abc,1,10,5,0\nabc,1,10,5,0\nxyz,,20,3,1\nq,0,1,1,0\n,5,5,5,\n")
    (inbox / "b.csv").write_text(
        "exited,number_of_employees,lastyear_activity,lastmonth_activity,corporation\n"
        "1,3,20,,xyz\n0,1,1,-0,q\n,5,5,5,\n1,7,70,7,new\n"
    )
    result = merge_multiple_dataframe(project.config())
    # Missing equals missing, -0 equals 0, and the first of identical rows is kept where it was.
    assert list(result.data["corporation"].fillna("")) == ["abc", "xyz", "q", "", "new"]
    assert result.rows_read == 9 and result.rows == 5
    assert result.data.dtypes.to_dict() == {
        "corporation": "str",
        "lastmonth_activity": "float64",
        "lastyear_activity": "float64",
        "number_of_employees": "float64",
        "exited": "float64",
    }
    written = pd.read_csv(project.path("ingesteddata", "finaldata.csv"), keep_default_na=False)
    assert list(written["corporation"]) == ["abc", "xyz", "q", "", "new"]


def test_rows_from_some_files_and_row_keys_tell_rows_seen_before(inbox, project):
    (inbox / "a.csv").write_text(HEADER + "old,1,2,3,0\ngap,,2,3,1\n")
    (inbox / "b.csv").write_text(HEADER + "new,1,2,3,1\ngap,,2,3,1\nnew,1,2,3,1\nold,1,2,3,0\n")
    result = merge_multiple_dataframe(project.config(), write=False)
    assert list(result.data["corporation"]) == ["old", "gap", "new"]
    from_b = result.rows_from(["b.csv"])
    assert list(from_b["corporation"]) == ["new", "gap", "old"]  # b's own rows, deduplicated, in b's order
    seen = row_keys(result.rows_from(["a.csv", "not-ingested.csv"]))
    fresh = from_b[~np.isin(row_keys(from_b), seen)]
    assert list(fresh["corporation"]) == ["new"]  # the missing value of "gap" matched its twin in a.csv
    assert result.rows_from([]).empty and list(result.rows_from([]).columns) == list(result.data.columns)
    assert not project.path("ingesteddata", "finaldata.csv").exists()  # write=False writes nothing


def test_read_validated_csv_takes_bytes_or_a_file_and_can_ask_for_the_features_only():
    body = b"number_of_employees,lastmonth_activity,exited,lastyear_activity\r\n3,1,maybe,2\r\n,4,,5\r\n"
    features = read_validated_csv(io.BytesIO(body), columns=FEATURE_COLUMNS)
    assert list(features.columns) == list(FEATURE_COLUMNS) and features.shape == (2, 3)
    assert features["number_of_employees"].isna().sum() == 1
    with pytest.raises(InvalidFile, match="missing column\\(s\\): corporation"):
        read_validated_csv(body)
    with pytest.raises(InvalidFile, match="^line 2, column 'lastyear_activity': not a finite number below 1e"):
        read_validated_csv(b"lastmonth_activity,lastyear_activity,number_of_employees\n1,inf,3\n", FEATURE_COLUMNS)


def test_the_reference_sample_is_a_fixed_50000_rows_or_everything(inbox, project):
    from drs.files import REFERENCE_SAMPLE_ROWS

    rows = REFERENCE_SAMPLE_ROWS + 500
    frame = pd.DataFrame(
        {
            "corporation": [f"c{i}" for i in range(rows)],
            "lastmonth_activity": range(rows),
            "lastyear_activity": 1,
            "number_of_employees": 2,
            "exited": 0,
        }
    )
    frame.to_csv(inbox / "big.csv", index=False)
    result = merge_multiple_dataframe(project.config())
    sample = pd.read_csv(project.path("ingesteddata", "referencedata.csv"))
    expected = result.data.sample(n=REFERENCE_SAMPLE_ROWS, random_state=0)
    assert list(sample["corporation"]) == list(expected["corporation"])
    (inbox / "big.csv").unlink()
    (inbox / "small.csv").write_text(HEADER + "a,1,2,3,0\nb,1,2,3,1\n")
    merge_multiple_dataframe(project.config())
    assert len(pd.read_csv(project.path("ingesteddata", "referencedata.csv"))) == 2
