"""Talking to the API safely: the token goes only to a server that proves it knows it (an impostor
on api_url gets nothing and its answers are not saved); every call of a tick ends within
api_timeout_seconds however slowly a peer answers; credentials in api_url never reach a log or
record; /health shows no absolute path; gunicorn's own refusals are JSON and keep ?token= out of
its error log. Real servers on free ports: an impostor, a trickling peer, the real gunicorn."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import client_for, scaled

from drs.api.security import RedactQueryToken, without_paths
from drs.api_client import NONCE_HEADER, PROOF_FIELD, call_api, shown_url, token_proof
from drs.config import PipelineError

TOKEN = "t0ken-for-trust-tests_Xy3"


def history(project) -> list[dict]:
    return [json.loads(line) for line in project.path("logs", "history.jsonl").read_text().splitlines()]


class Impostor:
    """An HTTP server on a free port that answers 200 JSON to everything, with a made-up
    token_proof, and keeps the headers of every request it got."""

    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                seen.append((self.command, self.path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"status": "ok", "version": "v9999", PROOF_FIELD: "0" * 64}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Trickler:
    """A server on a free port that answers every connection one header byte every 0.2 s, for ever
    (each byte well within any socket timeout)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.trickle, args=(connection,), daemon=True).start()

    def trickle(self, connection):
        with connection:
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.stop.is_set():
                    connection.sendall(b"a")
                    time.sleep(0.2)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.listener.close()


@pytest.fixture
def impostor():
    server = Impostor()
    yield server
    server.close()


@pytest.fixture
def trickler():
    server = Trickler()
    yield server
    server.close()


# --- the token only to a server that proves it knows it ---


def test_health_proves_the_token_with_an_hmac_of_the_nonce_and_never_shows_it(deployed):
    deployed.write_config(api_token=TOKEN)
    client = client_for(deployed)
    nonce = "ab" * 32
    answer = client.get("/health", headers={NONCE_HEADER: nonce}).json
    assert answer[PROOF_FIELD] == token_proof(TOKEN, nonce) and answer["status"] == "ok"
    assert TOKEN not in json.dumps(answer)
    assert PROOF_FIELD not in client.get("/health").json
    assert PROOF_FIELD not in client.get("/health", headers={NONCE_HEADER: "short"}).json
    deployed.write_config()  # no token: nothing to prove
    assert PROOF_FIELD not in client_for(deployed).get("/health", headers={NONCE_HEADER: nonce}).json


def test_apicalls_sends_no_token_to_an_impostor_and_saves_nothing(deployed, impostor):
    deployed.write_config(api_token=TOKEN)
    result = deployed.run("apicalls.py", "--url", impostor.url)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "did not prove it knows the API token" in result.stderr
    assert not deployed.path("models", "apireturns.txt").exists()
    assert [(method, path) for method, path, _ in impostor.seen] == [("GET", "/health")]
    assert NONCE_HEADER in impostor.seen[0][2]
    assert not any("Authorization" in headers for _, _, headers in impostor.seen)


def test_a_deploying_tick_sends_no_token_to_an_impostor_and_records_one_line(deployed, impostor):
    deployed.write_config(
        "config_production.json", input_folder_path="sourcedata", api_url=impostor.url, api_token=TOKEN
    )
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    assert record["deployed_version"] == "v0002"
    assert "did not prove it knows the API token" in record["apicalls_error"]
    assert "\n" not in record["apicalls_error"]
    assert not deployed.path("models", "apireturns.txt").exists()
    assert impostor.seen and not any("Authorization" in headers for _, _, headers in impostor.seen)
    assert TOKEN not in deployed.path("logs", "fullprocess.log").read_text()


# --- every outbound call of a tick has an overall deadline ---


@pytest.mark.parametrize("token", [None, TOKEN])
def test_call_api_ends_within_its_deadline_against_a_trickling_server(deployed, trickler, token):
    deployed.write_config(**({"api_token": token} if token else {}))
    config = deployed.config()
    outcome: dict = {}

    def call():
        try:
            call_api(config, trickler.url, timeout=1.0)
        except PipelineError as exc:
            outcome["error"] = str(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(scaled(60))  # a bound on a test that would hang, not a measure of the deadline
    assert not caller.is_alive(), "call_api was still waiting on the trickling server"
    assert "did not answer every call within 1 s" in outcome["error"]


def test_a_deploying_tick_ends_against_a_trickling_api_and_hides_url_credentials(deployed, trickler):
    secret = "pa55-in-the-url"
    url = trickler.url.replace("http://", f"http://someone:{secret}@")
    deployed.write_config("config_production.json", input_folder_path="sourcedata", api_url=url, api_timeout_seconds=2)
    result = deployed.run("fullprocess.py", config="config_production.json", timeout=scaled(300))
    assert result.returncode == 0, result.stderr
    record = history(deployed)[-1]
    assert record["deployed_version"] == "v0002"
    assert "did not answer every call within 2 s" in record["apicalls_error"]
    assert "http://***@127.0.0.1:" in record["apicalls_error"]
    for text in (deployed.path("logs", "fullprocess.log").read_text(), json.dumps(record), result.stderr):
        assert secret not in text


# --- no credentials, paths or tokens where they do not belong ---


def test_url_credentials_are_hidden_and_the_rest_kept():
    assert shown_url("http://user:pw@127.0.0.1:8000/api") == "http://***@127.0.0.1:8000/api"
    assert shown_url("https://tok@host") == "https://***@host"
    assert shown_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_health_names_folders_relative_to_the_config_never_absolute(deployed, tmp_path):
    client = client_for(deployed)
    assert client.get("/health").json["status"] == "ok"
    model = deployed.path("production_deployment", "trainedmodel.pkl")
    model.write_bytes(model.read_bytes() + b"tampered")
    degraded = client.get("/health")
    assert degraded.json["status"] == "degraded" and "production_deployment" in degraded.json["problem"]
    assert str(tmp_path) not in degraded.text

    deployed.path("production_deployment", "current").unlink()
    fresh = client_for(deployed).get("/health")
    assert fresh.status_code == 503 and "production_deployment" in fresh.json["error"]
    assert str(tmp_path) not in fresh.text

    elsewhere = tmp_path / "far" / "prod"
    deployed.write_config(prod_deployment_path=str(elsewhere))
    assert without_paths(f"no model deployed in {elsewhere}", deployed.config()) == "no model deployed in prod"


def test_the_log_filter_redacts_query_tokens_and_bearer_credentials():
    import logging

    record = logging.LogRecord(
        "gunicorn.error",
        logging.WARNING,
        __file__,
        1,
        "Invalid request from ip=%s: %s",
        ("127.0.0.1", "Invalid HTTP Header: 'Authorization: Bearer s3cr3t\\x01' 'GET /?token=s3cr3t x'"),
        None,
    )
    RedactQueryToken().filter(record)
    assert "s3cr3t" not in record.getMessage() and record.getMessage().count("<redacted>") == 2


def raw_request(url: str, data: bytes) -> bytes:
    """Send `data` on a new connection to the server at `url`; everything it answers before closing."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=scaled(30)) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_make_serve_keeps_a_query_token_of_a_malformed_request_out_of_its_log_and_answers_json(make_serve):
    secret = "query-s3cret-token"
    answer = raw_request(make_serve.url, f"GET /scoring?token={secret}\r\nHost: x\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"Content-Type: application/json" in head
    assert "error" in json.loads(body) and secret.encode() not in answer
    assert requests.get(make_serve.url + "/health", timeout=scaled(30)).status_code == 200
    log = make_serve.log_path.read_text()
    assert "Invalid request" in log and "token=<redacted>" in log
    assert secret not in log


# --- gunicorn's own refusals are JSON ---


def test_make_serve_answers_a_20_kb_header_with_a_json_431(make_serve):
    response = requests.get(make_serve.url + "/health", headers={"X-Big": "a" * 20_000}, timeout=scaled(30))
    assert response.status_code == 431
    assert response.headers["Content-Type"] == "application/json"
    assert "Request Header Fields Too Large" in response.json()["error"]
    assert requests.get(make_serve.url + "/health", timeout=scaled(30)).status_code == 200
