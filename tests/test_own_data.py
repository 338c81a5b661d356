"""A user's own data: schema, labels and estimator from the config, categorical features.

Every test builds its data with the generator's categorical variant (subscription customers:
numeric and categorical columns, a few missing values, a Yes/No target) in a temp project.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SUBSCRIPTION_RECORD as RECORD
from conftest import SUBSCRIPTIONS_SCHEMA as SCHEMA
from conftest import _serve, make_categorical_project, stop_server

from drs.config import load_config


@pytest.fixture(scope="module")
def categorical_deployed(tmp_path_factory):
    project = make_categorical_project(tmp_path_factory.mktemp("categorical"))
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    return project


def all_positive_f1(labels: pd.Series) -> float:
    share = (labels == "Yes").mean()
    return 2 * share / (1 + share)


def test_the_practice_bootstrap_deploys_a_model_clearly_above_the_all_positive_baseline(categorical_deployed):
    project = categorical_deployed
    manifest = json.loads(project.path("production_deployment", "manifest.json").read_text())
    test = pd.read_csv(project.path("testdata", "testdata.csv"))
    assert manifest["version"] == "v0001"
    assert manifest["scores"]["f1"] > all_positive_f1(test["churn"]) + 0.1
    final = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert list(final.columns) == ["customer_id", *SCHEMA["numeric_features"], *SCHEMA["categorical_features"], "churn"]
    # The generator leaves a few total_charges empty: ingested as missing, imputed when training.
    assert final["total_charges"].isna().sum() > 0


def test_the_model_learns_the_categories_that_drive_churn(categorical_deployed):
    from drs.deploy import load_deployed_model
    from drs.train import feature_matrix

    config = load_config(categorical_deployed.config_path)
    model = load_deployed_model(config.prod_folder).model
    base = pd.DataFrame([RECORD] * 2)
    base.loc[1, "contract"] = "Two year"
    probabilities = model.predict_proba(feature_matrix(base, config.schema))[:, list(model.classes_).index("Yes")]
    assert set(model.classes_) == {"No", "Yes"}
    assert probabilities[0] > probabilities[1] + 0.2  # a monthly contract churns far more than a two-year one


def test_the_api_answers_records_with_categories_in_the_data_labels(categorical_deployed, tmp_path):
    server = _serve(categorical_deployed, tmp_path)
    try:
        unseen = {**RECORD, "payment_method": "Crypto wallet"}  # never seen in training: ignored by the encoder
        response = server.post(
            "/prediction", json={"records": [RECORD, {**RECORD, "contract": "Two year", "tenure": 60}, unseen]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"][0] == "Yes" and body["predictions"][1] == "No"
        assert len(body["probabilities"]) == 3 and body["probabilities"][0] > 0.5 > body["probabilities"][1]
        assert body["predictions"][2] in ("Yes", "No")

        for record, words in [
            ({**RECORD, "contract": 12}, "'contract' is categorical"),
            ({**RECORD, "tenure": "three"}, "'tenure' must be a number"),
            ({k: v for k, v in RECORD.items() if k != "internet_service"}, "missing feature 'internet_service'"),
        ]:
            bad = server.post("/prediction", json={"records": [record]})
            assert bad.status_code == 400 and words in bad.json()["error"], bad.text

        test_csv = categorical_deployed.path("testdata", "testdata.csv").read_text()
        by_csv = server.post("/prediction", data=test_csv, headers={"Content-Type": "text/csv"})
        by_path = server.post("/prediction", json={"filepath": "testdata/testdata.csv"})
        assert by_csv.status_code == 200 and by_csv.json() == by_path.json()
        assert set(by_csv.json()["predictions"]) == {"Yes", "No"}
        text_in_numeric = (
            "tenure,monthly_charges,total_charges,contract,internet_service,payment_method,"
            "paperless_billing\n3,lots,1,Two year,DSL,Mailed check,No\n"
        )
        bad = server.post("/prediction", data=text_in_numeric, headers={"Content-Type": "text/csv"})
        assert bad.status_code == 400 and "column 'monthly_charges': not a number" in bad.json()["error"]

        stats = server.get("/summarystats").json()
        assert stats["contract"]["mode"] == "Month-to-month" and "mean" in stats["tenure"]
        missing = server.get("/diagnostics").json()["missing_data"]
        assert set(missing) == {"customer_id", *SCHEMA["numeric_features"], *SCHEMA["categorical_features"], "churn"}
        assert server.get("/scoring").json()["f1"] == pytest.approx(
            float(categorical_deployed.path("production_deployment", "latestscore.txt").read_text())
        )
    finally:
        stop_server(server)


def test_a_production_tick_on_shifted_data_finds_chi2_drift_and_redeploys(tmp_path):
    project = make_categorical_project(tmp_path)
    assert project.run("fullprocess.py").returncode == 0
    project.write_config(
        "config_production.json",
        input_folder_path="sourcedata",
        schema=SCHEMA,
        drift={"trigger_tests": ["raw", "chi2"]},
    )
    result = project.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 0, result.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    chi2 = record["drift"]["tests"]["chi2"]
    assert set(chi2["features"]) == set(SCHEMA["categorical_features"])
    assert chi2["features"]["internet_service"]["verdict"] == "drift"
    assert chi2["features"]["internet_service"]["pvalue"] < 1e-6
    assert set(record["drift"]["tests"]["ks"]["features"]) == set(SCHEMA["numeric_features"])
    assert "chi2" in record["drift"]["trigger"]["fired"]
    assert record["decision"] == "drift, redeployed" and record["deployed_version"] == "v0002"
    report = project.path("models", "report.pdf").read_bytes()
    assert report.startswith(b"%PDF")
    diagnostics = json.loads(project.path("models", "diagnostics.json").read_text())
    assert set(diagnostics["predictions"]) == {"Yes", "No"}


@pytest.mark.parametrize(
    "schema, words",
    [
        ({**SCHEMA, "categorical_features": ["contract", "contract"]}, "names column 'contract' twice"),
        ({**SCHEMA, "numeric_features": ["tenure", "churn"]}, "lists the target column 'churn' as a feature"),
        ({**SCHEMA, "target": "churn"}, "unknown schema key(s): target"),
        ({**SCHEMA, "numeric_features": "tenure"}, "schema.numeric_features must be a list"),
        ({**SCHEMA, "positive_label": True}, "schema.positive_label must be a number or a non-empty string"),
    ],
)
def test_a_bad_schema_is_a_config_error_in_one_line(tmp_path, schema, words):
    project = make_categorical_project(tmp_path, schema=schema)
    result = project.run("fullprocess.py")
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not project.path("production_deployment").exists()


@pytest.mark.parametrize(
    "settings, words",
    [
        (
            {"schema": {**SCHEMA, "categorical_features": ["contract", "region"]}},
            "schema column(s) region in no input file",
        ),
        (
            {"estimator": "sklearn.linear_model.NoSuchModel"},
            "estimator 'sklearn.linear_model.NoSuchModel' cannot be imported",
        ),
        (
            {"estimator": "sklearn.ensemble.RandomForestClassifier", "training": {"C": 1.0}},
            "unknown training parameter(s) for sklearn.ensemble.RandomForestClassifier: C",
        ),
        ({"training": {"C": -1.0}}, "invalid training parameter"),
        (
            {"schema": {**SCHEMA, "positive_label": "yes"}},
            "schema.positive_label 'yes' is not a value of column 'churn'",
        ),
    ],
)
def test_a_schema_or_estimator_the_data_refutes_stops_before_deploying(tmp_path, settings, words):
    project = make_categorical_project(tmp_path, **settings)
    result = project.run("fullprocess.py")
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (project.path("production_deployment") / "current").exists()


def test_a_file_bringing_a_third_label_is_rejected_and_the_others_train(tmp_path):
    project = make_categorical_project(tmp_path)
    odd = pd.read_csv(project.path("practicedata", "customers2.csv")).head(20)
    odd["churn"] = "Maybe"
    odd.to_csv(project.path("practicedata", "customers9.csv"), index=False)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    detail = json.loads(project.path("ingesteddata", "ingestedfiles.json").read_text())
    assert set(detail["files"]) == {"customers1.csv", "customers2.csv"}
    assert "Maybe" in detail["rejected"]["customers9.csv"] and "two labels" in detail["rejected"]["customers9.csv"]


def test_numbers_in_a_categorical_column_and_blanks_in_a_numeric_one_are_read_as_a_user_expects(tmp_path):
    from drs.config import Schema
    from drs.ingest import read_validated_csv

    schema = Schema("id", "churn", "Yes", ("charges",), ("senior",), None)
    # A single space is how real exports (IBM's Telco data among them) write "no value".
    frame = read_validated_csv(b"id,senior,charges,churn\r\na,0,1.5,No\r\nb,1, ,Yes\r\nc,,2,\r\n", schema=schema)
    assert frame["senior"].tolist()[:2] == ["0", "1"] and pd.isna(frame["senior"][2])
    assert frame["charges"].isna().tolist() == [False, True, False]
    assert frame["churn"].tolist()[:2] == ["No", "Yes"] and pd.isna(frame["churn"][2])


@pytest.mark.parametrize(
    "estimator, training, has_probabilities",
    [
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20, "random_state": 0}, True),
        ("sklearn.svm.LinearSVC", {"C": 0.5}, False),
    ],
)
def test_another_estimator_from_the_config_trains_deploys_and_serves(tmp_path, estimator, training, has_probabilities):
    project = make_categorical_project(tmp_path, estimator=estimator, training=training)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    config = load_config(project.config_path)
    from drs.deploy import load_deployed_model

    model = load_deployed_model(config.prod_folder).model
    assert type(model[-1]).__name__ == estimator.rsplit(".", 1)[1]
    server = _serve(project, tmp_path)
    try:
        body = server.post("/prediction", json={"records": [RECORD]}).json()
        assert body["predictions"][0] in ("Yes", "No")
        assert ("probabilities" in body) == has_probabilities
    finally:
        stop_server(server)


def test_a_numeric_target_with_other_labels_predicts_those_labels(tmp_path):
    """positive_label may be a number: a 1/2 target is predicted as 1 and 2."""
    project = make_categorical_project(tmp_path, schema={**SCHEMA, "positive_label": 2})
    for path in [*project.path("practicedata").glob("*.csv"), project.path("testdata", "testdata.csv")]:
        frame = pd.read_csv(path)
        frame["churn"] = np.where(frame["churn"] == "Yes", 2, 1)
        frame.to_csv(path, index=False)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    server = _serve(project, tmp_path)
    try:
        body = server.post("/prediction", json={"records": [RECORD, {**RECORD, "contract": "Two year", "tenure": 60}]})
        assert body.json()["predictions"] == [2, 1], body.text
    finally:
        stop_server(server)


def test_a_changed_schema_is_retrained_on_the_next_tick_not_failed_for_ever(tmp_path):
    project = make_categorical_project(tmp_path)
    assert project.run("fullprocess.py").returncode == 0
    narrower = {**SCHEMA, "categorical_features": ["contract", "internet_service", "payment_method"]}
    project.write_config(schema=narrower)
    server = _serve(project, tmp_path)
    try:  # until a tick retrains, the API says why it cannot answer: never a 500
        for response in (server.post("/prediction", json={"records": [RECORD]}), server.get("/scoring")):
            assert response.status_code == 409 and "the next tick retrains it" in response.json()["error"]
    finally:
        stop_server(server)
    result = project.run("fullprocess.py")  # no new data, but v0001 cannot take the configured columns
    assert result.returncode == 0, result.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert record["decision"] == "schema changed, redeployed" and record["deployed_version"] == "v0002"
    manifest = json.loads(project.path("production_deployment", "manifest.json").read_text())
    assert manifest["schema"]["categorical_features"] == narrower["categorical_features"]
    again = project.run("fullprocess.py")
    assert again.returncode == 0
    assert json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])["decision"] == "no new data"


def test_an_odd_export_sorted_first_is_rejected_not_the_files_that_agree(tmp_path):
    project = make_categorical_project(tmp_path)
    odd = pd.read_csv(project.path("practicedata", "customers1.csv")).head(300)
    odd["churn"] = odd["churn"].str.lower()
    odd["customer_id"] = "x" + odd["customer_id"]
    odd.to_csv(project.path("practicedata", "a_export.csv"), index=False)
    padded = pd.read_csv(project.path("practicedata", "customers2.csv"))
    padded["churn"] = padded["churn"] + " "  # exports pad text: "Yes " is "Yes"
    padded.to_csv(project.path("practicedata", "customers2.csv"), index=False)
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    detail = json.loads(project.path("ingesteddata", "ingestedfiles.json").read_text())
    assert set(detail["files"]) == {"customers1.csv", "customers2.csv"}
    assert "'no', 'yes'" in detail["rejected"]["a_export.csv"]


def test_a_positive_label_of_the_wrong_kind_says_so(tmp_path):
    project = make_categorical_project(tmp_path, schema={**SCHEMA, "positive_label": 1})
    result = project.run("fullprocess.py")
    assert result.returncode == 1 and "schema.positive_label 1 is a number" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"estimator": "sklearn.linear_model.LinearRegression", "training": {}}, "is not a scikit-learn classifier"),
        ({"estimator": "sklearn.cluster.KMeans", "training": {}}, "is not a scikit-learn classifier"),
    ],
)
def test_an_estimator_that_is_no_classifier_is_a_config_error(tmp_path, settings, words):
    project = make_categorical_project(tmp_path, **settings)
    result = project.run("fullprocess.py")
    assert result.returncode == 2 and words in result.stderr, result.stderr


def test_class_weights_in_the_data_labels_and_a_dense_only_estimator_train(tmp_path):
    project = make_categorical_project(tmp_path, training={"C": 1.0, "class_weight": {"Yes": 3, "No": 1}})
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    # customer_id as a category: a thousand one-hot columns, which HistGradientBoosting takes only dense.
    wide = {**SCHEMA, "id_column": None, "categorical_features": ["customer_id", *SCHEMA["categorical_features"]]}
    (tmp_path / "hgb").mkdir()
    project = make_categorical_project(
        tmp_path / "hgb",
        schema=wide,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        training={"max_iter": 20},
    )
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr


def test_a_model_no_better_than_calling_everyone_a_churner_is_flagged(tmp_path):
    project = make_categorical_project(
        tmp_path, estimator="sklearn.dummy.DummyClassifier", training={"strategy": "most_frequent"}
    )
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert record["scores"]["retrained_test_f1"] == 0.0
    assert "no better than calling every row 'Yes'" in record["warning"]
    assert record["scores"]["all_positive_f1"] == pytest.approx(
        all_positive_f1(pd.read_csv(project.path("testdata", "testdata.csv"))["churn"]), abs=1e-6
    )


def test_make_serve_s_check_names_a_misspelt_estimator_parameter_before_cron_meets_it(tmp_path):
    project = make_categorical_project(tmp_path, training={"C": 1.0, "clas_weight": "balanced"})
    result = project.run("app.py", "--check")
    assert (
        result.returncode == 2 and "unknown training parameter(s)" in result.stderr and "clas_weight" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1
