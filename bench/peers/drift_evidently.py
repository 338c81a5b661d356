"""Evidently's DataDriftPreset with the KS test on two Parquet frames (runs in the Evidently venv).

    DO_NOT_TRACK=1 python drift_evidently.py REFERENCE.parquet CURRENT.parquet RESULT.json PVALUE_THRESHOLD

Runs `Report([DataDriftPreset(method="ks", threshold=...)]).run(current, reference)`
on every column of the frames (the caller passes the three numeric features
only) and writes each column's KS p-value (the ValueDrift metric's value) and
the seconds spent importing, loading and running the report to RESULT.json.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (timed from the first line)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import evidently  # noqa: E402
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402


def main(argv: list[str]) -> int:
    reference_path, current_path, result_path, threshold = argv
    imported = time.perf_counter()
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    loaded = time.perf_counter()
    report = Report([DataDriftPreset(method="ks", threshold=float(threshold))])
    snapshot = report.run(current, reference)
    tested = time.perf_counter()
    pvalues, drifted = {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            if config.get("method") != "ks":
                raise SystemExit(f"column {config['column']} was tested with {config.get('method')!r}, not ks")
            pvalues[config["column"]] = float(metric["value"])
        elif config["type"].endswith(":DriftedColumnsCount"):
            drifted = metric["value"]
    missing = sorted(set(reference.columns) - set(pvalues))
    if missing:
        raise SystemExit(f"no KS p-value in the report for {', '.join(missing)}")
    result = {
        "rows": [len(reference), len(current)],
        "ks_pvalues": pvalues,
        "drifted_columns": drifted,
        "evidently": evidently.__version__,
        "seconds": {"import": imported - STARTED, "load": loaded - imported, "tests": tested - loaded},
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
