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


CONFIG_CHANGED = dataclasses.replace(SERVING, config_matches=False)


def test_a_changed_estimator_or_training_config_retrains_under_the_guard_even_without_new_data():
    assert reason_to_retrain(CONFIG_CHANGED) == "config"
    assert next_step(CONFIG_CHANGED).action is Action.DETECT  # so the history says which files are new
    no_new_files = dataclasses.replace(CONFIG_CHANGED, new_files=())
    assert next_step(no_new_files).action is Action.INGEST
    step = next_step(dataclasses.replace(no_new_files, ingested=True))
    assert step.action is Action.RETRAIN and step.guard is True


@pytest.mark.parametrize(
    ("outcome", "decision", "hold_config"),
    [
        (RetrainOutcome.DEPLOYED, Decision.CONFIG_REDEPLOYED, False),
        (RetrainOutcome.NOT_PROMOTED, Decision.CONFIG_NOT_PROMOTED, True),
        (RetrainOutcome.PRODUCTION_CHANGED, Decision.CONFIG_PRODUCTION_CHANGED, False),
    ],
)
def test_a_config_retrain_ends_with_its_outcome_holding_back_only_a_refused_config(outcome, decision, hold_config):
    facts = dataclasses.replace(CONFIG_CHANGED, new_files=("new.csv",), ingested=True, retrain=outcome)
    step = next_step(facts)
    # The new files were not judged for drift: never remembered, the next tick judges them.
    assert (step.action, step.decision, step.remember_checked, step.hold_config) == (
        Action.STOP,
        decision,
        False,
        hold_config,
    )


def test_a_held_back_config_is_not_retrained_again_the_tick_weighs_new_data_as_usual():
    held = dataclasses.replace(CONFIG_CHANGED, config_held=True)
    assert reason_to_retrain(held) == "drift"
    step = next_step(dataclasses.replace(held, new_files=()))
    assert (step.action, step.decision) == (Action.STOP, Decision.NO_NEW_DATA)
    drifted = dataclasses.replace(held, new_files=("new.csv",), ingested=True, usable_new_files=("new.csv",))
    drifted = dataclasses.replace(drifted, new_rows=5, new_labelled_rows=5, drift=True)
    assert next_step(drifted).action is Action.RETRAIN
    assert (
        next_step(dataclasses.replace(drifted, retrain=RetrainOutcome.DEPLOYED)).decision is Decision.DRIFT_REDEPLOYED
    )


def test_a_config_that_matches_is_never_held_and_a_schema_change_comes_first():
    assert reason_to_retrain(dataclasses.replace(SERVING, config_held=True)) == "drift"
    both = dataclasses.replace(CONFIG_CHANGED, schema_matches=False)
    assert reason_to_retrain(both) == "schema"
    assert next_step(dataclasses.replace(both, ingested=True)).guard is False


def test_drift_in_new_rows_without_labels_waits_for_them_remembering_the_files():
    unlabelled = dataclasses.replace(INGESTED, new_rows=5, new_labelled_rows=0, drift=True)
    step = next_step(unlabelled)
    assert (step.action, step.decision, step.remember_checked, step.hold_config) == (
        Action.STOP,
        Decision.DRIFT_AWAITING_LABELS,
        True,
        False,
    )
    assert Decision.DRIFT_AWAITING_LABELS.words == "drift, awaiting labels"
    # No drift without labels is "no drift", as with them.
    assert next_step(dataclasses.replace(unlabelled, drift=False)).decision is Decision.NO_DRIFT


def test_drift_retrains_when_some_new_rows_have_labels():
    step = next_step(dataclasses.replace(INGESTED, new_rows=5, new_labelled_rows=1, drift=True))
    assert step.action is Action.RETRAIN and step.guard is True


def test_the_new_decisions_have_their_codes_and_only_a_config_redeploy_deploys():
    codes = {
        Decision.DRIFT_AWAITING_LABELS: "drift_awaiting_labels",
        Decision.CONFIG_REDEPLOYED: "config_redeployed",
        Decision.CONFIG_NOT_PROMOTED: "config_not_promoted",
        Decision.CONFIG_PRODUCTION_CHANGED: "config_production_changed",
    }
    assert {decision: decision.value for decision in codes} == codes
    assert [decision for decision in codes if decision.deployed] == [Decision.CONFIG_REDEPLOYED]
    assert Decision.CONFIG_NOT_PROMOTED.words == "config changed, retrained, not promoted"
    assert (
        Decision.CONFIG_PRODUCTION_CHANGED.words == "config changed, not deployed: production changed during the tick"
    )
