"""The history views of the status page and the report, on hand-made records (no files, no servers)."""

from __future__ import annotations

import subprocess

from conftest import PYTHON, ROOT, Project

from drs.history import TickRecord
from drs.status_views import (
    NO_DATA,
    display_time,
    drift_feature_rows,
    drift_test_rows,
    drift_verdict_words,
    last_drift_tick,
    number,
    read_history,
    rejected_file_rows,
    seconds,
    tick_rows,
)


def records(*lines: dict) -> list[TickRecord]:
    return [TickRecord.from_json(line) for line in lines]


def drift_record(drifted: bool = True, **extra) -> TickRecord:
    """A tick record whose drift tests ran: raw the trigger, ks per feature."""
    return TickRecord.from_json(
        {
            "start": "2024-05-01T10:00:00.123456+00:00",
            "end": "2024-05-01T10:00:09+00:00",
            "deployed_version_before": "v0001",
            "new_rows": 800,
            "scores": {"new_data_f1": 0.57421234, "deployed_f1": 0.6752},
            "drift": {
                "drift": drifted,
                "trigger": {"tests": ["raw"], "fired": ["raw"] if drifted else []},
                "tests": {
                    "psi": {"verdict": "watch", "statistic": 0.15, "threshold": 0.25, "features": {}},
                    "ks": {
                        "verdict": "drift",
                        "statistic": 0.45,
                        "pvalue": 1.5e-68,
                        "threshold": 0.01,
                        "detail": "two-sample KS",
                        "features": {
                            "lastmonth_activity": {
                                "verdict": "drift",
                                "statistic": 0.45,
                                "pvalue": 1e-9,
                                "samples": [700, 800],
                            }
                        },
                    },
                    "raw": {"verdict": "drift" if drifted else "no drift", "statistic": 0.5742, "threshold": 0.6752},
                },
            },
            **extra,
        }
    )


def test_the_views_load_no_plotting_pdf_or_table_library():
    # What an API worker pays for the status page's words and tables.
    code = (
        "import sys; import drs.status_views; "
        "print(sorted(m for m in ('pandas', 'numpy', 'matplotlib', 'reportlab', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_last_drift_tick_is_the_newest_that_ran_the_tests():
    older, newer = drift_record(), drift_record(drifted=False)
    assert last_drift_tick([older, newer, *records({"start": "x", "decision": "no new data"})]) is newer
    assert last_drift_tick(records({"start": "x", "decision": "no new data"}, {"start": "y", "drift": "no"})) is None
    assert last_drift_tick([]) is None


def test_the_verdict_says_what_was_found_and_done():
    words = drift_verdict_words(drift_record(decision="drift, redeployed"))
    assert words == (
        "Model v0001 scored F1 0.5742 on the 800 new rows against 0.6752 on its test data. "
        "Drift: the trigger test(s) raw found drift, so the model was retrained (decision: drift, redeployed). "
        "Not used as triggers but also reporting drift: ks."
    )
    # A report written during the tick comes before its decision; no scores, no sentence about them.
    kept = drift_record(drifted=False, scores={})
    assert drift_verdict_words(kept) == (
        "No drift: the trigger test(s) raw found none, so v0001 was kept. "
        "Not used as triggers but also reporting drift: ks."
    )
    assert drift_verdict_words(None).startswith(f"Drift tests: {NO_DATA}")


def test_drift_rows_follow_the_registry_order_with_p_values_beside_statistics():
    rows = drift_test_rows(drift_record())
    assert [row["test"] for row in rows] == ["raw", "ks", "psi"]
    raw, ks, psi = rows
    assert (raw["statistic"], raw["threshold"], raw["trigger"], raw["features"]) == ("0.5742", "0.6752", "yes", [])
    assert ks["statistic"] == "p 1.500e-68 (stat. 0.4500)" and ks["threshold"] == "p < 0.0100"
    assert ks["trigger"] == "no" and ks["detail"] == "two-sample KS"
    assert ks["features"] == [
        {
            "feature": "lastmonth_activity",
            "verdict": "drift",
            "statistic": "0.4500",
            "pvalue": "1.000e-09",
            "samples": "700 / 800",
            "measure": "-",
        }
    ]
    assert psi["statistic"] == "0.1500" and psi["detail"] == ""
    assert drift_test_rows(None) == []


def test_feature_rows_show_dashes_for_what_a_test_has_not():
    rows = drift_feature_rows({"features": {"plan": {"statistic": 0.02}}})
    assert rows == [
        {"feature": "plan", "verdict": "?", "statistic": "0.0200", "pvalue": "-", "samples": "-", "measure": "-"}
    ]


def test_tick_rows_are_newest_first_and_say_what_is_unfinished_or_failed():
    ticks = records(
        {"start": "2024-05-01T09:00:00+00:00", "end": "x", "decision": "no new data", "seconds": 0.1234},
        {
            "start": "2024-05-01T10:00:00+00:00",
            "end": "x",
            "decision": "failed",
            "error": "disk full",
            "failed_stage": "ingest",
            "exit_status": 1,
            "new_files": ["a.csv", "b.csv"],
            "stages": {"detect": 0.01, "ingest": 2},
        },
        {"start": "2024-05-01T11:00:00+00:00", "decision": "drift, redeployed", "deployed_version": "v0002"},
        {"start": "2024-05-01T12:00:00+00:00"},
    )
    rows = tick_rows(ticks)
    assert [row["decision"] for row in rows] == [
        "in progress",
        "drift, redeployed (in progress)",
        "failed [ingest: disk full]",
        "no new data",
    ]
    failed = rows[2]
    assert failed["start"] == "2024-05-01 10:00:00" and failed["new_files"] == 2 and failed["exit_status"] == 1
    assert failed["stages"] == {"detect": 0.01, "ingest": 2.0} and failed["seconds"] == "-"
    assert rows[1]["version"] == "v0002" and rows[3]["version"] == "-" and rows[3]["seconds"] == "0.12"
    assert [row["start"] for row in tick_rows(ticks, last=2)] == ["2024-05-01 12:00:00", "2024-05-01 11:00:00"]


def test_a_file_rejected_again_and_again_is_one_row_naming_every_sighting():
    ticks = records(
        {"start": "2024-05-01T09:00:00+00:00", "rejected_files": {"odd.csv": "missing column(s): exited"}},
        {"start": "2024-05-01T10:00:00+00:00", "rejected_files": {"odd.csv": "missing column(s): exited"}},
        {"start": "2024-05-01T11:00:00+00:00"},
    )
    rows = rejected_file_rows(ticks, "v0002", {"empty.csv": "no rows", "odd.csv": "missing column(s): exited"})
    assert rows == [
        ("empty.csv", "no rows", ["v0002 ingestion"]),
        (
            "odd.csv",
            "missing column(s): exited",
            ["v0002 ingestion", "tick 2024-05-01 10:00:00", "tick 2024-05-01 09:00:00"],
        ),
    ]
    assert rejected_file_rows(ticks, None, {}, last=1) == []


def test_numbers_and_times_for_people():
    assert [number(v) for v in (None, 0, 0.5, 1.5e-7, 2e6, "n/a")] == [
        "-",
        "0.0000",
        "0.5000",
        "1.500e-07",
        "2.000e+06",
        "n/a",
    ]
    assert seconds(1.234) == "1.23" and seconds(None) == "-"
    assert display_time("2024-05-01T10:00:00.5+00:00") == "2024-05-01 10:00:00" and display_time(None) == "?"


def test_the_history_reads_oldest_first_and_skips_torn_lines(tmp_path):
    project = Project(tmp_path)
    project.write_config()
    config = project.config()
    assert read_history(config) == []
    config.log_folder.mkdir(parents=True, exist_ok=True)
    (config.log_folder / "history.jsonl").write_text('{"decision": "no drift"}\n{"decis\n{"decision": "no new data"}\n')
    assert [record.decision_words for record in read_history(config)] == ["no drift", "no new data"]
