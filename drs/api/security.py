"""The API token: one check before every request, and the token kept out of logs and referrers.

With an API token (``api_token`` in the config, or DRS_API_TOKEN), every route but the open
ones (/health; /metrics with ``metrics_public``) needs ``Authorization: Bearer <token>``; with
``token_in_query`` a GET may carry ``?token=<token>`` instead, for a browser.

/health, open to anyone, proves the API knows the token without showing it: sent a nonce in the
X-DRS-Nonce header, it answers ``token_proof`` = HMAC-SHA256(token, nonce), which apicalls.py
and the tick check before they send the token (drs/api_client.py). It shows no absolute path.
"""

from __future__ import annotations

import hmac
import logging
import os
import re

from flask import Response, g, jsonify, request

from drs.api.state import api_state
from drs.api_client import NONCE_HEADER, NONCE_PATTERN, PROOF_FIELD, token_proof
from drs.config import FOLDER_KEYS, Config


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


def open_answer(body: dict) -> Response:
    """An answer of an open route (/health) as JSON: every text in it without absolute paths and,
    when the request sends a nonce and the API has a token, the token's proof."""
    config = api_state().config
    answer = {name: without_paths(value, config) if isinstance(value, str) else value for name, value in body.items()}
    nonce = request.headers.get(NONCE_HEADER, "")
    if config.api_token is not None and re.fullmatch(NONCE_PATTERN, nonce):
        answer[PROOF_FIELD] = token_proof(config.api_token, nonce)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def without_paths(text: str, config: Config) -> str:
    """`text` with the configured folders named relative to the config's folder (the name alone for
    one outside it): what anyone may read says nothing of the machine's layout."""
    root = config.path.parent.resolve()
    names = {str(root) + os.sep: ""}
    for field in FOLDER_KEYS.values():
        folder = getattr(config, field)
        try:
            names[str(folder)] = str(folder.relative_to(root))
        except ValueError:
            names[str(folder)] = folder.name
    for path in sorted(names, key=len, reverse=True):  # the longest first: a folder inside another
        text = text.replace(path, names[path])
    return text


class RedactQueryToken(logging.Filter):
    """Takes ?token=... and bearer credentials out of log lines: the development server's request
    lines, and gunicorn's error log, which quotes a malformed request line or header whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message or "bearer" in message.lower():
            message = re.sub(r"([?&]token=)[^&\s\"]*", r"\1<redacted>", message)
            record.msg, record.args = re.sub(r"(?i)(bearer\s+)[^\s'\"\\]+", r"\1<redacted>", message), ()
        return True
