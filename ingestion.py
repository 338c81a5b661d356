"""Ingestion: merge every CSV of the input folder into one deduplicated dataset.

Reads ``input_folder_path/*.csv`` in name order and writes, each atomically, to
``output_folder_path``: ``finaldata.csv`` (the rows, the first of identical rows
kept), ``referencedata.csv`` (a fixed random sample of it, for drift tests),
``ingestedfiles.json`` (per file sha256, size, mtime and rows; rejected files
with reasons) and, last, the course's ``ingestedfiles.txt``. A file that fails
validation is rejected whole with a one-line reason naming line and column,
never quoting the file; the others are still ingested.

pyarrow's CSV reader parses each file straight into the schema's types (called
directly: ``pd.read_csv(engine="pyarrow")`` infers types, then casts, and renames
a repeated column); pandas drops duplicates and samples; pyarrow writes the CSVs.
``bench/ingest_engines.py`` measures this against Polars, DuckDB and the course loop.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cli import stage_main
from settings import (ALL_COLUMNS, FEATURE_COLUMNS, FINAL_DATA_FILE, ID_COLUMN, INGESTED_DETAIL_FILE,
                      INGESTED_RECORD_FILE, REFERENCE_SAMPLE_FILE, REFERENCE_SAMPLE_ROWS, TARGET_COLUMN, Config,
                      PipelineError, load_config)
from storage import atomic_path, input_csvs, write_json_atomic, write_text_atomic

log = logging.getLogger("ingestion")

# Features and target are read as float64: a missing cell is then NaN, and text is a conversion error.
COLUMN_TYPES = {ID_COLUMN: pa.string(), **{name: pa.float64() for name in (*FEATURE_COLUMNS, TARGET_COLUMN)}}
MAX_REASON_CHARS = 200
# Larger magnitudes are rejected like inf: no count, size or charge comes near, and they would
# overflow the summary statistics and freeze the solver (liblinear refuses values above 1e30).
MAX_ABS_NUMBER = 1e15


class InvalidFile(Exception):
    """A CSV that does not satisfy the schema; the message says why."""


@dataclass
class IngestionResult:
    """What one ingestion produced. ``data``: the deduplicated rows (first kept) in schema column order,
    corporation as string, features and exited as float64 (NaN when missing). ``ingested``: file name ->
    {sha256, size, mtime_ns, rows}; ``rejected``: file name -> reason; ``rows_read``: before deduplication."""

    data: pd.DataFrame
    ingested: dict[str, dict]
    rejected: dict[str, str]
    rows_read: int
    every_row: pd.DataFrame = field(repr=False)  # before deduplication, file after file
    spans: dict[str, tuple[int, int]] = field(repr=False)  # file name -> its rows in every_row

    @property
    def rows(self) -> int:
        return len(self.data)

    def rows_from(self, names: Iterable[str]) -> pd.DataFrame:
        """The deduplicated rows of just these ingested files (first occurrence kept); other names are ignored."""
        wanted = set(names)
        parts = [self.every_row.iloc[start:stop] for name, (start, stop) in self.spans.items() if name in wanted]
        return pd.concat(parts).drop_duplicates(ignore_index=True) if parts else self.data.iloc[:0]


def row_keys(rows: pd.DataFrame) -> np.ndarray:
    """pandas' 64-bit hash of each row's values (uint64), to tell rows seen before without keeping them."""
    return pd.util.hash_pandas_object(rows, index=False).to_numpy()


def read_validated_csv(source: str | os.PathLike | bytes | BinaryIO,
                       columns: Iterable[str] = ALL_COLUMNS) -> pd.DataFrame:
    """One CSV (a path, its bytes or a binary file), validated and typed; raises InvalidFile saying why.

    UTF-8 with or without BOM, CRLF, quotes, any column order (others dropped), empty cells missing.
    Returns `columns`: ALL_COLUMNS for pipeline data, FEATURE_COLUMNS for data to predict on (then
    corporation and exited may be absent, and are not read). Features finite, exited 0 or 1 or missing.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidFile(f"cannot read: {exc.strerror}") from None
    data = source if isinstance(source, bytes) else source.read()
    return _parse(data, tuple(columns)).to_pandas()


def _parse(data: bytes, columns: tuple[str, ...]) -> pa.Table:
    """The CSV in `data` as an Arrow table of `columns` in schema types; raises InvalidFile."""
    bad_rows = []

    def note_bad_row(row) -> str:
        bad_rows.append(row)
        return "skip"

    try:  # files are read in parallel, one per thread: Arrow's own threads would only contend
        table = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=False),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=note_bad_row),
                               convert_options=pacsv.ConvertOptions(column_types={
                                   name: COLUMN_TYPES[name] for name in columns}, strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InvalidFile(_why_unreadable(data, exc, columns)) from None
    if bad_rows:
        raise InvalidFile(f"line {bad_rows[0].number}: {bad_rows[0].actual_columns} field(s), "
                          f"expected {bad_rows[0].expected_columns}")
    try:  # pyarrow decodes the column names only when asked
        problem = _column_problem(table.column_names, columns)
    except UnicodeDecodeError:
        raise InvalidFile("line 1: the header is not UTF-8 text") from None
    if problem:
        raise InvalidFile(problem)
    table = table.select(list(columns))
    for name in columns:
        values = table[name]
        if name in FEATURE_COLUMNS:
            _reject_first(pc.greater_equal(pc.abs(values), MAX_ABS_NUMBER), name,
                          f"not a finite number below {MAX_ABS_NUMBER:g} in magnitude")
        elif name == TARGET_COLUMN:
            _reject_first(pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array([0.0, 1.0])))),
                          name, "must be 0 or 1")
    return table


def _column_problem(names: list[str], columns: tuple[str, ...]) -> str | None:
    repeated = [name for name in names if names.count(name) > 1]
    if repeated:
        return f"duplicate column name {repeated[0]!r}"
    missing = [name for name in columns if name not in names]
    return f"missing column(s): {', '.join(missing)}" if missing else None


def _reject_first(bad: pa.ChunkedArray, column: str, problem: str) -> None:
    first = pc.index(bad, True).as_py()
    if first >= 0:
        raise InvalidFile(f"line {first + 2}, column {column!r}: {problem}")


def _why_unreadable(data: bytes, error: Exception, columns: tuple[str, ...]) -> str:
    """Where a file the typed read refused goes wrong, found by simpler reads; never quotes the file."""
    for number, line in enumerate(io.BytesIO(data), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return f"line {number}: not UTF-8 text"
    message = str(error).strip()
    if message.startswith("Empty CSV file"):
        return "empty file: no header line"
    try:  # every column as text, to find the cell that is not a number
        text = pacsv.read_csv(pa.BufferReader(data), convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns}, strings_can_be_null=True))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        text = pa.table({})
    if text.num_columns and (problem := _column_problem(text.column_names, columns)):
        return problem
    for name in (name for name in columns if name in text.column_names and name != ID_COLUMN):
        cells = text[name].to_pandas()
        bad = cells.notna() & pd.to_numeric(cells, errors="coerce").isna()
        if bad.any():
            return f"line {int(bad.to_numpy().argmax()) + 2}, column {name!r}: not a number"
    # Arrow's message quotes the offending value or row after a colon: keep only what precedes it.
    return f"not a readable CSV file ({message.splitlines()[0].split(':')[0]})"


def _read_input(path: Path, max_bytes: int) -> tuple[dict, pa.Table]:
    """(fingerprint, validated rows) of one input file; raises InvalidFile. Its size is checked before reading."""
    # Resolved again here and opened without following a link: a file swapped for a link
    # to the outside since the folder was listed is still never read.
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(path.parent))):
        raise InvalidFile("a link to outside the input folder: not read")
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since listing, opening it must not hang.
        handle = open(os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb")
    except FileNotFoundError:
        raise InvalidFile("vanished while being read") from None
    except OSError as exc:
        raise InvalidFile(f"cannot open: {exc.strerror}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidFile("not a regular file: not read")
        if info.st_size > max_bytes:
            raise InvalidFile(f"{info.st_size} bytes, over max_input_file_bytes {max_bytes}: not read")
        try:
            data = handle.read()
        except OSError as exc:
            raise InvalidFile(f"cannot read: {exc.strerror}") from None
    fingerprint = {"sha256": hashlib.sha256(data).hexdigest(), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    return fingerprint, _parse(data, ALL_COLUMNS)


def merge_multiple_dataframe(config: Config | None = None, write: bool = True) -> IngestionResult:
    """Merge every valid CSV of the input folder into an IngestionResult; write the outputs when `write`
    (then PipelineError when no file is valid, earlier outputs left as they were)."""
    config = config or load_config()
    paths, rejected = input_csvs(config.input_folder)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        reads = [pool.submit(_read_input, path, config.max_input_file_bytes) for path in paths]
    tables, ingested, spans, rows_read = [], {}, {}, 0
    for path, read in zip(paths, reads):
        try:
            fingerprint, table = read.result()
        except InvalidFile as exc:
            rejected[path.name] = str(exc)[:MAX_REASON_CHARS]
            continue
        tables.append(table)
        ingested[path.name] = {**fingerprint, "rows": table.num_rows}
        spans[path.name] = (rows_read, rows_read + table.num_rows)
        rows_read += table.num_rows
    rejected = dict(sorted(rejected.items()))
    for name, reason in rejected.items():
        log.warning("rejected %s: %s", name, reason)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    every_row = pa.concat_tables([pa.schema(COLUMN_TYPES).empty_table(), *tables]).to_pandas()
    del tables, reads
    # The course keeps the first of identical rows; so do we (NaN equals NaN).
    data = every_row.drop_duplicates(ignore_index=True)
    result = IngestionResult(data, ingested, rejected, rows_read, every_row, spans)
    dedup_seconds = time.perf_counter() - started
    log.info("read %d file(s), %d row(s); %d unique row(s); rejected %d file(s)",
             len(ingested), rows_read, result.rows, len(rejected))
    if write:
        if not ingested:
            reasons = "; ".join(f"{name}: {why}" for name, why in result.rejected.items())
            raise PipelineError(f"no valid CSV file in {config.input_folder}" + (f" ({reasons})" if reasons else ""))
        started = time.perf_counter()
        write_outputs(result, config.output_folder)
        # Left by earlier versions, which cached parsed files there.
        shutil.rmtree(config.output_folder / ".parsed", ignore_errors=True)
        log.info("seconds: read %.3f, deduplicate %.3f, write %.3f", read_seconds, dedup_seconds,
                 time.perf_counter() - started)
    return result


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), tmp)


def write_outputs(result: IngestionResult, output_folder: Path) -> None:
    """Write finaldata.csv, referencedata.csv, ingestedfiles.json, then ingestedfiles.txt, each atomically."""
    data = result.data
    _write_csv(data, output_folder / FINAL_DATA_FILE)
    sample = data.sample(n=REFERENCE_SAMPLE_ROWS, random_state=0) if len(data) > REFERENCE_SAMPLE_ROWS else data
    _write_csv(sample, output_folder / REFERENCE_SAMPLE_FILE)
    write_json_atomic(output_folder / INGESTED_DETAIL_FILE, {"files": result.ingested, "rejected": result.rejected,
                                                             "rows_read": result.rows_read, "rows": result.rows})
    # The course's record is written last: its presence means the rest is there.
    write_text_atomic(output_folder / INGESTED_RECORD_FILE, "".join(f"{name}\n" for name in result.ingested))


def read_final_data(config: Config, path: Path | None = None) -> pd.DataFrame:
    """finaldata.csv (or another file ingestion wrote, e.g. referencedata.csv) in schema types."""
    path = path or config.output_folder / FINAL_DATA_FILE
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES,
                                                                          strings_can_be_null=False))
    except FileNotFoundError:
        raise PipelineError(f"no ingested data at {path}: run ingestion.py first") from None
    except pa.ArrowInvalid:
        raise PipelineError(f"{path}: not a CSV file ingestion wrote: run ingestion.py again") from None
    return table.to_pandas()


def read_labelled_csv(path: Path) -> pd.DataFrame:
    """A CSV validated like an input file (used for the test data); PipelineError naming it when invalid."""
    try:
        return read_validated_csv(path)
    except InvalidFile as exc:
        raise PipelineError(f"{path}: {exc}") from None


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        result = merge_multiple_dataframe(config)
        return f"wrote {config.output_folder / FINAL_DATA_FILE} ({result.rows} rows from {len(result.ingested)} file(s))"

    return stage_main("ingestion", "Merge every CSV of the input folder into finaldata.csv.", run, argv, lock=True)


if __name__ == "__main__":
    sys.exit(main())
