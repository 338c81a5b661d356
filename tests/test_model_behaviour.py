"""Model behaviour: invariants the fitted model really has on the bundled data, not only "it returns a list"."""

import numpy as np
import pandas as pd
import pytest

from drs.config import FEATURE_COLUMNS, load_config
from drs.ingest import merge_multiple_dataframe
from drs.train import feature_matrix, fit_model
from generate_data import generate, write_bundled_data


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("behaviour")
    write_bundled_data(root)
    return root


def ingested(root, folder) -> pd.DataFrame:
    """One bundled input folder as ingestion merges it (nothing written)."""
    path = root / f"config-{folder}.json"
    path.write_text(
        f'{{"input_folder_path": "{folder}", "output_folder_path": "out", "test_data_path": "testdata", '
        '"output_model_path": "models", "prod_deployment_path": "prod"}'
    )
    return merge_multiple_dataframe(load_config(path), write=False).data


def model_on(root, folder):
    """The model the pipeline trains on one bundled input folder."""
    data = ingested(root, folder)
    return fit_model(data, load_config(root / f"config-{folder}.json"))


def risk_along(model, base: pd.DataFrame, feature: str, values) -> np.ndarray:
    """Predicted churn probability of each base row as `feature` alone takes each of `values` (rows x values)."""
    risks = []
    for value in values:
        rows = base.copy()
        rows[feature] = float(value)
        risks.append(model.predict_proba(feature_matrix(rows))[:, 1])
    return np.column_stack(risks)


@pytest.fixture(scope="module")
def practice_model(bundled):
    return model_on(bundled, "practicedata")


@pytest.fixture(scope="module")
def source_model(bundled):
    return model_on(bundled, "sourcedata")


def test_more_recent_activity_never_raises_churn_risk(practice_model, source_model):
    base = generate(200, "mixed", seed=5)
    for model in (practice_model, source_model):
        risk = risk_along(model, base, "lastmonth_activity", np.linspace(0, 1500, 16))
        assert (np.diff(risk, axis=1) <= 1e-12).all()
        assert (risk[:, 0] > risk[:, -1]).all()  # and it does lower it


def test_company_size_pushes_risk_the_way_each_market_does(practice_model, source_model):
    """In the past market bigger customers churned less; in the present one they churn more."""
    base = generate(200, "mixed", seed=6)
    sizes = np.linspace(1, 400, 12)
    assert (np.diff(risk_along(practice_model, base, "number_of_employees", sizes), axis=1) <= 1e-12).all()
    assert (np.diff(risk_along(source_model, base, "number_of_employees", sizes), axis=1) >= -1e-12).all()


def test_a_missing_value_is_predicted_as_the_training_median(source_model, bundled):
    data = ingested(bundled, "sourcedata")
    rows = generate(100, "source", seed=8)
    holes = rows.copy()
    holes["lastyear_activity"] = np.nan
    filled = rows.copy()
    filled["lastyear_activity"] = data["lastyear_activity"].median()
    assert (source_model.predict(feature_matrix(holes)) == source_model.predict(feature_matrix(filled))).all()


def test_predictions_do_not_depend_on_row_order_or_batch(practice_model):
    rows = generate(300, "mixed", seed=9)
    whole = practice_model.predict(feature_matrix(rows))
    shuffled = rows.sample(frac=1.0, random_state=1)
    assert (practice_model.predict(feature_matrix(shuffled)) == whole[shuffled.index.to_numpy()]).all()
    one_by_one = [practice_model.predict(feature_matrix(rows.iloc[[i]]))[0] for i in range(0, 300, 37)]
    assert one_by_one == list(whole[::37])


def test_the_model_beats_predicting_churn_for_everyone(practice_model, bundled):
    from sklearn.metrics import f1_score

    test = pd.read_csv(bundled / "testdata" / "testdata.csv")
    f1 = f1_score(test["exited"], practice_model.predict(feature_matrix(test)))
    baseline = f1_score(test["exited"], np.ones(len(test)))
    assert f1 > baseline + 0.1
    assert list(FEATURE_COLUMNS) == ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
