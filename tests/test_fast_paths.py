"""The fast paths give the answers of the plain ones: ingestion's cache and deduplication, the API's predictor."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ingestion
from ingestion import PARSED_CACHE_DIR, first_occurrences, merge_multiple_dataframe, read_validated_csv

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


def course_style_result(project, config) -> pd.DataFrame:
    """What ingestion did before the fast paths: validate each file, concat, pandas drop_duplicates."""
    tables = []
    for path in sorted(config.input_folder.glob("*.csv")):
        try:
            tables.append(read_validated_csv(path))
        except ingestion.InvalidFile:
            continue
    merged = pa.concat_tables(tables).to_pandas()
    return merged.drop_duplicates(ignore_index=True)


@pytest.fixture
def quirky(project):
    """An input folder with duplicates within and across files, gaps, -0, quirks and bad files."""
    folder = project.path("quirky")
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + "abc,1,10,5,0\nabc,1,10,5,0\nxyz,,20,3,1\nxyz,,20,3,1\nq,0,1,1,0\n")
    (folder / "b.csv").write_text("\ufeffexited,number_of_employees,lastyear_activity,lastmonth_activity,corporation,extra\r\n"
                                  "0,5,10,1,abc,zz\r\n1,3,20,,xyz,zz\r\n0,1,1,-0,q,zz\r\n1,7,70,7,\"long name, inc\",zz\r\n"
                                  "1,4,3,2,a very long corporation name,zz\r\n")
    (folder / "c.csv").write_text(HEADER + "a very long corporation name,2,3,4,1\na very long corporation name,2,3,4,1\n,5,5,5,\n,5,5,5,\n")
    (folder / "bad_target.csv").write_text(HEADER + "abc,1,10,5,2\n")
    (folder / "bad_number.csv").write_text(HEADER + "abc,one,10,5,0\n")
    (folder / "missing.csv").write_text("corporation,exited\nabc,0\n")
    project.write_config(input_folder_path="quirky")
    return project


def test_merge_keeps_the_first_of_identical_rows_like_pandas(quirky):
    config = quirky.config()
    result = merge_multiple_dataframe(config)
    expected = course_style_result(quirky, config)
    pd.testing.assert_frame_equal(result.data, expected)
    assert sorted(result.rejected) == ["bad_number.csv", "bad_target.csv", "missing.csv"]
    assert result.rows == len(expected) == 6 and result.rows_read == 14


def test_a_second_run_reads_the_cache_and_writes_the_same_bytes(quirky):
    config = quirky.config()
    first = merge_multiple_dataframe(config)
    outputs = {name: (config.output_folder / name).read_bytes()
               for name in ("finaldata.csv", "referencedata.csv", "ingestedfiles.txt", "ingestedfiles.json")}
    cache = config.output_folder / PARSED_CACHE_DIR
    assert len(list(cache.glob("*.arrow"))) == 3 and len(list(cache.glob("*.rejected"))) == 3

    # A cached file is not parsed again: poison the parser and run again.
    original = ingestion._parse_validated
    ingestion._parse_validated = lambda source, **options: pytest.fail("parsed a file whose bytes are cached")
    try:
        second = merge_multiple_dataframe(config)
    finally:
        ingestion._parse_validated = original
    pd.testing.assert_frame_equal(first.data, second.data)
    assert second.rejected == first.rejected
    for name, data in outputs.items():
        assert (config.output_folder / name).read_bytes() == data, name


def test_changed_and_removed_files_are_seen(quirky):
    config = quirky.config()
    merge_multiple_dataframe(config)
    (config.input_folder / "bad_target.csv").write_text(HEADER + "fixed,1,2,3,1\n")
    (config.input_folder / "c.csv").unlink()
    result = merge_multiple_dataframe(config)
    pd.testing.assert_frame_equal(result.data, course_style_result(quirky, config))
    assert "bad_target.csv" in result.ingested and "c.csv" not in result.ingested
    # The removed file's entry is pruned; the fixed file's old rejection too.
    cache = config.output_folder / PARSED_CACHE_DIR
    assert len(list(cache.glob("*.arrow"))) == 3 and len(list(cache.glob("*.rejected"))) == 2


def test_a_damaged_cache_entry_is_parsed_again(quirky):
    config = quirky.config()
    first = merge_multiple_dataframe(config)
    for entry in (config.output_folder / PARSED_CACHE_DIR).glob("*.arrow"):
        entry.write_bytes(b"not arrow")
    second = merge_multiple_dataframe(config)
    pd.testing.assert_frame_equal(first.data, second.data)


def test_deduplication_matches_pandas_on_random_tables():
    rng = np.random.default_rng(7)
    for trial in range(60):
        rows = int(rng.integers(1, 400))
        frame = pd.DataFrame({
            "corporation": rng.choice(["a", "b", "", "abcdefgh", "ab"] if trial % 2 else ["x", "y"], size=rows),
            "f1": rng.choice([0.0, -0.0, 1.0, 2.5, np.nan], size=rows),
            "f2": rng.choice([1.0, np.nan], size=rows),
            "exited": rng.choice([0, 1], size=rows).astype("int8"),
        })
        table = pa.Table.from_pandas(frame, preserve_index=False)
        expected = frame.drop_duplicates().index.to_numpy()
        assert np.array_equal(first_occurrences(table), expected), trial
        keys = [ingestion._column_key(column) for column in table.columns]
        assert np.array_equal(ingestion._first_occurrences_exact(keys), expected), trial


def test_a_hash_collision_falls_back_to_exact_codes(monkeypatch):
    frame = pd.DataFrame({"corporation": ["a", "b", "a", "c"], "x": [1.0, 2.0, 1.0, 3.0]})
    # Every row hashes alike: only the exact check can tell them apart.
    monkeypatch.setattr(ingestion, "_mix", lambda values: np.zeros_like(values))
    assert first_occurrences(pa.Table.from_pandas(frame, preserve_index=False)).tolist() == [0, 1, 3]


def test_reference_sample_is_the_pandas_sample():
    data = pd.DataFrame({"value": np.arange(ingestion.REFERENCE_SAMPLE_ROWS + 123)})
    expected = data.sample(n=ingestion.REFERENCE_SAMPLE_ROWS, random_state=0)
    pd.testing.assert_frame_equal(ingestion.reference_sample(data), expected)


def test_fast_predictor_agrees_with_the_model(deployed):
    from app import fast_predictor
    from deployment import load_deployed_model

    model = load_deployed_model(deployed.config().prod_folder).model
    predict = fast_predictor(model)
    assert predict is not None
    rows = np.random.default_rng(3).uniform(0, 2000, size=(5000, 3))
    rows[::11, 1] = np.nan
    assert np.array_equal(predict(rows), model.predict(rows))


def test_fast_predictor_declines_other_models():
    from sklearn.dummy import DummyClassifier

    from app import fast_predictor

    model = DummyClassifier().fit(np.zeros((4, 3)), [0, 1, 0, 1])
    assert fast_predictor(model) is None


@pytest.mark.parametrize("body, content_type", [
    ({"records": [{"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40},
                  {"lastmonth_activity": 500, "lastyear_activity": 9000, "number_of_employees": 4}]}, "application/json"),
    ({"records": [{"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}]},
     "application/json; charset=utf-8"),
    ({"records": []}, "application/json"),
    ({"records": [{"lastmonth_activity": "12", "lastyear_activity": 900, "number_of_employees": 40}]}, "application/json"),
    ({"records": [{"lastyear_activity": 900, "number_of_employees": 40}]}, "application/json"),
    ({"filepath": "testdata/testdata.csv"}, "application/json"),
    ({"nothing": 1}, "application/json"),
    ([1, 2], "application/json"),
    ("{not json", "application/json"),
    ({"records": [{"lastmonth_activity": 12, "lastyear_activity": 900, "number_of_employees": 40}]}, "text/plain"),
])
def test_prediction_answers_alike_with_and_without_the_fast_path(deployed, body, content_type):
    from app import create_app

    app = create_app(deployed.config_path)
    data = body if isinstance(body, str) else json.dumps(body)
    fast = app.test_client().post("/prediction", data=data, content_type=content_type)
    app.wsgi_app = app.wsgi_app.flask_wsgi  # the Flask route alone
    plain = app.test_client().post("/prediction", data=data, content_type=content_type)
    assert (fast.status_code, fast.data, fast.content_type) == (plain.status_code, plain.data, plain.content_type)


def test_prediction_fast_path_is_used_and_no_model_still_answers_503(project):
    from app import PredictionFastPath, create_app

    app = create_app(project.config_path)  # nothing deployed yet
    assert isinstance(app.wsgi_app, PredictionFastPath)
    response = app.test_client().post("/prediction", json={"records": [
        {"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}]})
    assert response.status_code == 503 and "error" in response.get_json()


@pytest.mark.parametrize("repeats", [1, 5000])
def test_dropping_few_or_many_repeats_gives_the_pandas_rows(repeats):
    rng = np.random.default_rng(repeats)
    frame = pd.DataFrame({"corporation": [f"c{i}" for i in range(20_000)], "x": rng.normal(size=20_000)})
    copies = rng.choice(20_000, size=repeats, replace=False)
    frame = pd.concat([frame, frame.iloc[copies]]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    expected = frame.drop_duplicates(ignore_index=True)
    pd.testing.assert_frame_equal(ingestion.drop_duplicate_rows(table).to_pandas(), expected)
