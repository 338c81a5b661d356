"""The model's input a POST /prediction carries, validated before the model sees it.

Four forms: ``?filepath=`` (no body), a JSON body with ``filepath`` or ``records``, or a CSV
body. A file named by a client is read only when it lies inside a configured data folder.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from drs.api.errors import ApiError
from drs.config import Config, Schema
from drs.ingest import InvalidFile, read_validated_csv
from drs.train import feature_matrix


def _record_value(row: int, name: str, value, numeric: bool):
    """One feature of one record, checked: a numeric one a finite number (as a float), a categorical one a string."""
    if value is None:
        raise ApiError(400, f"record {row}: missing feature '{name}'")
    if not numeric:
        if not isinstance(value, str):
            raise ApiError(
                400,
                f"record {row}: feature '{name}' is categorical: it must be a string, got {type(value).__name__}",
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"record {row}: feature '{name}' must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):
        raise ApiError(400, f"record {row}: feature '{name}' must be finite")
    return value


def records_to_features(records, schema: Schema):
    """The model's input from JSON records, each checked against the schema: a numeric feature a
    finite number, a categorical one a string; a missing value is an error (400 naming it)."""
    if not isinstance(records, list) or not records:
        raise ApiError(400, "'records' must be a non-empty list of objects")
    numeric = set(schema.numeric_features)
    columns: dict[str, list] = {name: [] for name in schema.features}
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(400, f"record {row} is not an object")
        for name, values in columns.items():
            values.append(_record_value(row, name, record.get(name), name in numeric))
    return feature_matrix(columns, schema)


def csv_to_features(source, what: str, schema: Schema):
    """A CSV's feature columns (a path or a file object) as the model's input, validated as ingestion
    validates an input file (the same reasons, which never quote the file). An empty cell is a
    missing value, imputed as in training."""
    try:
        features = read_validated_csv(source, columns=schema.features, schema=schema)
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
    return csv_to_features(path, path.name, config.schema)


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


def _json_features(config: Config, body: bytes):
    """The input of a JSON body: {"records": [...]} or {"filepath": "..."}."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object with 'filepath' or 'records'")
    if "records" in payload:
        return records_to_features(payload["records"], config.schema)
    if "filepath" in payload:
        return data_file_features(config, payload["filepath"])
    raise ApiError(400, "body must have 'filepath' or 'records'")


def request_features(config: Config):
    """The model's input a POST /prediction carries: ?filepath=, JSON records or filepath, or a CSV body."""
    filepaths = request.args.getlist("filepath")
    if filepaths:
        return _query_file_features(config, filepaths)
    mimetype = request.mimetype
    if mimetype == "text/csv":
        return csv_to_features(io.BytesIO(request_body(config.max_request_bytes)), "CSV body", config.schema)
    if mimetype != "application/json":
        raise ApiError(415, f"unsupported content type {mimetype or '(none)'}: use application/json or text/csv")
    return _json_features(config, request_body(config.max_request_bytes))
