"""The API token: one check before every request, and the token kept out of logs and referrers.

With an API token (``api_token`` in the config, or DRS_API_TOKEN), every route but the open
ones (/health; /metrics with ``metrics_public``) needs ``Authorization: Bearer <token>``; with
``token_in_query`` a GET may carry ``?token=<token>`` instead, for a browser.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Response, g, jsonify, request

from drs.api.state import api_state
from drs.config import Config


def supplied_token(config: Config) -> tuple[str | None, bool]:
    """The token a request carries and whether it came as ?token= (only with token_in_query, on a GET)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    if config.token_in_query and request.method in ("GET", "HEAD"):
        token = request.args.get("token")
        if token:
            return token, True
    return None, False


def check_token() -> Response | None:
    """Before every request: None when it may go on (no token configured, an open route, the right
    token, compared in constant time); else the 401 answer with its WWW-Authenticate challenge."""
    state = api_state()
    config = state.config
    if config.api_token is None:
        return None
    rule = request.url_rule
    if rule is not None and rule.rule in state.open_routes:
        return None
    supplied, from_query = supplied_token(config)
    if supplied is not None and hmac.compare_digest(supplied.encode(), config.api_token.encode()):
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


def no_referrer_after_query_token(response: Response) -> Response:
    """After every request: a page reached with ?token= holds the token in its URL; its links must not pass it on."""
    if g.get("token_from_query"):
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


class RedactQueryToken(logging.Filter):
    """Takes ?token=... out of the development server's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = re.sub(r"([?&]token=)[^&\s\"]*", r"\1<redacted>", message), ()
        return True
