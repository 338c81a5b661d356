"""API calls: call every endpoint of a running API and save the answers.

Writes the combined JSON responses to ``output_model_path/apireturns.txt``.
Exit 1 with a one-line reason when the server is unreachable, an endpoint fails, or the calls
together take longer than ``api_timeout_seconds``.

With an API token (``api_token`` in the config, or DRS_API_TOKEN), the server must first prove it
knows the token: the client sends a random nonce to /health (open without a token) and the API
answers ``token_proof`` = HMAC-SHA256(token, nonce). Anything else listening on ``api_url`` (any
local user can bind 127.0.0.1:8000 while the API is down) gets no token and its answers are not
saved. Standard library only at import: requests is imported when there is something to call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from drs.config import Config, PipelineError
from drs.files import API_RETURNS_FILE
from drs.storage import write_text_atomic

log = logging.getLogger("apicalls")

NONCE_HEADER = "X-DRS-Nonce"  # the client's challenge to /health
PROOF_FIELD = "token_proof"  # /health's answer to it
NONCE_PATTERN = r"[0-9a-f]{32,128}"  # what the API accepts as a nonce: a client's secrets.token_hex
PROOF_READ_LIMIT = 64 * 1024  # bytes of /health read before the server is trusted

T = TypeVar("T")


def token_proof(token: str, nonce: str) -> str:
    """HMAC-SHA256 of `nonce` keyed by the API token, in hex: only a holder of the token can compute it."""
    return hmac.new(token.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def shown_url(url: str) -> str:
    """`url` without the user name and password it may hold (http://user:pass@host): fit for logs and records."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def within(seconds: float, work: Callable[[], T], late: str) -> T:
    """work() if it returns within `seconds` in all, else PipelineError(late).

    requests' timeout bounds each socket wait, not the whole exchange: a server that trickles
    its answer a byte at a time would hold the tick (and its lock) for ever. As the alerts'
    webhook does, the work runs in a daemon thread left behind after `seconds` (the process
    ends soon after, and nothing the late thread gets is used).
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="api-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise PipelineError(late)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def api_listening(url: str, seconds: float = 1.0) -> bool:
    """Whether anything accepts a connection at `url`'s host and port within `seconds` (name look-up included)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    host = parts.hostname or ""

    def connect() -> bool:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
        except OSError:
            return False
        return True

    try:
        return within(seconds, connect, "")
    except PipelineError:
        return False


def call_api(config: Config, url: str | None = None, timeout: float | None = None) -> dict:
    """Call /prediction, /scoring, /summarystats, /diagnostics and /health; return their JSON by endpoint.

    Every call together ends within `timeout` seconds (default: api_timeout_seconds), or a
    PipelineError says so. With config.api_token the server first proves it knows the token
    (see the module's docstring); only then is the token sent, as a bearer token. A 401 is a
    PipelineError saying whether the token is missing or wrong (never quoting it)."""
    seconds = config.api_timeout_seconds if timeout is None else timeout
    base = (url or config.api_url).rstrip("/")
    return within(
        seconds,
        lambda: _call_every_endpoint(config, base, time.monotonic() + seconds),
        f"the API at {shown_url(base)} did not answer every call within {seconds:g} s "
        "(api_timeout_seconds): nothing saved",
    )


def _call_every_endpoint(config: Config, base: str, deadline: float) -> dict:
    import requests

    shown = shown_url(base)
    test_file = config.test_data_file
    try:
        filepath = str(test_file.relative_to(config.path.parent))
    except ValueError:
        filepath = str(test_file)
    calls = [
        ("prediction", "POST", "/prediction", {"filepath": filepath}),
        ("scoring", "GET", "/scoring", None),
        ("summarystats", "GET", "/summarystats", None),
        ("diagnostics", "GET", "/diagnostics", None),
        ("health", "GET", "/health", None),
    ]
    answers = {}
    with requests.Session() as session:
        if config.api_token:
            _check_it_knows_the_token(session, base, config.api_token, deadline)
            session.headers["Authorization"] = f"Bearer {config.api_token}"
        for name, method, path, body in calls:
            where = f"{method} {shown}{path}"
            try:
                # Never redirected: a token must not follow an answer to another address.
                response = session.request(
                    method, base + path, json=body, timeout=_left(deadline), allow_redirects=False
                )
            except requests.ConnectionError:
                raise PipelineError(f"API not reachable at {shown} (is it running? try `make serve`)") from None
            except requests.Timeout:
                raise PipelineError(f"{where} timed out (api_timeout_seconds)") from None
            except requests.RequestException as exc:  # its text would show the URL: only its kind
                raise PipelineError(f"{where} failed: {type(exc).__name__}") from None
            if response.status_code == 401:
                raise PipelineError(
                    f"{where} refused: "
                    + (
                        "the token is wrong (api_token in the config, or DRS_API_TOKEN, differs from the server's)"
                        if config.api_token
                        else "the API needs a token: set api_token in the config or DRS_API_TOKEN"
                    )
                )
            try:
                payload = response.json()
            except ValueError:
                raise PipelineError(f"{where} answered {response.status_code} with a non-JSON body") from None
            if response.status_code != 200:
                reason = payload.get("error") if isinstance(payload, dict) else payload
                raise PipelineError(f"{where} failed with {response.status_code}: {reason}")
            answers[name] = payload
    return answers


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _check_it_knows_the_token(session, base: str, token: str, deadline: float) -> None:
    """PipelineError unless GET /health answers the HMAC of a fresh nonce keyed by `token`; sends no token."""
    import requests

    shown = shown_url(base)
    nonce = secrets.token_hex(32)
    try:
        with session.get(
            base + "/health", headers={NONCE_HEADER: nonce}, timeout=_left(deadline), allow_redirects=False, stream=True
        ) as response:
            body = response.raw.read(PROOF_READ_LIMIT, decode_content=True)
    except requests.ConnectionError:
        raise PipelineError(f"API not reachable at {shown} (is it running? try `make serve`)") from None
    except requests.Timeout:
        raise PipelineError(f"GET {shown}/health timed out (api_timeout_seconds)") from None
    except (requests.RequestException, OSError) as exc:
        raise PipelineError(f"GET {shown}/health failed: {type(exc).__name__}") from None
    try:
        proof = json.loads(body).get(PROOF_FIELD)
    except (ValueError, AttributeError):
        proof = None
    expected = token_proof(token, nonce)
    if not isinstance(proof, str):
        why = "it gave no proof: another process answers there, or an API without a token"
    elif not hmac.compare_digest(proof.encode(), expected.encode()):
        why = "its proof does not match: the token is wrong (api_token, DRS_API_TOKEN) or another process answers there"
    else:
        return
    raise PipelineError(
        f"the server at {shown} did not prove it knows the API token ({why}); the token was not sent, nothing saved"
    )


def save_api_returns(config: Config, answers: dict):
    target = config.model_folder / API_RETURNS_FILE
    write_text_atomic(target, json.dumps(answers, indent=2) + "\n")
    return target
