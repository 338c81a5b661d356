"""Configuration and schema shared by every stage: column names, file names, the config file.

Nothing here imports pandas, scikit-learn or matplotlib: the cron tick that
finds no new data must stay cheap, and it goes through this module.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PROJECT_DIR / "config.json"

# --- schema: the one source of truth for column names and order -------------
ID_COLUMN = "corporation"
FEATURE_COLUMNS = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
TARGET_COLUMN = "exited"
ALL_COLUMNS = (ID_COLUMN, *FEATURE_COLUMNS, TARGET_COLUMN)

# --- file names the course made public: users and tools look for these ------
FINAL_DATA_FILE = "finaldata.csv"
INGESTED_RECORD_FILE = "ingestedfiles.txt"
INGESTED_DETAIL_FILE = "ingestedfiles.json"
REFERENCE_SAMPLE_FILE = "referencedata.csv"
REFERENCE_SAMPLE_ROWS = 50_000
TRAINING_ROWS_FILE = "trainingrows.npy"  # a key of each training row, kept with each deployed version
TEST_DATA_FILE = "testdata.csv"
MODEL_FILE = "trainedmodel.pkl"
MODEL_RECORD_FILE = "trainedmodel.json"  # the sha256 training recorded for MODEL_FILE
SCORE_FILE = "latestscore.txt"
MANIFEST_FILE = "manifest.json"
CONFUSION_MATRIX_FILE = "confusionmatrix.png"
REPORT_FILE = "report.pdf"
API_RETURNS_FILE = "apireturns.txt"
DIAGNOSTICS_FILE = "diagnostics.json"
HISTORY_FILE = "history.jsonl"
LOG_FILE = "fullprocess.log"
LOCK_FILE = "fullprocess.lock"
REPORTS_RECORD_FILE = "reports.json"  # which deployed version the reports describe

FOLDER_KEYS = {  # config key -> Config field; each a folder path, relative to the config file's folder
    "input_folder_path": "input_folder",
    "output_folder_path": "output_folder",
    "test_data_path": "test_data_folder",
    "output_model_path": "model_folder",
    "prod_deployment_path": "prod_folder",
    "log_folder_path": "log_folder",
}
REQUIRED_KEYS = tuple(key for key in FOLDER_KEYS if key != "log_folder_path")


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
    "api_url": ("http://127.0.0.1:8000", lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
                "an http(s) URL"),
    "max_input_file_bytes": (1024 ** 3, _number(0, integer=True, above=True), "a positive integer"),
    "lock_wait_seconds": (60.0, _number(0), "a number >= 0"),
}
OPTIONAL_KEYS = ("log_folder_path", "training", "drift", *OPTIONS)

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

DRIFT_TESTS = ("raw", "parametric", "nonparametric", "ks", "psi")

DEFAULT_DRIFT = {
    # Which tests trigger a retrain: "any" of `tests`, "all" of them.
    "trigger_tests": ["raw"],
    "trigger_mode": "any",
    "ks_pvalue": 0.01,
    "psi_bins": 10,
    "psi_watch": 0.1,
    "psi_drift": 0.25,
    "min_samples": 30,
    "min_history": 3,
}


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
    training: dict = field(default_factory=dict)
    drift: dict = field(default_factory=dict)
    keep_versions: int = 5
    promotion_margin: float | None = None
    max_request_bytes: int = 16 * 1024 * 1024
    api_url: str = "http://127.0.0.1:8000"
    # An input file larger than this is rejected unread (a runaway export must not stall every tick).
    max_input_file_bytes: int = 1024 ** 3
    # How long a hand-run stage waits for a running tick before giving up.
    lock_wait_seconds: float = 60.0
    raw: dict = field(default_factory=dict)

    @property
    def test_data_file(self) -> Path:
        return self.test_data_folder / TEST_DATA_FILE

    @property
    def data_folders(self) -> tuple[Path, ...]:
        """Folders the API may read a client-named CSV from."""
        return (self.input_folder, self.output_folder, self.test_data_folder)

    def with_paths(self, **paths: Path) -> "Config":
        """A copy with some folders replaced (used to time stages off to the side)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(paths)
        return Config(**values)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG
    config_path = config_path.expanduser().absolute()
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

    # A misspelt optional key would otherwise be ignored in silence; "_"-prefixed keys are comments.
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    unknown = sorted(key for key in raw if key not in known and not key.startswith("_"))
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise ConfigError(f"{config_path}: missing key(s): {', '.join(missing)}"
                          + (f" (unknown key(s) given: {', '.join(unknown)})" if unknown else ""))
    if unknown:
        raise ConfigError(f"{config_path}: unknown key(s): {', '.join(unknown)} (known: {', '.join(known)})")

    values = {}
    for key, name in FOLDER_KEYS.items():
        value = raw.get(key, "logs" if key == "log_folder_path" else None)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{config_path}: '{key}' must be a non-empty string (a folder path), got {value!r}")
        values[name] = (config_path.parent / Path(value).expanduser()).resolve()
    for key, (default, check, what) in OPTIONS.items():
        value = raw.get(key, default)
        if not check(value):
            raise ConfigError(f"{config_path}: '{key}' must be {what}, got {value!r}")
        values[key] = float(value) if isinstance(default, float) and value is not None else value
    if values["promotion_margin"] is not None:
        values["promotion_margin"] = float(values["promotion_margin"])
    values["api_url"] = values["api_url"].rstrip("/")

    for key in ("training", "drift"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"{config_path}: '{key}' must be an object, got {raw[key]!r}")
    unknown = sorted(set(raw.get("drift", {})) - set(DEFAULT_DRIFT))
    if unknown:
        raise ConfigError(f"{config_path}: unknown drift setting(s): {', '.join(unknown)}")
    drift = {**DEFAULT_DRIFT, **raw.get("drift", {})}
    _validate_drift(drift, config_path)
    return Config(path=config_path, training={**DEFAULT_TRAINING, **raw.get("training", {})}, drift=drift,
                  raw=raw, **values)


def _validate_drift(drift: dict, where: Path) -> None:
    tests = drift["trigger_tests"]
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, list) or not tests or any(t not in DRIFT_TESTS for t in tests):
        raise ConfigError(
            f"{where}: drift.trigger_tests must be a non-empty list drawn from {', '.join(DRIFT_TESTS)}"
        )
    drift["trigger_tests"] = list(tests)
    if drift["trigger_mode"] not in ("any", "all"):
        raise ConfigError(f"{where}: drift.trigger_mode must be \"any\" or \"all\"")
    checks = {  # setting -> (check, what a valid value is)
        "ks_pvalue": (_number(0, above=True), "a p-value between 0 and 1"),
        "psi_watch": (_number(0, above=True), "a positive number"),
        "psi_drift": (_number(0, above=True), "a positive number"),
        "psi_bins": (_number(2, integer=True), "an integer >= 2"),
        "min_samples": (_number(2, integer=True), "an integer >= 2"),
        "min_history": (_number(2, integer=True), "an integer >= 2"),
    }
    for key, (check, what) in checks.items():
        if not check(drift[key]) or (key == "ks_pvalue" and drift[key] >= 1):
            raise ConfigError(f"{where}: drift.{key} must be {what}, got {drift[key]!r}")
    if drift["psi_watch"] > drift["psi_drift"]:
        raise ConfigError(f"{where}: drift.psi_watch must not be above drift.psi_drift")
