"""Alerts from the cron tick (config "alerts": webhook_url, events, cooldown_minutes).

Events: ``drift`` (a drift trigger fired; in new rows without labels it says the tick waits
for them rather than retrain), ``deployed`` (a new version serves, bootstrap included),
``not_promoted`` (the promotion guard kept the old model), ``failed`` (the tick exits non-zero),
``recovered`` (the first good tick after failures).

* messages.py - what each alert says (the payload and its sentence);
* policy.py   - which alerts a tick sends: failure streak, cooldowns, recovery (pure functions);
* channels.py - where they go: the `Channel` interface and the webhook.

This module joins them: it reads ``<log_folder>/alertstate.json`` (which also sees the ticks that
never reach the history, such as a config that does not load), asks the policy, sends through the
channel and keeps the new state. Delivery never fails a tick; what became of each alert (an
``AlertOutcome``: delivered, sent with its answer not seen, not delivered, held back because the
receiver keeps failing, or held by the cooldown) is noted in what ``tick_alerts`` returns (the tick's
history record keeps it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from drs.alerts.channels import RETRY_WAITS, Channel, channel_for, receiver
from drs.alerts.policy import (
    after_delivery,
    after_receiver_tried,
    checked_state,
    decide,
    held_back_entry,
    held_until,
    receiver_entry,
    receiver_failing,
)
from drs.files import ALERT_STATE_FILE
from drs.history import AlertOutcome
from drs.storage import now_iso, read_json, write_json_atomic

__all__ = ["ALERT_STATE_FILE", "receiver", "send_test_alert", "tick_alerts"]

log = logging.getLogger("alerts")


def tick_alerts(settings: dict, record: dict, log_folder: Path | None, waits=RETRY_WAITS) -> list[dict]:
    """Send the alerts a finished tick calls for; never raises.

    settings: the config's "alerts"; record: the tick's history record, exit_status set;
    log_folder: where the alert state lives (None: no cooldown, no "recovered").
    Returns one entry per alert for the record: {"event", "text", "outcome", "delivered", "attempts",
    "status"?, "error"?, "next_try"? (held back)} or, for a failure inside its cooldown, {"event",
    "suppressed", "repeats"}.
    """
    try:
        return _tick_alerts(settings, record, log_folder, channel_for(settings, waits))
    except Exception as exc:  # alerting is a courtesy: a bug here must not cost the tick its record
        log.warning("alerts: %s: %s", type(exc).__name__, exc)
        return [{"event": None, "delivered": False, "error": f"alerting failed: {type(exc).__name__}: {exc}"}]


def send_test_alert(settings: dict, version: str | None, waits=RETRY_WAITS) -> dict:
    """Send {"event": "test", ...} through the configured channel; returns {"delivered", "attempts", "status"?,
    "error"?}."""
    payload: dict = {
        "event": "test",
        "text": "Test alert from the churn-risk pipeline: alerts reach this receiver.",
        "version": version,
        "time": now_iso(),
        "details": {},
    }
    return channel_for(settings, waits).send(payload).to_json()


def _tick_alerts(settings: dict, record: dict, log_folder: Path | None, channel: Channel) -> list[dict]:
    state_path = Path(log_folder) / ALERT_STATE_FILE if log_folder is not None else None
    state = _read_state(state_path) if state_path is not None else {}
    now = record.get("end") or now_iso()
    decision = decide(state, record, now, settings)
    kept = decision.state
    entries = list(decision.held)
    backoff = receiver_entry(kept, channel.key)
    channel.down = receiver_failing(backoff)
    outcomes: list[AlertOutcome] = []
    last_error: str | None = None
    for alert in decision.alerts:
        # The receiver's entry as this tick has left it so far: a failed try ends this tick's tries too.
        so_far = after_receiver_tried(backoff, channel.key, outcomes, now, last_error)
        until = held_until(so_far, now)
        if so_far is not None and until is not None:
            held = held_back_entry(alert, so_far, until)
            entries.append(held)
            log.warning("alert %s not sent to %s: %s", alert["event"], channel.destination, held["error"])
            kept = after_delivery(kept, decision, alert, False)
            continue
        result = channel.send(alert)
        outcomes.append(result.outcome)
        last_error = result.error if result.outcome is AlertOutcome.NOT_DELIVERED else last_error
        entries.append({"event": alert["event"], "text": alert["text"], **result.to_json()})
        if result.delivered:
            log.info("alert %s delivered to %s", alert["event"], channel.destination)
        else:
            log.warning(
                "alert %s %s to %s after %d attempt(s): %s",
                alert["event"],
                result.outcome.words,
                channel.destination,
                result.attempts,
                result.error,
            )
        # Sent whole with its answer late: the receiver most likely has it, so it starts the cooldown too.
        kept = after_delivery(kept, decision, alert, result.outcome is not AlertOutcome.NOT_DELIVERED)
    after = after_receiver_tried(backoff, channel.key, outcomes, now, last_error)
    # Another receiver's entry (the webhook_url changed) is dropped: the new one starts afresh.
    kept = {key: value for key, value in kept.items() if key != "receiver"}
    if after is not None:
        kept["receiver"] = after
    if state_path is not None and json.dumps(kept, sort_keys=True) != json.dumps(state, sort_keys=True):
        try:
            write_json_atomic(state_path, kept)
        except OSError as exc:
            log.warning("cannot keep the alert state in %s: %s", state_path, exc)
    return entries


def _read_state(path: Path) -> dict:
    """The alert state kept between ticks; a damaged one starts over rather than stop the alerts for good."""
    state = checked_state(read_json(path))
    if state is None:
        log.warning("%s is damaged: starting the failure count and the cooldowns over", path)
        return {}
    return state
