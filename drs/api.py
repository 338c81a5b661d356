"""The risk-assessment API.

``create_app(config)`` builds the Flask app (``config=None``: the file named by
the DRS_CONFIG environment variable, else config.json beside this file);
``gunicorn 'app:create_app()'`` serves it (see `make serve`); ``python app.py``
serves it on Flask's own server at 127.0.0.1:8000.

Endpoints (JSON): POST /prediction, GET /scoring, GET /summarystats,
GET /diagnostics, GET /health. For people: GET / (a status page),
GET /report.pdf, GET /confusionmatrix.png, GET /scorehistory.png. For tools:
GET /metrics (Prometheus), GET /openapi.json (this API described for clients).

With an API token (``api_token`` in the config, or DRS_API_TOKEN), every endpoint but
/health needs ``Authorization: Bearer <token>`` (/metrics too unless ``metrics_public``);
with ``token_in_query`` a GET may carry ``?token=<token>`` instead, for a browser.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import io
import json
import logging
import math
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import sklearn
from flask import Flask, Response, g, jsonify, render_template, request, send_file
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from drs import report as reporting
from drs.api_metrics import HTTP_METHODS, OTHER, ApiMetrics, ProductionCollector
from drs.config import (
    CONFUSION_MATRIX_FILE,
    FINAL_DATA_FILE,
    HISTORY_FILE,
    REPORT_FILE,
    Config,
    PipelineError,
    Schema,
    load_config,
)
from drs.diagnostics import all_diagnostics, dataframe_summary
from drs.ingest import InvalidFile, read_validated_csv
from drs.openapi import openapi_document
from drs.production import DeployedModel, ModelUnavailable, ProductionStore, production_store
from drs.score import f1_on, load_test_data
from drs.train import feature_matrix

log = logging.getLogger("api")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ModelCache:
    """Holds the deployed model in memory; checks production again whenever it changes.

    A request reads production's change token (ProductionStore.change_token: for a
    local folder one readlink and two stats). Any token but the one last checked,
    one seen before included (`cp -p` restores an mtime, never a ctime), loads
    production again with ProductionStore.load_model (sha256 against the manifest,
    then the same bytes unpickled). When that fails (a tampered file, no `current`), the model
    held keeps serving and `problem` says why; with none held, requests get 503.
    """

    def __init__(self, store: ProductionStore):
        self.store = store
        self.deployed: DeployedModel | None = None
        self.problem: str | None = None
        self._checked_key = object()  # equal to no production key: the first request checks
        self._lock = threading.Lock()

    def _production_key(self):
        return self.store.change_token()

    def get(self):
        """The deployed model (a deployment.DeployedModel); ApiError 503 when none is held."""
        if self._production_key() != self._checked_key:
            with self._lock:
                key = self._production_key()
                if key != self._checked_key:
                    self._check(key)
        deployed = self.deployed
        if deployed is None:
            raise ApiError(503, self.problem or f"no model deployed in {self.store.location}")
        return deployed

    def _check(self, key) -> None:
        try:
            deployed = self.store.load_model()
        except ModelUnavailable as exc:
            self.problem = str(exc)
            log.error("%s%s", exc, "; still serving " + self.deployed.version if self.deployed else "")
        else:
            self.deployed, self.problem = deployed, None
            log.info("serving model %s", deployed.version)
        # Read before the files were: a change made during the check shows as a new key next time.
        self._checked_key = key


def _stat_key(path) -> tuple | None:
    """What changes whenever a file is written, replaced or restored (ctime included); None: no file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def predict(model, features, schema: Schema) -> dict:
    """{"predictions": labels, "probabilities": of the positive label (when the estimator has
    predict_proba)}, without scikit-learn's finiteness and parameter checks: the API made its own."""
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        if not hasattr(model, "predict_proba"):
            return {"predictions": model.predict(features).tolist()}
        # The preparation steps run once for both answers. predict() is asked, not derived from the
        # probabilities: some classifiers (a tuned threshold, SVC's Platt scaling) do not predict their argmax.
        prepared, classifier = model[:-1].transform(features), model[-1]
        predictions, probabilities = classifier.predict(prepared), classifier.predict_proba(prepared)
    positive = list(classifier.classes_).index(schema.positive_label)
    return {"predictions": predictions.tolist(), "probabilities": np.round(probabilities[:, positive], 6).tolist()}


class FileKeyedCache:
    """Memoise a value computed from files, recomputed when any file's stat changes."""

    def __init__(self):
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, name: str, paths, compute, token=None):
        """`compute()`, again only when a file of `paths` or `token` (e.g. a store's change token) changed."""
        key = (token, *((str(path), _stat_key(path)) for path in paths))
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
        return value


def _records_to_features(records, schema: Schema):
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
            value = record.get(name)
            if value is None:
                raise ApiError(400, f"record {row}: missing feature '{name}'")
            if name not in numeric:
                if not isinstance(value, str):
                    raise ApiError(
                        400,
                        f"record {row}: feature '{name}' is categorical: it must be a string, "
                        f"got {type(value).__name__}",
                    )
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ApiError(400, f"record {row}: feature '{name}' must be a number, got {type(value).__name__}")
            else:
                try:
                    value = float(value)
                except OverflowError:  # an integer too large for a float
                    value = math.inf
                if not math.isfinite(value):
                    raise ApiError(400, f"record {row}: feature '{name}' must be finite")
            values.append(value)
    return feature_matrix(columns, schema)


def _csv_to_features(source, what: str, schema: Schema):
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
    if not resolved.is_file():
        raise ApiError(404, f"filepath {filepath!r} not found")
    return resolved


def _request_body(limit: int) -> bytes:
    """The request body; RequestEntityTooLarge (413) past `limit` bytes, read no further."""
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body: Werkzeug's get_data() would cut it at the limit without an error.
        body = request.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return body
    return request.get_data(cache=False)  # 413 from Werkzeug, before reading, for a Content-Length over it


def _request_features(config: Config):
    """The model's input a POST /prediction carries: JSON records or filepath, or a CSV body."""
    mimetype = request.mimetype
    if mimetype == "text/csv":
        return _csv_to_features(io.BytesIO(_request_body(config.max_request_bytes)), "CSV body", config.schema)
    if mimetype != "application/json":
        raise ApiError(415, f"unsupported content type {mimetype or '(none)'}: use application/json or text/csv")
    try:
        payload = json.loads(_request_body(config.max_request_bytes))
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object with 'filepath' or 'records'")
    if "records" in payload:
        return _records_to_features(payload["records"], config.schema)
    if "filepath" in payload:
        path = resolve_data_file(config, payload["filepath"])
        return _csv_to_features(path, path.name, config.schema)
    raise ApiError(400, "body must have 'filepath' or 'records'")


# --- API token ----------------------------------------------------------------------------------


def _supplied_token(config: Config) -> tuple[str | None, bool]:
    """The token a request carries and whether it came as ?token= (only with token_in_query, on a GET)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    if config.token_in_query and request.method in ("GET", "HEAD"):
        token = request.args.get("token")
        if token:
            return token, True
    return None, False


def _token_refusal(config: Config) -> Response | None:
    """None when the request may go on; else the 401 answer. Compared in constant time."""
    supplied, from_query = _supplied_token(config)
    if supplied is not None and hmac.compare_digest(supplied.encode(), (config.api_token or "").encode()):
        g.token_from_query = from_query
        return None
    if supplied is None:
        message = "this API needs a token: send the header 'Authorization: Bearer <token>'"
        challenge = 'Bearer realm="drs"'
    else:
        message = "the token is wrong"
        challenge = 'Bearer realm="drs", error="invalid_token"'
    response = jsonify(error=message)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response


class RedactQueryToken(logging.Filter):
    """Takes ?token=... out of the development server's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = re.sub(r"([?&]token=)[^&\s\"]*", r"\1<redacted>", message), ()
        return True


def create_app(config: Config | str | Path | None = None) -> Flask:  # noqa: C901 (split into blueprints next)
    """Build the API for a Config or a config file path (None: $DRS_CONFIG, else config.json)."""
    if not isinstance(config, Config):
        config = load_config(config if config is not None else os.environ.get("DRS_CONFIG"))
    app = Flask(__name__, static_folder=None)  # no static files: no /static route to answer or describe
    app.config.update(DRS=config, MAX_CONTENT_LENGTH=config.max_request_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = production_store(config)
    models = ModelCache(store)
    cache = FileKeyedCache()

    def current_model():
        try:
            return models.get(), models.problem
        except ApiError:
            return None, None

    metrics = ApiMetrics(ProductionCollector(current_model, config.log_folder / HISTORY_FILE, cache))
    app.extensions.update(drs_models=models, drs_metrics=metrics)
    # Load the deployed model now (in each gunicorn worker as it starts): with nothing
    # deployed the API still starts, and answers 503 until a model appears.
    with contextlib.suppress(ApiError):
        models.get()
    open_routes = {"/health"} | ({"/metrics"} if config.metrics_public else set())
    route_paths: set[str] = set()  # every route's path, filled in below once the routes exist

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.before_request
    def check_token():
        if config.api_token is None:
            return None
        rule = request.url_rule
        if rule is not None and rule.rule in open_routes:
            return None
        return _token_refusal(config)

    @app.after_request
    def count_request(response: Response):
        rule = request.url_rule
        # The route, never the raw path; a known path with a wrong method (405) keeps its name.
        endpoint = rule.rule if rule is not None else request.path if request.path in route_paths else OTHER
        method = request.method if request.method in HTTP_METHODS else OTHER
        seconds = time.perf_counter() - g.started if "started" in g else 0.0
        metrics.observe(endpoint, method, response.status_code, seconds)
        if g.get("token_from_query"):
            response.headers["Referrer-Policy"] = "no-referrer"  # the page's URL holds the token
        return response

    @app.teardown_request
    def let_other_clients_in(exc):
        time.sleep(0)  # gevent.sleep(0) under `make serve`: one busy keep-alive client cannot hold a worker

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if isinstance(exc, RequestEntityTooLarge):  # Werkzeug's check of Content-Length, or _request_body's
            return jsonify(error=f"request body exceeds the limit of {config.max_request_bytes} bytes"), 413
        return jsonify(error=exc.description or exc.name), exc.code

    @app.errorhandler(PipelineError)
    def pipeline_error(exc: PipelineError):
        return jsonify(error=str(exc)), 503 if isinstance(exc, ModelUnavailable) else 409

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error: {type(exc).__name__}"), 500

    @app.post("/prediction")
    def prediction():
        features = _request_features(config)
        deployed = models.get()
        with _schema_mismatch(deployed):
            answer = predict(deployed.model, features, config.schema)
        metrics.predictions.inc(len(answer["predictions"]))
        return jsonify(**answer, version=deployed.version)

    @app.get("/scoring")
    def scoring():
        deployed = models.get()
        with _schema_mismatch(deployed):
            f1 = cache.get(
                f"f1:{deployed.version}:{deployed.model_sha256}",
                [config.test_data_file],
                lambda: f1_on(deployed.model, load_test_data(config), config.schema),
            )
        return jsonify(f1=f1, version=deployed.version)

    @app.get("/summarystats")
    def summarystats():
        return jsonify(
            cache.get("summary", [config.output_folder / FINAL_DATA_FILE], lambda: dataframe_summary(config))
        )

    @app.get("/diagnostics")
    def diagnostics():
        # Reads only: the stage timings come from the run history, nothing is re-run.
        return jsonify(all_diagnostics(config))

    @app.get("/health")
    def health():
        # Each worker process holds its own model: `pid` tells which one answered.
        try:
            deployed = models.get()
        except ApiError as exc:
            return jsonify(status="unavailable", error=exc.message, pid=os.getpid()), 503
        body = {"status": "ok", "version": deployed.version, "f1": deployed.f1, "pid": os.getpid()}
        problem = models.problem
        if problem:
            body.update(status="degraded", problem=problem)
        return jsonify(body)

    @app.get("/metrics")
    def prometheus_metrics():
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(metrics.registry), headers={"Content-Type": content_type})

    document = openapi_document(config)

    @app.get("/openapi.json")
    def openapi():
        return jsonify(document)

    # --- for people: a status page and the generated reports -------------------------

    @app.get("/")
    def status_page():
        problem: str | None
        try:
            model = models.get()
        except ApiError as exc:
            model, problem = None, exc.message
        else:
            problem = models.problem
        deployed: dict | None = None
        if model is not None:
            deployed = {
                "version": model.version,
                "f1": f"{model.f1:.4f}" if model.f1 is not None else "-",
                "created": reporting.display_time(model.manifest.get("created")),
                "note": model.manifest.get("note", ""),
            }
        records = cache.get("history", [config.log_folder / HISTORY_FILE], lambda: reporting.read_history(config))
        deployments = cache.get("deployments", [], store.deployment_log, token=store.deployment_log_token())
        drift_tick = reporting.last_drift_tick(records)
        return render_template(
            "status.html",
            now=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            deployed=deployed,
            problem=problem,
            ticks=reporting.tick_rows(records),
            drift_tick={"start": reporting.display_time(drift_tick.start)} if drift_tick else None,
            drift_words=reporting.drift_verdict_words(drift_tick),
            drift_rows=reporting.drift_test_rows(drift_tick),
            score_history=any(record.get("f1") is not None for record in deployments),
            score_warning=reporting.score_fall_warning(deployments, config.promotion_margin),
            report_time=_modified(config.model_folder / REPORT_FILE),
            matrix_time=_modified(config.model_folder / CONFUSION_MATRIX_FILE),
            # Reached with ?token=: the page's own links carry it too, or the browser could not follow them.
            token_query="?" + urlencode({"token": config.api_token}) if g.get("token_from_query") else "",
        )

    @app.get("/scorehistory.png")
    def score_history_image():
        png = cache.get(
            "scorehistory",
            [],
            lambda: reporting.score_history_png(store.deployment_log()),
            token=store.deployment_log_token(),
        )
        if png is None:
            raise ApiError(404, "no deployments recorded yet")
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/" + REPORT_FILE)
    def report_pdf():
        return _generated_file(config.model_folder / REPORT_FILE, "application/pdf")

    @app.get("/" + CONFUSION_MATRIX_FILE)
    def confusion_matrix_png():
        return _generated_file(config.model_folder / CONFUSION_MATRIX_FILE, "image/png")

    route_paths.update(rule.rule for rule in app.url_map.iter_rules())
    return app


@contextlib.contextmanager
def _schema_mismatch(deployed):
    """A model trained for other columns than the config's schema names: 409, until a tick retrains it."""
    try:
        yield
    except (ValueError, KeyError) as exc:
        raise ApiError(
            409,
            f"the deployed model {deployed.version} does not take the features of the config's "
            f"schema ({str(exc).splitlines()[0][:200]}): the next tick retrains it",
        ) from None


def _modified(path: Path) -> str | None:
    """A file's modification time as "YYYY-MM-DD HH:MM:SS" (UTC), or None when it does not exist."""
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _generated_file(path: Path, mimetype: str):
    # Opened before answering: a file replaced meanwhile is served whole (old or new), one
    # removed meanwhile is a 404, never a 500.
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the response)
    except FileNotFoundError:
        raise ApiError(
            404, f"{path.name} not generated yet: it is written after each deployment (or run reporting.py)"
        ) from None
    return send_file(handle, mimetype=mimetype, download_name=path.name, max_age=0)
