"""Deterministic generator of the project's churn data.

Two regimes of the same market:

* ``practice`` - the past: busy customers, churn driven mainly by falling
  recent activity;
* ``source`` - the present: activity lower across the board, larger
  customers, and churn now also driven by company size, so a model fitted on
  the past loses accuracy here (the drift the pipeline must notice).

``python generate_data.py`` rewrites the bundled CSVs (same seed, same bytes);
``python generate_data.py --variant categorical`` rewrites those of ``examples/subscriptions/``.
``python generate_data.py --rows 1000000 --files 100 --out DIR`` writes scale
data for benchmarks. ``--variant categorical`` writes, in the same two regimes,
subscription customers shaped like real telecom churn data: an id, numeric and
categorical columns, a few missing values and a ``Yes``/``No`` target (see
``generate_categorical``).
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from drs.config import ALL_COLUMNS, FEATURE_COLUMNS, PROJECT_DIR

REGIMES = ("practice", "source", "mixed")


def _unique_ids(names: list[str], seed: int) -> list[str]:
    """Four random letters, then the seed (so files of other seeds never share an id) and, for a
    repeat within the file, its count: an id names one customer (the newest row of an id wins)."""
    seen: dict[str, int] = {}
    ids = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        ids.append(f"{name}{seed:02d}" + (f"-{seen[name]}" if seen[name] > 1 else ""))
    return ids


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
    corporation = _unique_ids(["".join(chars) for chars in letters[rng.integers(0, 26, size=(rows, 4))]], seed)
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
    frame = pd.DataFrame(
        {
            "corporation": corporation,
            "lastmonth_activity": monthly.astype(int),
            "lastyear_activity": np.round(yearly).astype(int),
            "number_of_employees": employees.astype(int),
            "exited": exited,
        },
        columns=list(ALL_COLUMNS),
    )
    if missing_rate > 0:
        for column in FEATURE_COLUMNS:
            mask = rng.random(rows) < missing_rate
            frame[column] = frame[column].astype("Int64").mask(mask)
    return frame


# The categorical variant: column -> categories, and each category's weight in the two regimes.
CATEGORIES = {
    "contract": (("Month-to-month", "One year", "Two year"), (0.45, 0.3, 0.25), (0.65, 0.2, 0.15)),
    "internet_service": (("DSL", "Fiber optic", "No"), (0.45, 0.3, 0.25), (0.25, 0.6, 0.15)),
    "payment_method": (
        ("Electronic check", "Mailed check", "Bank transfer", "Credit card"),
        (0.25, 0.25, 0.25, 0.25),
        (0.5, 0.15, 0.2, 0.15),
    ),
    "paperless_billing": (("Yes", "No"), (0.5, 0.5), (0.7, 0.3)),
}
CATEGORICAL_COLUMNS = ("customer_id", "tenure", "monthly_charges", "total_charges", *CATEGORIES, "churn")


def generate_categorical(
    rows: int, regime: str = "practice", seed: int = 0, missing_rate: float = 0.01
) -> pd.DataFrame:
    """Subscription customers: customer_id, tenure (months), monthly_charges, total_charges (a few
    missing), contract, internet_service, payment_method, paperless_billing and churn ("Yes"/"No").

    In the past ("practice") churn follows short contracts and electronic checks; in the present
    ("source") fibre customers on monthly contracts dominate and churn more, and charges are higher.
    """
    if regime not in ("practice", "source"):
        raise ValueError("regime must be practice or source")
    rng = np.random.default_rng(seed)
    present = regime == "source"
    frame: dict[str, object] = {
        "customer_id": [
            f"{number:04d}-{''.join(chars)}"
            for number, chars in zip(
                rng.integers(0, 10000, rows),
                np.array(list(string.ascii_uppercase))[rng.integers(0, 26, size=(rows, 5))],
                strict=False,
            )
        ]
    }
    for column, (values, past, now) in CATEGORIES.items():
        frame[column] = np.array(values)[rng.choice(len(values), size=rows, p=now if present else past)]
    tenure = np.clip(np.round(rng.gamma(1.6, 18.0 if not present else 12.0, rows)), 0, 72)
    fibre = frame["internet_service"] == "Fiber optic"
    monthly = np.round(
        20 + 25 * (frame["internet_service"] != "No") + 30 * fibre + rng.normal(0, 8, rows) + (10 if present else 0), 2
    )
    logit = (
        -1.2
        + 1.6 * (frame["contract"] == "Month-to-month")
        - 1.2 * (frame["contract"] == "Two year")
        + 0.9 * (frame["payment_method"] == "Electronic check")
        - 0.04 * tenure
        + 0.01 * (monthly - 60)
        + (1.1 * fibre if present else 0.2 * fibre)
    )
    frame["tenure"] = tenure.astype(int)
    frame["monthly_charges"] = monthly
    frame["total_charges"] = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.95, 1.05, rows), 2)
    frame["churn"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    result = pd.DataFrame(frame, columns=list(CATEGORICAL_COLUMNS))
    gaps = rng.random(rows) < missing_rate
    result["total_charges"] = result["total_charges"].mask(gaps)
    return result


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


EXAMPLE_DIR = PROJECT_DIR / "examples" / "subscriptions"


def write_categorical_example(root: Path = EXAMPLE_DIR) -> list[Path]:
    """(Re)write the categorical variant of the bundled data under root: practicedata/ (the past),
    sourcedata/ (the present: drifted) and testdata/ (both), beside that folder's configs."""
    plan = [
        ("practicedata/customers1.csv", (("practice", 21, 500),)),
        ("practicedata/customers2.csv", (("practice", 22, 500),)),
        ("sourcedata/customers3.csv", (("source", 23, 600),)),
        ("sourcedata/customers4.csv", (("source", 24, 600),)),
        ("testdata/testdata.csv", (("practice", 25, 300), ("source", 26, 300))),
    ]
    written = []
    for relative, parts in plan:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.concat([generate_categorical(rows, regime, seed) for regime, seed, rows in parts])
        frame.to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def write_scale_data(out: Path, rows: int, files: int, regime: str, seed: int, variant: str = "course") -> list[Path]:
    """`rows` rows split across `files` CSVs in out/ (for benchmarks); `variant` "categorical" for
    the subscription-customer columns of generate_categorical."""
    out.mkdir(parents=True, exist_ok=True)
    per_file = [rows // files + (1 if i < rows % files else 0) for i in range(files)]
    make = generate_categorical if variant == "categorical" else generate
    written = []
    for index, count in enumerate(per_file):
        path = out / f"part{index:05d}.csv"
        make(count, regime, seed + index).to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="scale mode: total rows to write")
    parser.add_argument("--files", type=int, default=10, help="scale mode: number of CSV files")
    parser.add_argument("--out", type=Path, help="scale mode: output folder")
    parser.add_argument("--regime", choices=REGIMES, default="source")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument(
        "--variant",
        choices=("course", "categorical"),
        default="course",
        help="scale mode: the course's columns, or categorical subscription-customer data",
    )
    args = parser.parse_args(argv)
    if args.rows is None:
        for path in write_categorical_example() if args.variant == "categorical" else write_bundled_data():
            print(f"wrote {path.relative_to(PROJECT_DIR)}")
        return 0
    if args.out is None or args.rows <= 0 or args.files <= 0:
        parser.error("scale mode needs --rows > 0, --files > 0 and --out")
    if args.variant == "categorical" and args.regime == "mixed":
        parser.error("the categorical variant has the regimes practice and source")
    paths = write_scale_data(args.out, args.rows, args.files, args.regime, args.seed, args.variant)
    print(f"wrote {args.rows} rows in {len(paths)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
