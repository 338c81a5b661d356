"""What the API keeps in memory between requests: the deployed model, and values computed from files."""

from __future__ import annotations

import logging
import os
import threading

from drs.api.errors import ApiError
from drs.categories import known_categories
from drs.config import Schema
from drs.production import DeployedModel, ModelUnavailable, ProductionStore, trained_schema

log = logging.getLogger("api")


def stat_key(path) -> tuple | None:
    """What changes whenever a file is written, replaced or restored (ctime included); None: no file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def schema_difference(manifest: dict, schema: Schema) -> str | None:
    """Why a deployed version's model cannot answer for `schema` (what differs), or None when it was trained
    for exactly that schema. The order counts: a model of numeric features takes a bare float array."""
    trained, expected = trained_schema(manifest), schema.as_record()
    if trained == expected:
        return None
    differences = "; ".join(
        f"{key} {trained.get(key)!r} in the model, {expected[key]!r} in the config"
        for key in expected
        if trained.get(key) != expected[key]
    )
    return (
        f"the deployed model {manifest.get('version', '?')} was trained for another schema than this API's config "
        f"({differences[:300]}): the next tick retrains it, or restart the API on the config the ticks use"
    )


class ModelCache:
    """Holds the deployed model in memory; checks production again whenever it changes.

    A request reads production's change token (ProductionStore.change_token: for a
    local folder one readlink and two stats). Any token but the one last checked,
    one seen before included (`cp -p` restores an mtime, never a ctime), loads
    production again with ProductionStore.load_model (sha256 against the manifest,
    then the same bytes unpickled). When that fails (a tampered file, no `current`), the model
    held keeps serving and `problem` says why; with none held, requests get 503.

    Each model loaded is compared with `schema` (the API's config): a model trained for another
    one (other features, or the same in another order) is held but answers no prediction (409,
    `mismatch`), as a float array in another column order would be answered wrong in silence.

    The categories each model was trained on are read from it once, as it is loaded (`known`), so
    a request that names one it never saw is warned about at the cost of a look-up.
    """

    def __init__(self, store: ProductionStore, schema: Schema):
        self.store = store
        self.schema = schema
        self.deployed: DeployedModel | None = None
        self.problem: str | None = None
        # (the model last loaded, why it does not take the config's schema or None): set in one assignment.
        self._schema_check: tuple[DeployedModel | None, str | None] = (None, None)
        # (the model last loaded, its categories by feature): set in one assignment.
        self._known: tuple[DeployedModel | None, dict[str, frozenset]] = (None, {})
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

    def serving(self) -> DeployedModel:
        """The deployed model, to predict with; ApiError 503 when none is held, 409 when it was trained
        for another schema than the config's."""
        deployed = self.get()
        mismatch = self.mismatch(deployed)
        if mismatch:
            raise ApiError(409, mismatch)
        return deployed

    def mismatch(self, deployed: DeployedModel) -> str | None:
        """Why `deployed` does not take the config's schema, or None."""
        held, why = self._schema_check
        return why if held is deployed else schema_difference(deployed.manifest, self.schema)

    def known(self, deployed: DeployedModel) -> dict[str, frozenset]:
        """Feature -> the categories `deployed` was trained on (see drs.categories.known_categories)."""
        held, known = self._known
        return known if held is deployed else known_categories(deployed.model)

    def current(self) -> tuple[DeployedModel | None, str | None, str | None]:
        """(the model held or None, the problem production's last check found or None, why the model held
        does not take the config's schema or None); never raises."""
        try:
            deployed = self.get()
        except ApiError:
            return None, None, None
        return deployed, self.problem, self.mismatch(deployed)

    def _check(self, key) -> None:
        try:
            deployed = self.store.load_model()
        except ModelUnavailable as exc:
            self.problem = str(exc)
            log.error("%s%s", exc, "; still serving " + self.deployed.version if self.deployed else "")
        else:
            mismatch = schema_difference(deployed.manifest, self.schema)
            self._schema_check = (deployed, mismatch)
            self._known = (deployed, known_categories(deployed.model))
            self.deployed, self.problem = deployed, None
            if mismatch:
                log.error("holding model %s but answering no prediction: %s", deployed.version, mismatch)
            else:
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
