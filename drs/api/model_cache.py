"""What the API keeps in memory between requests: the deployed model, and values computed from files."""

from __future__ import annotations

import logging
import os
import threading

from drs.api.errors import ApiError
from drs.production import DeployedModel, ModelUnavailable, ProductionStore

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

    A request reads production's change token (ProductionStore.change_token: for a
    local folder one readlink and two stats). Any token but the one last checked,
    one seen before included (`cp -p` restores an mtime, never a ctime), loads
    production again with ProductionStore.load_model (sha256 against the manifest,
    then the same bytes unpickled). When that fails (a tampered file, no `current`), the model
    held keeps serving and `problem` says why; with none held, requests get 503.
    """

    def __init__(self, store: ProductionStore):
        self.store = store
        self.deployed: DeployedModel | None = None
        self.problem: str | None = None
        self._checked_key: object = object()  # equal to no production key: the first request checks
        self._lock = threading.Lock()

    def _production_key(self):
        return self.store.change_token()

    def get(self) -> DeployedModel:
        """The deployed model; ApiError 503 when none is held."""
        if self._production_key() != self._checked_key:
            with self._lock:
                key = self._production_key()
                if key != self._checked_key:
                    self._check(key)
        deployed = self.deployed
        if deployed is None:
            raise ApiError(503, self.problem or f"no model deployed in {self.store.location}")
        return deployed

    def current(self) -> tuple[DeployedModel | None, str | None]:
        """(the model served or None, the problem production's last check found or None); never raises."""
        try:
            return self.get(), self.problem
        except ApiError:
            return None, None

    def _check(self, key) -> None:
        try:
            deployed = self.store.load_model()
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

    def get(self, name: str, paths, compute, token=None):
        """The value `compute()` gave for `name` while `paths` (files) were as they are now and `token`
        (e.g. a store's change token) is the same."""
        key = (token, *((str(path), stat_key(path)) for path in paths))
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
        return value
