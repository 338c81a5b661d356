"""The API: every endpoint and every error case in process (Flask's test client); real servers
where the server matters (body limits, gunicorn, keep-alive, apicalls.py and the tick calling it)."""

import json
import socket
import subprocess

import numpy as np
import pandas as pd
import pytest
import requests
from conftest import PYTHON, ROOT, client_for, free_port, make_serve_command, start_server, stop_server

from drs.config import FEATURE_COLUMNS
from drs.deploy import load_deployed_model

RECORD = {"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}


def expected_predictions(project, csv_path):
    model = load_deployed_model(project.path("production_deployment")).model
    data = pd.read_csv(csv_path)
    return [int(p) for p in model.predict(data[list(FEATURE_COLUMNS)].to_numpy(dtype=float))]


def test_prediction_from_a_file_in_a_data_folder(shared_client):
    response = shared_client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert response.status_code == 200, response.text
    body = response.json
    assert body["predictions"] == expected_predictions(
        shared_client.project, shared_client.project.path("testdata", "testdata.csv")
    )
    assert len(body["predictions"]) == 400 and body["version"] == "v0001"


def test_prediction_from_a_file_named_in_the_query(shared_client):
    response = shared_client.post("/prediction?filepath=testdata/testdata.csv")
    assert response.status_code == 200, response.text
    by_json = shared_client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert response.json == by_json.json and len(response.json["predictions"]) == 400


@pytest.mark.parametrize(
    "filepath, status, fragment",
    [
        ("/etc/passwd", 403, "outside the data folders"),
        ("../../etc/passwd", 403, "outside the data folders"),
        ("config.json", 403, "outside the data folders"),
        ("testdata/nothere.csv", 404, "not found"),
        ("testdata/\u0000x.csv", 400, "NUL"),
        ("testdata", 400, "not a .csv file"),
        ("", 400, "non-empty string"),
    ],
)
def test_a_query_filepath_is_refused_exactly_as_the_json_one(shared_client, filepath, status, fragment):
    by_query = shared_client.post("/prediction", query_string={"filepath": filepath})
    by_json = shared_client.post("/prediction", json={"filepath": filepath})
    for response in (by_query, by_json):
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert fragment in response.json["error"]
    assert by_query.json == by_json.json


def test_a_query_filepath_comes_alone(shared_client):
    with_body = shared_client.post("/prediction?filepath=testdata/testdata.csv", json={"records": [RECORD]})
    assert with_body.status_code == 400 and "body must be empty" in with_body.json["error"]
    twice = shared_client.post("/prediction?filepath=testdata/testdata.csv&filepath=testdata/testdata.csv")
    assert twice.status_code == 400 and "one 'filepath'" in twice.json["error"]
    # Predictions stay POST only: a GET, with or without the file, is 405.
    assert shared_client.get("/prediction?filepath=testdata/testdata.csv").status_code == 405


def test_prediction_from_records_and_from_a_csv_body(shared_client):
    csv_text = shared_client.project.path("testdata", "testdata.csv").read_text()
    by_csv = shared_client.post("/prediction", data=csv_text, headers={"Content-Type": "text/csv"})
    assert by_csv.status_code == 200
    data = pd.read_csv(shared_client.project.path("testdata", "testdata.csv"))
    records = data[list(FEATURE_COLUMNS)].head(25).to_dict(orient="records")
    by_records = shared_client.post("/prediction", json={"records": records})
    assert by_records.status_code == 200
    assert by_records.json["predictions"] == by_csv.json["predictions"][:25]


def test_scoring_summarystats_health_and_diagnostics(shared_client):
    project = shared_client.project
    scoring = shared_client.get("/scoring").json
    assert scoring["f1"] == pytest.approx(float(project.path("production_deployment", "latestscore.txt").read_text()))
    stats = shared_client.get("/summarystats").json
    final = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert set(stats) == set(FEATURE_COLUMNS)
    assert stats["lastmonth_activity"]["mean"] == pytest.approx(final["lastmonth_activity"].mean())
    assert stats["number_of_employees"]["median"] == pytest.approx(final["number_of_employees"].median())
    health = shared_client.get("/health")
    assert health.status_code == 200 and health.json["version"] == "v0001"

    watched = [
        project.path("ingesteddata", "finaldata.csv"),
        project.path("production_deployment", "trainedmodel.pkl"),
        project.path("models", "trainedmodel.pkl"),
    ]
    before = {p: p.stat().st_mtime_ns for p in watched}
    diagnostics = shared_client.get("/diagnostics")
    assert diagnostics.status_code == 200
    body = diagnostics.json
    assert body["execution_time"]["ingestion_seconds"] > 0 and body["execution_time"]["training_seconds"] > 0
    assert set(body["missing_data"]) == {"corporation", *FEATURE_COLUMNS, "exited"}
    assert {row["package"] for row in body["outdated_packages"]} >= {"pandas", "scikit-learn", "flask"}
    assert {p: p.stat().st_mtime_ns for p in watched} == before  # GET changed nothing production uses
    # The timings are the bootstrap tick's own, from the run history: nothing was re-run to answer.
    bootstrap = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert body["execution_time"] == {
        "ingestion_seconds": bootstrap["stages"]["ingest"],
        "training_seconds": bootstrap["stages"]["train"],
    }


@pytest.mark.parametrize(
    "kwargs, status, fragment",
    [
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        (
            {
                "data": '{"records": [{"lastmonth_activity": Infinity, "lastyear_activity": 1, '
                '"number_of_employees": 1}]}',
                "headers": {"Content-Type": "application/json"},
            },
            400,
            "finite",
        ),
        (
            {
                "data": '{"records": [{"lastmonth_activity": NaN, "lastyear_activity": 1, "number_of_employees": 1}]}',
                "headers": {"Content-Type": "application/json"},
            },
            400,
            "finite",
        ),
        (
            {"json": {"records": [{"lastmonth_activity": 1, "lastyear_activity": 2}]}},
            400,
            "missing feature 'number_of_employees'",
        ),
        ({"json": {"records": [{**RECORD, "number_of_employees": "many"}]}}, 400, "must be a number"),
        ({"json": {"records": [{**RECORD, "number_of_employees": True}]}}, 400, "must be a number"),
        ({"json": {"records": []}}, 400, "non-empty list"),
        ({"json": {"something": 1}}, 400, "'filepath' or 'records'"),
        ({"json": [1, 2]}, 400, "JSON object"),
        (
            {"data": "lastmonth_activity,lastyear_activity\n1,2\n", "headers": {"Content-Type": "text/csv"}},
            400,
            "missing column(s): number_of_employees",
        ),
        (
            {
                "data": "lastmonth_activity,lastyear_activity,number_of_employees\n1,x,3\n",
                "headers": {"Content-Type": "text/csv"},
            },
            400,
            "line 2, column 'lastyear_activity': not a number",
        ),
        (
            {
                "data": "lastmonth_activity,lastyear_activity,number_of_employees\n1,inf,3\n",
                "headers": {"Content-Type": "text/csv"},
            },
            400,
            "line 2, column 'lastyear_activity': not a finite number",
        ),
        ({"json": {"filepath": "testdata/\u0000x.csv"}}, 400, "NUL"),
        ({"data": "hello", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported content type"),
        ({"json": {"filepath": "/etc/passwd"}}, 403, "outside the data folders"),
        ({"json": {"filepath": "../../etc/passwd"}}, 403, "outside the data folders"),
        ({"json": {"filepath": "config.json"}}, 403, "outside the data folders"),
        ({"json": {"filepath": "testdata/nothere.csv"}}, 404, "not found"),
        ({"json": {"filepath": 42}}, 400, "non-empty string"),
    ],
)
def test_prediction_errors_are_json_with_the_right_status(shared_client, kwargs, status, fragment):
    response = shared_client.post("/prediction", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert fragment in response.json["error"]


def test_empty_csv_cells_are_imputed_like_training_does(shared_client):
    model = load_deployed_model(shared_client.project.path("production_deployment")).model
    csv_text = "lastmonth_activity,lastyear_activity,number_of_employees\n5,,40\n,900,\n"
    response = shared_client.post("/prediction", data=csv_text, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    expected = model.predict(np.array([[5, np.nan, 40], [np.nan, 900, np.nan]]))
    assert response.json["predictions"] == [int(p) for p in expected]


@pytest.fixture(params=["flask", "make serve"])
def small_limit_server(request, deployed, tmp_path):
    """A server whose request body limit is 1000 bytes: Flask's own server, and gunicorn as `make serve` runs it."""
    deployed.write_config(max_request_bytes=1000)
    port = free_port()
    if request.param == "flask":
        command, env = [PYTHON, str(ROOT / "app.py"), "--config", str(deployed.config_path), "--port", str(port)], {}
    else:
        command, env = make_serve_command(deployed.config_path, port)
    server = start_server(command, port, tmp_path / "server.log", env=env, cwd=deployed.elsewhere)
    yield server
    stop_server(server)


def test_a_chunked_body_over_the_limit_is_refused(small_limit_server):
    def chunks(total):
        for _ in range(total // 100):
            yield b"x" * 100

    url = small_limit_server.url + "/prediction"
    big = requests.post(url, data=chunks(5000), headers={"Content-Type": "text/csv"}, timeout=30)
    assert big.status_code == 413 and "exceeds the limit" in big.json()["error"]
    small_body = b'{"records": [{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}]}'
    small = requests.post(url, data=iter([small_body]), headers={"Content-Type": "application/json"}, timeout=30)
    assert small.status_code == 200 and len(small.json()["predictions"]) == 1


def test_a_symlink_out_of_a_data_folder_is_refused(api_client, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("lastmonth_activity,lastyear_activity,number_of_employees\n1,2,3\n")
    (api_client.project.path("testdata", "link.csv")).symlink_to(secret)
    response = api_client.post("/prediction", json={"filepath": "testdata/link.csv"})
    assert response.status_code == 403
    assert api_client.post("/prediction?filepath=testdata/link.csv").status_code == 403


def test_unknown_route_and_wrong_method_are_json(shared_client):
    missing = shared_client.get("/nope")
    assert missing.status_code == 404 and "error" in missing.json
    wrong = shared_client.get("/prediction")
    assert wrong.status_code == 405 and "error" in wrong.json


def test_a_body_over_the_limit_is_refused_from_its_announced_length(small_limit_server):
    server = small_limit_server
    port = int(server.url.rsplit(":", 1)[1])
    big = server.post("/prediction", data="x" * 5000, headers={"Content-Type": "text/csv"})
    assert big.status_code == 413 and "exceeds the limit" in big.json()["error"]
    # Announce a huge body and send none of it: the answer comes without waiting for the body.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /prediction HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 999999999\r\n\r\n"
        )
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert server.get("/health").status_code == 200  # still alive


def test_no_model_deployed_is_503_everywhere_it_matters(project):
    client = client_for(project)
    assert client.get("/health").status_code == 503
    for response in (client.post("/prediction", json={"records": [RECORD]}), client.get("/scoring")):
        assert response.status_code == 503 and "no model deployed" in response.json["error"]
    # a model deployed while the app runs is picked up without a restart
    assert project.run("fullprocess.py").returncode == 0
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 200
    assert client.get("/health").json["version"] == "v0001"


def test_redeploy_is_picked_up_and_a_tampered_model_is_refused(api_client):
    project = api_client.project
    assert api_client.post("/prediction", json={"records": [RECORD]}).json["version"] == "v0001"
    assert project.run("fullprocess.py", config="config_production.json").returncode == 0
    assert api_client.post("/prediction", json={"records": [RECORD]}).json["version"] == "v0002"

    # Tamper with the deployed model: the app keeps serving the good model it holds.
    model = project.path("production_deployment", "versions", "v0002", "trainedmodel.pkl")
    model.write_bytes(model.read_bytes() + b"tampered")
    response = api_client.post("/prediction", json={"records": [RECORD]})
    assert response.status_code == 200 and response.json["version"] == "v0002"
    health = api_client.get("/health").json
    assert health["status"] == "degraded" and "integrity check" in health["problem"]

    # A fresh app has no good model to fall back on: 503.
    fresh = client_for(project)
    assert fresh.post("/prediction", json={"records": [RECORD]}).status_code == 503
    health = fresh.get("/health")
    assert health.status_code == 503 and "integrity check" in health.json["error"]


def test_gunicorn_serves_the_app_factory_with_the_config_in_drs_config(deployed, tmp_path):
    port = free_port()
    server = start_server(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn") if (ROOT / ".venv" / "bin" / "gunicorn").exists() else "gunicorn",
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",
            "app:create_app()",
        ],
        port,
        tmp_path / "gunicorn.log",
        env={"DRS_CONFIG": str(deployed.config_path)},
        cwd=deployed.elsewhere,
    )
    try:
        response = server.post("/prediction", json={"filepath": "testdata/testdata.csv"})
        assert response.status_code == 200 and len(response.json()["predictions"]) == 400
        assert server.get("/nope").headers["Content-Type"].startswith("application/json")
    finally:
        stop_server(server)


def test_importing_app_does_no_work(tmp_path):
    # The config named by DRS_CONFIG does not exist: only create_app() would read it.
    result = subprocess.run(
        [PYTHON, "-c", "import app; print(callable(app.create_app))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"DRS_CONFIG": str(tmp_path / "missing.json"), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    assert list(tmp_path.iterdir()) == []  # no log file, no folder made


def test_app_app_is_built_on_first_access_from_drs_config(deployed):
    # As `gunicorn app:app`, `flask run` and a course solution's tests use it.
    script = (
        "import app, flask; created = 'app' in vars(app); served = app.app; "
        "print(created, isinstance(served, flask.Flask), served.config['DRS'].path, served is app.app)"
    )
    result = subprocess.run(
        [PYTHON, "-c", script],
        cwd=deployed.elsewhere,
        capture_output=True,
        text=True,
        env={"DRS_CONFIG": str(deployed.config_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", str(deployed.config_path), "True"]


def test_a_course_solution_posts_the_file_in_the_query(shared_api_server):
    # requests.post(url + "/prediction?filepath=..."): no body, a Content-Length of 0.
    response = requests.post(shared_api_server.url + "/prediction?filepath=testdata/testdata.csv", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected_predictions(
        shared_api_server.project, shared_api_server.project.path("testdata", "testdata.csv")
    )


def test_apicalls_saves_every_endpoint(shared_api_server):
    project = shared_api_server.project
    result = project.run("apicalls.py", "--url", shared_api_server.url)
    assert result.returncode == 0, result.stderr
    saved = json.loads(project.path("models", "apireturns.txt").read_text())
    assert set(saved) == {"prediction", "scoring", "summarystats", "diagnostics", "health"}
    assert len(saved["prediction"]["predictions"]) == 400


def test_apicalls_without_a_server_fails_clearly(deployed):
    result = deployed.run("apicalls.py", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "not reachable" in result.stderr and result.stderr.count("\n") == 1


def test_requests_module_is_real(shared_api_server):
    # keep-alive sessions work against the server (used by apicalls and the benchmark)
    with requests.Session() as session:
        for _ in range(3):
            assert (
                session.post(shared_api_server.url + "/prediction", json={"records": [RECORD]}, timeout=10).status_code
                == 200
            )


def test_a_redeploying_tick_calls_the_running_api(api_server):
    project = api_server.project
    project.write_config("config_production.json", input_folder_path="sourcedata", api_url=api_server.url)
    result = project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    saved = json.loads(project.path("models", "apireturns.txt").read_text())
    assert saved["health"]["version"] == "v0002"  # the API answered with the model just deployed
    assert saved["scoring"]["f1"] == pytest.approx(float(project.path("models", "latestscore.txt").read_text()))
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert "apicalls" in record["stages"] and "diagnostics" not in record["stages"]
