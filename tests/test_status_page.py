"""The status page at GET / and the files it links, in process (Flask's test client); the page in a
real headless browser against a real server."""

from __future__ import annotations

import json

import pytest
from conftest import client_for, needs_browser


@pytest.fixture
def drifted_server(api_server):
    """The API over a project that has had a drift tick (practice model, then a redeploy on shifted data)."""
    result = api_server.project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    return api_server


@needs_browser
def test_the_page_shows_the_deployed_model_and_its_links_work(drifted_server, open_browser):
    from selenium.webdriver.common.by import By

    health = drifted_server.get("/health").json()
    browser = open_browser()
    browser.get(drifted_server.url + "/")

    assert browser.find_element(By.ID, "deployed-f1").text == f"{health['f1']:.4f}"
    assert browser.find_element(By.ID, "deployed-version").text == health["version"] == "v0002"
    assert "the trigger test(s) raw found drift" in browser.find_element(By.ID, "drift-verdict").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ticks tr")) == 1 + 2  # header, bootstrap, drift tick
    assert "drift, redeployed" in browser.find_element(By.ID, "ticks").text
    plot = browser.find_element(By.CSS_SELECTOR, "img[src='/scorehistory.png']")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 0
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    links = {element.text: element.get_attribute("href") for element in browser.find_elements(By.TAG_NAME, "a")}
    report = drifted_server.get(links["report.pdf"].removeprefix(drifted_server.url))
    assert report.status_code == 200
    assert report.headers["Content-Type"] == "application/pdf"
    assert report.content.startswith(b"%PDF")
    matrix = drifted_server.get(links["confusionmatrix.png"].removeprefix(drifted_server.url))
    assert matrix.status_code == 200
    assert matrix.headers["Content-Type"] == "image/png"


@needs_browser
def test_the_page_works_with_javascript_off(api_server, open_browser):
    from selenium.webdriver.common.by import By

    health = api_server.get("/health").json()
    browser = open_browser(javascript=False)
    browser.get(api_server.url + "/")

    assert browser.find_element(By.ID, "deployed-f1").text == f"{health['f1']:.4f}"
    # No drift tick yet (bootstrap only): said in words.
    assert "no data yet" in browser.find_element(By.ID, "drift-verdict").text
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


def test_generated_files_are_served_and_missing_ones_are_404_json(api_client):
    assert api_client.get("/scorehistory.png").data.startswith(b"\x89PNG")
    api_client.project.path("models", "report.pdf").unlink()

    response = api_client.get("/report.pdf")

    assert response.status_code == 404
    assert "report.pdf not generated yet" in response.json["error"]
    page = api_client.get("/")
    assert page.status_code == 200
    assert "not generated yet" in page.text
    unknown = api_client.get("/no-such-page")
    assert unknown.status_code == 404 and "error" in unknown.json


def test_text_from_the_history_is_escaped(api_client):
    history = api_client.project.path("logs", "history.jsonl")
    with open(history, "a") as handle:
        handle.write(
            json.dumps(
                {
                    "start": "2030-01-01T00:00:00.000+00:00",
                    "end": "2030-01-01T00:00:01.000+00:00",
                    "decision": "failed",
                    "failed_stage": "ingest",
                    "exit_status": 1,
                    "error": "<script>alert('x')</script>",
                }
            )
            + "\n"
        )

    page = api_client.get("/")

    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_the_page_without_a_deployed_model_says_so(project):
    client = client_for(project)
    page = client.get("/")
    assert page.status_code == 200
    assert "No usable model" in page.text
    assert "no data yet" in page.text
    assert 'src="/scorehistory.png"' not in page.text  # no broken image
    for path in ("/scorehistory.png", "/report.pdf", "/confusionmatrix.png"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json["error"]


def test_the_page_warns_when_the_deployed_f1_fell_by_more_than_the_margin(api_client):
    # The bundled storyline: the model retrained on the shifted data scores lower on the test data.
    project = api_client.project
    result = project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    page = api_client.get("/").text
    assert 'id="score-warning"' in page
    assert "fell from 0.6752 (v0001) to 0.6195 (v0002)" in page and "deployment.py --rollback" in page
    project.write_config(promotion_margin=0.1, api_url="http://127.0.0.1:9")
    guarded = client_for(project)
    assert 'id="score-warning"' not in guarded.get("/").text  # a fall within the margin is no warning
