"""The model's input a POST /prediction carries, validated before the model sees it.

Four forms: ``?filepath=`` (no body), a JSON body with ``filepath`` or ``records``, or a CSV
body. A file named by a client is read only when it lies inside a configured data folder. Every form
is bounded before it is parsed: a file by max_input_file_bytes, a body by max_request_bytes, and each
by max_request_rows (413 past any of them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from drs.api.errors import ApiError
from drs.categories import missing_spellings, normalize_value
from drs.config import Config, Schema
from drs.ingest import InvalidFile, OverLimit, check_rows, read_bounded_csv, read_validated_csv
from drs.train import feature_matrix


def _record_value(row: int, name: str, value, numeric: bool, missing_text: frozenset[str], category_mode: str):
    """One feature of one record, checked: a numeric one a finite number (as a float), a categorical one a
    string, normalised as ingestion normalises a cell. null is a missing value, as an empty CSV cell is;
    so is a text a CSV cell would be missing as (`missing_text`: normalised spellings)."""
    if value is None:
        return math.nan if numeric else None
    if not numeric:
        if not isinstance(value, str):
            raise ApiError(
                400,
                f"record {row}: feature '{name}' is categorical: it must be a string, got {type(value).__name__}",
            )
        value = normalize_value(value, category_mode)
        return None if value in missing_text else value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"record {row}: feature '{name}' must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):
        raise ApiError(400, f"record {row}: feature '{name}' must be finite")
    return value


def records_to_features(
    records,
    schema: Schema,
    max_rows: int | None = None,
    na_values: tuple[str, ...] = (),
    category_mode: str = "trim",
):
    """The model's input from JSON records, each checked against the schema: a numeric feature a
    finite number, a categorical one a string (normalised as ingestion does, by `category_mode`), null
    a missing value (imputed as in training); a feature left out is an error (400 naming it). More
    than `max_rows` records: 413."""
    if not isinstance(records, list) or not records:
        raise ApiError(400, "'records' must be a non-empty list of objects")
    if max_rows is not None and len(records) > max_rows:
        raise ApiError(413, f"{len(records)} records, more than max_request_rows {max_rows}")
    numeric = set(schema.numeric_features)
    missing_text = missing_spellings(category_mode, na_values)
    columns: dict[str, list] = {name: [] for name in schema.features}
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(400, f"record {row} is not an object")
        for name, values in columns.items():
            if name not in record:
                raise ApiError(400, f"record {row}: missing feature '{name}'")
            values.append(_record_value(row, name, record[name], name in numeric, missing_text, category_mode))
    return feature_matrix(columns, schema)


def csv_to_features(data: bytes, what: str, config: Config):
    """A CSV's feature columns (its bytes) as the model's input, validated as ingestion validates an
    input file (the same reasons, which never quote the file). An empty cell is a missing value,
    imputed as in training. More than max_request_rows rows: 413, before it is parsed."""
    schema = config.schema
    try:
        check_rows(data, config.max_request_rows)
        features = read_validated_csv(
            data,
            columns=schema.features,
            schema=schema,
            na_values=config.na_values,
            category_mode=config.normalize_categories,
        )
    except OverLimit as exc:
        raise ApiError(413, f"{what}: {exc}") from None
    except InvalidFile as exc:
        raise ApiError(400, f"{what}: {exc}") from None
    if len(features) == 0:
        raise ApiError(400, f"{what}: no rows")
    return feature_matrix(features, schema)


def resolve_data_file(config: Config, filepath) -> Path:
    """The CSV a client named, if it lies inside a configured data folder; never reads it."""
    if not isinstance(filepath, str) or not filepath.strip():
        raise ApiError(400, "'filepath' must be a non-empty string")
    if "\x00" in filepath:
        raise ApiError(400, "'filepath' must not contain a NUL character")
    candidate = Path(filepath)
    if not candidate.is_absolute():
        candidate = config.path.parent / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise ApiError(400, f"filepath {filepath!r} cannot be resolved: {exc}") from None
    allowed = [folder.resolve() for folder in config.data_folders]
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        raise ApiError(
            403,
            f"filepath {filepath!r} is outside the data folders (a relative path starts at the config file's folder)",
        )
    if resolved.suffix.lower() != ".csv":
        raise ApiError(400, f"filepath {filepath!r} is not a .csv file")
    try:
        found = resolved.is_file()
    except OSError as exc:  # a file name over the file system's limit
        raise ApiError(400, f"filepath {filepath!r} cannot be looked up: {exc.strerror}") from None
    if not found:
        raise ApiError(404, f"filepath {filepath!r} not found")
    return resolved


def data_file_features(config: Config, filepath):
    """The model's input from a CSV a client named (see resolve_data_file)."""
    path = resolve_data_file(config, filepath)
    try:
        data = read_bounded_csv(path, config.max_input_file_bytes, config.max_request_rows)
    except OverLimit as exc:
        raise ApiError(413, f"{path.name}: {exc}") from None
    except InvalidFile as exc:
        raise ApiError(400, f"{path.name}: {exc}") from None
    return csv_to_features(data, path.name, config)


def request_body(limit: int) -> bytes:
    """The request body; RequestEntityTooLarge (413) past `limit` bytes, read no further."""
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body: Werkzeug's get_data() would cut it at the limit without an error.
        body = request.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return body
    return request.get_data(cache=False)  # 413 from Werkzeug, before reading, for a Content-Length over it


def _query_file_features(config: Config, filepaths: list[str]):
    """The input of ``POST /prediction?filepath=...``: one filepath and no body."""
    if len(filepaths) > 1:
        raise ApiError(400, "give one 'filepath' query parameter, not several")
    if request_body(config.max_request_bytes):
        raise ApiError(400, "with a 'filepath' query parameter the body must be empty")
    return data_file_features(config, filepaths[0])


class _TooManyObjects(Exception):
    pass


def parse_json_body(body: bytes, max_rows: int):
    """The JSON value of a body, refused (413) once it holds more than `max_rows` records' worth of
    objects or arrays: an empty one costs ~25 times its bytes (15 MiB of `{}` took 392 MiB), so the objects
    are counted while parsing, and the arrays, which the parser cannot count, before it."""
    arrays = body.count(b"[")  # an upper bound: a "[" inside a string counts too
    if arrays > max_rows + 1:
        raise ApiError(
            413, f"{arrays} JSON arrays, more than max_request_rows {max_rows} records could hold: not parsed"
        )
    objects = 0

    def counted(pairs):
        nonlocal objects
        objects += 1
        if objects > max_rows + 1:  # the records and the body's own object
            raise _TooManyObjects
        return dict(pairs)

    try:
        return json.loads(body, object_pairs_hook=counted)
    except _TooManyObjects:
        raise ApiError(
            413, f"more than max_request_rows {max_rows} records (JSON objects): not parsed further"
        ) from None
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None


def _json_features(config: Config, body: bytes):
    """The input of a JSON body: {"records": [...]} or {"filepath": "..."}."""
    payload = parse_json_body(body, config.max_request_rows)
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object with 'filepath' or 'records'")
    if "records" in payload:
        return records_to_features(
            payload["records"], config.schema, config.max_request_rows, config.na_values, config.normalize_categories
        )
    if "filepath" in payload:
        return data_file_features(config, payload["filepath"])
    raise ApiError(400, "body must have 'filepath' or 'records'")


def request_features(config: Config):
    """The model's input a POST /prediction carries: ?filepath=, JSON records or filepath, or a CSV body."""
    try:
        return _request_features(config)
    except UnicodeEncodeError:  # JSON may escape half a surrogate pair ("\ud800"): no text a file or model holds
        raise ApiError(
            400, "the request holds text that is not valid Unicode (a lone surrogate such as \\ud800)"
        ) from None


def _request_features(config: Config):
    filepaths = request.args.getlist("filepath")
    if filepaths:
        return _query_file_features(config, filepaths)
    mimetype = request.mimetype
    if mimetype == "text/csv":
        return csv_to_features(request_body(config.max_request_bytes), "CSV body", config)
    if mimetype != "application/json":
        raise ApiError(415, f"unsupported content type {mimetype or '(none)'}: use application/json or text/csv")
    return _json_features(config, request_body(config.max_request_bytes))
