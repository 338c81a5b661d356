"""API calls: call every endpoint of a running API and save the answers.

Writes the combined JSON responses to ``output_model_path/apireturns.txt``.
Exit 1 with a one-line reason when the server is unreachable or an endpoint fails.
Sends ``Authorization: Bearer <api_token>`` when the config has a token (or DRS_API_TOKEN is set).
"""

from __future__ import annotations

import json
import logging

from drs.config import Config, PipelineError
from drs.files import API_RETURNS_FILE
from drs.storage import write_text_atomic

log = logging.getLogger("apicalls")


def call_api(config: Config, url: str | None = None, timeout: float = 60.0) -> dict:
    """Call /prediction, /scoring, /summarystats, /diagnostics and /health; return their JSON by endpoint.

    With config.api_token, every call carries it as a bearer token; a 401 is a PipelineError
    saying whether the token is missing or wrong (never quoting it)."""
    import requests

    base = (url or config.api_url).rstrip("/")
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
            session.headers["Authorization"] = f"Bearer {config.api_token}"
        for name, method, path, body in calls:
            try:
                response = session.request(method, base + path, json=body, timeout=timeout)
            except requests.ConnectionError:
                raise PipelineError(f"API not reachable at {base} (is it running? try `make serve`)") from None
            except requests.Timeout:
                raise PipelineError(f"{method} {base + path} timed out after {timeout:g} s") from None
            if response.status_code == 401:
                raise PipelineError(
                    f"{method} {base + path} refused: "
                    + (
                        "the token is wrong (api_token in the config, or DRS_API_TOKEN, differs from the server's)"
                        if config.api_token
                        else "the API needs a token: set api_token in the config or DRS_API_TOKEN"
                    )
                )
            try:
                payload = response.json()
            except ValueError:
                raise PipelineError(
                    f"{method} {base + path} answered {response.status_code} with a non-JSON body"
                ) from None
            if response.status_code != 200:
                reason = payload.get("error") if isinstance(payload, dict) else payload
                raise PipelineError(f"{method} {base + path} failed with {response.status_code}: {reason}")
            answers[name] = payload
    return answers


def save_api_returns(config: Config, answers: dict):
    target = config.model_folder / API_RETURNS_FILE
    write_text_atomic(target, json.dumps(answers, indent=2) + "\n")
    return target
