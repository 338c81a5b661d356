"""The first sentences of the report and of the drift alert: what moved, by how much, and whether the
retrained model scores below the one it replaced.

One pure function, ``drift_headline``, of a tick's drift record and scores (as its history line has
them), so the report and the alert say the same thing in the same words. Standard library only: the
alerts are decided on the cheap path of a tick.
"""

from __future__ import annotations

from drs.drift_registry import DRIFT, registered_names
from drs.drift_registry import figures as test_figures

# The measure that decided a feature's verdict, as a feature record names it ("measure", "measure_value").
MEASURE_WORDS = {
    "pvalue": "p-value",
    "wasserstein": "Wasserstein distance",
    "jensenshannon": "Jensen-Shannon distance",
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    """Two significant figures: a headline says how far, the tables give every digit."""
    return f"{value:.2g}" if _is_number(value) else "n/a"


def feature_measure_words(test: str, feature: dict) -> str:
    """ "ks p-value 3.2e-05", "ks Wasserstein distance 0.31", "psi 0.41": what found a feature moved.

    The measure the record names decides; without one, the p-value when there is one, else the statistic
    (a record with neither: the test's name alone).
    """
    measure = feature.get("measure")
    if measure in MEASURE_WORDS:
        return f"{test} {MEASURE_WORDS[measure]} {_short(feature.get('measure_value'))}"
    if _is_number(feature.get("pvalue")):
        return f"{test} p-value {_short(feature['pvalue'])}"
    if _is_number(feature.get("statistic")):
        return f"{test} {_short(feature['statistic'])}"
    return test


def moved_words(drift: dict) -> tuple[str, str]:
    """("lastmonth_activity (ks p-value 3.2e-05, psi 0.41), number_of_employees (psi 0.41)", "F1 0.574 vs
    deployed 0.675 (raw)"): each feature a test found drift in, with its measures; then each test of no
    such feature (the score tests) that found drift, in its registered words. "" for none."""
    per_feature: dict[str, list[str]] = {}
    whole_tests = []
    # In the registry's order, as the report's tables: a history line keeps its tests sorted by name.
    order = {name: position for position, name in enumerate(registered_names())}
    tests = sorted((drift.get("tests") or {}).items(), key=lambda item: order.get(item[0], len(order)))
    for name, result in tests:
        if not isinstance(result, dict):
            continue
        moved = {
            feature: values
            for feature, values in (result.get("features") or {}).items()
            if isinstance(values, dict) and values.get("verdict") == DRIFT
        }
        for feature, values in moved.items():
            per_feature.setdefault(feature, []).append(feature_measure_words(name, values))
        if not moved and result.get("verdict") == DRIFT:
            whole_tests.append(test_figures(name, result))
    features = ", ".join(f"{feature} ({', '.join(words)})" for feature, words in per_feature.items())
    return features, "; ".join(whole_tests)


def _f1_pair(new: float, old: float) -> tuple[str, str]:
    """The two F1 figures with 3 decimals, or 4 when 3 would show them equal."""
    for decimals in (3, 4):
        shown = f"{new:.{decimals}f}", f"{old:.{decimals}f}"
        if shown[0] != shown[1]:
            return shown
    return shown


def retrained_lower_words(scores: dict | None, replaced: str | None, promoted: bool | None = None) -> str | None:
    """ "The retrained model scores F1 0.601 on the test data, below the 0.675 of v0001 it replaced."
    when the tick's retrained model (scores.retrained_test_f1) scores below the deployed one it was
    measured against (scores.deployed_f1); None otherwise. `promoted` False: the old one stays deployed."""
    scores = scores or {}
    new, old = scores.get("retrained_test_f1"), scores.get("deployed_f1")
    if not (isinstance(new, (int, float)) and isinstance(old, (int, float))) or new >= old:
        return None
    shown_new, shown_old = _f1_pair(new, old)
    version = replaced or "the model"
    tail = f"{version}, which stays deployed" if promoted is False else f"{version} it replaced"
    return f"The retrained model scores F1 {shown_new} on the test data, below the {shown_old} of {tail}."


def drift_headline(
    drift: dict | None, scores: dict | None = None, replaced: str | None = None, promoted: bool | None = None
) -> str | None:
    """What a tick's drift tests found, in one or two sentences; None when the tick ran none.

    drift: the tick's drift record ({"drift", "tests": {test: {"verdict", "features": {feature: {...}}}}});
    scores: its scores ("retrained_test_f1", "deployed_f1"); replaced: the version deployed before it;
    promoted: False when the promotion guard kept that version.
    """
    if not isinstance(drift, dict):
        return None
    features, tests = moved_words(drift)
    if not (features or tests):
        first = "No drift in the new data."
    else:
        moved = ("Drift in " if features else "Drift: ") + "; ".join(part for part in (features, tests) if part)
        first = f"{moved}." if drift.get("drift") else f"{moved}, but not enough to trigger a retrain."
    lower = retrained_lower_words(scores, replaced, promoted)
    return f"{first} {lower}" if lower else first
