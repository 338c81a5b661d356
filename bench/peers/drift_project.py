"""The project's drift tests on two Parquet frames, as a tick runs them (runs in the project venv).

    python drift_project.py REFERENCE.parquet CURRENT.parquet RESULT.json

Calls drift.ks_test and drift.psi_test with the default drift settings, the
arguments drift.run_drift_tests passes them in a tick, and writes the KS
p-values and statistics, the PSI values and the seconds spent importing,
loading and testing to RESULT.json.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (timed from the first line)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR))

import pandas as pd  # noqa: E402

# ks_test imports scipy.stats on its first call; importing it here splits "import" and
# "tests" as for Evidently, which imports it up front (the process's wall time is the same).
import scipy.stats  # noqa: E402, F401

from drs.config import DEFAULT_DRIFT  # noqa: E402
from drs.drift import ks_test, psi_test  # noqa: E402


def main(argv: list[str]) -> int:
    reference_path, current_path, result_path = argv
    imported = time.perf_counter()
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    loaded = time.perf_counter()
    settings = DEFAULT_DRIFT
    ks = ks_test(reference, current, settings["ks_pvalue"], settings["min_samples"])
    psi = psi_test(
        reference, current, settings["psi_bins"], settings["psi_watch"], settings["psi_drift"], settings["min_samples"]
    )
    tested = time.perf_counter()
    result = {
        "rows": [len(reference), len(current)],
        "ks_pvalues": {name: figures["pvalue"] for name, figures in ks["features"].items()},
        "ks_statistics": {name: figures["statistic"] for name, figures in ks["features"].items()},
        "psi": {name: figures["statistic"] for name, figures in psi["features"].items()},
        "verdicts": {"ks": ks["verdict"], "psi": psi["verdict"]},
        "seconds": {"import": imported - STARTED, "load": loaded - imported, "tests": tested - loaded},
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
