"""Diagnostics and the confusion-matrix report."""

import json
import time

import pandas as pd
import pytest
from conftest import free_port

from drs.config import FEATURE_COLUMNS
from drs.diagnostics import dataframe_summary, execution_time, missing_data, model_predictions, outdated_packages_list


def test_predictions_are_ints_from_the_deployed_model(deployed):
    config = deployed.config()
    predictions = model_predictions(config=config)
    assert len(predictions) == 400 and set(predictions) <= {0, 1} and all(type(p) is int for p in predictions)
    subset = pd.read_csv(deployed.path("testdata", "testdata.csv")).head(7)
    assert model_predictions(subset, config=config) == predictions[:7]


def test_summary_and_missing_data_match_the_ingested_file(deployed):
    config = deployed.config("config_production.json")
    deployed.run("ingestion.py", config="config_production.json")  # sourcedata has gaps
    final = pd.read_csv(deployed.path("ingesteddata", "finaldata.csv"))
    summary = dataframe_summary(config)
    assert set(summary) == set(FEATURE_COLUMNS)
    for column in FEATURE_COLUMNS:
        assert set(summary[column]) == {"mean", "median", "std"}
        assert summary[column]["mean"] == pytest.approx(final[column].mean(), rel=1e-6)
        assert summary[column]["median"] == pytest.approx(final[column].median())
        assert summary[column]["std"] == pytest.approx(final[column].std(), rel=1e-6)
    missing = missing_data(config)
    assert set(missing) == set(final.columns)
    for column in final.columns:
        assert missing[column] == pytest.approx(final[column].isna().mean() * 100, abs=1e-3)
    assert 0 < missing["number_of_employees"] < 5 and missing["corporation"] == 0


def test_execution_time_is_what_the_last_tick_recorded_and_changes_nothing(deployed):
    watched = [
        deployed.path("ingesteddata", "finaldata.csv"),
        deployed.path("ingesteddata", "ingestedfiles.txt"),
        deployed.path("models", "trainedmodel.pkl"),
        deployed.path("production_deployment", "trainedmodel.pkl"),
    ]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched}
    bootstrap = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    timings = execution_time(deployed.config())
    assert timings == {
        "ingestion_seconds": bootstrap["stages"]["ingest"],
        "training_seconds": bootstrap["stages"]["train"],
    }
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched} == before


def test_execution_time_before_any_tick_measures_off_to_the_side(project):
    timings = execution_time(project.config())
    assert set(timings) == {"ingestion_seconds", "training_seconds"} and all(v > 0 for v in timings.values())
    assert not project.path("ingesteddata").exists() and not project.path("models").exists()


def test_outdated_packages_offline_answers_fast_with_unknown(monkeypatch):
    monkeypatch.setenv("DRS_PYPI_URL", f"http://127.0.0.1:{free_port()}/pypi/{{package}}/json")
    started = time.perf_counter()
    rows = outdated_packages_list()
    elapsed = time.perf_counter() - started
    names = [row["package"] for row in rows]
    assert {"pandas", "scikit-learn", "flask", "requests", "matplotlib", "reportlab"} <= set(names)
    assert all(row["latest"] == "unknown" and row["outdated"] is False for row in rows)
    pandas_row = rows[names.index("pandas")]
    assert pandas_row["installed"] == pd.__version__
    assert elapsed < 10  # a sanity bound on a dead index, not a performance target


def test_diagnostics_script_writes_its_report(deployed):
    result = deployed.run("diagnostics.py", env={"DRS_PYPI_URL": f"http://127.0.0.1:{free_port()}/{{package}}"})
    assert result.returncode == 0, result.stderr
    report = json.loads(deployed.path("models", "diagnostics.json").read_text())
    assert set(report) == {
        "version",
        "predictions",
        "summary_statistics",
        "execution_time",
        "missing_data",
        "outdated_packages",
    }
    assert report["version"] == "v0001"


def test_diagnostics_without_a_deployed_model_is_a_one_line_error(project):
    project.run("ingestion.py")
    result = project.run("diagnostics.py")
    assert result.returncode == 1 and "no model deployed" in result.stderr and "Traceback" not in result.stderr


def test_confusion_matrix_png(deployed):
    path = deployed.path("models", "confusionmatrix.png")
    path.unlink()
    result = deployed.run("reporting.py")
    assert result.returncode == 0, result.stderr
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 400 and height >= 400
