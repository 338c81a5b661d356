"""Which alerts a finished tick sends: the failure streak, the cooldowns and recovery, as pure functions.

The state kept between ticks (``alertstate.json``, read and written around these functions) is
``{"failed_ticks": int, "failing_since": time, "failures": {key: {"first", "last_seen", "last_sent",
"repeats"}}}``; ``{}`` when the ticks are healthy. The same failure (same stage, same reason give or
take its numbers) is sent once per ``cooldown_minutes``, then with the count of its repeats; an
undelivered alert does not start the cooldown; the first good tick after failures sends
``recovered`` and forgets the streak; a skipped tick neither ends a streak nor extends it.

The other events have cooldowns too, kept in ``"events": {key: {"last_sent", "repeats"}}``: a drift or
not_promoted alert saying the same (give or take its numbers) is sent once per ``cooldown_minutes``, so
a drift that keeps retraining while a later stage keeps failing is not announced every tick; a deployed
alert is keyed by its version, so every new version is announced once.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from drs import history
from drs.alerts.messages import failure_text, outcome_alerts, parse_time, payload, recovered_text, repeats_since

MAX_FAILURE_KEYS = 20  # cooldowns kept for this many distinct failures
FAILED, RECOVERED = "failed", "recovered"


@dataclass(frozen=True)
class Decision:
    """What a tick's alerts are: payloads to send in order; the record's entries of alerts the cooldown
    holds back; the state to keep (to be passed through `after_delivery` for each alert sent); the
    cooldown entry the "failed" alert is about, when one is sent."""

    alerts: list[dict] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    failure_key: str | None = None


def checked_state(state: dict) -> dict | None:
    """`state` when it has the shape this module keeps, None when it is damaged."""
    failures, events = state.get("failures", {}), state.get("events", {})
    entries = [
        *(failures.values() if isinstance(failures, dict) else [None]),
        *(events.values() if isinstance(events, dict) else [None]),
    ]
    if not isinstance(state.get("failed_ticks", 0), int) or not all(
        isinstance(entry, dict) and isinstance(entry.get("repeats"), int) for entry in entries
    ):
        return None
    return state


def failure_key(record: dict) -> str:
    """The cooldown key of a failed tick: its stage and reason, numbers (sizes, versions, line numbers) masked."""
    return re.sub(r"\d+", "#", f"{record.get('failed_stage') or '-'}: {record.get('error') or record.get('decision')}")


def decide(state: dict, record: dict, now: str, settings: dict) -> Decision:
    """The alerts a finished tick calls for, and the state to keep; `state` is left unchanged.

    record: the tick's history record, exit_status set; now: the tick's end (ISO 8601), the alerts'
    time; settings: the config's "alerts" ("events", "cooldown_minutes").
    """
    state = copy.deepcopy(state)
    events = set(settings["events"])
    alerts, held = _cooled([a for a in outcome_alerts(record, now) if a["event"] in events], state, now, settings)
    if record.get("exit_status") not in (0, None):
        key, suppressed = _note_failure(state, record, now, settings["cooldown_minutes"])
        entry = state["failures"][key]
        if FAILED not in events:
            return Decision(alerts, held, state)
        if suppressed:
            return Decision(
                alerts, [*held, {"event": FAILED, "suppressed": "cooldown", "repeats": entry["repeats"]}], state
            )
        text = failure_text(record, entry)
        failed = payload(FAILED, record, text, now, repeats=repeats_since(entry)[0], failed_ticks=state["failed_ticks"])
        return Decision([*alerts, failed], held, state, key)
    # A skipped tick did nothing: it neither ends a failure streak nor extends it.
    if record.get("decision_code") != history.Decision.SKIPPED.value and state.get("failed_ticks"):
        if RECOVERED in events:
            text = recovered_text(record, state["failed_ticks"])
            extra = {"failed_ticks": state["failed_ticks"], "failing_since": state.get("failing_since")}
            alerts.append(payload(RECOVERED, record, text, now, **extra))
        return Decision(alerts, held, {key: value for key, value in state.items() if key == "events"})
    return Decision(alerts, held, state)


def after_delivery(state: dict, decision: Decision, alert: dict, delivered: bool) -> dict:
    """The state to keep once `alert` (one of decision.alerts) was sent; `state` is left unchanged.

    A delivered "failed" alert starts its cooldown; an undelivered one counts as a repeat, so the
    next failing tick tries again and says how often it failed meanwhile.
    """
    if alert["event"] == RECOVERED:
        return state
    if alert["event"] != FAILED:
        if not delivered:
            return state
        state = copy.deepcopy(state)
        state.setdefault("events", {})[event_key(alert)] = {"last_sent": alert["time"], "repeats": 0}
        for old in list(state["events"])[:-MAX_FAILURE_KEYS]:
            del state["events"][old]
        return state
    if decision.failure_key is None:
        return state
    state = copy.deepcopy(state)
    entry = state["failures"][decision.failure_key]
    if delivered:
        entry.update(last_sent=alert["time"], repeats=0)
    else:
        entry["repeats"] += 1
    return state


def event_key(alert: dict) -> str:
    """The cooldown key of a drift, deployed or not_promoted alert: a deploy by its version (each new
    version is news), the others by their words with the numbers masked."""
    if alert["event"] == "deployed":
        return f"deployed: {alert.get('version')}"
    return re.sub(r"\d+", "#", f"{alert['event']}: {alert['text']}")


def _cooled(alerts: list[dict], state: dict, now: str, settings: dict) -> tuple[list[dict], list[dict]]:
    """(the outcome alerts to send, the record's entries of those the cooldown holds back); the held
    ones are counted in `state` (changed in place)."""
    send, held = [], []
    for alert in alerts:
        entry = state.get("events", {}).get(event_key(alert))
        if entry is not None and _within(entry.get("last_sent"), now, settings["cooldown_minutes"]):
            entry["repeats"] += 1
            held.append({"event": alert["event"], "suppressed": "cooldown", "repeats": entry["repeats"]})
        else:
            send.append(alert)
    return send, held


def _within(last_sent: str | None, now: str, cooldown_minutes: float) -> bool:
    """Whether `now` is within the cooldown after `last_sent`; a clock set back ends it."""
    last, current = parse_time(last_sent), parse_time(now)
    return last is not None and current is not None and 0 <= (current - last).total_seconds() < cooldown_minutes * 60


def _note_failure(state: dict, record: dict, now: str, cooldown_minutes: float) -> tuple[str, bool]:
    """Count a failed tick in `state` (changed in place); returns (its cooldown key, whether it is held back)."""
    state["failed_ticks"] = int(state.get("failed_ticks") or 0) + 1
    state.setdefault("failing_since", now)
    failures = state.setdefault("failures", {})
    key = failure_key(record)
    entry = failures.pop(key, None) or {"first": now, "last_sent": None, "repeats": 0}
    entry["last_seen"] = now
    failures[key] = entry  # most recent last
    for old in list(failures)[:-MAX_FAILURE_KEYS]:
        del failures[old]
    # A clock set back (a last alert "in the future") ends the cooldown rather than silencing failures.
    suppressed = _within(entry.get("last_sent"), now, cooldown_minutes)
    if suppressed:
        entry["repeats"] += 1
    return key, suppressed
