"""Two reasons a tick does (or does not) retrain: drift in new rows that have no labels waits for them
instead of refitting the same labelled rows, and a changed estimator or training parameters in the
config retrain and redeploy under the promotion guard, new data or not, never twice for a config the
guard refused. In-process checks of the comparison, the store's memory and the words first, then
real ticks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from webhook_receiver import Receiver

from drs.alerts.messages import drift_text
from drs.history import Decision, TickRecord
from drs.production import LocalProductionStore, model_config_record, same_model_config
from drs.status_views import drift_verdict_words
from generate_data import generate

LOGISTIC = "sklearn.linear_model.LogisticRegression"
# The majority class for everyone: F1 0 on the test data, which any promotion guard refuses.
REFUSED = {"estimator": "sklearn.dummy.DummyClassifier", "training": {"strategy": "most_frequent"}}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def history(project) -> list[dict]:
    return [json.loads(line) for line in project.path("logs", "history.jsonl").read_text().splitlines()]


def serving(project) -> str:
    return json.loads(project.path("production_deployment", "manifest.json").read_text())["version"]


def checked(project) -> dict:
    return json.loads(project.path("production_deployment", "checkedfiles.json").read_text())


def tick(project, **env) -> dict:
    result = project.run("fullprocess.py", env=env or None)
    assert result.returncode == 0, result.stderr
    return history(project)[-1]


# --- in process -------------------------------------------------------------------


def test_equal_configs_compare_equal_however_written_and_unknown_is_no_change():
    recorded = model_config_record(LOGISTIC, {"C": 1.0, "solver": "liblinear", "class_weight": {"Yes": 3}})
    assert same_model_config(
        recorded, model_config_record(LOGISTIC, {"class_weight": {"Yes": 3.0}, "solver": "liblinear", "C": 1})
    )
    assert not same_model_config(
        recorded, model_config_record(LOGISTIC, {"C": 0.5, "solver": "liblinear", "class_weight": {"Yes": 3}})
    )
    assert not same_model_config(recorded, {**recorded, "estimator": "sklearn.svm.SVC"})
    assert not same_model_config(
        model_config_record(LOGISTIC, {"fit_intercept": True}), model_config_record(LOGISTIC, {"fit_intercept": 1})
    )
    assert same_model_config(None, recorded)  # a version from before model_config was recorded


def test_the_store_holds_a_config_for_its_version_beside_the_checked_files(tmp_path):
    store = LocalProductionStore(tmp_path)
    config = model_config_record(LOGISTIC, {"C": 0.5})
    store.remember_checked("v0002", [{"name": "a.csv", "sha256": "aa"}])
    store.hold_model_config("v0002", config)
    store.remember_checked("v0002", [{"name": "b.csv", "sha256": "bb"}])  # keeps the held config
    assert store.held_model_config("v0002") == config
    assert [f["name"] for f in store.checked_files("v0002")] == ["a.csv", "b.csv"]
    assert store.held_model_config("v0003") is None
    store.remember_checked("v0003", [])  # production moved on: what was held for v0002 is gone
    assert store.held_model_config("v0003") is None and store.held_model_config("v0002") is None


DRIFT_WITHOUT_LABELS = {
    "decision": "drift, awaiting labels",
    "decision_code": "drift_awaiting_labels",
    "format_version": 1,
    "start": "2024-05-01T10:00:00+00:00",
    "new_rows": 400,
    "deployed_version": "v0001",
    "deployed_version_before": "v0001",
    "scores": {"deployed_f1": 0.675, "new_data_f1": None},
    "drift": {
        "drift": True,
        "trigger": {"tests": ["ks"], "mode": "any", "fired": ["ks"]},
        "tests": {
            "raw": {"test": "raw", "verdict": "insufficient data"},
            "ks": {"test": "ks", "statistic": 0.4, "pvalue": 3.2e-05, "threshold": 0.01, "verdict": "drift"},
        },
    },
}


def test_drift_without_labels_is_worded_as_waiting_for_them():
    text = drift_text(DRIFT_WITHOUT_LABELS)
    assert text.startswith("Drift: ks p-value 3.2e-05 < 0.01. Drift on 400 new row(s): ks p-value 3.2e-05 < 0.01")
    assert text.endswith("None of the new rows has a label: not retraining until labels arrive.")
    assert "Retraining" not in text
    words = drift_verdict_words(TickRecord.from_json(DRIFT_WITHOUT_LABELS))
    assert "none of the new rows has a label: v0001 was kept until labels arrive" in words
    assert "retrained" not in words
    assert TickRecord.from_json(DRIFT_WITHOUT_LABELS).decision is Decision.DRIFT_AWAITING_LABELS


# --- real ticks ---------------------------------------------------------------------


def test_drift_in_new_rows_without_labels_waits_for_them_then_the_labels_retrain(deployed, receiver):
    deployed.write_config(drift={"trigger_tests": ["ks"]}, alerts={"webhook_url": receiver.url})
    shifted = generate(400, "source", seed=31)
    shifted.assign(exited=None).to_csv(deployed.path("practicedata", "dataset3.csv"), index=False)
    assert ",\n" in deployed.path("practicedata", "dataset3.csv").read_text()  # the target cells are empty

    record = tick(deployed)
    assert (record["decision"], record["decision_code"]) == ("drift, awaiting labels", "drift_awaiting_labels")
    assert record["drift"]["trigger"]["fired"] == ["ks"] and record["new_rows"] == 400
    assert record["scores"]["new_data_f1"] is None and record["exit_status"] == 0
    assert serving(deployed) == "v0001" and not deployed.path("production_deployment", "versions", "v0002").exists()
    assert "train" not in record["stages"]
    assert "dataset3.csv" in {f["name"] for f in checked(deployed)["files"]}
    assert receiver.events == ["drift"]
    assert receiver.bodies[0]["text"].endswith("None of the new rows has a label: not retraining until labels arrive.")
    assert record["alerts"][0]["outcome"] == "delivered"
    state = json.loads(deployed.path("logs", "alertstate.json").read_text())
    assert [key for key in state["events"] if "not retraining until labels arrive" in key]  # its own cooldown

    again = tick(deployed)
    assert again["decision"] == "no new data" and receiver.events == ["drift"]

    # The labels arrive in a later file, beside a few more rows still without one.
    later = generate(50, "source", seed=32).assign(exited=None)
    pd.concat([shifted, later]).to_csv(deployed.path("practicedata", "dataset4.csv"), index=False)
    record = tick(deployed)
    assert record["new_files"] == ["dataset4.csv"] and record["new_rows"] == 450
    assert record["decision"] == "drift, redeployed" and serving(deployed) == "v0002"
    assert record["scores"]["new_data_f1"] is not None  # judged on the labelled rows
    assert receiver.events == ["drift", "drift", "deployed"]
    assert receiver.bodies[1]["text"].endswith("Retraining.")


def test_a_changed_training_parameter_redeploys_on_a_tick_without_new_data(deployed):
    manifest = json.loads(deployed.path("production_deployment", "manifest.json").read_text())
    assert manifest["model_config"]["estimator"] == LOGISTIC and manifest["model_config"]["training"]["C"] == 1.0

    # The same parameters written otherwise (an int for a float, other key order): nothing to do.
    deployed.write_config(training={"solver": "liblinear", "C": 1})
    assert tick(deployed)["decision"] == "no new data"

    deployed.write_config(training={"C": 0.5})
    record = tick(deployed)
    assert (record["decision"], record["decision_code"]) == ("config changed, redeployed", "config_redeployed")
    assert record["new_files"] == [] and serving(deployed) == "v0002" and record["deployed_version_before"] == "v0001"
    manifest = json.loads(deployed.path("production_deployment", "manifest.json").read_text())
    assert manifest["model_config"]["training"]["C"] == 0.5 and manifest["note"] == "config changed"
    assert {"ingest", "train", "score", "deploy", "report"} <= set(record["stages"])

    assert tick(deployed)["decision"] == "no new data" and serving(deployed) == "v0002"

    # A rollback to v0001 (trained with C 1) holds: the config it was made under does not undo it.
    assert deployed.run("deployment.py", "--rollback").returncode == 0
    assert serving(deployed) == "v0001"
    assert tick(deployed)["decision"] == "no new data" and serving(deployed) == "v0001"


def test_a_config_the_guard_refuses_is_not_retrained_again_until_it_changes(deployed, receiver):
    alerts = {"webhook_url": receiver.url}
    deployed.write_config(promotion_margin=0.1, alerts=alerts, **REFUSED)
    record = tick(deployed)
    assert (record["decision"], record["decision_code"]) == (
        "config changed, retrained, not promoted",
        "config_not_promoted",
    )
    assert record["promotion"]["promoted"] is False and serving(deployed) == "v0001"
    assert receiver.events == ["not_promoted"]
    assert checked(deployed)["held_model_config"] == model_config_record(REFUSED["estimator"], REFUSED["training"])

    # The next tick does not retrain it, and stays cheap: no heavy library imported.
    result = deployed.run("fullprocess.py", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"pandas", "sklearn", "numpy", "scipy", "pyarrow"}
    record = history(deployed)[-1]
    assert record["decision"] == "no new data" and "train" not in record["stages"]
    assert receiver.events == ["not_promoted"]

    # Another config is tried: a deployable one redeploys.
    deployed.write_config(promotion_margin=0.1, alerts=alerts, training={"C": 0.5})
    record = tick(deployed)
    assert record["decision"] == "config changed, redeployed" and serving(deployed) == "v0002"
    assert receiver.events == ["not_promoted", "deployed"]


def test_a_version_that_records_no_config_is_not_retrained_for_one(deployed):
    """Deployed before model_config was recorded: its parameters are unknown, which is not a change."""
    path = deployed.path("production_deployment", "versions", "v0001", "manifest.json")
    manifest = json.loads(path.read_text())
    del manifest["model_config"]
    path.write_text(json.dumps(manifest))
    deployed.write_config(training={"C": 0.5})
    assert tick(deployed)["decision"] == "no new data" and serving(deployed) == "v0001"
