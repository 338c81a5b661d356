"""Late labels by id: the newest row of an id wins, a label is not lost to a re-send without one, and
labels that arrive later are judged as new labelled rows."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from drs.config import COURSE_SCHEMA, Schema
from drs.ingest import read_final_data
from drs.latest_rows import file_ranks, latest_per_id

NO_ID = Schema(None, "exited", 1, ("activity",), ())


def frame(rows: list[tuple]) -> tuple[pd.DataFrame, np.ndarray]:
    """(the rows as the course's columns, each row's file)."""
    columns = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
    data = pd.DataFrame([row[1:] for row in rows], columns=columns)
    return data, np.array([row[0] for row in rows], dtype=object)


RANKS = file_ranks({"old.csv": {"mtime_ns": 1}, "new.csv": {"mtime_ns": 2}, "b.csv": {"mtime_ns": 2}})


def test_a_later_label_replaces_the_row_without_one_and_is_counted():
    data, files = frame([("old.csv", "a", 1, 2, 3, np.nan), ("old.csv", "b", 4, 5, 6, 0), ("new.csv", "a", 1, 2, 3, 1)])
    latest = latest_per_id(data, files, RANKS, COURSE_SCHEMA)
    assert latest.data.to_dict("list")["corporation"] == ["b", "a"]  # the order the rows came in
    assert latest.data["exited"].tolist() == [0, 1]
    assert latest.replaced == 1 and latest.new_labels == {"new.csv": 1}


def test_a_corrected_label_replaces_the_old_one_and_a_resend_without_label_erases_nothing():
    data, files = frame(
        [
            ("old.csv", "a", 1, 2, 3, 0),
            ("old.csv", "c", 7, 8, 9, 1),
            ("new.csv", "a", 1, 2, 3, 1),  # corrected
            ("new.csv", "c", 7, 8, 9, np.nan),  # re-sent before its outcome was known again
        ]
    )
    latest = latest_per_id(data, files, RANKS, COURSE_SCHEMA)
    kept = dict(zip(latest.data["corporation"], latest.data["exited"], strict=True))
    assert kept == {"a": 1, "c": 1} and latest.replaced == 2 and latest.new_labels == {"new.csv": 1}


def test_the_newest_file_wins_then_its_name_then_the_later_row_and_rows_without_id_stay():
    data, files = frame(
        [
            ("new.csv", "a", 1, 0, 0, 0),
            ("b.csv", "a", 2, 0, 0, 0),  # as new as new.csv, whose name comes later: new.csv's row wins
            ("old.csv", "d", 1, 0, 0, 0),
            ("old.csv", "d", 2, 0, 0, 0),  # the later row of its file
            ("old.csv", None, 5, 0, 0, 0),
            ("old.csv", None, 6, 0, 0, 0),
        ]
    )
    latest = latest_per_id(data, files, RANKS, COURSE_SCHEMA)
    kept = list(zip(latest.data["corporation"].fillna("-"), latest.data["lastmonth_activity"], strict=True))
    assert kept == [("a", 1), ("d", 2), ("-", 5), ("-", 6)]
    assert latest.new_labels == {}  # the same label: nothing gained


def test_without_an_id_column_or_a_shared_id_nothing_changes():
    data, files = frame([("old.csv", "a", 1, 2, 3, 0), ("new.csv", "a", 1, 2, 3, 1)])
    unchanged = latest_per_id(data.rename(columns={"lastmonth_activity": "activity"}), files, RANKS, NO_ID)
    assert len(unchanged.data) == 2 and unchanged.replaced == 0
    distinct, files = frame([("old.csv", "a", 1, 2, 3, 0), ("new.csv", "b", 1, 2, 3, 1)])
    assert latest_per_id(distinct, files, RANKS, COURSE_SCHEMA).data.equals(distinct)


# --- end to end: the labels arrive after the applications ------------------------------------------


def write_rows(path, rows: list[tuple], mtime: float) -> None:
    lines = ["corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited"]
    lines += [",".join("" if value is None else str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, (mtime, mtime))


def last_record(project) -> dict:
    return json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])


def test_labels_that_arrive_later_are_judged_as_new_labelled_rows(deployed):
    applications = [(f"late{n:03d}", 50 + n, 900 + n, 10 + n % 7) for n in range(40)]
    folder = deployed.path("practicedata")
    write_rows(folder / "applications.csv", [(*row, None) for row in applications], mtime=2_000_000_000)
    first = deployed.run("fullprocess.py")
    assert first.returncode == 0, first.stderr
    record = last_record(deployed)
    assert record["new_rows"] == 40 and record["new_labels"] == 0
    assert record["scores"]["new_data_f1"] is None  # no labels yet: the raw test cannot tell
    assert record["decision_code"] == "no_drift"

    # The outcomes come a month later, for the same applications, and one correction of a known row.
    outcomes = [(*row, n % 2) for n, row in enumerate(applications)]
    write_rows(folder / "outcomes.csv", outcomes, mtime=2_000_000_000 + 30 * 86_400)
    second = deployed.run("fullprocess.py")
    assert second.returncode == 0, second.stderr
    record = last_record(deployed)
    assert record["new_files"] == ["outcomes.csv"] and record["new_rows"] == 40 and record["new_labels"] == 40
    assert record["scores"]["new_data_f1"] is not None  # judged on the rows that gained their label
    final = read_final_data(deployed.config())
    late = final[final["corporation"].str.startswith("late")]
    assert len(late) == 40 and late["exited"].notna().all()  # one row per application, labelled
