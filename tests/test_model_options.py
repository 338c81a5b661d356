"""The model options a user tunes the pipeline with: numeric scaling and a decision threshold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import client_for
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.preprocessing import StandardScaler

from drs.config import ConfigError, load_config
from drs.ingest import read_final_data
from drs.model_data import feature_matrix, positive_probabilities
from drs.train import build_model, fit_model


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("scale_numeric", "yes", "'scale_numeric' must be true or false"),
        ("decision_threshold", 1.0, "'decision_threshold' must be a probability strictly between 0 and 1"),
        ("decision_threshold", 0, "'decision_threshold' must be a probability strictly between 0 and 1"),
        ("decision_threshold", True, "'decision_threshold' must be a probability strictly between 0 and 1"),
    ],
)
def test_bad_values_are_one_line_config_errors(project, key, value, words):
    project.write_config(**{key: value})
    with pytest.raises(ConfigError, match=words):
        load_config(project.config_path)


def test_by_default_the_model_is_the_courses(project):
    model = build_model(project.config())
    assert [name for name, _ in model.steps] == ["impute", "classifier"]
    assert type(model[-1]).__name__ == "LogisticRegression"


def test_scaling_and_a_threshold_change_the_pipeline_as_configured(project):
    assert project.run("ingestion.py").returncode == 0
    project.write_config(scale_numeric=True, decision_threshold=0.8)
    config = project.config()
    data = read_final_data(config)
    model = fit_model(data, config)
    assert isinstance(model.named_steps["scale"], StandardScaler)
    assert isinstance(model[-1], FixedThresholdClassifier) and model[-1].threshold == 0.8
    features = feature_matrix(data, config.schema)
    probabilities = positive_probabilities(model, features, config.schema)
    # A row is positive exactly when its probability reaches the threshold, not 0.5.
    assert np.array_equal(model.predict(features) == 1, probabilities >= 0.8)
    assert ((probabilities >= 0.5) & (probabilities < 0.8)).any()  # rows the threshold decides


def test_the_api_answers_with_the_threshold_a_deployed_model_was_trained_with(project):
    project.write_config(decision_threshold=0.6)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    rows = read_final_data(project.config())
    records = rows[list(project.config().schema.features)].head(50).to_dict("records")
    answer = client_for(project).post("/prediction", json={"records": records}).get_json()
    labels, probabilities = np.array(answer["predictions"]), np.array(answer["probabilities"])
    assert np.array_equal(labels == 1, probabilities >= 0.6)


def test_turning_an_option_on_retrains_on_the_next_tick_and_leaving_it_off_does_not(deployed):
    quiet = deployed.run("fullprocess.py")
    assert quiet.returncode == 0 and last_decision(deployed) == "no_new_data"  # the defaults match the model
    deployed.write_config(scale_numeric=True)
    result = deployed.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    assert last_decision(deployed) == "config_redeployed"
    assert deployed.run("fullprocess.py").returncode == 0 and last_decision(deployed) == "no_new_data"


def last_decision(project) -> str:
    return json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])["decision_code"]


def test_the_feature_matrix_takes_categories_by_position_whatever_the_index():
    from drs.config import Schema

    schema = Schema(None, "churn", "Yes", ("tenure",), ("contract",))
    data = pd.DataFrame(
        {"tenure": [1.0, 2.0, 3.0], "contract": ["monthly", "yearly", "two-year"], "churn": [None, "Yes", "No"]}
    )
    labelled = data[data["churn"].notna()]  # index 1 and 2
    matrix = feature_matrix(labelled, schema)
    assert matrix["contract"].tolist() == ["yearly", "two-year"] and matrix["tenure"].tolist() == [2.0, 3.0]
