"""The diagnostics functions as course solutions call them: ``dataframe_summary(df)`` and
``missing_data(df)``, the DataFrame first, next to every earlier form (no argument, a Config, data=)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from drs.config import Schema
from drs.diagnostics import dataframe_summary, missing_data

COURSE_FRAME = pd.DataFrame(
    {
        "corporation": ["abcd", "efgh", "ijkl", "mnop"],
        "lastmonth_activity": [10.0, 20.0, None, 50.0],
        "lastyear_activity": [100.0, 200.0, 300.0, 400.0],
        "number_of_employees": [1.0, 2.0, 3.0, 10.0],
        "exited": [0, 1, 0, 1],
    }
)


def test_dataframe_summary_takes_the_dataframe_first():
    summary = dataframe_summary(COURSE_FRAME)
    assert summary == dataframe_summary(data=COURSE_FRAME)
    assert list(summary) == ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
    assert summary["lastyear_activity"] == {"mean": 250.0, "median": 250.0, "std": pytest.approx(129.099445)}
    assert summary["lastmonth_activity"]["mean"] == pytest.approx(80 / 3)
    assert summary["number_of_employees"]["median"] == 2.5


def test_missing_data_takes_the_dataframe_first():
    missing = missing_data(COURSE_FRAME)
    assert missing == missing_data(data=COURSE_FRAME)
    assert missing == {
        "corporation": 0.0,
        "lastmonth_activity": 25.0,
        "lastyear_activity": 0.0,
        "number_of_employees": 0.0,
        "exited": 0.0,
    }
    assert missing_data(COURSE_FRAME.head(0)) == dict.fromkeys(COURSE_FRAME.columns, 0.0)


def test_a_config_with_data_and_a_schema_still_work(project):
    config = project.config()
    assert dataframe_summary(config, COURSE_FRAME) == dataframe_summary(COURSE_FRAME)
    assert dataframe_summary(config, data=COURSE_FRAME, schema=config.schema) == dataframe_summary(COURSE_FRAME)
    assert missing_data(config, COURSE_FRAME) == missing_data(COURSE_FRAME)
    plan = pd.DataFrame({"plan": ["a", "b", "a", None]})
    schema = Schema(id_column=None, numeric_features=(), categorical_features=("plan",))
    summary = dataframe_summary(plan, schema=schema)["plan"]
    assert summary == {"counts": {"a": 2, "b": 1}, "mode": "a", "categories": 2, "missing": 1}
    assert not math.isnan(missing_data(plan)["plan"])


def test_the_dataframe_given_twice_is_an_error():
    with pytest.raises(TypeError, match="once"):
        dataframe_summary(COURSE_FRAME, data=COURSE_FRAME)
    with pytest.raises(TypeError, match="once"):
        missing_data(COURSE_FRAME, data=COURSE_FRAME)
