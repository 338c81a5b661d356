"""Bounded inputs: a high-cardinality category, a file or body too large or too long for the API, and
the text a categorical column holds ("NA" is a category, not a missing value)."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from conftest import Project, client_for

from drs.api.errors import ApiError
from drs.api.inputs import parse_json_body
from drs.api.predictions import check_dense_fits
from drs.config import ConfigError, PipelineError, Schema, load_config
from drs.ingest import OverLimit, merge_multiple_dataframe, read_bounded_csv, read_final_data, read_validated_csv
from drs.train import fit_model

WIDE_SCHEMA = {
    "id_column": None,
    "target_column": "churn",
    "positive_label": "Yes",
    "numeric_features": ["usage"],
    "categorical_features": ["code"],
}
COURSE_HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


def wide_data(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A categorical feature with as many distinct values as rows (an id read as a category)."""
    rng = np.random.default_rng(seed)
    usage = rng.normal(0, 1, rows)
    return pd.DataFrame(
        {
            "usage": usage,
            "code": [f"c{k:05d}" for k in range(rows)],
            "churn": np.where(usage + rng.normal(0, 0.5, rows) > 0.5, "Yes", "No").astype(object),
        }
    )


def wide_config(tmp_path, **settings):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "input_folder_path": "in",
                "output_folder_path": "out",
                "test_data_path": "test",
                "output_model_path": "models",
                "prod_deployment_path": "prod",
                "schema": WIDE_SCHEMA,
                **settings,
            }
        )
    )
    return load_config(path)


# --- the one-hot encoding is sparse and capped ------------------------------------------------


def test_a_high_cardinality_category_is_encoded_sparse_into_at_most_max_categories_columns(tmp_path):
    config = wide_config(tmp_path)
    data = wide_data()
    model = fit_model(data, config)
    prepared = model[:-1].transform(data[["usage", "code"]])
    # 3,000 categories: before, a dense 3,000 x 3,001 matrix (40,000 x 20,000 asked for 5 GiB).
    assert scipy.sparse.issparse(prepared)
    assert prepared.shape == (3000, 1 + 100)
    assert config.max_categories == 100  # the default: the bundled data has at most 4 categories a feature
    # An unseen category joins the infrequent ones rather than failing.
    unseen = model.predict_proba(pd.DataFrame({"usage": [0.0], "code": ["never seen"]}))
    assert unseen.shape == (1, 2)


def test_min_frequency_and_no_cap_are_configurable_and_checked(tmp_path):
    data = wide_data(600)
    data.loc[:299, "code"] = "common"
    model = fit_model(data, wide_config(tmp_path, max_categories=None, min_frequency=5))
    assert model[:-1].transform(data[["usage", "code"]]).shape == (600, 1 + 2)  # "common" and the rest
    with pytest.raises(ConfigError, match="'max_categories' must be an integer >= 2 or null"):
        wide_config(tmp_path, max_categories=0)
    with pytest.raises(ConfigError, match="'min_frequency' must be"):
        wide_config(tmp_path, min_frequency=1.5)


def test_an_estimator_that_takes_only_dense_input_is_refused_in_one_line_when_it_would_not_fit(tmp_path):
    data = wide_data()
    dense_only = {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "training": {"max_iter": 5}}
    config = wide_config(tmp_path, max_categories=None, max_dense_bytes=10_000_000, **dense_only)
    with pytest.raises(PipelineError) as refused:
        fit_model(data, config)  # 3,000 rows x 3,001 columns x 8 bytes = 72 MB dense
    message = str(refused.value)
    assert "max_dense_bytes 10000000" in message and "takes no sparse input" in message and "\n" not in message
    # Capped, the same data fits: densified within its bound.
    model = fit_model(data, wide_config(tmp_path, max_dense_bytes=10_000_000, **dense_only))
    prepared = model[:-1].transform(data[["usage", "code"]])
    assert isinstance(prepared, np.ndarray) and prepared.shape == (3000, 101)
    # The API refuses a request whose dense matrix would be over the bound, before transforming it.
    check_dense_fits(model, 1000, 10_000_000)
    with pytest.raises(ApiError) as big:
        check_dense_fits(model, 100_000, 10_000_000)
    assert big.value.status == 413 and "max_dense_bytes" in big.value.message
    # A model whose encoding is sparse gives no dense matrix whatever the rows.
    check_dense_fits(fit_model(data, wide_config(tmp_path)), 10**9, 1)


def test_training_py_refuses_what_would_not_fit_with_one_line(tmp_path):
    root = tmp_path / "project"
    (root / "in").mkdir(parents=True)
    wide_data(2000).to_csv(root / "in" / "wide.csv", index=False)
    project = Project(root)
    project.write_config(
        input_folder_path="in",
        schema=WIDE_SCHEMA,
        estimator="sklearn.ensemble.HistGradientBoostingClassifier",
        training={"max_iter": 5},
        max_categories=None,
        max_dense_bytes=1_000_000,
    )
    merge_multiple_dataframe(project.config())
    result = project.run("training.py")
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "max_dense_bytes 1000000" in result.stderr


# --- what one request may carry -----------------------------------------------------


def course_rows(count: int) -> str:
    return "".join(f"c{k},{k % 7},{k % 11 * 10},{k % 5 + 1},{k % 2}\n" for k in range(count))


def test_read_bounded_csv_stops_at_the_size_or_row_limit(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(COURSE_HEADER + course_rows(60))
    assert read_bounded_csv(path, 1_000_000, 60) == path.read_bytes()
    with pytest.raises(OverLimit, match="more than max_request_rows 59 rows"):
        read_bounded_csv(path, 1_000_000, 59)
    with pytest.raises(OverLimit, match=f"{path.stat().st_size} bytes, over max_input_file_bytes 100: not read"):
        read_bounded_csv(path, 100, 1000)
    # Far past the row limit, only the first chunks are read: the rest may be anything.
    long = tmp_path / "long.csv"
    long.write_bytes((COURSE_HEADER + course_rows(100)).encode() + b"\n" * 5_000_000)
    with pytest.raises(OverLimit, match="not read further"):
        read_bounded_csv(long, 10**9, 100, chunk=4096)


def test_filepath_and_csv_bodies_keep_to_the_file_size_and_row_limits(deployed):
    deployed.write_config(max_input_file_bytes=20_000, max_request_rows=50)
    client = client_for(deployed)
    testdata = deployed.path("testdata")
    (testdata / "fifty.csv").write_text(COURSE_HEADER + course_rows(50))
    (testdata / "fiftyone.csv").write_text(COURSE_HEADER + course_rows(51))
    (testdata / "huge.csv").write_text(COURSE_HEADER + "x" * 30_000 + "\n")  # refused unread: never parsed

    assert client.post("/prediction", json={"filepath": "testdata/fifty.csv"}).status_code == 200
    for response, words in [
        (client.post("/prediction", json={"filepath": "testdata/fiftyone.csv"}), "more than max_request_rows 50"),
        (client.post("/prediction?filepath=testdata/fiftyone.csv"), "more than max_request_rows 50"),
        (client.post("/prediction", json={"filepath": "testdata/huge.csv"}), "over max_input_file_bytes 20000"),
        (
            client.post("/prediction", data=COURSE_HEADER + course_rows(51), content_type="text/csv"),
            "CSV body: more than max_request_rows 50 rows",
        ),
    ]:
        assert response.status_code == 413, response.json
        error = response.json["error"]
        assert words in error and "\n" not in error
    body = client.post("/prediction", data=COURSE_HEADER + course_rows(50), content_type="text/csv")
    assert body.status_code == 200 and len(body.json["predictions"]) == 50


def test_json_records_keep_to_the_row_limit(deployed):
    deployed.write_config(max_request_rows=50)
    client = client_for(deployed)
    record = {"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}
    assert client.post("/prediction", json={"records": [record] * 50}).status_code == 200
    over = client.post("/prediction", json={"records": [record] * 51})
    assert over.status_code == 413 and "max_request_rows 50" in over.json["error"]


def test_records_are_counted_while_parsing():
    assert parse_json_body(b'{"records": [{}, {}, {}]}', 3) == {"records": [{}, {}, {}]}
    for body in (b'{"records": [' + b"{}," * 4 + b"{}]}", b'{"records": [' + b"[]," * 4 + b"[]]}"):
        with pytest.raises(ApiError) as refused:
            parse_json_body(body, 3)
        assert refused.value.status == 413 and "max_request_rows 3 records" in refused.value.message


@pytest.mark.parametrize("empty", [b"{}", b"[]"])
def test_a_body_of_empty_records_costs_the_worker_a_few_times_its_size(api_client, empty):
    body = b'{"records": [' + b",".join([empty] * (5 * 1024 * 1024)) + b"]}"  # 15 MiB, under max_request_bytes
    tracemalloc.start()
    try:
        response = api_client.post("/prediction", data=body, content_type="application/json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 413 and "max_request_rows 100000 records" in response.json["error"]
    # Before: every record was built first, 530 MB for 16 MiB of {}.
    assert peak < 8 * len(body), f"{peak / 2**20:.0f} MiB for a {len(body) / 2**20:.0f} MiB body"


# --- "NA" is a category; null and an empty cell are the same missing value ------------------

REGIONS = {"NA": 0.9, "N/A": 0.9, "null": 0.9, "NaN": 0.9, "EU": 0.05, "APAC": 0.05}
REGION_SCHEMA = {
    "id_column": "id",
    "target_column": "churn",
    "positive_label": "Yes",
    "numeric_features": ["usage"],
    "categorical_features": ["region"],
}


def region_rows(rows: int, seed: int) -> str:
    """CSV text: "NA" is 30% of the rows and churns 90%; "N/A", "null", "NaN" are real regions too."""
    rng = np.random.default_rng(seed)
    names = list(REGIONS)
    picks = rng.choice(len(names), size=rows, p=[0.3, 0.05, 0.05, 0.05, 0.3, 0.25])
    lines = ["id,usage,region,churn"]
    for index, pick in enumerate(picks):
        region = names[pick]
        churn = "Yes" if rng.random() < REGIONS[region] else "No"
        lines.append(f"r{seed}-{index},{rng.normal(0, 1):.3f},{'' if index % 50 == 0 else region},{churn}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def regions_deployed(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("regions") / "project"
    for folder, name, rows, seed in [("practicedata", "regions.csv", 1000, 1), ("testdata", "testdata.csv", 400, 2)]:
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_text(region_rows(rows, seed))
    project = Project(root)
    project.write_config(schema=REGION_SCHEMA, training={"C": 1.0})
    result = project.run("fullprocess.py")
    assert result.returncode == 0, result.stderr
    return project


def test_na_null_and_nan_in_a_categorical_column_are_categories_through_ingestion_training_and_scoring(
    regions_deployed,
):
    config = regions_deployed.config()
    final = read_final_data(config)
    counts = final["region"].value_counts(dropna=False)
    assert {"NA", "N/A", "null", "NaN", "EU", "APAC"} <= set(counts.index)
    assert final["region"].isna().sum() == 20  # only the empty cells are missing
    # Before, "NA" vanished into the imputed most frequent region and the deployed model scored 0.0000.
    manifest = json.loads(regions_deployed.path("production_deployment", "manifest.json").read_text())
    assert manifest["scores"]["f1"] > 0.8, manifest["scores"]


def test_a_json_record_and_a_csv_row_give_the_same_answer_null_and_empty_cells_alike(regions_deployed):
    client = client_for(regions_deployed)
    for record, line in [
        ({"usage": 0.1, "region": "NA"}, "0.1,NA"),
        ({"usage": 0.1, "region": "null"}, "0.1,null"),
        ({"usage": 0.1, "region": None}, "0.1,"),  # JSON null and the empty cell: one missing value
        ({"usage": None, "region": "EU"}, ",EU"),
        ({"usage": None, "region": None}, ","),
        ({"usage": 0.1, "region": ""}, "0.1,"),
    ]:
        by_json = client.post("/prediction", json={"records": [record]})
        by_csv = client.post("/prediction", data=f"usage,region\n{line}\n", content_type="text/csv")
        assert by_json.status_code == 200 and by_csv.status_code == 200, (by_json.json, by_csv.json)
        assert by_json.json == by_csv.json, record
    churner = client.post("/prediction", json={"records": [{"usage": 0.0, "region": "NA"}]}).json
    assert churner["predictions"] == ["Yes"] and churner["probabilities"][0] > 0.7
    # A feature left out is still an error: only null says "missing".
    left_out = client.post("/prediction", json={"records": [{"usage": 0.0}]})
    assert left_out.status_code == 400 and "missing feature 'region'" in left_out.json["error"]


def texts(column: pd.Series) -> list:
    return [None if pd.isna(value) else value for value in column]


def test_na_values_adds_spellings_of_missing_and_a_text_target_keeps_its_own():
    schema = Schema("id", "churn", "Yes", ("usage",), ("region",), None)
    body = b"id,usage,region,churn\na,NA,NA,Yes\nb,1,,No\nc,-,unknown,NA\nd,2, ,Yes\n"
    plain = read_validated_csv(body.replace(b"-", b"3"), schema=schema)
    assert texts(plain["region"]) == ["NA", None, "unknown", None]  # a blank category is trimmed to missing
    assert np.isnan(plain["usage"][0])  # in a number column NA is missing, as before
    assert texts(plain["churn"]) == ["Yes", "No", None, "Yes"]  # a row labelled NA has no label
    extra = read_validated_csv(body, schema=schema, na_values=("unknown", "-"))
    assert texts(extra["region"]) == ["NA", None, None, None] and np.isnan(extra["usage"][2])


def test_na_values_is_a_checked_option(tmp_path):
    assert wide_config(tmp_path, na_values=["unknown"]).na_values == ("unknown",)
    with pytest.raises(ConfigError, match="'na_values' must be a list of non-empty strings"):
        wide_config(tmp_path, na_values="unknown")
