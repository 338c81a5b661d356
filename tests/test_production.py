"""The production store on a temp folder, in process: publish, switch, rollback, prune, damage, tamper."""

import json
import os
import pickle
import shutil
import time

import pytest

from drs.config import COURSE_SCHEMA, PipelineError
from drs.production import (
    FORMAT_VERSION,
    LocalProductionStore,
    ModelUnavailable,
    ProductionChanged,
    ProductionDamaged,
    trained_schema,
)


@pytest.fixture
def store(tmp_path):
    return LocalProductionStore(tmp_path / "production")


def publish(store, label, keep=5, expected_current="any"):
    """Publish a version whose model is the dict {"label": label}; returns its manifest."""
    files = {
        "trainedmodel.pkl": pickle.dumps({"label": label}),
        "latestscore.txt": b"0.5\n",
        "ingestedfiles.txt": f"{label}.csv\n".encode(),
    }
    fields = {"scores": {"f1": 0.5}, "note": label, "training_files": {f"{label}.csv": {"sha256": f"sha-{label}"}}}
    manifest, _ = store.publish(files, fields, expected_current, keep)
    return manifest


def no_inputs():
    return []


def test_publish_writes_a_version_with_a_manifest_and_switches_to_it(store):
    manifest = publish(store, "first")
    assert manifest["version"] == "v0001" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["previous_version"] is None
    assert store.current_version() == "v0001" and store.versions() == ["v0001"]
    assert store.deployed_state() == manifest == store.manifest("v0001")
    assert store.intact("v0001")
    # The course's names show the deployed version through `current`.
    assert (store.folder / "trainedmodel.pkl").read_bytes() == pickle.dumps({"label": "first"})
    assert json.loads((store.folder / "manifest.json").read_text()) == manifest
    assert [(r["action"], r["version"], r["previous"]) for r in store.deployment_log()] == [("deploy", "v0001", None)]
    assert store.load_model().model == {"label": "first"}


def test_a_second_publish_switches_and_names_the_first(store):
    publish(store, "first")
    manifest = publish(store, "second")
    assert manifest["previous_version"] == "v0001" and store.current_version() == "v0002"
    assert store.load_model().model == {"label": "second"}
    assert os.readlink(store.folder / "current") == "versions/v0002"


def test_publish_refuses_when_production_changed_under_it(store):
    publish(store, "first")
    publish(store, "second")
    with pytest.raises(ProductionChanged, match="from v0001 to v0002"):
        publish(store, "third", expected_current="v0001")
    assert store.versions() == ["v0001", "v0002"] and store.current_version() == "v0002"


def test_rollback_goes_back_to_what_served_before(store):
    publish(store, "first")
    publish(store, "second")
    assert store.roll_back(None, no_inputs)["version"] == "v0001"
    publish(store, "third")  # v0003, deployed over the rolled-back v0001
    record = store.roll_back(None, no_inputs)
    assert record["version"] == "v0001" and record["previous"] == "v0003"  # never v0002, rolled away from
    assert store.serving_stack() == ["v0001"]
    assert store.load_model().model == {"label": "first"}


def test_rollback_remembers_the_weighed_files_before_it_switches(store):
    publish(store, "first")
    publish(store, "second")
    inputs = [{"name": "new.csv", "sha256": "sha-new"}]
    store.roll_back(None, lambda: inputs)
    assert {f["sha256"] for f in store.checked_files("v0001")} == {"sha-second", "sha-new"}
    assert store.checked_files("v0002") == []


def test_rollback_refuses_a_damaged_version_and_says_what_is_kept(store):
    publish(store, "first")
    publish(store, "second")
    (store.folder / "versions" / "v0001" / "trainedmodel.pkl").write_bytes(b"tampered")
    with pytest.raises(PipelineError, match="v0001 damaged"):
        store.roll_back(None, no_inputs)
    with pytest.raises(PipelineError, match="v0009 not found.*kept: v0001, v0002"):
        store.roll_back("v0009", no_inputs)
    with pytest.raises(PipelineError, match="already serving"):
        store.roll_back("v0002", no_inputs)
    assert store.current_version() == "v0002"


def test_prune_keeps_what_served_last(store):
    publish(store, "first", keep=2)
    publish(store, "second", keep=2)
    store.roll_back(None, no_inputs)  # v0001 serves again; v0002 was rolled away from
    publish(store, "third", keep=2)
    assert store.versions() == ["v0001", "v0003"]
    assert store.roll_back(None, no_inputs)["version"] == "v0001"


def test_empty_production_and_never_served_versions_are_not_damage(store):
    assert store.deployed_state() is None and store.current_version() is None
    (store.folder / "versions" / "v0001").mkdir(parents=True)  # a first publish killed before its switch
    assert store.deployed_state() is None
    with pytest.raises(ModelUnavailable, match="no model deployed"):
        store.load_model()


@pytest.mark.parametrize("damage", ["no current", "torn manifest", "dangling current", "current a file"])
def test_damaged_production_is_an_error(store, damage):
    publish(store, "first")
    current = store.folder / "current"
    if damage == "no current":
        current.unlink()
    elif damage == "torn manifest":
        (store.folder / "versions" / "v0001" / "manifest.json").write_text("{not json")
    elif damage == "dangling current":
        current.unlink()
        current.symlink_to("versions/v0009")
    else:
        current.unlink()
        current.write_text("v0001")
    with pytest.raises(ProductionDamaged, match="production damaged"):
        store.deployed_state()


def test_a_tampered_model_is_refused_and_never_unpickled(store, tmp_path):
    publish(store, "first")
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    (store.folder / "versions" / "v0001" / "trainedmodel.pkl").write_bytes(payload)
    with pytest.raises(ModelUnavailable, match="integrity check"):
        store.load_model()
    assert not marker.exists() and not store.intact("v0001")


def test_the_change_token_moves_on_a_switch_and_on_a_cp_p_restore(store, tmp_path):
    assert store.change_token() is None
    publish(store, "first")
    first = store.change_token()
    assert store.change_token() == first  # nothing changed: the same token
    publish(store, "second")
    assert store.change_token() != first
    model = store.folder / "versions" / "v0002" / "trainedmodel.pkl"
    backup = tmp_path / "backup.pkl"
    shutil.copy2(model, backup)
    before = store.change_token()
    time.sleep(0.05)  # past the file system's clock tick, so the restore's ctime is a new one
    shutil.copy2(backup, model)  # `cp -p`: same bytes, same size and mtime
    assert store.change_token() != before


def test_the_deployment_log_token_moves_with_each_record(store):
    assert store.deployment_log_token() is None
    publish(store, "first")
    first = store.deployment_log_token()
    publish(store, "second")
    assert store.deployment_log_token() != first


def test_a_format_0_manifest_stays_readable(store):
    publish(store, "first")
    path = store.folder / "versions" / "v0001" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["format_version"]
    path.write_text(json.dumps(manifest))
    assert store.deployed_state()["version"] == "v0001"
    assert trained_schema(store.deployed_state()) == COURSE_SCHEMA.as_record()  # format 0: the course's
    assert store.load_model().model == {"label": "first"}
    assert store.training_row_keys("v0001") is None and store.reference_sample("v0001") is None


def test_temp_files_a_killed_run_left_are_removed(store):
    publish(store, "first")
    leftovers = [store.folder / ".current.123.tmp", store.folder / "versions" / ".manifest.json.x.tmp"]
    for path in leftovers:
        path.write_text("")
    assert sorted(store.remove_temp_files()) == sorted(str(p) for p in leftovers)
    assert not any(path.exists() for path in leftovers)
