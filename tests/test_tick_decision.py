"""Every branch of the tick's decision, as a pure function of its facts: milliseconds, no files."""

import dataclasses

import pytest

from drs.history import Decision
from drs.tick_decision import Action, Facts, RetrainOutcome, next_step, reason_to_retrain

SERVING = Facts(deployed_version="v0001")
INGESTED = dataclasses.replace(SERVING, new_files=("new.csv",), ingested=True, usable_new_files=("new.csv",))


def test_an_empty_production_ingests_then_retrains_without_the_guard():
    assert next_step(Facts(deployed_version=None)).action is Action.INGEST
    step = next_step(Facts(deployed_version=None, ingested=True))
    assert step.action is Action.RETRAIN and step.guard is False
    assert reason_to_retrain(Facts(deployed_version=None)) == "bootstrap"


@pytest.mark.parametrize(
    ("reason", "outcome", "decision"),
    [
        (None, RetrainOutcome.DEPLOYED, Decision.BOOTSTRAP),
        (None, RetrainOutcome.PRODUCTION_CHANGED, Decision.BOOTSTRAP_PRODUCTION_CHANGED),
        (False, RetrainOutcome.DEPLOYED, Decision.SCHEMA_REDEPLOYED),
        (False, RetrainOutcome.PRODUCTION_CHANGED, Decision.SCHEMA_PRODUCTION_CHANGED),
        (True, RetrainOutcome.DEPLOYED, Decision.DRIFT_REDEPLOYED),
        (True, RetrainOutcome.PRODUCTION_CHANGED, Decision.DRIFT_PRODUCTION_CHANGED),
    ],
)
def test_a_retrain_ends_the_tick_with_its_outcome_and_remembers_nothing(reason, outcome, decision):
    deployed = None if reason is None else "v0001"
    facts = Facts(deployed_version=deployed, schema_matches=reason is not False, ingested=True, retrain=outcome)
    step = next_step(facts)
    assert (step.action, step.decision, step.remember_checked) == (Action.STOP, decision, False)


def test_a_changed_schema_retrains_whatever_is_new_without_the_guard():
    facts = Facts(deployed_version="v0001", schema_matches=False)
    assert next_step(facts).action is Action.INGEST  # no detection: the deployed model cannot answer
    step = next_step(dataclasses.replace(facts, ingested=True))
    assert step.action is Action.RETRAIN and step.guard is False


def test_detection_comes_first_and_no_new_file_stops_cheaply_refreshing_reports():
    assert next_step(SERVING).action is Action.DETECT
    step = next_step(dataclasses.replace(SERVING, new_files=()))
    assert (step.action, step.decision, step.remember_checked, step.refresh_reports) == (
        Action.STOP,
        Decision.NO_NEW_DATA,
        False,
        True,
    )


def test_new_files_are_ingested_then_their_new_rows_counted():
    assert next_step(dataclasses.replace(SERVING, new_files=("new.csv",))).action is Action.INGEST
    assert next_step(INGESTED).action is Action.FIND_NEW_ROWS


@pytest.mark.parametrize(
    ("facts", "decision"),
    [
        (dataclasses.replace(INGESTED, usable_new_files=()), Decision.NO_USABLE_NEW_DATA),
        (dataclasses.replace(INGESTED, new_rows=0), Decision.NO_NEW_ROWS),
        (dataclasses.replace(INGESTED, new_rows=5, drift=False), Decision.NO_DRIFT),
        (
            dataclasses.replace(INGESTED, new_rows=5, drift=True, retrain=RetrainOutcome.NOT_PROMOTED),
            Decision.DRIFT_NOT_PROMOTED,
        ),
    ],
)
def test_files_weighed_without_a_deploy_are_remembered(facts, decision):
    step = next_step(facts)
    assert (step.action, step.decision, step.remember_checked) == (Action.STOP, decision, True)


def test_new_rows_are_judged_for_drift_and_drift_retrains_under_the_guard():
    assert next_step(dataclasses.replace(INGESTED, new_rows=5)).action is Action.JUDGE_DRIFT
    step = next_step(dataclasses.replace(INGESTED, new_rows=5, drift=True))
    assert step.action is Action.RETRAIN and step.guard is True
    assert reason_to_retrain(INGESTED) == "drift"
