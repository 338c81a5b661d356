"""Diagnostics: predictions, data summary, missing data, stage timings, outdated packages.

Every function reads; none changes what production or ingestion uses.
``execution_time()`` re-runs ingestion and training into a temporary folder.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from importlib import metadata
from pathlib import Path

import pandas as pd

from settings import (
    DIAGNOSTICS_FILE,
    FEATURE_COLUMNS,
    PROJECT_DIR,
    Config,
    load_config,
    stage_main,
)
from storage import write_json_atomic

log = logging.getLogger("diagnostics")

# DRS_PYPI_URL points the check at another index's JSON API (a mirror, or a dead one in tests).
PYPI_JSON_URL = "https://pypi.org/pypi/{package}/json"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements.txt"


def model_predictions(dataframe: pd.DataFrame | None = None, config: Config | None = None, deployed=None) -> list[int]:
    """Predictions (0/1 ints) of the deployed model on `dataframe` (default: the test data)."""
    from deployment import load_deployed_model
    from scoring import load_test_data
    from training import feature_matrix

    config = config or load_config()
    if dataframe is None:
        dataframe = load_test_data(config)
    deployed = deployed or load_deployed_model(config.prod_folder)
    return [int(p) for p in deployed.model.predict(feature_matrix(dataframe))]


def dataframe_summary(config: Config | None = None, data: pd.DataFrame | None = None) -> dict[str, dict[str, float | None]]:
    """Mean, median and standard deviation of each numeric feature of finaldata.csv."""
    from ingestion import read_final_data

    data = read_final_data(config or load_config()) if data is None else data
    summary = {}
    for column in FEATURE_COLUMNS:
        values = data[column]
        summary[column] = {stat: _number(getattr(values, stat)()) for stat in ("mean", "median", "std")}
    return summary


def missing_data(config: Config | None = None, data: pd.DataFrame | None = None) -> dict[str, float]:
    """Percent (0-100) of missing values in each column of finaldata.csv."""
    from ingestion import read_final_data

    data = read_final_data(config or load_config()) if data is None else data
    if len(data) == 0:
        return {column: 0.0 for column in data.columns}
    return {column: round(float(data[column].isna().mean() * 100), 4) for column in data.columns}


def _number(value) -> float | None:
    value = float(value)
    return None if value != value else round(value, 6)


def execution_time(config: Config | None = None) -> dict[str, float]:
    """Seconds taken by ingestion and by training, run on the real inputs into a temporary folder."""
    from ingestion import merge_multiple_dataframe
    from training import train_model

    config = config or load_config()
    with tempfile.TemporaryDirectory(prefix="drs-timing-") as scratch:
        scratch = Path(scratch)
        side = config.with_paths(output_folder=scratch / "ingested", model_folder=scratch / "models")
        started = time.perf_counter()
        merge_multiple_dataframe(side)
        ingestion_seconds = time.perf_counter() - started
        started = time.perf_counter()
        train_model(side)
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

    Asks the index for all packages at once and gives up after `timeout`
    seconds in all: an unreachable index makes "latest" "unknown", never a hang.
    """
    names = _requirements(requirements or REQUIREMENTS_FILE)
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)))
    futures = {name: pool.submit(_latest_version, name, timeout) for name in names}
    wait(futures.values(), timeout=timeout + 0.5)
    pool.shutdown(wait=False, cancel_futures=True)
    rows = []
    for name in names:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        future = futures[name]
        latest = future.result() if future.done() else "unknown"
        rows.append({"package": name, "installed": installed, "latest": latest,
                     "outdated": latest not in ("unknown", installed)})
    return rows


def all_diagnostics(config: Config) -> dict:
    """Timings, missing data and outdated packages, as served by /diagnostics."""
    return {
        "execution_time": execution_time(config),
        "missing_data": missing_data(config),
        "outdated_packages": outdated_packages_list(),
    }


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        report = {
            "predictions": model_predictions(config=config),
            "summary_statistics": dataframe_summary(config),
            **all_diagnostics(config),
        }
        write_json_atomic(config.model_folder / DIAGNOSTICS_FILE, report)
        return json.dumps(report, indent=2)

    return stage_main("diagnostics", "Print diagnostics of the deployed model and the ingested data.", run, argv)


if __name__ == "__main__":
    sys.exit(main())
