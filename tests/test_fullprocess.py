"""The cron tick: bootstrap, no new data, no drift, drift, locking, failures, history."""

import fcntl
import json
import subprocess
from pathlib import Path

from conftest import PYTHON, ROOT

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


def history(project):
    path = project.path("logs", "history.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def deployed_version(project):
    return json.loads(project.path("production_deployment", "manifest.json").read_text())["version"]


def test_bootstrap_runs_every_stage_from_another_directory(project):
    # As cron would: a new interpreter, far from the project.
    result = project.run("fullprocess.py", cwd=Path("/"), real=True)
    assert result.returncode == 0, result.stderr
    for path in [
        ("production_deployment", "trainedmodel.pkl"),
        ("production_deployment", "latestscore.txt"),
        ("production_deployment", "ingestedfiles.txt"),
        ("models", "confusionmatrix.png"),
        ("ingesteddata", "finaldata.csv"),
        ("models", "diagnostics.json"),
        ("logs", "fullprocess.log"),
    ]:
        assert project.path(*path).exists(), path
    record = history(project)[-1]
    assert record["decision"] == "bootstrap" and record["exit_status"] == 0 and record["deployed_version"] == "v0001"
    assert set(record["stages"]) >= {"ingest", "train", "score", "deploy", "report"}
    log_text = project.path("logs", "fullprocess.log").read_text()
    assert "bootstrapping" in log_text and "deployed v0001" in log_text


def test_no_new_data_is_fast_exit_0_and_imports_no_heavy_library(deployed):
    result = deployed.run("fullprocess.py", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    assert "no new data" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"pandas", "sklearn", "matplotlib", "numpy", "scipy", "pyarrow"}, imported & {
        "pandas",
        "sklearn",
        "matplotlib",
    }
    assert history(deployed)[-1]["decision"] == "no new data"


def test_no_drift_decision_with_the_raw_test(deployed):
    """Data on which the deployed model beats its test F1: no drift, production unchanged, not re-checked."""
    import pickle

    with open(deployed.path("production_deployment", "trainedmodel.pkl"), "rb") as handle:
        model = pickle.load(handle)
    from generate_data import generate

    candidates = generate(2000, "practice", seed=7)
    features = candidates[["lastmonth_activity", "lastyear_activity", "number_of_employees"]].to_numpy(dtype=float)
    easy = candidates[model.predict(features) == candidates["exited"].to_numpy()]  # rows the model gets right
    easy.head(300).to_csv(deployed.path("practicedata", "dataset3.csv"), index=False)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    assert record["decision"] == "no drift"
    assert record["scores"]["new_data_f1"] > record["scores"]["deployed_f1"]
    assert record["drift"]["tests"]["raw"]["verdict"] == "no drift"
    assert deployed_version(deployed) == "v0001"
    assert "drift: no" in result.stdout
    again = deployed.run("fullprocess.py")
    assert "no new data" in again.stdout


def test_drifted_data_retrains_and_redeploys(deployed):
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    assert record["decision"] == "drift, redeployed"
    assert record["new_files"] == ["dataset3.csv", "dataset4.csv"]
    assert record["scores"]["new_data_f1"] < record["scores"]["deployed_f1"]
    assert record["drift"]["drift"] is True and record["drift"]["trigger"]["fired"] == ["raw"]
    assert deployed_version(deployed) == "v0002"
    manifest = json.loads(deployed.path("production_deployment", "manifest.json").read_text())
    assert set(manifest["training_files"]) == {"dataset3.csv", "dataset4.csv"}
    for line in ("new data: dataset3.csv, dataset4.csv", "drift: yes", "deployed v0002"):
        assert line in result.stdout
    again = deployed.run("fullprocess.py", config="config_production.json")
    assert again.returncode == 0 and "no new data" in again.stdout


def test_a_changed_file_under_an_old_name_counts_as_new(deployed):
    path = deployed.path("practicedata", "dataset1.csv")
    path.write_text(path.read_text() + "zzzz,1,1,1,1\n")
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    assert history(deployed)[-1]["new_files"] == ["dataset1.csv"]


def test_a_rejected_new_file_is_recorded_with_its_reason(deployed):
    deployed.path("practicedata", "broken.csv").write_text("nothing,useful\n1,2\n")
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    assert "missing column" in record["rejected_files"]["broken.csv"]
    assert record["decision"] == "no usable new data" and "drift" not in record
    assert "rejected broken.csv: missing column" in result.stdout
    again = deployed.run("fullprocess.py")
    assert "no new data" in again.stdout  # not re-ingested every tick


def test_a_tick_that_finds_the_lock_taken_exits_0_and_is_recorded(deployed):
    lock_path = deployed.path("production_deployment", "fullprocess.lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = deployed.run("fullprocess.py")
    assert result.returncode == 0
    assert "another run in progress" in result.stdout
    assert history(deployed)[-1]["decision"] == "skipped: another run in progress"


def test_a_lock_left_by_a_killed_run_does_not_block(deployed):
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            (
                "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
                "print('held', flush=True); time.sleep(60)"
            ),
            str(deployed.path("production_deployment", "fullprocess.lock")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0 and "no new data" in result.stdout


def test_three_overlapping_ticks_deploy_once(deployed):
    command = [PYTHON, str(ROOT / "fullprocess.py"), "--config", str(deployed.path("config_production.json"))]
    ticks = [
        subprocess.Popen(command, cwd=deployed.elsewhere, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [tick.communicate(timeout=120) for tick in ticks]
    assert [tick.returncode for tick in ticks] == [0, 0, 0], outputs
    decisions = sorted(r["decision"] for r in history(deployed)[1:])
    assert decisions.count("drift, redeployed") == 1
    assert all(d in ("drift, redeployed", "skipped: another run in progress", "no new data") for d in decisions)
    assert deployed_version(deployed) == "v0002"


def test_a_failing_stage_leaves_production_untouched_and_the_next_tick_retries(deployed):
    before = deployed.path("production_deployment", "trainedmodel.pkl").read_bytes()
    saved = deployed.path("testdata", "testdata.csv").read_bytes()
    deployed.path("testdata", "testdata.csv").unlink()  # scoring will fail after training
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 1
    assert "test data not found" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    record = history(deployed)[-1]
    assert record["exit_status"] == 1 and record["failed_stage"] == "score" and "test data not found" in record["error"]
    assert deployed.path("production_deployment", "trainedmodel.pkl").read_bytes() == before
    deployed.path("testdata", "testdata.csv").write_bytes(saved)
    retry = deployed.run("fullprocess.py", config="config_production.json")
    assert retry.returncode == 0 and history(deployed)[-1]["decision"] == "drift, redeployed"


def test_promotion_guard_keeps_the_deployed_model(deployed):
    deployed.write_config(
        "config_production.json", input_folder_path="sourcedata", promotion_margin=0.0, api_url="http://127.0.0.1:9"
    )
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    promotion = record["promotion"]
    # the model retrained on sourcedata scores lower on the test data than the practice model
    assert promotion["retrained_test_f1"] < promotion["deployed_test_f1"] and promotion["promoted"] is False
    assert record["decision"] == "drift, retrained, not promoted" and "below the deployed" in promotion["reason"]
    assert deployed_version(deployed) == "v0001"
    again = deployed.run("fullprocess.py", config="config_production.json")
    assert "no new data" in again.stdout


def test_trigger_configuration_all_of_named_tests(deployed):
    deployed.write_config(
        "config_production.json",
        input_folder_path="sourcedata",
        api_url="http://127.0.0.1:9",
        drift={"trigger_tests": ["raw", "parametric"], "trigger_mode": "all"},
    )
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    # parametric has too little history after one deployment: "all" cannot be met
    assert record["drift"]["tests"]["parametric"]["verdict"] == "insufficient data"
    assert record["drift"]["tests"]["ks"]["verdict"] == "drift"  # computed and recorded even if not a trigger
    assert record["decision"] == "no drift"


def test_status_prints_the_last_ticks(deployed):
    deployed.run("fullprocess.py")
    deployed.run("fullprocess.py", config="config_production.json")
    result = deployed.run("fullprocess.py", "--status", "5")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "decision" in lines[0] and len(lines) == 2 + 3
    assert "bootstrap" in lines[2] and "no new data" in lines[3] and "drift, redeployed" in lines[4]
    assert "0.675/" in lines[4]


def test_every_tick_is_one_history_line_with_its_numbers(deployed):
    deployed.run("fullprocess.py", config="config_production.json")
    record = history(deployed)[-1]
    for key in (
        "start",
        "end",
        "seconds",
        "stages",
        "new_files",
        "rejected_files",
        "rows",
        "drift",
        "decision",
        "deployed_version",
        "exit_status",
    ):
        assert key in record, key
    for test in ("raw", "parametric", "nonparametric", "ks", "psi"):
        assert test in record["drift"]["tests"]
        assert "verdict" in record["drift"]["tests"][test]
    assert record["rows"] == {"read": 800, "unique": 800}


def test_a_rollback_is_not_undone_by_the_next_tick(deployed):
    assert deployed.run("fullprocess.py", config="config_production.json").returncode == 0
    assert deployed_version(deployed) == "v0002"
    assert deployed.run("deployment.py", "--rollback", config="config_production.json").returncode == 0
    assert deployed_version(deployed) == "v0001"
    tick = deployed.run("fullprocess.py", config="config_production.json")
    assert tick.returncode == 0 and "no new data" in tick.stdout
    assert deployed_version(deployed) == "v0001"
    # data that arrives after the rollback is new again
    path = deployed.path("sourcedata", "dataset3.csv")
    path.write_text(path.read_text() + "zzzz,1,1,1,1\n")
    tick = deployed.run("fullprocess.py", config="config_production.json")
    assert history(deployed)[-1]["new_files"] == ["dataset3.csv"]


def test_a_tampered_deployed_model_fails_the_tick_with_a_hint(deployed):
    model = deployed.path("production_deployment", "versions", "v0001", "trainedmodel.pkl")
    model.write_bytes(model.read_bytes() + b"x")
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "integrity check" in result.stderr and "--rollback" in result.stderr
    assert history(deployed)[-1]["failed_stage"] == "drift"
