"""Webhook alerts: the webhook channel in process against a local receiver (every delivery guarantee),
tick_alerts around its state file, and real ticks: a local receiver gets deployed, drift, not_promoted,
failed and recovered; a repeated failure waits out its cooldown; a dead receiver never fails a tick.
The policy's branches are unit-tested in test_alert_policy.py."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from conftest import free_port
from webhook_receiver import SECRET_PATH, Receiver

from drs.alerts import tick_alerts
from drs.alerts.channels import DeliveryResult, WebhookChannel, channel_for
from drs.files import ALERT_STATE_FILE


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


NO_WAITS = (0.0, 0.0)
PAYLOAD = {"event": "test", "text": "t", "version": None, "time": "2024-05-01T10:00:00+00:00", "details": {}}


def test_the_webhook_channel_posts_json_and_names_its_receiver_without_the_secret(receiver):
    channel = channel_for({"webhook_url": receiver.url}, NO_WAITS)
    assert channel.destination == f"http://127.0.0.1:{receiver.server.server_port}"
    result = channel.send(PAYLOAD)
    assert result == DeliveryResult(True, 1, status=200)
    assert result.to_json() == {"outcome": "delivered", "delivered": True, "attempts": 1, "status": 200}
    (body,) = receiver.bodies
    assert body == {"path": SECRET_PATH, "content_type": "application/json", **PAYLOAD}


@pytest.mark.parametrize(
    "status, attempts, error",
    [
        (503, 3, "HTTP 503"),
        (429, 3, "HTTP 429"),
        (404, 1, "HTTP 404"),
        (400, 1, "HTTP 400"),
        (301, 1, "HTTP 301 (a redirect: not followed, give the final URL)"),
    ],
)
def test_the_webhook_retries_only_what_may_pass_and_follows_no_redirect(receiver, status, attempts, error):
    receiver.status = status
    result = WebhookChannel(receiver.url, NO_WAITS).send(PAYLOAD)
    assert result.to_json() == {"outcome": "not_delivered", "delivered": False, "attempts": attempts, "error": error}
    assert receiver.events == ["test"] * attempts


def test_a_dead_webhook_is_tried_three_times_then_once_per_later_alert():
    channel = WebhookChannel(f"http://127.0.0.1:{free_port()}{SECRET_PATH}", NO_WAITS)
    first = channel.send(PAYLOAD)
    assert first.to_json() == {
        "outcome": "not_delivered",
        "delivered": False,
        "attempts": 3,
        "error": "Connection refused",
    }
    assert channel.send(PAYLOAD).attempts == 1


def test_a_trickling_receiver_is_cut_off_at_the_deadline(receiver):
    receiver.trickle = True
    started = time.monotonic()
    result = WebhookChannel(receiver.url, (), timeout=0.5).send(PAYLOAD)
    assert result.to_json() == {
        "outcome": "unconfirmed",  # it read the whole request: it may well have the alert
        "delivered": None,
        "attempts": 1,
        "error": "sent, no complete answer within 0.5 s",
    }
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("damage", ['{"failed_ticks": 2, "failu', '{"failures": ["not", "a", "dict"]}'])
def test_tick_alerts_keeps_its_state_beside_the_logs_and_starts_over_from_a_damaged_one(receiver, tmp_path, damage):
    settings = {"webhook_url": receiver.url, "events": ["failed", "recovered"], "cooldown_minutes": 60}
    failed = {"decision": "error: boom", "exit_status": 1, "failed_stage": "ingest", "error": "boom"}
    (tmp_path / ALERT_STATE_FILE).write_text(damage)
    assert tick_alerts(settings, {**failed, "end": "2024-05-01T10:00:00+00:00"}, tmp_path, NO_WAITS) == [
        {
            "event": "failed",
            "text": "Tick failed in stage ingest: boom.",
            "outcome": "delivered",
            "delivered": True,
            "attempts": 1,
            "status": 200,
        }
    ]
    assert receiver.events == ["failed"]
    state = json.loads((tmp_path / ALERT_STATE_FILE).read_text())
    assert state["failed_ticks"] == 1 and state["failing_since"] == "2024-05-01T10:00:00+00:00"
    held = tick_alerts(settings, {**failed, "end": "2024-05-01T10:05:00+00:00"}, tmp_path, NO_WAITS)
    assert held == [{"event": "failed", "suppressed": "cooldown", "repeats": 1}] and len(receiver.bodies) == 1
    quiet = {"decision": "skipped: another run in progress", "decision_code": "skipped", "exit_status": 0}
    before = (tmp_path / ALERT_STATE_FILE).stat().st_mtime_ns
    assert tick_alerts(settings, quiet, tmp_path, NO_WAITS) == []
    assert (tmp_path / ALERT_STATE_FILE).stat().st_mtime_ns == before  # nothing changed: nothing written
    recovered = tick_alerts(settings, {"decision": "no new data", "exit_status": 0}, tmp_path, NO_WAITS)
    assert [entry["event"] for entry in recovered] == ["recovered"]
    assert json.loads((tmp_path / ALERT_STATE_FILE).read_text()) == {}
    # Without a log folder there is no state: no cooldown and no recovery.
    assert tick_alerts(settings, {"decision": "no new data", "exit_status": 0}, None, NO_WAITS) == []


def test_a_bug_in_alerting_costs_the_tick_nothing_but_a_note():
    (entry,) = tick_alerts({"events": ["failed"], "cooldown_minutes": 1}, {"exit_status": 1}, None, NO_WAITS)
    assert entry == {"event": None, "delivered": False, "error": "alerting failed: KeyError: 'webhook_url'"}


def history(project):
    path = project.path("logs", "history.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def with_alerts(project, url, name="config.json", **overrides):
    """Write a config of the test project with alerts to `url` (the practice data unless overridden)."""
    alerts = {"webhook_url": url, **overrides.pop("alerts", {})}
    values = {"input_folder_path": "sourcedata"} if name == "config_production.json" else {}
    return project.write_config(name, alerts=alerts, **{**values, **overrides})


def test_real_ticks_alert_deployed_drift_failed_and_recovered(project, receiver):
    with_alerts(project, receiver.url)
    with_alerts(project, receiver.url, "config_production.json")

    bootstrap = project.run("fullprocess.py")
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert receiver.events == ["deployed"]
    alert = receiver.bodies[0]
    assert alert["path"] == SECRET_PATH and alert["content_type"] == "application/json"
    assert set(alert) - {"path", "content_type"} == {"event", "text", "version", "time", "details"}
    record = history(project)[-1]
    f1 = record["scores"]["retrained_test_f1"]
    assert alert["text"] == f"Deployed v0001 (bootstrap): test F1 {f1:.4f}."
    assert alert["version"] == "v0001" and alert["time"] == record["end"]
    assert alert["details"]["decision"] == "bootstrap" and alert["details"]["scores"] == record["scores"]
    assert record["alerts"] == [
        {
            "event": "deployed",
            "text": alert["text"],
            "outcome": "delivered",
            "delivered": True,
            "attempts": 1,
            "status": 200,
        }
    ]

    quiet = project.run("fullprocess.py")
    assert quiet.returncode == 0 and receiver.events == ["deployed"]  # nothing happened: nothing sent

    drift = project.run("fullprocess.py", config="config_production.json")
    assert drift.returncode == 0, drift.stderr
    assert receiver.events == ["deployed", "drift", "deployed"]
    record = history(project)[-1]
    scores = record["scores"]
    drift_alert, deployed_alert = receiver.bodies[1:]
    assert (
        f" Drift on {record['new_rows']} new row(s): F1 {scores['new_data_f1']:.3f} "
        f"vs deployed {scores['deployed_f1']:.3f} (raw); "
    ) in drift_alert["text"]
    assert "ks" in drift_alert["text"] and drift_alert["text"].endswith("also found drift. Retraining.")
    details = drift_alert["details"]
    assert details["drift"]["fired"] == {"raw": record["drift"]["tests"]["raw"]}
    assert details["scores"] == scores and details["new_files"] == ["dataset3.csv", "dataset4.csv"]
    assert deployed_alert["text"] == (
        f"Deployed v0002: test F1 {scores['retrained_test_f1']:.4f} (was v0001, {scores['deployed_f1']:.4f})."
    )
    assert deployed_alert["version"] == "v0002"

    project.path("sourcedata").rename(project.path("sourcedata-away"))
    failed = project.run("fullprocess.py", config="config_production.json")
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    assert receiver.events[-1] == "failed"
    alert = receiver.bodies[-1]
    assert alert["text"] == f"Tick failed in stage detect: input folder not found: {project.path('sourcedata')}."
    assert alert["details"]["failed_stage"] == "detect" and alert["details"]["exit_status"] == 1
    assert "input folder not found" in alert["details"]["error"] and alert["version"] == "v0002"

    project.path("sourcedata-away").rename(project.path("sourcedata"))
    recovered = project.run("fullprocess.py", config="config_production.json")
    assert recovered.returncode == 0
    assert receiver.events[-1] == "recovered" and len(receiver.events) == 5
    assert receiver.bodies[-1]["text"] == "Recovered: the tick succeeded (no new data) after 1 failed tick(s)."


def test_the_promotion_guard_alerts_not_promoted(deployed, receiver):
    with_alerts(deployed, receiver.url, "config_production.json", promotion_margin=0.0)
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    assert receiver.events == ["drift", "not_promoted"]
    promotion = history(deployed)[-1]["promotion"]
    assert receiver.bodies[1]["text"] == (
        f"Not promoted: retrained F1 {promotion['retrained_test_f1']:.3f} is below deployed "
        f"{promotion['deployed_test_f1']:.3f} minus margin 0; keeping v0001."
    )
    assert receiver.bodies[1]["details"]["promotion"] == promotion


def test_a_repeated_failure_is_sent_once_per_cooldown_then_with_its_count(deployed, receiver):
    with_alerts(deployed, receiver.url, alerts={"cooldown_minutes": 60})
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))

    for _ in range(3):
        assert deployed.run("fullprocess.py").returncode == 1
    assert receiver.events == ["failed"]
    assert [r["alerts"] for r in history(deployed)[-2:]] == [
        [{"event": "failed", "suppressed": "cooldown", "repeats": 1}],
        [{"event": "failed", "suppressed": "cooldown", "repeats": 2}],
    ]

    # An hour passes: the last alert was sent 61 minutes ago.
    state_path = deployed.path("logs", "alertstate.json")
    state = json.loads(state_path.read_text())
    (entry,) = state["failures"].values()
    sent = datetime.datetime.fromisoformat(entry["last_sent"]) - datetime.timedelta(minutes=61)
    entry["last_sent"] = sent.isoformat()
    state_path.write_text(json.dumps(state))
    assert deployed.run("fullprocess.py").returncode == 1
    assert receiver.events == ["failed", "failed"]
    alert = receiver.bodies[-1]
    assert alert["text"].endswith(
        f"(repeated 3 time(s) since the alert at {sent.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC)."
    )
    assert alert["details"]["repeats"] == 3 and alert["details"]["failed_ticks"] == 4

    # Another failure is news at once.
    deployed.path("practicedata").write_text("a file where the input folder should be\n")
    assert deployed.run("fullprocess.py").returncode == 1
    assert receiver.events[-1] == "failed" and "not a folder" in receiver.bodies[-1]["text"]

    deployed.path("practicedata").unlink()
    deployed.path("practicedata-away").rename(deployed.path("practicedata"))
    assert deployed.run("fullprocess.py").returncode == 0
    assert receiver.bodies[-1]["text"] == "Recovered: the tick succeeded (no new data) after 5 failed tick(s)."
    # After the recovery the same failure is news again.
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))
    assert deployed.run("fullprocess.py").returncode == 1
    assert receiver.events[-1] == "failed" and receiver.bodies[-1]["text"].endswith("practicedata.")
    assert receiver.bodies[-1]["details"]["repeats"] == 0


def test_a_dead_receiver_never_fails_a_tick(deployed):
    dead = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens there
    with_alerts(deployed, dead)
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))
    failed = deployed.run("fullprocess.py")
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1 and "input folder not found" in failed.stderr
    (alert,) = history(deployed)[-1]["alerts"]
    assert alert["event"] == "failed" and alert["delivered"] is False
    assert alert["attempts"] == 3 and alert["error"] == "Connection refused"

    deployed.path("practicedata-away").rename(deployed.path("practicedata"))
    good = deployed.run("fullprocess.py")
    assert good.returncode == 0, good.stderr
    record = history(deployed)[-1]
    assert record["decision"] == "no new data" and record["exit_status"] == 0
    assert [(a["event"], a["delivered"]) for a in record["alerts"]] == [("recovered", False)]
    log_text = deployed.path("logs", "fullprocess.log").read_text()
    assert "alert recovered not delivered to http://127.0.0.1" in log_text
    assert "secret-token" not in log_text + deployed.path("logs", "history.jsonl").read_text()


def test_a_quiet_tick_sends_nothing_and_imports_no_http_client(deployed, receiver):
    with_alerts(deployed, receiver.url)
    result = deployed.run("fullprocess.py", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0 and "no new data" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"requests", "urllib3", "prometheus_client", "pandas", "numpy"}
    assert receiver.events == [] and "alerts" not in history(deployed)[-1]


def test_a_config_that_does_not_load_still_alerts_failed(deployed, receiver):
    with_alerts(deployed, receiver.url, schema={"bogus": 1})
    result = deployed.run("fullprocess.py")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown schema key(s): bogus" in result.stderr
    assert receiver.events == ["failed"]
    alert = receiver.bodies[0]
    assert alert["text"].startswith("Tick failed in stage config: ") and "unknown schema key(s): bogus" in alert["text"]
    assert alert["details"]["exit_status"] == 2 and alert["details"]["failed_stage"] == "config"
    assert deployed.run("fullprocess.py").returncode == 2 and receiver.events == ["failed"]  # cooldown
    assert deployed.run("fullprocess.py", "--status").returncode == 2 and receiver.events == ["failed"]  # not a tick

    # Alert settings that are themselves invalid cannot be used: the error is only printed.
    with_alerts(deployed, receiver.url, alerts={"events": ["everything"]})
    result = deployed.run("fullprocess.py")
    assert result.returncode == 2 and "alerts.events" in result.stderr and receiver.events == ["failed"]

    with_alerts(deployed, receiver.url)
    assert deployed.run("fullprocess.py").returncode == 0
    assert receiver.events == ["failed", "recovered"] and "after 2 failed tick(s)" in receiver.bodies[-1]["text"]


def test_test_alert_says_whether_it_was_delivered(deployed, receiver):
    with_alerts(deployed, receiver.url)
    ticks = len(history(deployed))
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"test alert delivered to http://127.0.0.1:{receiver.server.server_port} (HTTP 200)"
    assert receiver.events == ["test"] and receiver.bodies[0]["version"] == "v0001"
    assert len(history(deployed)) == ticks  # not a tick

    receiver.status = 503  # a receiver in trouble: three attempts
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 1 and result.stderr.startswith("fullprocess: test alert not delivered: HTTP 503")
    assert "3 attempt(s)" in result.stderr and receiver.events == ["test"] * 4

    receiver.status = 404  # a receiver that refuses it: asking again will not help
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 1 and "HTTP 404" in result.stderr and receiver.events == ["test"] * 5

    with_alerts(deployed, f"http://127.0.0.1:{free_port()}/hook")
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 1 and "test alert not delivered: Connection refused" in result.stderr

    deployed.write_config()
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nothing to test" in result.stderr


def test_a_trickling_or_redirecting_receiver_is_not_delivered_and_never_holds_the_tick(deployed, receiver):
    with_alerts(deployed, receiver.url)
    receiver.status = 301  # following it, requests would turn the POST into a GET that answers 200
    result = deployed.run("fullprocess.py", "--test-alert")
    assert result.returncode == 1 and "HTTP 301 (a redirect: not followed" in result.stderr
    assert receiver.events == ["test"]

    receiver.trickle = True
    started = time.monotonic()
    result = deployed.run("fullprocess.py", "--test-alert", timeout=60)
    assert result.returncode == 1 and "sent, no complete answer within 3 s" in result.stderr, result.stderr
    assert time.monotonic() - started < 20  # one attempt of 3 s, not the answer's 100 s
    assert receiver.events == ["test", "test"]  # it read the whole request: not sent again


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"alerts": {"webhook_url": "http://127.0.0.1:99999/hooks/T000/secret-token"}}, "alerts.webhook_url must be"),
        ({"alerts": {"webhook_url": "hooks.example/hooks/T000/secret-token"}}, "alerts.webhook_url must be"),
        ({"api_token": "pässwörd-secret-token"}, "'api_token' must be printable ASCII"),
        ({"api_token": " padded-secret-token "}, "'api_token' must be printable ASCII"),
    ],
)
def test_a_webhook_or_token_no_client_could_use_is_a_config_error_that_never_shows_it(deployed, settings, words):
    deployed.write_config(**settings)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "secret-token" not in result.stderr
