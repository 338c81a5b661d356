"""Category normalisation (drs/categories.py) and the API's warnings about unseen categories.

Unit tests of the normalisation and of the categories a fitted pipeline knows; ingestion of padded
files; a tick on a file that only pads its categories; the API in process (Flask's test client).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SUBSCRIPTION_RECORD, SUBSCRIPTIONS_SCHEMA, Project, client_for, copy_project

from drs import categories
from drs.api import create_app
from drs.categories import (
    MAX_WARNINGS,
    UNSEEN_WARNING,
    known_categories,
    normalize_categories,
    normalize_value,
    unseen_categories,
)
from drs.config import ConfigError, load_config
from drs.ingest import merge_multiple_dataframe, read_final_data
from drs.score import load_test_data
from drs.train import build_model, feature_matrix
from generate_data import generate_categorical

SMALL_SCHEMA = {
    "id_column": None,
    "target_column": "churn",
    "positive_label": "Yes",
    "numeric_features": ["tenure"],
    "categorical_features": ["home", "plan"],
}
PADDED = {
    **SUBSCRIPTION_RECORD,
    "contract": "  Month-to-month ",
    "internet_service": "Fiber \t optic",
    "payment_method": "\u00a0Electronic   check\u3000",
}


def small_project(tmp_path, **settings) -> Project:
    root = tmp_path / "project"
    for folder in ("practicedata", "testdata"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    project = Project(root)
    project.write_config(schema=SMALL_SCHEMA, **settings)
    return project


# --- the normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [object, "str"])
def test_trim_trims_collapses_inner_whitespace_keeps_case_and_missing(dtype):
    values = [" owner ", "owner", "Fiber  optic", "a\t\r\nb", "\u00a0Rent\u3000", None, "", "   ", "Owner"]
    frame = pd.DataFrame({"home": pd.Series(values, dtype=dtype), "tenure": np.arange(9, dtype=np.float64)})
    before = frame["tenure"].to_numpy().copy()

    normalize_categories(frame, ["home"])

    home = frame["home"]
    assert home[:5].tolist() == ["owner", "owner", "Fiber optic", "a b", "Rent"]
    # Missing stays missing; a value that is only whitespace becomes missing, as an empty cell is.
    assert home[5:8].isna().all() and home.notna().sum() == 6
    assert home[8] == "Owner"  # "trim" keeps the case
    assert home.dtype == dtype  # the column keeps its dtype
    assert frame["tenure"].to_numpy().tolist() == before.tolist()


def test_casefold_applies_nfkc_and_lower_cases_after_trimming():
    values = ["Ｏｗｎｅｒ", " OWNER ", "owner", "Straße", "Fiber\u3000 OPTIC", None]
    folded = normalize_categories(pd.DataFrame({"home": pd.Series(values, dtype="str")}), ["home"], "casefold")
    assert folded["home"][:5].tolist() == ["owner", "owner", "owner", "strasse", "fiber optic"]
    assert pd.isna(folded["home"][5])
    assert [normalize_value(value, "casefold") for value in values[:5]] == folded["home"][:5].tolist()
    assert [normalize_value(value) for value in values[:2]] == ["Ｏｗｎｅｒ", "OWNER"]


def test_a_value_that_normalises_to_a_missing_spelling_is_missing():
    frame = pd.DataFrame({"home": [" unknown ", "UNKNOWN", "known"]})
    assert normalize_categories(frame.copy(), ["home"], "trim", ["unknown"])["home"].isna().tolist() == [
        True,
        False,
        False,
    ]
    assert normalize_categories(frame.copy(), ["home"], "casefold", ["Unknown"])["home"].isna().tolist() == [
        True,
        True,
        False,
    ]


def test_numbers_columns_are_left_alone_and_an_unknown_mode_is_refused():
    frame = pd.DataFrame({"code": [1.0, np.nan, 3.0]})
    assert normalize_categories(frame, ["code"])["code"].tolist()[::2] == [1.0, 3.0]
    with pytest.raises(ValueError, match="lower"):
        normalize_value("a", "lower")


@pytest.mark.parametrize("dtype", [object, "str", "string[pyarrow]"])
def test_every_unicode_whitespace_is_trimmed_and_collapsed_in_every_kind_of_column(dtype):
    whitespace = "".join(chr(code) for code in range(0x110000) if chr(code).isspace())
    assert "\u00a0" in whitespace and "\u3000" in whitespace  # the no-break and the ideographic space
    text = f"{whitespace}x{whitespace}y z{whitespace}"
    frame = pd.DataFrame({"home": pd.Series([text, whitespace], dtype=dtype)})
    home = normalize_categories(frame, ["home"])["home"]
    assert home[0] == normalize_value(text) == "x y z" and pd.isna(home[1])


def test_the_config_key_defaults_to_trim_and_a_bad_value_is_one_line_naming_it(tmp_path):
    project = small_project(tmp_path)
    assert load_config(project.config_path).normalize_categories == "trim"
    project.write_config(schema=SMALL_SCHEMA, normalize_categories="casefold")
    assert load_config(project.config_path).normalize_categories == "casefold"
    project.write_config(schema=SMALL_SCHEMA, normalize_categories="lower")
    with pytest.raises(ConfigError) as raised:
        load_config(project.config_path)
    message = str(raised.value)
    assert "'normalize_categories'" in message and '"trim" or "casefold"' in message and "\n" not in message


# --- the categories a model knows ------------------------------------------------------------


def fitted_small_model(tmp_path, **settings):
    config = load_config(small_project(tmp_path, **settings).config_path)
    home = ["owner"] * 10 + ["rent"] * 8 + ["mortgage", "other"]
    data = pd.DataFrame({"tenure": np.arange(20.0), "home": home, "plan": ["basic", "gold"] * 10})
    labels = np.array(["Yes", "No"] * 10, dtype=object)
    return build_model(config).fit(feature_matrix(data, config.schema), labels), config


def test_known_categories_include_the_infrequent_ones_and_a_numeric_model_has_none(tmp_path):
    model, config = fitted_small_model(tmp_path, max_categories=2)
    known = known_categories(model)
    assert known == {"home": {"owner", "rent", "mortgage", "other"}, "plan": {"basic", "gold"}}
    # "mortgage" shares the infrequent column: it was seen, so it is no warning; "boat" was not.
    features = feature_matrix(
        pd.DataFrame({"tenure": [1.0] * 4, "home": ["owner", "mortgage", "boat", None], "plan": ["gold"] * 4}),
        config.schema,
    )
    assert unseen_categories(features, known) == (
        [{"record": 2, "feature": "home", "value": "boat", "warning": UNSEEN_WARNING}],
        0,
    )
    (tmp_path / "course").mkdir()
    numeric = load_config(Project(tmp_path / "course").write_config())
    course_model = build_model(numeric).fit(np.arange(30.0).reshape(10, 3), [0, 1] * 5)
    assert known_categories(course_model) == {} and unseen_categories(np.zeros((2, 3)), {}) == ([], 0)


def test_warnings_come_by_record_then_feature_and_are_capped(tmp_path):
    model, config = fitted_small_model(tmp_path)
    rows = MAX_WARNINGS
    frame = pd.DataFrame({"tenure": [1.0] * rows, "home": ["boat"] * rows, "plan": ["platinum"] * rows})
    warnings, omitted = unseen_categories(feature_matrix(frame, config.schema), known_categories(model))
    assert len(warnings) == MAX_WARNINGS and omitted == rows
    assert [(w["record"], w["feature"]) for w in warnings[:3]] == [(0, "home"), (0, "plan"), (1, "home")]
    long = feature_matrix(pd.DataFrame({"tenure": [1.0], "home": ["x" * 10_000], "plan": ["gold"]}), config.schema)
    assert len(unseen_categories(long, known_categories(model))[0][0]["value"]) == categories.MAX_VALUE_CHARS


# --- ingestion ---------------------------------------------------------------------------------


def test_a_file_that_pads_its_categories_ingests_as_the_same_rows_and_categories(tmp_path):
    project = small_project(tmp_path)
    header = "tenure,home,plan,churn\n"
    project.path("practicedata", "a.csv").write_text(header + "1,owner,basic,Yes\n2,rent,gold,No\n3,rent,gold,No\n")
    # The same first two rows, padded and re-spaced; a blank-only category is missing, as an empty cell.
    project.path("practicedata", "b.csv").write_text(
        header + "1, owner ,basic  ,Yes\n2,rent\t, gold,No\n4,   ,gold,No\n"
    )
    project.path("testdata", "testdata.csv").write_text(header + "5,  owner,basic ,Yes\n")
    config = load_config(project.config_path)

    result = merge_multiple_dataframe(config)

    assert result.rows_read == 6 and result.rows == 4  # rows 1 and 2 of b.csv are those of a.csv
    final = read_final_data(config)
    assert final["home"].value_counts().to_dict() == {"rent": 2, "owner": 1} and final["home"].isna().sum() == 1
    assert set(final["plan"]) == {"basic", "gold"}
    assert load_test_data(config)[["home", "plan"]].values.tolist() == [["owner", "basic"]]
    # Data ingested before categories were normalised (an older version's reference sample) reads the same.
    project.path("ingesteddata", "finaldata.csv").write_text(header + '1," owner ","basic",Yes\n')
    assert read_final_data(config)["home"].tolist() == ["owner"]


# --- a tick and the API on the subscription data ------------------------------------------------


def pad(value: str) -> str:
    return f"  {value.replace(' ', '   ')}\t"


@pytest.fixture(scope="module")
def subscriptions(tmp_path_factory) -> Project:
    """The subscription data's practice model, bootstrapped with chi2 as the drift trigger."""
    root = tmp_path_factory.mktemp("categories") / "project"
    for folder in ("practicedata", "testdata"):
        (root / folder).mkdir(parents=True)
    generate_categorical(600, "practice", 11).to_csv(root / "practicedata" / "a.csv", index=False)
    generate_categorical(400, "practice", 15).to_csv(root / "testdata" / "testdata.csv", index=False)
    project = Project(root)
    project.write_config(schema=SUBSCRIPTIONS_SCHEMA, drift={"trigger_tests": ["chi2"]})
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    return project


def test_a_file_that_only_pads_categories_is_no_chi2_drift(subscriptions, tmp_path):
    project = copy_project(subscriptions, tmp_path / "project")
    new = generate_categorical(600, "practice", 12)
    for name in SUBSCRIPTIONS_SCHEMA["categorical_features"]:
        new[name] = new[name].map(pad, na_action="ignore")
    # As written, every category is one the model never saw: counted raw, each would be a shift.
    trained = pd.read_csv(project.path("practicedata", "a.csv"))
    assert not set(new["contract"]) & set(trained["contract"])
    new.to_csv(project.path("practicedata", "b.csv"), index=False)

    result = project.run("fullprocess.py")

    assert result.returncode == 0, result.stderr
    record = json.loads(project.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert record["decision"] == "no drift", record
    chi2 = record["drift"]["tests"]["chi2"]
    assert {name: test["verdict"] for name, test in chi2["features"].items()} == dict.fromkeys(
        SUBSCRIPTIONS_SCHEMA["categorical_features"], "no drift"
    )
    final = pd.read_csv(project.path("ingesteddata", "finaldata.csv"))
    assert set(final["contract"].dropna()) == set(trained["contract"].dropna())


def test_the_api_scores_padded_categories_as_the_plain_ones_and_warns_of_unseen_ones(subscriptions):
    client = client_for(subscriptions)
    unseen = {**SUBSCRIPTION_RECORD, "payment_method": " Crypto  wallet "}
    response = client.post("/prediction", json={"records": [SUBSCRIPTION_RECORD, PADDED, unseen]})
    assert response.status_code == 200, response.text
    body = response.json
    assert body["predictions"][0] == body["predictions"][1] and body["probabilities"][0] == body["probabilities"][1]
    assert body["warnings"] == [
        {"record": 2, "feature": "payment_method", "value": "Crypto wallet", "warning": UNSEEN_WARNING}
    ]
    assert "warnings_omitted" not in body

    plain = client.post("/prediction", json={"records": [SUBSCRIPTION_RECORD]}).json
    assert plain["warnings"] == [] and plain["probabilities"] == body["probabilities"][:1]
    columns = list(SUBSCRIPTION_RECORD)
    csv_body = ",".join(columns) + "\n" + ",".join(f'"{PADDED[name]}"' for name in columns) + "\n"
    by_csv = client.post("/prediction", data=csv_body, headers={"Content-Type": "text/csv"}).json
    assert by_csv["probabilities"] == plain["probabilities"] and by_csv["warnings"] == []

    many = client.post("/prediction", json={"records": [unseen] * (MAX_WARNINGS + 20)}).json
    assert len(many["warnings"]) == MAX_WARNINGS and many["warnings_omitted"] == 20
    assert many["warnings"][-1]["record"] == MAX_WARNINGS - 1
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    assert set(schemas["Prediction"]["required"]) <= set(many) <= set(schemas["Prediction"]["properties"])
    warning = schemas["Warning"]
    assert all(set(entry) == set(warning["required"]) for entry in many["warnings"])
    assert warning["properties"]["feature"]["enum"] == SUBSCRIPTIONS_SCHEMA["categorical_features"]


def test_the_known_categories_are_read_once_per_loaded_model(subscriptions, monkeypatch):
    calls = []

    def counted(model):
        calls.append(model)
        return known_categories(model)

    monkeypatch.setattr("drs.api.model_cache.known_categories", counted)
    client = client_for(subscriptions)
    for _ in range(3):
        assert client.post("/prediction", json={"records": [SUBSCRIPTION_RECORD]}).status_code == 200
    assert len(calls) == 1


def test_under_casefold_a_model_trained_on_other_spellings_warns_of_them(subscriptions, tmp_path):
    # The same production under another config, written beside the test: the shared project stays as it is.
    folders = ("input_folder_path", "output_folder_path", "test_data_path", "output_model_path", "prod_deployment_path")
    settings = json.loads(subscriptions.config_path.read_text())
    settings.update({key: str(subscriptions.path(settings[key])) for key in folders}, normalize_categories="casefold")
    (tmp_path / "casefold.json").write_text(json.dumps(settings))
    client = create_app(tmp_path / "casefold.json").test_client()
    body = client.post("/prediction", json={"records": [{**SUBSCRIPTION_RECORD, "contract": "MONTH-TO-MONTH"}]}).json
    assert ("contract", "month-to-month") in {(w["feature"], w["value"]) for w in body["warnings"]}
