"""Training and scoring, as scripts and as functions."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from drs.config import FEATURE_COLUMNS

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


@pytest.fixture
def trained(project):
    for script in ("ingestion.py", "training.py"):
        result = project.run(script)
        assert result.returncode == 0, result.stderr
    return project


def test_training_writes_the_course_model(trained):
    with open(trained.path("models", "trainedmodel.pkl"), "rb") as handle:
        model = pickle.load(handle)
    classifier = model.named_steps["classifier"]
    assert isinstance(classifier, LogisticRegression)
    params = classifier.get_params()
    assert (params["C"], params["solver"], params["max_iter"], params["tol"], params["random_state"]) == (
        1.0,
        "liblinear",
        100,
        1e-4,
        0,
    )
    assert params["l1_ratio"] == 0.0 and params["fit_intercept"] and params["intercept_scaling"] == 1
    # Same coefficients as the course's plain LogisticRegression on the same data (no gaps in practicedata)
    data = pd.read_csv(trained.path("ingesteddata", "finaldata.csv"))
    reference = LogisticRegression(C=1.0, solver="liblinear", max_iter=100, tol=1e-4, random_state=0)
    reference.fit(data[list(FEATURE_COLUMNS)].to_numpy(), data["exited"])
    np.testing.assert_allclose(classifier.coef_, reference.coef_)


def test_training_overrides_from_config(project):
    project.write_config(training={"C": 0.01, "max_iter": 50})
    project.run("ingestion.py")
    assert project.run("training.py").returncode == 0
    with open(project.path("models", "trainedmodel.pkl"), "rb") as handle:
        params = pickle.load(handle).named_steps["classifier"].get_params()
    assert params["C"] == 0.01 and params["max_iter"] == 50


def test_bad_training_parameter_is_a_one_line_error(project):
    project.write_config(training={"not_a_parameter": 1})
    project.run("ingestion.py")
    result = project.run("training.py")
    assert result.returncode == 2 and "unknown training parameter(s)" in result.stderr
    assert "not_a_parameter" in result.stderr and "Traceback" not in result.stderr


def test_missing_feature_values_are_imputed_with_training_medians(project):
    inbox = project.path("inbox")
    inbox.mkdir()
    rows = "".join(f"c{i},{i},{i * 10},{5 + i % 3},{int(i > 10)}\n" for i in range(20)) + "gap,,100,,1\n"
    (inbox / "a.csv").write_text(HEADER + rows)
    project.write_config(input_folder_path="inbox")
    project.run("ingestion.py")
    assert project.run("training.py").returncode == 0
    with open(project.path("models", "trainedmodel.pkl"), "rb") as handle:
        model = pickle.load(handle)
    medians = model.named_steps["impute"].statistics_
    assert medians[0] == pytest.approx(np.median(list(range(20))))
    assert model.predict(np.array([[np.nan, 100.0, np.nan]])).shape == (1,)


def test_one_class_training_data_is_a_clear_error(project):
    inbox = project.path("inbox")
    inbox.mkdir()
    (inbox / "a.csv").write_text(HEADER + "a,1,2,3,0\nb,4,5,6,0\n")
    project.write_config(input_folder_path="inbox")
    project.run("ingestion.py")
    result = project.run("training.py")
    assert result.returncode == 1 and "only one class" in result.stderr


def test_training_without_ingested_data_says_what_to_do(project):
    result = project.run("training.py")
    assert result.returncode == 1 and "run ingestion.py first" in result.stderr


def test_scoring_writes_the_f1_alone_and_it_is_correct(trained):
    result = trained.run("scoring.py")
    assert result.returncode == 0, result.stderr
    written = trained.path("models", "latestscore.txt").read_text().strip()
    with open(trained.path("models", "trainedmodel.pkl"), "rb") as handle:
        model = pickle.load(handle)
    test = pd.read_csv(trained.path("testdata", "testdata.csv"))
    expected = f1_score(test["exited"], model.predict(test[list(FEATURE_COLUMNS)].to_numpy()))
    assert float(written) == pytest.approx(expected)
    assert expected > 0.6  # the bundled data is learnable: well above predicting "exited" for all (~0.54)


def test_scoring_without_test_data_is_a_one_line_error(trained):
    trained.path("testdata", "testdata.csv").unlink()
    result = trained.run("scoring.py")
    assert result.returncode == 1 and "test data not found" in result.stderr and "Traceback" not in result.stderr
