"""Diagnostics, reports and the status page on a schema with categorical features and a text target."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import OFFLINE_INDEX, Project
from PIL import Image
from pypdf import PdfReader

from drs import figures
from drs.config import COURSE_SCHEMA, Schema
from drs.deploy import load_deployed_model
from drs.diagnostics import dataframe_summary, missing_data
from drs.figures import distribution_pngs
from drs.report.gather import confusion_matrix_inputs
from drs.score import load_test_data
from generate_data import generate, generate_categorical

CATEGORICAL = Schema(
    id_column="customer_id",
    target_column="churn",
    positive_label="Yes",
    numeric_features=("tenure", "monthly_charges", "total_charges"),
    categorical_features=("contract", "internet_service", "payment_method", "paperless_billing"),
    labels=None,
)
SCHEMA_CONFIG = {
    "id_column": CATEGORICAL.id_column,
    "target_column": CATEGORICAL.target_column,
    "positive_label": CATEGORICAL.positive_label,
    "numeric_features": list(CATEGORICAL.numeric_features),
    "categorical_features": list(CATEGORICAL.categorical_features),
}


def test_summary_of_categorical_features():
    data = generate_categorical(500, "practice", 1)
    data.loc[:9, "contract"] = None
    summary = dataframe_summary(data=data, schema=CATEGORICAL)

    assert list(summary) == list(CATEGORICAL.features)
    assert summary["tenure"] == {
        "mean": pytest.approx(data["tenure"].mean()),
        "median": pytest.approx(data["tenure"].median()),
        "std": pytest.approx(data["tenure"].std()),
    }
    contract = summary["contract"]
    expected = data["contract"].value_counts()
    assert contract["counts"] == {name: int(count) for name, count in expected.items()}
    assert list(contract["counts"].values()) == sorted(contract["counts"].values(), reverse=True)
    assert contract["mode"] == expected.index[0] and contract["categories"] == 3 and contract["missing"] == 10
    assert sum(contract["counts"].values()) + contract["missing"] == len(data)
    json.dumps(summary)  # served by /summarystats and written to diagnostics.json as it is

    # Text columns count their gaps like the others.
    missing = missing_data(data=data)
    assert set(missing) == set(data.columns) and missing["contract"] == pytest.approx(2.0)


def test_summary_lists_the_20_most_frequent_categories_ties_by_name():
    # Category c<k> occurs k times (k = 1..30); "a" and "b" tie with c30 at 30.
    values = [f"c{k:02d}" for k in range(1, 31) for _ in range(k)] + ["b"] * 30 + ["a"] * 30 + [None] * 7
    schema = Schema(
        id_column=None,
        target_column="y",
        positive_label=1,
        numeric_features=(),
        categorical_features=("plan",),
        labels=None,
    )
    summary = dataframe_summary(data=pd.DataFrame({"plan": values}), schema=schema)["plan"]
    assert list(summary["counts"])[:4] == ["a", "b", "c30", "c29"]
    assert len(summary["counts"]) == 20 and list(summary["counts"])[-1] == "c13"
    assert summary["mode"] == "a" and summary["categories"] == 32 and summary["missing"] == 7


def test_course_summary_keeps_its_shape():
    data = pd.DataFrame(
        {
            "lastmonth_activity": [1.0, 2.0, np.nan],
            "lastyear_activity": [3.0, 4.0, 5.0],
            "number_of_employees": [np.nan, np.nan, np.nan],
        }
    )
    summary = dataframe_summary(data=data)
    assert summary == {
        "lastmonth_activity": {"mean": 1.5, "median": 1.5, "std": pytest.approx(0.707107)},
        "lastyear_activity": {"mean": 4.0, "median": 4.0, "std": 1.0},
        "number_of_employees": {"mean": None, "median": None, "std": None},
    }
    assert dataframe_summary(data=data, schema=COURSE_SCHEMA) == summary


def test_distribution_plots_stay_a_grid_of_three_across_for_many_features():
    rng = np.random.default_rng(0)
    numeric = tuple(f"number_{i}" for i in range(10))
    categorical = tuple(f"category_{i}" for i in range(10))
    schema = Schema(
        id_column=None,
        target_column="y",
        positive_label=1,
        numeric_features=numeric,
        categorical_features=categorical,
        labels=None,
    )

    def frame(shift):
        columns = {name: rng.normal(shift, 1, 300) for name in numeric}
        columns.update({name: rng.choice([f"value {k}" for k in range(15)], 300) for name in categorical})
        return pd.DataFrame(columns)

    pngs = distribution_pngs(frame(0), frame(1), "training data", schema)
    course = distribution_pngs(generate(100, "practice", 1), generate(100, "source", 2), "training data")
    assert len(course) == 1
    width, row = Image.open(io.BytesIO(course[0])).size
    # 20 plots: 4 rows of 3 on the first image, 3 rows (8 plots) on the second; each row as wide and
    # as tall as the course's one row of 3.
    assert [Image.open(io.BytesIO(png)).size for png in pngs] == [(width, 4 * row), (width, 3 * row)]


@pytest.fixture(scope="module")
def categorical_project(tmp_path_factory) -> Project:
    """A project on categorical data: the practice model bootstrapped, then a tick on the source regime
    (which the chi-square test, a trigger here, finds drifted)."""
    root = tmp_path_factory.mktemp("categorical") / "project"
    for folder in ("practicedata", "sourcedata", "testdata"):
        (root / folder).mkdir(parents=True)
    generate_categorical(600, "practice", 11).to_csv(root / "practicedata" / "a.csv", index=False)
    generate_categorical(600, "practice", 12).to_csv(root / "practicedata" / "b.csv", index=False)
    generate_categorical(800, "source", 13).to_csv(root / "sourcedata" / "c.csv", index=False)
    test = pd.concat([generate_categorical(200, "practice", 15), generate_categorical(200, "source", 16)])
    test.to_csv(root / "testdata" / "testdata.csv", index=False)
    project = Project(root)
    settings = {"schema": SCHEMA_CONFIG, "drift": {"trigger_tests": ["chi2"]}}
    project.write_config(**settings)
    project.write_config("config_production.json", input_folder_path="sourcedata", **settings)
    for config in ("config.json", "config_production.json"):
        result = project.run("fullprocess.py", config=config, env=OFFLINE_INDEX)
        assert result.returncode == 0, result.stderr
    last = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert last["decision"] == "drift, redeployed" and last["drift"]["trigger"]["fired"] == ["chi2"]
    return project


def test_the_report_shows_categorical_data_drift_and_scores(categorical_project):
    project = categorical_project
    reader = PdfReader(project.path("models", "report.pdf"))
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    drift = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])["drift"]["tests"]

    assert "Model report: v0002" in text and "no data yet" not in text
    assert "positives (churn = Yes)" in text and "ROC AUC n/a" not in text
    # The categorical summary: number of categories and the mode of each feature.
    assert "Categorical features" in text
    final = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    for name in CATEGORICAL.categorical_features:
        counts = final[name].value_counts()
        assert f"{name} {len(counts)} {counts.index[0]}" in text
    # Every feature under each test that compared it: KS for numbers, chi-square for categories, PSI for all.
    for test, names in (
        ("ks", CATEGORICAL.numeric_features),
        ("chi2", CATEGORICAL.categorical_features),
        ("psi", CATEGORICAL.features),
    ):
        assert set(drift[test]["features"]) == set(names)
        for name in names:
            assert f"{test} {name} {drift[test]['features'][name]['statistic']:.4f}" in text
    assert drift["chi2"]["features"]["internet_service"]["pvalue"] < 1e-10
    images = sum(
        1
        for page in reader.pages
        for ref in ((page.get("/Resources") or {}).get("/XObject") or {}).values()
        if ref.get_object().get("/Subtype") == "/Image"
    )
    assert images >= 3  # confusion matrix, distributions, score history


def drawn_labels(config, monkeypatch) -> dict:
    """The labels reporting hands scikit-learn's confusion-matrix plot for the deployed model."""
    seen = {}
    drawn = figures.ConfusionMatrixDisplay.from_predictions

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return drawn(*args, **kwargs)

    monkeypatch.setattr(figures.ConfusionMatrixDisplay, "from_predictions", spy)
    matrix = confusion_matrix_inputs(load_deployed_model(config.prod_folder), load_test_data(config), config.schema)
    png = figures.confusion_matrix_png(matrix)
    assert png.startswith(b"\x89PNG")
    return seen


def test_the_confusion_matrix_is_labelled_with_the_models_classes(categorical_project, monkeypatch):
    seen = drawn_labels(categorical_project.config(), monkeypatch)
    assert seen["labels"] == ["No", "Yes"] and seen["display_labels"] == ["No", "Yes"]


def test_the_course_confusion_matrix_keeps_its_0_and_1(deployed, monkeypatch):
    seen = drawn_labels(deployed.config(), monkeypatch)
    assert seen["labels"] == [0, 1] and seen["display_labels"] == ["0", "1"]


def test_diagnostics_json_summarises_categories(categorical_project):
    report = json.loads(categorical_project.path("models", "diagnostics.json").read_text())
    summary = report["summary_statistics"]
    assert set(summary) == set(CATEGORICAL.features)
    assert set(summary["contract"]) == {"counts", "mode", "categories", "missing"}
    assert set(summary["tenure"]) == {"mean", "median", "std"}
    assert set(report["predictions"]) <= {"No", "Yes"}


def test_the_status_page_lists_every_feature_of_the_drift_tests(categorical_project):
    from drs.api import create_app

    page = create_app(categorical_project.config_path).test_client().get("/").get_data(as_text=True)
    assert 'id="drift-features"' in page
    for name in CATEGORICAL.categorical_features:
        assert f"<td>chi2</td><td>{name}</td>" in page
    for name in CATEGORICAL.numeric_features:
        assert f"<td>ks</td><td>{name}</td>" in page
    assert page.count("<td>psi</td><td>") == len(CATEGORICAL.features)
    assert "<th>decided by</th>" in page and "(fdr)</td>" in page  # the measure that decided each verdict
