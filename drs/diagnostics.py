"""Diagnostics: predictions, data summary, missing data, stage timings, outdated packages.

Every function reads; none changes what production or ingestion uses, and
none re-runs a stage: ``execution_time()`` answers from the run history.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from drs.config import COURSE_SCHEMA, PROJECT_DIR, Config, Schema, load_config
from drs.files import DIAGNOSTICS_FILE, HISTORY_FILE
from drs.history import TIMED_STAGES, HistoryLog, TickRecord, last_stage_timings
from drs.ingest import merge_multiple_dataframe, read_final_data
from drs.production import production_store
from drs.score import load_test_data
from drs.storage import write_json_atomic
from drs.train import feature_matrix, fit_model

log = logging.getLogger("diagnostics")

# DRS_PYPI_URL points the check at another index's JSON API (a mirror, or a dead one in tests).
PYPI_JSON_URL = "https://pypi.org/pypi/{package}/json"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements.txt"
NOT_CHECKED = "not checked: timed out"  # the note of a package the index did not answer about by the deadline
TOP_CATEGORIES = 20  # categories listed per categorical feature in the summary


def model_predictions(dataframe: pd.DataFrame | None = None, config: Config | None = None, deployed=None) -> list:
    """Predictions of the deployed model on `dataframe` (default: the test data), in the data's own
    labels (the course's 0/1 ints)."""

    config = config or load_config()
    if dataframe is None:
        dataframe = load_test_data(config)
    deployed = deployed or production_store(config).load_model()
    return deployed.model.predict(feature_matrix(dataframe, config.schema)).tolist()


def dataframe_summary(
    config: Config | pd.DataFrame | None = None, data: pd.DataFrame | None = None, schema: Schema | None = None
) -> dict[str, dict]:
    """Summary of each feature of finaldata.csv (or of `data`), in the schema's order.

    `config`: a Config, None (config.json), or the DataFrame itself (``dataframe_summary(df)``,
    as course solutions call it: the same as ``data=df``).
    Numeric feature: {"mean", "median", "std"} (None for no values). Categorical feature:
    {"counts": {category: rows} of the 20 most frequent (most frequent first, ties by name),
    "mode", "categories": how many distinct, "missing": rows without a value}.
    The schema: `schema`, else the config's, else the course's.
    """

    if isinstance(config, pd.DataFrame):
        if data is not None:
            raise TypeError("dataframe_summary: give the DataFrame once, first or as data=")
        config, data = None, config
    if data is None:
        config = config or load_config()
        data = read_final_data(config)
    if schema is None:
        schema = config.schema if config is not None else COURSE_SCHEMA
    summary = {}
    for column in schema.numeric_features:
        values = data[column]
        summary[column] = {stat: rounded(getattr(values, stat)()) for stat in ("mean", "median", "std")}
    for column in schema.categorical_features:
        summary[column] = _category_summary(data[column])
    return summary


def _category_summary(values: pd.Series, top: int = TOP_CATEGORIES) -> dict:
    """The `top` most frequent categories' counts, the mode, the number of categories, the missing count."""
    counts = values.value_counts()
    # Ties in name order, so the mode and the listed categories do not depend on row order.
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    return {
        "counts": {str(category): int(count) for category, count in counts.head(top).items()},
        "mode": str(counts.index[0]) if len(counts) else None,
        "categories": int(len(counts)),
        "missing": int(values.isna().sum()),
    }


def missing_data(config: Config | pd.DataFrame | None = None, data: pd.DataFrame | None = None) -> dict[str, float]:
    """Percent (0-100) of missing values in each column of finaldata.csv (or of `data`).

    `config`: a Config, None (config.json), or the DataFrame itself (``missing_data(df)``, as
    course solutions call it: the same as ``data=df``)."""

    if isinstance(config, pd.DataFrame):
        if data is not None:
            raise TypeError("missing_data: give the DataFrame once, first or as data=")
        config, data = None, config
    data = read_final_data(config or load_config()) if data is None else data
    if len(data) == 0:
        return {column: 0.0 for column in data.columns}
    return {column: round(float(data[column].isna().mean() * 100), 4) for column in data.columns}


def rounded(value) -> float | None:
    """A number for JSON: rounded to 6 places, None for NaN."""
    value = float(value)
    return None if value != value else round(value, 6)


def execution_time(config: Config | None = None, current_tick: TickRecord | None = None) -> dict:
    """Seconds ingestion and training took, as the last tick that ran them recorded in the history.

    Nothing is re-run to answer: only before any tick has run both stages
    are they timed once, on the real inputs, into a temporary folder.
    """
    config = config or load_config()
    timings = last_stage_timings([current_tick], TIMED_STAGES) if current_tick is not None else None
    if timings is None:  # kept in the history's summary: the history itself is not read
        timings = HistoryLog(config.log_folder / HISTORY_FILE).figures().stage_timings
    if timings is not None:
        return {"ingestion_seconds": timings["ingest"], "training_seconds": timings["train"]}
    return _measure_execution_time(config)


def _measure_execution_time(config: Config) -> dict:

    with tempfile.TemporaryDirectory(prefix="drs-timing-") as scratch:
        side = config.with_paths(output_folder=Path(scratch))
        started = time.perf_counter()
        result = merge_multiple_dataframe(side)
        ingestion_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fit_model(result.data, config)
        training_seconds = time.perf_counter() - started
    return {"ingestion_seconds": round(ingestion_seconds, 4), "training_seconds": round(training_seconds, 4)}


def _requirements(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.append(match.group(1))
    return names


def _latest_version(package: str, timeout: float) -> str:
    import requests

    try:
        url = os.environ.get("DRS_PYPI_URL", PYPI_JSON_URL)
        response = requests.get(url.format(package=package), timeout=timeout)
        response.raise_for_status()
        return str(response.json()["info"]["version"])
    except (requests.RequestException, ValueError, KeyError):
        return "unknown"


def outdated_packages_list(requirements: Path | None = None, timeout: float = 3.0) -> list[dict[str, str | bool]]:
    """For each requirement: installed version, latest on the package index, and whether it is outdated.

    Asks the index for all packages at once and gives up after `timeout` seconds in all: an
    unreachable index makes "latest" "unknown"; a package it has not answered about by then is
    "unknown" too, with "note": "not checked: timed out". The look-ups run in daemon threads left
    behind at the deadline: an index that trickles its answers (each socket wait short, the whole
    endless) never keeps the process from exiting, as a thread pool's workers, joined at exit, would.
    """
    names = _requirements(requirements or REQUIREMENTS_FILE)
    deadline = time.monotonic() + timeout
    answers: dict[str, str] = {}

    def look_up(name: str) -> None:
        answers[name] = _latest_version(name, timeout)

    threads = [threading.Thread(target=look_up, args=(name,), name=f"index-{name}", daemon=True) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    answered = dict(answers)  # what came by the deadline; a late answer changes nothing below
    rows: list[dict[str, str | bool]] = []
    for name in names:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        latest = answered.get(name, "unknown")
        row: dict[str, str | bool] = {
            "package": name,
            "installed": installed,
            "latest": latest,
            "outdated": latest not in ("unknown", installed),
        }
        if name not in answered:
            row["note"] = NOT_CHECKED
        rows.append(row)
    return rows


def all_diagnostics(
    config: Config,
    data: pd.DataFrame | None = None,
    packages: list[dict] | None = None,
    current_tick: TickRecord | None = None,
) -> dict:
    """Timings, missing data and outdated packages, as served by /diagnostics."""
    return {
        "execution_time": execution_time(config, current_tick),
        "missing_data": missing_data(config, data),
        "outdated_packages": outdated_packages_list() if packages is None else packages,
    }


def write_diagnostics(config: Config, report: dict) -> Path:
    """Write `report` (diagnostics_report's) to diagnostics.json, atomically: this module is its one writer."""
    path = config.model_folder / DIAGNOSTICS_FILE
    write_json_atomic(path, report)
    return path


def diagnostics_report(
    config: Config,
    deployed,
    data: pd.DataFrame | None,
    test_data: pd.DataFrame,
    packages: list[dict] | None = None,
    current_tick: TickRecord | None = None,
) -> dict:
    """What diagnostics.json holds: the deployed version, its predictions on the test data, and the rest.

    Without ingested data (`data` None) its summary and missing data are empty.
    """
    return {
        "version": deployed.version,
        "predictions": model_predictions(test_data, config, deployed=deployed),
        "summary_statistics": dataframe_summary(config, data=data) if data is not None else {},
        "execution_time": execution_time(config, current_tick),
        "missing_data": missing_data(data=data) if data is not None else {},
        "outdated_packages": outdated_packages_list() if packages is None else packages,
    }
