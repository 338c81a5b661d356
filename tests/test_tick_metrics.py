"""The tick's node_exporter textfile: written by every real tick, read back with prometheus_client's own parser."""

from __future__ import annotations

import datetime
import fcntl
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

TEXTFILE = ("textfile", "drs.prom")


def samples(project) -> dict:
    """{(metric name, ((label, value), ...)): value} of the project's textfile, parsed as Prometheus does."""
    text = project.path(*TEXTFILE).read_text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def names(values: dict) -> set[str]:
    return {name for name, _ in values}


def last_record(project) -> dict:
    return json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])


def timestamp(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def with_textfile(project, name="config.json", **overrides):
    values = {"input_folder_path": "sourcedata"} if name == "config_production.json" else {}
    return project.write_config(name, metrics_textfile="/".join(TEXTFILE), **{**values, **overrides})


def test_the_textfile_after_a_bootstrap_and_a_quiet_tick(project):
    with_textfile(project)
    assert project.run("fullprocess.py").returncode == 0
    record = last_record(project)
    manifest = json.loads(project.path("production_deployment", "manifest.json").read_text())
    values = samples(project)
    assert values == {
        ("drs_tick_last_timestamp_seconds", ()): pytest.approx(timestamp(record["end"]), abs=0.001),
        ("drs_tick_duration_seconds", ()): record["seconds"],
        ("drs_tick_exit_status", ()): 0,
        ("drs_tick_new_files", ()): 2,
        ("drs_tick_decision_info", (("decision", "bootstrap"),)): 1,
        ("drs_tick_alerts_undelivered", ()): 0,
        ("drs_tick_deployed_info", (("version", "v0001"),)): 1,
        ("drs_tick_deployed_f1", ()): manifest["scores"]["f1"],
    }
    textfile = project.path(*TEXTFILE)
    assert textfile.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user
    assert [p.name for p in textfile.parent.iterdir()] == ["drs.prom"]  # no temp file left behind

    assert project.run("fullprocess.py").returncode == 0
    record = last_record(project)
    values = samples(project)
    assert values[("drs_tick_decision_info", (("decision", "no new data"),))] == 1
    assert values[("drs_tick_new_files", ())] == 0 and values[("drs_tick_exit_status", ())] == 0
    assert values[("drs_tick_last_timestamp_seconds", ())] == pytest.approx(timestamp(record["end"]), abs=0.001)
    assert values[("drs_tick_deployed_info", (("version", "v0001"),))] == 1
    assert not any(name.startswith("drs_drift_") for name in names(values))  # no drift test ran


def test_the_textfile_of_a_drift_tick_holds_each_tests_figures(deployed):
    with_textfile(deployed, "config_production.json")
    assert deployed.run("fullprocess.py", config="config_production.json").returncode == 0
    record = last_record(deployed)
    tests = record["drift"]["tests"]
    values = samples(deployed)
    assert values[("drs_drift_triggered", ())] == 1
    assert values[("drs_tick_decision_info", (("decision", "drift, redeployed"),))] == 1
    for name, test in tests.items():
        assert values[("drs_drift_detected", (("test", name),))] == (test["verdict"] == "drift"), name
        if test.get("statistic") is not None:
            assert values[("drs_drift_test_statistic", (("test", name),))] == pytest.approx(test["statistic"])
    assert values[("drs_drift_test_statistic", (("test", "raw"),))] == pytest.approx(
        record["scores"]["new_data_f1"], abs=1e-6
    )
    assert values[("drs_drift_test_pvalue", (("test", "ks"),))] == pytest.approx(tests["ks"]["pvalue"])
    for feature, figures in tests["ks"]["features"].items():
        assert values[("drs_drift_feature_pvalue", (("feature", feature), ("test", "ks")))] == pytest.approx(
            figures["pvalue"]
        )
        assert values[("drs_drift_feature_statistic", (("feature", feature), ("test", "psi")))] == pytest.approx(
            tests["psi"]["features"][feature]["statistic"]
        )
    assert values[("drs_tick_deployed_info", (("version", "v0002"),))] == 1
    assert values[("drs_tick_deployed_f1", ())] == pytest.approx(record["scores"]["retrained_test_f1"])


def test_failed_skipped_and_config_error_ticks_write_their_exit_status(deployed):
    with_textfile(deployed)
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))
    assert deployed.run("fullprocess.py").returncode == 1
    values = samples(deployed)
    assert values[("drs_tick_exit_status", ())] == 1
    assert values[("drs_tick_decision_info", (("decision", "failed"),))] == 1
    assert values[("drs_tick_deployed_info", (("version", "v0001"),))] == 1
    deployed.path("practicedata-away").rename(deployed.path("practicedata"))

    with open(deployed.path("production_deployment", "fullprocess.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert deployed.run("fullprocess.py").returncode == 0
    values = samples(deployed)
    assert values[("drs_tick_decision_info", (("decision", "skipped: another run in progress"),))] == 1
    assert values[("drs_tick_exit_status", ())] == 0

    with_textfile(deployed, training={"C": -1})  # loads, but the tick checks the training settings: no
    deployed.path("practicedata", "dataset3.csv").write_text(
        deployed.path("practicedata", "dataset1.csv").read_text() + "zzzz,1,1,1,1\n"
    )
    assert deployed.run("fullprocess.py").returncode == 2
    assert samples(deployed)[("drs_tick_exit_status", ())] == 2

    with_textfile(deployed, schema={"bogus": 1})  # does not load at all: the textfile still says so
    before = samples(deployed)[("drs_tick_last_timestamp_seconds", ())]
    assert deployed.run("fullprocess.py").returncode == 2
    values = samples(deployed)
    assert values[("drs_tick_exit_status", ())] == 2 and values[("drs_tick_last_timestamp_seconds", ())] > before
    assert values[("drs_tick_decision_info", (("decision", "failed (config)"),))] == 1


def test_a_textfile_that_cannot_be_written_never_fails_a_tick(deployed):
    deployed.path(*TEXTFILE).mkdir(parents=True)  # a folder where the file should be
    with_textfile(deployed)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0 and "no new data" in result.stdout
    record = last_record(deployed)
    assert record["exit_status"] == 0 and "drs.prom" in record["metrics_textfile_error"]
    assert "cannot write the metrics textfile" in deployed.path("logs", "fullprocess.log").read_text()
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))
    assert deployed.run("fullprocess.py").returncode == 1  # a failing tick keeps its own status
