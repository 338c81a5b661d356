"""Ingestion: merge every CSV of the input folder into one deduplicated dataset.

Reads ``input_folder_path/*.csv`` in name order and writes, each atomically, to
``output_folder_path``: ``finaldata.csv`` (the rows, the first of identical rows
kept), ``referencedata.csv`` (a fixed random sample of it, for drift tests),
``ingestedfiles.json`` (per file sha256, size, mtime and rows; rejected files
with reasons) and, last, the course's ``ingestedfiles.txt``. A file that fails
validation is rejected whole with a one-line reason naming line and column,
never quoting the file; the others are still ingested. Categorical features' text is
normalised (drs/categories.py) before identical rows are dropped, here and wherever
ingested or test data is read back.

pyarrow's CSV reader parses each file straight into the schema's types (called
directly: ``pd.read_csv(engine="pyarrow")`` infers types, then casts, and renames
a repeated column); pandas drops duplicates and samples; pyarrow writes the CSVs.
``bench/ingest_engines.py`` measures this against Polars, DuckDB and the course loop.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import os
import shutil
import stat
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from drs.categories import normalize_categories
from drs.config import COURSE_SCHEMA, Config, ConfigError, PipelineError, Schema, load_config
from drs.files import (
    FINAL_DATA_FILE,
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    REFERENCE_SAMPLE_FILE,
    REFERENCE_SAMPLE_ROWS,
)
from drs.latest_rows import MISSING_ID_SPELLINGS, clean_ids, file_ranks, latest_per_id
from drs.production import production_store, trained_schema
from drs.storage import atomic_path, input_csvs, stat_fingerprint, write_json_atomic, write_text_atomic

log = logging.getLogger("ingestion")

# pyarrow's missing-value spellings, plus the single space real exports write for "no value": in a
# number column none of them can be a value. In a text column each may be a real category ("NA" for
# North America, "null" for a plan), so there only the empty cell is missing (config `na_values` adds
# spellings everywhere). A text target keeps them all: a row labelled "NA" has no label.
NULL_VALUES = [*pacsv.ConvertOptions().null_values, " "]
TEXT_NULL_VALUES = ("",)
MAX_REASON_CHARS = 200
# A file may carry columns beyond the schema's (they are dropped), but not without bound: pyarrow builds
# a column per header field before anything is checked, and a 40,000-column header took minutes.
MAX_COLUMNS = 1000
MAX_HEADER_BYTES = 256 * 1024
# Larger magnitudes are rejected like inf: no count, size or charge comes near, and they would
# overflow the summary statistics and freeze the solver (liblinear refuses values above 1e30).
MAX_ABS_NUMBER = 1e15


class OverLimit(Exception):
    """A CSV past a size or row limit, refused before it is parsed; the message says which."""


class InvalidFile(Exception):
    """A CSV that does not satisfy the schema; the message says why (``missing``: the schema's columns
    the file lacks, when that is why)."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.missing = missing


def column_types(schema: Schema) -> dict[str, pa.DataType]:
    """Arrow type of each column: numeric features (and a numeric target) as float64, so a missing
    cell is NaN and text is a conversion error; the id, categorical features and a text target as text."""
    numeric = {*schema.numeric_features, *((schema.target_column,) if schema.numeric_target else ())}
    return {name: pa.float64() if name in numeric else pa.string() for name in schema.columns}


@dataclass
class IngestionResult:
    """What one ingestion produced. ``data``: the deduplicated rows (first kept) in schema column order,
    typed by ``column_types`` (a missing value is NaN or None). ``ingested``: file name ->
    {sha256, size, mtime_ns, rows}; ``rejected``: file name -> reason; ``rows_read``: before deduplication."""

    data: pd.DataFrame
    ingested: dict[str, dict]
    rejected: dict[str, str]
    rows_read: int
    every_row: pd.DataFrame = field(repr=False)  # before deduplication, file after file
    spans: dict[str, tuple[int, int]] = field(repr=False)  # file name -> its rows in every_row
    labels: list = field(default_factory=list)  # the target's values in `data`, recorded with each version
    replaced: int = 0  # rows another row of their id replaced (drs.latest_rows)
    new_labels: dict[str, int] = field(default_factory=dict)  # file name -> its rows that gained or changed a label

    @property
    def rows(self) -> int:
        return len(self.data)

    def rows_from(self, names: Iterable[str]) -> pd.DataFrame:
        """The deduplicated rows of just these ingested files (first occurrence kept); other names are ignored."""
        wanted = set(names)
        parts = [self.every_row.iloc[start:stop] for name, (start, stop) in self.spans.items() if name in wanted]
        rows = pd.concat(parts).drop_duplicates(ignore_index=True) if parts else self.data.iloc[:0]
        if self.replaced:  # a row a later row of its id replaced is no longer one of the data's
            rows = rows[np.isin(row_keys(rows), row_keys(self.data))].reset_index(drop=True)
        return rows


def row_keys(rows: pd.DataFrame) -> np.ndarray:
    """pandas' 64-bit hash of each row's values (uint64), to tell rows seen before without keeping them."""
    return pd.util.hash_pandas_object(rows, index=False).to_numpy()


def read_validated_csv(
    source: str | os.PathLike | bytes | BinaryIO,
    columns: Iterable[str] | None = None,
    schema: Schema = COURSE_SCHEMA,
    na_values: Iterable[str] = (),
    category_mode: str = "trim",
) -> pd.DataFrame:
    """One CSV (a path, its bytes or a binary file), validated and typed; raises InvalidFile saying why.

    UTF-8 with or without BOM, CRLF, quotes, any column order (others dropped), empty cells missing
    (see NULL_VALUES; `na_values` are more spellings of missing). Returns `columns` (default: all of
    the schema's): the features alone for data to predict on (then the id and target may be absent,
    and are not read). Numeric features finite; the target one of the schema's labels, when it has
    them, or missing; categorical features normalised by `category_mode` (config normalize_categories).
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidFile(f"cannot read: {exc.strerror}") from None
    data = source if isinstance(source, bytes) else source.read()
    wanted, missing = tuple(schema.columns if columns is None else columns), tuple(na_values)
    frame = _parse(data, wanted, schema, missing).to_pandas()
    categorical = [name for name in schema.categorical_features if name in wanted]
    return normalize_categories(frame, categorical, category_mode, missing)


def csv_rows_at_most(data: bytes) -> int:
    """An upper bound on the rows of a CSV, from its line count alone (a quoted line break counts as a row)."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return max(0, lines - 1)


def check_rows(data: bytes, max_rows: int) -> None:
    """OverLimit when the CSV in `data` may hold more than `max_rows` rows: counted before it is parsed."""
    if csv_rows_at_most(data) > max_rows:
        raise OverLimit(f"more than max_request_rows {max_rows} rows: not parsed")


def read_bounded_csv(path: Path, max_bytes: int, max_rows: int, chunk: int = 1 << 20) -> bytes:
    """The bytes of a CSV a client named; OverLimit, without reading it all, past `max_bytes` bytes or
    `max_rows` rows (lines); InvalidFile when it cannot be read."""
    try:
        # A file swapped for a FIFO or a link since it was looked up must not hang the worker or lead out.
        handle = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb")  # noqa: SIM115
    except OSError as exc:
        raise InvalidFile(f"cannot open: {exc.strerror}") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidFile("not a regular file: not read")
        if info.st_size > max_bytes:
            raise OverLimit(f"{info.st_size} bytes, over max_input_file_bytes {max_bytes}: not read")
        parts, size, lines = [], 0, 0
        try:
            while block := handle.read(chunk):
                parts.append(block)
                size, lines = size + len(block), lines + block.count(b"\n")
                if size > max_bytes:  # grown since it was looked at
                    raise OverLimit(f"over max_input_file_bytes {max_bytes}: not read further")
                if lines > max_rows + 1:
                    raise OverLimit(f"more than max_request_rows {max_rows} rows: not read further")
        except OSError as exc:
            raise InvalidFile(f"cannot read: {exc.strerror}") from None
    data = b"".join(parts)
    check_rows(data, max_rows)
    return data


def _convert_options(
    types: dict[str, pa.DataType], na_values: tuple[str, ...] = (), text_values: bool = True
) -> pacsv.ConvertOptions:
    """`text_values`: every string of a text column is read as a value (then `_text_missing` says which
    are missing); otherwise a text column's missing spellings are those of numbers."""
    return pacsv.ConvertOptions(
        column_types=types, null_values=[*NULL_VALUES, *na_values], strings_can_be_null=not text_values
    )


def _text_missing(table: pa.Table, schema: Schema, na_values: tuple[str, ...]) -> pa.Table:
    """The text columns of `table` (read with every string a value) with their missing cells made null:
    the empty cell and `na_values`; in a text target every NULL_VALUES spelling as well."""
    for index, name in enumerate(table.column_names):
        values = table[name]
        if values.type != pa.string():
            continue
        spellings = NULL_VALUES if name == schema.target_column else TEXT_NULL_VALUES
        missing = pc.is_in(values, pa.array([*spellings, *na_values], pa.string()))
        table = table.set_column(index, name, pc.if_else(missing, pa.scalar(None, pa.string()), values))
    return table


def _parse(data: bytes, columns: tuple[str, ...], schema: Schema, na_values: tuple[str, ...] = ()) -> pa.Table:
    """The CSV in `data` as an Arrow table of `columns` in schema types; raises InvalidFile."""
    bad_rows = []

    def note_bad_row(row) -> str:
        bad_rows.append(row)
        return "skip"

    _check_header_size(data)
    _check_utf8(data)
    types = column_types(schema)
    try:  # files are read in parallel, one per thread: Arrow's own threads would only contend
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=note_bad_row),
            convert_options=_convert_options({name: types[name] for name in columns}, na_values),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _why_unreadable(data, exc, columns, types, schema, na_values) from None
    if bad_rows:
        raise InvalidFile(
            f"line {bad_rows[0].number}: {bad_rows[0].actual_columns} field(s), expected {bad_rows[0].expected_columns}"
        )
    try:  # pyarrow decodes the column names only when asked
        problem = _column_problem(table.column_names, columns)
    except UnicodeDecodeError:
        raise InvalidFile("line 1: the header is not UTF-8 text") from None
    if problem:
        raise problem
    table = _text_missing(table.select(list(columns)), schema, na_values)
    for name in columns:
        values = table[name]
        if name == schema.target_column and not schema.numeric_target:
            # "Yes " is "Yes": exports pad text; a label must not split on a stray space.
            table = table.set_column(table.column_names.index(name), name, pc.utf8_trim_whitespace(values))
        elif name == schema.target_column and schema.labels is not None:
            _reject_first(
                pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(schema.labels, pa.float64())))),
                name,
                f"must be {' or '.join(map(str, schema.labels))}",
            )
        elif types[name] == pa.float64():
            _reject_first(
                pc.greater_equal(pc.abs(values), MAX_ABS_NUMBER),
                name,
                f"not a finite number below {MAX_ABS_NUMBER:g} in magnitude",
            )
    return table


def _check_utf8(data: bytes, chunk: int = 1 << 20) -> None:
    """InvalidFile naming the first line that is not UTF-8. Checked before pyarrow parses: its invalid-row
    handler would otherwise print a traceback for the undecodable row (cron mails whatever goes to stderr)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk, decoded with this one
        try:
            decoder.decode(view[start : start + chunk], final=start + chunk >= len(data))
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, max(0, start - pending + exc.start)) + 1
            raise InvalidFile(f"line {line}: not UTF-8 text") from None


def _check_header_size(data: bytes) -> None:
    """InvalidFile when the header line is longer than MAX_HEADER_BYTES or has more than MAX_COLUMNS fields:
    checked on the first line alone, before the file is parsed."""
    end = data.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    if end < 0 and len(data) > MAX_HEADER_BYTES:
        raise InvalidFile(f"line 1: the header is longer than {MAX_HEADER_BYTES} bytes")
    header = data[: end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")
    try:
        fields = len(next(csv.reader([header]), []))
    except csv.Error:  # not a CSV header at all (a binary file): the parse says what is wrong
        return
    if fields > MAX_COLUMNS:
        raise InvalidFile(f"line 1: {fields} columns, more than the {MAX_COLUMNS} an input file may have")


def _column_problem(names: list[str], columns: tuple[str, ...]) -> InvalidFile | None:
    seen: set[str] = set()
    for name in names:  # one pass: a header of tens of thousands of names is checked in milliseconds
        if name in seen:
            return InvalidFile(f"duplicate column name {name!r}")
        seen.add(name)
    missing = tuple(name for name in columns if name not in names)
    return InvalidFile(f"missing column(s): {', '.join(missing)}", missing) if missing else None


def _reject_first(bad: pa.ChunkedArray, column: str, problem: str) -> None:
    first = pc.index(bad, True).as_py()
    if first >= 0:
        raise InvalidFile(f"line {first + 2}, column {column!r}: {problem}")


def _why_unreadable(
    data: bytes,
    error: Exception,
    columns: tuple[str, ...],
    types: dict[str, pa.DataType],
    schema: Schema,
    na_values: tuple[str, ...] = (),
) -> InvalidFile:
    """Where a file the typed read refused goes wrong, found by simpler reads; never quotes the file."""
    for number, line in enumerate(io.BytesIO(data), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return InvalidFile(f"line {number}: not UTF-8 text")
    message = str(error).strip()
    if message.startswith("Empty CSV file"):
        return InvalidFile("empty file: no header line")
    try:  # every column as text, to find the cell that is not a number
        text = pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=_convert_options({name: pa.string() for name in columns}, na_values, text_values=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        text = pa.table({})
    if text.num_columns and (problem := _column_problem(text.column_names, columns)):
        return problem
    for name in (name for name in columns if name in text.column_names and types[name] == pa.float64()):
        cells = text[name].to_pandas()
        bad = cells.notna() & pd.to_numeric(cells, errors="coerce").isna()
        if bad.any():
            hint = (
                (
                    f" (schema.positive_label {schema.positive_label!r} is a number: for a text target write it as "
                    "a string)"
                )
                if name == schema.target_column
                else ""
            )
            return InvalidFile(f"line {int(bad.to_numpy().argmax()) + 2}, column {name!r}: not a number{hint}")
    # Arrow's message quotes the offending value or row after a colon: keep only what precedes it.
    return InvalidFile(f"not a readable CSV file ({message.splitlines()[0].split(':')[0]})")


def _read_input(path: Path, max_bytes: int, schema: Schema, na_values: tuple[str, ...] = ()) -> tuple[dict, pa.Table]:
    """(fingerprint, validated rows) of one input file; raises InvalidFile. Its size is checked before reading."""
    # Resolved again here and opened without following a link: a file swapped for a link
    # to the outside since the folder was listed is still never read.
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(path.parent))):
        raise InvalidFile("a link to outside the input folder: not read")
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since listing, opening it must not hang.
        handle = open(os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb")  # noqa: SIM115
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
    fingerprint = {"sha256": hashlib.sha256(data).hexdigest(), **stat_fingerprint(info)}
    return fingerprint, _parse(data, schema.columns, schema, na_values)


def deployed_labels(config: Config) -> tuple[str, tuple] | None:
    """(version, labels) of the deployed model when it was trained for this schema's target and positive
    label: once a model is deployed its labels are fixed. None with the labels fixed by the schema,
    nothing deployed (or production unreadable), or a model trained for another target.

    The labels ingestion recorded for the version (ingestedfiles.json), else the model's own classes_.
    """
    schema = config.schema
    if schema.labels is not None:
        return None
    store = production_store(config)
    try:
        manifest = store.deployed_state()
    except PipelineError:
        return None
    if manifest is None:
        return None
    trained = trained_schema(manifest)
    if (trained.get("target_column"), trained.get("positive_label")) != (schema.target_column, schema.positive_label):
        return None
    version = manifest["version"]
    labels = store.ingested_detail(version).get("labels")
    if not (isinstance(labels, list) and len(labels) == 2 and schema.positive_label in labels):
        try:  # a version ingested before the labels were recorded
            model: Any = store.load_model().model
            labels = list(model.classes_.tolist())
        except (PipelineError, AttributeError):
            return None
    return version, tuple(labels)


def _odd_labels(
    tables: dict[str, pa.Table], schema: Schema, deployed: tuple[str, tuple] | None = None
) -> dict[str, str]:
    """Files whose target holds a value beyond the two labels, with the reason (name -> why).

    With the labels not fixed by the schema, they are the deployed model's (`deployed`: its version
    and labels): a file that disagrees with the model is rejected, however large. With nothing
    deployed, the positive label and the most frequent other value across all files: one odd export
    (lower case, a third value) is rejected, never the files that agree with the rest, whatever the
    names' order.
    """
    if schema.labels is not None:
        return {}
    if deployed is not None:
        labels, whose = set(deployed[1]), f"of the deployed model {deployed[0]}"
    else:
        counts: dict = {}
        for table in tables.values():
            for entry in pc.value_counts(table[schema.target_column].drop_null()).to_pylist():
                counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
        if counts and schema.positive_label not in counts:
            raise ConfigError(
                f"schema.positive_label {schema.positive_label!r} is not a value of column "
                f"{schema.target_column!r} in any input file (its values: "
                f"{', '.join(sorted(map(repr, counts)))[:120]})"
            )
        others = sorted(
            (value for value in counts if value != schema.positive_label), key=lambda v: (-counts[v], str(v))
        )
        labels, whose = {schema.positive_label, *others[:1]}, "of the input files"
    odd = {}
    for name, table in tables.items():
        extra = set(pc.unique(table[schema.target_column].drop_null()).to_pylist()) - labels
        if extra:
            odd[name] = (
                f"column {schema.target_column!r}: value(s) {', '.join(sorted(map(repr, extra)))[:80]} beyond "
                f"the two labels {', '.join(sorted(map(repr, labels)))} {whose}"
            )
    return odd


def merge_multiple_dataframe(config: Config | None = None, write: bool = True) -> IngestionResult:
    """Merge every valid CSV of the input folder into an IngestionResult; write the outputs when `write`
    (then PipelineError when no file is valid, earlier outputs left as they were)."""
    config = config or load_config()
    schema = config.schema
    started = time.perf_counter()
    valid, rejected, missing = _read_inputs(config)
    tables, ingested, spans, rows_read = [], {}, {}, 0
    for name, (fingerprint, table) in valid.items():
        tables.append(table)
        ingested[name] = {**fingerprint, "rows": table.num_rows}
        spans[name] = (rows_read, rows_read + table.num_rows)
        rows_read += table.num_rows
    for name, reason in rejected.items():
        log.warning("rejected %s: %s", name, reason)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    # Files that share no column with the schema are strays; among the others, a column that every
    # one lacks means the schema is wrong, not the files.
    missing = [columns for columns in missing if len(columns) < len(schema.columns)]
    if not ingested and missing and (nowhere := set.intersection(*missing)):
        raise ConfigError(
            f"{config.path}: schema column(s) {', '.join(sorted(nowhere))} in no input file of {config.input_folder}"
        )
    every_row = pa.concat_tables([pa.schema(column_types(schema)).empty_table(), *tables]).to_pandas()
    del tables, valid
    # Before deduplication: " owner " and "owner" rows are the same row, of one category.
    normalize_categories(every_row, schema.categorical_features, config.normalize_categories, config.na_values)
    if schema.id_column is not None:
        every_row[schema.id_column] = clean_ids(every_row[schema.id_column], (*MISSING_ID_SPELLINGS, *config.na_values))
    # The course keeps the first of identical rows; so do we (NaN equals NaN). Then one row per id.
    unique = every_row.drop_duplicates()
    latest = latest_per_id(unique, _files_of_rows(spans, len(every_row))[unique.index], file_ranks(ingested), schema)
    data = latest.data
    labels = sorted(pd.unique(data[schema.target_column].dropna()).tolist(), key=str)
    result = IngestionResult(data, ingested, rejected, rows_read, every_row, spans, labels, latest.replaced)
    result.new_labels = latest.new_labels
    dedup_seconds = time.perf_counter() - started
    log.info(
        "read %d file(s), %d row(s); %d unique row(s); rejected %d file(s)",
        len(ingested),
        rows_read,
        result.rows,
        len(rejected),
    )
    if latest.replaced:
        log.info(
            "%d row(s) replaced by a later row of their %s; %d row(s) gained or changed a label",
            latest.replaced,
            schema.id_column,
            sum(latest.new_labels.values()),
        )
    if write:
        _write_result(result, config, read_seconds, dedup_seconds)
    return result


def _files_of_rows(spans: dict[str, tuple[int, int]], rows: int) -> np.ndarray:
    """The file name of each row of `every_row`."""
    files = np.empty(rows, dtype=object)
    for name, (start, stop) in spans.items():
        files[start:stop] = name
    return files


def _read_inputs(config: Config) -> tuple[dict[str, tuple[dict, pa.Table]], dict[str, str], list[set[str]]]:
    """(name -> (fingerprint, table) of the valid files, name -> reason of the rejected ones in name order,
    the schema columns each file lacked), the files read in parallel."""
    paths, rejected = input_csvs(config.input_folder)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        reads = [
            pool.submit(_read_input, path, config.max_input_file_bytes, config.schema, config.na_values)
            for path in paths
        ]
    valid, missing = {}, []
    for path, read in zip(paths, reads, strict=True):
        try:
            valid[path.name] = read.result()
        except InvalidFile as exc:
            rejected[path.name] = str(exc)[:MAX_REASON_CHARS]
            missing.append(set(exc.missing))
    odd = _odd_labels({name: table for name, (_, table) in valid.items()}, config.schema, deployed_labels(config))
    rejected.update({name: why[:MAX_REASON_CHARS] for name, why in odd.items()})
    return {name: read for name, read in valid.items() if name not in odd}, dict(sorted(rejected.items())), missing


def _write_result(result: IngestionResult, config: Config, read_seconds: float, dedup_seconds: float) -> None:
    if not result.ingested:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.rejected.items())
        raise PipelineError(f"no valid CSV file in {config.input_folder}" + (f" ({reasons})" if reasons else ""))
    started = time.perf_counter()
    write_outputs(result, config.output_folder)
    # Left by earlier versions, which cached parsed files there.
    shutil.rmtree(config.output_folder / ".parsed", ignore_errors=True)
    log.info(
        "seconds: read %.3f, deduplicate %.3f, write %.3f",
        read_seconds,
        dedup_seconds,
        time.perf_counter() - started,
    )


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), tmp)


def write_outputs(result: IngestionResult, output_folder: Path) -> None:
    """Write finaldata.csv, referencedata.csv, ingestedfiles.json, then ingestedfiles.txt, each atomically."""
    data = result.data
    _write_csv(data, output_folder / FINAL_DATA_FILE)
    sample = data.sample(n=REFERENCE_SAMPLE_ROWS, random_state=0) if len(data) > REFERENCE_SAMPLE_ROWS else data
    _write_csv(sample, output_folder / REFERENCE_SAMPLE_FILE)
    write_json_atomic(
        output_folder / INGESTED_DETAIL_FILE,
        {
            "files": result.ingested,
            "rejected": result.rejected,
            "rows_read": result.rows_read,
            "rows": result.rows,
            "labels": result.labels,
        },
    )
    # The course's record is written last: its presence means the rest is there.
    write_text_atomic(output_folder / INGESTED_RECORD_FILE, "".join(f"{name}\n" for name in result.ingested))


def read_final_data(config: Config, path: Path | BinaryIO | None = None) -> pd.DataFrame:
    """finaldata.csv (or another file ingestion wrote, e.g. referencedata.csv, or its bytes) in schema types."""
    path = path or config.output_folder / FINAL_DATA_FILE
    columns = list(config.schema.columns)
    try:
        table = pacsv.read_csv(path, convert_options=_convert_options(column_types(config.schema), config.na_values))
        frame = _text_missing(table.select(columns), config.schema, config.na_values).to_pandas()
    except FileNotFoundError:
        raise PipelineError(f"no ingested data at {path}: run ingestion.py first") from None
    except (pa.ArrowInvalid, KeyError):  # KeyError: written under another schema
        raise PipelineError(
            f"{path}: not a CSV file ingestion wrote with this schema: run ingestion.py again"
        ) from None
    # A sample kept by a version ingested before categories were normalised is read as one ingested now.
    return normalize_categories(
        frame, config.schema.categorical_features, config.normalize_categories, config.na_values
    )


def read_labelled_csv(
    path: Path, schema: Schema = COURSE_SCHEMA, na_values: Iterable[str] = (), category_mode: str = "trim"
) -> pd.DataFrame:
    """A CSV validated like an input file (used for the test data); PipelineError naming it when invalid."""
    try:
        return read_validated_csv(path, schema=schema, na_values=na_values, category_mode=category_mode)
    except InvalidFile as exc:
        raise PipelineError(f"{path}: {exc}") from None
