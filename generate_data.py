"""Deterministic generator of the project's churn data.

Two regimes of the same market:

* ``practice`` - the past: busy customers, churn driven mainly by falling
  recent activity;
* ``source`` - the present: activity lower across the board, larger
  customers, and churn now also driven by company size, so a model fitted on
  the past loses accuracy here (the drift the pipeline must notice).

``python generate_data.py`` rewrites the bundled CSVs (same seed, same bytes).
``python generate_data.py --rows 1000000 --files 100 --out DIR`` writes scale
data for benchmarks.
"""
from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from settings import ALL_COLUMNS, FEATURE_COLUMNS, PROJECT_DIR

REGIMES = ("practice", "source", "mixed")


def generate(rows: int, regime: str = "practice", seed: int = 0, missing_rate: float = 0.0) -> pd.DataFrame:
    """A DataFrame of `rows` customers in the schema's columns, reproducible from `seed`."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}")
    rng = np.random.default_rng(seed)
    if regime == "mixed":
        half = rows // 2
        frame = pd.concat([generate(half, "practice", seed + 1), generate(rows - half, "source", seed + 2)])
        return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)

    letters = np.array(list(string.ascii_lowercase))
    corporation = ["".join(chars) for chars in letters[rng.integers(0, 26, size=(rows, 4))]]
    if regime == "practice":
        monthly = rng.gamma(shape=2.0, scale=120.0, size=rows)
        employees = np.round(rng.lognormal(mean=3.0, sigma=0.8, size=rows)) + 1
        logit = 4.0 - 0.025 * monthly - 0.01 * employees
    else:
        monthly = rng.gamma(shape=2.0, scale=70.0, size=rows)
        employees = np.round(rng.lognormal(mean=4.0, sigma=0.9, size=rows)) + 1
        logit = 2.2 - 0.03 * monthly + 0.025 * (employees - 60)
    yearly = monthly * 12 * rng.lognormal(mean=0.0, sigma=0.35, size=rows)
    monthly = np.round(monthly)
    exited = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "corporation": corporation,
        "lastmonth_activity": monthly.astype(int),
        "lastyear_activity": np.round(yearly).astype(int),
        "number_of_employees": employees.astype(int),
        "exited": exited,
    }, columns=list(ALL_COLUMNS))
    if missing_rate > 0:
        for column in FEATURE_COLUMNS:
            mask = rng.random(rows) < missing_rate
            frame[column] = frame[column].astype("Int64").mask(mask)
    return frame


def write_bundled_data(root: Path = PROJECT_DIR) -> list[Path]:
    """(Re)write practicedata/, sourcedata/ and testdata/ under root."""
    plan = [
        ("practicedata/dataset1.csv", 350, "practice", 11, 0.0),
        ("practicedata/dataset2.csv", 350, "practice", 12, 0.0),
        ("sourcedata/dataset3.csv", 400, "source", 13, 0.0),
        ("sourcedata/dataset4.csv", 400, "source", 14, 0.01),
        ("testdata/testdata.csv", 400, "mixed", 15, 0.0),
    ]
    written = []
    for relative, rows, regime, seed, missing in plan:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(rows, regime, seed, missing).to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def write_scale_data(out: Path, rows: int, files: int, regime: str, seed: int) -> list[Path]:
    """`rows` rows split across `files` CSVs in out/ (for benchmarks)."""
    out.mkdir(parents=True, exist_ok=True)
    per_file = [rows // files + (1 if i < rows % files else 0) for i in range(files)]
    written = []
    for index, count in enumerate(per_file):
        path = out / f"part{index:05d}.csv"
        generate(count, regime, seed + index).to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="scale mode: total rows to write")
    parser.add_argument("--files", type=int, default=10, help="scale mode: number of CSV files")
    parser.add_argument("--out", type=Path, help="scale mode: output folder")
    parser.add_argument("--regime", choices=REGIMES, default="source")
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    if args.rows is None:
        for path in write_bundled_data():
            print(f"wrote {path.relative_to(PROJECT_DIR)}")
        return 0
    if args.out is None or args.rows <= 0 or args.files <= 0:
        parser.error("scale mode needs --rows > 0, --files > 0 and --out")
    paths = write_scale_data(args.out, args.rows, args.files, args.regime, args.seed)
    print(f"wrote {args.rows} rows in {len(paths)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
