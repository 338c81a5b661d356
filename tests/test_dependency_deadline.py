"""The outdated-packages check against a package index that stalls: a local server that accepts every
request and trickles its answer a byte at a time for as long as the test runs (each socket wait short,
the whole endless), pointed at through DRS_PYPI_URL. The check keeps its overall deadline, says
"not checked: timed out", and neither diagnostics.py nor a deploying tick is kept from exiting."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import scaled

from drs.diagnostics import NOT_CHECKED, outdated_packages_list


class StallingIndex:
    """A package index that never finishes an answer until `close`."""

    def __init__(self):
        self.stop = threading.Event()
        self.requests = 0
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                index.requests += 1
                for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                    if index.stop.wait(0.2):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.env = {"DRS_PYPI_URL": f"http://127.0.0.1:{self.server.server_port}/pypi/{{package}}/json"}
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling_index(monkeypatch):
    index = StallingIndex()
    monkeypatch.setenv("DRS_PYPI_URL", index.env["DRS_PYPI_URL"])
    yield index
    index.close()


def assert_not_checked(rows: list[dict]) -> None:
    assert {"pandas", "scikit-learn", "requests"} <= {row["package"] for row in rows}
    for row in rows:
        assert row["latest"] == "unknown" and row["outdated"] is False and row["note"] == NOT_CHECKED, row


def test_the_check_keeps_its_deadline_and_leaves_no_thread_that_holds_the_process(stalling_index):
    before = set(threading.enumerate())
    rows = outdated_packages_list(timeout=0.5)
    assert stalling_index.requests > 0  # the index was asked, and answered nothing whole
    assert_not_checked(rows)
    # The look-ups still waiting on the index must not be joined at exit.
    left = [thread for thread in set(threading.enumerate()) - before if thread.is_alive()]
    assert left and all(thread.daemon for thread in left), [(t.name, t.daemon) for t in left]


def test_an_index_that_answers_has_no_note(monkeypatch):
    served = ThreadingHTTPServer(("127.0.0.1", 0), _IndexHandler)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DRS_PYPI_URL", f"http://127.0.0.1:{served.server_port}/pypi/{{package}}/json")
        rows = outdated_packages_list(timeout=scaled(20))
    finally:
        served.shutdown()
        served.server_close()
    assert rows and all(row["latest"] == "99.0" and row["outdated"] is True and "note" not in row for row in rows)


class _IndexHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"info": {"version": "99.0"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_diagnostics_script_exits_and_says_not_checked(deployed, stalling_index):
    # Before the deadline, the pool's threads stayed in the trickled answers and the script never exited.
    result = deployed.run("diagnostics.py", env=stalling_index.env, timeout=scaled(90))
    assert result.returncode == 0, result.stderr
    report = json.loads(deployed.path("models", "diagnostics.json").read_text())
    assert_not_checked(report["outdated_packages"])


def test_a_deploying_tick_exits_and_its_diagnostics_say_not_checked(project, stalling_index):
    result = project.run("fullprocess.py", env=stalling_index.env, timeout=scaled(180))
    assert result.returncode == 0, result.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert record["decision"] == "bootstrap" and record["exit_status"] == 0
    assert_not_checked(json.loads(project.path("models", "diagnostics.json").read_text())["outdated_packages"])
