"""Alerts from the cron tick (config "alerts": webhook_url, events, cooldown_minutes).

Events: ``drift`` (a drift trigger fired), ``deployed`` (a new version serves, bootstrap
included), ``not_promoted`` (the promotion guard kept the old model), ``failed`` (the tick exits
non-zero), ``recovered`` (the first good tick after failures).

* messages.py - what each alert says (the payload and its sentence);
* policy.py   - which alerts a tick sends: failure streak, cooldowns, recovery (pure functions);
* channels.py - where they go: the `Channel` interface and the webhook.

This module joins them: it reads ``<log_folder>/alertstate.json`` (which also sees the ticks that
never reach the history, such as a config that does not load), asks the policy, sends through the
channel and keeps the new state. Delivery never fails a tick; what became of each alert is noted
in what ``tick_alerts`` returns (the tick's history record keeps it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from drs.alerts.channels import RETRY_WAITS, Channel, channel_for, receiver
from drs.alerts.policy import after_delivery, checked_state, decide
from drs.files import ALERT_STATE_FILE
from drs.storage import now_iso, read_json, write_json_atomic

__all__ = ["ALERT_STATE_FILE", "receiver", "send_test_alert", "tick_alerts"]

log = logging.getLogger("alerts")


def tick_alerts(settings: dict, record: dict, log_folder: Path | None, waits=RETRY_WAITS) -> list[dict]:
    """Send the alerts a finished tick calls for; never raises.

    settings: the config's "alerts"; record: the tick's history record, exit_status set;
    log_folder: where the alert state lives (None: no cooldown, no "recovered").
    Returns one entry per alert for the record: {"event", "text", "delivered", "attempts",
    "status"?, "error"?} or, for a failure inside its cooldown, {"event", "suppressed", "repeats"}.
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
    decision = decide(state, record, record.get("end") or now_iso(), settings)
    kept = decision.state
    entries = list(decision.held)
    for alert in decision.alerts:
        result = channel.send(alert)
        entries.append({"event": alert["event"], "text": alert["text"], **result.to_json()})
        if result.delivered:
            log.info("alert %s delivered to %s", alert["event"], channel.destination)
        else:
            log.warning(
                "alert %s not delivered to %s after %d attempt(s): %s",
                alert["event"],
                channel.destination,
                result.attempts,
                result.error,
            )
        kept = after_delivery(kept, decision, alert, result.delivered)
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
