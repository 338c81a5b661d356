"""NannyML's CBPE estimate of F1 on scored batches (runs in the NannyML venv).

    NML_DISABLE_USAGE_LOGGING=1 python estimate_nannyml.py SCORED.parquet RESULT.json

SCORED.parquet holds the deployed model's outputs on labelled rows: columns "batch", "y_true",
"y_pred" and "y_pred_proba" (its raw positive-class probability). The batch "reference" is what
CBPE is fitted on (it calibrates the probabilities there itself); every other batch is estimated as
one chunk with its labels left out. Writes {"f1": {batch: estimated F1}, "nannyml": version,
"seconds": {...}} to RESULT.json.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (timed from the first line)
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import nannyml  # noqa: E402
import pandas as pd  # noqa: E402


def main(argv: list[str]) -> int:
    scored_path, result_path = argv
    imported = time.perf_counter()
    scored = pd.read_parquet(scored_path)
    reference = scored[scored["batch"] == "reference"].drop(columns="batch").reset_index(drop=True)
    estimates = {}
    for batch, rows in scored[scored["batch"] != "reference"].groupby("batch", sort=False):
        estimator = nannyml.CBPE(
            y_pred_proba="y_pred_proba",
            y_pred="y_pred",
            y_true="y_true",
            problem_type="classification_binary",
            metrics=["f1"],
            chunk_number=1,
        )
        estimator.fit(reference)
        analysis = rows.drop(columns=["batch", "y_true"]).reset_index(drop=True)
        frame = estimator.estimate(analysis).filter(period="analysis").to_df()
        estimates[batch] = float(frame[("f1", "value")].iloc[0])
    estimated = time.perf_counter()
    result = {
        "f1": estimates,
        "nannyml": nannyml.__version__,
        "seconds": {"import": imported - STARTED, "estimate": estimated - imported},
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
