"""The risk-assessment API, as Flask blueprints.

``create_app(config)`` builds the Flask app (``config=None``: the file named by the DRS_CONFIG
environment variable, else config.json); ``gunicorn 'app:create_app()'`` serves it (see `make
serve`); ``python app.py`` serves it on Flask's own server at 127.0.0.1:8000.

- predictions: POST /prediction, GET /scoring, GET /summarystats, GET /diagnostics (JSON)
- operations: GET /health, GET /metrics (Prometheus), GET /openapi.json; timing and counting requests
- status: GET / (a status page), GET /scorehistory.png, GET /report.pdf, GET /confusionmatrix.png
- security: the API token, checked once before every request
- errors: every failure a JSON body with its status
- state: what the app holds between requests (config, model, caches, metrics), through ``current_app``
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from flask import Flask

from drs.api import operations, predictions, security, status
from drs.api.errors import ApiError, register_error_handlers
from drs.api.state import EXTENSION, ApiState
from drs.config import Config, load_config

__all__ = ["ApiError", "create_app"]


def create_app(config: Config | str | Path | None = None) -> Flask:
    """Build the API for a Config or a config file path (None: $DRS_CONFIG, else config.json)."""
    if not isinstance(config, Config):
        config = load_config(config if config is not None else os.environ.get("DRS_CONFIG"))
    app = Flask(__name__, static_folder=None)  # no static files: no /static route to answer or describe
    app.config.update(DRS=config, MAX_CONTENT_LENGTH=config.max_request_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = app.extensions[EXTENSION] = ApiState.for_config(config)
    # Load the deployed model now (in each gunicorn worker as it starts): with nothing
    # deployed the API still starts, and answers 503 until a model appears.
    with contextlib.suppress(ApiError):
        state.models.get()
    # In this order: a refused request is timed too.
    app.before_request(operations.start_clock)
    app.before_request(security.check_token)
    app.after_request(operations.count_request)
    app.after_request(security.no_referrer_after_query_token)
    app.teardown_request(operations.let_other_clients_in)
    register_error_handlers(app)
    for blueprint in (predictions.blueprint, operations.blueprint, status.blueprint):
        app.register_blueprint(blueprint)
    state.route_paths = frozenset(rule.rule for rule in app.url_map.iter_rules())
    return app
