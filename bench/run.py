"""The benchmark: the cron tick, ingestion and serving, each beside a baseline measured in the same run.

    python bench/run.py [--quick] [--only tick,ingest,retrain,serve]

Prints a table (target, measured, baseline, ratio, met?) and writes the same
as JSON to bench/results/latest.json. Every measured program runs in its own
process: wall time by perf_counter around it (best of a few runs), peak
memory from that process's own rusage (os.wait4). Machines are noisy: the
ratios, not the absolute figures, are what to compare between machines.

Scale data comes from generate_data.write_scale_data and is kept in
bench/scratch/ (git-ignored) for the next run; scratch projects live there too.
The baselines are the course-style programs beside this file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "scratch"
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
UNREACHABLE_API = "http://127.0.0.1:9"  # nothing listens there: ticks run diagnostics in process

SINGLE_RECORD = {"records": [{"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}]}


# --- measuring a process -----------------------------------------------------------------


class Failed(Exception):
    pass


GNU_TIME = "/usr/bin/time"


def run_once(
    command: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float | None = None
) -> dict:
    """Run a command; its wall seconds, its own peak RSS in MiB, and whether it was cut short.

    Peak memory comes from GNU time when installed: a child forked from this
    (large) process counts the parent's pages it touched before exec in its
    rusage, which would inflate small figures such as `python -c pass`;
    time(1) is small, so the figure is the program's own. Without it, the
    child's rusage from os.wait4 is used (and the JSON says so).
    """
    use_time = os.access(GNU_TIME, os.X_OK)
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [GNU_TIME, "-f", "%M", "-o", rss.name, *command] if use_time else command
        started = time.perf_counter()
        process = subprocess.Popen(
            full,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL)) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if timer:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        timed_out = bool(timeout) and wall >= timeout
        if process.returncode != 0 and not timed_out:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
            raise Failed(f"{' '.join(map(str, command))} exited {process.returncode}: {' | '.join(tail)}")
        peak_kib = usage.ru_maxrss
        if use_time and not timed_out:
            numbers = re.findall(r"^(\d+)$", rss.read(), flags=re.MULTILINE)
            if numbers:
                peak_kib = int(numbers[-1])
    return {
        "wall_s": wall,
        "peak_mib": peak_kib / 1024,
        "timed_out": timed_out,
        "memory_source": "GNU time" if use_time else "os.wait4 rusage",
    }


def measure(command: list[str], repeats: int, setup=None, **kwargs) -> dict:
    """Best wall time and the largest peak RSS over `repeats` runs (setup() before each, untimed)."""
    runs = []
    for _ in range(repeats):
        if setup:
            setup()
        runs.append(run_once(command, **kwargs))
        if runs[-1]["timed_out"]:
            break
    return {
        "wall_s": min(r["wall_s"] for r in runs),
        "peak_mib": max(r["peak_mib"] for r in runs),
        "runs": len(runs),
        "timed_out": any(r["timed_out"] for r in runs),
    }


# --- scratch data and projects -----------------------------------------------------------


DATA_VERSION = 2  # raise it when generate_data.py changes what it writes (2: one customer per id)


def scale_data(rows: int, files: int) -> Path:
    """A folder of `rows` source-regime rows in `files` CSVs, generated once and kept."""
    # The generator's version is in the name: data kept from an older generator is not reused.
    folder = WORK_DIR / "data" / f"source-{rows}-{files}-v{DATA_VERSION}"
    marker = folder / ".complete"
    if not marker.exists():
        sys.path.insert(0, str(PROJECT_DIR))
        from generate_data import write_scale_data

        print(
            f"  generating {rows:,} rows in {files} files (kept in {folder.relative_to(PROJECT_DIR)}) ...", flush=True
        )
        shutil.rmtree(folder, ignore_errors=True)
        write_scale_data(folder, rows, files, "source", 100)
        marker.touch()
    return folder


def new_project(name: str, **config) -> Path:
    """A scratch project with the bundled data and a practice config; returns its config path."""
    root = WORK_DIR / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for folder in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(PROJECT_DIR / folder, root / folder)
    values = {
        "input_folder_path": "practicedata",
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        "api_url": UNREACHABLE_API,
        **config,
    }
    path = root / "config.json"
    path.write_text(json.dumps(values, indent=2))
    return path


def tick(config: Path) -> dict:
    return run_once([PYTHON, str(PROJECT_DIR / "fullprocess.py"), "--config", str(config)])


def last_history(config: Path) -> dict:
    lines = (config.parent / "logs" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


# --- a: the no-op cron tick --------------------------------------------------------------


def bench_tick(args) -> dict:
    print("a. no-op cron tick", flush=True)
    config = new_project("tick")
    tick(config)  # bootstrap: a model is deployed, the input folder is then unchanged
    repeats = 5 if args.quick else 10
    ours = measure([PYTHON, str(PROJECT_DIR / "fullprocess.py"), "--config", str(config)], repeats)
    decision = last_history(config)["decision"]
    if decision != "no new data":
        raise Failed(f"the no-op tick decided {decision!r}")
    bare = measure([PYTHON, "-c", "pass"], repeats)
    course = measure([PYTHON, str(BENCH_DIR / "course_tick.py"), str(config)], repeats)
    return {"ours": ours, "bare_interpreter": bare, "course_style": course}


# --- b: ingestion ------------------------------------------------------------------------


def bench_ingest(args) -> dict:
    sizes = [(200_000, 20)] if args.quick else [(1_000_000, 100), (10_000_000, 1000)]
    results = {}
    for rows, files in sizes:
        print(f"b. ingestion of {rows:,} rows in {files} files", flush=True)
        data = scale_data(rows, files)
        big = rows >= 5_000_000
        repeats = 1 if big else 3
        root = WORK_DIR / f"ingest-{rows}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        # The input folder hard-links the data files (ingestion never follows a symbolic link out
        # of its input folder), so the incremental case can add one without copying.
        inputs = root / "input"
        inputs.mkdir()
        names = sorted(p.name for p in data.glob("*.csv"))
        for name in names[:-1]:
            os.link(data / name, inputs / name)
        config = root / "config.json"
        config.write_text(
            json.dumps(
                {
                    "input_folder_path": "input",
                    "output_folder_path": "out",
                    "test_data_path": str(PROJECT_DIR / "testdata"),
                    "output_model_path": "models",
                    "prod_deployment_path": "prod",
                }
            )
        )
        command = [PYTHON, str(PROJECT_DIR / "ingestion.py"), "--config", str(config)]
        last = inputs / names[-1]

        def cold(root=root, last=last, data=data, names=names):
            shutil.rmtree(root / "out", ignore_errors=True)
            if not last.exists():
                os.link(data / names[-1], last)

        def history_then_one_new_file(last=last, data=data, names=names, command=command):
            last.unlink(missing_ok=True)
            run_once(command)
            os.link(data / names[-1], last)

        entry = {
            "cold": measure(command, repeats, setup=cold),
            "one_new_file": measure(command, repeats, setup=history_then_one_new_file),
        }
        # Where the time goes, from ingestion's own log line (one more run of each case).
        entry["breakdown"] = {
            "cold": ingestion_breakdown(command, cold),
            "one_new_file": ingestion_breakdown(command, history_then_one_new_file),
        }
        cold()
        entry["pyarrow_read"] = measure([PYTHON, str(BENCH_DIR / "pyarrow_read.py"), str(inputs)], repeats)
        entry["course_style"] = measure(
            [PYTHON, str(BENCH_DIR / "course_ingestion.py"), str(inputs), str(root / "course-out")],
            repeats,
            timeout=args.course_timeout,
        )
        entry["rows"], entry["files"] = rows, files
        results[f"{rows}"] = entry
        for name, figures in entry.items():
            if isinstance(figures, dict) and "wall_s" in figures:
                print(
                    f"   {name:<14} {figures['wall_s']:8.2f} s {figures['peak_mib']:8.0f} MiB"
                    f"{'  (cut short)' if figures['timed_out'] else ''}",
                    flush=True,
                )
    return results


def ingestion_breakdown(command: list[str], setup) -> dict:
    setup()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"seconds: read ([\d.]+), deduplicate ([\d.]+), write ([\d.]+)", output)
    if not match:
        return {}
    read, dedup, write = match.groups()
    return {"read_s": float(read), "deduplicate_s": float(dedup), "write_s": float(write)}


# --- c: drift, retrain, redeploy ---------------------------------------------------------


def bench_retrain(args) -> dict:
    rows, files = (200_000, 20) if args.quick else (1_000_000, 100)
    print(f"c. drift-retrain-redeploy tick on {rows:,} rows", flush=True)
    data = scale_data(rows, files)
    config = new_project("retrain")
    tick(config)  # bootstrap on practicedata
    production = config.parent / "config_production.json"
    production.write_text(json.dumps({**json.loads(config.read_text()), "input_folder_path": str(data)}))
    figures = tick(production)
    record = last_history(production)
    if record.get("decision") != "drift, redeployed":
        raise Failed(f"the 1M tick decided {record.get('decision')!r}, not a redeploy")
    return {
        "rows": rows,
        "wall_s": figures["wall_s"],
        "peak_mib": figures["peak_mib"],
        "stages": record["stages"],
        "decision": record["decision"],
        "tick_seconds": record["seconds"],
    }


# --- d: serving --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`make serve` for an app, in its own process group so it can be stopped whole."""

    def __init__(self, config: Path, app: str, log_path: Path):
        self.port = free_port()
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            ["make", "-s", "-C", str(PROJECT_DIR), "serve", f"PORT={self.port}", f"CONFIG={config}", f"APP={app}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = request(self.port, "GET", "/health")
                if status in (200, 503):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise Failed(f"server for {app} did not start: see {log_path}")

    def stop(self):
        stop_process_group(self.process)
        self.log.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM a server started in its own process group (gunicorn and its workers), SIGKILL after 15 s."""
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait()


def request(port: int, method: str, path: str, body: bytes | None = None, connection=None):
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if own:
        connection.close()
    return response.status, data


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def latency(
    port: int, body: bytes, count: int, warmup: int, path: str = "/prediction", max_seconds: float = float("inf")
) -> dict:
    """One keep-alive client, one request at a time: p50 and p99 in milliseconds.

    `count` requests after `warmup`, or fewer if they take over `max_seconds` (a slow server).
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    timings, errors = [], 0
    deadline = None
    for index in range(warmup + count):
        if index == warmup:
            deadline = time.perf_counter() + max_seconds
        elif deadline is not None and time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        try:
            status, _ = post(connection, path, body)
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = 0
        elapsed = time.perf_counter() - started
        if index >= warmup:
            timings.append(elapsed * 1000)
            errors += status != 200
    connection.close()
    timings.sort()
    return {
        "p50_ms": statistics.median(timings),
        "p99_ms": timings[max(0, int(len(timings) * 0.99) - 1)],
        "requests": len(timings),
        "errors": errors,
    }


def throughput_wrk(port: int, body: bytes, clients: int, seconds: float, path: str = "/prediction") -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "-s", script.name, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    kinds = {"non_2xx": int(non_2xx.group(1)) if non_2xx else 0}
    if socket_errors:
        kinds.update(zip(("connect", "read", "write", "timeout (2 s)"), map(int, socket_errors.groups()), strict=False))
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": sum(kinds.values()),
        "error_kinds": {kind: count for kind, count in kinds.items() if count},
        "tool": "wrk -t2",
    }


def throughput_python(port: int, body: bytes, clients: int, seconds: float, path: str = "/prediction") -> dict:
    """The fallback load generator: `clients` threads, each with its own keep-alive connection."""
    counts = [[0, 0] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < deadline:
            try:
                status, _ = post(connection, path, body)
                counts[slot][0 if status == 200 else 1] += 1
            except (OSError, http.client.HTTPException):
                counts[slot][1] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = sum(count[0] for count in counts)
    return {
        "requests_per_s": done / (time.perf_counter() - started),
        "requests": done,
        "errors": sum(count[1] for count in counts),
        "tool": "python threads (wrk not installed)",
    }


# --- 1: serving ----------------------------------------------------------------------------


def batch(port: int, body: bytes, count: int) -> dict:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        status, data = request(port, "POST", "/prediction", body)
        if status != 200:
            raise Failed(f"batch request failed with {status}: {data[:200]!r}")
        timings.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": statistics.median(timings),
        "requests": count,
        "predictions": len(json.loads(data)["predictions"]),
    }


def faster(baseline: float, ours: float) -> str:
    """The ratio of two times, said the way it goes: "2.0x faster" or "1.8x slower"."""
    return f"{baseline / ours:.1f}x faster" if baseline >= ours else f"{ours / baseline:.1f}x slower"


def round_rates(runs: list[dict]) -> str:
    return ", ".join(f"{run['throughput']['requests_per_s']:.0f}" for run in runs)


def bench_serve(args) -> dict:
    print("d. serving with gunicorn (make serve)", flush=True)
    config = new_project("serve")
    tick(config)  # deploys the practice model
    import csv  # noqa: PLC0415  (only the serving benchmark writes the batch file)

    batch_rows = 10_000
    with open(config.parent / "testdata" / "batch10k.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lastmonth_activity", "lastyear_activity", "number_of_employees"])
        for index in range(batch_rows):
            writer.writerow([index % 500, (index * 7) % 6000, 1 + index % 300])
    single = json.dumps(SINGLE_RECORD).encode()
    batch_body = json.dumps({"filepath": "testdata/batch10k.csv"}).encode()
    seconds = 5 if args.quick else 20
    rounds = 1 if args.quick else 3
    use_wrk = shutil.which("wrk") is not None and not args.python_load
    load = throughput_wrk if use_wrk else throughput_python
    apps = {"ours": "app:create_app()", "course_style": "bench.course_app:app", "server_floor": "bench.floor_app:app"}
    servers = {}
    try:
        for name, app in apps.items():
            servers[name] = Server(config, app, WORK_DIR / f"serve-{name}.log")
        # Both servers stay up and are loaded in turn, round after round: the
        # load other programs put on the machine then falls on both alike.
        measured = {name: [] for name in apps}
        for _ in range(rounds):
            for name, server in servers.items():
                measured[name].append(
                    {
                        "latency": latency(server.port, single, count=500 if args.quick else 2000, warmup=200),
                        "throughput": load(server.port, single, 16, seconds),
                        # The floor app answers a constant: a batch would measure nothing.
                        "batch_10k": batch(server.port, batch_body, 5 if args.quick else 20)
                        if name != "server_floor"
                        else {"median_ms": 0.0, "requests": 0, "predictions": 0},
                    }
                )
    finally:
        for server in servers.values():
            server.stop()
    results = {}
    for name, runs in measured.items():
        # Best round of each figure (as elsewhere: best of a few repeats); errors of every round.
        entry = {
            "latency": min((run["latency"] for run in runs), key=lambda figures: figures["p50_ms"]),
            "throughput": max((run["throughput"] for run in runs), key=lambda figures: figures["requests_per_s"]),
            "batch_10k": min((run["batch_10k"] for run in runs), key=lambda figures: figures["median_ms"]),
            "rounds": runs,
        }
        entry["latency"] = {**entry["latency"], "errors": sum(run["latency"]["errors"] for run in runs)}
        entry["throughput"] = {
            **entry["throughput"],
            "errors": sum(run["throughput"]["errors"] for run in runs),
            "requests": sum(run["throughput"]["requests"] for run in runs),
        }
        results[name] = entry
        print(
            f"   {name:<13} p50 {entry['latency']['p50_ms']:.2f} ms  p99 {entry['latency']['p99_ms']:.2f} ms  "
            f"{entry['throughput']['requests_per_s']:.0f} req/s ({entry['throughput']['errors']} errors)  "
            f"10k batch {entry['batch_10k']['median_ms']:.1f} ms  "
            f"(rounds: {round_rates(runs)} req/s)",
            flush=True,
        )
    results["serve_flags"] = subprocess.run(
        ["make", "-s", "-C", str(PROJECT_DIR), "print-serve-flags"], capture_output=True, text=True
    ).stdout.strip()
    return results


# --- the table -----------------------------------------------------------------------------


def table_builder():
    """(rows, row): row(what, target, measured, baseline, ratio, met, note="") appends one table row."""
    rows = []

    def row(what, target, measured, baseline, ratio, met, note=""):
        rows.append(
            {
                "measurement": what,
                "target": target,
                "measured": measured,
                "baseline": baseline,
                "ratio": ratio,
                "met": met,
                "note": note,
            }
        )

    return rows, row


def table_rows(results: dict) -> list[dict]:
    rows, row = table_builder()

    if "tick" in results:
        t = results["tick"]
        ours, bare, course = t["ours"], t["bare_interpreter"], t["course_style"]
        ratio = ours["wall_s"] / bare["wall_s"]
        row(
            "no-op tick: wall vs `python -c pass`",
            "<= 10x",
            f"{ours['wall_s'] * 1000:.0f} ms",
            f"{bare['wall_s'] * 1000:.0f} ms",
            f"{ratio:.1f}x",
            ratio <= 10,
        )
        speedup = course["wall_s"] / ours["wall_s"]
        row(
            "no-op tick: wall vs course-style tick",
            ">= 10x faster",
            f"{ours['wall_s'] * 1000:.0f} ms",
            f"{course['wall_s'] * 1000:.0f} ms",
            f"{speedup:.1f}x faster",
            speedup >= 10,
        )
        row(
            "no-op tick: peak memory",
            "(reported)",
            f"{ours['peak_mib']:.0f} MiB",
            f"{bare['peak_mib']:.0f} / {course['peak_mib']:.0f} MiB (bare / course)",
            f"{ours['peak_mib'] / course['peak_mib']:.2f}x of course",
            None,
        )
    for _key, entry in results.get("ingest", {}).items():
        label = f"ingest {entry['rows'] / 1e6:g}M rows / {entry['files']} files"
        cold, course, arrow = entry["cold"], entry["course_style"], entry["pyarrow_read"]
        bound = ">= " if course["timed_out"] else ""
        speedup = course["wall_s"] / cold["wall_s"]
        row(
            f"{label}: wall vs course-style",
            ">= 3x faster",
            f"{cold['wall_s']:.2f} s",
            f"{bound}{course['wall_s']:.2f} s",
            f"{bound}{speedup:.1f}x faster",
            speedup >= 3,
            "; ".join(
                filter(
                    None,
                    [
                        "course-style run cut short at the time limit" if course["timed_out"] else "",
                        describe_breakdown(entry["breakdown"]["cold"]),
                    ],
                )
            ),
        )
        memory = cold["peak_mib"] / course["peak_mib"]
        row(
            f"{label}: peak memory vs course-style",
            "<= 1.5x",
            f"{cold['peak_mib']:.0f} MiB",
            f"{bound}{course['peak_mib']:.0f} MiB",
            f"{memory:.2f}x",
            memory <= 1.5,
        )
        ratio = cold["wall_s"] / arrow["wall_s"]
        row(
            f"{label}: wall vs pyarrow read alone",
            "(reported)",
            f"{cold['wall_s']:.2f} s",
            f"{arrow['wall_s']:.2f} s",
            f"{ratio:.2f}x",
            None,
        )
        one = entry["one_new_file"]
        row(
            f"{label}: +1 new file on that history",
            "(reported)",
            f"{one['wall_s']:.2f} s",
            f"{cold['wall_s']:.2f} s (cold)",
            f"{one['wall_s'] / cold['wall_s']:.2f}x",
            None,
            describe_breakdown(entry["breakdown"]["one_new_file"]),
        )
    if "retrain" in results:
        r = results["retrain"]
        stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r["stages"].items())
        row(
            f"drift-retrain-redeploy tick, {r['rows'] / 1e6:g}M rows",
            "< 15 s in all",
            f"{r['wall_s']:.1f} s",
            f"stages (s): {stages}",
            "",
            r["wall_s"] < 15,
        )
    if "serve" in results:
        ours, course = results["serve"]["ours"], results["serve"]["course_style"]
        p50 = ours["latency"]["p50_ms"]
        row(
            "serve: single-record p50 (keep-alive)",
            "< 2 ms",
            f"{p50:.2f} ms",
            f"{course['latency']['p50_ms']:.2f} ms",
            faster(course["latency"]["p50_ms"], p50),
            p50 < 2,
        )
        row(
            "serve: single-record p99",
            "(reported)",
            f"{ours['latency']['p99_ms']:.2f} ms",
            f"{course['latency']['p99_ms']:.2f} ms",
            faster(course["latency"]["p99_ms"], ours["latency"]["p99_ms"]),
            None,
        )
        rate = ours["throughput"]["requests_per_s"] / course["throughput"]["requests_per_s"]
        # The target against MLflow's scoring server is measured by `make bench-peers`.
        row(
            f"serve: throughput, 16 keep-alive clients ({ours['throughput']['tool']})",
            "(reported)",
            f"{ours['throughput']['requests_per_s']:.0f} req/s",
            f"{course['throughput']['requests_per_s']:.0f} req/s",
            f"{rate:.1f}x",
            None,
        )
        floor = results["serve"].get("server_floor")
        if floor:
            share = ours["throughput"]["requests_per_s"] / floor["throughput"]["requests_per_s"]
            row(
                "serve: throughput vs the server floor (a WSGI app answering a constant, same settings)",
                "(bound)",
                f"{ours['throughput']['requests_per_s']:.0f} req/s",
                f"{floor['throughput']['requests_per_s']:.0f} req/s",
                f"{share:.0%} of it",
                None,
                "no app served with these settings can exceed "
                f"{floor['throughput']['requests_per_s'] / course['throughput']['requests_per_s']:.1f}x "
                "the course-style throughput on this machine: the server's own per-request cost bounds the ratio",
            )
        errors = ours["throughput"]["errors"] + ours["latency"]["errors"]
        row(
            "serve: errors",
            "0",
            f"{errors} of {ours['throughput']['requests'] + ours['latency']['requests']}",
            f"{course['throughput']['errors'] + course['latency']['errors']}",
            "",
            errors == 0,
        )
        row(
            "serve: 10k-record batch (filepath), median",
            "(reported)",
            f"{ours['batch_10k']['median_ms']:.1f} ms",
            f"{course['batch_10k']['median_ms']:.1f} ms",
            faster(course["batch_10k"]["median_ms"], ours["batch_10k"]["median_ms"]),
            None,
        )
    return rows


def describe_breakdown(breakdown: dict) -> str:
    if not breakdown:
        return ""
    return (
        f"read {breakdown['read_s']:.2f} s, deduplicate {breakdown['deduplicate_s']:.2f} s, "
        f"write the outputs {breakdown['write_s']:.2f} s"
    )


def print_table(rows: list[dict]) -> None:
    headers = ("measurement", "target", "measured", "baseline", "ratio", "met")
    cells = [
        [
            r["measurement"],
            r["target"],
            r["measured"],
            r["baseline"],
            r["ratio"],
            "-" if r["met"] is None else ("yes" if r["met"] else "NO"),
        ]
        for r in rows
    ]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for line in cells:
        print("| " + " | ".join(line) + " |")
    notes = [(r["measurement"], r["note"]) for r in rows if r["note"]]
    if notes:
        print()
        for measurement, note in notes:
            print(f"- {measurement}: {note}")


def bench_parser(description: str, parts: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes: --quick, --only (default `parts`), --python-load."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK") == "1",
        help=f"{quick_help} (also BENCH_QUICK=1)",
    )
    parser.add_argument("--only", default=parts, help=f"comma-separated parts to run: {parts.replace(',', ', ')}")
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load generator even if wrk is installed"
    )
    return parser


def chosen_parts(parser: argparse.ArgumentParser, only: str, benches: dict) -> list[str]:
    """The parts --only names, in its order; a parser error for a name `benches` does not have."""
    parts = [part.strip() for part in only.split(",") if part.strip()]
    unknown = [part for part in parts if part not in benches]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    return parts


def main(argv=None) -> int:
    parser = bench_parser(
        "Benchmark the tick, ingestion and serving against course-style baselines.",
        "tick,ingest,retrain,serve",
        "smaller data and shorter runs",
    )
    parser.add_argument(
        "--course-timeout",
        type=float,
        default=300.0,
        help="seconds after which a course-style ingestion run is cut short (its figure is then a lower bound)",
    )
    args = parser.parse_args(argv)
    benches = {"tick": bench_tick, "ingest": bench_ingest, "retrain": bench_retrain, "serve": bench_serve}
    parts = chosen_parts(parser, args.only, benches)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {}
    for part in parts:
        results[part] = benches[part](args)
    rows = table_rows(results)
    print()
    print_table(rows)
    write_results("latest.json", args, started, rows, results)
    return 0


def write_results(name: str, args, started: float, rows: list[dict], results: dict) -> None:
    """The table and every raw figure, with when and where they were measured, to bench/results/<name>."""
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "table": rows,
        "results": results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / name
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {target.relative_to(PROJECT_DIR)} ({report['seconds']:.0f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
