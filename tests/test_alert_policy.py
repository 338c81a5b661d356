"""The alert policy as pure functions: every branch of the failure streak, the cooldowns and recovery,
and the words of each alert, without a tick, a receiver or a file."""

from __future__ import annotations

import copy

import pytest

from drs.alerts.messages import drift_text, failure_text
from drs.alerts.policy import MAX_FAILURE_KEYS, Decision, after_delivery, checked_state, decide, failure_key
from drs.history import TickRecord

EVERY_EVENT = {"events": ["drift", "deployed", "not_promoted", "failed", "recovered"], "cooldown_minutes": 60}
T0 = "2024-05-01T10:00:00+00:00"
T0_30 = "2024-05-01T10:30:00+00:00"
T0_61 = "2024-05-01T11:01:00+00:00"
BEFORE_T0 = "2024-05-01T09:00:00+00:00"


def failed(error="input folder not found: /data/sourcedata", stage="detect", status=1, **record) -> dict:
    return {"decision": f"error: {error}", "exit_status": status, "failed_stage": stage, "error": error, **record}


def good(decision="no new data", **record) -> dict:
    # As the tick hands it over: the history line, with the decision's code beside its words.
    return TickRecord.from_json(
        {"start": "2024-05-01T10:00:00+00:00", "decision": decision, "exit_status": 0, **record}
    ).to_json()


def sent(state: dict, record: dict, now: str, delivered: bool = True, settings=EVERY_EVENT) -> tuple[Decision, dict]:
    """decide(), then each alert delivered (or not): the decision and the state kept."""
    decision = decide(state, record, now, settings)
    kept = decision.state
    for alert in decision.alerts:
        kept = after_delivery(kept, decision, alert, delivered)
    return decision, kept


def events(decision: Decision) -> list[str]:
    return [alert["event"] for alert in decision.alerts]


def test_a_healthy_tick_with_no_news_sends_nothing_and_keeps_no_state():
    decision = decide({}, good(), T0, EVERY_EVENT)
    assert decision == Decision([], [], {}, None)


def test_the_first_failure_is_sent_at_once_with_its_words():
    decision, kept = sent({}, failed(), T0)
    (alert,) = decision.alerts
    assert alert["event"] == "failed" and alert["time"] == T0
    assert alert["text"] == "Tick failed in stage detect: input folder not found: /data/sourcedata."
    assert alert["details"]["repeats"] == 0 and alert["details"]["failed_ticks"] == 1
    assert alert["details"]["exit_status"] == 1 and alert["details"]["failed_stage"] == "detect"
    assert kept["failed_ticks"] == 1 and kept["failing_since"] == T0
    (entry,) = kept["failures"].values()
    assert entry == {"first": T0, "last_sent": T0, "repeats": 0, "last_seen": T0}


def test_decide_and_after_delivery_leave_the_state_given_unchanged():
    _, state = sent({}, failed(), T0)
    frozen = copy.deepcopy(state)
    decision = decide(state, failed(), T0_61, EVERY_EVENT)
    after_delivery(decision.state, decision, decision.alerts[0], True)
    assert state == frozen


def test_a_repeat_within_the_cooldown_is_held_back_and_counted():
    _, state = sent({}, failed(), T0)
    decision, state = sent(state, failed(), T0_30)
    assert decision.alerts == [] and decision.held == [{"event": "failed", "suppressed": "cooldown", "repeats": 1}]
    decision, state = sent(state, failed(), T0_30)
    assert decision.held[0]["repeats"] == 2 and state["failed_ticks"] == 3


def test_after_the_cooldown_the_failure_is_sent_with_the_count_of_its_repeats():
    _, state = sent({}, failed(), T0)
    _, state = sent(state, failed(), T0_30)
    _, state = sent(state, failed(), T0_30)
    decision, state = sent(state, failed(), T0_61)
    (alert,) = decision.alerts
    assert alert["text"].endswith("(repeated 3 time(s) since the alert at 2024-05-01 10:00 UTC).")
    assert alert["details"]["repeats"] == 3 and alert["details"]["failed_ticks"] == 4
    (entry,) = state["failures"].values()
    assert entry["last_sent"] == T0_61 and entry["repeats"] == 0


def test_numbers_do_not_make_a_failure_new_but_another_reason_does():
    assert failure_key(failed("file of 123 bytes")) == failure_key(failed("file of 456 bytes"))
    _, state = sent({}, failed("file of 123 bytes"), T0)
    assert sent(state, failed("file of 456 bytes"), T0_30)[0].held
    decision, state = sent(state, failed("not a folder", stage="detect"), T0_30)
    assert events(decision) == ["failed"] and len(state["failures"]) == 2


def test_only_the_most_recent_failures_keep_a_cooldown():
    state: dict = {}
    for number in range(MAX_FAILURE_KEYS + 5):
        _, state = sent(state, failed(f"reason {chr(97 + number % 26)}{number}", stage=f"s{chr(97 + number)}"), T0)
    assert len(state["failures"]) == MAX_FAILURE_KEYS
    assert list(state["failures"])[-1] == failure_key(failed("reason y24", stage="sy"))


def test_a_clock_set_back_ends_the_cooldown_rather_than_silence_failures():
    _, state = sent({}, failed(), T0)
    decision, _ = sent(state, failed(), BEFORE_T0)
    assert events(decision) == ["failed"]


def test_a_cooldown_of_zero_sends_every_failure():
    settings = {**EVERY_EVENT, "cooldown_minutes": 0}
    _, state = sent({}, failed(), T0, settings=settings)
    assert events(sent(state, failed(), T0, settings=settings)[0]) == ["failed"]


def test_an_undelivered_alert_does_not_start_the_cooldown():
    decision, state = sent({}, failed(), T0, delivered=False)
    (entry,) = state["failures"].values()
    assert entry["last_sent"] is None and entry["repeats"] == 1
    decision, state = sent(state, failed(), T0_30)  # the next failing tick tries again, counting the first
    (alert,) = decision.alerts
    assert alert["text"].endswith("(repeated 1 time(s) since the first at 2024-05-01 10:00 UTC).")
    assert alert["details"]["repeats"] == 1
    assert sent(state, failed(), T0_30)[0].held  # delivered now: the cooldown starts


def test_recovery_is_sent_once_and_forgets_the_streak():
    _, state = sent({}, failed(), T0)
    _, state = sent(state, failed(), T0_30)
    decision, state = sent(state, good(), T0_61)
    (alert,) = decision.alerts
    assert alert["text"] == "Recovered: the tick succeeded (no new data) after 2 failed tick(s)."
    assert alert["details"]["failed_ticks"] == 2 and alert["details"]["failing_since"] == T0
    assert state == {}
    assert sent(state, good(), T0_61)[0].alerts == []
    assert events(sent(state, failed(), T0_61)[0]) == ["failed"]  # after a recovery the same failure is news


def test_a_skipped_tick_neither_ends_nor_extends_a_streak():
    _, state = sent({}, failed(), T0)
    decision, kept = sent(state, good("skipped: another run in progress"), T0_30)
    assert decision.alerts == [] and kept == state


@pytest.mark.parametrize("event", ["failed", "recovered"])
def test_an_event_left_out_of_the_settings_is_not_sent_but_the_streak_is_still_counted(event):
    settings = {**EVERY_EVENT, "events": [e for e in EVERY_EVENT["events"] if e != event]}
    first, state = sent({}, failed(), T0, settings=settings)
    second, state = sent(state, failed(), T0_30, settings=settings)
    assert state["failed_ticks"] == 2
    recovery, state = sent(state, good(), T0_61, settings=settings)
    assert state == {}
    if event == "failed":
        assert first.alerts == [] and second.held == [] and events(recovery) == ["recovered"]
        assert "after 2 failed tick(s)" in recovery.alerts[0]["text"]
    else:
        assert events(first) == ["failed"] and second.held and recovery.alerts == []


DRIFT_RECORD = {
    "decision": "drift, redeployed",
    "exit_status": 0,
    "new_rows": 800,
    "deployed_version": "v0003",
    "deployed_version_before": "v0002",
    "scores": {"deployed_f1": 0.675, "new_data_f1": 0.574, "retrained_test_f1": 0.6195},
    "drift": {
        "drift": True,
        "trigger": {"tests": ["raw", "ks"], "mode": "any", "fired": ["raw", "ks"]},
        "tests": {
            "raw": {"test": "raw", "statistic": 0.574, "threshold": 0.675, "verdict": "drift"},
            "ks": {
                "test": "ks",
                "statistic": 0.4,
                "pvalue": 3.2e-05,
                "threshold": 0.01,
                "verdict": "drift",
                "features": {"lastmonth_activity": {"verdict": "drift"}, "lastyear_activity": {"verdict": "no drift"}},
            },
            "psi": {"test": "psi", "statistic": 0.4, "threshold": 0.25, "verdict": "drift", "features": {}},
            "chi2": {"test": "chi2", "verdict": "insufficient data"},
        },
    },
}


def test_each_outcome_event_and_its_words():
    decision = decide({}, DRIFT_RECORD, T0, EVERY_EVENT)
    assert events(decision) == ["drift", "deployed"]
    drift, deployed = decision.alerts
    assert drift["text"] == (
        "Drift in lastmonth_activity (ks); F1 0.574 vs deployed 0.675 (raw); psi 0.400 >= 0.25. "
        "The retrained model scores F1 0.620 on the test data, below the 0.675 of v0002 it replaced. "
        "Drift on 800 new row(s): F1 0.574 vs deployed 0.675 (raw); "
        "ks p-value 3.2e-05 < 0.01 on lastmonth_activity; psi also found drift. Retraining."
    )
    assert drift["details"]["drift"]["fired"] == {name: DRIFT_RECORD["drift"]["tests"][name] for name in ("raw", "ks")}
    assert deployed["text"] == "Deployed v0003: test F1 0.6195 (was v0002, 0.6750)." and deployed["version"] == "v0003"
    bootstrap = {**DRIFT_RECORD, "drift": None, "deployed_version_before": None}
    assert [a["text"] for a in decide({}, bootstrap, T0, EVERY_EVENT).alerts] == [
        "Deployed v0003 (bootstrap): test F1 0.6195."
    ]
    kept = {
        **DRIFT_RECORD,
        "deployed_version": "v0002",
        "promotion": {"promoted": False, "retrained_test_f1": 0.378, "deployed_test_f1": 0.675, "margin": 0.1},
    }
    assert [a["text"] for a in decide({}, kept, T0, EVERY_EVENT).alerts][1:] == [
        "Not promoted: retrained F1 0.378 is below deployed 0.675 minus margin 0.1; keeping v0002."
    ]
    only_deployed = {**EVERY_EVENT, "events": ["deployed"]}
    assert events(decide({}, DRIFT_RECORD, T0, only_deployed)) == ["deployed"]


def test_a_drift_alert_names_every_registered_test_in_its_own_words():
    record = copy.deepcopy(DRIFT_RECORD)
    record["drift"]["trigger"]["fired"] = ["parametric", "psi", "gone"]
    record["drift"]["tests"]["parametric"] = {"statistic": 0.512, "threshold": 0.633, "verdict": "drift"}
    record["drift"]["tests"]["gone"] = {"statistic": 1.5, "threshold": 1, "verdict": "drift"}  # since unregistered
    assert drift_text(record).endswith(
        "Drift on 800 new row(s): F1 0.512 below 0.633 (parametric); psi 0.400 >= 0.25; gone 1.500 >= 1; "
        "raw, ks also found drift. Retraining."
    )


def test_a_failure_without_a_stage_or_an_error_still_reads():
    assert failure_text({"decision": "error: it broke."}, {"repeats": 0}) == "Tick failed: it broke."
    assert failure_text({}, {"repeats": 0}) == "Tick failed: unknown error."


@pytest.mark.parametrize(
    "state, kept",
    [
        ({}, True),
        ({"failed_ticks": 2, "failures": {"k": {"repeats": 0}}}, True),
        ({"failed_ticks": "2"}, False),
        ({"failures": ["not", "a", "dict"]}, False),
        ({"failures": {"k": {"repeats": None}}}, False),
    ],
)
def test_a_damaged_state_is_told_apart(state, kept):
    assert (checked_state(state) is not None) is kept


def test_a_drift_that_keeps_retraining_while_a_later_stage_fails_is_announced_once_per_cooldown():
    # "Drift ... Retraining." came every 10 minutes while the failure was cooled down.
    drifting = {**DRIFT_RECORD, "deployed_version": "v0002", "exit_status": 1, "failed_stage": "train", "error": "x"}
    decision, state = sent({}, drifting, T0)
    assert events(decision) == ["drift", "failed"]
    decision, state = sent(state, {**drifting, "new_rows": 801}, T0_30)  # numbers moved: the same news
    assert events(decision) == [] and {entry["event"] for entry in decision.held} == {"drift", "failed"}
    assert next(e for e in decision.held if e["event"] == "drift")["repeats"] == 1
    decision, state = sent(state, drifting, T0_61)
    assert events(decision) == ["drift", "failed"]


def test_each_new_version_is_announced_and_an_undelivered_outcome_alert_is_tried_again():
    decision, state = sent({}, DRIFT_RECORD, T0)
    assert events(decision) == ["drift", "deployed"]
    newer = {**DRIFT_RECORD, "deployed_version": "v0004", "deployed_version_before": "v0003"}
    decision, _ = sent(state, newer, T0_30)
    assert events(decision) == ["deployed"] and [e["event"] for e in decision.held] == ["drift"]
    decision, state = sent({}, DRIFT_RECORD, T0, delivered=False)
    assert "events" not in state  # nothing delivered: no cooldown started
    assert events(sent(state, DRIFT_RECORD, T0_30)[0]) == ["drift", "deployed"]
