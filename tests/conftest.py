"""Shared fixtures: a project in a temp folder, scripts run as subprocesses, the API in process
(Flask's test client) and as a real server."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from script_runner import forked_runs_enabled, run_script  # noqa: E402

from drs.api import create_app  # noqa: E402
from drs.config import load_config  # noqa: E402

PYTHON = sys.executable
# Tests never reach the network: the package-index look-up of diagnostics gets a refused connection.
os.environ.setdefault("DRS_PYPI_URL", "http://127.0.0.1:9/pypi/{package}/json")
COURSE_DATA = ROOT.parent / "shared" / "course-data"
# Nothing listens there: outdated packages read "unknown" at once instead of asking PyPI.
OFFLINE_INDEX = {"DRS_PYPI_URL": "http://127.0.0.1:9/{package}/json"}


def read_pdf(path) -> tuple[PdfReader, str]:
    """The parsed PDF and its text with all whitespace runs made single spaces."""
    reader = PdfReader(path)
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    return reader, text


def images_on(page) -> int:
    """How many images a PDF page (pypdf) draws."""
    resources = page.get("/Resources") or {}
    objects = resources.get("/XObject") or {}
    return sum(1 for ref in objects.values() if ref.get_object().get("/Subtype") == "/Image")


def scaled(seconds: float) -> float:
    """A deadline for work that waits on other processes, longer on a loaded machine: times the
    load per core (at least 1), or DRS_TEST_DEADLINE_SCALE when set."""
    scale = os.environ.get("DRS_TEST_DEADLINE_SCALE")
    if scale is not None:
        return seconds * float(scale)
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Project:
    """A workspace with its own data folders and config files; scripts run from elsewhere."""

    def __init__(self, root: Path):
        self.root = root
        self.elsewhere = root.parent / f"{root.name}-cwd"
        self.elsewhere.mkdir(exist_ok=True)

    def write_config(self, name: str = "config.json", **overrides) -> Path:
        values = {
            "input_folder_path": "practicedata",
            "output_folder_path": "ingesteddata",
            "test_data_path": "testdata",
            "output_model_path": "models",
            "prod_deployment_path": "production_deployment",
            "api_url": "http://127.0.0.1:9",  # nothing listens there: in-process diagnostics
        }
        values.update(overrides)
        path = self.root / name
        path.write_text(json.dumps(values, indent=2))
        return path

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    def config(self, name: str = "config.json"):
        return load_config(self.root / name)

    def run(
        self,
        script: str,
        *args: str,
        config: str | Path | None = "config.json",
        env=None,
        timeout=120,
        cwd: Path | None = None,
        real: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run a project script as cron would: by absolute path, from another folder. Forked from a
        server with the libraries imported (tests/script_runner.py) unless `real`: a new interpreter."""
        command = [PYTHON, str(ROOT / script)]
        if config is not None:
            command += ["--config", str(self.root / config)]
        command += list(args)
        full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        # A PYTHON* variable acts as the interpreter starts (PYTHONPROFILEIMPORTTIME...): only a new one shows it.
        starts_an_interpreter = any(name.startswith("PYTHON") for name in env or {})
        if not (real or starts_an_interpreter) and forked_runs_enabled():
            return run_script(command, cwd or self.elsewhere, full_env, timeout)
        return subprocess.run(
            command, cwd=cwd or self.elsewhere, env=full_env, capture_output=True, text=True, timeout=timeout
        )

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)


def make_project(tmp_path) -> Project:
    """A project whose data folders are written by the generator: never the checkout's own
    folders, where a user may have dropped files of their own."""
    from generate_data import write_bundled_data

    root = tmp_path / "project"
    root.mkdir()
    write_bundled_data(root)
    proj = Project(root)
    proj.write_config()
    proj.write_config("config_production.json", input_folder_path="sourcedata")
    return proj


# The subscription customers of the generator's categorical variant (examples/subscriptions).
SUBSCRIPTIONS_SCHEMA = {
    "id_column": "customer_id",
    "target_column": "churn",
    "positive_label": "Yes",
    "numeric_features": ["tenure", "monthly_charges", "total_charges"],
    "categorical_features": ["contract", "internet_service", "payment_method", "paperless_billing"],
}
SUBSCRIPTION_RECORD = {
    "tenure": 3,
    "monthly_charges": 95.5,
    "total_charges": 280.0,
    "contract": "Month-to-month",
    "internet_service": "Fiber optic",
    "payment_method": "Electronic check",
    "paperless_billing": "Yes",
}


def make_categorical_project(tmp_path, **overrides) -> Project:
    """A project of the generator's subscription customers (examples/subscriptions) with their schema."""
    from generate_data import write_categorical_example

    root = tmp_path / "project"
    root.mkdir()
    write_categorical_example(root)
    project = Project(root)
    settings = {
        "schema": SUBSCRIPTIONS_SCHEMA,
        "estimator": "sklearn.linear_model.LogisticRegression",
        "training": {"C": 1.0},
        **overrides,
    }
    project.write_config(**settings)
    project.write_config("config_production.json", input_folder_path="sourcedata", **settings)
    return project


@pytest.fixture
def project(tmp_path) -> Project:
    """The bundled data copied into a temp project with a practice-phase config."""
    return make_project(tmp_path)


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory) -> Project:
    """One bootstrapped project, built once and copied by `deployed`."""
    project = make_project(tmp_path_factory.mktemp("template"))
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def deployed(deployed_template, tmp_path) -> Project:
    """A project whose practice model is deployed (bootstrap done): a private copy of the template."""
    return copy_project(deployed_template, tmp_path / "project")


def copy_project(template: Project, root: Path) -> Project:
    """A private copy of `template` at `root`."""
    # symlinks=True keeps production's `current` link relative; copy2 keeps mtimes, so file
    # fingerprints recorded at bootstrap still match.
    shutil.copytree(template.root, root, symlinks=True)
    return Project(root)


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path):
        self.process, self.url, self.log_path = process, url, log_path

    def get(self, path: str, **kwargs):
        return requests.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs):
        return requests.post(self.url + path, timeout=30, **kwargs)


def start_server(command: list[str], port: int, log_path: Path, env=None, cwd=None) -> Server:
    log_file = open(log_path, "w")  # noqa: SIM115 (closed by stop_server)
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"
    # Ready when the server itself answers /health (any status: none deployed is a 503).
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {log_path.read_text()}")
        try:
            requests.get(url + "/health", timeout=scaled(10))
            return Server(process, url, log_path)
        except requests.RequestException:
            time.sleep(0.1)  # the interval between tries of a refused connection, not a wait for readiness
    process.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def _serve(project: Project, log_folder: Path):
    port = free_port()
    server = start_server(
        [PYTHON, str(ROOT / "app.py"), "--config", str(project.config_path), "--port", str(port)],
        port,
        log_folder / "server.log",
        cwd=project.elsewhere,
    )
    server.project = project
    return server


@pytest.fixture
def api_server(deployed, tmp_path):
    """`python app.py` on a free port, serving the deployed practice model."""
    server = _serve(deployed, tmp_path)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def shared_api_server(tmp_path_factory):
    """Like api_server, shared by a module's read-only tests (they must not change the project)."""
    tmp_path = tmp_path_factory.mktemp("shared")
    project = make_project(tmp_path)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    server = _serve(project, tmp_path)
    yield server
    stop_server(server)


def client_for(project: Project, config: str = "config.json"):
    """The project's API built in process from one of its config files: Flask's test client, with
    `.project` (no server, no port: for what needs only the app)."""
    client = create_app(project.path(config)).test_client()
    client.project = project  # type: ignore[attr-defined]
    return client


@pytest.fixture
def api_client(deployed):
    """The deployed practice model's API in process (see client_for)."""
    return client_for(deployed)


@pytest.fixture(scope="module")
def shared_client(deployed_template, tmp_path_factory):
    """Like api_client, shared by a module's read-only tests (they must not change the project)."""
    return client_for(copy_project(deployed_template, tmp_path_factory.mktemp("shared-client") / "project"))


# --- shared by several test files: make serve, metrics scrapes, the browser ---


def make_serve_command(config: Path, port: int) -> tuple[list[str], dict]:
    """The command line `make serve` runs (read with `make -n`), on 127.0.0.1:port, and its environment."""
    printed = subprocess.run(
        ["make", "-s", "-n", "-C", str(ROOT), "serve", "HOST=127.0.0.1", f"PORT={port}", f"CONFIG={config}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in printed.replace("\\\n", " ").splitlines() if "gunicorn" in line)
    words = shlex.split(line)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not os.path.isabs(words[0]):
        words[0] = str(ROOT / words[0])
    return words, env


@pytest.fixture
def make_serve(deployed, tmp_path):
    """The deployed practice model served the way `make serve` serves it, every worker booted."""
    port = free_port()
    command, env = make_serve_command(deployed.config_path, port)
    server = start_server(command, port, tmp_path / "gunicorn.log", env=env, cwd=deployed.elsewhere)
    server.project = deployed
    server.workers = int(command[command.index("--workers") + 1]) if "--workers" in command else 1
    try:
        # A worker still booting would load production as the test has changed it.
        fresh_health(server)
        yield server
    finally:
        stop_server(server)


def fresh_health(server, seconds: float = 60) -> list[tuple[int, dict]]:
    """GET /health on a new connection each time, until every worker has answered twice."""
    answers, deadline = [], time.monotonic() + scaled(seconds)
    while time.monotonic() < deadline:
        response = requests.get(server.url + "/health", timeout=scaled(10), headers={"Connection": "close"})
        answers.append((response.status_code, response.json()))
        pids = [body["pid"] for _, body in answers]
        if len(set(pids)) == server.workers and all(pids.count(pid) >= 2 for pid in pids):
            return answers
    raise AssertionError(f"not every one of {server.workers} workers answered in {seconds} s: {answers[-3:]}")


PREDICTED = ("drs_http_requests_total", (("endpoint", "/prediction"), ("method", "POST"), ("status", "200")))


ROWS = ("drs_predictions_total", ())


def timed(endpoint: str) -> tuple:
    """The key of the latency histogram's count of requests to `endpoint`."""
    return "drs_http_request_duration_seconds_count", (("endpoint", endpoint),)


def scrape(url_or_client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of GET <url>/metrics (on a new connection), or of a test client's GET /metrics,
    parsed by prometheus_client's text parser: {(sample name, sorted label items): value}."""
    if isinstance(url_or_client, str):
        response = requests.get(url_or_client + "/metrics", headers={"Connection": "close", **headers}, timeout=30)
    else:
        response = url_or_client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def moved(before: dict, after: dict, key) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


# Debian's packages (chromium, chromium-driver): selenium is given both paths and never downloads a browser.
CHROMIUM = Path("/usr/bin/chromium")


CHROMEDRIVER = Path("/usr/bin/chromedriver")


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


needs_browser = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver",
)


@pytest.fixture
def open_browser(tmp_path):
    """Start headless chromium (JavaScript on or off) with its console log kept; quit it afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def start(javascript: bool = True):
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'chromium-profile-{len(drivers)}'}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
