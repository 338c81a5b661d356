"""The API's one set of error handlers: every failure is a JSON body ``{"error": "..."}`` with its status."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from drs.config import PipelineError
from drs.deploy import ModelUnavailable

log = logging.getLogger("api")


class ApiError(Exception):
    """A request the API answers with `status` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status


def http_error(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):  # Werkzeug's check of Content-Length, or inputs.request_body's
        limit = request.max_content_length
        return jsonify(error=f"request body exceeds the limit of {limit} bytes"), 413
    return jsonify(error=exc.description or exc.name), exc.code


def pipeline_error(exc: PipelineError):
    return jsonify(error=str(exc)), 503 if isinstance(exc, ModelUnavailable) else 409


def unexpected_error(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(error=f"internal error: {type(exc).__name__}"), 500


def register_error_handlers(app: Flask) -> None:
    """Answer ApiError, Werkzeug's HTTP errors, the pipeline's errors and anything else as JSON."""
    app.register_error_handler(ApiError, api_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(PipelineError, pipeline_error)
    app.register_error_handler(Exception, unexpected_error)
