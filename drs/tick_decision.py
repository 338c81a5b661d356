"""What a tick does next, as a pure function of what it has found so far.

A tick gathers facts in steps, each costlier than the one before: what production serves, which
input files are new (standard library only: the common no-new-data tick stops here), what the
new files hold once ingested, what the drift tests say, and what became of a retrained model.
After each step `next_step(facts)` says what to do next, or how the tick ends: its decision, and
whether the input files it weighed are remembered as checked against the deployed version (so
the next tick does not weigh them again). drs/tick.py gathers the facts and does what is decided.
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
    new_files: tuple[str, ...] | None = None
    ingested: bool = False
    usable_new_files: tuple[str, ...] | None = None  # new files that ingestion accepted
    new_rows: int | None = None  # rows of the usable new files the deployed model was not trained on
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


_RETRAINED = {
    "bootstrap": {
        RetrainOutcome.DEPLOYED: Decision.BOOTSTRAP,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.BOOTSTRAP_PRODUCTION_CHANGED,
    },
    "schema": {
        RetrainOutcome.DEPLOYED: Decision.SCHEMA_REDEPLOYED,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.SCHEMA_PRODUCTION_CHANGED,
    },
    "drift": {
        RetrainOutcome.DEPLOYED: Decision.DRIFT_REDEPLOYED,
        RetrainOutcome.NOT_PROMOTED: Decision.DRIFT_NOT_PROMOTED,
        RetrainOutcome.PRODUCTION_CHANGED: Decision.DRIFT_PRODUCTION_CHANGED,
    },
}


def reason_to_retrain(facts: Facts) -> str:
    """Why a retrain happens: "bootstrap" (empty production), "schema" (the config's columns changed)
    or "drift"."""
    if facts.deployed_version is None:
        return "bootstrap"
    return "drift" if facts.schema_matches else "schema"


def next_step(facts: Facts) -> Step:
    """The next thing the tick does, given what it has found so far."""
    reason = reason_to_retrain(facts)
    if facts.retrain is not None:
        # Files weighed by a retrain the guard refused stay weighed; a deploy makes them training files.
        not_promoted = facts.retrain is RetrainOutcome.NOT_PROMOTED
        return Step(Action.STOP, _RETRAINED[reason][facts.retrain], remember_checked=not_promoted)
    if reason != "drift":
        # An empty production, or a model that cannot take the configured columns: retrain on the
        # input folder whatever is new, without the promotion guard (there is nothing usable to keep).
        return Step(Action.RETRAIN, guard=False) if facts.ingested else Step(Action.INGEST)
    if facts.new_files is None:
        return Step(Action.DETECT)
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
    return Step(Action.RETRAIN)
