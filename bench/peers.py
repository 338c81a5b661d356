"""The project against the tools users would pick instead: MLflow's scoring server, Evidently and NannyML.

    python bench/peers.py [--quick] [--only serve,drift,estimate]     (make bench-peers [BENCH_ARGS=--quick])

1. serve: the project's deployed pipeline served by `make serve` (its APP and
   SERVE_FLAGS read from the Makefile at run time) against the same fitted
   pipeline saved with `mlflow.sklearn.save_model` and served by
   `mlflow models serve --env-manager local` with as many workers. Both stay
   up; in alternating rounds each gets one keep-alive client (p50, p99) and
   16 keep-alive clients (wrk when installed) with one-record bodies. Before
   measuring, both must answer the same predictions for the test data rows.
2. drift: the project's drift.ks_test + drift.psi_test against Evidently's
   `Report([DataDriftPreset(method="ks")])` on the same reference and current
   frames (generate_data.generate, regimes "practice" and "source", the three
   numeric features), each in its own process, alternating: wall time and
   peak RSS, and the KS p-values side by side (they must be identical).
3. estimate: F1 estimated without labels. The project's pipeline and its
   calibration (drs.train.fit_model, fit_calibration) are fitted on generated
   "practice" rows; labelled batches (the same population, two covariate
   shifts cut from it by activity, and the "source" regime, whose churn
   relationship differs) are scored by the model, and the drift test
   "estimated" (drs.performance_estimation) estimates each batch's F1 with its
   labels left out. Printed beside the realized F1 and NannyML's CBPE
   (bench/peers/estimate_nannyml.py, fitted on a labelled reference batch)
   on the same model outputs. When NannyML cannot be installed, the estimate
   is compared with the realized F1 alone.

Each peer lives in its own virtualenv, bench/scratch/venv-<peer>, created on
first use from the pinned bench/peers/requirements-<peer>.txt (reinstalled
when that file changes). Prints a table (target, project, peer, ratio, met?)
and writes it with every raw figure to bench/results/peers.json. Ratios, not
absolute figures, compare across machines: the rounds alternate so that the
machine's other load falls on both sides alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(PROJECT_DIR))

from run import (  # noqa: E402
    SINGLE_RECORD,
    WORK_DIR,
    Failed,
    Server,
    bench_parser,
    chosen_parts,
    faster,
    free_port,
    latency,
    new_project,
    post,
    print_table,
    run_once,
    table_builder,
    throughput_python,
    throughput_wrk,
    tick,
    write_results,
)

from drs.config import DEFAULT_DRIFT, FEATURE_COLUMNS  # noqa: E402

PEER_PACKAGES = {
    "mlflow": ["mlflow", "mlflow-skinny", "scikit-learn", "numpy", "pandas", "scipy", "uvicorn", "fastapi"],
    "evidently": ["evidently", "pandas", "numpy", "scipy", "scikit-learn", "pyarrow"],
    "nannyml": ["nannyml", "pandas", "numpy", "scipy", "scikit-learn"],
}
RELATIVE_TOLERANCE = 1e-12


# --- the peers' virtualenvs -----------------------------------------------------------------


def peer_venv(name: str) -> Path:
    """bench/scratch/venv-<name>, (re)installed from bench/peers/requirements-<name>.txt when that changed."""
    venv = WORK_DIR / f"venv-{name}"
    requirements = PEERS_DIR / f"requirements-{name}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".installed"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return venv
    print(f"   installing {requirements.relative_to(PROJECT_DIR)} into {venv.relative_to(PROJECT_DIR)} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    log_path = WORK_DIR / f"venv-{name}-install.log"
    with open(log_path, "w") as log:
        for command in ([*pip, "--upgrade", "pip"], [*pip, "-r", str(requirements)]):
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise Failed(f"installing {requirements.name} failed: see {log_path}")
    stamp.write_text(digest + "\n")
    return venv


def installed_versions(venv: Path, packages: list[str]) -> dict:
    code = (
        "import importlib.metadata as m, json, sys\nprint(json.dumps({name: m.version(name) for name in sys.argv[1:]}))"
    )
    output = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *packages], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


# --- load on a server ----------------------------------------------------------------------


def make_variable(name: str) -> str:
    """A variable of the project's Makefile as `make` expands it (command-line and environment overrides apply)."""
    target = "bench-peers-print-variable"
    output = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "-C",
            str(PROJECT_DIR),
            "--eval",
            f"{target}: ; @printf '%s\\n' '$({name})'",
            target,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.strip()


def serve_settings() -> dict:
    """What `make serve` runs: the app spec, the gunicorn flags, and the number of workers in them."""
    flags = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(PROJECT_DIR), "print-serve-flags"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    workers = None
    words = shlex.split(flags)
    for index, word in enumerate(words):
        if word in ("--workers", "-w") and index + 1 < len(words):
            workers = int(words[index + 1])
        elif word.startswith("--workers="):
            workers = int(word.split("=", 1)[1])
    if workers is None:  # gunicorn's default is one worker unless WEB_CONCURRENCY says otherwise
        workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    return {"app": make_variable("APP"), "serve_flags": flags, "workers": workers}


class MlflowServer:
    """`mlflow models serve --env-manager local`, in its own process group so it can be stopped whole."""

    def __init__(self, venv: Path, model_dir: Path, workers: int, log_path: Path):
        self.port = free_port()
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        # The CLI starts `uvicorn` by name: the venv's bin must come first on PATH.
        env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.process = subprocess.Popen(
            [
                str(venv / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "--workers",
                str(workers),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.2)
        self.stop()
        raise Failed(f"mlflow models serve did not start: see {log_path}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def project_body(rows: list[list[float]]) -> bytes:
    return json.dumps({"records": [dict(zip(FEATURE_COLUMNS, row, strict=False)) for row in rows]}).encode()


def mlflow_body(rows: list[list[float]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(FEATURE_COLUMNS), "data": rows}}).encode()


def predictions(port: int, path: str, body: bytes) -> list:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, data = post(connection, path, body)
    finally:
        connection.close()
    if status != 200:
        raise Failed(f"POST {path} on port {port} answered {status}: {data[:300]!r}")
    return [int(value) for value in json.loads(data)["predictions"]]


def check_same_predictions(ours: Server, peers: list[MlflowServer], test_csv: Path) -> dict:
    """The same answers from both servers, or Failed: test data, 5,000 generated rows, the benchmark's record."""
    import pandas as pd  # noqa: PLC0415  (the serving part only)

    from generate_data import generate  # noqa: PLC0415

    frames = [pd.read_csv(test_csv), generate(5000, "mixed", seed=7)]
    rows = [row for frame in frames for row in frame[list(FEATURE_COLUMNS)].dropna().astype(float).to_numpy().tolist()]
    rows.append([float(SINGLE_RECORD["records"][0][name]) for name in FEATURE_COLUMNS])
    project_answers = predictions(ours.port, "/prediction", project_body(rows))
    for peer in peers:
        peer_answers = predictions(peer.port, "/invocations", mlflow_body(rows))
        differing = [index for index, (a, b) in enumerate(zip(project_answers, peer_answers, strict=False)) if a != b]
        if len(project_answers) != len(rows) or len(peer_answers) != len(rows) or differing:
            raise Failed(
                f"the project and MLflow disagree on {len(differing)} of {len(rows)} rows (first: {differing[:5]})"
            )
    return {"rows": len(rows), "identical": True, "predicted_exited": sum(project_answers)}


def bench_serve(args) -> dict:
    print("1. serving: make serve vs mlflow models serve", flush=True)
    venv = peer_venv("mlflow")
    settings = serve_settings()
    print(f"   make serve: APP={settings['app']!r}, SERVE_FLAGS={settings['serve_flags']!r}", flush=True)
    config = new_project("peers-serve")
    tick(config)  # bootstrap: deploys the practice model
    pickle_path = (config.parent / "production_deployment" / "trainedmodel.pkl").resolve()
    model_dir = WORK_DIR / "peers-serve" / "mlflow-model"
    saved = subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(PEERS_DIR / "mlflow_save.py"),
            str(pickle_path),
            str(model_dir),
            *FEATURE_COLUMNS,
        ],
        capture_output=True,
        text=True,
    )
    if saved.returncode != 0:
        raise Failed(f"mlflow_save.py failed: {saved.stderr.strip().splitlines()[-1:]}")
    seconds = 3 if args.quick else 10
    rounds = 1 if args.quick else 3
    count = 500 if args.quick else 2000  # per round, at most `seconds` long
    load = throughput_wrk if shutil.which("wrk") and not args.python_load else throughput_python
    one = [[float(SINGLE_RECORD["records"][0][name]) for name in FEATURE_COLUMNS]]
    targets = {
        "project": ("/prediction", project_body(one)),
        "mlflow": ("/invocations", mlflow_body(one)),
        "mlflow_1_worker": ("/invocations", mlflow_body(one)),
    }
    servers = {}
    try:
        servers["project"] = Server(config, settings["app"], WORK_DIR / "peers-serve-project.log")
        servers["mlflow"] = MlflowServer(venv, model_dir, settings["workers"], WORK_DIR / "peers-serve-mlflow.log")
        if settings["workers"] > 1:
            # Reported beside the comparison: uvicorn's --workers N leaves Nagle's algorithm on
            # (uvicorn issue #3149), so each keep-alive response waits ~40 ms for a delayed ACK;
            # one worker is served without that stall.
            servers["mlflow_1_worker"] = MlflowServer(venv, model_dir, 1, WORK_DIR / "peers-serve-mlflow-1.log")
        agreement = check_same_predictions(
            servers["project"],
            [servers[name] for name in servers if name != "project"],
            config.parent / "testdata" / "testdata.csv",
        )
        print(f"   same predictions on {agreement['rows']} rows", flush=True)
        measured = {name: [] for name in servers}
        for index in range(rounds):
            # All stay up and are loaded in turn, the first one rotating round after round.
            names = list(servers)
            for name in names[index % len(names) :] + names[: index % len(names)]:
                path, body = targets[name]
                port = servers[name].port
                measured[name].append(
                    {
                        "latency": latency(port, body, count=count, warmup=50, path=path, max_seconds=seconds),
                        "throughput": load(port, body, 16, seconds, path=path),
                    }
                )
                last = measured[name][-1]
                print(
                    f"   round {index + 1} {name:<15} p50 {last['latency']['p50_ms']:.2f} ms  "
                    f"p99 {last['latency']['p99_ms']:.2f} ms  {last['throughput']['requests_per_s']:.0f} req/s",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
    results = {
        "settings": settings,
        "agreement": agreement,
        "round_seconds": seconds,
        "rounds": rounds,
        "versions": installed_versions(venv, PEER_PACKAGES["mlflow"]),
    }
    for name, runs in measured.items():
        # Best round of each figure (as bench/run.py does); errors and requests of every round.
        best_latency = min((run["latency"] for run in runs), key=lambda figures: figures["p50_ms"])
        best_rate = max((run["throughput"] for run in runs), key=lambda figures: figures["requests_per_s"])
        results[name] = {
            "latency": {**best_latency, "errors": sum(run["latency"]["errors"] for run in runs)},
            "throughput": {
                **best_rate,
                "errors": sum(run["throughput"]["errors"] for run in runs),
                "requests": sum(run["throughput"]["requests"] for run in runs),
            },
            "rounds": runs,
        }
    return results


# --- 2: drift tests ------------------------------------------------------------------------


def drift_frames(rows: int) -> dict[str, Path]:
    """`rows` rows of the features in Parquet, generated once and kept for the next run.

    "reference" is the "practice" regime and "current" the "source" one (the
    measured pair); "control" is "practice" again from another seed: no drift,
    so its KS p-values are not all 0.0 and comparing them means something.
    """
    folder = WORK_DIR / "peers-drift" / f"{rows}"
    plan = {"reference": ("practice", 1), "current": ("source", 2), "control": ("practice", 3)}
    paths = {name: folder / f"{name}.parquet" for name in plan}
    marker = folder / ".complete"
    if not marker.exists():
        from generate_data import generate  # noqa: PLC0415  (only when the frames are missing)

        print(f"   generating 3 x {rows:,} rows (kept in {folder.relative_to(PROJECT_DIR)}) ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, (regime, seed) in plan.items():
            # Features as float64, the types a tick reads them in (ingestion.column_types).
            frame = generate(rows, regime, seed)[list(FEATURE_COLUMNS)].astype("float64")
            frame.to_parquet(paths[name], index=False)
        marker.touch()
    return paths


def compare_pvalues(ours: dict, theirs: dict) -> dict:
    comparison = {}
    for column in FEATURE_COLUMNS:
        a, b = ours["ks_pvalues"][column], theirs["ks_pvalues"][column]
        comparison[column] = {
            "project": a,
            "evidently": b,
            "statistic": ours["ks_statistics"][column],
            "identical": same_pvalue(a, b),
        }
    return comparison


def same_pvalue(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def bench_drift(args) -> dict:
    rows = 100_000 if args.quick else 1_000_000
    rounds = 1 if args.quick else 3
    print(
        f"2. drift tests on {rows:,} vs {rows:,} rows: drift.ks_test + psi_test vs Evidently DataDriftPreset(ks)",
        flush=True,
    )
    venv = peer_venv("evidently")
    frames = drift_frames(rows)
    out = WORK_DIR / "peers-drift"
    programs = {
        "project": [sys.executable, str(PEERS_DIR / "drift_project.py")],
        "evidently": [str(venv / "bin" / "python"), str(PEERS_DIR / "drift_evidently.py")],
    }
    extra = {"project": [], "evidently": [str(DEFAULT_DRIFT["ks_pvalue"])]}
    env = {"DO_NOT_TRACK": "1"}  # Evidently's usage telemetry off: no calls out of the machine

    def run_drift(name: str, current: Path) -> dict:
        result_path = out / f"result-{name}.json"
        result_path.unlink(missing_ok=True)
        command = [*programs[name], str(frames["reference"]), str(current), str(result_path), *extra[name]]
        figures = run_once(command, env=env, timeout=900)
        if figures["timed_out"]:
            raise Failed(f"the {name} drift run took over 900 s")
        return {**figures, "inside": json.loads(result_path.read_text())}

    measured = {name: [] for name in programs}
    for index in range(rounds):
        order = list(programs) if index % 2 == 0 else list(reversed(programs))
        for name in order:
            measured[name].append(run_drift(name, frames["current"]))
            figures, inside = measured[name][-1], measured[name][-1]["inside"]
            print(
                f"   round {index + 1} {name:<9} {figures['wall_s']:6.2f} s wall, {figures['peak_mib']:5.0f} MiB peak "
                f"(import {inside['seconds']['import']:.2f}, load {inside['seconds']['load']:.2f}, "
                f"tests {inside['seconds']['tests']:.2f} s)",
                flush=True,
            )
    results = {"rows": rows, "rounds": rounds, "versions": installed_versions(venv, PEER_PACKAGES["evidently"])}
    for name, runs in measured.items():
        results[name] = {
            "wall_s": min(run["wall_s"] for run in runs),
            "peak_mib": max(run["peak_mib"] for run in runs),
            "tests_s": min(run["inside"]["seconds"]["tests"] for run in runs),
            "import_s": min(run["inside"]["seconds"]["import"] for run in runs),
            "memory_source": runs[0]["memory_source"],
            "runs": runs,
        }
    ours, theirs = measured["project"][-1]["inside"], measured["evidently"][-1]["inside"]
    results["ks_pvalues"] = compare_pvalues(ours, theirs)
    results["psi"] = ours["psi"]
    # The measured pair drifts so far that every p-value underflows to 0.0: the control pair
    # (no drift, not timed) checks the two give the same non-zero p-values.
    control = {name: run_drift(name, frames["control"])["inside"] for name in programs}
    results["ks_pvalues_control"] = compare_pvalues(control["project"], control["evidently"])
    results["all_identical"] = all(
        entry["identical"] for key in ("ks_pvalues", "ks_pvalues_control") for entry in results[key].values()
    )
    return results


# --- 3: F1 estimated without labels ---------------------------------------------------------

# CBPE estimates F1 from calibrated probabilities: right while P(churn | features) holds (a covariate
# shift), blind to a changed relationship (concept drift), which only labels show.
ESTIMATE_TOLERANCE = 0.05
CONCEPT_DRIFT_BATCH = "source regime (concept drift)"


def estimate_batches(rows: int) -> dict:
    """Labelled batches of `rows` rows: "training", "reference" (NannyML's), and the batches estimated."""
    from generate_data import generate  # noqa: PLC0415  (pandas only for this part)

    pool = generate(rows * 4, "practice", seed=21)
    activity = pool["lastmonth_activity"]
    return {
        "training": generate(rows, "practice", seed=11),
        "reference": generate(rows, "practice", seed=12),
        "same population": generate(rows, "practice", seed=13),
        "low activity (covariate shift)": pool[activity < activity.quantile(0.3)].head(rows).reset_index(drop=True),
        # Where the model's positives and negatives meet: above the middle it calls no one a churner.
        "middle activity (covariate shift)": pool[activity.between(activity.quantile(0.2), activity.quantile(0.6))]
        .head(rows)
        .reset_index(drop=True),
        CONCEPT_DRIFT_BATCH: generate(rows, "source", seed=14),
    }


def project_estimates(config_path: Path, batches: dict) -> tuple[dict, object, dict]:
    """({batch: {"estimated", "realized", "rows"}}, the scored rows for NannyML, the calibration record)."""
    # Imported for this part only: the other parts measure their peers' processes from this one, kept small.
    import pandas as pd  # noqa: PLC0415
    from sklearn.metrics import f1_score  # noqa: PLC0415

    from drs.config import load_config  # noqa: PLC0415
    from drs.drift_registry import DriftInputs  # noqa: PLC0415
    from drs.model_data import feature_matrix, positive_probabilities  # noqa: PLC0415
    from drs.performance_estimation import run_estimated  # noqa: PLC0415
    from drs.train import fit_calibration, fit_model  # noqa: PLC0415

    config = load_config(config_path)
    schema = config.schema
    model = fit_model(batches["training"], config)
    calibration = fit_calibration(batches["training"], config)
    figures, scored = {}, []
    for name, frame in batches.items():
        if name == "training":
            continue
        features = feature_matrix(frame, schema)
        truth = (frame[schema.target_column] == schema.positive_label).astype(int).to_numpy()
        predicted = (model.predict(features) == schema.positive_label).astype(int)
        realized = float(f1_score(truth, predicted))
        scored.append(
            pd.DataFrame(
                {
                    "batch": name,
                    "y_true": truth,
                    "y_pred": predicted,
                    "y_pred_proba": positive_probabilities(model, features, schema),
                }
            )
        )
        if name == "reference":
            continue
        # The labels are left out: the estimate sees the features only.
        unlabelled = frame.assign(**{schema.target_column: None})
        inputs = DriftInputs(None, 0.0, [], None, unlabelled, schema, model, calibration.calibrator, calibration.record)
        result = run_estimated(inputs, {"estimated_margin": 0.0})
        figures[name] = {"estimated": result["statistic"], "realized": realized, "rows": len(frame)}
    return figures, pd.concat(scored, ignore_index=True), calibration.record


def bench_estimate(args) -> dict:
    rows = 2_000 if args.quick else 10_000
    print(f"3. F1 estimated without labels on batches of {rows:,} rows: drift test 'estimated' vs NannyML CBPE")
    config_path = new_project("peers-estimate")
    batches = estimate_batches(rows)
    figures, scored, calibration = project_estimates(config_path, batches)
    results: dict = {"rows": rows, "batches": figures, "calibration": calibration, "nannyml": None}
    out = WORK_DIR / "peers-estimate"
    out.mkdir(parents=True, exist_ok=True)
    scored_path, result_path = out / "scored.parquet", out / "result-nannyml.json"
    scored.to_parquet(scored_path, index=False)
    try:
        venv = peer_venv("nannyml")
    except Failed as exc:  # measured against the realized F1 alone, and said
        results["nannyml_problem"] = str(exc)
        print(f"   NannyML not available: {exc}", flush=True)
        return results
    result_path.unlink(missing_ok=True)
    command = [str(venv / "bin" / "python"), str(PEERS_DIR / "estimate_nannyml.py"), str(scored_path), str(result_path)]
    run = run_once(command, env={"NML_DISABLE_USAGE_LOGGING": "1"}, timeout=900)
    if run["timed_out"] or not result_path.exists():
        results["nannyml_problem"] = f"the NannyML run failed ({run})"
        return results
    results["nannyml"] = json.loads(result_path.read_text())
    results["versions"] = installed_versions(venv, PEER_PACKAGES["nannyml"])
    for name, entry in figures.items():
        entry["nannyml"] = results["nannyml"]["f1"].get(name)
    return results


def estimate_rows(row, estimate: dict) -> None:
    """The table's rows for the estimate part: one per batch, and how far from NannyML's."""
    for name, entry in estimate["batches"].items():
        difference = entry["estimated"] - entry["realized"]
        blind = name == CONCEPT_DRIFT_BATCH
        peer = entry.get("nannyml")
        row(
            f"estimate: F1 without labels, {name}, {entry['rows']:,} rows",
            "(not expected: concept drift)" if blind else f"within {ESTIMATE_TOLERANCE} of realized",
            f"{entry['estimated']:.4f}",
            f"realized {entry['realized']:.4f}",
            f"{difference:+.4f}",
            None if blind else abs(difference) <= ESTIMATE_TOLERANCE,
            f"NannyML CBPE {peer:.4f}" if peer is not None else "NannyML not run",
        )
    compared = [e for n, e in estimate["batches"].items() if n != CONCEPT_DRIFT_BATCH and e.get("nannyml") is not None]
    if compared:
        gap = max(abs(e["estimated"] - e["nannyml"]) for e in compared)
        row("estimate: largest gap to NannyML CBPE (covariate batches)", "(reported)", f"{gap:.4f}", "", "", None)


# --- the table ------------------------------------------------------------------------------


def table_rows(results: dict) -> list[dict]:
    rows, row = table_builder()
    if "estimate" in results:
        estimate_rows(row, results["estimate"])

    if "serve" in results:
        serve = results["serve"]
        ours, peer = serve["project"], serve["mlflow"]
        workers = serve["settings"]["workers"]
        rate = ours["throughput"]["requests_per_s"] / peer["throughput"]["requests_per_s"]
        row(
            f"serve: throughput, 16 keep-alive clients, 1-record body ({ours['throughput']['tool']}), "
            f"{workers} workers each",
            ">= 10x MLflow",
            f"{ours['throughput']['requests_per_s']:.0f} req/s",
            f"{peer['throughput']['requests_per_s']:.0f} req/s",
            f"{rate:.1f}x",
            rate >= 10,
            "rounds (req/s): project "
            + ", ".join(f"{run['throughput']['requests_per_s']:.0f}" for run in ours["rounds"])
            + "; mlflow "
            + ", ".join(f"{run['throughput']['requests_per_s']:.0f}" for run in peer["rounds"]),
        )
        p50 = ours["latency"]["p50_ms"]
        row(
            "serve: single-client p50, 1 record (keep-alive)",
            "<= 2 ms",
            f"{p50:.2f} ms",
            f"{peer['latency']['p50_ms']:.2f} ms",
            faster(peer["latency"]["p50_ms"], p50),
            p50 <= 2,
            "rounds (p50 ms / requests): project "
            + ", ".join(f"{run['latency']['p50_ms']:.2f} / {run['latency']['requests']}" for run in ours["rounds"])
            + "; mlflow "
            + ", ".join(f"{run['latency']['p50_ms']:.2f} / {run['latency']['requests']}" for run in peer["rounds"]),
        )
        row(
            "serve: single-client p99, 1 record",
            "(reported)",
            f"{ours['latency']['p99_ms']:.2f} ms",
            f"{peer['latency']['p99_ms']:.2f} ms",
            faster(peer["latency"]["p99_ms"], ours["latency"]["p99_ms"]),
            None,
        )
        errors = ours["throughput"]["errors"] + ours["latency"]["errors"]
        total = ours["throughput"]["requests"] + sum(run["latency"]["requests"] for run in ours["rounds"])
        peer_errors = peer["throughput"]["errors"] + peer["latency"]["errors"]
        kinds = {}
        for run in ours["rounds"]:
            for kind, count in run["throughput"].get("error_kinds", {}).items():
                kinds[kind] = kinds.get(kind, 0) + count
        row(
            "serve: errors",
            "0",
            f"{errors} of {total}",
            f"{peer_errors}",
            "",
            errors == 0,
            "project errors under load: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items())
            if kinds
            else "",
        )
        single = serve.get("mlflow_1_worker")
        if single:
            rate = ours["throughput"]["requests_per_s"] / single["throughput"]["requests_per_s"]
            row(
                "serve: throughput vs MLflow with 1 worker (no --workers Nagle stall)",
                "(reported)",
                f"{ours['throughput']['requests_per_s']:.0f} req/s",
                f"{single['throughput']['requests_per_s']:.0f} req/s",
                f"{rate:.1f}x",
                None,
                "uvicorn --workers N leaves TCP_NODELAY off (uvicorn issue #3149): every keep-alive response "
                "of `mlflow models serve --workers 2` waits ~40 ms for a delayed ACK; one worker is not affected",
            )
            row(
                "serve: single-client p50 vs MLflow with 1 worker",
                "(reported)",
                f"{p50:.2f} ms",
                f"{single['latency']['p50_ms']:.2f} ms",
                faster(single["latency"]["p50_ms"], p50),
                None,
            )
        agreement = serve["agreement"]
        row(
            "serve: same predictions before measuring",
            "identical",
            f"{agreement['rows']} rows",
            "same rows",
            "identical",
            agreement["identical"],
        )
    if "drift" in results:
        drift = results["drift"]
        ours, peer = drift["project"], drift["evidently"]
        label = f"{drift['rows'] / 1e6:g}M vs {drift['rows'] / 1e6:g}M rows"
        speedup = peer["wall_s"] / ours["wall_s"]
        row(
            f"drift: KS + PSI, {label}, process wall (import, read, test)",
            ">= 5x faster than Evidently",
            f"{ours['wall_s']:.2f} s",
            f"{peer['wall_s']:.2f} s",
            f"{speedup:.1f}x faster",
            speedup >= 5 and drift["all_identical"],
            "rounds (s): project "
            + ", ".join(f"{run['wall_s']:.2f}" for run in ours["runs"])
            + "; evidently "
            + ", ".join(f"{run['wall_s']:.2f}" for run in peer["runs"]),
        )
        row(
            f"drift: {label}, tests alone (after import and read)",
            "(reported)",
            f"{ours['tests_s']:.2f} s",
            f"{peer['tests_s']:.2f} s",
            faster(peer["tests_s"], ours["tests_s"]),
            None,
            f"imports alone: project {ours['import_s']:.2f} s, evidently {peer['import_s']:.2f} s",
        )
        row(
            f"drift: {label}, peak memory",
            "(reported)",
            f"{ours['peak_mib']:.0f} MiB",
            f"{peer['peak_mib']:.0f} MiB",
            f"{ours['peak_mib'] / peer['peak_mib']:.2f}x",
            None,
        )
        for key, what in (
            ("ks_pvalues", "practice vs source"),
            ("ks_pvalues_control", "control: practice vs practice"),
        ):
            pairs = "; ".join(
                f"{column} {entry['project']:.6g} / {entry['evidently']:.6g}" for column, entry in drift[key].items()
            )
            identical = all(entry["identical"] for entry in drift[key].values())
            row(
                f"drift: KS p-values, project / Evidently, {what}",
                f"identical (rel. {RELATIVE_TOLERANCE:g})",
                pairs,
                "",
                "identical" if identical else "DIFFERENT",
                identical,
            )
    return rows


def main(argv=None) -> int:
    parser = bench_parser(
        "Benchmark the project against MLflow serving, Evidently drift tests and NannyML's CBPE.",
        "serve,drift,estimate",
        "100k rows, one round, 3 s of load",
    )
    args = parser.parse_args(argv)
    benches = {"serve": bench_serve, "drift": bench_drift, "estimate": bench_estimate}
    parts = chosen_parts(parser, args.only, benches)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {}
    try:
        for part in parts:
            results[part] = benches[part](args)
    except (Failed, subprocess.CalledProcessError) as exc:
        print(f"bench/peers.py: {exc}", file=sys.stderr)
        return 1
    rows = table_rows(results)
    print()
    print_table(rows)
    if "drift" in results:
        print("\nKS p-values: project drift.ks_test | Evidently DataDriftPreset(method='ks'), and the KS statistic")
        for key, what in (
            ("ks_pvalues", "practice vs source"),
            ("ks_pvalues_control", "control: practice vs practice"),
        ):
            print(f"  {what}")
            for column, entry in results["drift"][key].items():
                print(f"   {column:<20} {entry['project']!r:>24} | {entry['evidently']!r:<24} D = {entry['statistic']}")
    write_results("peers.json", args, started, rows, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
