"""Comparison run on the original course datasets (kept outside the project, beside it)."""

import json
import shutil

import pytest
from conftest import COURSE_DATA, Project

pytestmark = pytest.mark.skipif(not COURSE_DATA.is_dir(), reason="course datasets not found beside the project")


@pytest.fixture
def course_project(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(COURSE_DATA, root)
    project = Project(root)
    project.write_config()
    project.write_config("config_production.json", input_folder_path="sourcedata")
    return project


def test_course_results_and_drift_decision(course_project):
    project = course_project
    assert project.run("fullprocess.py").returncode == 0
    assert round(float(project.path("production_deployment", "latestscore.txt").read_text()), 4) == 0.5714

    tick = project.run("fullprocess.py", config="config_production.json")
    assert tick.returncode == 0, tick.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    # The course's raw test: the practice model scores 0.6923 on the new data, not below its 0.5714.
    assert round(record["scores"]["new_data_f1"], 4) == 0.6923
    assert record["decision"] == "no drift"
    # Too few rows for the statistical data-drift tests to give a verdict.
    assert record["drift"]["tests"]["ks"]["verdict"] == "insufficient data"

    # Trained on sourcedata, the model scores the course's published 0.3333.
    for script in ("training.py", "scoring.py"):
        assert project.run(script, config="config_production.json").returncode == 0
    assert round(float(project.path("models", "latestscore.txt").read_text()), 4) == 0.3333
