"""The API under real use: hostile bodies and malformed CSVs (in process, Flask's test client);
production changed under a running server, slow clients (real servers on free loopback ports,
`make serve`'s own command line where the serving set-up matters)."""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import PYTHON, ROOT, free_port, fresh_health, start_server, stop_server

RECORD = {"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}
HEADER = "lastmonth_activity,lastyear_activity,number_of_employees"
SECRET = "s3cr3t-cell-value"


# --- 1. hostile JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        (
            '{"records": [{"lastmonth_activity": %s, "lastyear_activity": 1, "number_of_employees": 1}]}' % ("9" * 400),
            "finite",
        ),
        (
            '{"records": [{"lastmonth_activity": 1, "lastyear_activity": -%s, "number_of_employees": 1}]}'
            % ("7" * 400),
            "finite",
        ),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ('{"records": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON"),
    ],
)
def test_huge_numbers_and_deep_nesting_are_400_not_500(shared_client, body, fragment):
    response = shared_client.post("/prediction", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    error = response.json["error"]
    assert fragment in error and "999999" not in error and "777777" not in error


# --- 2. malformed CSVs: 400 naming the column, never quoting the file ---------------------


@pytest.mark.parametrize(
    "text, fragments",
    [
        (f"corporation,{HEADER},lastyear_activity\n{SECRET},1,2,3,4\n", ["duplicate", "lastyear_activity"]),
        (f"{HEADER},note,note\n1,2,3,{SECRET},x\n", ["duplicate", "note"]),
        (f"corporation,{HEADER}\nacme,1,{SECRET},3\n", ["line 2, column 'lastyear_activity': not a number"]),
        (f"{HEADER}\n1,2,3,{SECRET}\n", ["line 2: 4 field(s), expected 3"]),
    ],
)
def test_a_malformed_csv_is_400_naming_the_column_without_quoting_the_file(api_client, text, fragments):
    project = api_client.project
    (project.path("testdata", "malformed.csv")).write_text(text)
    by_body = api_client.post("/prediction", data=text, headers={"Content-Type": "text/csv"})
    by_path = api_client.post("/prediction", json={"filepath": "testdata/malformed.csv"})
    by_query = api_client.post("/prediction?filepath=testdata/malformed.csv")
    for response in (by_body, by_path, by_query):
        assert response.status_code == 400, response.text[:300]
        error = response.json["error"]
        assert all(fragment in error for fragment in fragments), error
        assert SECRET not in error and "acme" not in error


def test_a_csv_header_that_is_not_utf8_is_400(shared_client):
    body = b"\xff\xfe" + HEADER.encode() + b"\n1,2,3\n"
    response = shared_client.post("/prediction", data=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400 and "UTF-8" in response.json["error"]


# --- 3. /health tells the truth, in every worker ------------------------------------------


def test_health_is_degraded_in_every_worker_when_current_is_removed(make_serve):
    prod = make_serve.project.path("production_deployment")
    assert {body["status"] for _, body in fresh_health(make_serve)} == {"ok"}
    os.rename(prod / "current", prod / "current.away")
    try:
        answers = fresh_health(make_serve)
        assert {code for code, _ in answers} == {200}
        assert {body["status"] for _, body in answers} == {"degraded"}, answers
        assert all("no model deployed" in body["problem"] for _, body in answers)
        # The model held keeps serving.
        prediction = make_serve.post("/prediction", json={"records": [RECORD]})
        assert prediction.status_code == 200 and prediction.json()["version"] == "v0001"

        # A fresh server holds nothing: 503.
        port = free_port()
        fresh = start_server(
            [PYTHON, str(ROOT / "app.py"), "--config", str(make_serve.project.config_path), "--port", str(port)],
            port,
            prod.parent.parent / "fresh.log",
        )
        try:
            assert fresh.get("/health").status_code == 503
        finally:
            stop_server(fresh)
    finally:
        os.rename(prod / "current.away", prod / "current")
    assert {body["status"] for _, body in fresh_health(make_serve)} == {"ok"}


class Unpickled:
    """A pickle that makes a folder when loaded: proof that tampered bytes were unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_model_restored_byte_for_byte_with_cp_p_is_trusted_again(make_serve, tmp_path):
    model = make_serve.project.path("production_deployment", "versions", "v0001", "trainedmodel.pkl")
    backup = tmp_path / "trainedmodel.pkl"
    shutil.copy2(model, backup)
    model.write_bytes(model.read_bytes() + b"tampered")
    answers = fresh_health(make_serve)
    assert {body["status"] for _, body in answers} == {"degraded"}, answers
    assert all("integrity check" in body["problem"] for _, body in answers)
    prediction = make_serve.post("/prediction", json={"records": [RECORD]})
    assert prediction.status_code == 200 and prediction.json()["version"] == "v0001"

    # Back to the good bytes with the good file's inode, size and mtime.
    subprocess.run(["cp", "-p", str(backup), str(model)], check=True)
    assert (model.stat().st_size, model.stat().st_mtime_ns) == (backup.stat().st_size, backup.stat().st_mtime_ns)
    assert {body["status"] for _, body in fresh_health(make_serve)} == {"ok"}


def test_a_tampered_model_with_its_size_and_mtime_kept_is_seen_and_never_unpickled(make_serve, tmp_path):
    model = make_serve.project.path("production_deployment", "versions", "v0001", "trainedmodel.pkl")
    assert {body["status"] for _, body in fresh_health(make_serve)} == {"ok"}
    stat = model.stat()
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(model, "r+b") as handle:  # same inode, same size
        handle.write(data)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    answers = fresh_health(make_serve)
    assert {body["status"] for _, body in answers} == {"degraded"}, answers
    assert all("integrity check" in body["problem"] for _, body in answers)

    # A hostile pickle in its place is refused without being unpickled; the good model keeps serving.
    marker = tmp_path / "unpickled"
    model.write_bytes(pickle.dumps(Unpickled(marker)))
    answers = fresh_health(make_serve)
    assert {body["status"] for _, body in answers} == {"degraded"} and not marker.exists()
    prediction = make_serve.post("/prediction", json={"records": [RECORD]})
    assert prediction.status_code == 200 and prediction.json()["version"] == "v0001"


# --- 4. slow clients ------------------------------------------------------------------------


class SlowClients:
    """`count` loopback connections sending request-header bytes one at a time, never finishing."""

    def __init__(self, port: int, count: int):
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        for sock in self.sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stopped.wait(0.5):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"X")

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def test_make_serve_answers_others_while_fifty_clients_send_headers_slowly(make_serve):
    """A behaviour test (is there an answer at all, within a generous 5 s), not a speed test."""
    port = int(make_serve.url.rsplit(":", 1)[1])
    for count in (5, 50):
        slow = SlowClients(port, count)
        try:
            time.sleep(1.5)  # every slow connection accepted and handed to whatever reads it
            for _ in range(3):
                response = requests.get(make_serve.url + "/health", timeout=5)
                assert response.status_code == 200
            prediction = requests.post(make_serve.url + "/prediction", json={"records": [RECORD]}, timeout=5)
            assert prediction.status_code == 200
        finally:
            slow.close()


def test_make_serve_with_a_bad_config_says_so_in_one_line(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(
        '{"input_folder_path": "a", "output_folder_path": "b", "test_data_path": "c", '
        '"output_model_path": "d", "prod_deployment_path": "e", "keep_versions": 1}'
    )
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "serve", f"CONFIG={bad}", f"PORT={free_port()}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "app: config error:" in result.stderr and "keep_versions" in result.stderr
    assert "Traceback" not in result.stderr and "gunicorn" not in result.stderr
