"""For operators and tools: GET /health, GET /metrics (Prometheus), GET /openapi.json, and the
request hooks that time and count every request."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, g, jsonify, request
from prometheus_client.exposition import choose_encoder

from drs.api.errors import ApiError
from drs.api.metrics import HTTP_METHODS, OTHER
from drs.api.security import open_answer
from drs.api.state import api_state

blueprint = Blueprint("operations", __name__)


def start_clock() -> None:
    """Before every request (the token check included): when it started."""
    g.started = time.perf_counter()


def count_request(response: Response) -> Response:
    """After every request: counted and timed by route, never by the raw path."""
    state = api_state()
    rule = request.url_rule
    # A known path with a wrong method (405) keeps its name.
    endpoint = rule.rule if rule is not None else request.path if request.path in state.route_paths else OTHER
    method = request.method if request.method in HTTP_METHODS else OTHER
    seconds = time.perf_counter() - g.started if "started" in g else 0.0
    state.metrics.observe(endpoint, method, response.status_code, seconds)
    return response


def let_other_clients_in(exc: BaseException | None) -> None:
    time.sleep(0)  # gevent.sleep(0) under `make serve`: one busy keep-alive client cannot hold a worker


@blueprint.get("/health")
def health():
    # Each worker process holds its own model: `pid` tells which one answered.
    models = api_state().models
    try:
        deployed = models.get()
    except ApiError as exc:
        return open_answer(dict(status="unavailable", error=exc.message, pid=os.getpid())), 503
    body = {"status": "ok", "version": deployed.version, "f1": deployed.f1, "pid": os.getpid()}
    # Degraded: production failed its check (the last good model serves), or the model takes another schema.
    problems = [problem for problem in (models.problem, models.mismatch(deployed)) if problem]
    if problems:
        body.update(status="degraded", problem="; ".join(problems))
    return open_answer(body)


@blueprint.get("/metrics")
def prometheus_metrics():
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(api_state().metrics.registry), headers={"Content-Type": content_type})


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(api_state().openapi)
