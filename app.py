"""The risk-assessment API.

``create_app(config)`` builds the Flask app; ``gunicorn app:app`` serves the
app for the config named by the DRS_CONFIG environment variable (default:
config.json beside this file); ``python app.py`` serves it on 127.0.0.1:8000.

Endpoints (JSON): POST /prediction, GET /scoring, GET /summarystats,
GET /diagnostics, GET /health. For people: GET / (a status page),
GET /report.pdf, GET /confusionmatrix.png, GET /scorehistory.png.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
from flask import Flask, Response, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from settings import (
    CONFUSION_MATRIX_FILE,
    FEATURE_COLUMNS,
    FINAL_DATA_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    REPORT_FILE,
    Config,
    PipelineError,
    argument_parser,
    load_config,
    run_cli,
    setup_logging,
)
from storage import CURRENT_LINK, DEPLOYMENT_LOG

log = logging.getLogger("api")
DIAGNOSTICS_TTL_SECONDS = 60


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ModelCache:
    """Holds the deployed model in memory; reloads it when production changes.

    A request costs one readlink and one stat. When the deployed files change
    but fail their integrity check, the model already held keeps serving and
    the problem is reported by /health.
    """

    def __init__(self, prod_folder: Path):
        self.prod_folder = prod_folder
        # Joined once: every request stats these, and pathlib joins cost more than the syscalls.
        self._link_path = os.path.join(prod_folder, CURRENT_LINK)
        self._model_path = os.path.join(prod_folder, CURRENT_LINK, MODEL_FILE)
        self.deployed = None
        self._serving = None
        self.problem: str | None = None
        self._key = None
        self._failed_key = None
        self._lock = threading.Lock()

    def _production_key(self):
        try:
            target = os.readlink(self._link_path)
            stat = os.stat(self._model_path)
        except OSError:
            return None
        return (target, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def get(self):
        """The deployed model (a deployment.DeployedModel); ApiError 503 when there is none."""
        return self.serving()[0]

    def serving(self):
        """(deployed model, its predict function), both of the same version."""
        from deployment import ModelUnavailable, load_deployed_model

        key = self._production_key()
        if key != self._key and key != self._failed_key:
            with self._lock:
                if key != self._key and key != self._failed_key:
                    try:
                        deployed = load_deployed_model(self.prod_folder)
                    except ModelUnavailable as exc:
                        self._failed_key = key
                        self.problem = str(exc)
                        log.error("%s%s", exc, "; still serving " + self.deployed.version if self.deployed else "")
                    else:
                        predict = fast_predictor(deployed.model) or deployed.model.predict
                        # One assignment, so a concurrent request sees the old pair or the new one.
                        self._serving = (deployed, predict)
                        self.deployed, self._key, self._failed_key, self.problem = deployed, key, None, None
                        log.info("serving model %s", deployed.version)
        if self._serving is None:
            raise ApiError(503, self.problem or f"no model deployed in {self.prod_folder}")
        return self._serving


def fast_predictor(model):
    """model.predict in a few numpy operations, for the model training.py builds; None for any other.

    The pipeline (median SimpleImputer, binary LogisticRegression) spends
    ~0.5 ms per call in scikit-learn's input validation, most of a one-record
    request. The same arithmetic as scikit-learn's (impute missing values,
    X @ coef_.T + intercept_ > 0, pick from classes_) gives the same
    predictions; it is checked against model.predict on probe rows before
    being trusted, and any mismatch keeps model.predict.
    """
    try:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
    except ImportError:
        return None
    if type(model) is not Pipeline or len(model.steps) != 2:
        return None
    imputer, classifier = model.steps[0][1], model.steps[1][1]
    if type(imputer) is not SimpleImputer or type(classifier) is not LogisticRegression:
        return None
    try:
        statistics = np.asarray(imputer.statistics_, dtype=np.float64)
        coefficients = np.asarray(classifier.coef_, dtype=np.float64).T
        intercept = np.asarray(classifier.intercept_, dtype=np.float64)
        classes = classifier.classes_
    except AttributeError:  # not fitted
        return None
    if (imputer.add_indicator or not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values))
            or statistics.shape != (len(FEATURE_COLUMNS),) or np.isnan(statistics).any()
            or coefficients.shape != (len(FEATURE_COLUMNS), 1) or len(classes) != 2):
        return None

    def predict(matrix: np.ndarray) -> np.ndarray:
        missing = np.isnan(matrix)
        if missing.any():
            matrix = np.where(missing, statistics, matrix)
        scores = (matrix @ coefficients + intercept).reshape(-1)
        return classes[(scores > 0).astype(np.intp)]

    probes = np.random.default_rng(0).uniform(-10, 10, size=(256, len(FEATURE_COLUMNS)))
    probes *= np.array([100.0, 1000.0, 100.0])[: len(FEATURE_COLUMNS)]
    probes[::7, 0] = np.nan
    try:
        if not np.array_equal(predict(probes), model.predict(probes)):
            log.warning("fast predictor disagrees with the model on probe rows: using model.predict")
            return None
    except Exception:  # any failure of the check: do not trust the shortcut
        return None
    return predict


class FileKeyedCache:
    """Memoise a value computed from files, recomputed when any file's stat changes."""

    def __init__(self):
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, name: str, paths, compute):
        key = []
        for path in paths:
            try:
                stat = os.stat(path)
                key.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns))
            except OSError:
                key.append((str(path), None))
        key = tuple(key)
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
        return value


def _records_to_matrix(records) -> np.ndarray:
    if not isinstance(records, list) or not records:
        raise ApiError(400, "'records' must be a non-empty list of objects")
    matrix = np.empty((len(records), len(FEATURE_COLUMNS)), dtype=np.float64)
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(400, f"record {row} is not an object")
        for col, name in enumerate(FEATURE_COLUMNS):
            if name not in record or record[name] is None:
                raise ApiError(400, f"record {row}: missing feature '{name}'")
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ApiError(400, f"record {row}: feature '{name}' must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ApiError(400, f"record {row}: feature '{name}' must be finite, got {value!r}")
            matrix[row, col] = value
    return matrix


def _csv_to_matrix(source, what: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            source, convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in FEATURE_COLUMNS})
        )
    except pa.ArrowInvalid as exc:
        raise ApiError(400, f"{what}: {str(exc).strip().splitlines()[0]}") from None
    missing = [n for n in FEATURE_COLUMNS if n not in table.column_names]
    if missing:
        raise ApiError(400, f"{what}: missing feature column(s): {', '.join(missing)}")
    if table.num_rows == 0:
        raise ApiError(400, f"{what}: no rows")
    matrix = np.column_stack([table[n].to_numpy(zero_copy_only=False) for n in FEATURE_COLUMNS]).astype(np.float64)
    # An empty cell is a missing value, as in an input file: the model imputes it with the
    # training median. An infinite value is an error.
    bad = np.isinf(matrix)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ApiError(400, f"{what}: row {row + 1}: feature '{FEATURE_COLUMNS[col]}' is not finite")
    return matrix


class PredictionFastPath:
    """WSGI middleware answering the plain case of POST /prediction without Flask's request machinery.

    Measured with gunicorn on 2 cores (see README, Performance): Flask's
    request and response objects cost more than the prediction itself, and
    answering here about doubles single-record throughput. Only the plain
    success case is answered: a JSON body, with a Content-Length within the
    limit, that is an object holding valid "records", and a deployed model.
    Anything else (another route, another content type, invalid records, no
    model, an unexpected error) goes to the Flask app with the body handed on
    unchanged, so every error and every other route behaves exactly as before.
    The answer is the bytes the Flask route sends for the same request.
    """

    def __init__(self, flask_wsgi, models: ModelCache, max_request_bytes: int):
        self.flask_wsgi = flask_wsgi
        self.models = models
        self.max_request_bytes = max_request_bytes

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") == "/prediction" and environ.get("REQUEST_METHOD") == "POST"
                and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() == "application/json"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or -1)
            except ValueError:
                length = -1
            if 0 <= length <= self.max_request_bytes:
                body = environ["wsgi.input"].read(length)
                answer = self._answer(body)
                if answer is not None:
                    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
                    return [answer]
                # The same bytes, and the announced length kept: a short body
                # still reads as a client disconnect in Flask, as before.
                environ["wsgi.input"] = io.BytesIO(body)
        return self.flask_wsgi(environ, start_response)

    def _answer(self, body: bytes) -> bytes | None:
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict) or "records" not in payload:
                return None
            deployed, predict = self.models.serving()
            return _prediction_body(predict(_records_to_matrix(payload["records"])), deployed.version)
        except Exception:  # the Flask route answers it, with its error handling and logging
            return None


def _prediction_body(predictions: np.ndarray, version: str) -> bytes:
    # The bytes jsonify sends (compact, keys in this order, a final newline),
    # built directly: jsonify's provider lookups cost about as much as the prediction.
    return (json.dumps({"predictions": predictions.astype(np.int64).tolist(), "version": version},
                       separators=(",", ":")) + "\n").encode()


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
        raise ApiError(403, f"filepath {filepath!r} is outside the data folders")
    if resolved.suffix.lower() != ".csv":
        raise ApiError(400, f"filepath {filepath!r} is not a .csv file")
    if not resolved.is_file():
        raise ApiError(404, f"filepath {filepath!r} not found")
    return resolved


def create_app(config: Config | str | Path | None = None) -> Flask:
    """Build the API for a Config (or a config file path; default config.json)."""
    if not isinstance(config, Config):
        config = load_config(config)
    app = Flask(__name__)
    app.config.update(DRS=config, MAX_CONTENT_LENGTH=config.max_request_bytes, JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    models = ModelCache(config.prod_folder)
    cache = FileKeyedCache()
    app.extensions["drs_models"] = models
    # Load the deployed model now (in each gunicorn worker as it starts), so
    # the first request does not wait for scikit-learn to import; with nothing
    # deployed the API still starts and answers 503 until a model appears.
    try:
        models.serving()
    except ApiError:
        pass

    @app.before_request
    def reject_large_bodies():
        # Decided from the announced length, before a byte of the body is read.
        length = request.content_length
        if length is not None and length > config.max_request_bytes:
            raise ApiError(413, f"request body of {length} bytes exceeds the limit of {config.max_request_bytes}")
        if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            # No announced length: read at most one byte past the limit, so a long stream is cut
            # off rather than buffered whole, then hand the route what was read, with its length.
            body = request.environ["wsgi.input"].read(config.max_request_bytes + 1)
            if len(body) > config.max_request_bytes:
                raise ApiError(413, f"chunked request body exceeds the limit of {config.max_request_bytes} bytes")
            request.environ["wsgi.input"] = io.BytesIO(body)
            request.environ["CONTENT_LENGTH"] = str(len(body))

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(PipelineError)
    def pipeline_error(exc: PipelineError):
        from deployment import ModelUnavailable

        return jsonify(error=str(exc)), 503 if isinstance(exc, ModelUnavailable) else 409

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error: {type(exc).__name__}"), 500

    @app.post("/prediction")
    def prediction():
        deployed, predict = models.serving()
        mimetype = request.mimetype
        if mimetype == "application/json":
            # What get_json(silent=True) does, without its per-call bookkeeping.
            try:
                payload = json.loads(request.get_data(cache=False))
            except ValueError:
                payload = None
            if payload is None:
                raise ApiError(400, "body is not valid JSON")
            if not isinstance(payload, dict):
                raise ApiError(400, "body must be a JSON object with 'filepath' or 'records'")
            if "records" in payload:
                matrix = _records_to_matrix(payload["records"])
            elif "filepath" in payload:
                path = resolve_data_file(config, payload["filepath"])
                matrix = _csv_to_matrix(path, path.name)
            else:
                raise ApiError(400, "body must have 'filepath' or 'records'")
        elif mimetype == "text/csv":
            matrix = _csv_to_matrix(io.BytesIO(request.get_data()), "CSV body")
        else:
            raise ApiError(415, f"unsupported content type {mimetype or '(none)'}: use application/json or text/csv")
        return app.response_class(_prediction_body(predict(matrix), deployed.version), mimetype="application/json")

    @app.get("/scoring")
    def scoring():
        from scoring import f1_on, load_test_data

        deployed = models.get()
        f1 = cache.get(f"f1:{deployed.version}:{deployed.folder}", [config.test_data_file],
                       lambda: f1_on(deployed.model, load_test_data(config)))
        return jsonify(f1=f1, version=deployed.version)

    @app.get("/summarystats")
    def summarystats():
        from diagnostics import dataframe_summary

        return jsonify(cache.get("summary", [config.output_folder / FINAL_DATA_FILE], lambda: dataframe_summary(config)))

    diagnostics_cache = {"at": None, "value": None}
    diagnostics_lock = threading.Lock()

    @app.get("/diagnostics")
    def diagnostics():
        from diagnostics import all_diagnostics

        # Each answer re-runs ingestion and training to time them: one measurement serves every
        # request for DIAGNOSTICS_TTL_SECONDS (and one at a time), so polling cannot tie up the workers.
        with diagnostics_lock:
            now = time.monotonic()
            if diagnostics_cache["at"] is None or now - diagnostics_cache["at"] > DIAGNOSTICS_TTL_SECONDS:
                diagnostics_cache.update(at=now, value={**all_diagnostics(config),
                                                        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
            return jsonify(diagnostics_cache["value"])

    @app.get("/health")
    def health():
        try:
            deployed = models.get()
        except ApiError as exc:
            return jsonify(status="unavailable", error=exc.message), 503
        body = {"status": "ok", "version": deployed.version, "f1": deployed.f1}
        if models.problem:
            body.update(status="degraded", problem=models.problem)
        return jsonify(body)

    # --- for people: a status page and the generated reports -------------------------

    @app.get("/")
    def status_page():
        import reporting
        from deployment import deployment_history

        try:
            model = models.get()
        except ApiError as exc:
            model, problem = None, exc.message
        else:
            problem = models.problem
        deployed = None
        if model is not None:
            deployed = {"version": model.version, "f1": f"{model.f1:.4f}" if model.f1 is not None else "-",
                        "created": reporting.display_time(model.manifest.get("created")),
                        "note": model.manifest.get("note", "")}
        records = cache.get("history", [config.log_folder / HISTORY_FILE], lambda: reporting.read_history(config))
        deployments = cache.get("deployments", [config.prod_folder / DEPLOYMENT_LOG], lambda: deployment_history(config))
        drift_tick = reporting.last_drift_tick(records)
        return render_template(
            "status.html",
            now=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            deployed=deployed,
            problem=problem,
            ticks=reporting.tick_rows(records),
            drift_tick={"start": reporting.display_time(drift_tick.get("start"))} if drift_tick else None,
            drift_words=reporting.drift_verdict_words(drift_tick),
            drift_rows=reporting.drift_test_rows(drift_tick),
            score_history=any(record.get("f1") is not None for record in deployments),
            report_time=_modified(config.model_folder / REPORT_FILE),
            matrix_time=_modified(config.model_folder / CONFUSION_MATRIX_FILE),
        )

    @app.get("/scorehistory.png")
    def score_history_image():
        from deployment import deployment_history
        from reporting import score_history_png

        png = cache.get("scorehistory", [config.prod_folder / DEPLOYMENT_LOG],
                        lambda: score_history_png(deployment_history(config)))
        if png is None:
            raise ApiError(404, "no deployments recorded yet")
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/" + REPORT_FILE)
    def report_pdf():
        return _generated_file(config.model_folder / REPORT_FILE, "application/pdf")

    @app.get("/" + CONFUSION_MATRIX_FILE)
    def confusion_matrix_png():
        return _generated_file(config.model_folder / CONFUSION_MATRIX_FILE, "image/png")

    app.wsgi_app = PredictionFastPath(app.wsgi_app, models, config.max_request_bytes)
    return app


def _modified(path: Path) -> str | None:
    """A file's modification time as "YYYY-MM-DD HH:MM:SS" (UTC), or None when it does not exist."""
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _generated_file(path: Path, mimetype: str):
    # Opened before answering: a file replaced meanwhile is served whole (old or new), one
    # removed meanwhile is a 404, never a 500.
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise ApiError(404, f"{path.name} not generated yet: it is written after each deployment "
                            f"(or run reporting.py)") from None
    return send_file(handle, mimetype=mimetype, download_name=path.name, max_age=0)


_app = None


def __getattr__(name: str):
    # `gunicorn app:app` reads this attribute: the app is built on first use,
    # not at import, so importing app.py has no side effects.
    global _app
    if name == "app":
        if _app is None:
            _app = create_app(os.environ.get("DRS_CONFIG"))
        return _app
    raise AttributeError(name)


def main(argv=None) -> int:
    def body(argv):
        parser = argument_parser("Serve the risk-assessment API (development server; use `make serve` for gunicorn).")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        args = parser.parse_args(argv)
        setup_logging()
        flask_app = create_app(args.config)
        flask_app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
        return 0

    return run_cli("app", body, argv)


if __name__ == "__main__":
    sys.exit(main())
