"""Ingestion: merge every CSV of the input folder into one deduplicated dataset.

Reads ``input_folder_path/*.csv`` in sorted order, validates each file against
the schema, and writes to ``output_folder_path``:

* ``finaldata.csv``      the merged rows, duplicates dropped, schema column order;
* ``ingestedfiles.txt``  one ingested file name per line (the course's record);
* ``ingestedfiles.json`` per file: sha256, size, mtime and row count, plus the
  rejected files with their reasons.

A file that fails validation is rejected as a whole, with a one-line warning,
and the other files are still ingested.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

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
    argument_parser,
    load_config,
    run_cli,
    setup_logging,
)
from storage import atomic_path, fingerprint_files, list_input_csvs, write_json_atomic, write_text_atomic

log = logging.getLogger("ingestion")

# Read features and target as float64: a non-numeric cell is then a clear
# conversion error, and a missing cell is a null we can count.
COLUMN_TYPES = {ID_COLUMN: pa.string(), **{name: pa.float64() for name in FEATURE_COLUMNS}, TARGET_COLUMN: pa.float64()}
ARROW_SCHEMA = pa.schema([(ID_COLUMN, pa.string()), *[(n, pa.float64()) for n in FEATURE_COLUMNS], (TARGET_COLUMN, pa.int8())])


class InvalidFile(Exception):
    """A CSV that does not satisfy the schema; the message says why."""


@dataclass
class IngestionResult:
    data: pd.DataFrame
    ingested: dict[str, dict] = field(default_factory=dict)   # name -> sha256, size, mtime_ns, rows
    rejected: dict[str, str] = field(default_factory=dict)    # name -> reason
    rows_read: int = 0

    @property
    def rows(self) -> int:
        return len(self.data)


def read_validated_csv(path: Path) -> pa.Table:
    """Read one CSV and return it as a table in the schema's columns and types.

    Accepts UTF-8 with or without BOM, CRLF line ends, quoted fields, the
    required columns in any order (extra ones dropped) and missing values.
    Raises InvalidFile naming the first problem found.
    """
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidFile(_first_line(str(exc))) from None
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
    present = target.drop_null()
    if len(present) and not pc.all(pc.is_in(present, value_set=pa.array([0.0, 1.0]))).as_py():
        bad = pc.filter(present, pc.invert(pc.is_in(present, value_set=pa.array([0.0, 1.0]))))[0].as_py()
        raise InvalidFile(f"column {TARGET_COLUMN} must be 0 or 1, found {bad:g}")
    return table.set_column(table.schema.get_field_index(TARGET_COLUMN), TARGET_COLUMN, pc.cast(target, pa.int8()))


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unreadable CSV"


def _empty_frame() -> pd.DataFrame:
    return ARROW_SCHEMA.empty_table().to_pandas()


def merge_multiple_dataframe(config: Config | None = None, write: bool = True) -> IngestionResult:
    """Merge every valid CSV of the input folder; write the outputs when `write`.

    Returns an IngestionResult: the deduplicated DataFrame (schema column
    order), the ingested files with hash and row count, the rejected files
    with reasons.
    """
    config = config or load_config()
    paths = list_input_csvs(config.input_folder)
    fingerprints = fingerprint_files(paths)
    tables: list[pa.Table] = []
    result = IngestionResult(data=_empty_frame())
    for path in paths:
        try:
            table = read_validated_csv(path)
        except InvalidFile as exc:
            result.rejected[path.name] = str(exc)
            log.warning("rejected %s: %s", path, exc)
            continue
        tables.append(table)
        result.ingested[path.name] = {**fingerprints[path.name], "rows": table.num_rows}
        result.rows_read += table.num_rows

    if tables:
        merged = pa.concat_tables(tables).to_pandas()
        # The course keeps the first of identical rows; so do we.
        result.data = merged.drop_duplicates(ignore_index=True)
    log.info(
        "read %d file(s), %d row(s); %d unique row(s); rejected %d file(s)",
        len(result.ingested), result.rows_read, result.rows, len(result.rejected),
    )
    if write:
        if not result.ingested:
            reasons = "; ".join(f"{name}: {why}" for name, why in result.rejected.items())
            raise PipelineError(f"no valid CSV file in {config.input_folder}" + (f" ({reasons})" if reasons else ""))
        write_outputs(result, config.output_folder)
    return result


def reference_sample(data: pd.DataFrame) -> pd.DataFrame:
    """A fixed-size random sample of the data, kept with a deployment for later drift tests."""
    if len(data) <= REFERENCE_SAMPLE_ROWS:
        return data
    return data.sample(n=REFERENCE_SAMPLE_ROWS, random_state=0)


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    table = pa.Table.from_pandas(frame, schema=ARROW_SCHEMA, preserve_index=False)
    with atomic_path(target) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))


def write_outputs(result: IngestionResult, output_folder: Path) -> None:
    """Write finaldata.csv, its reference sample, ingestedfiles.txt and ingestedfiles.json, each atomically."""
    _write_csv(result.data, output_folder / FINAL_DATA_FILE)
    _write_csv(reference_sample(result.data), output_folder / REFERENCE_SAMPLE_FILE)
    write_json_atomic(
        output_folder / INGESTED_DETAIL_FILE,
        {"files": result.ingested, "rejected": result.rejected, "rows_read": result.rows_read, "rows": result.rows},
    )
    # The course's record is written last: its presence means the rest is there.
    write_text_atomic(output_folder / INGESTED_RECORD_FILE, "".join(f"{name}\n" for name in result.ingested))


def read_final_data(config: Config, path: Path | None = None) -> pd.DataFrame:
    """The ingested dataset (or another file ingestion wrote), in schema types."""
    path = path or config.output_folder / FINAL_DATA_FILE
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=COLUMN_TYPES, strings_can_be_null=False))
    except FileNotFoundError:
        raise PipelineError(f"no ingested data at {path}: run ingestion.py first") from None
    except pa.ArrowInvalid as exc:
        raise PipelineError(f"{path}: {_first_line(str(exc))}") from None
    return table.to_pandas()


def read_labelled_csv(path: Path) -> pd.DataFrame:
    """A CSV validated like an input file (used for test data and API files)."""
    try:
        return read_validated_csv(path).to_pandas()
    except InvalidFile as exc:
        raise PipelineError(f"{path}: {exc}") from None


def main(argv=None) -> int:
    def body(argv):
        args = argument_parser("Merge every CSV of the input folder into finaldata.csv.").parse_args(argv)
        config = load_config(args.config)
        setup_logging()
        result = merge_multiple_dataframe(config)
        print(f"wrote {config.output_folder / FINAL_DATA_FILE} ({result.rows} rows from {len(result.ingested)} file(s))")
        return 0

    return run_cli("ingestion", body, argv)


if __name__ == "__main__":
    sys.exit(main())
