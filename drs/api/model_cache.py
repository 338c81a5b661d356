"""What the API keeps in memory between requests: the deployed model, and values computed from files."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from drs.api.errors import ApiError
from drs.config import MANIFEST_FILE, MODEL_FILE
from drs.deploy import DeployedModel, ModelUnavailable, load_deployed_model
from drs.storage import CURRENT_LINK

log = logging.getLogger("api")


def stat_key(path) -> tuple | None:
    """What changes whenever a file is written, replaced or restored (ctime included); None: no file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


class ModelCache:
    """Holds the deployed model in memory; checks production again whenever it changes.

    A request reads production's key (one readlink, two stats): the target of
    `current`, the inode, size, mtime and ctime of its model and manifest. Any
    key but the one last checked, one seen before included (`cp -p` restores
    an mtime, never a ctime), loads production again with
    deploy.load_deployed_model (sha256 against the manifest, then the same
    bytes unpickled). When that fails (a tampered file, no `current`), the model
    held keeps serving and `problem` says why; with none held, requests get 503.
    """

    def __init__(self, prod_folder: Path):
        self.prod_folder = prod_folder
        self._link_path = os.path.join(prod_folder, CURRENT_LINK)
        self._file_paths = [os.path.join(prod_folder, CURRENT_LINK, name) for name in (MODEL_FILE, MANIFEST_FILE)]
        self.deployed: DeployedModel | None = None
        self.problem: str | None = None
        self._checked_key: object = object()  # equal to no production key: the first request checks
        self._lock = threading.Lock()

    def _production_key(self):
        try:
            return os.readlink(self._link_path), *map(stat_key, self._file_paths)
        except OSError:  # no `current`: checked like any other change
            return None

    def get(self) -> DeployedModel:
        """The deployed model; ApiError 503 when none is held."""
        if self._production_key() != self._checked_key:
            with self._lock:
                key = self._production_key()
                if key != self._checked_key:
                    self._check(key)
        deployed = self.deployed
        if deployed is None:
            raise ApiError(503, self.problem or f"no model deployed in {self.prod_folder}")
        return deployed

    def current(self) -> tuple[DeployedModel | None, str | None]:
        """(the model served or None, the problem production's last check found or None); never raises."""
        try:
            return self.get(), self.problem
        except ApiError:
            return None, None

    def _check(self, key) -> None:
        try:
            deployed = load_deployed_model(self.prod_folder)
        except ModelUnavailable as exc:
            self.problem = str(exc)
            log.error("%s%s", exc, "; still serving " + self.deployed.version if self.deployed else "")
        else:
            self.deployed, self.problem = deployed, None
            log.info("serving model %s", deployed.version)
        # Read before the files were: a change made during the check shows as a new key next time.
        self._checked_key = key


class FileKeyedCache:
    """Memoise a value computed from files, recomputed when any file's stat changes."""

    def __init__(self):
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, name: str, paths, compute):
        """The value `compute()` gave for `name` while `paths` (files) were as they are now."""
        key = tuple((str(path), stat_key(path)) for path in paths)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
        return value
