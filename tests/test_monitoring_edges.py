"""Edges of the monitoring found by trying to break it: ids as exports write them, ties of file times,
trigger tests that cannot judge, a handful of rows, odd config values and text no file holds."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Project
from sklearn.metrics import f1_score

from drs.config import load_config
from drs.drift_registry import INSUFFICIENT, DriftInputs, DriftSettingsError, validate_settings
from drs.ingest import merge_multiple_dataframe, read_final_data
from drs.latest_rows import file_ranks
from drs.performance_estimation import run_estimated
from drs.production import model_config_of
from drs.tick_stages import unjudged_triggers
from drs.train import feature_matrix, fit_calibration, fit_model
from generate_data import generate

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited"


def write(path, lines: list[str], mtime: float | None = None) -> None:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_ids_are_trimmed_and_a_blank_or_missing_spelling_is_no_id(project):
    folder = project.path("practicedata")
    write(folder / "a.csv", ["late1,1,2,3,", "late2,4,5,6,"], mtime=1_000_000)
    write(folder / "b.csv", [" late1 ,1,2,3,1", "late2\u00a0,4,5,6,0"], mtime=2_000_000)
    write(folder / "c.csv", [f"{blank},{n},{n},{n},1" for n, blank in enumerate([" ", "NA", "null", "N/A", "-"] * 4)])
    result = merge_multiple_dataframe(project.config())
    late = result.data[result.data["corporation"].isin(["late1", "late2"])]
    assert sorted(late["corporation"]) == ["late1", "late2"] and late["exited"].tolist() == [1, 0]
    assert result.new_labels == {"b.csv": 2}
    assert result.data["corporation"].isna().sum() == 20  # twenty rows without an id, each kept
    assert len(read_final_data(project.config())) == len(result.data)


def test_a_copy_that_kept_its_sources_mtime_is_newer_by_when_it_came():
    same = 1_700_000_000_000_000_000
    ranks = file_ranks(
        {
            "customers1.csv": {"mtime_ns": same, "ctime_ns": same},
            "a_fix.csv": {"mtime_ns": same, "ctime_ns": same + 5},  # cp -p: the mtime of its source
        }
    )
    assert ranks == {"customers1.csv": 0, "a_fix.csv": 1}
    assert file_ranks({"b.csv": {"mtime_ns": 1}, "a.csv": {"mtime_ns": 1}}) == {"a.csv": 0, "b.csv": 1}


def test_a_nested_trigger_list_is_a_config_error_in_one_line(project):
    with pytest.raises(DriftSettingsError, match="drift.trigger_tests must be a non-empty list"):
        validate_settings({"trigger_tests": [["raw"]]})
    project.write_config(drift={"trigger_tests": [{"a": 1}]})
    result = project.run("fullprocess.py")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "drift.trigger_tests must be a non-empty list" in result.stderr


def test_a_verdict_no_trigger_test_could_reach_says_so():
    verdict = {
        "drift": False,
        "trigger": {"tests": ["estimated"], "fired": []},
        "tests": {"estimated": {"verdict": INSUFFICIENT, "detail": "no calibrator"}, "ks": {"verdict": "drift"}},
    }
    words = unjudged_triggers(verdict)
    assert words is not None and words.startswith("no trigger test could judge the new rows (estimated: no calibrator)")
    verdict["trigger"]["tests"] = ["estimated", "ks"]
    assert unjudged_triggers(verdict) is None  # one trigger test judged


def test_a_tick_whose_trigger_cannot_run_records_a_warning(project):
    settings = {"estimator": "sklearn.svm.LinearSVC", "training": {}, "drift": {"trigger_tests": ["prediction"]}}
    project.write_config(**settings)
    project.write_config("config_production.json", input_folder_path="sourcedata", **settings)
    assert project.run("fullprocess.py").returncode == 0
    result = project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    line = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert line["decision"] == "no drift"
    assert line["warning"].startswith("no trigger test could judge the new rows (prediction: ")


def test_a_handful_of_new_rows_is_estimated_but_not_judged(tmp_path):
    config = load_config(Project(tmp_path).write_config())
    data = generate(700, "practice", seed=1)
    model, calibration = fit_model(data, config), fit_calibration(data, config)
    one = generate(1, "practice", seed=3)
    inputs = DriftInputs(None, 0.7, [], None, one, config.schema, model, calibration.calibrator, calibration.record)
    result = run_estimated(inputs, {"estimated_margin": 0.05, "min_samples": 30})
    assert result["verdict"] == INSUFFICIENT and "fewer than min_samples 30" in result["detail"]
    assert result["statistic"] is not None  # recorded all the same
    many = generate(300, "practice", seed=4)
    realized = f1_score(many["exited"], model.predict(feature_matrix(many)))
    inputs = DriftInputs(
        realized, 0.7, [], None, many, config.schema, model, calibration.calibrator, calibration.record
    )
    assert run_estimated(inputs, {"estimated_margin": 0.05, "min_samples": 30})["verdict"] != INSUFFICIENT


def test_a_change_of_category_normalisation_is_a_change_of_the_model(project):
    assert "normalize_categories" not in model_config_of(project.config())
    project.write_config(normalize_categories="casefold")
    assert model_config_of(project.config())["normalize_categories"] == "casefold"


def test_text_no_file_can_hold_is_a_400(api_client):
    body = '{"records": [{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": "\\ud800"}]}'
    response = api_client.post("/prediction", data=body, content_type="application/json")
    assert response.status_code == 400
    response = api_client.post("/prediction", data='{"filepath": "\\ud800.csv"}', content_type="application/json")
    assert response.status_code == 400 and "not valid Unicode" in response.get_json()["error"]


def test_two_rows_of_one_id_in_one_file_are_no_late_label():
    import numpy as np
    import pandas as pd

    from drs.config import COURSE_SCHEMA
    from drs.latest_rows import latest_per_id

    data = pd.DataFrame(
        {
            "corporation": ["a", "a", "b"],
            "lastmonth_activity": [1, 2, 3],
            "lastyear_activity": [1, 2, 3],
            "number_of_employees": [1, 2, 3],
            "exited": [None, 1, 0],
        }
    )
    files = np.array(["one.csv"] * 3, dtype=object)
    latest = latest_per_id(data, files, {"one.csv": 0}, COURSE_SCHEMA)
    assert latest.data["exited"].tolist() == [1, 0] and latest.replaced == 1 and latest.new_labels == {}


def test_library_warnings_go_to_the_log_once_not_raw_to_stderr(project):
    # A feature no row fills: scikit-learn's imputer warns on every fit and transform of the tick.
    for path in project.path("practicedata").glob("*.csv"):
        lines = path.read_text().splitlines()
        rows = [line.split(",") for line in lines[1:]]
        path.write_text("\n".join([lines[0], *(",".join([r[0], "", *r[2:]]) for r in rows)]) + "\n")
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    imputer = [line for line in result.stdout.splitlines() if "Skipping features without any observed values" in line]
    assert 1 <= len(imputer) <= 3, imputer  # the fit's own record, and each place it was raised: once
