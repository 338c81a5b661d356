"""GET /metrics: parsed by prometheus_client's own parser, counters moving by exactly the requests
sent, the deployed model and last tick read from production and the run history (in process,
Flask's test client); summed across gunicorn's workers, a killed worker's counts kept (real servers)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from conftest import (
    PREDICTED,
    ROWS,
    client_for,
    free_port,
    fresh_health,
    make_serve_command,
    moved,
    scaled,
    scrape,
    start_server,
    stop_server,
    timed,
)
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from drs.storage import append_jsonl

RECORD = {"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}
HEALTH = ("drs_http_requests_total", (("endpoint", "/health"), ("method", "GET"), ("status", "200")))
# An Accept header like the one Prometheus 3 scrapes with.
OPENMETRICS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def test_counters_move_by_the_requests_sent_with_bounded_labels(api_client):
    client = api_client
    assert client.get("/health").status_code == 200  # as a server's start-up probe would
    before = scrape(client)
    for _ in range(7):
        assert client.post("/prediction", json={"records": [RECORD, RECORD]}).status_code == 200
    for _ in range(3):
        assert client.post("/prediction", json={"records": []}).status_code == 400
    for index in range(4):  # four different unknown paths: one "other" series, not four
        assert client.get(f"/nope/{index}").status_code == 404
    assert client.get("/prediction").status_code == 405
    assert client.open("/prediction", method="BREW").status_code == 405
    after = scrape(client)

    assert moved(before, after, PREDICTED) == 7
    assert moved(before, after, ROWS) == 14  # rows predicted, not requests
    assert (
        moved(
            before,
            after,
            ("drs_http_requests_total", (("endpoint", "/prediction"), ("method", "POST"), ("status", "400"))),
        )
        == 3
    )
    assert (
        moved(before, after, ("drs_http_requests_total", (("endpoint", "other"), ("method", "GET"), ("status", "404"))))
        == 4
    )
    # A known path with the wrong method keeps its route's name; an unknown method is "other".
    assert (
        moved(
            before,
            after,
            ("drs_http_requests_total", (("endpoint", "/prediction"), ("method", "GET"), ("status", "405"))),
        )
        == 1
    )
    assert (
        moved(
            before,
            after,
            ("drs_http_requests_total", (("endpoint", "/prediction"), ("method", "other"), ("status", "405"))),
        )
        == 1
    )
    assert moved(before, after, timed("/prediction")) == 7 + 3 + 2
    assert (
        moved(
            before, after, ("drs_http_request_duration_seconds_bucket", (("endpoint", "/prediction"), ("le", "+Inf")))
        )
        == 12
    )
    assert after[("drs_http_request_duration_seconds_sum", (("endpoint", "/prediction"),))] > 0
    # The first scrape itself was counted, by its route.
    assert after[("drs_http_requests_total", (("endpoint", "/metrics"), ("method", "GET"), ("status", "200")))] >= 1
    endpoints = {dict(labels).get("endpoint") for name, labels in after if name == "drs_http_requests_total"}
    assert endpoints == {"/prediction", "/metrics", "/health", "other"}  # /health: the start-up probe

    # Prometheus asks for OpenMetrics first: the same counts in that format.
    response = client.get("/metrics", headers={"Accept": OPENMETRICS_ACCEPT})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    families = {family.name: family for family in openmetrics_families(response.text)}
    assert families["drs_predictions"].type == "counter"
    assert [
        sample.value for sample in families["drs_predictions"].samples if sample.name == "drs_predictions_total"
    ] == [after[ROWS]]


def test_deployed_model_and_last_tick_come_from_production_and_the_history(api_client):
    project = api_client.project
    manifest = json.loads(project.path("production_deployment", "current", "manifest.json").read_text())
    last = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    samples = scrape(api_client)
    assert samples[("drs_deployed_model_info", (("version", "v0001"),))] == 1
    assert samples[("drs_deployed_model_f1", ())] == pytest.approx(manifest["scores"]["f1"])
    assert samples[("drs_model_loaded", ())] == 1 and samples[("drs_model_check_failed", ())] == 0
    ended = dt.datetime.fromisoformat(last["end"]).timestamp()
    assert samples[("drs_last_tick_timestamp_seconds", ())] == pytest.approx(ended)
    assert samples[("drs_last_tick_exit_status", ())] == 0
    assert 0 <= samples[("drs_seconds_since_last_tick", ())] < time.time() - ended + 5

    # A production tick redeploys: the next scrape names the new version only, and its tick.
    assert project.run("fullprocess.py", config="config_production.json").returncode == 0
    manifest = json.loads(project.path("production_deployment", "current", "manifest.json").read_text())
    last = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    samples = scrape(api_client)
    versions = [dict(labels)["version"] for name, labels in samples if name == "drs_deployed_model_info"]
    assert versions == ["v0002"]
    assert samples[("drs_deployed_model_f1", ())] == pytest.approx(manifest["scores"]["f1"])
    ended = dt.datetime.fromisoformat(last["end"]).timestamp()
    assert samples[("drs_last_tick_timestamp_seconds", ())] == pytest.approx(ended)

    # A failed tick two hours ago, and nothing since: what the staleness and failure alerts read.
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    append_jsonl(
        project.path("logs", "history.jsonl"),
        {"start": two_hours_ago.isoformat(), "end": two_hours_ago.isoformat(), "exit_status": 1},
    )
    samples = scrape(api_client)
    assert samples[("drs_last_tick_exit_status", ())] == 1
    assert samples[("drs_seconds_since_last_tick", ())] == pytest.approx(7200, abs=60)


def test_without_a_model_or_a_history_the_gauges_say_so(project):
    client = client_for(project)
    samples = scrape(client)
    # A history that cannot be read (here a folder in its place) drops the tick gauges, not the scrape.
    project.path("logs", "history.jsonl").mkdir(parents=True)
    unreadable = scrape(client)
    for scraped in (samples, unreadable):
        assert scraped[("drs_model_loaded", ())] == 0
        names = {name for name, _ in scraped}
        assert not names & {
            "drs_deployed_model_info",
            "drs_deployed_model_f1",
            "drs_last_tick_timestamp_seconds",
            "drs_seconds_since_last_tick",
            "drs_last_tick_exit_status",
        }


def test_make_serve_sums_every_workers_counts_and_keeps_a_killed_workers(make_serve):
    url = make_serve.url
    assert make_serve.workers == 2
    before = scrape(url)
    # New connections until each worker has answered /health at least five times: both count.
    pids: list[int] = []
    while len(set(pids)) < 2 or min(pids.count(pid) for pid in set(pids)) < 5:
        response = requests.get(url + "/health", headers={"Connection": "close"}, timeout=10)
        assert response.status_code == 200
        pids.append(response.json()["pid"])
        assert len(pids) < 2000, "one worker answered everything"
    for _ in range(20):
        response = requests.post(
            url + "/prediction", json={"records": [RECORD]}, headers={"Connection": "close"}, timeout=10
        )
        assert response.status_code == 200
    # Whichever worker answers a scrape, it reports every worker's counts.
    for _ in range(6):
        after = scrape(url)
        assert moved(before, after, HEALTH) == len(pids)
        assert moved(before, after, PREDICTED) == 20 and moved(before, after, ROWS) == 20
        assert moved(before, after, timed("/health")) == len(pids)

    # A worker killed and replaced: its counts stay in the sums (a counter never goes back).
    os.kill(pids[0], signal.SIGKILL)
    answers = fresh_health(make_serve)  # until two workers answer: the survivor and the new one
    assert pids[0] not in {body["pid"] for _, body in answers}
    after_kill = scrape(url)
    assert moved(before, after_kill, HEALTH) == len(pids) + len(answers)
    assert moved(before, after_kill, PREDICTED) == 20


def metrics_folder(server) -> Path:
    """The folder drs/gunicorn_conf.py made for this server's workers, as its master logged it."""
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        match = re.search(r"metrics of every worker in (\S+)", server.log_path.read_text())
        if match:
            return Path(match.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no metrics folder in {server.log_path.read_text()[-500:]}")


def test_make_serve_metrics_folders_are_private_per_server_and_removed(deployed, tmp_path):
    # A folder left by a master killed with SIGKILL (its pid no longer runs): removed at the next start.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"drs-metrics-{dead.pid}-stale"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"\0" * 8)

    servers, folders = [], []
    try:
        for name in ("one", "two"):
            port = free_port()
            command, env = make_serve_command(deployed.config_path, port)
            servers.append(start_server(command, port, tmp_path / f"{name}.log", env=env, cwd=deployed.elsewhere))
        folders = [metrics_folder(server) for server in servers]
        assert folders[0] != folders[1]  # two servers never share one
        for server, folder in zip(servers, folders, strict=False):
            assert folder.parent == Path(tempfile.gettempdir())
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert f"drs-metrics-{server.process.pid}-" in folder.name
            assert server.post("/prediction", json={"records": [RECORD]}).status_code == 200
        assert not stale.exists()
        assert all(list(folder.glob("counter_*.db")) for folder in folders)
        # A worker gone: child_exit runs without an error and the master goes on.
        pid = servers[0].get("/health").json()["pid"]
        os.kill(pid, signal.SIGKILL)
        servers[0].workers = 2
        assert pid not in {body["pid"] for _, body in fresh_health(servers[0])}
    finally:
        for server in servers:
            stop_server(server)
    for server, folder in zip(servers, folders, strict=False):
        assert not folder.exists(), "the master did not remove its folder"
        assert "Traceback" not in server.log_path.read_text()
