"""What a person has to act on: the headline of the report and of the drift alert (what moved, by how
much, a retrained model scoring below the one it replaced), the fit's warnings from the training to the
status page, and the features the deployed model relies on."""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest
from conftest import OFFLINE_INDEX, SUBSCRIPTIONS_SCHEMA, client_for, read_pdf

from drs.alerts.messages import drift_text
from drs.deploy import DeployedModel, load_deployed_model
from drs.headline import drift_headline, feature_measure_words
from drs.history import TickRecord
from drs.report.gather import feature_importances
from drs.score import load_test_data
from drs.status_views import fit_warnings_words, headline_words
from drs.train import MAX_FIT_WARNINGS, fit_model, fit_warning_lines
from generate_data import generate_categorical


def drift_record(**tests) -> dict:
    return {"drift": True, "trigger": {"tests": list(tests), "mode": "any", "fired": list(tests)}, "tests": tests}


# --- the headline: one pure function ---------------------------------------------------


@pytest.mark.parametrize(
    "feature, words",
    [
        ({"verdict": "drift", "measure": "pvalue", "measure_value": 3.2e-05, "pvalue": 0.5}, "ks p-value 3.2e-05"),
        ({"verdict": "drift", "measure": "wasserstein", "measure_value": 0.3127}, "ks Wasserstein distance 0.31"),
        ({"verdict": "drift", "measure": "jensenshannon", "measure_value": 0.144}, "ks Jensen-Shannon distance 0.14"),
        ({"verdict": "drift", "pvalue": 1.5e-68, "statistic": 0.45}, "ks p-value 1.5e-68"),  # no measure: the p-value
        ({"verdict": "drift", "pvalue": None, "statistic": 0.412}, "ks 0.41"),  # nor a p-value: the statistic
        ({"verdict": "drift"}, "ks"),
    ],
)
def test_a_feature_is_named_with_the_measure_that_found_it_moved(feature, words):
    assert feature_measure_words("ks", feature) == words


def test_the_headline_names_each_feature_that_moved_with_its_measures():
    drift = drift_record(
        ks={
            "verdict": "drift",
            "features": {
                "lastmonth_activity": {"verdict": "drift", "measure": "pvalue", "measure_value": 3.2e-05},
                "lastyear_activity": {"verdict": "no drift", "measure": "pvalue", "measure_value": 0.4},
            },
        },
        psi={
            "verdict": "drift",
            "statistic": 0.41,
            "features": {
                "number_of_employees": {"verdict": "drift", "statistic": 0.41},
                "lastmonth_activity": {"verdict": "drift", "statistic": 0.3},
                "lastyear_activity": {"verdict": "watch", "statistic": 0.12},
            },
        },
    )
    assert drift_headline(drift) == (
        "Drift in lastmonth_activity (ks p-value 3.2e-05, psi 0.3), number_of_employees (psi 0.41)."
    )


def test_score_tests_are_named_with_their_f1_figures():
    drift = drift_record(
        raw={"verdict": "drift", "statistic": 0.574, "threshold": 0.675},
        parametric={"verdict": "drift", "statistic": 0.512, "threshold": 0.633},
    )
    drift["tests"]["nonparametric"] = {"verdict": "no drift", "statistic": 0.6, "threshold": 0.5}
    drift["tests"]["ks"] = {
        "verdict": "drift",
        "features": {"lastmonth_activity": {"verdict": "drift", "pvalue": 1e-4}},
    }
    assert drift_headline(drift) == (
        "Drift in lastmonth_activity (ks p-value 0.0001); "
        "F1 0.574 vs deployed 0.675 (raw); F1 0.512 below 0.633 (parametric)."
    )
    only_scores = drift_record(raw={"verdict": "drift", "statistic": 0.574, "threshold": 0.675})
    assert drift_headline(only_scores) == "Drift: F1 0.574 vs deployed 0.675 (raw)."


def test_a_retrained_model_scoring_below_the_one_it_replaced_is_said():
    drift = drift_record(raw={"verdict": "drift", "statistic": 0.574, "threshold": 0.675})
    lower = {"deployed_f1": 0.675, "new_data_f1": 0.574, "retrained_test_f1": 0.6011}
    assert drift_headline(drift, lower, "v0001") == (
        "Drift: F1 0.574 vs deployed 0.675 (raw). "
        "The retrained model scores F1 0.601 on the test data, below the 0.675 of v0001 it replaced."
    )
    # Kept by the promotion guard: it replaced nothing.
    assert drift_headline(drift, lower, "v0001", promoted=False).endswith(
        "below the 0.675 of v0001, which stays deployed."
    )
    # Equal at 3 decimals: 4 say which is lower.
    close = {"deployed_f1": 0.67512, "retrained_test_f1": 0.67481}
    assert "F1 0.6748 on the test data, below the 0.6751 of v0001" in drift_headline(drift, close, "v0001")
    for scores in ({**lower, "retrained_test_f1": 0.7}, {**lower, "retrained_test_f1": 0.675}, {"deployed_f1": 0.675}):
        assert "retrained" not in drift_headline(drift, scores, "v0001")


def test_no_drift_says_so_and_no_drift_tick_says_nothing():
    calm = {
        "drift": False,
        "trigger": {"tests": ["raw"], "mode": "any", "fired": []},
        "tests": {
            "raw": {"verdict": "no drift", "statistic": 0.7, "threshold": 0.675},
            "ks": {"verdict": "no drift", "features": {"lastmonth_activity": {"verdict": "no drift", "pvalue": 0.3}}},
        },
    }
    assert drift_headline(calm, {"deployed_f1": 0.675}, "v0001") == "No drift in the new data."
    assert drift_headline(None) is None and headline_words(None) is None
    # A test that does not trigger a retrain found drift: named, and said not to have triggered one.
    calm["tests"]["psi"] = {
        "verdict": "drift",
        "features": {"lastmonth_activity": {"verdict": "drift", "statistic": 0.3}},
    }
    assert drift_headline(calm) == "Drift in lastmonth_activity (psi 0.3), but not enough to trigger a retrain."


def test_the_report_and_the_drift_alert_open_with_the_same_headline():
    line = {
        "start": "2024-05-01T10:00:00+00:00",
        "format_version": 1,
        "decision": "drift, redeployed",
        "decision_code": "drift_redeployed",
        "new_rows": 800,
        "deployed_version": "v0002",
        "deployed_version_before": "v0001",
        "scores": {"deployed_f1": 0.675, "new_data_f1": 0.574, "retrained_test_f1": 0.601},
        "drift": drift_record(
            raw={"verdict": "drift", "statistic": 0.574, "threshold": 0.675},
            ks={
                "verdict": "drift",
                "pvalue": 3.2e-05,
                "threshold": 0.01,
                "features": {"lastmonth_activity": {"verdict": "drift", "measure": "pvalue", "measure_value": 3.2e-05}},
            },
        ),
    }
    headline = (
        "Drift in lastmonth_activity (ks p-value 3.2e-05); F1 0.574 vs deployed 0.675 (raw). "
        "The retrained model scores F1 0.601 on the test data, below the 0.675 of v0001 it replaced."
    )
    assert headline_words(TickRecord.from_json(line)) == headline
    text = drift_text(line)
    assert text.startswith(headline + " Drift on 800 new row(s): ") and text.endswith("Retraining.")


# --- fit warnings ----------------------------------------------------------------------


def test_fit_warnings_are_distinct_single_lines_capped_in_length_and_count():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("lbfgs failed to converge\n\nIncrease   the number of iterations", UserWarning, stacklevel=1)
        warnings.warn("lbfgs failed to converge\nIncrease the number of iterations", UserWarning, stacklevel=1)
        warnings.warn("x" * 1000, RuntimeWarning, stacklevel=1)
    lines = fit_warning_lines(caught)
    assert lines[0] == "UserWarning: lbfgs failed to converge Increase the number of iterations"
    assert len(lines) == 2 and lines[1].startswith("RuntimeWarning: xxx") and len(lines[1]) <= 240

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for number in range(MAX_FIT_WARNINGS + 3):
            warnings.warn(f"warning {number}", UserWarning, stacklevel=1)
    lines = fit_warning_lines(caught)
    assert len(lines) == MAX_FIT_WARNINGS and lines[-1] == "and 4 more distinct warning(s)"

    assert fit_warnings_words(["A: one.", "B: two"]) == "Fit warnings: A: one; B: two."
    assert fit_warnings_words([]) is None and fit_warnings_words(None) is None


def test_a_convergence_warning_reaches_the_model_record_manifest_history_report_and_status_page(project):
    project.write_config(training={"max_iter": 1})
    result = project.run("fullprocess.py", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr

    # Not printed raw (path:line: ConvergenceWarning: ...): logged as one line.
    assert "ConvergenceWarning" not in result.stderr and "warnings.warn" not in result.stderr
    logged = [line for line in result.stdout.splitlines() if "fit warning: ConvergenceWarning" in line]
    assert len(logged) == 1 and "WARNING" in logged[0]

    record = json.loads(project.path("models", "trainedmodel.json").read_text())
    fit_warnings = record["fit_warnings"]
    assert len(fit_warnings) == 1 and re.match(r"ConvergenceWarning: \w+ failed to converge", fit_warnings[0])
    manifest = json.loads(project.path("production_deployment", "current", "manifest.json").read_text())
    assert manifest["fit_warnings"] == fit_warnings
    line = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert line["decision_code"] == "bootstrap" and line["warnings"] == fit_warnings
    assert TickRecord.from_json(line).warnings == fit_warnings

    _, text = read_pdf(project.path("models", "report.pdf"))
    assert f"Fit warnings: {fit_warnings[0].rstrip('.')}." in text
    page = client_for(project).get("/").text
    found = re.search(r'<p class="warning" id="fit-warnings">([^<]*)</p>', page)
    assert found and found.group(1) == f"v0001: Fit warnings: {fit_warnings[0].rstrip('.')}."


def test_a_fit_without_warnings_records_none(deployed):
    assert json.loads(deployed.path("models", "trainedmodel.json").read_text())["fit_warnings"] == []
    assert (
        json.loads(deployed.path("production_deployment", "current", "manifest.json").read_text())["fit_warnings"] == []
    )
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert "warnings" not in line
    assert 'id="fit-warnings"' not in client_for(deployed).get("/").text


# --- feature importances ---------------------------------------------------------------


def test_the_report_lists_the_permutation_importance_of_every_schema_feature(deployed):
    config = deployed.config()
    model = load_deployed_model(config.prod_folder)
    test_data = load_test_data(config)
    importances, rows, problem = feature_importances(model, test_data, config.schema)
    assert problem is None and rows == int(test_data[config.schema.target_column].notna().sum())
    assert sorted(item.feature for item in importances) == sorted(config.schema.features)
    assert [item.mean for item in importances] == sorted((item.mean for item in importances), reverse=True)
    assert all(item.std >= 0 for item in importances)
    # Bounded: a sample of the test rows, the same one every time.
    sampled = feature_importances(model, test_data, config.schema, max_rows=3)
    assert sampled[1] == 3 and sampled == feature_importances(model, test_data, config.schema, max_rows=3)

    _, text = read_pdf(deployed.path("models", "report.pdf"))
    table = text.split("Feature importances", 1)[1].split("2. Ingested data", 1)[0]
    assert "feature mean std" in table
    for item in importances:
        assert re.search(rf"{item.feature} -?\d+\.\d{{4}} \d+\.\d{{4}}", table), item.feature


def test_a_drift_tick_report_opens_with_the_headline_of_its_drift_tests(deployed):
    result = deployed.run("fullprocess.py", config="config_production.json", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert line["decision"] == "drift, redeployed"
    headline = headline_words(TickRecord.from_json(line))
    moved = [
        feature
        for test in line["drift"]["tests"].values()
        for feature, values in (test.get("features") or {}).items()
        if values.get("verdict") == "drift"
    ]
    assert moved and headline.startswith("Drift in ") and all(f"{feature} (" in headline for feature in moved)

    _, text = read_pdf(deployed.path("models", "report.pdf"))
    opening = re.match(r"Model report: v0002 Generated [^.]+\.json\. (.*)", text)
    assert opening and opening.group(1).startswith(headline + " 1. Deployed model")


def test_a_one_hot_encoded_feature_gets_one_importance(project):
    project.write_config(schema=SUBSCRIPTIONS_SCHEMA)
    config = project.config()
    model = fit_model(generate_categorical(600, "practice", 21), config)
    test_data = pd.concat([generate_categorical(150, "practice", 22), generate_categorical(150, "source", 23)])
    importances, rows, problem = feature_importances(DeployedModel(model, {}), test_data, config.schema)
    assert problem is None and rows == 300
    assert sorted(item.feature for item in importances) == sorted(config.schema.features)
