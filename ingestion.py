"""Ingestion: merge every CSV of the input folder into one deduplicated dataset.

Reads ``input_folder_path/*.csv`` in sorted order, validates each file against
the schema, and writes to ``output_folder_path``:

* ``finaldata.csv``      the merged rows, duplicates dropped, schema column order;
* ``ingestedfiles.txt``  one ingested file name per line (the course's record);
* ``ingestedfiles.json`` per file: sha256, size, mtime and row count, plus the
  rejected files with their reasons.

A file that fails validation is rejected as a whole, with a one-line warning,
and the other files are still ingested.

Incremental: each file's validated table (or its rejection reason) is kept in
``output_folder_path/.parsed/`` under the sha256 of its bytes, so a run parses
only new or changed files; the rest of its cost is merging and writing the
output. Nothing here needs pandas: the DataFrame of the result is built on
first use.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc  # noqa: F401  (pa.ipc)

from settings import (
    ALL_COLUMNS,
    FEATURE_COLUMNS,
    FINAL_DATA_FILE,
    ID_COLUMN,
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    REFERENCE_SAMPLE_FILE,
    REFERENCE_SAMPLE_ROWS,
    TARGET_COLUMN,
    Config,
    PipelineError,
    load_config,
    stage_main,
)
from storage import atomic_path, list_input_csvs, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ingestion")

# Read features and target as float64: a non-numeric cell is then a clear
# conversion error, and a missing cell is a null we can count.
COLUMN_TYPES = {ID_COLUMN: pa.string(), **{name: pa.float64() for name in FEATURE_COLUMNS}, TARGET_COLUMN: pa.float64()}
ARROW_SCHEMA = pa.schema([(ID_COLUMN, pa.string()), *[(n, pa.float64()) for n in FEATURE_COLUMNS], (TARGET_COLUMN, pa.int8())])

_NUMPY_TYPES = {pa.float64(): np.float64, pa.float32(): np.float32, pa.int8(): np.int8, pa.int16(): np.int16,
                pa.int32(): np.int32, pa.int64(): np.int64, pa.uint64(): np.uint64}

# Parsed files are cached here, one Arrow IPC file per content hash. The
# folder name carries a format number: changing how files are validated or
# typed must change it, so that old entries are never read as new ones.
PARSED_CACHE_DIR = ".parsed/v3"
ROW_HASH_COLUMN = "__row_hash"  # stored beside a cached table: deduplication then needs no rehashing


class InvalidFile(Exception):
    """A CSV that does not satisfy the schema; the message says why."""


class IngestionResult:
    """What one ingestion produced.

    ``data`` is the deduplicated DataFrame (schema column order), built from
    ``table`` on first use; ``ingested`` maps each ingested file name to its
    sha256, size, mtime_ns and rows; ``rejected`` maps each rejected file name
    to its reason.
    """

    def __init__(self, data: "pd.DataFrame | None" = None, ingested: dict | None = None,
                 rejected: dict | None = None, rows_read: int = 0, table: pa.Table | None = None):
        self._data = data
        self.table = table if table is not None or data is not None else _empty_table()
        self.ingested: dict[str, dict] = ingested if ingested is not None else {}
        self.rejected: dict[str, str] = rejected if rejected is not None else {}
        self.rows_read = rows_read

    @property
    def data(self) -> "pd.DataFrame":
        if self._data is None:
            self._data = self.table.to_pandas()
        return self._data

    @data.setter
    def data(self, frame: "pd.DataFrame") -> None:
        self._data, self.table = frame, None

    @property
    def rows(self) -> int:
        return self.table.num_rows if self.table is not None else len(self._data)

    def as_table(self) -> pa.Table:
        """The rows as an Arrow table in ARROW_SCHEMA."""
        if self.table is None:
            self.table = pa.Table.from_pandas(self._data, schema=ARROW_SCHEMA, preserve_index=False)
        return self.table


def read_validated_csv(path: Path) -> pa.Table:
    """Read one CSV and return it as a table in the schema's columns and types.

    Accepts UTF-8 with or without BOM, CRLF line ends, quoted fields, the
    required columns in any order (extra ones dropped) and missing values.
    Raises InvalidFile naming the first problem found.
    """
    return _parse_validated(path)


def _parse_validated(source, use_threads: bool = True) -> pa.Table:
    """read_validated_csv for a path or an in-memory buffer."""
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidFile(_readable_reason(_first_line(str(exc)), source)) from None
    except OSError as exc:
        raise InvalidFile(f"cannot read: {exc}") from None

    missing = [name for name in ALL_COLUMNS if name not in table.column_names]
    if missing:
        raise InvalidFile(f"missing column(s): {', '.join(missing)}")
    table = table.select(list(ALL_COLUMNS))

    for name in FEATURE_COLUMNS:
        column = table[name]
        if column.null_count < len(column) and not pc.all(pc.is_finite(column.drop_null())).as_py():
            raise InvalidFile(f"column {name} has a non-finite value (inf)")

    target = table[TARGET_COLUMN]
    # Checked in numpy: pa.array and pa.scalar (so is_in or equal with a Python
    # number) import pandas, ~0.25 s that ingestion does not otherwise need.
    values, valid = _numpy_values(target)
    present = values[valid]
    invalid = (present != 0.0) & (present != 1.0)
    if invalid.any():
        bad = float(present[np.argmax(invalid)])
        raise InvalidFile(f"column {TARGET_COLUMN} must be 0 or 1, found {bad:g}")
    return table.set_column(table.schema.get_field_index(TARGET_COLUMN), TARGET_COLUMN, pc.cast(target, pa.int8()))


def _numpy_values(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) of a numeric column as numpy arrays; values under nulls are arbitrary.

    Read straight from the Arrow buffers: Array.to_numpy goes through pyarrow's
    pandas bridge and so imports pandas (~0.25 s), which ingestion does not need.
    """
    dtype = _NUMPY_TYPES[column.type]
    values_parts, valid_parts = [], []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        validity, data = chunk.buffers()[:2]
        start, stop = chunk.offset, chunk.offset + len(chunk)
        values_parts.append(np.frombuffer(data, dtype=dtype)[start:stop] if data is not None else np.zeros(len(chunk), dtype))
        if chunk.null_count and validity is not None:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[start:stop]
            valid_parts.append(bits.astype(bool))
        else:
            valid_parts.append(np.ones(len(chunk), dtype=bool))
    if not values_parts:
        return np.empty(0, dtype), np.empty(0, bool)
    return np.concatenate(values_parts), np.concatenate(valid_parts)


MAX_REASON_CHARS = 200


def _readable_reason(message: str, source) -> str:
    """Arrow's message with the column named instead of numbered, cut to a log-friendly length.

    Arrow quotes the offending row; a long or foreign row must not flood the log.
    """
    match = re.search(r"In CSV column #(\d+)", message)
    if match:
        names = _header_names(source)
        index = int(match.group(1))
        if index < len(names):
            message = message.replace(match.group(0), f"In column {names[index]!r}")
    return message if len(message) <= MAX_REASON_CHARS else message[: MAX_REASON_CHARS - 3] + "..."


def _header_names(source) -> list[str]:
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                head = handle.readline(65536)
        else:
            source.seek(0)
            head = source.read(65536)
        return next(csv.reader([bytes(head).split(b"\n", 1)[0].decode("utf-8-sig", "replace").rstrip("\r")]))
    except (OSError, ValueError, StopIteration, csv.Error):
        return []


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unreadable CSV"


def _empty_table() -> pa.Table:
    # Not ARROW_SCHEMA.empty_table(): that imports pandas, ~0.25 s that a run without pandas does not need.
    return pa.Table.from_batches([], schema=ARROW_SCHEMA)


# --- the parsed-file cache ---------------------------------------------------------

class ParsedCache:
    """Validated tables (with their row hashes) and rejection reasons of input files, keyed by the sha256 of their bytes.

    An entry is written atomically, so a run killed mid-write leaves no
    half entry; an unreadable entry counts as a miss and the file is parsed again.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def _table_path(self, sha: str) -> Path:
        return self.folder / f"{sha}.arrow"

    def _rejection_path(self, sha: str) -> Path:
        return self.folder / f"{sha}.rejected"

    def load(self, sha: str) -> tuple[pa.Table, np.ndarray] | InvalidFile | None:
        """(table, row hashes), an InvalidFile carrying the cached reason, or None on a miss."""
        try:
            with pa.OSFile(str(self._table_path(sha))) as source:
                stored = pa.ipc.open_file(source).read_all()
            hashes = _numpy_values(stored[ROW_HASH_COLUMN])[0]
            return stored.drop_columns([ROW_HASH_COLUMN]), hashes
        except (OSError, KeyError, pa.ArrowInvalid):
            pass
        try:
            return InvalidFile(self._rejection_path(sha).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def store(self, sha: str, outcome: tuple[pa.Table, np.ndarray] | InvalidFile) -> None:
        # Renamed into place but not fsynced: an entry lost in a power cut is
        # a cache miss (the file is parsed again), and fsync per file would
        # double the cost of a first run over many files.
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._rejection_path(sha) if isinstance(outcome, InvalidFile) else self._table_path(sha)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            if isinstance(outcome, InvalidFile):
                temporary.write_text(str(outcome), encoding="utf-8")
            else:
                table, hashes = outcome
                stored = table.append_column(ROW_HASH_COLUMN, _arrow_array(hashes, pa.uint64()))
                # lz4 keeps the cache about the size of the CSVs and reads far faster than parsing them.
                # pa.ipc rather than feather.write_feather, which imports pandas (~0.25 s).
                options = pa.ipc.IpcWriteOptions(compression="lz4")
                with pa.OSFile(str(temporary), "wb") as sink, pa.ipc.new_file(sink, stored.schema, options=options) as writer:
                    writer.write_table(stored)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def prune(self, keep: set[str]) -> None:
        """Remove the entries of files no longer in the input folder."""
        try:
            entries = list(self.folder.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.suffix in (".arrow", ".rejected") and entry.stem not in keep:
                entry.unlink(missing_ok=True)


@dataclass
class InputFile:
    """One input file as read: its validated table and row hashes, or why it was rejected."""

    name: str
    fingerprint: dict
    table: pa.Table | None = None
    row_hashes: np.ndarray | None = None
    rejection: InvalidFile | None = None
    parsed: bool = False  # False when it came from the cache


def _read_input(path: Path, known: dict | None, cache: ParsedCache | None) -> InputFile:
    """One input file, from the cache when its hash is known there, else parsed and hashed.

    A file whose size and mtime match `known` keeps its recorded hash and is
    looked up in the cache without being opened. Otherwise its bytes are read
    once, hashed and parsed, so a cache entry always matches the bytes it was
    made from. Safe to run in threads: the heavy parts release the GIL.
    """
    stat = path.stat()
    item = InputFile(path.name, {"sha256": None, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    cached = None
    if known and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns and known.get("sha256"):
        item.fingerprint["sha256"] = known["sha256"]
        cached = cache.load(known["sha256"]) if cache is not None else None
    if cached is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            item.fingerprint["sha256"] = item.fingerprint["sha256"] or ""
            item.rejection = InvalidFile(f"cannot read: {exc}")
            return item
        item.fingerprint["sha256"] = hashlib.sha256(data).hexdigest()
        cached = cache.load(item.fingerprint["sha256"]) if cache is not None else None
    if cached is None:
        item.parsed = True
        try:
            # One thread per file: files are read in parallel, and Arrow's own
            # thread pool inside each small read only adds contention.
            table = _parse_validated(pa.BufferReader(data), use_threads=False)
            cached = (table, row_hashes(table))
        except InvalidFile as exc:
            cached = exc
        if cache is not None:
            cache.store(item.fingerprint["sha256"], cached)
    if isinstance(cached, InvalidFile):
        item.rejection = cached
    else:
        item.table, item.row_hashes = cached
    return item


# --- deduplication without pandas ----------------------------------------------------

def row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row (uint64), equal for rows pandas would call identical.

    Each column's values hash on their own (_column_hash), folded in with a
    splitmix64 round per column: a file's hashes can be computed once, cached,
    and compared with any other file's. Equal rows always hash alike; unequal rows
    collide with odds of about one in 2^64 per pair, and first_occurrences
    checks every match exactly anyway.
    """
    row_hash = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for key in (_column_hash(column) for column in table.columns):
            row_hash = _mix(row_hash ^ key)
    return row_hash


def first_occurrences(table: pa.Table, hashes: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the first of each group of identical rows, in row order.

    Same semantics as pandas' drop_duplicates(keep="first"): missing values
    equal each other, and 0.0 equals -0.0. `hashes` are the table's
    row_hashes (computed when not given). Rows whose hash was seen before
    are checked column by column against the first row with that hash; a
    hash collision falls back to exact dense codes, so the answer never
    depends on luck.
    """
    rows = table.num_rows
    if rows == 0:
        return np.empty(0, dtype=np.int64)
    row_hash = row_hashes(table) if hashes is None else hashes
    # Most rows have a hash nobody else has: find the repeated hashes with one
    # sort, and work out first occurrences only among the rows carrying them.
    ordered = np.sort(row_hash)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) == 0:
        return np.arange(rows, dtype=np.int64)
    candidates = np.flatnonzero(np.isin(row_hash, repeated))
    codes = _codes_by_first_appearance(row_hash[candidates].view(np.int64))
    first = _first_of_each_code(codes)
    repeats, firsts = candidates[~first], candidates[first][codes[~first]]
    later, earlier = table.take(_index_array(repeats)), table.take(_index_array(firsts))
    if not all(_same_values(later[name], earlier[name]) for name in table.column_names):
        return _first_occurrences_exact([_column_key(column) for column in table.columns])
    keep = np.ones(rows, dtype=bool)
    keep[repeats] = False
    return np.flatnonzero(keep)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word (wraps on purpose)."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


_NULL_KEY = np.uint64(0xFFF8_0000_0000_0001)  # a NaN payload Arrow never produces from a CSV


def _numeric_key(column: pa.ChunkedArray) -> np.ndarray:
    """One uint64 per value, equal exactly when pandas would call the values equal (nulls alike, 0.0 == -0.0)."""
    values, valid = _numpy_values(column)
    if values.dtype.kind == "f":
        values = values.astype(np.float64) + 0.0  # -0.0 + 0.0 is 0.0: one key for both, as in pandas
        key = values.view(np.uint64)
    else:
        key = values.astype(np.int64).view(np.uint64)
    key[~valid] = _NULL_KEY
    return key


def _column_key(column: pa.ChunkedArray) -> np.ndarray:
    """One exact uint64 per row, valid within this column: equal exactly when pandas would call the values equal."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return _numeric_key(column)
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return np.concatenate([_numpy_values(chunk.indices)[0] for chunk in encoded.chunks]).astype(np.uint64)


def _column_hash(column: pa.ChunkedArray) -> np.ndarray:
    """One uint64 per row that depends on the value alone, so hashes of different files compare.

    Numbers hash to their exact key; a string to its length and its bytes,
    folded eight at a time.
    """
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return _numeric_key(column)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise TypeError(f"no row hash for a column of type {column.type}")
    return np.concatenate([_string_hashes(chunk) for chunk in column.chunks] or [np.empty(0, np.uint64)])


def _string_hashes(array: pa.StringArray) -> np.ndarray:
    validity, offsets_buffer, data_buffer = array.buffers()
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset:array.offset + len(array) + 1]
    lengths = np.diff(offsets)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    longest = int(lengths.max()) if len(lengths) else 0
    words = -(-longest // 8)
    # Each string's bytes, zero-padded to whole 8-byte words, one row per string;
    # one pass per byte position, so short identifiers cost only a few passes.
    padded = np.zeros((len(lengths), max(words, 1) * 8), dtype=np.uint8)
    starts = offsets[:-1]
    for position in range(longest):
        present = lengths > position
        padded[present, position] = data[starts[present] + position]
    padded = padded.view(np.uint64)
    hashes = lengths.astype(np.uint64)
    with np.errstate(over="ignore"):
        for word in range(words):
            # Only a string's own words: the hash must not depend on the longest string beside it.
            hashes = np.where(lengths > word * 8, _mix(hashes ^ padded[:, word]), hashes)
    if array.null_count:
        hashes[~np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[
            array.offset:array.offset + len(array)].astype(bool)] = _NULL_KEY
    return hashes


def _same_values(left: pa.ChunkedArray, right: pa.ChunkedArray) -> bool:
    """Whether two equally long columns hold the same values row by row (nulls equal nulls, 0.0 equals -0.0)."""
    if pa.types.is_floating(left.type) or pa.types.is_integer(left.type):
        return bool(np.array_equal(_numeric_key(left), _numeric_key(right)))
    equal = pc.equal(left, right)
    # No pc.fill_null(equal, False): a Python scalar would import pandas.
    both_null = pc.and_(pc.is_null(left), pc.is_null(right))
    return bool(pc.all(pc.or_(both_null, pc.and_kleene(pc.is_valid(equal), equal))).as_py())


def _codes_by_first_appearance(values: np.ndarray) -> np.ndarray:
    """Dense codes 0..k-1 of int64 values, numbered in order of first appearance."""
    return _numpy_values(pc.dictionary_encode(_arrow_array(values, pa.int64())).indices)[0].astype(np.int64)


def _first_of_each_code(codes: np.ndarray) -> np.ndarray:
    # Codes are numbered in order of first appearance: a row is a first
    # occurrence exactly when its code exceeds every code before it.
    keep = np.empty(len(codes), dtype=bool)
    keep[0] = True
    np.greater(codes[1:], np.maximum.accumulate(codes)[:-1], out=keep[1:])
    return keep


def _first_occurrences_exact(keys: list[np.ndarray]) -> np.ndarray:
    """first_occurrences by dense codes, combined column by column: slower, collision-free."""
    row_codes = np.zeros(len(keys[0]), dtype=np.int64)
    for key in keys:
        column_codes = _codes_by_first_appearance(key.view(np.int64))
        cardinality = int(column_codes.max()) + 1
        # Both factors are below the row count, so the product fits in int64.
        row_codes = _codes_by_first_appearance(row_codes * cardinality + column_codes)
    return np.flatnonzero(_first_of_each_code(row_codes))


def _arrow_array(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """An Arrow array over a numpy array without nulls, zero-copy (pa.array would import pandas)."""
    values = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[kind])
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _index_array(indices: np.ndarray) -> pa.Array:
    return _arrow_array(indices, pa.int64())


def drop_duplicate_rows(table: pa.Table, hashes: np.ndarray | None = None) -> pa.Table:
    """The table without repeated rows, keeping the first of each (like pandas' drop_duplicates)."""
    keep = first_occurrences(table, hashes)
    removed = table.num_rows - len(keep)
    if removed == 0:
        return table
    if removed <= 4096:
        # A few repeats in a large table: the runs between them, as zero-copy
        # slices, instead of copying every column through take (~0.5 s at 10M rows).
        dropped_mask = np.ones(table.num_rows, dtype=bool)
        dropped_mask[keep] = False
        dropped = np.flatnonzero(dropped_mask)
        starts = np.concatenate([[0], dropped + 1])
        stops = np.concatenate([dropped, [table.num_rows]])
        return pa.concat_tables([table.slice(start, stop - start) for start, stop in zip(starts, stops) if stop > start])
    return table.take(_index_array(keep))


# --- the stage ------------------------------------------------------------------------

def _previous_fingerprints(output_folder: Path) -> dict:
    try:
        return json.loads((output_folder / INGESTED_DETAIL_FILE).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}


def merge_multiple_dataframe(config: Config | None = None, write: bool = True) -> IngestionResult:
    """Merge every valid CSV of the input folder; write the outputs when `write`.

    Returns an IngestionResult: the deduplicated DataFrame (schema column
    order), the ingested files with hash and row count, the rejected files
    with reasons. Files whose bytes were parsed before (same sha256) come
    from the parsed cache; the cache is only written when `write`.
    """
    config = config or load_config()
    paths = list_input_csvs(config.input_folder)
    # A file with the size and mtime recorded last time keeps its recorded hash
    # (as the cron tick's detection does), so unchanged history is not re-read.
    previous = _previous_fingerprints(config.output_folder)
    cache = ParsedCache(config.output_folder / PARSED_CACHE_DIR) if write else None
    result = IngestionResult()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        items = list(pool.map(lambda path: _read_input(path, previous.get(path.name), cache), paths))
    tables, hashes = [], []
    for path, item in zip(paths, items):
        if item.rejection is not None:
            result.rejected[item.name] = str(item.rejection)
            log.warning("rejected %s: %s", path, item.rejection)
            continue
        tables.append(item.table)
        hashes.append(item.row_hashes)
        result.ingested[item.name] = {**item.fingerprint, "rows": item.table.num_rows}
        result.rows_read += item.table.num_rows
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if tables:
        # The course keeps the first of identical rows; so do we.
        result.table = drop_duplicate_rows(pa.concat_tables(tables), np.concatenate(hashes))
    dedup_seconds = time.perf_counter() - started
    log.info(
        "read %d file(s), %d row(s); %d unique row(s); rejected %d file(s)",
        len(result.ingested), result.rows_read, result.rows, len(result.rejected),
    )
    if write:
        if not result.ingested:
            reasons = "; ".join(f"{name}: {why}" for name, why in result.rejected.items())
            raise PipelineError(f"no valid CSV file in {config.input_folder}" + (f" ({reasons})" if reasons else ""))
        started = time.perf_counter()
        write_outputs(result, config.output_folder)
        cache.prune({item.fingerprint["sha256"] for item in items})
        parsed = sum(item.parsed for item in items)
        log.info("seconds: read %.3f (%d file(s) parsed, %d from the cache), deduplicate %.3f, write %.3f",
                 read_seconds, parsed, len(items) - parsed, dedup_seconds, time.perf_counter() - started)
    return result


def _sample_indices(rows: int) -> np.ndarray | None:
    """The rows pandas' sample(n=REFERENCE_SAMPLE_ROWS, random_state=0) takes, or None for all."""
    if rows <= REFERENCE_SAMPLE_ROWS:
        return None
    return np.random.RandomState(0).choice(rows, size=REFERENCE_SAMPLE_ROWS, replace=False).astype(np.intp, copy=False)


def reference_sample(data: "pd.DataFrame") -> "pd.DataFrame":
    """A fixed-size random sample of the data, kept with a deployment for later drift tests."""
    indices = _sample_indices(len(data))
    return data if indices is None else data.take(indices)


def _write_csv(table: pa.Table, target: Path) -> None:
    with atomic_path(target) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))


def write_outputs(result: IngestionResult, output_folder: Path) -> None:
    """Write finaldata.csv, its reference sample, ingestedfiles.txt and ingestedfiles.json, each atomically."""
    table = result.as_table()
    indices = _sample_indices(table.num_rows)
    _write_csv(table, output_folder / FINAL_DATA_FILE)
    _write_csv(table if indices is None else table.take(_index_array(indices)), output_folder / REFERENCE_SAMPLE_FILE)
    write_json_atomic(
        output_folder / INGESTED_DETAIL_FILE,
        {"files": result.ingested, "rejected": result.rejected, "rows_read": result.rows_read, "rows": result.rows},
    )
    # The course's record is written last: its presence means the rest is there.
    write_text_atomic(output_folder / INGESTED_RECORD_FILE, "".join(f"{name}\n" for name in result.ingested))


def read_final_data(config: Config, path: Path | None = None) -> "pd.DataFrame":
    """The ingested dataset (or another file ingestion wrote), in schema types."""
    path = path or config.output_folder / FINAL_DATA_FILE
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES, strings_can_be_null=False))
    except FileNotFoundError:
        raise PipelineError(f"no ingested data at {path}: run ingestion.py first") from None
    except pa.ArrowInvalid as exc:
        raise PipelineError(f"{path}: {_first_line(str(exc))}") from None
    return table.to_pandas()


def read_labelled_csv(path: Path) -> "pd.DataFrame":
    """A CSV validated like an input file (used for test data and API files)."""
    try:
        return read_validated_csv(path).to_pandas()
    except InvalidFile as exc:
        raise PipelineError(f"{path}: {exc}") from None


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        result = merge_multiple_dataframe(config)
        return f"wrote {config.output_folder / FINAL_DATA_FILE} ({result.rows} rows from {len(result.ingested)} file(s))"

    return stage_main("ingestion", "Merge every CSV of the input folder into finaldata.csv.", run, argv)


if __name__ == "__main__":
    sys.exit(main())
