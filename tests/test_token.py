"""The API token: refused without it or with a wrong one, answered with it, /health always open,
/metrics open only with metrics_public, ?token= only with token_in_query, DRS_API_TOKEN winning
over the file (in process, Flask's test client); against real servers: the status page in a real
browser, apicalls.py and the tick sending it, and the token never written to a log."""

from __future__ import annotations

import json

import pytest
import requests
from conftest import PYTHON, ROOT, client_for, free_port, make_serve_command, needs_browser, start_server, stop_server

import drs.api.security

TOKEN = "t0ken-for-tests_Zq8"
RECORD = {"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
GETS = (
    "/",
    "/scoring",
    "/summarystats",
    "/diagnostics",
    "/metrics",
    "/openapi.json",
    "/report.pdf",
    "/confusionmatrix.png",
    "/scorehistory.png",
)


def serve(project, log_path, env=None):
    """`python app.py` on a free port for the project's config.json."""
    port = free_port()
    server = start_server(
        [PYTHON, str(ROOT / "app.py"), "--config", str(project.config_path), "--port", str(port)],
        port,
        log_path,
        env=env,
        cwd=project.elsewhere,
    )
    server.project = project
    return server


@pytest.fixture
def token_server(deployed, tmp_path, request):
    """The deployed practice model behind a token; the config's extra settings from the test's parameter."""
    deployed.write_config(api_token=TOKEN, **getattr(request, "param", {}))
    server = serve(deployed, tmp_path / "server.log")
    yield server
    stop_server(server)


@pytest.fixture
def token_client(deployed, request):
    """The deployed practice model behind a token, in process; the config's extra settings from the test's parameter."""
    deployed.write_config(api_token=TOKEN, **getattr(request, "param", {}))
    return client_for(deployed)


def assert_refused(response, wrong: bool = False):
    """A 401 with its challenge and a JSON reason (a requests or a Flask test client response)."""
    assert response.status_code == 401, (getattr(response, "request", None), response.status_code)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = json.loads(response.text)["error"]
    assert ("wrong" in error) if wrong else ("needs a token" in error)
    assert TOKEN not in response.text


def test_every_endpoint_but_health_needs_the_token(token_client):
    client = token_client
    for path in GETS:
        assert_refused(client.get(path))
        assert_refused(client.get(path, headers={"Authorization": "Bearer not-it"}), wrong=True)
        assert_refused(client.get(path, headers={"Authorization": f"Basic {TOKEN}"}))
        assert client.get(path, headers=BEARER).status_code == 200, path
    assert_refused(client.post("/prediction", json={"records": [RECORD]}))
    answered = client.post("/prediction", json={"records": [RECORD]}, headers=BEARER)
    assert answered.status_code == 200 and answered.json["version"] == "v0001"
    # The scheme's name is case-insensitive (RFC 7235).
    assert client.get("/scoring", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    # /health is open: a load balancer probes it without a token.
    assert client.get("/health").status_code == 200
    # An unknown path says nothing without the token, 404 with it.
    assert_refused(client.get("/nope"))
    assert client.get("/nope", headers=BEARER).status_code == 404
    # ?token= is not accepted unless token_in_query is on.
    assert_refused(client.get(f"/scoring?token={TOKEN}"))


@pytest.mark.parametrize("token_client", [{"metrics_public": True}], indirect=True)
def test_metrics_public_opens_metrics_only(token_client):
    assert token_client.get("/metrics").status_code == 200
    assert_refused(token_client.get("/scoring"))
    assert_refused(token_client.get("/openapi.json"))


@pytest.mark.parametrize("token_client", [{"token_in_query": True}], indirect=True)
def test_token_in_query_lets_a_browser_get_the_page_and_what_it_links(token_client):
    client = token_client
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # The page's links carry the token, or the browser could not follow them.
    for path in ("/report.pdf", "/confusionmatrix.png", "/scorehistory.png", "/scoring", "/summarystats"):
        assert f'"{path}?token={TOKEN}"' in page.text, path
        assert client.get(f"{path}?token={TOKEN}").status_code == 200, path
    assert_refused(client.get("/?token=wrong"), wrong=True)
    # Only GET: a POST's query token is refused, its header accepted.
    assert_refused(client.post(f"/prediction?token={TOKEN}", json={"records": [RECORD]}))
    assert client.post("/prediction", json={"records": [RECORD]}, headers=BEARER).status_code == 200
    # Reached with the header, the page's links stay clean.
    assert "?token=" not in client.get("/", headers=BEARER).text


@pytest.mark.parametrize("token_server", [{"token_in_query": True}], indirect=True)
def test_the_development_server_keeps_a_query_token_out_of_its_log(token_server):
    url = token_server.url
    assert requests.get(url + f"/?token={TOKEN}", timeout=30).status_code == 200
    assert requests.get(f"{url}/scoring?token={TOKEN}", timeout=30).status_code == 200
    # The development server's request lines do not keep it.
    log = token_server.log_path.read_text()
    assert "token=<redacted>" in log and TOKEN not in log


@needs_browser
@pytest.mark.parametrize("token_server", [{"token_in_query": True}], indirect=True)
def test_the_status_page_works_in_a_browser_with_the_token_in_its_url(token_server, open_browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser = open_browser()
    browser.get(f"{token_server.url}/?token={TOKEN}")
    assert browser.find_element(By.ID, "deployed-version").text == "v0001"
    plot = browser.find_element(By.CSS_SELECTOR, "img[alt^='Test F1']")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 0
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    links = {element.text: element.get_attribute("href") for element in browser.find_elements(By.TAG_NAME, "a")}
    browser.get(links["/scoring"])
    assert json.loads(browser.find_element(By.TAG_NAME, "body").text)["version"] == "v0001"
    browser.get(links["confusionmatrix.png"])
    image = browser.find_element(By.TAG_NAME, "img")  # the browser shows the PNG in a page of its own
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0


def test_the_environment_token_wins_over_the_file(deployed, monkeypatch):
    deployed.write_config(api_token="from-the-file")
    monkeypatch.setenv("DRS_API_TOKEN", TOKEN)
    client = client_for(deployed)
    assert client.get("/scoring", headers=BEARER).status_code == 200
    assert_refused(client.get("/scoring", headers={"Authorization": "Bearer from-the-file"}), wrong=True)


def test_the_token_is_compared_in_constant_time(deployed, monkeypatch):
    compared = []

    def spy(given, expected):
        compared.append((given, expected))
        return given == expected

    monkeypatch.setattr(drs.api.security.hmac, "compare_digest", spy)
    deployed.write_config(api_token=TOKEN)
    client = client_for(deployed)
    assert client.get("/scoring", headers={"Authorization": "Bearer not-it"}).status_code == 401
    assert client.get("/scoring", headers=BEARER).status_code == 200
    assert compared == [(b"not-it", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_apicalls_sends_the_token_and_says_in_one_line_when_it_is_missing_or_wrong(token_server):
    project = token_server.project
    result = project.run("apicalls.py", "--url", token_server.url)
    assert result.returncode == 0, result.stderr
    saved = json.loads(project.path("models", "apireturns.txt").read_text())
    assert len(saved["prediction"]["predictions"]) == 400 and saved["health"]["version"] == "v0001"

    wrong = project.run("apicalls.py", "--url", token_server.url, env={"DRS_API_TOKEN": "not-it"})
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1
    assert "token is wrong" in wrong.stderr and "not-it" not in wrong.stderr

    project.write_config("no-token.json")
    missing = project.run("apicalls.py", "--url", token_server.url, config="no-token.json")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "needs a token" in missing.stderr


def test_a_redeploying_tick_calls_the_protected_api_with_the_token(token_server):
    project = token_server.project
    project.write_config(
        "config_production.json", input_folder_path="sourcedata", api_url=token_server.url, api_token=TOKEN
    )
    result = project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    saved = json.loads(project.path("models", "apireturns.txt").read_text())
    assert saved["health"]["version"] == "v0002" and saved["scoring"]["version"] == "v0002"
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert "apicalls" in record["stages"] and "apicalls_error" not in record
    assert TOKEN not in project.path("logs", "fullprocess.log").read_text()


def test_make_serve_refuses_without_the_token_and_keeps_it_out_of_the_access_log(deployed, tmp_path):
    deployed.write_config(api_token=TOKEN, token_in_query=True)
    port = free_port()
    command, env = make_serve_command(deployed.config_path, port)
    server = start_server(
        command + ["--access-logfile", "-"], port, tmp_path / "gunicorn.log", env=env, cwd=deployed.elsewhere
    )
    try:
        assert_refused(requests.post(server.url + "/prediction", json={"records": [RECORD]}, timeout=30))
        assert (
            requests.post(
                server.url + "/prediction", json={"records": [RECORD]}, headers=BEARER, timeout=30
            ).status_code
            == 200
        )
        assert requests.get(server.url + f"/scoring?token={TOKEN}", timeout=30).status_code == 200
    finally:
        stop_server(server)
    log = server.log_path.read_text()
    assert '"GET /scoring HTTP/1.1" 200' in log and '"POST /prediction HTTP/1.1" 401' in log
    assert TOKEN not in log
