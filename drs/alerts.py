"""Webhook alerts from the cron tick (config "alerts": webhook_url, events, cooldown_minutes).

One JSON POST per event, ``{"event", "text", "version", "time", "details"}``:
``text`` is one sentence with the numbers, so a Slack or Mattermost
incoming-webhook URL works as is; ``details`` holds the tick's scores, the
drift tests that fired and the error, as its history record has them.

Events: ``drift`` (a drift trigger fired), ``deployed`` (a new version serves,
bootstrap included), ``not_promoted`` (the promotion guard kept the old model),
``failed`` (the tick exits non-zero), ``recovered`` (the first good tick after
failures). The same failure (same stage, same reason give or take its numbers)
is sent once per ``cooldown_minutes``, then with the count of its repeats.

Delivery never fails a tick: a short timeout, three attempts with backoff,
and a receiver that does not answer is logged and noted in what
``tick_alerts`` returns (the tick's history record keeps it).

Between ticks ``<log_folder>/alertstate.json`` keeps the failure streak and
the cooldowns: it also sees the ticks that never reach the history (a config
that does not load). Standard library only at import: requests is imported
when there is something to send, so the quiet tick stays cheap.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from drs.storage import now_iso, read_json, write_json_atomic

log = logging.getLogger("alerts")

STATE_FILE = "alertstate.json"
TIMEOUT_SECONDS = 3.0
RETRY_WAITS = (0.5, 1.0)  # seconds before the second and the third attempt
MAX_FAILURE_KEYS = 20  # cooldowns kept for this many distinct failures


def tick_alerts(settings: dict, record: dict, log_folder: Path | None, waits=RETRY_WAITS) -> list[dict]:
    """Send the alerts a finished tick calls for; never raises.

    settings: the config's "alerts"; record: the tick's history record, exit_status set;
    log_folder: where the alert state lives (None: no cooldown, no "recovered").
    Returns one entry per alert for the record: {"event", "text", "delivered", "attempts",
    "error"?} or, for a failure inside its cooldown, {"event", "suppressed", "repeats"}.
    """
    try:
        return _tick_alerts(settings, record, log_folder, waits)
    except Exception as exc:  # alerting is a courtesy: a bug here must not cost the tick its record
        log.warning("alerts: %s: %s", type(exc).__name__, exc)
        return [{"event": None, "delivered": False, "error": f"alerting failed: {type(exc).__name__}: {exc}"}]


def send_test_alert(settings: dict, version: str | None, waits=RETRY_WAITS) -> dict:
    """POST {"event": "test", ...} to the webhook; returns {"delivered", "attempts", "error"?}."""
    payload: dict = {
        "event": "test",
        "text": "Test alert from the churn-risk pipeline: alerts reach this receiver.",
        "version": version,
        "time": now_iso(),
        "details": {},
    }
    return deliver(settings["webhook_url"], payload, waits)


def receiver(url: str) -> str:
    """The webhook URL without its path, which is often a secret: fit for logs and records."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def deliver(url: str, payload: dict, waits=RETRY_WAITS, timeout: float = TIMEOUT_SECONDS) -> dict:
    """POST payload as JSON: 1 + len(waits) attempts, sleeping waits[i] before attempt i + 2.

    Any 2xx answer is delivered. A refused request (4xx other than 429) is not retried.
    Returns {"delivered", "attempts", "status"?, "error"?}; never raises.
    """
    body = json.dumps(payload, default=str).encode("utf-8")
    error: str | None = "not sent"
    attempt = 0
    for attempt, wait in enumerate((0.0, *waits), start=1):
        time.sleep(wait)
        status, error = _post_within(url, body, timeout)
        if status is None:
            continue
        if 200 <= status < 300:
            return {"delivered": True, "attempts": attempt, "status": status}
        # A redirect is not followed: requests would turn the POST into a GET that answers 200.
        error = f"HTTP {status}" + (" (a redirect: not followed, give the final URL)" if 300 <= status < 400 else "")
        if status < 500 and status != 429:
            break  # the receiver refuses this alert: asking again will not change its mind
    return {"delivered": False, "attempts": attempt, "error": error}


def _post_within(url: str, body: bytes, seconds: float) -> tuple[int | None, str | None]:
    """(HTTP status, None) or (None, why not), within `seconds` in all.

    requests' timeout bounds each socket wait, not the whole exchange: a receiver that trickles
    its answer a byte at a time would hold the tick for ever. The POST runs in a daemon thread
    that is left behind after `seconds` (the tick ends soon after); the answer's body is never
    read, so a huge one costs nothing.
    """
    import requests  # only when there is something to send: the quiet tick imports nothing more

    outcome: dict = {}

    def post() -> None:
        try:
            with requests.post(
                url,
                data=body,
                timeout=seconds,
                allow_redirects=False,
                stream=True,
                headers={"Content-Type": "application/json"},
            ) as response:
                outcome["status"] = response.status_code
        except requests.Timeout:
            outcome["error"] = f"no answer within {seconds:g} s"
        except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests cannot use
            outcome["error"] = _reason(exc)

    thread = threading.Thread(target=post, name="alert", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return None, f"no complete answer within {seconds:g} s"
    return outcome.get("status"), outcome.get("error")


def _reason(exc: BaseException) -> str:
    """The root cause of a failed request ("Connection refused"), without the URL (often a secret)."""
    cause: BaseException | None = exc
    for _ in range(10):  # requests -> urllib3 -> the socket's OSError
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else cause.__cause__ or cause.__context__
    return type(exc).__name__


# --- which alerts a tick calls for ------------------------------------------------


def _tick_alerts(settings: dict, record: dict, log_folder: Path | None, waits) -> list[dict]:
    events = set(settings["events"])
    state_path = Path(log_folder) / STATE_FILE if log_folder is not None else None
    state = _read_state(state_path) if state_path is not None else {}
    before = json.dumps(state, sort_keys=True)
    payloads = [payload for payload in outcome_alerts(record) if payload["event"] in events]
    entries: list[dict] = []
    failure = None  # the cooldown entry of this tick's failure, if it is to be sent
    if record.get("exit_status") not in (0, None):
        failure = _note_failure(state, record, settings["cooldown_minutes"])
        if failure["suppressed"] or "failed" not in events:
            if "failed" in events:
                entries.append({"event": "failed", "suppressed": "cooldown", "repeats": failure["entry"]["repeats"]})
            failure = None
        else:
            payloads.append(
                _payload(
                    "failed",
                    record,
                    failure_text(record, failure["entry"]),
                    repeats=_repeats(failure["entry"])[0],
                    failed_ticks=state["failed_ticks"],
                )
            )
    elif not str(record.get("decision") or "").startswith("skipped") and state.get("failed_ticks"):
        # A skipped tick did nothing: it neither ends a failure streak nor extends it.
        if "recovered" in events:
            payloads.append(
                _payload(
                    "recovered",
                    record,
                    recovered_text(record, state["failed_ticks"]),
                    failed_ticks=state["failed_ticks"],
                    failing_since=state.get("failing_since"),
                )
            )
        state = {}

    down = False
    for payload in payloads:
        # After one alert found the receiver dead, the others of the tick try once: a tick is not held up for long.
        result = deliver(settings["webhook_url"], payload, () if down else waits)
        down = down or not result["delivered"]
        entries.append({"event": payload["event"], "text": payload["text"], **result})
        if result["delivered"]:
            log.info("alert %s delivered to %s", payload["event"], receiver(settings["webhook_url"]))
        else:
            log.warning(
                "alert %s not delivered to %s after %d attempt(s): %s",
                payload["event"],
                receiver(settings["webhook_url"]),
                result["attempts"],
                result["error"],
            )
        if payload["event"] == "failed" and failure is not None:
            entry = failure["entry"]
            if result["delivered"]:
                entry.update(last_sent=payload["time"], repeats=0)
            else:  # undelivered: the next failing tick tries again, counting this one
                entry["repeats"] += 1

    if state_path is not None and json.dumps(state, sort_keys=True) != before:
        try:
            write_json_atomic(state_path, state)
        except OSError as exc:
            log.warning("cannot keep the alert state in %s: %s", state_path, exc)
    return entries


def _read_state(path: Path) -> dict:
    """The alert state kept between ticks; a damaged one starts over rather than stop the alerts for good."""
    state = read_json(path)
    failures = state.get("failures", {})
    entries = failures.values() if isinstance(failures, dict) else [None]
    if not isinstance(state.get("failed_ticks", 0), int) or not all(
        isinstance(entry, dict) and isinstance(entry.get("repeats"), int) for entry in entries
    ):
        log.warning("%s is damaged: starting the failure count and the cooldowns over", path)
        return {}
    return state


def _note_failure(state: dict, record: dict, cooldown_minutes: float) -> dict:
    """Count a failed tick in `state`; returns {"entry": its cooldown entry, "suppressed": bool}."""
    now = record.get("end") or now_iso()
    state["failed_ticks"] = int(state.get("failed_ticks") or 0) + 1
    state.setdefault("failing_since", now)
    failures = state.setdefault("failures", {})
    # Numbers (sizes, versions, line numbers) vary between otherwise identical failures.
    key = re.sub(r"\d+", "#", f"{record.get('failed_stage') or '-'}: {record.get('error') or record.get('decision')}")
    entry = failures.pop(key, None) or {"first": now, "last_sent": None, "repeats": 0}
    entry["last_seen"] = now
    failures[key] = entry  # most recent last
    for old in list(failures)[:-MAX_FAILURE_KEYS]:
        del failures[old]
    last_sent = _parse_time(entry.get("last_sent"))
    # A clock set back (a last alert "in the future") ends the cooldown rather than silencing failures.
    now_time = _parse_time(now)
    suppressed = (
        last_sent is not None
        and now_time is not None
        and 0 <= (now_time - last_sent).total_seconds() < cooldown_minutes * 60
    )
    if suppressed:
        entry["repeats"] += 1
    return {"entry": entry, "suppressed": suppressed}


def _parse_time(text) -> datetime.datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


# --- what the alerts say ----------------------------------------------------------

DETAIL_KEYS = (
    "decision",
    "exit_status",
    "failed_stage",
    "error",
    "scores",
    "promotion",
    "deployed_version",
    "deployed_version_before",
    "new_files",
    "new_rows",
    "rejected_files",
    "start",
    "seconds",
)


def outcome_alerts(record: dict) -> list[dict]:
    """The drift, deployed and not_promoted alerts of a finished tick's record (every event, unfiltered)."""
    payloads = []
    drift = record.get("drift")
    if isinstance(drift, dict) and drift.get("drift"):
        payloads.append(_payload("drift", record, drift_text(record)))
    version, before = record.get("deployed_version"), record.get("deployed_version_before")
    if version and version != before and "not_deployed" not in record:
        payloads.append(_payload("deployed", record, deployed_text(record)))
    promotion = record.get("promotion")
    if isinstance(promotion, dict) and promotion.get("promoted") is False:
        payloads.append(_payload("not_promoted", record, not_promoted_text(record)))
    return payloads


def _payload(event: str, record: dict, text: str, **extra) -> dict:
    details = {key: record[key] for key in DETAIL_KEYS if record.get(key) not in (None, [], {})}
    drift = record.get("drift")
    if isinstance(drift, dict) and drift.get("tests"):
        fired = drift.get("trigger", {}).get("fired", [])
        details["drift"] = {
            "drift": drift.get("drift"),
            "trigger": drift.get("trigger"),
            "fired": {name: drift["tests"].get(name) for name in fired},
        }
    return {
        "event": event,
        "text": text,
        "version": record.get("deployed_version"),
        "time": record.get("end") or now_iso(),
        "details": {**details, **extra},
    }


def _number(value, pattern: str = "{:.4f}") -> str:
    return pattern.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def drift_text(record: dict) -> str:
    """ "Drift on 800 new row(s): F1 0.574 vs deployed 0.675 (raw); ks, psi also found drift. Retraining." """
    drift = record["drift"]
    tests = drift.get("tests", {})
    fired = drift.get("trigger", {}).get("fired", [])
    figures = "; ".join(_test_figures(name, tests.get(name) or {}) for name in fired) or "the trigger fired"
    others = [
        name
        for name, test in tests.items()
        if name not in fired and isinstance(test, dict) and test.get("verdict") == "drift"
    ]
    if others:
        figures += f"; {', '.join(others)} also found drift"
    rows = record.get("new_rows")
    where = f"{rows} new row(s)" if isinstance(rows, int) else "the new data"
    return f"Drift on {where}: {figures}. Retraining."


def _test_figures(name: str, test: dict) -> str:
    statistic, threshold = test.get("statistic"), test.get("threshold")
    features = [
        feature
        for feature, figures in (test.get("features") or {}).items()
        if isinstance(figures, dict) and figures.get("verdict") == "drift"
    ]
    on = f" on {', '.join(features)}" if features else ""
    if name == "raw":
        return f"F1 {_number(statistic, '{:.3f}')} vs deployed {_number(threshold, '{:.3f}')} (raw)"
    if name in ("parametric", "nonparametric"):
        return f"F1 {_number(statistic, '{:.3f}')} below {_number(threshold, '{:.3f}')} ({name})"
    if test.get("pvalue") is not None:
        return f"{name} p-value {_number(test['pvalue'], '{:.2g}')} < {_number(threshold, '{:g}')}{on}"
    return f"{name} {_number(statistic, '{:.3f}')} >= {_number(threshold, '{:g}')}{on}"


def deployed_text(record: dict) -> str:
    """ "Deployed v0003: test F1 0.6195 (was v0002, 0.5714)." """
    scores = record.get("scores") or {}
    version, before = record["deployed_version"], record.get("deployed_version_before")
    f1 = _number(scores.get("retrained_test_f1"))
    if not before:
        return f"Deployed {version} (bootstrap): test F1 {f1}."
    return f"Deployed {version}: test F1 {f1} (was {before}, {_number(scores.get('deployed_f1'))})."


def not_promoted_text(record: dict) -> str:
    """ "Not promoted: retrained F1 0.378 is below deployed 0.675 minus margin 0.1; keeping v0002." """
    promotion = record["promotion"]
    retrained, deployed = promotion.get("retrained_test_f1"), promotion.get("deployed_test_f1")
    return (
        f"Not promoted: retrained F1 {_number(retrained, '{:.3f}')} is below deployed "
        f"{_number(deployed, '{:.3f}')} minus margin {_number(promotion.get('margin'), '{:g}')}; "
        f"keeping {record.get('deployed_version') or 'the deployed version'}."
    )


def failure_text(record: dict, entry: dict) -> str:
    """ "Tick failed in stage ingest: <reason>." plus, for a failure seen before, how often it repeated."""
    stage = record.get("failed_stage")
    reason = str(record.get("error") or record.get("decision") or "unknown error").removeprefix("error: ").rstrip(".")
    text = f"Tick failed{f' in stage {stage}' if stage else ''}: {reason}"
    repeats, since = _repeats(entry)
    if repeats:
        moment = _parse_time(since)
        when = f" at {moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC" if moment else ""
        text += f" (repeated {repeats} time(s) since the {'alert' if entry.get('last_sent') else 'first'}{when})"
    return text + "."


def _repeats(entry: dict) -> tuple[int, str | None]:
    """How many times this tick's failure repeated (this tick included) since its last delivered alert,
    or since it first failed if no alert about it was delivered; and since when."""
    if entry.get("last_sent"):
        return entry["repeats"] + 1, entry["last_sent"]
    return entry["repeats"], entry.get("first")


def recovered_text(record: dict, failed_ticks: int) -> str:
    """ "Recovered: the tick succeeded (no new data) after 3 failed tick(s)." """
    return f"Recovered: the tick succeeded ({record.get('decision')}) after {failed_ticks} failed tick(s)."
