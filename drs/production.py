"""The production store: the only code that knows how production is laid out.

Every other module asks a ``ProductionStore`` (``production_store(config)``) and gets
bytes, dicts and models back, never a path into ``versions/``. A backend implements the
primitives of ``StoreBackend``; ``ProductionStore`` builds publishing, rollback, pruning and the
checked model load on them. A second backend (object storage) is one new subclass of
``ProductionStore`` implementing those primitives, picked by ``open_production``.

Standard library only, so the cheap cron tick can use it.

Local layout (``LocalProductionStore``, in ``prod_deployment_path``)::

    versions/v0003/{trainedmodel.pkl, latestscore.txt, ingestedfiles.txt, ingestedfiles.json,
                    referencedata.csv, trainingrows.npy, calibrator.pkl (optional), manifest.json}
    current -> versions/v0003          (a symlink, switched with one rename)
    trainedmodel.pkl -> current/trainedmodel.pkl   (and the other course files)
    deployments.jsonl                  (every deploy and rollback, appended)
    checkedfiles.json                  (input files weighed against the deployed version; a model config held back)
    .deploy.lock                       (held by a deployment or a rollback)

Switching ``current`` is a single ``rename(2)``, so a reader (or a process
killed mid-deploy) sees either the whole old version or the whole new one.

Manifest formats: 1 records ``"format_version": 1``; 0 (older deployments) has no
format version and may lack ``schema`` (the course's) and ``trainingrows.npy``. Either may lack
``model_config`` (the estimator and training parameters, recorded since they retrain a model when
they change): its model was trained with parameters nobody knows, so none counts as a change.
Either may lack ``calibration`` and the calibrator (a version deployed before they were kept): F1 is
then not estimated for it.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

from drs.config import COURSE_SCHEMA, Config, PipelineError
from drs.files import (
    CALIBRATOR_FILE,
    CHECKED_FILE,
    CURRENT_LINK,
    DEPLOY_LOCK,
    DEPLOYMENT_LOG,
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    REFERENCE_SAMPLE_FILE,
    SCORE_FILE,
    TRAINING_ROWS_FILE,
    VERSIONS_DIR,
)
from drs.storage import (
    LockBusy,
    append_jsonl,
    exclusive_lock,
    fsync_dir,
    now_iso,
    read_json,
    read_jsonl,
    remove_stale_temp_files,
    write_json_atomic,
)

FORMAT_VERSION = 1  # of manifest.json
COURSE_FILES = (MODEL_FILE, SCORE_FILE, INGESTED_RECORD_FILE)
PUBLISHED_FILES = (*COURSE_FILES, INGESTED_DETAIL_FILE, MANIFEST_FILE)
ANY_VERSION = "any"  # publish's expected_current when any serving version will do
_VERSION_RE = re.compile(r"^v(\d{4,})$")

# Named points of a deployment, in order. The kill-at-every-step test sets DRS_FAULT_INJECT
# to one of them and the process SIGKILLs itself there (a rollback passes "links-ensured" too).
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


def checkpoint(name: str) -> None:
    if os.environ.get("DRS_FAULT_INJECT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class ModelUnavailable(PipelineError):
    """No usable model in production (none deployed, or one that fails its check)."""


class ProductionChanged(PipelineError):
    """Production switched to another version while a tick was evaluating it: nothing deployed."""


class ProductionDamaged(PipelineError):
    """Production holds versions but no usable deployed one: a person must choose (rollback)."""

    def __init__(self, problem: str):
        super().__init__(f"production damaged: {problem}; run deployment.py --rollback [VERSION]")
        self.problem = problem


@dataclass
class DeployedModel:
    """A deployed model in memory with the manifest of its version."""

    model: object
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest.get("version", "?")

    @property
    def f1(self) -> float | None:
        return self.manifest.get("scores", {}).get("f1")

    @property
    def model_sha256(self) -> str | None:
        return self.manifest.get("files", {}).get(MODEL_FILE)

    @property
    def calibration(self) -> dict | None:
        """The manifest's record of the calibrator (its quality, or why there is none); None before it was kept."""
        record = self.manifest.get("calibration")
        return record if isinstance(record, dict) else None


# --- what every backend shares: pure functions of manifests and the deployment log ---------


def version_sort_key(version: str) -> int:
    match = _VERSION_RE.match(version)
    return int(match.group(1)) if match else -1


def is_version(name: str) -> bool:
    return bool(_VERSION_RE.match(name))


def trained_schema(manifest: dict) -> dict:
    """The schema record a deployed version's model takes.

    Format 0: versions deployed before schemas were configurable record none -> the course's.
    """
    return manifest.get("schema", COURSE_SCHEMA.as_record())


def model_config_record(
    estimator: str,
    training: dict,
    scale_numeric: bool = False,
    decision_threshold: float | None = None,
    normalize_categories: str = "trim",
) -> dict:
    """What makes the model, as a manifest records it (JSON values): the estimator, its training
    parameters, and the model options not at their defaults (so that a record made before an option
    existed still matches a config that leaves it out)."""
    record: dict[str, object] = {"estimator": estimator, "training": training}
    if scale_numeric:
        record["scale_numeric"] = True
    if decision_threshold is not None:
        record["decision_threshold"] = decision_threshold
    if normalize_categories != "trim":  # the categories the model learnt are spelt this way
        record["normalize_categories"] = normalize_categories
    return json.loads(json.dumps(record))


def model_config_of(config: Config) -> dict:
    """`model_config_record` of a config."""
    return model_config_record(
        config.estimator, config.training, config.scale_numeric, config.decision_threshold, config.normalize_categories
    )


def trained_model_config(manifest: dict) -> dict | None:
    """The estimator and training parameters a deployed version was trained with; None: not recorded."""
    record = manifest.get("model_config")
    return record if isinstance(record, dict) else None


def same_model_config(recorded: dict | None, configured: dict) -> bool:
    """Whether a recorded estimator and parameters are the configured ones; None (unknown) counts as the same.

    Compared normalised (a JSON round trip, keys sorted, 1.0 the same as 1), so equal configs never retrain.
    """
    return recorded is None or _normalised_json(recorded) == _normalised_json(configured)


def _normalised_json(value: object) -> str:
    def normalised(item: object) -> object:
        if isinstance(item, dict):
            return {str(key): normalised(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [normalised(inner) for inner in item]
        if isinstance(item, float) and item.is_integer():
            return int(item)
        return item

    return json.dumps(normalised(json.loads(json.dumps(value))), sort_keys=True)


def serving_stack(records: list[dict]) -> list[str]:
    """The versions that served one after another, oldest first, from the deployment log's records.

    A deploy pushes its version; a rollback to a version further down the
    stack pops back to it (a rollback to one not on it pushes it), so
    "the version before" is always the one that served before, however
    deploys and rollbacks interleave.
    """
    stack: list[str] = []
    for record in records:
        version = record.get("version")
        if not isinstance(version, str):
            continue
        if record.get("action") == "rollback" and version in stack:
            del stack[stack.index(version) + 1 :]
        else:
            stack.append(version)
    return stack


def prune_order(versions: list[str], current: str | None, stack: list[str]) -> list[str]:
    """Kept versions, the most recently serving first (the current one, then back down the serving
    stack); versions that never served count as oldest."""
    recent = list(dict.fromkeys([*([current] if current else []), *reversed(stack)]))
    never_served = sorted(set(versions) - set(recent), key=version_sort_key, reverse=True)
    return [v for v in recent if v in versions] + never_served


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpickle_checked(data: bytes, expected: str | None, where: str) -> object:
    """The object pickled in `data`, unpickled only when its sha256 is `expected`; else ModelUnavailable."""
    actual = sha256_bytes(data)
    if actual != expected:
        raise ModelUnavailable(
            f"{where} fails its integrity check (sha256 {actual[:12]}..., manifest says {str(expected)[:12]}...): "
            "refusing to load it; `deployment.py --rollback` restores the previous version"
        )
    try:
        import pickle  # only a model load needs it, never the no-new-data tick

        return pickle.loads(data)
    except Exception as exc:  # a matching hash with a broken pickle: still not usable
        raise ModelUnavailable(f"cannot unpickle {where}: {exc}") from None


# --- the store ---------------------------------------------------------------------------


class StoreBackend(abc.ABC):
    """The primitives a production backend implements (a local folder today: `LocalProductionStore`);
    callers use them through `ProductionStore`, which builds the rest on them."""

    location: str  # where production is, for messages

    @abc.abstractmethod
    def lock(self) -> contextlib.AbstractContextManager:
        """Held by one deployment or rollback at a time; PipelineError when another holds it."""

    @abc.abstractmethod
    def tick_lock(self, wait_seconds: float = 0.0) -> contextlib.AbstractContextManager:
        """Held by a tick, or a stage run by hand, for its whole run: it sits with production because the
        practice and the production configs share production and the ingested data. Waits up to
        `wait_seconds`, then raises LockBusy naming the holder."""

    @abc.abstractmethod
    def versions(self) -> list[str]:
        """Kept version ids, oldest first."""

    @abc.abstractmethod
    def current_version(self) -> str | None:
        """The version the pointer names, or None (no pointer, or one naming no version)."""

    @abc.abstractmethod
    def deployed_state(self) -> dict | None:
        """The deployed version's manifest; None only when production is empty; ProductionDamaged
        when it holds versions (or a pointer) but the deployed one cannot be read."""

    @abc.abstractmethod
    def read_file(self, version: str, name: str) -> bytes | None:
        """A file of a version, or None when it is not there."""

    @abc.abstractmethod
    def describe(self, version: str, name: str) -> str:
        """Where a file of a version is, for messages."""

    @abc.abstractmethod
    def write_version(self, version: str, files: dict[str, bytes], manifest: dict) -> None:
        """Publish a version, whole or not at all: its files, then its manifest."""

    @abc.abstractmethod
    def remove_unpublished(self) -> None:
        """Drop what a killed publish left behind (called under the lock)."""

    @abc.abstractmethod
    def switch(self, version: str) -> None:
        """Point production at `version` in one atomic step."""

    @abc.abstractmethod
    def remove_version(self, version: str) -> None: ...

    @abc.abstractmethod
    def deployment_log(self) -> list[dict]:
        """Every deploy and rollback recorded, oldest first."""

    @abc.abstractmethod
    def record(self, entry: dict) -> None:
        """Append one record to the deployment log."""

    @abc.abstractmethod
    def checked_files(self, version: str | None) -> list[dict]:
        """Fingerprints of input files already weighed against deployed `version` ([] for another one)."""

    @abc.abstractmethod
    def remember_checked(self, version: str | None, prints: dict | list) -> None:
        """Add input files ({name: fingerprint} or [{name, sha256, ...}]) to those weighed against `version`."""

    @abc.abstractmethod
    def held_model_config(self, version: str | None) -> dict | None:
        """The model config (`model_config_record`) held back against deployed `version`: retrained and refused
        by the promotion guard, or the one a rollback to it was made under; None for another version."""

    @abc.abstractmethod
    def hold_model_config(self, version: str | None, model_config: dict) -> None:
        """Remember `model_config` as held back against `version` (replacing any other held for it)."""

    @abc.abstractmethod
    def change_token(self) -> Hashable:
        """Cheap to get, and different whenever the deployed model or its manifest may have changed."""

    @abc.abstractmethod
    def deployment_log_token(self) -> Hashable:
        """Cheap to get, and different whenever the deployment log may have changed."""

    @abc.abstractmethod
    def remove_temp_files(self) -> list[str]:
        """Remove temp files a killed run left (call it holding the tick lock); returns what went."""


class ProductionStore(StoreBackend):
    """Production as its callers see it: publishing, rolling back, pruning and the checked model load,
    built on a backend's primitives (`StoreBackend`)."""

    def manifest(self, version: str) -> dict | None:
        """A version's manifest (any format), or None when it is missing or unreadable."""
        try:
            manifest = json.loads(self.read_file(version, MANIFEST_FILE) or b"")
        except ValueError:
            return None
        return manifest if isinstance(manifest, dict) and manifest.get("version") else None

    def intact(self, version: str) -> bool:
        """Whether a version's manifest is readable and every file it lists matches its sha256."""
        manifest = self.manifest(version)
        if manifest is None:
            return False
        for name, expected in manifest.get("files", {}).items():
            data = self.read_file(version, name)
            if data is None or sha256_bytes(data) != expected:
                return False
        return True

    def ingested_detail(self, version: str) -> dict:
        """The ingestion record (ingestedfiles.json) a version was trained from; {} when it has none."""
        with contextlib.suppress(ValueError):
            detail = json.loads(self.read_file(version, INGESTED_DETAIL_FILE) or b"{}")
            return detail if isinstance(detail, dict) else {}
        return {}

    def training_row_keys(self, version: str) -> bytes | None:
        """The .npy bytes of the keys of the rows a version was trained on (format 0: may be None)."""
        return self.read_file(version, TRAINING_ROWS_FILE)

    def reference_sample(self, version: str) -> bytes | None:
        """The CSV bytes of a sample of a version's training data, or None."""
        return self.read_file(version, REFERENCE_SAMPLE_FILE)

    def serving_stack(self) -> list[str]:
        return serving_stack(self.deployment_log())

    def load_model(self) -> DeployedModel:
        """The deployed model, its bytes read once, hashed against the manifest, then unpickled.

        Raises ModelUnavailable when nothing is deployed, the manifest is missing,
        or the model file does not match it (the file is then never unpickled).
        """
        version = self.current_version()
        if version is None:
            raise ModelUnavailable(f"no model deployed in {self.location}")
        manifest = self.manifest(version)
        if manifest is None:
            raise ModelUnavailable(f"deployed version {version} has no readable {MANIFEST_FILE}")
        data = self.read_file(version, MODEL_FILE)
        if data is None:
            raise ModelUnavailable(f"deployed version {version} has no {MODEL_FILE}")
        model = unpickle_checked(data, manifest.get("files", {}).get(MODEL_FILE), self.describe(version, MODEL_FILE))
        return DeployedModel(model=model, manifest=manifest)

    def load_calibrator(self, version: str) -> object | None:
        """A version's probability calibrator, unpickled after its bytes match the manifest; None when the
        version has none (ModelUnavailable when it lists one that is missing or fails the check)."""
        manifest = self.manifest(version) or {}
        expected = manifest.get("files", {}).get(CALIBRATOR_FILE)
        if expected is None:
            return None
        data = self.read_file(version, CALIBRATOR_FILE)
        if data is None:
            raise ModelUnavailable(f"version {version} has no {CALIBRATOR_FILE}, though its manifest lists one")
        return unpickle_checked(data, expected, self.describe(version, CALIBRATOR_FILE))

    def publish(
        self, files: dict[str, bytes], fields: dict, expected_current: str | None = ANY_VERSION, keep: int = 5
    ) -> tuple[dict, list[str]]:
        """Publish `files` as a new version and switch production to it; returns (its manifest, pruned ids).

        `fields` go into the manifest beside the version, time, sha256 of each file and
        the previous version. With `expected_current` (a version, or None for an empty
        production), ProductionChanged is raised and nothing published when production
        no longer serves that version.
        """
        with self.lock():
            checkpoint("start")
            self.remove_unpublished()
            previous = self.current_version()
            if expected_current != ANY_VERSION and previous != expected_current:
                raise ProductionChanged(
                    f"production switched from {expected_current or 'nothing'} to {previous or 'nothing'} "
                    "during this run: nothing deployed"
                )
            kept = self.versions()
            version = f"v{version_sort_key(kept[-1]) + 1 if kept else 1:04d}"
            manifest = new_manifest(version, previous, files, fields)
            self.write_version(version, files, manifest)
            self.switch(version)
            checkpoint("switched")
            f1 = manifest.get("scores", {}).get("f1")
            self.record(
                {"time": manifest["created"], "action": "deploy", "version": version, "previous": previous}
                | {"f1": f1, "note": manifest.get("note", "")}
            )
            checkpoint("recorded")
            removed = self.prune(keep)
            checkpoint("pruned")
        return manifest, removed

    def prune(self, keep: int) -> list[str]:
        """Remove all but the `keep` versions that served most recently (never the current one, nor the
        one a rollback would go back to); returns the removed ids, oldest first."""
        doomed = prune_order(self.versions(), self.current_version(), self.serving_stack())[keep:]
        for version in doomed:
            self.remove_version(version)
        return sorted(doomed, key=version_sort_key)

    def roll_back(
        self, version: str | None, input_fingerprints: Callable[[], list[dict]], model_config: dict | None = None
    ) -> dict:
        """Switch production to `version` (default: what served before the current one); returns the
        deployment log's record of it. `input_fingerprints()` gives the input files there now;
        `model_config`, the estimator and parameters of the config the rollback is made under."""
        with self.lock():
            current, versions = self.current_version(), self.versions()
            version = checked_rollback_version(self, version, current, versions)
            # Input files the versions rolled away from were trained on, and those in the input folder
            # now, were weighed already: without this the next tick, under either config, would take
            # them as new data and redeploy what was just rolled back. Recorded before the switch, so a
            # rollback interrupted at any point is never undone by a tick.
            newer = [v for v in versions if version_sort_key(v) > version_sort_key(version)]
            self.remember_checked(version, [*training_files(self, newer), *input_fingerprints()])
            # Nor may the config's parameters, if other than those `version` was trained with, undo it.
            if model_config is not None:
                self.hold_model_config(version, model_config)
            self.switch(version)
            entry = {"time": now_iso(), "action": "rollback", "version": version, "previous": current}
            entry["f1"] = (self.manifest(version) or {}).get("scores", {}).get("f1")
            self.record(entry)
        return entry


def new_manifest(version: str, previous: str | None, files: dict[str, bytes], fields: dict) -> dict:
    """The manifest of a version about to be published: `fields`, the sha256 of each file and more."""
    return {
        **fields,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": now_iso(),
        "files": {name: sha256_bytes(data) for name, data in files.items()},
        "previous_version": previous,
    }


def training_files(store: ProductionStore, versions: list[str]) -> list[dict]:
    """Fingerprints ({name, sha256, rows}) of the files `versions` were trained on."""
    return [
        {"name": name, **info}
        for version in versions
        for name, info in ((store.manifest(version) or {}).get("training_files") or {}).items()
        if info.get("sha256")
    ]


def checked_rollback_version(
    store: ProductionStore, version: str | None, current: str | None, versions: list[str]
) -> str:
    """The version a rollback asked for `version` goes to; PipelineError when it may not go there."""
    if version is None:
        if not versions:
            raise PipelineError(f"nothing is deployed in {store.location}: nothing to roll back")
        version = rollback_target(store, current)
    elif version not in versions:
        kept = ", ".join(versions) or "none"
        raise PipelineError(f"version {version} not found in {store.location}/{VERSIONS_DIR} (kept: {kept})")
    if current == version:
        raise PipelineError(f"{version} is already serving: nothing to roll back")
    if not store.intact(version):
        raise PipelineError(
            f"version {version} is damaged (files do not match its manifest): refusing to roll back to it"
        )
    return version


def schema_crossing(store: ProductionStore, version: str, previous: str | None, schema: dict) -> str | None:
    """What a rollback from `previous` to `version` says about schemas (`schema`: the config's record):
    None when `version`'s model was trained for the same schema as both."""
    target = trained_schema(store.manifest(version) or {})
    before = trained_schema(store.manifest(previous) or {}) if previous else target
    notes = []
    if target != before:
        changed = ", ".join(sorted(key for key in target.keys() | before.keys() if target.get(key) != before.get(key)))
        notes.append(
            f"the rollback crosses a schema change: {version} was trained for another {changed} than {previous}"
        )
    if target != schema:
        notes.append(
            f"{version} does not take this config's schema: an API on this config answers 409 for it, and "
            "the next tick retrains and redeploys"
        )
    return "; ".join(notes) or None


def rollback_target(store: ProductionStore, current: str | None) -> str:
    """The version that served before `current` (or, with production damaged, the newest intact one)."""
    stack = store.serving_stack()
    kept = store.versions()
    if current is not None and current in stack:
        candidates = stack[: len(stack) - 1 - stack[::-1].index(current)]
    elif current is not None:
        # A log that does not know the current version (older installs): follow the manifests.
        previous = (store.manifest(current) or {}).get("previous_version")
        candidates = [previous] if previous else []
    else:
        # Nothing serving: what served last, else (no log at all) the newest kept version.
        candidates = stack or kept
    damaged = []
    for version in reversed(candidates):
        if version == current or version not in kept:
            continue
        if store.intact(version):
            return version
        damaged.append(version)
    why = f" ({', '.join(damaged)} damaged: files do not match the manifest)" if damaged else ""
    what = f"before {current}" if current else "in the deployment log"
    raise PipelineError(
        f"no intact kept version {what}{why}: nothing to roll back to "
        f"(kept: {', '.join(kept) or 'none'}; name one with --rollback VERSION)"
    )


class LocalProductionStore(ProductionStore):
    """Production in a local folder (the layout in this module's docstring)."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.location = str(self.folder)

    def tick_lock(self, wait_seconds: float = 0.0) -> contextlib.AbstractContextManager:
        return exclusive_lock(self.folder / LOCK_FILE, wait_seconds)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            with exclusive_lock(self.folder / DEPLOY_LOCK):
                yield
        except LockBusy:
            raise PipelineError(f"another deployment to {self.folder} is in progress") from None

    def versions(self) -> list[str]:
        try:
            names = os.listdir(self.folder / VERSIONS_DIR)
        except FileNotFoundError:
            return []
        return sorted(filter(is_version, names), key=version_sort_key)

    def current_version(self) -> str | None:
        try:
            target = os.readlink(self.folder / CURRENT_LINK)
        except OSError:
            return None
        return Path(target).name if (self.folder / target).is_dir() else None

    def deployed_state(self) -> dict | None:
        link = self.folder / CURRENT_LINK
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            versions = self.versions()
            # Versions that never served (a first deployment killed before its switch) are debris, not damage.
            if not versions or not self.deployment_log():
                return None
            raise ProductionDamaged(
                f"no '{CURRENT_LINK}' link in {self.folder} (versions kept: {', '.join(versions)})"
            ) from None
        except OSError:
            raise ProductionDamaged(f"{link} is not a symbolic link") from None
        if not (self.folder / target).is_dir():
            raise ProductionDamaged(f"'{CURRENT_LINK}' points at {target}, which does not exist")
        manifest = self.manifest(Path(target).name)
        if manifest is None:
            raise ProductionDamaged(f"{Path(target).name}/{MANIFEST_FILE} is missing or unreadable")
        return manifest

    def _path(self, version: str, name: str) -> Path:
        return self.folder / VERSIONS_DIR / version / name

    def read_file(self, version: str, name: str) -> bytes | None:
        try:
            return self._path(version, name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def describe(self, version: str, name: str) -> str:
        return str(self._path(version, name))

    def remove_unpublished(self) -> None:
        (self.folder / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
        # Under the deploy lock no other deployment is running: any staging folder is debris.
        for entry in (self.folder / VERSIONS_DIR).glob(".staging-*"):
            shutil.rmtree(entry, ignore_errors=True)

    def write_version(self, version: str, files: dict[str, bytes], manifest: dict) -> None:
        staging = self.folder / VERSIONS_DIR / f".staging-{version}"
        staging.mkdir()
        checkpoint("staging-created")
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                os.fsync(handle.fileno())
        checkpoint("files-copied")
        write_json_atomic(staging / MANIFEST_FILE, manifest)
        checkpoint("manifest-written")
        os.rename(staging, self.folder / VERSIONS_DIR / version)
        checkpoint("version-published")

    def switch(self, version: str) -> None:
        # The course's names link through `current` and never change once made, so they are never
        # half-switched; a plain file left by a course-style deployment is replaced by its link.
        for name in PUBLISHED_FILES:
            _replace_link(self.folder / name, str(Path(CURRENT_LINK) / name), keep_same=True)
        checkpoint("links-ensured")
        _replace_link(self.folder / CURRENT_LINK, str(Path(VERSIONS_DIR) / version))
        fsync_dir(self.folder)

    def remove_version(self, version: str) -> None:
        shutil.rmtree(self.folder / VERSIONS_DIR / version, ignore_errors=True)

    def deployment_log(self) -> list[dict]:
        return read_jsonl(self.folder / DEPLOYMENT_LOG)

    def record(self, entry: dict) -> None:
        append_jsonl(self.folder / DEPLOYMENT_LOG, entry)

    def checked_files(self, version: str | None) -> list[dict]:
        # Kept in production, not beside one config's logs: the practice and the production configs
        # share production, and a check (or a rollback) made under one must hold for the other.
        checked = read_json(self.folder / CHECKED_FILE)
        if checked.get("version") != version or not isinstance(checked.get("files"), list):
            return []
        return [f for f in checked["files"] if isinstance(f, dict) and f.get("sha256")]

    def remember_checked(self, version: str | None, prints: dict | list) -> None:
        items = (
            [{"name": name, **fingerprint} for name, fingerprint in prints.items()]
            if isinstance(prints, dict)
            else list(prints)
        )
        files = {f["sha256"]: f for f in self.checked_files(version)}
        files.update((f["sha256"], f) for f in items if f.get("sha256"))
        self._write_checked(version, list(files.values()), self.held_model_config(version))

    def held_model_config(self, version: str | None) -> dict | None:
        # Beside the checked files: what production weighed against the deployed version, gone with it.
        checked = read_json(self.folder / CHECKED_FILE)
        held = checked.get("held_model_config")
        return held if checked.get("version") == version and isinstance(held, dict) else None

    def hold_model_config(self, version: str | None, model_config: dict) -> None:
        self._write_checked(version, self.checked_files(version), model_config)

    def _write_checked(self, version: str | None, files: list[dict], held: dict | None) -> None:
        checked: dict = {"version": version, "files": files}
        if held is not None:
            checked["held_model_config"] = held
        write_json_atomic(self.folder / CHECKED_FILE, checked)

    def change_token(self) -> Hashable:
        # One readlink and two stats; ctime is in the key because `cp -p` restores an mtime, never a ctime.
        try:
            target = os.readlink(self.folder / CURRENT_LINK)
        except OSError:  # no `current`: a change like any other
            return None
        return target, *(_stat_token(self.folder / CURRENT_LINK / name) for name in (MODEL_FILE, MANIFEST_FILE))

    def deployment_log_token(self) -> Hashable:
        return _stat_token(self.folder / DEPLOYMENT_LOG)

    def remove_temp_files(self) -> list[str]:
        return [str(path) for path in remove_stale_temp_files(self.folder, self.folder / VERSIONS_DIR)]


def _replace_link(link: Path, target: str, keep_same: bool = False) -> None:
    """Make `link` a symlink to `target` with one rename (left alone when `keep_same` and it already is)."""
    try:
        if keep_same and os.readlink(link) == target:
            return
    except FileNotFoundError:
        pass
    except OSError as exc:  # a regular file: readlink gives EINVAL
        if exc.errno != errno.EINVAL:
            raise
    tmp_link = link.parent / f".{link.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(target, tmp_link)
    os.replace(tmp_link, link)


def _stat_token(path: Path) -> tuple | None:
    """What changes whenever a file is written, replaced or restored (ctime included); None: no file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def open_production(location: Path | str) -> ProductionStore:
    """The store for a production location (a local folder; the one place a new backend is chosen)."""
    return LocalProductionStore(location)


def production_store(config: Config) -> ProductionStore:
    """The store of a config's prod_deployment_path."""
    return open_production(config.prod_folder)
