"""Deployment: promote the trained model, its score and the ingested-file record.

``store_model_into_pickle()`` copies ``trainedmodel.pkl`` and ``latestscore.txt``
(from ``output_model_path``) and ``ingestedfiles.txt`` (from ``output_folder_path``)
into a new version folder under ``prod_deployment_path``, writes its
``manifest.json`` and switches production to it in one atomic rename.
The course file names in ``prod_deployment_path`` always show the deployed
version (see storage.py for the layout). The last ``keep_versions`` versions
are kept; ``--rollback [VERSION]`` switches back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drs.config import (
    HISTORY_FILE,
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    MODEL_RECORD_FILE,
    REFERENCE_SAMPLE_FILE,
    SCORE_FILE,
    TRAINING_ROWS_FILE,
    Config,
    PipelineError,
    load_config,
)
from drs.storage import (
    DEPLOYMENT_LOG,
    VERSIONS_DIR,
    LockBusy,
    append_jsonl,
    current_version_dir,
    ensure_course_links,
    exclusive_lock,
    fingerprint_files,
    list_input_csvs,
    list_versions,
    next_version,
    now_iso,
    read_json,
    read_jsonl,
    read_manifest,
    remember_checked,
    sha256_file,
    switch_current,
    version_sort_key,
    write_json_atomic,
)

log = logging.getLogger("deployment")

# Named points of a deployment, in order. The kill-at-every-step test sets
# DRS_FAULT_INJECT to one of them and the process SIGKILLs itself there.
CHECKPOINTS = (
    "start",
    "staging-created",
    "files-copied",
    "manifest-written",
    "version-published",
    "links-ensured",
    "switched",
    "recorded",
    "pruned",
)


class ModelUnavailable(PipelineError):
    """No usable model in production (none deployed, or one that fails its check)."""


def _checkpoint(name: str) -> None:
    if os.environ.get("DRS_FAULT_INJECT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _read_score(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except FileNotFoundError:
        raise PipelineError(f"no score at {path}: run scoring.py first") from None
    except ValueError:
        raise PipelineError(f"{path} does not hold a number") from None


@contextlib.contextmanager
def _deploy_lock(prod_folder: Path):
    try:
        with exclusive_lock(prod_folder / ".deploy.lock"):
            yield
    except LockBusy:
        raise PipelineError(f"another deployment to {prod_folder} is in progress") from None


class ProductionChanged(PipelineError):
    """Production switched to another version while a tick was evaluating it: nothing deployed."""


def store_model_into_pickle(config: Config | None = None, scores: dict | None = None, note: str = "") -> str:
    """Publish the trained model as a new production version; returns its id (e.g. "v0004").

    `scores` adds figures to the manifest (the test F1 from latestscore.txt is always there).
    """
    return deploy(config or load_config(), scores=scores, note=note)["version"]


def deploy(
    config: Config, scores: dict | None = None, note: str = "", expected_current: str | None = "any", data=None
) -> dict:
    """store_model_into_pickle, returning the new version's manifest.

    Only the model that training.py wrote (its sha256 is in trainedmodel.json)
    is published, with the score scoring.py gave it and the ingestion record
    it was trained from. `data` is the ingested data the model was trained on
    (read from finaldata.csv when not given): a key of each of its rows is
    kept with the version, so later ticks can tell new rows from ones it saw.
    With `expected_current` (a version, or None for an empty production),
    ProductionChanged is raised and nothing deployed when production no longer
    serves that version.
    """
    from drs.train import read_trained_model_bytes

    # Read once and checked against training's record: these exact bytes are what is published.
    model_bytes = read_trained_model_bytes(config, "cannot deploy")
    record = read_json(config.model_folder / MODEL_RECORD_FILE)
    sources = {
        SCORE_FILE: config.model_folder / SCORE_FILE,
        INGESTED_RECORD_FILE: config.output_folder / INGESTED_RECORD_FILE,
        INGESTED_DETAIL_FILE: config.output_folder / INGESTED_DETAIL_FILE,
        REFERENCE_SAMPLE_FILE: config.output_folder / REFERENCE_SAMPLE_FILE,
    }
    optional = (INGESTED_DETAIL_FILE, REFERENCE_SAMPLE_FILE)
    for name, path in list(sources.items()):
        if not path.is_file():
            if name not in optional:
                raise PipelineError(f"cannot deploy: {path} not found")
            sources.pop(name)
    f1 = _read_score(sources[SCORE_FILE])
    _check_belongs_to_model(config, record, f1, sources.get(INGESTED_DETAIL_FILE))
    row_keys = _training_row_keys(config, data)
    training_files = {}
    if INGESTED_DETAIL_FILE in sources:
        detail = read_json(sources[INGESTED_DETAIL_FILE])
        training_files = {
            name: {"sha256": f["sha256"], "rows": f.get("rows")} for name, f in detail.get("files", {}).items()
        }
    else:
        names = [n.strip() for n in sources[INGESTED_RECORD_FILE].read_text().splitlines() if n.strip()]
        training_files = {name: {} for name in names}

    prod = config.prod_folder
    (prod / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
    with _deploy_lock(prod):
        _checkpoint("start")
        _remove_staging_leftovers(prod)
        previous = current_version_dir(prod)
        if expected_current != "any" and (previous.name if previous else None) != expected_current:
            raise ProductionChanged(
                f"production switched from {expected_current or 'nothing'} to "
                f"{previous.name if previous else 'nothing'} during this run: nothing deployed"
            )
        version = next_version(prod)
        staging = prod / VERSIONS_DIR / f".staging-{version}"
        staging.mkdir()
        _checkpoint("staging-created")
        hashes = {}
        with open(staging / MODEL_FILE, "wb") as handle:
            handle.write(model_bytes)
            os.fsync(handle.fileno())
        hashes[MODEL_FILE] = hashlib.sha256(model_bytes).hexdigest()
        for name, source in sources.items():
            shutil.copyfile(source, staging / name)
            with open(staging / name, "rb+") as handle:
                os.fsync(handle.fileno())
            hashes[name] = sha256_file(staging / name)
        if row_keys is not None:
            with open(staging / TRAINING_ROWS_FILE, "wb") as handle:
                np.save(handle, row_keys)
                os.fsync(handle.fileno())
            hashes[TRAINING_ROWS_FILE] = sha256_file(staging / TRAINING_ROWS_FILE)
        _checkpoint("files-copied")
        manifest = {
            "version": version,
            "created": now_iso(),
            "files": hashes,
            "training_files": training_files,
            "scores": {"f1": f1, **(scores or {})},
            "previous_version": previous.name if previous else None,
            "note": note,
            # What the model takes: a tick retrains when the config's schema no longer matches.
            "schema": config.schema.as_record(),
        }
        write_json_atomic(staging / MANIFEST_FILE, manifest)
        _checkpoint("manifest-written")
        os.rename(staging, prod / VERSIONS_DIR / version)
        _checkpoint("version-published")
        ensure_course_links(prod)
        _checkpoint("links-ensured")
        switch_current(prod, version)
        _checkpoint("switched")
        append_jsonl(
            prod / DEPLOYMENT_LOG,
            {
                "time": manifest["created"],
                "action": "deploy",
                "version": version,
                "previous": manifest["previous_version"],
                "f1": f1,
                "note": note,
            },
        )
        _checkpoint("recorded")
        removed = _prune(prod, config.keep_versions)
        _checkpoint("pruned")
    log.info("deployed %s (F1 %.4f) to %s%s", version, f1, prod, f"; pruned {', '.join(removed)}" if removed else "")
    return manifest


def _check_belongs_to_model(config: Config, record: dict, f1: float, detail: Path | None) -> None:
    """Refuse to publish a score or an ingestion record that is not the trained model's own."""
    if record.get("f1") is None or abs(float(record["f1"]) - f1) > 1e-12:
        raise PipelineError(
            f"cannot deploy: {config.model_folder / SCORE_FILE} is not the score of the model "
            "training.py last wrote: run scoring.py first"
        )
    ingested = record.get("ingested_sha256")
    if ingested and (detail is None or sha256_file(detail) != ingested):
        raise PipelineError(
            f"cannot deploy: the ingested data in {config.output_folder} changed since the model was "
            "trained (ingestion.py ran after training.py): run training.py and scoring.py first"
        )


def _training_row_keys(config: Config, data):
    from drs.ingest import read_final_data, row_keys

    if data is None:
        try:
            data = read_final_data(config)
        except PipelineError:
            return None
    return row_keys(data)


def _remove_staging_leftovers(prod: Path) -> None:
    # Under the deploy lock no other deployment is running: any staging folder is debris.
    for entry in (prod / VERSIONS_DIR).glob(".staging-*"):
        shutil.rmtree(entry, ignore_errors=True)


def _prune(prod: Path, keep: int) -> list[str]:
    """Remove all but the `keep` versions that served most recently (never the current one, nor the one
    a rollback would go back to); versions that never served count as oldest."""
    versions = list_versions(prod)
    current = current_version_dir(prod)
    recent = list(dict.fromkeys([*([current.name] if current else []), *reversed(serving_stack(prod))]))
    order = [v for v in recent if v in versions] + sorted(
        set(versions) - set(recent), key=version_sort_key, reverse=True
    )
    doomed = order[keep:]
    for version in doomed:
        shutil.rmtree(prod / VERSIONS_DIR / version, ignore_errors=True)
    return sorted(doomed, key=version_sort_key)


def serving_stack(prod_folder: Path) -> list[str]:
    """The versions that served one after another, oldest first, as the deployment log tells it.

    A deploy pushes its version; a rollback to a version further down the
    stack pops back to it (a rollback to one not on it pushes it), so
    "the version before" is always the one that served before, however
    deploys and rollbacks interleave.
    """
    stack: list[str] = []
    for record in read_jsonl(Path(prod_folder) / DEPLOYMENT_LOG):
        version = record.get("version")
        if not isinstance(version, str):
            continue
        if record.get("action") == "rollback" and version in stack:
            del stack[stack.index(version) + 1 :]
        else:
            stack.append(version)
    return stack


def _intact(prod: Path, version: str) -> bool:
    folder = prod / VERSIONS_DIR / version
    manifest = read_manifest(folder)
    return manifest is not None and _files_match(folder, manifest)


def _rollback_target(prod: Path, current: str | None) -> str:
    """The version that served before `current` (or, with production damaged, the newest intact one)."""
    stack = serving_stack(prod)
    if current is not None and current in stack:
        candidates = stack[: len(stack) - 1 - stack[::-1].index(current)]
    elif current is not None:
        # A log that does not know the current version (older installs): follow the manifests.
        previous = (read_manifest(prod / VERSIONS_DIR / current) or {}).get("previous_version")
        candidates = [previous] if previous else []
    else:
        # Nothing serving: what served last, else (no log at all) the newest kept version.
        candidates = stack or list_versions(prod)
    kept = list_versions(prod)
    damaged = []
    for version in reversed(candidates):
        if version == current or version not in kept:
            continue
        if _intact(prod, version):
            return version
        damaged.append(version)
    why = f" ({', '.join(damaged)} damaged: files do not match the manifest)" if damaged else ""
    what = f"before {current}" if current else "in the deployment log"
    raise PipelineError(
        f"no intact kept version {what}{why}: nothing to roll back to "
        f"(kept: {', '.join(kept) or 'none'}; name one with --rollback VERSION)"
    )


def rollback(config: Config | None = None, version: str | None = None) -> str:
    """Switch production to `version`, or to the version that served before the current one; returns it."""
    config = config or load_config()
    prod = config.prod_folder
    with _deploy_lock(prod):
        current_dir = current_version_dir(prod)
        versions = list_versions(prod)
        if version is None:
            if not versions:
                raise PipelineError(f"nothing is deployed in {prod}: nothing to roll back")
            version = _rollback_target(prod, current_dir.name if current_dir is not None else None)
        elif version not in versions:
            kept = ", ".join(versions) or "none"
            raise PipelineError(f"version {version} not found in {prod / VERSIONS_DIR} (kept: {kept})")
        if current_dir is not None and current_dir.name == version:
            raise PipelineError(f"{version} is already serving: nothing to roll back")
        if not _intact(prod, version):
            raise PipelineError(
                f"version {version} is damaged (files do not match its manifest): refusing to roll back to it"
            )
        manifest = read_manifest(prod / VERSIONS_DIR / version) or {}
        # Input files the versions rolled away from were trained on, and those in this config's
        # input folder now, were weighed already: without this the next tick, under either
        # config, would take them as new data and redeploy what was just rolled back. Recorded
        # before the switch, so a rollback interrupted at any point is never undone by a tick.
        weighed = [
            {"name": name, **info}
            for v in versions
            if version_sort_key(v) > version_sort_key(version)
            for name, info in ((read_manifest(prod / VERSIONS_DIR / v) or {}).get("training_files") or {}).items()
            if info.get("sha256")
        ]
        with contextlib.suppress(PipelineError):  # no input folder: nothing more to remember
            weighed += [
                {"name": name, **info}
                for name, info in fingerprint_files(
                    list_input_csvs(config.input_folder), max_bytes=config.max_input_file_bytes
                ).items()
            ]
        remember_checked(prod, version, weighed)
        ensure_course_links(prod)
        switch_current(prod, version)
        record = {
            "time": now_iso(),
            "action": "rollback",
            "version": version,
            "previous": current_dir.name if current_dir else None,
            "f1": manifest.get("scores", {}).get("f1"),
        }
        append_jsonl(prod / DEPLOYMENT_LOG, record)
    # The run history shows rollbacks beside the ticks, so `fullprocess.py --status` tells the whole story.
    try:
        append_jsonl(
            config.log_folder / HISTORY_FILE,
            {
                "start": record["time"],
                "end": record["time"],
                "seconds": 0.0,
                "stages": {},
                "new_files": [],
                "decision": f"rollback from {record['previous'] or 'damaged production'}",
                "deployed_version": version,
                "exit_status": 0,
            },
        )
    except OSError as exc:  # production has switched and deployments.jsonl says so: that stands
        log.warning("rolled back to %s, but could not add it to the run history: %s", version, exc)
    log.info("rolled back %s to %s", prod, version)
    return version


def _files_match(folder: Path, manifest: dict) -> bool:
    try:
        return all(sha256_file(folder / name) == sha for name, sha in manifest.get("files", {}).items())
    except FileNotFoundError:
        return False


def deployment_history(config: Config) -> list[dict]:
    """Every deploy and rollback recorded in production, oldest first."""
    return read_jsonl(config.prod_folder / DEPLOYMENT_LOG)


def deployed_score_history(config: Config) -> list[float]:
    """Test F1 of every deployment made (not rollbacks), oldest first; a record without a number is skipped."""
    return [
        float(r["f1"])
        for r in deployment_history(config)
        if r.get("action") == "deploy" and isinstance(r.get("f1"), (int, float)) and not isinstance(r["f1"], bool)
    ]


@dataclass
class DeployedModel:
    model: object
    manifest: dict
    folder: Path

    @property
    def version(self) -> str:
        return self.manifest.get("version", "?")

    @property
    def f1(self) -> float | None:
        return self.manifest.get("scores", {}).get("f1")


def load_deployed_model(prod_folder: Path) -> DeployedModel:
    """Load the deployed model after checking its sha256 against the manifest.

    Raises ModelUnavailable when nothing is deployed, the manifest is missing,
    or the model file does not match it (the file is then never unpickled).
    """
    folder = current_version_dir(prod_folder)
    if folder is None:
        raise ModelUnavailable(f"no model deployed in {prod_folder}")
    manifest = read_manifest(folder)
    if manifest is None:
        raise ModelUnavailable(f"deployed version {folder.name} has no readable {MANIFEST_FILE}")
    expected = manifest.get("files", {}).get(MODEL_FILE)
    path = folder / MODEL_FILE
    # Read once, hash and unpickle the same bytes: no window for a swap between check and load.
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelUnavailable(f"deployed version {folder.name} has no {MODEL_FILE}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelUnavailable(
            f"{path} fails its integrity check (sha256 {actual[:12]}..., manifest says {str(expected)[:12]}...): "
            "refusing to load it; `deployment.py --rollback` restores the previous version"
        )
    try:
        model = pickle.loads(data)
    except Exception as exc:  # a matching hash with a broken pickle: still not usable
        raise ModelUnavailable(f"cannot unpickle {path}: {exc}") from None
    return DeployedModel(model=model, manifest=manifest, folder=folder)
