"""What a tick does next, as a pure function of what it has found so far.

A tick gathers facts in steps, each costlier than the one before: what production serves, which
input files are new (standard library only: the common no-new-data tick stops here), what the
new files hold once ingested, what the drift tests say, and what became of a retrained model.
After each step `next_step(facts)` says what to do next, or how the tick ends: its decision, and
whether the input files it weighed are remembered as checked against the deployed version (so
the next tick does not weigh them again). drs/tick.py gathers the facts and does what is decided.

Reasons to retrain, in order: an empty production ("bootstrap"), a model that cannot take the
config's columns ("schema"), an estimator or training parameters in the config other than the ones
the deployed model was trained with ("config", unless that config was already retrained against the
deployed version and held back by the promotion guard), and drift in new labelled rows ("drift").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drs.history import Decision


class Action(enum.Enum):
    DETECT = "detect"  # fingerprint the input folder: which files has production not weighed?
    INGEST = "ingest"  # merge and validate the input folder
    FIND_NEW_ROWS = "find new rows"  # the rows of the usable new files the deployed model was not trained on
    RETRAIN = "retrain"  # train, score, deploy (under the promotion guard when `guard`), report
    JUDGE_DRIFT = "judge drift"  # the drift tests on the new rows
    STOP = "stop"


class RetrainOutcome(enum.Enum):
    DEPLOYED = "deployed"
    NOT_PROMOTED = "not promoted"
    PRODUCTION_CHANGED = "production changed"


@dataclass(frozen=True)
class Facts:
    """What the tick knows so far; None: not found out yet."""

    deployed_version: str | None  # None: production is empty
    schema_matches: bool = True  # the deployed model takes the config's columns
    # The config's estimator and training parameters are those the deployed model was trained with
    # (a version that does not record them counts as matching: unknown is not a change).
    config_matches: bool = True
    config_held: bool = False  # this config was retrained against the deployed version and not promoted
    new_files: tuple[str, ...] | None = None
    ingested: bool = False
    usable_new_files: tuple[str, ...] | None = None  # new files that ingestion accepted
    new_rows: int | None = None  # rows of the usable new files the deployed model was not trained on
    new_labelled_rows: int | None = None  # those of the new rows that have a label
    drift: bool | None = None
    retrain: RetrainOutcome | None = None


@dataclass(frozen=True)
class Step:
    """What to do next; for STOP, the tick's decision and whether to remember the weighed files."""

    action: Action
    decision: Decision | None = None
    remember_checked: bool = False
    guard: bool = True  # the promotion guard applies to a retrain
    refresh_reports: bool = False  # regenerate reports that describe another version than the deployed one
    hold_config: bool = False  # remember the config as not promoted against the deployed version


_RETRAINED = {
    "bootstrap": {
        RetrainOutcome.DEPLOYED: Decision.BOOTSTRAP,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.BOOTSTRAP_PRODUCTION_CHANGED,
    },
    "schema": {
        RetrainOutcome.DEPLOYED: Decision.SCHEMA_REDEPLOYED,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.SCHEMA_PRODUCTION_CHANGED,
    },
    "config": {
        RetrainOutcome.DEPLOYED: Decision.CONFIG_REDEPLOYED,
        RetrainOutcome.NOT_PROMOTED: Decision.CONFIG_NOT_PROMOTED,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.CONFIG_PRODUCTION_CHANGED,
    },
    "drift": {
        RetrainOutcome.DEPLOYED: Decision.DRIFT_REDEPLOYED,
        RetrainOutcome.NOT_PROMOTED: Decision.DRIFT_NOT_PROMOTED,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.DRIFT_PRODUCTION_CHANGED,
    },
}


def reason_to_retrain(facts: Facts) -> str:
    """Why a retrain happens: "bootstrap" (empty production), "schema" (the config's columns changed),
    "config" (its estimator or training parameters changed) or "drift"."""
    if facts.deployed_version is None:
        return "bootstrap"
    if not facts.schema_matches:
        return "schema"
    return "config" if not (facts.config_matches or facts.config_held) else "drift"


def next_step(facts: Facts) -> Step:
    """The next thing the tick does, given what it has found so far."""
    reason = reason_to_retrain(facts)
    if facts.retrain is not None:
        return _after_retrain(reason, facts.retrain)
    if reason in ("bootstrap", "schema"):
        # An empty production, or a model that cannot take the configured columns: retrain on the
        # input folder whatever is new, without the promotion guard (there is nothing usable to keep).
        return Step(Action.RETRAIN, guard=False) if facts.ingested else Step(Action.INGEST)
    if facts.new_files is None:
        return Step(Action.DETECT)
    if reason == "config":
        # The config is part of the model: retrain on the input folder, new data or not, under the guard
        # (detection only tells the history which files are new).
        return Step(Action.RETRAIN) if facts.ingested else Step(Action.INGEST)
    return _weigh_new_data(facts)


def _weigh_new_data(facts: Facts) -> Step:
    """The drift path, once detection has run: what the new files hold, and what their new rows say."""
    if not facts.new_files:
        return Step(Action.STOP, Decision.NO_NEW_DATA, refresh_reports=True)
    if not facts.ingested:
        return Step(Action.INGEST)
    if not facts.usable_new_files:
        return Step(Action.STOP, Decision.NO_USABLE_NEW_DATA, remember_checked=True)
    if facts.new_rows is None:
        return Step(Action.FIND_NEW_ROWS)
    if facts.new_rows == 0:
        return Step(Action.STOP, Decision.NO_NEW_ROWS, remember_checked=True)
    if facts.drift is None:
        return Step(Action.JUDGE_DRIFT)
    if not facts.drift:
        return Step(Action.STOP, Decision.NO_DRIFT, remember_checked=True)
    if facts.new_labelled_rows == 0:
        # Retraining now would fit the same labelled rows again: wait for labels. The files are remembered,
        # so the labels, when later files bring them, are judged as new labelled rows.
        return Step(Action.STOP, Decision.DRIFT_AWAITING_LABELS, remember_checked=True)
    return Step(Action.RETRAIN)


def _after_retrain(reason: str, outcome: RetrainOutcome) -> Step:
    """How a tick that retrained ends."""
    not_promoted = outcome is RetrainOutcome.NOT_PROMOTED
    if reason == "config":
        # No new file was judged for drift: none is remembered, the next tick judges them. The refused config
        # is held back, so that later ticks do not retrain it again and again.
        return Step(Action.STOP, _RETRAINED[reason][outcome], hold_config=not_promoted)
    # Files weighed by a retrain the guard refused stay weighed; a deploy makes them training files.
    return Step(Action.STOP, _RETRAINED[reason][outcome], remember_checked=not_promoted)
