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

A receiver that keeps failing is backed off, in ``"receiver": {"key", "failed_ticks", "since",
"last_error", "next_try"?}``: after a tick whose alerts all failed, each alert is tried once (no
retries); after BACKOFF_AFTER_FAILED_TICKS such ticks in a row it is tried at most once per interval,
BACKOFF_FIRST_MINUTES doubling up to BACKOFF_MAX_MINUTES, and the alerts meanwhile are recorded as
held back. One delivered alert ends it; an alert sent whose answer was not seen neither ends nor
extends it (the receiver is slow, not known to fail). Another receiver (a new webhook_url) starts afresh.
"""

from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field

from drs import history
from drs.alerts.messages import failure_text, outcome_alerts, parse_time, payload, recovered_text, repeats_since
from drs.history import AlertOutcome

MAX_FAILURE_KEYS = 20  # cooldowns kept for this many distinct failures
FAILED, RECOVERED = "failed", "recovered"
BACKOFF_AFTER_FAILED_TICKS = 3  # ticks in a row whose alerts all failed before the receiver is held back
BACKOFF_FIRST_MINUTES = 20  # then one try per interval, doubling...
BACKOFF_MAX_MINUTES = 240  # ...up to this: a receiver repaired in the morning hears again before noon


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
    receiver = state.get("receiver")
    if receiver is not None and not (
        isinstance(receiver, dict)
        and isinstance(receiver.get("key"), str)
        and isinstance(receiver.get("failed_ticks"), int)
        and not isinstance(receiver.get("failed_ticks"), bool)
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
        return Decision(alerts, held, {key: value for key, value in state.items() if key in ("events", "receiver")})
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


def receiver_entry(state: dict, key: str) -> dict | None:
    """The backoff entry of the receiver named `key`, or None (healthy, or the state is about another one)."""
    entry = state.get("receiver")
    return entry if isinstance(entry, dict) and entry.get("key") == key else None


def receiver_failing(entry: dict | None) -> bool:
    """Whether the receiver failed the last tick that tried it: its alerts are tried once each, no retries."""
    return entry is not None and entry.get("failed_ticks", 0) > 0


def held_until(entry: dict | None, now: str) -> str | None:
    """When the backed-off receiver may be tried again, while `now` is before it; None: it may be tried now.

    A next try further away than the longest interval (a clock set back) ends the hold."""
    if entry is None or entry.get("failed_ticks", 0) < BACKOFF_AFTER_FAILED_TICKS:
        return None
    next_try, current = parse_time(entry.get("next_try")), parse_time(now)
    if next_try is None or current is None:
        return None
    ahead = (next_try - current).total_seconds()
    return entry["next_try"] if 0 < ahead <= BACKOFF_MAX_MINUTES * 60 else None


def backoff_minutes(failed_ticks: int) -> float:
    """The wait before the next try of a receiver that failed `failed_ticks` ticks in a row (0 below the threshold)."""
    if failed_ticks < BACKOFF_AFTER_FAILED_TICKS:
        return 0
    return min(BACKOFF_MAX_MINUTES, BACKOFF_FIRST_MINUTES * 2 ** (failed_ticks - BACKOFF_AFTER_FAILED_TICKS))


def after_receiver_tried(
    entry: dict | None, key: str, outcomes: list[AlertOutcome], now: str, error: str | None
) -> dict | None:
    """The receiver's backoff entry once a tick tried it with `outcomes` (its alerts' AlertOutcomes, in order);
    `entry` is left unchanged. None: the receiver is healthy."""
    if AlertOutcome.DELIVERED in outcomes:
        return None  # one success ends the backoff
    failed = AlertOutcome.NOT_DELIVERED in outcomes
    tried = failed or AlertOutcome.UNCONFIRMED in outcomes
    if not tried or (entry is None and not failed):
        return entry
    entry = dict(entry or {"key": key, "failed_ticks": 0, "since": now})
    if failed:
        entry["failed_ticks"] += 1
        entry["last_error"] = error
    minutes = backoff_minutes(entry["failed_ticks"])
    moment = parse_time(now)
    if minutes and moment is not None:
        # A send whose answer was not seen counts as this interval's try: it is not a success either.
        entry["next_try"] = (moment + datetime.timedelta(minutes=minutes)).isoformat(timespec="seconds")
    return entry


def held_back_entry(alert: dict, entry: dict, until: str) -> dict:
    """The record's entry of an alert not tried because its receiver is held back until `until`."""
    return {
        "event": alert["event"],
        "text": alert["text"],
        "outcome": AlertOutcome.HELD_BACK.value,
        "delivered": False,
        "attempts": 0,
        "error": (
            f"held back: the receiver failed {entry['failed_ticks']} tick(s) in a row"
            f" ({entry.get('last_error') or 'not delivered'}); next try after {until}"
        ),
        "next_try": until,
    }


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
