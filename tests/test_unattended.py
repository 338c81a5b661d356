"""Left alone for months: drift on the new rows, one lock for every writer, rollbacks that hold,
damaged production, torn records, kills after the switch, foreign model files, start-up errors."""

import json
import os
import subprocess
import sys

import pytest
from conftest import PYTHON, ROOT

from generate_data import generate

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


def history(project):
    path = project.path("logs", "history.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def serving(project):
    return os.readlink(project.path("production_deployment", "current")).rsplit("/", 1)[-1]


def versions(project):
    return sorted(os.listdir(project.path("production_deployment", "versions")))


def production_tick(project, **env):
    result = project.run("fullprocess.py", config="config_production.json", env=env or None)
    assert result.returncode == 0, result.stderr
    return history(project)[-1]


@pytest.fixture
def retrained(deployed):
    """v0001 trained on practicedata, then a production tick: v0002 trained on the 800 sourcedata rows."""
    record = production_tick(deployed)
    assert record["decision"] == "drift, redeployed" and serving(deployed) == "v0002"
    return deployed


def write_flipped_file(project, name="dataset5.csv", rows=100, seed=99):
    """Rows like the production data, with every label flipped: the model now gets them wrong."""
    frame = generate(rows, "source", seed=seed)
    frame["exited"] = 1 - frame["exited"]
    frame.to_csv(project.path("sourcedata", name), index=False)
    return frame


# --- 1. drift is judged on the new rows ------------------------------------------------


def test_drift_is_judged_on_the_new_rows_not_the_whole_history(retrained):
    write_flipped_file(retrained)
    record = production_tick(retrained)
    assert record["new_files"] == ["dataset5.csv"]
    # On the 100 new rows the deployed model is far below its test F1 (over all 900 rows it was not).
    assert record["scores"]["new_data_f1"] < 0.3 < record["scores"]["deployed_f1"]
    assert record["drift"]["tests"]["raw"]["verdict"] == "drift"
    assert record["decision"] == "drift, redeployed" and serving(retrained) == "v0003"
    assert record["new_rows"] == 100
    # Retraining still uses all ingested data.
    assert record["rows"]["unique"] == 900


def test_rows_already_trained_on_are_not_new(retrained):
    # A new file that repeats 50 rows the deployed model was trained on, plus 40 unseen ones.
    import pandas as pd

    known = pd.read_csv(retrained.path("sourcedata", "dataset3.csv")).head(50)
    unseen = generate(40, "source", seed=123)
    pd.concat([known, unseen]).to_csv(retrained.path("sourcedata", "dataset6.csv"), index=False)
    record = production_tick(retrained)
    assert record["new_rows"] == 40
    assert record["drift"]["tests"]["ks"]["features"]["lastmonth_activity"]["samples"][1] == 40

    # Nothing but repeats: no new rows, nothing retrained, and not looked at again.
    known.to_csv(retrained.path("sourcedata", "dataset7.csv"), index=False)
    record = production_tick(retrained)
    assert record["new_rows"] == 0 and record["decision"] == "no new rows" and "drift" not in record
    assert production_tick(retrained)["decision"] == "no new data"


# --- 3. one lock for every writer --------------------------------------------------------


@pytest.fixture
def held_lock(deployed):
    """The tick's lock held by another process, as a running tick holds it."""
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            (
                "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
                "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242 2026-01-02T03:04:05+0000\\n'); "
                "print('held', flush=True); time.sleep(120)"
            ),
            str(deployed.path("production_deployment", "fullprocess.lock")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    yield holder
    holder.kill()
    holder.wait()


@pytest.mark.parametrize(
    "script,args",
    [
        ("deployment.py", ["--rollback"]),
        ("ingestion.py", []),
        ("training.py", []),
        ("scoring.py", []),
        ("reporting.py", []),
        ("deployment.py", []),
    ],
)
def test_a_hand_run_writer_waits_for_the_tick_then_gives_up_in_one_line(deployed, held_lock, script, args):
    deployed.write_config(lock_wait_seconds=0.5, api_url="http://127.0.0.1:9")
    before = sorted(p.name for p in deployed.path("ingesteddata").iterdir())
    result = deployed.run(script, *args)
    assert result.returncode == 1, result.stderr
    assert "a tick is in progress since 2026-01-02T03:04:05+0000 (pid 4242)" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in deployed.path("ingesteddata").iterdir()) == before


def test_a_hand_run_writer_proceeds_once_the_tick_ends(deployed):
    lock = deployed.path("production_deployment", "fullprocess.lock")
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            (
                "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
                "print('held', flush=True); time.sleep(1.5)"
            ),
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    result = deployed.run("ingestion.py")
    holder.wait()
    assert result.returncode == 0, result.stderr


def test_a_deploy_refuses_when_production_changed_under_it(retrained):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from drs.config import load_config; "
        "from drs.deploy import deploy; deploy(load_config(sys.argv[2]), expected_current='v0001')"
    )
    before = versions(retrained)
    result = subprocess.run(
        [PYTHON, "-c", code, str(ROOT), str(retrained.path("config_production.json"))], capture_output=True, text=True
    )
    assert result.returncode != 0 and "ProductionChanged" in result.stderr and "from v0001 to v0002" in result.stderr
    assert versions(retrained) == before and serving(retrained) == "v0002"


# --- 4. rollback goes back to what served before -----------------------------------------


def test_rollback_follows_the_deployment_log(retrained):
    assert retrained.run("deployment.py", "--rollback", config="config_production.json").returncode == 0
    assert serving(retrained) == "v0001"
    write_flipped_file(retrained)
    assert production_tick(retrained)["decision"] == "drift, redeployed" and serving(retrained) == "v0003"
    result = retrained.run("deployment.py", "--rollback", config="config_production.json")
    assert result.returncode == 0, result.stderr
    assert serving(retrained) == "v0001"  # what served before v0003, not the next-lower number v0002


def test_a_rollback_under_the_practice_config_holds_for_the_production_tick(retrained):
    result = retrained.run("deployment.py", "--rollback", config="config.json")
    assert result.returncode == 0, result.stderr
    assert serving(retrained) == "v0001"
    record = production_tick(retrained)
    assert record["decision"] == "no new data" and serving(retrained) == "v0001"
    assert retrained.run("fullprocess.py").returncode == 0
    assert history(retrained)[-1]["decision"] == "no new data"


# --- 5. damaged production is an error -------------------------------------------------


def _corrupt_manifest(project):
    project.path("production_deployment", "versions", "v0001", "manifest.json").write_text("{not json")


def _delete_current(project):
    project.path("production_deployment", "current").unlink()


def _dangling_current(project):
    link = project.path("production_deployment", "current")
    link.unlink()
    link.symlink_to("versions/v0009")


@pytest.mark.parametrize("damage", [_corrupt_manifest, _delete_current, _dangling_current])
def test_damaged_production_is_an_error_never_a_bootstrap(deployed, damage):
    damage(deployed)
    before = versions(deployed)
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "production damaged" in result.stderr and "deployment.py --rollback" in result.stderr
    assert versions(deployed) == before
    record = history(deployed)[-1]
    assert record["decision"] == "failed (production damaged)" and record["exit_status"] == 1


def test_a_deleted_current_is_repaired_by_rollback(retrained):
    _delete_current(retrained)
    result = retrained.run("deployment.py", "--rollback", config="config_production.json")
    assert result.returncode == 0, result.stderr
    assert serving(retrained) == "v0002"  # the version that was serving, intact
    assert production_tick(retrained)["decision"] == "no new data"


# --- 7. append-only records survive torn writes ------------------------------------------


def test_a_torn_history_line_loses_one_record_never_the_next(tmp_path):
    target = tmp_path / "history.jsonl"
    target.write_text('{"n": 1}\n')
    # A full disk, for real: the file may not grow past a few bytes more, so the write is cut short.
    code = (
        "import pathlib, resource, signal, sys; sys.path.insert(0, sys.argv[1]); from drs import storage; "
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY)); "
        "storage.append_jsonl(pathlib.Path(sys.argv[2]), {'n': 2, 'padding': 'x' * 100})"
    )
    result = subprocess.run(
        [PYTHON, "-c", code, str(ROOT), str(target), str(target.stat().st_size + 20)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "short write" in result.stderr
    assert not target.read_bytes().endswith(b"\n")  # the torn line is there

    sys.path.insert(0, str(ROOT))
    from drs import storage

    storage.append_jsonl(target, {"n": 3})
    assert [r["n"] for r in storage.read_jsonl(target)] == [1, 3]


def test_status_skips_a_torn_line(deployed):
    path = deployed.path("logs", "history.jsonl")
    with open(path, "a") as handle:
        handle.write('{"start": "2026-01-01T00:00:00", "decis')
    assert deployed.run("fullprocess.py").returncode == 0
    result = deployed.run("fullprocess.py", "--status")
    assert result.returncode == 0
    assert result.stdout.count("no new data") == 1 and "bootstrap" in result.stdout
    assert "torn" in result.stderr


# --- 8. a kill after the switch leaves nothing stale --------------------------------------


def test_reports_left_behind_by_a_kill_after_the_switch_are_regenerated(deployed):
    killed = deployed.run("fullprocess.py", config="config_production.json", env={"DRS_FAULT_INJECT": "switched"})
    assert killed.returncode == -9
    assert serving(deployed) == "v0002"
    assert json.loads(deployed.path("models", "reports.json").read_text())["version"] == "v0001"
    leftover = deployed.path("ingesteddata", ".finaldata.csv.abc123.tmp")
    leftover.write_bytes(b"x" * 1000)

    record = production_tick(deployed)
    assert record["decision"] == "no new data" and record["reports_regenerated"] == "v0002"
    assert json.loads(deployed.path("models", "reports.json").read_text())["version"] == "v0002"
    assert json.loads(deployed.path("models", "diagnostics.json").read_text())["version"] == "v0002"
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(deployed.path("models", "report.pdf")).pages)
    assert "Model report: v0002" in text
    assert not leftover.exists()
    assert "reports_regenerated" not in production_tick(deployed)  # once is enough


# --- 9. only a model that training wrote is deployed or unpickled ----------------------------


@pytest.mark.parametrize("script", ["deployment.py", "scoring.py"])
def test_a_foreign_pickle_in_the_model_folder_is_never_loaded_or_deployed(deployed, tmp_path, script):
    marker = tmp_path / "payload-ran"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    deployed.path("models", "trainedmodel.pkl").write_bytes(payload)
    before = versions(deployed)
    result = deployed.run(script)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not the model training.py wrote" in result.stderr
    assert not marker.exists() and versions(deployed) == before


# --- 10. smaller faults ------------------------------------------------------------------


def test_an_unwritable_log_folder_is_one_line(deployed):
    blocker = deployed.path("not-a-folder")
    blocker.write_text("a file where the log folder should be\n")
    deployed.write_config(log_folder_path="not-a-folder", api_url="http://127.0.0.1:9")
    result = deployed.run("fullprocess.py")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "not-a-folder" in result.stderr


def test_a_stage_that_cannot_take_the_lock_in_production_says_so_in_one_line(deployed):
    # A stage run by hand writes nothing to the log folder; the lock it takes sits in production.
    blocker = deployed.path("not-a-folder")
    blocker.write_text("a file where production should be\n")
    deployed.write_config(prod_deployment_path="not-a-folder", api_url="http://127.0.0.1:9")
    for script in ("training.py", "deployment.py"):
        result = deployed.run(script)
        assert result.returncode == 1, (script, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert "not-a-folder" in result.stderr


def test_the_ks_row_compares_a_p_value_with_the_p_value_threshold():
    from drs.history import TickRecord
    from drs.status_views import drift_test_rows

    record = {
        "drift": {
            "trigger": {"tests": ["raw"]},
            "tests": {
                "ks": {
                    "test": "ks",
                    "verdict": "drift",
                    "statistic": 0.45,
                    "pvalue": 1.5e-07,
                    "threshold": 0.01,
                    "detail": "",
                }
            },
        }
    }
    row = drift_test_rows(TickRecord.from_json(record))[0]
    assert row["statistic"].startswith("p 1.500e-07") and "0.4500" in row["statistic"]
    assert row["threshold"] == "p < 0.0100"


def test_the_production_config_ships_with_a_promotion_guard():
    config = json.loads((ROOT / "config_production.json").read_text())
    assert isinstance(config.get("promotion_margin"), (int, float)) and 0 < config["promotion_margin"] < 0.2


def test_a_fall_in_f1_beyond_the_margin_is_a_warning():
    from drs.status_views import score_fall_warning

    log = [
        {"action": "deploy", "version": "v0001", "previous": None, "f1": 0.675},
        {"action": "deploy", "version": "v0002", "previous": "v0001", "f1": 0.378},
    ]
    words = score_fall_warning(log, 0.1)
    assert "fell from 0.6750 (v0001) to 0.3780 (v0002)" in words and "margin 0.1" in words
    assert score_fall_warning(log, 0.5) is None
    assert score_fall_warning(log[:1], 0.1) is None
    assert (
        score_fall_warning(log + [{"action": "rollback", "version": "v0001", "previous": "v0002", "f1": 0.675}], 0.1)
        is None
    )


# --- faults found by trying to break it ---------------------------------------------------


def test_rows_added_to_a_file_the_model_was_trained_on_are_judged_alone(retrained):
    """A cumulative export: the old rows stay, 60 new ones (labels flipped) are appended."""
    flipped = generate(60, "source", seed=77)
    flipped["exited"] = 1 - flipped["exited"]
    flipped.to_csv(retrained.path("sourcedata", "dataset4.csv"), mode="a", header=False, index=False)
    record = production_tick(retrained)
    assert record["new_files"] == ["dataset4.csv"] and record["new_rows"] == 60
    assert record["drift"]["tests"]["raw"]["verdict"] == "drift" and record["decision"] == "drift, redeployed"


def test_pruning_keeps_the_version_a_rollback_would_go_back_to(retrained):
    retrained.write_config(
        "config_production.json", input_folder_path="sourcedata", keep_versions=2, api_url="http://127.0.0.1:9"
    )
    assert retrained.run("deployment.py", "--rollback", config="config_production.json").returncode == 0
    write_flipped_file(retrained)
    assert production_tick(retrained)["decision"] == "drift, redeployed"
    assert versions(retrained) == ["v0001", "v0003"]  # v0002 was rolled away from: it goes first
    assert retrained.run("deployment.py", "--rollback", config="config_production.json").returncode == 0
    assert serving(retrained) == "v0001"


def test_a_first_deployment_killed_before_its_switch_is_bootstrapped_again(project):
    killed = project.run("fullprocess.py", env={"DRS_FAULT_INJECT": "version-published"})
    assert killed.returncode == -9
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    assert history(project)[-1]["decision"] == "bootstrap" and serving(project) == "v0002"


def test_a_model_is_deployed_only_with_its_own_score_and_ingested_data(deployed):
    assert deployed.run("training.py", config="config_production.json").returncode == 0  # not scored
    result = deployed.run("deployment.py", config="config_production.json")
    assert result.returncode == 1 and "run scoring.py first" in result.stderr
    assert deployed.run("scoring.py", config="config_production.json").returncode == 0
    assert deployed.run("ingestion.py", config="config_production.json").returncode == 0  # data moved on
    result = deployed.run("deployment.py", config="config_production.json")
    assert result.returncode == 1 and "changed since the model was trained" in result.stderr
    assert versions(deployed) == ["v0001"]


def test_a_failure_after_the_switch_records_the_version_now_serving(deployed):
    deployed.path("models", "report.pdf").unlink()
    deployed.path("models", "report.pdf").mkdir()  # the report cannot be written
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    record = history(deployed)[-1]
    assert record["failed_stage"] == "report" and record["deployed_version"] == "v0002"
    assert record["decision"] == "failed after deploying v0002" and serving(deployed) == "v0002"
    assert "production serves v0002, deployed by this tick" in result.stdout
    deployed.path("models", "report.pdf").rmdir()
    record = production_tick(deployed)  # the next tick catches the reports up
    assert record["reports_regenerated"] == "v0002"
