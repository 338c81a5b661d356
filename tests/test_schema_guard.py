"""What a deployed model fixes: its labels (ingestion rejects a file that disagrees), its schema (the
API refuses, and says so, when its config takes other features), and the cheap, import-safe check
of the estimator and its parameters."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import copy_project, make_categorical_project

from drs.config import ConfigError
from drs.files import INGESTED_DETAIL_FILE
from drs.ingest import deployed_labels, merge_multiple_dataframe
from drs.train import check_training_parameters


@pytest.fixture(scope="module")
def categorical_template(tmp_path_factory):
    project = make_categorical_project(tmp_path_factory.mktemp("labels"))
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def categorical(categorical_template, tmp_path):
    return copy_project(categorical_template, tmp_path / "project")


def add_lower_case_export(project, rows: int = 1500):
    """A new export larger than the whole history whose negative label is spelt `no`."""
    from generate_data import generate_categorical

    frame = generate_categorical(rows, "practice", 77)
    frame["churn"] = frame["churn"].replace({"No": "no"})
    frame.to_csv(project.path("practicedata", "z_export.csv"), index=False, lineterminator="\n")


# --- a deployed model's labels are fixed ---------------------------------------------


def test_a_larger_export_with_another_spelling_is_rejected_not_the_history(categorical):
    add_lower_case_export(categorical)
    config = categorical.config()
    assert deployed_labels(config) == ("v0001", ("No", "Yes"))

    result = merge_multiple_dataframe(config)

    assert set(result.ingested) == {"customers1.csv", "customers2.csv"}
    assert "'no'" in result.rejected["z_export.csv"] and "deployed model v0001" in result.rejected["z_export.csv"]
    record = categorical.path("ingesteddata", "ingestedfiles.txt").read_text().split()
    assert record == ["customers1.csv", "customers2.csv"]
    assert json.loads(categorical.path("ingesteddata", INGESTED_DETAIL_FILE).read_text())["labels"] == ["No", "Yes"]


def test_the_tick_keeps_the_history_and_does_not_fail_in_drift(categorical):
    add_lower_case_export(categorical)
    result = categorical.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    assert "never saw" not in result.stderr
    record = categorical.path("ingesteddata", "ingestedfiles.txt").read_text().split()
    assert record == ["customers1.csv", "customers2.csv"]


def test_a_version_without_recorded_labels_uses_the_model_classes(categorical):
    # A version ingested before the labels were recorded: its model's classes_ say them.
    detail = categorical.path("production_deployment", "current", INGESTED_DETAIL_FILE)
    record = json.loads(detail.read_text())
    del record["labels"]
    detail.unlink()  # the version's own copy: replaced, never written through
    detail.write_text(json.dumps(record))
    add_lower_case_export(categorical)

    assert deployed_labels(categorical.config()) == ("v0001", ("No", "Yes"))
    assert "z_export.csv" in merge_multiple_dataframe(categorical.config(), write=False).rejected


def test_without_a_deployed_model_the_majority_still_decides(tmp_path):
    project = make_categorical_project(tmp_path)
    add_lower_case_export(project, rows=300)  # smaller than the history: the odd one out
    config = project.config()
    assert deployed_labels(config) is None
    assert set(merge_multiple_dataframe(config, write=False).rejected) == {"z_export.csv"}


def test_a_model_trained_for_another_positive_label_fixes_nothing(categorical):
    categorical.write_config(
        schema={**json.loads(categorical.config_path.read_text())["schema"], "positive_label": "No"}
    )
    assert deployed_labels(categorical.config()) is None


# --- the estimator checked without a full fit, imported only from allowed modules -----


def project_config(tmp_path, **settings):
    from conftest import make_project

    project = make_project(tmp_path)
    project.write_config(**settings)
    return project.config()


def test_the_parameter_check_never_fits_the_real_size(tmp_path, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier

    sizes = []
    real_fit = RandomForestClassifier.fit

    def fit(self, *args, **kwargs):
        sizes.append(self.n_estimators)
        assert self.n_estimators <= 10, "the check fitted the real number of trees"
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(RandomForestClassifier, "fit", fit)
    config = project_config(
        tmp_path,
        estimator="sklearn.ensemble.RandomForestClassifier",
        training={"n_estimators": 20000, "n_jobs": -1},
    )
    check_training_parameters(config)
    assert sizes and max(sizes) <= 10


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"estimator": "sklearn.ensemble.RandomForestClassifier", "training": {"n_estimators": -3}}, "n_estimators"),
        ({"estimator": "sklearn.ensemble.RandomForestClassifier", "training": {"max_depth": "deep"}}, "max_depth"),
        # Only a fit says this one: lbfgs takes no L1 penalty.
        ({"training": {"solver": "lbfgs", "l1_ratio": 1.0}}, "lbfgs"),
        ({"estimator": "sklearn.ensemble.RandomForestClassifier", "training": {"C": 1.0}}, "unknown training"),
    ],
)
def test_bad_parameters_are_still_config_errors(tmp_path, settings, words):
    config = project_config(tmp_path, **settings)
    with pytest.raises(ConfigError, match=words):
        check_training_parameters(config)


def write_module(folder, name: str) -> None:
    marker = folder / f"{name}.imported"
    (folder / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom sklearn.linear_model import LogisticRegression as Classifier\n"
    )


def test_an_estimator_outside_the_allowed_modules_is_never_imported(tmp_path, monkeypatch):
    modules = tmp_path / "modules"
    modules.mkdir()
    write_module(modules, "drs_probe_outside")
    monkeypatch.syspath_prepend(str(modules))
    config = project_config(tmp_path, estimator="drs_probe_outside.Classifier", training={})

    with pytest.raises(ConfigError, match="estimator_modules"):
        check_training_parameters(config)
    assert not (modules / "drs_probe_outside.imported").exists()
    assert "drs_probe_outside" not in sys.modules


def test_a_module_the_config_allows_is_used(tmp_path, monkeypatch):
    modules = tmp_path / "modules"
    modules.mkdir()
    write_module(modules, "drs_probe_allowed")
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.delitem(sys.modules, "drs_probe_allowed", raising=False)
    config = project_config(
        tmp_path, estimator="drs_probe_allowed.Classifier", estimator_modules=["drs_probe_allowed"], training={}
    )
    check_training_parameters(config)
    assert (modules / "drs_probe_allowed.imported").exists()
    shutil.rmtree(modules)


@pytest.mark.parametrize("value", ["sklearn", [1], ["not a module"], [""]])
def test_estimator_modules_is_checked(tmp_path, value):
    with pytest.raises(ConfigError, match="estimator_modules"):
        project_config(tmp_path, estimator_modules=value)


# --- a model trained for another schema than the API's is refused, and said so ----------

REORDERED = {
    "id_column": "corporation",
    "target_column": "exited",
    "positive_label": 1,
    "numeric_features": ["number_of_employees", "lastyear_activity", "lastmonth_activity"],
}
COURSE_RECORD = {"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}


def metric(client, name: str) -> float:
    from conftest import scrape

    values = scrape(client)
    return values[(name, ())]


def assert_refuses(client, version: str) -> None:
    for response in (
        client.post("/prediction", json={"records": [COURSE_RECORD]}),
        client.post("/prediction", json={"filepath": "testdata/testdata.csv"}),
        client.get("/scoring"),
    ):
        assert response.status_code == 409, response.get_data(as_text=True)
        assert f"deployed model {version} was trained for another schema" in response.get_json()["error"]
    health = client.get("/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded" and body["version"] == version and "another schema" in body["problem"]
    assert metric(client, "drs_model_schema_mismatch") == 1 and metric(client, "drs_model_degraded") == 1
    assert metric(client, "drs_model_loaded") == 1


def assert_serves(client, version: str) -> None:
    response = client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert response.status_code == 200 and response.get_json()["version"] == version, response.get_data(as_text=True)
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["version"] == version and "problem" not in health
    assert metric(client, "drs_model_schema_mismatch") == 0 and metric(client, "drs_model_degraded") == 0


def test_an_api_on_the_old_config_refuses_a_model_of_reordered_features(deployed, caplog):
    from conftest import client_for

    from drs.deploy import rollback

    old_api = client_for(deployed)  # its config loaded now, as a running API holds it
    assert_serves(old_api, "v0001")
    deployed.write_config(schema=REORDERED)
    result = deployed.run("fullprocess.py")  # the schema changed: retrained and redeployed as v0002
    assert result.returncode == 0, result.stderr
    new_api = client_for(deployed)

    assert_refuses(old_api, "v0002")  # was: /scoring 0.053 (real 0.675), predictions wrong, /health ok
    assert_serves(new_api, "v0002")
    scores = {client.get("/scoring").status_code for client in (old_api, new_api)}
    assert scores == {409, 200}

    with caplog.at_level("WARNING", logger="deployment"):
        assert rollback(deployed.config()) == "v0001"
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "crosses a schema change: v0001 was trained for another numeric_features than v0002" in said
    assert "next tick retrains" in said
    assert_refuses(new_api, "v0001")
    assert_serves(old_api, "v0001")


def test_a_rollback_within_one_schema_says_nothing_of_schemas(deployed, caplog):
    from drs.deploy import rollback
    from drs.production import production_store, schema_crossing

    config = deployed.config()
    store = production_store(config)
    assert schema_crossing(store, "v0001", None, config.schema.as_record()) is None
    assert schema_crossing(store, "v0001", "v0001", REORDERED) is not None
    with caplog.at_level("WARNING", logger="deployment"), pytest.raises(Exception, match="nothing to roll back"):
        rollback(config)
    assert "schema" not in caplog.text
