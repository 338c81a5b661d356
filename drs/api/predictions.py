"""The course's endpoints: POST /prediction, GET /scoring, GET /summarystats, GET /diagnostics."""

from __future__ import annotations

import contextlib

import numpy as np
import sklearn
from flask import Blueprint, jsonify

from drs.api.errors import ApiError
from drs.api.inputs import request_features
from drs.api.state import api_state
from drs.categories import unseen_categories
from drs.config import Schema
from drs.deploy import DeployedModel
from drs.diagnostics import all_diagnostics, dataframe_summary
from drs.files import FINAL_DATA_FILE
from drs.score import f1_on, load_test_data
from drs.train import dense_input_bytes

blueprint = Blueprint("predictions", __name__)


def check_dense_fits(model, rows: int, max_bytes: int) -> None:
    """413 when the model's classifier would be given a dense matrix larger than `max_bytes` for `rows` rows."""
    need = dense_input_bytes(model, rows)
    if need > max_bytes:
        raise ApiError(
            413,
            f"{rows} rows make a {need / 1024**2:.0f} MiB dense matrix for this model, over max_dense_bytes "
            f"{max_bytes}: send fewer rows",
        )


def predict(model, features, schema: Schema) -> dict:
    """{"predictions": labels, "probabilities": of the positive label (when the estimator has
    predict_proba)}, without scikit-learn's finiteness and parameter checks: the API made its own."""
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        if not hasattr(model, "predict_proba"):
            return {"predictions": model.predict(features).tolist()}
        # The preparation steps run once for both answers. predict() is asked, not derived from the
        # probabilities: some classifiers (a tuned threshold, SVC's Platt scaling) do not predict their argmax.
        prepared, classifier = model[:-1].transform(features), model[-1]
        predictions, probabilities = classifier.predict(prepared), classifier.predict_proba(prepared)
    positive = list(classifier.classes_).index(schema.positive_label)
    return {"predictions": predictions.tolist(), "probabilities": np.round(probabilities[:, positive], 6).tolist()}


@contextlib.contextmanager
def schema_mismatch(deployed: DeployedModel):
    """A model trained for other columns than the config's schema names: 409, until a tick retrains it."""
    try:
        yield
    except (ValueError, KeyError) as exc:
        raise ApiError(
            409,
            f"the deployed model {deployed.version} does not take the features of the config's "
            f"schema ({str(exc).splitlines()[0][:200]}): the next tick retrains it",
        ) from None


@blueprint.post("/prediction")
def prediction():
    state = api_state()
    features = request_features(state.config)
    deployed = state.models.serving()
    with schema_mismatch(deployed):
        check_dense_fits(deployed.model, len(features), state.config.max_dense_bytes)
        answer = predict(deployed.model, features, state.config.schema)
    # The model answers an unseen category all the same (as a rare one, or as none): the client is told.
    answer["warnings"], omitted = unseen_categories(features, state.models.known(deployed))
    if omitted:
        answer["warnings_omitted"] = omitted
    state.metrics.predictions.inc(len(answer["predictions"]))
    return jsonify(**answer, version=deployed.version)


@blueprint.get("/scoring")
def scoring():
    state = api_state()
    config = state.config
    deployed = state.models.serving()
    with schema_mismatch(deployed):
        f1 = state.cache.get(
            f"f1:{deployed.version}:{deployed.model_sha256}",
            [config.test_data_file],
            lambda: f1_on(deployed.model, load_test_data(config), config.schema),
        )
    return jsonify(f1=f1, version=deployed.version)


@blueprint.get("/summarystats")
def summarystats():
    state = api_state()
    config = state.config
    return jsonify(
        state.cache.get("summary", [config.output_folder / FINAL_DATA_FILE], lambda: dataframe_summary(config))
    )


@blueprint.get("/diagnostics")
def diagnostics():
    # Reads only: the stage timings come from the run history, nothing is re-run.
    return jsonify(all_diagnostics(api_state().config))
