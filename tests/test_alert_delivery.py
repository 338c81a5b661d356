"""What becomes of an alert when its receiver is slow or keeps failing: a request that went out whole and
got no answer in time is "sent, answer not seen" and is not sent again; a receiver that keeps failing is
backed off (once per growing interval, kept in alertstate.json) and the alerts meanwhile are recorded as
held back. The webhook channel and tick_alerts run in process against a local receiver; one real tick
checks the history line; the backoff's arithmetic is unit-tested."""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import scaled
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drs.alerts import tick_alerts
from drs.alerts.channels import WebhookChannel
from drs.alerts.policy import (
    BACKOFF_AFTER_FAILED_TICKS,
    BACKOFF_FIRST_MINUTES,
    BACKOFF_MAX_MINUTES,
    after_receiver_tried,
    backoff_minutes,
    checked_state,
    held_until,
)
from drs.files import ALERT_STATE_FILE
from drs.history import AlertOutcome, Decision, TickRecord, status_rows
from drs.tick_metrics import tick_registry

NO_WAITS = (0.0, 0.0)
PAYLOAD = {"event": "test", "text": "t", "version": None, "time": "2024-05-01T10:00:00+00:00", "details": {}}
START = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.UTC)


class Receiver:
    """A webhook receiver on a free local port that keeps every body; `slow`: it reads the whole request
    and holds its answer until the test ends (an answer merely late, as far as the sender can tell)."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        self.slow = False
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
                if receiver.slow:
                    receiver.release.wait(scaled(120))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def events(self) -> list[str]:
        return [body["event"] for body in self.bodies]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def at(minutes: float) -> str:
    return (START + datetime.timedelta(minutes=minutes)).isoformat()


def failing(minutes: float) -> dict:
    return {"decision": "failed", "exit_status": 1, "failed_stage": "ingest", "error": "boom", "end": at(minutes)}


# --- a slow receiver -------------------------------------------------------------------------


def test_a_slow_receiver_gets_the_alert_once_and_the_result_says_sent_answer_not_seen(receiver):
    receiver.slow = True
    deadline = scaled(2)  # long enough to send a small body on a loaded machine; the answer never comes in it
    result = WebhookChannel(receiver.url, NO_WAITS, timeout=deadline).send(PAYLOAD)
    assert result.outcome is AlertOutcome.UNCONFIRMED and result.attempts == 1
    assert result.to_json() == {
        "outcome": "unconfirmed",
        "delivered": None,
        "attempts": 1,
        "error": f"sent, no complete answer within {deadline:g} s",
    }
    receiver.release.set()  # the late answer comes; nothing was sent again meanwhile
    assert receiver.events == ["test"]


def test_a_slow_receiver_is_not_sent_the_same_failure_again_within_the_cooldown(receiver, tmp_path):
    receiver.slow = True
    settings = {"webhook_url": receiver.url, "events": ["failed", "recovered"], "cooldown_minutes": 60}
    (entry,) = tick_alerts(settings, failing(0), tmp_path, NO_WAITS)
    assert entry["event"] == "failed" and entry["outcome"] == "unconfirmed" and entry["delivered"] is None
    assert entry["attempts"] == 1 and entry["error"].startswith("sent, no complete answer within 3 s")
    # The receiver most likely has it: the cooldown runs as for a delivered alert.
    assert tick_alerts(settings, failing(10), tmp_path, NO_WAITS) == [
        {"event": "failed", "suppressed": "cooldown", "repeats": 1}
    ]
    receiver.release.set()
    assert receiver.events == ["failed"]
    # Slow is not failing: the receiver is not backed off.
    assert "receiver" not in json.loads((tmp_path / ALERT_STATE_FILE).read_text())


# --- a receiver that keeps failing ---------------------------------------------------------------


def test_a_receiver_that_answers_500_is_backed_off_and_tried_once_per_growing_interval(receiver, tmp_path):
    receiver.status = 500
    settings = {"webhook_url": receiver.url, "events": ["failed", "recovered"], "cooldown_minutes": 0}
    posts, outcomes = [], []
    for tick in range(16):  # a failing tick every 10 minutes for 2.5 hours
        before = len(receiver.bodies)
        (entry,) = tick_alerts(settings, failing(10 * tick), tmp_path, NO_WAITS)
        posts.append(len(receiver.bodies) - before)
        outcomes.append(entry["outcome"])
    # Three attempts, then one per tick, then held back: tried at +20 min, then +40, then +80.
    assert posts == [3, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert outcomes == ["not_delivered" if sent else "held_back" for sent in posts], outcomes
    state = json.loads((tmp_path / ALERT_STATE_FILE).read_text())
    assert state["receiver"]["failed_ticks"] == 5 and state["receiver"]["last_error"] == "HTTP 500"
    assert state["receiver"]["next_try"] == at(160)
    assert "secret-token" not in json.dumps(state)
    held = tick_alerts(settings, failing(155), tmp_path, NO_WAITS)
    assert held == [
        {
            "event": "failed",
            "text": "Tick failed in stage ingest: boom (repeated 16 time(s) since the first at 2024-05-01 10:00 UTC).",
            "outcome": "held_back",
            "delivered": False,
            "attempts": 0,
            "error": f"held back: the receiver failed 5 tick(s) in a row (HTTP 500); next try after {at(160)}",
            "next_try": at(160),
        }
    ]

    # Repaired: the next try is delivered, says how often the failure repeated, and ends the backoff.
    receiver.status = 200
    (entry,) = tick_alerts(settings, failing(160), tmp_path, NO_WAITS)
    assert entry["outcome"] == "delivered" and "repeated 17 time(s)" in entry["text"]
    assert "receiver" not in json.loads((tmp_path / ALERT_STATE_FILE).read_text())
    receiver.status = 500
    before = len(receiver.bodies)
    tick_alerts(settings, failing(180), tmp_path, NO_WAITS)
    assert len(receiver.bodies) - before == 3  # a fresh start: three attempts again


def test_a_failed_try_while_backed_off_holds_back_the_rest_of_the_tick(receiver, tmp_path):
    receiver.status = 500
    settings = {"webhook_url": receiver.url, "events": ["failed", "drift"], "cooldown_minutes": 0}
    for tick in range(BACKOFF_AFTER_FAILED_TICKS - 1):
        tick_alerts(settings, failing(10 * tick), tmp_path, NO_WAITS)
    before = len(receiver.bodies)
    drift = {"drift": True, "tests": {}, "trigger": {"fired": []}}
    entries = tick_alerts(settings, {**failing(20), "drift": drift, "new_rows": 5}, tmp_path, NO_WAITS)
    # The third failed tick in a row: its first alert fails once, the rest is held back.
    assert [(entry["event"], entry["outcome"]) for entry in entries] == [
        ("drift", "not_delivered"),
        ("failed", "held_back"),
    ]
    assert len(receiver.bodies) - before == 1


def test_another_webhook_url_starts_afresh(receiver, tmp_path):
    receiver.status = 500
    settings = {"webhook_url": receiver.url, "events": ["failed"], "cooldown_minutes": 0}
    for tick in range(BACKOFF_AFTER_FAILED_TICKS):
        tick_alerts(settings, failing(10 * tick), tmp_path, NO_WAITS)
    assert tick_alerts(settings, failing(30), tmp_path, NO_WAITS)[0]["outcome"] == "held_back"
    receiver.status = 200
    moved = {**settings, "webhook_url": receiver.url.replace("secret-token", "new-token")}
    assert tick_alerts(moved, failing(40), tmp_path, NO_WAITS)[0]["outcome"] == "delivered"


def test_the_backoff_grows_to_its_cap_and_a_clock_set_back_ends_it():
    assert [backoff_minutes(n) for n in range(BACKOFF_AFTER_FAILED_TICKS)] == [0] * BACKOFF_AFTER_FAILED_TICKS
    minutes = [backoff_minutes(BACKOFF_AFTER_FAILED_TICKS + n) for n in range(6)]
    assert minutes[0] == BACKOFF_FIRST_MINUTES and minutes[1] == 2 * BACKOFF_FIRST_MINUTES
    assert minutes == sorted(minutes) and minutes[-1] == BACKOFF_MAX_MINUTES
    entry = {"key": "k", "failed_ticks": BACKOFF_AFTER_FAILED_TICKS, "next_try": at(20)}
    assert held_until(entry, at(10)) == at(20) and held_until(entry, at(20)) is None
    assert held_until(entry, at(-10 - BACKOFF_MAX_MINUTES)) is None  # a next try "far in the future": a clock set back
    assert held_until({**entry, "failed_ticks": 1}, at(10)) is None


def test_only_a_delivery_ends_the_backoff_and_a_send_without_answer_neither_ends_nor_extends_it():
    entry = {"key": "k", "failed_ticks": 1, "since": at(0), "last_error": "HTTP 500"}
    assert after_receiver_tried(entry, "k", [AlertOutcome.DELIVERED], at(10), None) is None
    assert after_receiver_tried(entry, "k", [AlertOutcome.UNCONFIRMED], at(10), None) == entry
    assert after_receiver_tried(None, "k", [AlertOutcome.UNCONFIRMED], at(10), None) is None
    assert after_receiver_tried(entry, "k", [], at(10), None) == entry
    failed = after_receiver_tried(entry, "k", [AlertOutcome.NOT_DELIVERED], at(10), "HTTP 503")
    assert failed == {**entry, "failed_ticks": 2, "last_error": "HTTP 503"}
    assert entry["failed_ticks"] == 1  # left unchanged


@pytest.mark.parametrize(
    "receiver_state", [["not", "a", "dict"], {"key": "k", "failed_ticks": "3"}, {"failed_ticks": 3}]
)
def test_a_damaged_backoff_entry_is_told_apart(receiver_state):
    assert checked_state({"receiver": receiver_state}) is None
    assert checked_state({"receiver": {"key": "k", "failed_ticks": 3}}) is not None


# --- what the record, --status and the metrics say ------------------------------------------------

ENTRIES = [
    {"event": "drift", "text": "d", "outcome": "delivered", "delivered": True, "attempts": 1, "status": 200},
    {"event": "deployed", "text": "v", "outcome": "unconfirmed", "delivered": None, "attempts": 1, "error": "sent"},
    {"event": "failed", "text": "f", "outcome": "held_back", "delivered": False, "attempts": 0, "error": "held"},
    {"event": "failed", "suppressed": "cooldown", "repeats": 2},  # written before "outcome" existed
    {"event": "recovered", "text": "r", "delivered": False, "attempts": 3, "error": "HTTP 500"},  # likewise
]


def test_the_status_table_says_what_became_of_each_alert():
    record = TickRecord(start=at(0), seconds=1.0, exit_status=0, decision=Decision.NO_NEW_DATA, alerts=ENTRIES)
    line = status_rows([TickRecord.from_json(record.to_json())])[-1]
    assert line.endswith(
        "no new data (alerts: drift delivered; deployed sent, answer not seen; failed held back; "
        "failed cooldown; recovered not delivered)"
    ), line
    quiet = TickRecord(start=at(0), seconds=1.0, exit_status=0, decision=Decision.NO_NEW_DATA)
    assert status_rows([quiet])[-1].endswith("no new data")


def test_the_tick_metrics_count_the_alerts_by_outcome():
    record = TickRecord(start=at(0), end=at(0), exit_status=0, decision=Decision.NO_NEW_DATA, alerts=ENTRIES)
    text = generate_latest(tick_registry(record)).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert {
        outcome: samples[("drs_tick_alerts", (("outcome", outcome),))] for outcome in (o.value for o in AlertOutcome)
    } == {"delivered": 1, "unconfirmed": 1, "not_delivered": 1, "held_back": 1, "cooldown": 1}
    assert samples[("drs_tick_alerts_undelivered", ())] == 2  # held back and not delivered; the sent one is unknown


# --- a real tick ---------------------------------------------------------------------------------


def test_a_tick_whose_receiver_answers_late_records_sent_answer_not_seen_and_posts_once(deployed, receiver):
    receiver.slow = True
    deployed.write_config(alerts={"webhook_url": receiver.url, "events": ["failed"]})
    deployed.path("practicedata").rename(deployed.path("practicedata-away"))
    result = deployed.run("fullprocess.py", timeout=scaled(120))
    assert result.returncode == 1 and "input folder not found" in result.stderr
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    (alert,) = line["alerts"]
    assert alert["outcome"] == "unconfirmed" and alert["delivered"] is None and alert["attempts"] == 1
    assert (
        "alert failed sent, answer not seen to http://127.0.0.1" in deployed.path("logs", "fullprocess.log").read_text()
    )
    status = deployed.run("fullprocess.py", "--status")
    assert "(alerts: failed sent, answer not seen)" in status.stdout, status.stdout
    receiver.release.set()
    assert receiver.events == ["failed"]
