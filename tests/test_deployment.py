"""Deployment: versions, manifests, atomic switch under SIGKILL, pruning, rollback, integrity."""

import hashlib
import json
import os
import shutil

import pytest

from drs.deploy import CHECKPOINTS, ModelUnavailable, load_deployed_model

COURSE_FILES = ("trainedmodel.pkl", "latestscore.txt", "ingestedfiles.txt")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scored(project):
    for script in ("ingestion.py", "training.py", "scoring.py"):
        result = project.run(script)
        assert result.returncode == 0, result.stderr
    return project


def production_view(project):
    """What a reader of production sees: the manifest and the course files' hashes, or None."""
    prod = project.path("production_deployment")
    try:
        manifest = json.loads((prod / "manifest.json").read_text())
    except FileNotFoundError:
        return None
    return manifest, {name: sha(prod / name) for name in COURSE_FILES}


def assert_consistent(project):
    view = production_view(project)
    if view is None:
        assert not (project.path("production_deployment", "trainedmodel.pkl")).exists()
        return None
    manifest, hashes = view
    for name, digest in hashes.items():
        assert manifest["files"][name] == digest, f"{name} does not match the manifest of {manifest['version']}"
    return manifest["version"]


def test_deploy_publishes_course_files_and_a_manifest(scored):
    result = scored.run("deployment.py")
    assert result.returncode == 0, result.stderr
    prod = scored.path("production_deployment")
    for name in COURSE_FILES:
        assert (prod / name).read_bytes() == (
            scored.path("models", name) if name != "ingestedfiles.txt" else scored.path("ingesteddata", name)
        ).read_bytes()
    manifest = json.loads((prod / "manifest.json").read_text())
    assert manifest["version"] == "v0001"
    assert manifest["scores"]["f1"] == pytest.approx(float(scored.path("models", "latestscore.txt").read_text()))
    assert set(manifest["training_files"]) == {"dataset1.csv", "dataset2.csv"}
    assert manifest["training_files"]["dataset1.csv"]["sha256"] == sha(scored.path("practicedata", "dataset1.csv"))
    assert manifest["training_files"]["dataset1.csv"]["rows"] == 350
    assert assert_consistent(scored) == "v0001"


def test_deploy_without_a_trained_model_is_a_clear_error(project):
    result = project.run("deployment.py")
    assert result.returncode == 1 and "cannot deploy" in result.stderr and "trainedmodel.pkl" in result.stderr


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_sigkill_at_any_step_leaves_production_entirely_old_or_new(scored, checkpoint):
    assert scored.run("deployment.py").returncode == 0  # v0001 is production
    old = production_view(scored)
    # retrain with other settings so the new version's files differ
    scored.write_config(training={"C": 0.001})
    assert scored.run("training.py").returncode == 0 and scored.run("scoring.py").returncode == 0

    killed = scored.run("deployment.py", env={"DRS_FAULT_INJECT": checkpoint})
    assert killed.returncode == -9, killed.stderr
    version = assert_consistent(scored)
    assert version in ("v0001", "v0002")
    if version == "v0001":
        assert production_view(scored) == old
    # the next deployment always succeeds and leaves no debris behind
    assert scored.run("deployment.py").returncode == 0
    assert assert_consistent(scored) in ("v0002", "v0003")
    assert not list(scored.path("production_deployment", "versions").glob(".staging-*"))
    assert load_deployed_model(scored.path("production_deployment")).manifest == production_view(scored)[0]


def test_sigkill_during_the_first_deployment_leaves_nothing_or_everything(scored):
    for checkpoint in CHECKPOINTS:
        shutil.rmtree(scored.path("production_deployment"), ignore_errors=True)
        assert scored.run("deployment.py", env={"DRS_FAULT_INJECT": checkpoint}).returncode == -9
        assert assert_consistent(scored) in (None, "v0001")


def test_only_the_last_versions_are_kept(scored):
    scored.write_config(keep_versions=3)
    for _ in range(5):
        assert scored.run("deployment.py").returncode == 0
    versions = sorted(os.listdir(scored.path("production_deployment", "versions")))
    assert versions == ["v0003", "v0004", "v0005"]
    assert assert_consistent(scored) == "v0005"


def test_rollback_to_previous_and_named_versions_is_recorded(scored):
    for c in (1.0, 0.001, 0.0001):
        scored.write_config(training={"C": c})
        scored.run("training.py")
        scored.run("scoring.py")
        assert scored.run("deployment.py").returncode == 0
    prod = scored.path("production_deployment")
    v2_model = (prod / "versions" / "v0002" / "trainedmodel.pkl").read_bytes()

    result = scored.run("deployment.py", "--rollback")
    assert result.returncode == 0, result.stderr
    assert "v0002" in result.stdout
    assert (prod / "trainedmodel.pkl").read_bytes() == v2_model
    assert assert_consistent(scored) == "v0002"

    assert scored.run("deployment.py", "--rollback", "v0003").returncode == 0
    assert assert_consistent(scored) == "v0003"

    log = [json.loads(line) for line in (prod / "deployments.jsonl").read_text().splitlines()]
    assert [(r["action"], r["version"]) for r in log] == [
        ("deploy", "v0001"),
        ("deploy", "v0002"),
        ("deploy", "v0003"),
        ("rollback", "v0002"),
        ("rollback", "v0003"),
    ]
    assert log[3]["previous"] == "v0003"
    status = scored.run("fullprocess.py", "--status")
    assert "rollback from v0003" in status.stdout and "rollback from v0002" in status.stdout


def test_rollback_errors_are_one_line(scored):
    result = scored.run("deployment.py", "--rollback")
    assert result.returncode == 1 and "nothing is deployed" in result.stderr
    scored.run("deployment.py")
    result = scored.run("deployment.py", "--rollback")
    assert result.returncode == 1 and "nothing to roll back to" in result.stderr
    result = scored.run("deployment.py", "--rollback", "v0042")
    assert result.returncode == 1 and "v0042 not found" in result.stderr and "v0001" in result.stderr


def test_rollback_refuses_a_damaged_version(scored):
    scored.run("deployment.py")
    scored.run("deployment.py")
    (scored.path("production_deployment", "versions", "v0001", "trainedmodel.pkl")).write_bytes(b"tampered")
    result = scored.run("deployment.py", "--rollback")
    assert result.returncode == 1 and "damaged" in result.stderr
    assert assert_consistent(scored) == "v0002"


def test_a_tampered_model_is_never_unpickled(scored, tmp_path):
    scored.run("deployment.py")
    model_path = scored.path("production_deployment", "versions", "v0001", "trainedmodel.pkl")
    marker = tmp_path / "pwned"
    # A pickle that would create a file if it were ever loaded
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    model_path.write_bytes(payload)
    with pytest.raises(ModelUnavailable, match="integrity check"):
        load_deployed_model(scored.path("production_deployment"))
    assert not marker.exists()
    result = scored.run("diagnostics.py")
    assert result.returncode == 1 and "integrity check" in result.stderr and not marker.exists()
