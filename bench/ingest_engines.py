"""Which engine should ingestion stand on? Wall time, peak memory and code size, beside the course loop.

Every engine candidate does the same job on the same files: read each CSV
with the schema's types (so one bad file can be rejected on its own), reject
files with a non-finite feature or an `exited` other than 0/1, concatenate,
drop duplicate rows keeping the first, write finaldata.csv. ingestion.py itself
does more (hashes, records, the reference sample, fsync). Each run is its own
process, the candidates taking turns for --repeats rounds: wall and CPU time
are the best run's, peak memory the largest maximum RSS (os.wait4); each is
printed with its ratio to the course loop's.

    python bench/ingest_engines.py                      # 1M rows / 100 files and 10M rows / 1000 files
    python bench/ingest_engines.py --sizes 200000x20    # a quick look
    python bench/ingest_engines.py --previous DIR       # also an older checkout's ingestion.py (cold, and +1 file)

Polars and DuckDB are not project dependencies: install them apart for the
measurement, e.g. ``pip install --target bench/scratch/engines-lib polars duckdb``
(that folder is put on their path); a missing engine is reported and skipped.
Data comes from generate_data.py and is kept in bench/scratch/data/ (shared with bench/run.py).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
SCRATCH = BENCH_DIR / "scratch"
ENGINES_LIB = SCRATCH / "engines-lib"
SCHEMA = ("corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited")
NUMBERS = SCHEMA[1:]


# --- the candidates (each runs in a child process: `--engine NAME INPUT OUTPUT`) ----------


def pandas_pyarrow_reader(input_folder: Path, output_folder: Path) -> None:
    """What ingestion.py does, less hashing and records: pyarrow reads each file typed, pandas drops duplicates."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    types = {"corporation": pa.string(), **{name: pa.float64() for name in NUMBERS}}
    tables = []
    for path in sorted(input_folder.glob("*.csv")):
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types)).select(SCHEMA)
        if (
            any(pc.any(pc.is_inf(table[name])).as_py() for name in NUMBERS[:-1])
            or not pc.all(pc.is_in(table["exited"].drop_null(), pa.array([0.0, 1.0]))).as_py()
        ):
            continue
        tables.append(table)
    data = pa.concat_tables(tables).to_pandas().drop_duplicates(ignore_index=True)
    pacsv.write_csv(pa.Table.from_pandas(data, preserve_index=False), output_folder / "finaldata.csv")


def pandas_read_csv_pyarrow(input_folder: Path, output_folder: Path) -> None:
    """pandas alone: pd.read_csv(engine="pyarrow") per file, drop_duplicates, to_csv."""
    import numpy as np
    import pandas as pd

    frames = []
    for path in sorted(input_folder.glob("*.csv")):
        frame = pd.read_csv(path, engine="pyarrow", dtype={name: "float64" for name in NUMBERS})[list(SCHEMA)]
        if np.isinf(frame[list(NUMBERS[:-1])]).any().any() or not frame["exited"].dropna().isin((0, 1)).all():
            continue
        frames.append(frame)
    pd.concat(frames, ignore_index=True).drop_duplicates().to_csv(output_folder / "finaldata.csv", index=False)


def polars(input_folder: Path, output_folder: Path) -> None:
    """Polars: read_csv per file with the schema's types, unique(keep="first", maintain_order=True), write_csv."""
    import polars as pl

    types = {"corporation": pl.String, **{name: pl.Float64 for name in NUMBERS}}
    frames = []
    for path in sorted(input_folder.glob("*.csv")):
        frame = pl.read_csv(path, schema_overrides=types).select(SCHEMA)
        if (
            frame.select(pl.any_horizontal(pl.col(NUMBERS[:-1]).is_infinite().any())).item()
            or not frame["exited"].drop_nulls().is_in([0.0, 1.0]).all()
        ):
            continue
        frames.append(frame)
    pl.concat(frames).unique(keep="first", maintain_order=True).write_csv(output_folder / "finaldata.csv")


def duckdb_glob(input_folder: Path, output_folder: Path) -> None:
    """DuckDB, one query over every file (optimistic: a bad cell fails the whole query, no per-file rejection)."""
    import duckdb

    columns = {"corporation": "VARCHAR", **{name: "DOUBLE" for name in NUMBERS}}
    files = [str(path) for path in sorted(input_folder.glob("*.csv"))]
    duckdb.sql(
        f"""
        COPY (
            SELECT {", ".join(SCHEMA)} FROM (
                SELECT *, row_number() OVER (ORDER BY filename, file_row) AS position FROM (
                    SELECT *, row_number() OVER (PARTITION BY filename) AS file_row
                    FROM read_csv($files, header = true, columns = $columns, filename = true)))
            QUALIFY row_number() OVER (PARTITION BY {", ".join(SCHEMA)} ORDER BY position) = 1
            ORDER BY position
        ) TO '{output_folder / "finaldata.csv"}' (HEADER)""",
        params={"files": files, "columns": columns},
    )


ENGINES = {
    "pandas_pyarrow_reader": pandas_pyarrow_reader,
    "pandas_read_csv_pyarrow": pandas_read_csv_pyarrow,
    "polars": polars,
    "duckdb_glob": duckdb_glob,
}


# --- measuring ------------------------------------------------------------------------------


def run_once(command: list[str], env: dict | None = None) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {stderr.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}


def code_lines(source: str) -> int:
    """Lines that are neither blank, comments nor docstrings (roughly: the code a reader must follow)."""
    count, in_docstring = 0, False
    for line in source.splitlines():
        stripped = line.strip()
        if in_docstring:
            in_docstring = '"""' not in stripped
        elif stripped.startswith('"""'):
            in_docstring = stripped.count('"""') == 1
        elif stripped and not stripped.startswith("#"):
            count += 1
    return count


def scale_data(rows: int, files: int) -> Path:
    """`rows` rows in `files` CSVs (generated once, kept; the same folders as bench/run.py)."""
    folder = SCRATCH / "data" / f"source-{rows}-{files}"
    if not (folder / ".complete").exists():
        sys.path.insert(0, str(PROJECT_DIR))
        from generate_data import write_scale_data

        print(f"  generating {rows:,} rows in {files} files ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        write_scale_data(folder, rows, files, "source", 100)
        (folder / ".complete").touch()
    return folder


def engine_available(name: str) -> bool:
    module = {"polars": "polars", "duckdb_glob": "duckdb"}.get(name)
    if module is None:
        return True
    check = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ENGINES_LIB)},
    )
    return check.returncode == 0


def bench_size(rows: int, files: int, args) -> list[tuple[str, dict]]:
    data = scale_data(rows, files)
    root = SCRATCH / f"engines-{rows}"
    shutil.rmtree(root, ignore_errors=True)
    inputs, output = root / "input", root / "out"
    inputs.mkdir(parents=True)
    names = sorted(path.name for path in data.glob("*.csv"))
    for name in names:
        os.link(data / name, inputs / name)  # hard links: ingestion refuses links that lead out of its folder
    config = root / "config.json"
    config.write_text(
        json.dumps(
            {
                "input_folder_path": "input",
                "output_folder_path": "out",
                "test_data_path": str(PROJECT_DIR / "testdata"),
                "output_model_path": "models",
                "prod_deployment_path": "prod",
            }
        )
    )
    repeats = args.repeats or (1 if rows >= 5_000_000 else 3)

    def fresh_output():
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir()

    candidates = [
        (
            "course loop",
            [sys.executable, str(BENCH_DIR / "course_ingestion.py"), str(inputs), str(output)],
            fresh_output,
            None,
        ),
        (
            "ingestion.py (pandas + pyarrow reader)",
            [sys.executable, str(PROJECT_DIR / "ingestion.py"), "--config", str(config)],
            fresh_output,
            None,
        ),
    ]
    for name in ENGINES:
        if engine_available(name):
            candidates.append(
                (
                    name,
                    [sys.executable, __file__, "--engine", name, str(inputs), str(output)],
                    fresh_output,
                    {"PYTHONPATH": str(ENGINES_LIB)},
                )
            )
        else:
            print(
                f"   {name}: not installed: pip install --target {ENGINES_LIB.relative_to(PROJECT_DIR)} polars duckdb"
            )
    if args.previous:
        previous = [sys.executable, str(args.previous / "ingestion.py"), "--config", str(config)]
        last = inputs / names[-1]

        def history_then_one_new_file():
            last.unlink(missing_ok=True)
            run_once(previous)
            os.link(data / names[-1], last)

        candidates += [
            ("previous ingestion.py, cold", previous, fresh_output, None),
            ("previous ingestion.py, +1 file on its cache", previous, history_then_one_new_file, None),
        ]
    # Rounds rather than one candidate after another: load from elsewhere on the machine falls on all alike.
    runs = {name: [] for name, *_ in candidates}
    for _ in range(repeats):
        for name, command, setup, env in candidates:
            setup()
            runs[name].append(run_once(command, env))
    return [
        (
            name,
            {
                "wall_s": min(r["wall_s"] for r in done),
                "cpu_s": min(r["cpu_s"] for r in done),
                "peak_mib": max(r["peak_mib"] for r in done),
            },
        )
        for name, done in runs.items()
    ]


def report(rows: int, files: int, results: list[tuple[str, dict]]) -> None:
    course = results[0][1]
    print(f"\n{rows:,} rows in {files} files")
    print(f"  {'engine':<46} {'wall s':>7} {'x faster':>8} {'cpu s':>7} {'x less':>7} {'peak MiB':>9} {'x memory':>8}")
    for name, figures in results:
        print(
            f"  {name:<46} {figures['wall_s']:7.2f} {course['wall_s'] / figures['wall_s']:8.2f} "
            f"{figures['cpu_s']:7.2f} {course['cpu_s'] / figures['cpu_s']:7.2f} "
            f"{figures['peak_mib']:9.0f} {figures['peak_mib'] / course['peak_mib']:8.2f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000x100,10000000x1000", help="ROWSxFILES,... (default: %(default)s)")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 3, 1 from 5M rows)")
    parser.add_argument(
        "--previous", type=Path, help="a folder holding an older ingestion.py (with its settings.py and storage.py)"
    )
    parser.add_argument("--engine", nargs=3, metavar=("NAME", "INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine:
        name, inputs, output = args.engine
        ENGINES[name](Path(inputs), Path(output))
        return 0
    print("code lines (no blanks, comments, docstrings):")
    print(
        f"  course loop {code_lines((BENCH_DIR / 'course_ingestion.py').read_text())}, "
        f"ingestion.py {code_lines((PROJECT_DIR / 'ingestion.py').read_text())} (the whole stage), "
        + ", ".join(f"{name} {code_lines(inspect.getsource(function))}" for name, function in ENGINES.items())
    )
    for size in args.sizes.split(","):
        rows, files = (int(part) for part in size.lower().split("x"))
        report(rows, files, bench_size(rows, files, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
