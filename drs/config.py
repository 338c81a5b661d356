"""The config file, loaded once and checked: `load_config` gives a `Config` with every folder resolved
against the config file's folder, and the data's `Schema` (one source of truth for the columns).
File names live in drs/files.py; drift settings are checked by the drift-test registry.

Nothing here imports pandas, scikit-learn or matplotlib: the cron tick that
finds no new data must stay cheap, and it goes through this module.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from drs import drift_registry
from drs.files import TEST_DATA_FILE

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_DIR / "config.json"


@dataclass(frozen=True)
class Schema:
    """The one source of truth for the data's columns: ingestion, training, scoring, drift,
    diagnostics, reports and the API all read the columns from here (``config.schema``).

    ``labels``: the target's two values when known in advance (the course's 0 and 1, checked per
    file); None: whatever two values the data holds (checked across the files, in name order).
    """

    id_column: str | None = "corporation"
    target_column: str = "exited"
    positive_label: int | float | str = 1
    numeric_features: tuple[str, ...] = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    categorical_features: tuple[str, ...] = ()
    labels: tuple | None = (0, 1)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric_features, *self.categorical_features)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column ingestion keeps, in order: the id (if any), the features, the target."""
        return ((self.id_column,) if self.id_column else ()) + (*self.features, self.target_column)

    def as_record(self) -> dict:
        """The schema as the config writes it (kept in each deployment's manifest)."""
        return {
            "id_column": self.id_column,
            "target_column": self.target_column,
            "positive_label": self.positive_label,
            "numeric_features": list(self.numeric_features),
            "categorical_features": list(self.categorical_features),
        }

    @property
    def numeric_target(self) -> bool:
        """Whether the target is read as numbers (the positive label is one) rather than as text."""
        return not isinstance(self.positive_label, str)


COURSE_SCHEMA = Schema()
# The course schema's names, for the course's own data and generator.
FEATURE_COLUMNS = COURSE_SCHEMA.features
ALL_COLUMNS = COURSE_SCHEMA.columns
SCHEMA_KEYS = ("id_column", "target_column", "positive_label", "numeric_features", "categorical_features")
DEFAULT_ESTIMATOR = "sklearn.linear_model.LogisticRegression"

FOLDER_KEYS = {  # config key -> Config field; each a folder path, relative to the config file's folder
    "input_folder_path": "input_folder",
    "output_folder_path": "output_folder",
    "test_data_path": "test_data_folder",
    "output_model_path": "model_folder",
    "prod_deployment_path": "prod_folder",
    "log_folder_path": "log_folder",
}
REQUIRED_KEYS = tuple(key for key in FOLDER_KEYS if key != "log_folder_path")
# How a categorical feature's text is normalised (drs/categories.py): trimmed and re-spaced, or that and case-folded.
CATEGORY_MODES = ("trim", "casefold")


MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _number(low: float, integer: bool = False, nullable: bool = False, above: bool = False):
    """A check for a number >= low (or > low when `above`), optionally an integer, optionally null."""

    def check(value) -> bool:
        if value is None:
            return nullable
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return False
        return math.isfinite(value) and (value > low if above else value >= low)

    return check


# The optional scalar settings: key -> (default, check, what a valid value is).
OPTIONS = {
    "keep_versions": (5, _number(2, integer=True), "an integer >= 2"),
    "promotion_margin": (None, _number(0, nullable=True), "a number >= 0 or null"),
    "max_request_bytes": (16 * 1024 * 1024, _number(0, integer=True, above=True), "a positive integer"),
    "api_url": (
        "http://127.0.0.1:8000",
        lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
        "an http(s) URL",
    ),
    # The run history and the tick's log are rotated at this size, their last `log_backups` old parts kept.
    "history_max_bytes": (8 * 1024**2, _number(0, integer=True, above=True), "a positive integer"),
    "log_max_bytes": (8 * 1024**2, _number(0, integer=True, above=True), "a positive integer"),
    "log_backups": (10, _number(1, integer=True), "an integer >= 1"),
    "max_input_file_bytes": (1024**3, _number(0, integer=True, above=True), "a positive integer"),
    "lock_wait_seconds": (60.0, _number(0), "a number >= 0"),
    # A tick that finds the lock held longer than this fails instead of skipping: the holder is stuck.
    "lock_stale_seconds": (3600.0, _number(0, above=True), "a positive number of seconds"),
    # Every call to the API together (apicalls.py, a deploying tick): a slow peer cannot hold the lock.
    "api_timeout_seconds": (60.0, _number(0, above=True), "a positive number of seconds"),
    # Rows of a CSV (a `filepath` or a body) or records of a JSON body one POST /prediction may carry.
    "max_request_rows": (100_000, _number(0, integer=True, above=True), "a positive integer"),
    # scikit-learn's OneHotEncoder max_categories and min_frequency per categorical feature: the rarer
    # categories share one column, so an id-like feature cannot make the encoding as wide as the data.
    "max_categories": (100, _number(2, integer=True, nullable=True), "an integer >= 2 or null"),
    "min_frequency": (
        None,
        lambda v: v is None or _number(1, integer=True)(v) or (isinstance(v, float) and 0 < v < 1),
        "an integer >= 1 (a count), a number between 0 and 1 (a share of the rows) or null",
    ),
    # The largest dense encoded matrix an estimator that takes no sparse input is given: more is refused.
    "max_dense_bytes": (2 * 1024**3, _number(0, integer=True, above=True), "a positive integer"),
    # More spellings of a missing value, in every column (a text column's only other one is the empty cell).
    "na_values": (
        (),
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(item, str) and item for item in v),
        "a list of non-empty strings",
    ),
    # StandardScaler on the numeric features after imputation (lbfgs converges on unscaled credit data
    # only with many more iterations); off by default, so the course's model stays the course's.
    "scale_numeric": (False, lambda v: isinstance(v, bool), "true or false"),
    # A positive-class probability at or above which a row is predicted positive (scikit-learn's
    # FixedThresholdClassifier); null: the estimator's own decision.
    "decision_threshold": (
        None,
        lambda v: v is None or (_number(0)(v) and 0 < v < 1),
        "a probability strictly between 0 and 1, or null",
    ),
    # " owner " and "owner" are one category; "casefold" also makes "Owner" and its full-width form that one.
    "normalize_categories": (
        "trim",
        lambda v: isinstance(v, str) and v in CATEGORY_MODES,
        " or ".join(f'"{mode}"' for mode in CATEGORY_MODES),
    ),
    # Modules beyond sklearn an `estimator` may come from: naming one imports (runs) it, so it is opted into.
    "estimator_modules": (
        (),
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(m, str) and MODULE_NAME.fullmatch(m) for m in v),
        'a list of module names, e.g. ["xgboost"]',
    ),
}
OPTIONAL_KEYS = (
    "log_folder_path",
    "schema",
    "estimator",
    "training",
    "drift",
    "alerts",
    "metrics_textfile",
    "api_token",
    "metrics_public",
    "token_in_query",
    *OPTIONS,
)
ALERT_EVENTS = ("drift", "deployed", "not_promoted", "failed", "recovered")
DEFAULT_ALERTS = {"webhook_url": None, "events": list(ALERT_EVENTS), "cooldown_minutes": 60}
# The API token may come from the environment, which wins over the config file.
API_TOKEN_ENV = "DRS_API_TOKEN"

# The course's LogisticRegression, written for the current scikit-learn API:
# `multi_class` is gone (binary target: it never mattered) and the L2 penalty
# is expressed as l1_ratio=0, which is what `penalty="l2"` meant.
DEFAULT_TRAINING = {
    "C": 1.0,
    "l1_ratio": 0.0,
    "fit_intercept": True,
    "intercept_scaling": 1,
    "solver": "liblinear",
    "max_iter": 100,
    "tol": 0.0001,
    "random_state": 0,
    "class_weight": None,
    "dual": False,
    "warm_start": False,
}

# The built-in drift tests and their settings' defaults ("trigger_tests": which tests trigger a retrain,
# "any" or "all" of them by "trigger_mode"); drs.drift_registry lists any test registered later.
DRIFT_TESTS = drift_registry.registered_names()
DEFAULT_DRIFT = drift_registry.default_settings()


class ConfigError(Exception):
    """The configuration file is missing or invalid (exit code 2)."""


class PipelineError(Exception):
    """An expected problem with inputs or state: reported in one line, exit 1."""


@dataclass(frozen=True)
class Config:
    """A validated configuration with every path resolved to an absolute path."""

    path: Path
    input_folder: Path
    output_folder: Path
    test_data_folder: Path
    model_folder: Path
    prod_folder: Path
    log_folder: Path
    schema: Schema
    # The classifier's dotted import path; drs/train.py imports it (this module stays light).
    estimator: str
    training: dict
    drift: dict
    # The optional settings, each with its default and check in OPTIONS (the one place defaults live).
    keep_versions: int
    promotion_margin: float | None
    max_request_bytes: int
    api_url: str
    history_max_bytes: int
    log_max_bytes: int
    log_backups: int
    # An input file larger than this is rejected unread (a runaway export must not stall every tick).
    max_input_file_bytes: int
    # How long a hand-run stage waits for a running tick before giving up.
    lock_wait_seconds: float
    lock_stale_seconds: float
    api_timeout_seconds: float
    max_request_rows: int
    max_categories: int | None
    min_frequency: int | float | None
    max_dense_bytes: int
    na_values: tuple[str, ...]
    scale_numeric: bool
    decision_threshold: float | None
    # "trim" or "casefold": how categorical features' text is normalised wherever it is read.
    normalize_categories: str
    # Top-level packages (or dotted modules) an `estimator` may be imported from besides sklearn.
    estimator_modules: tuple[str, ...]
    # Alerts: {"webhook_url", "events", "cooldown_minutes"}; None without a webhook.
    alerts: dict | None
    metrics_textfile: Path | None
    api_token: str | None
    metrics_public: bool
    token_in_query: bool

    @property
    def test_data_file(self) -> Path:
        return self.test_data_folder / TEST_DATA_FILE

    @property
    def data_folders(self) -> tuple[Path, ...]:
        """Folders the API may read a client-named CSV from."""
        return (self.input_folder, self.output_folder, self.test_data_folder)

    def with_paths(self, **paths: Path) -> Config:
        """A copy with some folders replaced (used to time stages off to the side)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(paths)
        return Config(**values)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    config_path = (Path(path) if path is not None else DEFAULT_CONFIG).expanduser().absolute()
    raw = _read_object(config_path)
    _check_keys(raw, config_path)
    values = {**_folders(raw, config_path), **_options(raw, config_path)}
    for key in ("schema", "training", "drift"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"{config_path}: '{key}' must be an object, got {raw[key]!r}")
    drift = _validate_drift(raw.get("drift", {}), config_path)
    schema = _schema(raw.get("schema"), config_path)
    estimator = raw.get("estimator", DEFAULT_ESTIMATOR)
    if not isinstance(estimator, str) or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", estimator):
        raise ConfigError(
            f"{config_path}: 'estimator' must be a dotted import path such as "
            f'"{DEFAULT_ESTIMATOR}", got {estimator!r}'
        )
    # The course's parameters belong to its LogisticRegression; another estimator starts from its own defaults.
    training = {**(DEFAULT_TRAINING if estimator == DEFAULT_ESTIMATOR else {}), **raw.get("training", {})}
    values.update(_operations(raw, config_path))
    _check_textfile_outside(values["metrics_textfile"], values, config_path)
    return Config(path=config_path, schema=schema, estimator=estimator, training=training, drift=drift, **values)


def _read_object(config_path: Path) -> dict:
    """The config file's JSON object."""
    try:
        text = config_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: top level must be a JSON object")
    return raw


def _check_keys(raw: dict, config_path: Path) -> None:
    """Every required key present, no unknown one: a misspelt optional key would otherwise be
    ignored in silence ("_"-prefixed keys are comments)."""
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    unknown = sorted(key for key in raw if key not in known and not key.startswith("_"))
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise ConfigError(
            f"{config_path}: missing key(s): {', '.join(missing)}"
            + (f" (unknown key(s) given: {', '.join(unknown)})" if unknown else "")
        )
    if unknown:
        raise ConfigError(f"{config_path}: unknown key(s): {', '.join(unknown)} (known: {', '.join(known)})")


def _folders(raw: dict, config_path: Path, only: str | None = None) -> dict[str, Path]:
    """Config field -> absolute folder, each resolved against the config file's folder (`only`: just that one)."""
    folders = {}
    for key, name in FOLDER_KEYS.items():
        if only is not None and key != only:
            continue
        value = raw.get(key, "logs" if key == "log_folder_path" else None)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{config_path}: '{key}' must be a non-empty string (a folder path), got {value!r}")
        folders[name] = (config_path.parent / Path(value).expanduser()).resolve()
    return folders


def _options(raw: dict, config_path: Path) -> dict:
    """The optional scalar settings of OPTIONS, checked, with their defaults."""
    values: dict = {}
    for key, (default, check, what) in OPTIONS.items():
        value = raw.get(key, default)
        if not check(value):
            # A URL's user name and password never reach a log or a mail from cron.
            shown = re.sub(r"//[^/@]*@", "//***@", value) if isinstance(value, str) else value
            raise ConfigError(f"{config_path}: '{key}' must be {what}, got {shown!r}")
        values[key] = float(value) if isinstance(default, float) and value is not None else value
        if isinstance(default, tuple):
            values[key] = tuple(value or ())
    if values["promotion_margin"] is not None:
        values["promotion_margin"] = float(values["promotion_margin"])
    values["api_url"] = values["api_url"].rstrip("/")
    return values


def _operations(raw: dict, where: Path) -> dict:
    """The optional alerting, metrics and API-token settings, checked."""
    values: dict = {"alerts": _alerts(raw, where), "metrics_textfile": _metrics_textfile(raw, where)}
    from_env = os.environ.get(API_TOKEN_ENV)
    token = from_env or raw.get("api_token")
    # HTTP headers carry ASCII: anything else, or spaces a client would trim, could never match.
    if token is not None and (not isinstance(token, str) or not re.fullmatch(r"[\x21-\x7e]+", token)):
        source = f"{API_TOKEN_ENV} in the environment" if from_env else f"{where}: 'api_token'"
        raise ConfigError(f"{source} must be printable ASCII without spaces (value not shown)")
    values["api_token"] = token
    for key in ("metrics_public", "token_in_query"):
        if not isinstance(raw.get(key, False), bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {raw[key]!r}")
        values[key] = raw.get(key, False)
    return values


def _alerts(raw: dict, where: Path) -> dict | None:
    """The "alerts" section with its defaults filled in, checked; None when there is none."""
    alerts = raw.get("alerts")
    if alerts is None:
        return None
    if not isinstance(alerts, dict):
        raise ConfigError(f"{where}: 'alerts' must be an object, got {alerts!r}")
    unknown = sorted(set(alerts) - set(DEFAULT_ALERTS))
    if unknown:
        raise ConfigError(f"{where}: unknown alerts setting(s): {', '.join(unknown)}")
    alerts = {**DEFAULT_ALERTS, **alerts}
    url, events = alerts["webhook_url"], alerts["events"]
    if not _http_url(url):
        # Never echoed: a webhook URL's path is its secret.
        raise ConfigError(
            f"{where}: alerts.webhook_url must be an http(s) URL with a host "
            "(its value is not shown: it may hold a secret)"
        )
    if not isinstance(events, list) or any(event not in ALERT_EVENTS for event in events):
        raise ConfigError(f"{where}: alerts.events must be a list drawn from {', '.join(ALERT_EVENTS)}")
    if not _number(0)(alerts["cooldown_minutes"]):
        raise ConfigError(f"{where}: alerts.cooldown_minutes must be a number >= 0, got {alerts['cooldown_minutes']!r}")
    return alerts


def _http_url(url) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _metrics_textfile(raw: dict, where: Path) -> Path | None:
    """The "metrics_textfile" path, resolved against the config file's folder; None when there is none."""
    textfile = raw.get("metrics_textfile")
    if textfile is None:
        return None
    if not isinstance(textfile, str) or not textfile.strip():
        raise ConfigError(f"{where}: 'metrics_textfile' must be a file path, got {textfile!r}")
    path = (where.parent / Path(textfile).expanduser()).resolve()
    # node_exporter reads *.prom only; any other name is likely a file of ours that each tick would overwrite.
    if path.suffix != ".prom":
        raise ConfigError(f"{where}: 'metrics_textfile' must name a .prom file (node_exporter's textfile), got {path}")
    return path


def _check_textfile_outside(textfile: Path | None, folders: dict[str, Path], where: Path) -> None:
    """A textfile inside a folder the pipeline reads or writes would be re-ingested, served or overwritten."""
    for key, folder in FOLDER_KEYS.items():
        if textfile is not None and folder in folders and textfile.is_relative_to(folders[folder]):
            raise ConfigError(f"{where}: 'metrics_textfile' {textfile} lies inside {key} ({folders[folder]})")


def load_operations(path: str | Path | None = None) -> dict:
    """Just the alerting and metrics settings of a config file, for a tick whose config does not load.

    Returns {"alerts": dict or None, "metrics_textfile": Path or None, "log_folder": Path or None}:
    each one None when the file cannot be read as a JSON object or that setting is missing or
    invalid (load_config has already said what is wrong). Never raises.
    """
    config_path = (Path(path) if path is not None else DEFAULT_CONFIG).expanduser().absolute()
    found: dict = {"alerts": None, "metrics_textfile": None, "log_folder": None}
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return found
    if not isinstance(raw, dict):
        return found
    for key, read in (("alerts", _alerts), ("metrics_textfile", _metrics_textfile)):
        with contextlib.suppress(ConfigError):
            found[key] = read(raw, config_path)
    # A textfile the full config would refuse is not written either: it may lie in one of our folders.
    folders = {}
    for key in FOLDER_KEYS:
        with contextlib.suppress(ConfigError):
            folders.update(_folders(raw, config_path, only=key))
    try:
        _check_textfile_outside(found["metrics_textfile"], folders, config_path)
    except ConfigError:
        found["metrics_textfile"] = None
    folder = raw.get("log_folder_path", "logs")
    if isinstance(folder, str) and folder.strip():
        found["log_folder"] = (config_path.parent / Path(folder).expanduser()).resolve()
    return found


def _schema(raw: dict | None, where: Path) -> Schema:
    """The config's "schema" (None: the course schema), checked: one line naming what is wrong."""
    if raw is None:
        return COURSE_SCHEMA
    unknown = sorted(set(raw) - set(SCHEMA_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown schema key(s): {', '.join(unknown)} (known: {', '.join(SCHEMA_KEYS)})")
    missing = [key for key in ("target_column", "positive_label") if key not in raw]
    if missing:
        raise ConfigError(f"{where}: schema needs {' and '.join(missing)}")

    def name(key: str, value) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: schema.{key} must be a column name (a non-empty string), got {value!r}")
        return value

    def names(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise ConfigError(f"{where}: schema.{key} must be a list of column names, got {value!r}")
        return tuple(name(key, item) for item in value)

    id_column = raw.get("id_column")
    id_column = None if id_column is None else name("id_column", id_column)
    target = name("target_column", raw["target_column"])
    positive = _positive_label(raw["positive_label"], where)
    numeric, categorical = names("numeric_features"), names("categorical_features")
    if not numeric and not categorical:
        raise ConfigError(f"{where}: schema names no feature: list numeric_features and/or categorical_features")
    if target in numeric or target in categorical:
        raise ConfigError(f"{where}: schema lists the target column {target!r} as a feature")
    columns = ((id_column,) if id_column else ()) + numeric + categorical + (target,)
    twice = next((column for i, column in enumerate(columns) if column in columns[:i]), None)
    if twice is not None:
        raise ConfigError(f"{where}: schema names column {twice!r} twice")
    course = Schema()
    labels = (
        course.labels
        if (id_column, target, numeric, categorical)
        == (course.id_column, course.target_column, course.numeric_features, ())
        and positive == 1
        else None
    )
    return Schema(id_column, target, positive, numeric, categorical, labels)


def _positive_label(positive, where: Path) -> int | float | str:
    if (
        isinstance(positive, bool)
        or not isinstance(positive, (int, float, str))
        or positive == ""
        or (isinstance(positive, float) and not math.isfinite(positive))
    ):
        raise ConfigError(f"{where}: schema.positive_label must be a number or a non-empty string, got {positive!r}")
    return positive


def _validate_drift(drift: dict, where: Path) -> dict:
    """The config's "drift" section with its defaults, each setting checked by its registered test."""
    try:
        return drift_registry.validate_settings(drift)
    except drift_registry.DriftSettingsError as exc:
        raise ConfigError(f"{where}: {exc}") from None
