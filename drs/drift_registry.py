"""The drift-test registry: every drift test the pipeline knows, registered once.

A drift test is a `DriftTest`: its name, the kind of column it looks at (`Kind`), its settings
(each a `Setting` with its default and its check), the function that runs it, and how its result
reads in words (the tick's log line, the alert's figures). Everything that lists drift tests asks
the registry: the config's validation of "drift" (``drift.trigger_tests`` and every setting), the
tests a tick runs and the trigger it applies, the result of a test that needs a reference sample
when the deployed version has none, the alert's wording and the report's rows.

Adding a test is one function and one registration::

    def my_test(inputs: DriftInputs, settings: dict) -> dict:
        # {"test", "verdict", "statistic", "threshold", "detail", ...}; "pvalue" and "features" optional
        ...

    register_drift_test(DriftTest("mine", Kind.NUMERIC, my_test, (Setting("mine_limit", 0.5, positive, "..."),)))

Standard library only: the config, which the cheap no-new-data tick loads, validates "drift" here.
That is why the built-in tests (registered at the bottom) name their function as "module:function",
imported when a test runs; a test registered elsewhere may give the function itself.
"""

from __future__ import annotations

import enum
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

# typing.TYPE_CHECKING without importing typing: the no-new-data tick loads this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pandas as pd

    from drs.config import Schema

DRIFT, NO_DRIFT, WATCH, INSUFFICIENT = "drift", "no drift", "watch", "insufficient data"
NO_REFERENCE = "the deployed version has no reference sample of its training data"
TRIGGER_MODES = ("any", "all")


class Kind(enum.Enum):
    """What a drift test looks at."""

    SCORE = "the model's score"  # the deployed model's F1 on the new rows, against its past
    NUMERIC = "numeric features"
    CATEGORICAL = "categorical features"
    ALL_FEATURES = "numeric and categorical features"
    LABEL = "the labels"  # the new rows' label counts against those of the training rows
    PREDICTION = "the model's predictions"  # the deployed model's probabilities on both

    @property
    def needs_reference(self) -> bool:
        """Whether the test compares the new rows with the deployed version's reference sample."""
        return self is not Kind.SCORE

    def features(self, schema: Schema) -> tuple[str, ...]:
        """The schema's features this kind of test compares (none for a score, label or prediction test)."""
        return {
            Kind.SCORE: (),
            Kind.NUMERIC: schema.numeric_features,
            Kind.CATEGORICAL: schema.categorical_features,
            Kind.ALL_FEATURES: schema.features,
            Kind.LABEL: (),
            Kind.PREDICTION: (),
        }[self]


# --- checks of a setting's value ---------------------------------------------------


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def p_value(value: Any) -> bool:
    """A number strictly between 0 and 1."""
    return _finite_number(value) and 0 < value < 1


def positive(value: Any) -> bool:
    """A number above 0."""
    return _finite_number(value) and value > 0


def integer_at_least(low: int) -> Callable[[Any], bool]:
    """A check for an integer >= low."""

    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    return check


def one_of(*choices: str) -> Callable[[Any], bool]:
    """A check for one of `choices`."""
    return lambda value: isinstance(value, str) and value in choices


def or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`check`, or null (None) for "off"."""
    return lambda value: value is None or check(value)


@dataclass(frozen=True)
class Setting:
    """One ``drift.<name>`` setting of the config: its default, its check, and what a valid value is
    (the words of the config error)."""

    name: str
    default: Any
    check: Callable[[Any], bool]
    what: str

    def problem(self, value: Any) -> str | None:
        """None when `value` is valid, else the config error's words."""
        return None if self.check(value) else f"drift.{self.name} must be {self.what}, got {value!r}"


@dataclass(frozen=True)
class DriftInputs:
    """What a tick hands every drift test: the new rows' F1 (None: no labels), the deployed model's test
    F1, past F1 scores (oldest first), the deployed version's reference sample (None: it has none),
    the new rows, and the schema naming their columns. The deployed model (the fitted pipeline), its
    probability calibrator and the manifest's calibration record (what it is, or why there is none)
    are given when the tick has them (None: not given)."""

    new_f1: float | None
    deployed_f1: float
    history: list[float]
    reference: pd.DataFrame | None
    new: pd.DataFrame
    schema: Schema
    model: Any = None
    calibrator: Any = None
    calibration: dict | None = None


# --- how a result reads in words ---------------------------------------------------


def _number(value: Any, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _drifting_features(result: dict) -> str:
    features = [
        feature
        for feature, figures in (result.get("features") or {}).items()
        if isinstance(figures, dict) and figures.get("verdict") == DRIFT
    ]
    return f" on {', '.join(features)}" if features else ""


def statistic_figures(name: str, result: dict) -> str:
    """ "psi 0.412 >= 0.25 on lastmonth_activity": a statistic that reached its threshold."""
    statistic, threshold = result.get("statistic"), result.get("threshold")
    return f"{name} {_number(statistic, '{:.3f}')} >= {_number(threshold, '{:g}')}{_drifting_features(result)}"


def pvalue_figures(name: str, result: dict) -> str:
    """ "ks p-value 3.2e-05 < 0.01 on lastmonth_activity": a p-value below its threshold."""
    if result.get("pvalue") is None:
        return statistic_figures(name, result)
    threshold = _number(result.get("threshold"), "{:g}")
    return f"{name} p-value {_number(result['pvalue'], '{:.2g}')} < {threshold}{_drifting_features(result)}"


def f1_against_deployed(name: str, result: dict) -> str:
    """ "F1 0.574 vs deployed 0.675 (raw)"."""
    statistic, threshold = result.get("statistic"), result.get("threshold")
    return f"F1 {_number(statistic, '{:.3f}')} vs deployed {_number(threshold, '{:.3f}')} ({name})"


def f1_below_past(name: str, result: dict) -> str:
    """ "F1 0.512 below 0.633 (parametric)"."""
    statistic, threshold = result.get("statistic"), result.get("threshold")
    return f"F1 {_number(statistic, '{:.3f}')} below {_number(threshold, '{:.3f}')} ({name})"


def result_summary(result: dict) -> str:
    """The tick's log line of a result: a p-value test shows its p-value against the p-value threshold."""
    if "pvalue" in result:
        statistic, threshold = result.get("statistic"), result.get("threshold")
        return f"p-value {result['pvalue']} (statistic {statistic}) vs threshold p < {threshold}"
    return f"statistic {result.get('statistic')}, threshold {result.get('threshold')}"


# --- the measure that decided: a p-value or, above large_sample_rows new rows, a distance ---------

MEASURES = {
    "pvalue": "p-value",
    "wasserstein": "normalised Wasserstein distance",
    "jensenshannon": "Jensen-Shannon distance",
}


def deciding_measures(result: dict) -> list[tuple[str, Any, list[str]]]:
    """[(measure, its deciding value, the features it decided)] of a result recording measures.

    The features deciding are those that found drift, or all that were compared when none did; a
    p-value's deciding value is the smallest, a distance's the largest. A test of no features (label,
    prediction) gives its own measure and value, with no feature names.
    """
    features = {
        name: figures
        for name, figures in (result.get("features") or {}).items()
        if isinstance(figures, dict) and figures.get("measure") in MEASURES
    }
    if not features:
        measure = result.get("measure")
        return [(measure, result.get("measure_value"), [])] if measure in MEASURES else []
    drifting = {name: figures for name, figures in features.items() if figures.get("verdict") == DRIFT}
    groups: dict[str, list[str]] = {}
    for name, figures in (drifting or features).items():
        groups.setdefault(figures["measure"], []).append(name)
    decided = []
    for measure, names in groups.items():
        values = [v for v in (features[n].get("measure_value") for n in names) if isinstance(v, (int, float))]
        value = (min(values) if measure == "pvalue" else max(values)) if values else None
        decided.append((measure, value, names))
    return decided


def _correction_words(result: dict) -> str:
    correction = result.get("correction")
    return f" ({correction}-adjusted)" if correction not in (None, "none") else ""


def _measure_words(result: dict, measure: str, value: Any, found: bool) -> str:
    """What decided, against its threshold: found drift, "p-value (fdr-adjusted) 3.2e-05 < 0.01",
    "normalised Wasserstein distance 0.412 >= 0.1"; else "p-value 0.41 vs threshold p < 0.01"."""
    if measure == "pvalue":
        threshold = _number(result.get("threshold"), "{:g}")
        comparison = f"< {threshold}" if found else f"vs threshold p < {threshold}"
        return f"p-value{_correction_words(result)} {_number(value, '{:.2g}')} {comparison}"
    threshold = _number(result.get("distance_threshold"), "{:g}")
    comparison = f">= {threshold}" if found else f"vs threshold >= {threshold}"
    return f"{MEASURES[measure]} {_number(value, '{:.3f}')} {comparison}"


def _on(names: list[str]) -> str:
    return f" on {', '.join(names)}" if names else ""


def measured_figures(name: str, result: dict) -> str:
    """ "ks p-value (fdr-adjusted) 9.6e-05 < 0.01 on lastmonth_activity", or with the distance that
    decided: "ks normalised Wasserstein distance 0.412 >= 0.1 on lastmonth_activity"."""
    decided = deciding_measures(result)
    if not decided:  # a line recorded before measures were: its raw p-value decided
        return pvalue_figures(name, result)
    return "; ".join(
        f"{name} {_measure_words(result, measure, value, True)}{_on(names)}" for measure, value, names in decided
    )


def _rates(result: dict, words: str) -> str:
    before, after = result.get("positive_rate_reference"), result.get("positive_rate_new")
    return f" ({words} {_number(before, '{:.3f}')} -> {_number(after, '{:.3f}')})"


def label_figures(name: str, result: dict) -> str:
    """ "label p-value 2e-06 < 0.01 (positive share 0.430 -> 0.720)"."""
    return measured_figures(name, result) + _rates(result, "positive share")


def prediction_figures(name: str, result: dict) -> str:
    """ "prediction p-value 1e-09 < 0.01 (predicted positive rate 0.310 -> 0.520)"."""
    return measured_figures(name, result) + _rates(result, "predicted positive rate")


def measured_summary(result: dict) -> str:
    """The tick's log line of a result recording the measure that decided: that measure against its
    threshold, the statistic beside it, and the raw p-value when an adjusted one or a distance decided."""
    decided = deciding_measures(result)
    if not decided:
        return result_summary(result)
    found = result.get("verdict") == DRIFT
    words = "; ".join(_measure_words(result, measure, value, found) + _on(names) for measure, value, names in decided)
    raw_decided = [measure for measure, _, _ in decided] == ["pvalue"] and not _correction_words(result)
    raw = "" if raw_decided else f"smallest raw p-value {_number(result.get('pvalue'), '{:.2g}')}, "
    return f"{words} ({raw}largest statistic {_number(result.get('statistic'), '{:.3g}')})"


@dataclass(frozen=True)
class DriftTest:
    """A registered drift test.

    run: ``(DriftInputs, settings) -> result`` or its "module:function" name; settings: the config's
    whole "drift" section, defaults filled in. figures: ``(name, result) -> words`` for an alert about
    a result that found drift; summary: ``result -> words`` for the tick's log; check: a rule across
    the test's settings, ``settings -> config error's words or None``.
    """

    name: str
    kind: Kind
    run: Callable[[DriftInputs, dict], dict] | str
    settings: tuple[Setting, ...] = ()
    figures: Callable[[str, dict], str] = pvalue_figures
    summary: Callable[[dict], str] = result_summary
    check: Callable[[dict], str | None] | None = None

    def function(self) -> Callable[[DriftInputs, dict], dict]:
        """The test's function, imported on first use when registered by name."""
        if callable(self.run):
            return self.run
        module, _, attribute = self.run.partition(":")
        # By name, so listing and validating the tests (the cheap tick's config) imports no numpy.
        return getattr(importlib.import_module(module), attribute)

    def result(self, inputs: DriftInputs, settings: dict) -> dict:
        """The test's result on `inputs`; without a reference sample, "insufficient data" for a test needing one."""
        if self.kind.needs_reference and inputs.reference is None:
            return {
                "test": self.name,
                "verdict": INSUFFICIENT,
                "statistic": None,
                "threshold": None,
                "detail": NO_REFERENCE,
            }
        return self.function()(inputs, settings)


# --- the registry ------------------------------------------------------------------

TRIGGER_TESTS = Setting(
    "trigger_tests",
    ["raw"],
    lambda value: (
        isinstance(value, list) and bool(value) and all(isinstance(name, str) and name in _REGISTRY for name in value)
    ),
    "a non-empty list drawn from the registered tests",
)
TRIGGER_MODE = Setting("trigger_mode", "any", lambda value: value in TRIGGER_MODES, '"any" or "all"')
_REGISTRY: dict[str, DriftTest] = {}


class DriftSettingsError(ValueError):
    """The config's "drift" section is invalid: the message says which setting and why."""


def register_drift_test(test: DriftTest) -> DriftTest:
    """Add `test` to the registry (after those already there: the order of the record and the report).

    A setting may be shared by several tests (``min_samples``): it must then be the same Setting.
    Raises ValueError for a name already taken or a setting defined twice differently.
    """
    if test.name in _REGISTRY:
        raise ValueError(f"a drift test named {test.name!r} is already registered")
    known = {setting.name: setting for setting in _all_settings()}
    for setting in test.settings:
        if setting.name in known and known[setting.name] != setting:
            raise ValueError(f"drift setting {setting.name!r} is already defined differently")
    _REGISTRY[test.name] = test
    return test


def unregister_drift_test(name: str) -> None:
    """Remove a registered test (a test suite's own tests); no error when there is none."""
    _REGISTRY.pop(name, None)


def drift_tests() -> tuple[DriftTest, ...]:
    """Every registered test, in registration order."""
    return tuple(_REGISTRY.values())


def drift_test(name: str) -> DriftTest | None:
    """The registered test of that name, or None (a history line may name a test since removed)."""
    return _REGISTRY.get(name)


def registered_names() -> tuple[str, ...]:
    """The registered tests' names, in registration order."""
    return tuple(_REGISTRY)


def _all_settings() -> list[Setting]:
    settings: dict[str, Setting] = {TRIGGER_TESTS.name: TRIGGER_TESTS, TRIGGER_MODE.name: TRIGGER_MODE}
    for test in _REGISTRY.values():
        for setting in test.settings:
            settings.setdefault(setting.name, setting)
    return list(settings.values())


def default_settings() -> dict:
    """The config's "drift" section when it gives nothing: every setting's default."""
    return {setting.name: _copy(setting.default) for setting in _all_settings()}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def validate_settings(given: dict) -> dict:
    """The config's "drift" section with every default filled in, checked.

    A single trigger test may be given as a string. Raises DriftSettingsError naming the first
    setting that is unknown or invalid.
    """
    unknown = sorted(set(given) - {setting.name for setting in _all_settings()})
    if unknown:
        raise DriftSettingsError(f"unknown drift setting(s): {', '.join(unknown)}")
    settings = {**default_settings(), **given}
    if isinstance(settings["trigger_tests"], str):
        settings["trigger_tests"] = [settings["trigger_tests"]]
    if not TRIGGER_TESTS.check(settings["trigger_tests"]):
        raise DriftSettingsError(
            f"drift.trigger_tests must be a non-empty list drawn from {', '.join(registered_names())}"
        )
    settings["trigger_tests"] = list(settings["trigger_tests"])
    if not TRIGGER_MODE.check(settings["trigger_mode"]):
        raise DriftSettingsError(f"drift.trigger_mode must be {TRIGGER_MODE.what}")
    for setting in _all_settings():
        problem = None if setting in (TRIGGER_TESTS, TRIGGER_MODE) else setting.problem(settings[setting.name])
        if problem:
            raise DriftSettingsError(problem)
    for test in _REGISTRY.values():
        problem = test.check(settings) if test.check else None
        if problem:
            raise DriftSettingsError(problem)
    return settings


def run_registered(inputs: DriftInputs, settings: dict) -> dict:
    """Run every registered test; decide with the configured trigger.

    settings: the config's "drift" section (missing settings take their defaults).
    Returns {"tests": {name: result}, "drift": bool, "trigger": {"tests", "mode", "fired"}}.
    """
    settings = {**default_settings(), **settings}
    tests = {test.name: test.result(inputs, settings) for test in _REGISTRY.values()}
    chosen = settings["trigger_tests"]
    fired = [name for name in chosen if tests[name]["verdict"] == DRIFT]
    drift = bool(fired) if settings["trigger_mode"] == "any" else len(fired) == len(chosen)
    return {
        "tests": tests,
        "drift": drift,
        "trigger": {"tests": chosen, "mode": settings["trigger_mode"], "fired": fired},
    }


def summary(result: dict) -> str:
    """The tick's log line of one test's result, in that test's words."""
    test = drift_test(result.get("test") or "")
    return test.summary(result) if test else result_summary(result)


def figures(name: str, result: dict) -> str:
    """An alert's words for a test that found drift, in that test's words."""
    test = drift_test(name)
    return test.figures(name, result) if test else pvalue_figures(name, result)


def report_rows(drift: dict, number: Callable[[Any], str]) -> list[dict]:
    """One row per test of a tick's drift record, in registration order (tests no longer registered last),
    as display strings, each figure written by `number`: test, verdict, statistic, threshold, trigger,
    detail, and "features": one row per feature compared (feature, verdict, statistic, pvalue, samples)."""
    chosen = drift.get("trigger", {}).get("tests", [])
    order = {name: position for position, name in enumerate(_REGISTRY)}
    rows = []
    for name, result in sorted(drift.get("tests", {}).items(), key=lambda item: order.get(item[0], len(order))):
        statistic, threshold = _row_figures(result, number)
        rows.append(
            {
                "test": name,
                "verdict": result.get("verdict", "?"),
                "statistic": statistic,
                "threshold": threshold,
                "trigger": "yes" if name in chosen else "no",
                "detail": result.get("detail", ""),
                "features": feature_rows(result, number),
            }
        )
    return rows


def _short_measure(result: dict, measure: str, value: Any, number: Callable[[Any], str]) -> str:
    """ "p 9.6e-05 (fdr)", "wasserstein 0.4120": a measure and its value as a table shows them."""
    if measure == "pvalue":
        correction = result.get("correction")
        return f"p {number(value)}" + (f" ({correction})" if correction not in (None, "none") else "")
    return f"{measure} {number(value)}"


def _short_threshold(result: dict, measure: str, number: Callable[[Any], str]) -> str:
    if measure == "pvalue":
        return f"p < {number(result.get('threshold'))}"
    return f"{measure} >= {number(result.get('distance_threshold'))}"


def _row_figures(result: dict, number: Callable[[Any], str]) -> tuple[str, str]:
    """(statistic, threshold) of a test's row: the measure that decided against its threshold, the
    statistic beside it; a p-value test recorded before measures shows its raw p-value."""
    statistic, threshold = number(result.get("statistic")), number(result.get("threshold"))
    decided = deciding_measures(result)
    if decided:
        measures = "; ".join(_short_measure(result, measure, value, number) for measure, value, _ in decided)
        thresholds = "; ".join(_short_threshold(result, measure, number) for measure, _, _ in decided)
        return f"{measures} (stat. {statistic})", thresholds
    if "pvalue" in result:
        # Its verdict compares a p-value with a p-value threshold: show those, the statistic beside.
        shown = f"p {number(result['pvalue'])} (stat. {statistic})" if result["pvalue"] is not None else "-"
        return shown, f"p < {threshold}"
    return statistic, threshold


def feature_rows(result: dict, number: Callable[[Any], str]) -> list[dict]:
    """One row per feature a test compared: feature, verdict, statistic, p-value (raw), samples
    ("training / new"), and "measure": what decided its verdict ("p 9.6e-05 (fdr)", "wasserstein
    0.0310"; "-" when not recorded)."""
    rows = []
    for feature, figures in (result.get("features") or {}).items():
        measure = figures.get("measure")
        rows.append(
            {
                "feature": feature,
                "verdict": figures.get("verdict", "?"),
                "statistic": number(figures.get("statistic")),
                "pvalue": number(figures.get("pvalue")),
                "samples": " / ".join(str(n) for n in figures.get("samples") or []) or "-",
                "measure": _short_measure(result, measure, figures.get("measure_value"), number)
                if measure in MEASURES
                else "-",
            }
        )
    return rows


# --- the built-in tests (their functions in drs/drift.py) ---------------------------


def _psi_watch_not_above_drift(settings: dict) -> str | None:
    if settings["psi_watch"] > settings["psi_drift"]:
        return "drift.psi_watch must not be above drift.psi_drift"
    return None


MIN_HISTORY = Setting("min_history", 3, integer_at_least(2), "an integer >= 2")
MIN_SAMPLES = Setting("min_samples", 30, integer_at_least(2), "an integer >= 2")
CORRECTIONS = ("bonferroni", "fdr", "none")
CORRECTION = Setting("correction", "fdr", one_of(*CORRECTIONS), '"bonferroni", "fdr" or "none"')
# Above this many new rows a p-value calls the least shift drift: a distance decides instead (null: never).
LARGE_SAMPLE_ROWS = Setting("large_sample_rows", 1000, or_null(integer_at_least(1)), "an integer >= 1 or null")
WASSERSTEIN_THRESHOLD = Setting("wasserstein_threshold", 0.1, positive, "a positive number")
JENSENSHANNON_THRESHOLD = Setting("jensenshannon_threshold", 0.1, positive, "a positive number")

register_drift_test(DriftTest("raw", Kind.SCORE, "drs.drift:run_raw", figures=f1_against_deployed))
register_drift_test(DriftTest("parametric", Kind.SCORE, "drs.drift:run_parametric", (MIN_HISTORY,), f1_below_past))
register_drift_test(
    DriftTest("nonparametric", Kind.SCORE, "drs.drift:run_nonparametric", (MIN_HISTORY,), f1_below_past)
)
register_drift_test(
    DriftTest(
        "ks",
        Kind.NUMERIC,
        "drs.drift:run_ks",
        (
            Setting("ks_pvalue", 0.01, p_value, "a p-value between 0 and 1"),
            MIN_SAMPLES,
            CORRECTION,
            LARGE_SAMPLE_ROWS,
            WASSERSTEIN_THRESHOLD,
        ),
        figures=measured_figures,
        summary=measured_summary,
    )
)
register_drift_test(
    DriftTest(
        "chi2",
        Kind.CATEGORICAL,
        "drs.drift:run_chi2",
        (
            Setting("chi2_pvalue", 0.01, p_value, "a p-value between 0 and 1"),
            MIN_SAMPLES,
            CORRECTION,
            LARGE_SAMPLE_ROWS,
            JENSENSHANNON_THRESHOLD,
        ),
        figures=measured_figures,
        summary=measured_summary,
    )
)
register_drift_test(
    DriftTest(
        "psi",
        Kind.ALL_FEATURES,
        "drs.drift:run_psi",
        (
            Setting("psi_bins", 10, integer_at_least(2), "an integer >= 2"),
            Setting("psi_watch", 0.1, positive, "a positive number"),
            Setting("psi_drift", 0.25, positive, "a positive number"),
            MIN_SAMPLES,
        ),
        figures=statistic_figures,
        check=_psi_watch_not_above_drift,
    )
)
register_drift_test(
    DriftTest(
        "label",
        Kind.LABEL,
        "drs.drift:run_label",
        (Setting("label_pvalue", 0.01, p_value, "a p-value between 0 and 1"), MIN_SAMPLES),
        figures=label_figures,
        summary=measured_summary,
    )
)
register_drift_test(
    DriftTest(
        "prediction",
        Kind.PREDICTION,
        "drs.drift:run_prediction",
        (
            Setting("prediction_pvalue", 0.01, p_value, "a p-value between 0 and 1"),
            MIN_SAMPLES,
            LARGE_SAMPLE_ROWS,
            WASSERSTEIN_THRESHOLD,
        ),
        figures=prediction_figures,
        summary=measured_summary,
    )
)
register_drift_test(
    DriftTest(
        "estimated",
        Kind.SCORE,
        "drs.performance_estimation:run_estimated",
        (
            Setting(
                "estimated_margin",
                0.05,
                lambda value: _finite_number(value) and 0 <= value < 1,
                "a number from 0 up to (not including) 1",
            ),
            MIN_SAMPLES,
        ),
        f1_below_past,
    )
)
