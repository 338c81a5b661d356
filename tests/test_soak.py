"""Load and soak: 16 keep-alive clients for 60 s against gunicorn while production is redeployed;
/metrics, summed across the workers, counts every request they sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import PREDICTED, ROOT, ROWS, free_port, moved, scrape, start_server, timed

CLIENTS = 16
SECONDS = 60
REDEPLOY_AFTER = 20
RECORD = {"records": [{"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}]}


def serve_command(config: Path, port: int) -> list[str]:
    """gunicorn with the worker settings `make serve` uses."""
    flags = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "print-serve-flags"], capture_output=True, text=True, check=True
    ).stdout.split()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return [gunicorn, "--chdir", str(ROOT), *flags, "--bind", f"127.0.0.1:{port}", "app:create_app()"]


@pytest.mark.slow
def test_sixteen_clients_see_no_failure_and_the_new_model_across_a_redeploy(deployed, tmp_path):
    port = free_port()
    server = start_server(
        serve_command(deployed.config_path, port),
        port,
        tmp_path / "gunicorn.log",
        env={"DRS_CONFIG": str(deployed.config_path)},
        cwd=deployed.elsewhere,
    )
    master = server.process.pid
    try:
        assert server.get("/health").json()["version"] == "v0001"
        before = scrape(server.url)
        deadline = time.monotonic() + SECONDS
        seen: list[list[tuple[float, str]]] = [[] for _ in range(CLIENTS)]
        failures: list[str] = []

        def client(slot: int) -> None:
            with requests.Session() as session:
                while time.monotonic() < deadline:
                    try:
                        response = session.post(server.url + "/prediction", json=RECORD, timeout=30)
                    except requests.RequestException as exc:
                        failures.append(f"client {slot}: {exc}")
                        continue
                    if response.status_code != 200:
                        failures.append(f"client {slot}: {response.status_code} {response.text[:200]}")
                        continue
                    seen[slot].append((time.monotonic(), response.json()["version"]))

        threads = [threading.Thread(target=client, args=(slot,)) for slot in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(REDEPLOY_AFTER)
        # A production tick: new source data, drift, retrain, redeploy, while the clients keep asking.
        tick = deployed.run("fullprocess.py", config="config_production.json", timeout=SECONDS)
        redeployed_at = time.monotonic()
        for thread in threads:
            thread.join()

        assert tick.returncode == 0, tick.stderr
        assert failures == [], failures[:5]
        # Every answer the clients got, counted once, whichever of the workers gave it.
        after = scrape(server.url)
        answered = sum(len(answers) for answers in seen)
        assert moved(before, after, PREDICTED) == answered
        assert moved(before, after, ROWS) == answered  # one record each
        assert moved(before, after, timed("/prediction")) == answered
        assert [dict(labels)["version"] for name, labels in after if name == "drs_deployed_model_info"] == ["v0002"]
        assert server.process.poll() is None and server.process.pid == master, "the server was restarted"
        answers = [answer for answers in seen for answer in answers]
        assert len(answers) > CLIENTS * 10
        versions = [version for _, version in sorted(answers)]
        assert versions[0] == "v0001" and versions[-1] == "v0002"
        # Every client moved to the new model and never went back.
        for slot, answers in enumerate(seen):
            after = [version for when, version in answers if when > redeployed_at + 1]
            assert after and set(after) == {"v0002"}, f"client {slot} still saw {set(after)} after the redeploy"
    finally:
        os.kill(master, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
