"""Serving set-ups against slow clients: which keeps answering, and at what cost.

    python bench/slow_clients.py [--setups make-serve,gthread,waitress] [--quick] [--app SPEC]

Each set-up serves the practice model of a scratch project (bench/scratch/,
git-ignored) on 127.0.0.1, and is measured for:

  (i)   GET /health latency, each probe on a new connection (5 s timeout),
        while 0, 5 and 50 other clients send request-header bytes one at a
        time (a byte a second, never finishing the headers);
  (ii)  POST /prediction with one record, one keep-alive client: p50 and p99;
  (iii) throughput of the same request with 16 keep-alive clients, and with
        wrk (-t2, when installed; else Python threads) the p99 and maximum
        latency: whether every client is served, not only how many requests.
(ii) and (iii) are measured in 3 rounds, the servers loaded in turn; the best
round of each counts, and the errors of all.

Set-ups: `make-serve` (whatever `make serve` runs now: `make -s
print-serve-flags`), `gthread` (2 workers x 2 threads, `make serve` before
gevent), `gevent` (2 gevent workers), `waitress` (one process, 4 threads; not a
project dependency: `pip install waitress` to measure it, else it is skipped).
Prints a table; every server is stopped at the end. Loopback traffic only.
Figures on a shared 2-core machine are noisy: compare set-ups measured in the
same run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (the benchmark's own helpers, beside this file)
    PROJECT_DIR,
    PYTHON,
    SINGLE_RECORD,
    WORK_DIR,
    Failed,
    free_port,
    latency,
    new_project,
    request,
    stop_process_group,
    throughput_python,
    tick,
)

GUNICORN = str(Path(PYTHON).parent / "gunicorn")
SLOW_CLIENT_COUNTS = (0, 5, 50)
PROBE_TIMEOUT = 5.0


def serve_flags() -> list[str]:
    """The gunicorn flags `make serve` uses."""
    return subprocess.run(
        ["make", "-s", "-C", str(PROJECT_DIR), "print-serve-flags"], capture_output=True, text=True, check=True
    ).stdout.split()


def setups(app: str) -> dict[str, list[str]]:
    """Name -> command line, with {port} to fill in."""
    gunicorn = [GUNICORN, "--chdir", str(PROJECT_DIR), "--bind", "127.0.0.1:{port}", "--no-control-socket"]
    return {
        "make-serve": [GUNICORN, "--chdir", str(PROJECT_DIR), *serve_flags(), "--bind", "127.0.0.1:{port}", app],
        "gthread": [*gunicorn, "--worker-class", "gthread", "--workers", "2", "--threads", "2", app],
        "gevent": [*gunicorn, "--worker-class", "gevent", "--workers", "2", app],
        "waitress": [
            PYTHON,
            "-m",
            "waitress",
            "--listen",
            "127.0.0.1:{port}",
            "--threads",
            "4",
            "--call",
            app.removesuffix("()"),
        ],
    }


class Server:
    """A serving set-up on a free port, in its own process group so it can be stopped whole."""

    def __init__(self, name: str, command: list[str], config: Path):
        self.port = free_port()
        self.log = open(WORK_DIR / f"slow-clients-{name}.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            cwd=PROJECT_DIR,
            env={**os.environ, "DRS_CONFIG": str(config)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failed(f"{name} exited: see {self.log.name}")
            try:
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise Failed(f"{name} did not start: see {self.log.name}")

    def stop(self) -> None:
        stop_process_group(self.process)
        self.log.close()


class SlowClients:
    """`count` connections sending a request's header bytes one at a time, never finishing."""

    def __init__(self, port: int, count: int, interval: float = 1.0):
        self.port, self.count, self.interval = port, count, interval
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self):
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            self.sockets.append(sock)
        self.thread.start()
        return self

    def _trickle(self) -> None:
        while not self.stopped.wait(self.interval):
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # the server gave up on this one: fine
                    sock.send(b"X")  # an endless header name

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def probe_health(port: int, probes: int) -> dict:
    """GET /health on a new connection each time: latencies in ms, and how many got no answer in time."""
    timings, failures = [], 0
    for _ in range(probes):
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answered = sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            answered = False
        if answered:
            timings.append((time.perf_counter() - started) * 1000)
        else:
            failures += 1
        time.sleep(0.1)
    return {
        "p50_ms": statistics.median(timings) if timings else None,
        "max_ms": max(timings, default=None),
        "failures": failures,
        "probes": probes,
    }


def measure_slow_clients(server: Server, args) -> dict:
    figures = {}
    for count in SLOW_CLIENT_COUNTS:
        with SlowClients(server.port, count):
            time.sleep(2.0)  # every slow client accepted and handed to whatever will read it
            figures[f"health_{count}"] = probe_health(server.port, 5 if args.quick else 10)
    return figures


def throughput_wrk(port: int, body: bytes, clients: int, seconds: int) -> dict:
    """wrk -t2 with latency percentiles: how fairly the clients are served, not only how many."""
    script = WORK_DIR / "slow-clients-post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/prediction",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def milliseconds(pattern: str) -> float:
        value, unit = re.search(pattern + r"\s+([\d.]+)(us|ms|s)", output).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "errors": errors,
        "p99_ms": milliseconds(r" 99%"),
        "max_ms": milliseconds(r"Latency\s+\S+\s+\S+"),
    }


def measure_load(server: Server, args) -> dict:
    body = json.dumps(SINGLE_RECORD).encode()
    load = throughput_wrk if shutil.which("wrk") else throughput_python
    return {
        "latency": latency(server.port, body, count=500 if args.quick else 2000, warmup=200),
        "throughput": load(server.port, body, 16, 5 if args.quick else 10),
    }


def health_cell(figure: dict) -> str:
    if figure["failures"] == figure["probes"]:
        return f"no answer ({figure['failures']}/{figure['probes']} timed out)"
    text = f"{figure['p50_ms']:.1f} / {figure['max_ms']:.0f} ms"
    return text + (f", {figure['failures']}/{figure['probes']} timed out" if figure["failures"] else "")


def load_cell(figure: dict) -> str:
    tail = f", p99 {figure['p99_ms']:.0f} ms, max {figure['max_ms']:.0f} ms" if "p99_ms" in figure else ""
    return f"{figure['requests_per_s']:.0f} req/s{tail} ({figure['errors']} errors)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Measure serving set-ups against slow-header clients.")
    parser.add_argument("--setups", default="make-serve,gthread,waitress", help="comma-separated set-ups")
    parser.add_argument("--app", default="app:create_app()", help="the WSGI app gunicorn loads")
    parser.add_argument("--quick", action="store_true", help="fewer probes and shorter runs")
    args = parser.parse_args(argv)
    known = setups(args.app)
    names = [name.strip() for name in args.setups.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown set-up(s): {', '.join(unknown)} (known: {', '.join(known)})")
    for name in [name for name in names if name in ("gevent", "waitress") and not importlib.util.find_spec(name)]:
        print(f"{name}: skipped, not installed")
        names.remove(name)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    config = new_project("slow-clients")
    tick(config)  # deploys the practice model
    servers = {}
    try:
        for name in names:
            print(f"{name}: {' '.join(known[name])}", flush=True)
            servers[name] = Server(name, known[name], config)
        results = {name: measure_slow_clients(server, args) for name, server in servers.items()}
        # Every server stays up and is loaded in turn, round after round: the load other
        # programs put on the machine then falls on all alike. The best round counts.
        rounds = {name: [] for name in servers}
        for _ in range(1 if args.quick else 3):
            for name, server in servers.items():
                rounds[name].append(measure_load(server, args))
    finally:
        for server in servers.values():
            server.stop()
    for name, runs in rounds.items():
        results[name]["latency"] = min((run["latency"] for run in runs), key=lambda run: run["p50_ms"])
        results[name]["throughput"] = max((run["throughput"] for run in runs), key=lambda run: run["requests_per_s"])
        results[name]["throughput"]["errors"] = sum(run["throughput"]["errors"] for run in runs)
        print(
            f"{name}: p50 per round "
            + ", ".join(f"{run['latency']['p50_ms']:.2f}" for run in runs)
            + " ms; req/s per round "
            + ", ".join(f"{run['throughput']['requests_per_s']:.0f}" for run in runs)
        )

    header = [
        "set-up",
        *(f"/health p50 / max, {n} slow" for n in SLOW_CLIENT_COUNTS),
        "1-record p50 / p99",
        "16 keep-alive clients",
    ]
    rows = [
        [
            name,
            *(health_cell(figures[f"health_{n}"]) for n in SLOW_CLIENT_COUNTS),
            f"{figures['latency']['p50_ms']:.2f} / {figures['latency']['p99_ms']:.2f} ms",
            load_cell(figures["throughput"]),
        ]
        for name, figures in results.items()
    ]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
