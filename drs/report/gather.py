"""Everything the report shows, gathered once: the only part of the report that reads files.

``gather_report_data`` takes what the tick hands over (the deployed model, the ingested data, the test
data, the tick's record so far, the frames its drift tests compared) and reads only what was not
handed over. Scores are computed here, once; the layout (``drs.report.pdf``) and the figures
(``drs.figures``) only draw what they are given.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score, roc_auc_score

from drs import deploy, diagnostics, ingest, score
from drs.config import Config, PipelineError, Schema
from drs.deploy import DeployedModel
from drs.figures import ConfusionMatrix, PredictedProbabilities
from drs.files import MODEL_FILE
from drs.history import QuietRun, TickRecord
from drs.model_data import feature_matrix, labelled_rows, positive_probabilities
from drs.production import production_store, unpickle_checked
from drs.status_views import NO_DATA, history_view


@dataclass(frozen=True)
class ModelScores:
    """The deployed model's scores on the labelled test rows; `roc_auc` is None when the model gives no
    probabilities or the test data holds one class only."""

    f1: float
    precision: float
    recall: float
    roc_auc: float | None
    rows: int
    positives: int


@dataclass(frozen=True)
class FeatureImportance:
    """A feature's permutation importance: how much the deployed model's F1 on the test rows falls when
    the feature's values are shuffled, mean and standard deviation over the repeats."""

    feature: str
    mean: float
    std: float


# Permutation importance refits nothing but predicts features x repeats times: a sample bounds its cost.
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
IMPORTANCE_SEED = 0


@dataclass(frozen=True)
class Distributions:
    """The frames the distribution plots compare: a sample of the data `reference_version` was trained
    on, the new data, and the words naming the new data in the report."""

    reference: pd.DataFrame
    reference_version: str
    new: pd.DataFrame
    new_words: str


@dataclass
class ReportData:
    """What the report shows. A piece that does not exist is None (or empty) and its `*_problem`, when
    there is one, says why in words for the reader."""

    config_name: str
    schema: Schema
    generated: str
    deployed: DeployedModel | None = None
    deployed_problem: str | None = None
    test_data: pd.DataFrame | None = None
    final_data: pd.DataFrame | None = None
    confusion: ConfusionMatrix | None = None
    scores: ModelScores | None = None
    scores_problem: str | None = None
    # The deployed version's probability calibration (drs.train.Calibration's record); None before one was kept.
    calibration: dict | None = None
    importances: list[FeatureImportance] = field(default_factory=list)  # most important first
    importance_rows: int = 0  # the test rows they were measured on
    importances_problem: str | None = None
    summary: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    history: list[TickRecord] = field(default_factory=list)  # the last ticks, oldest first
    history_records: int = 0  # how many ticks the whole history holds
    # The ticks' table, oldest first: runs of quiet ticks as one row (drs.status_views.HistoryView.rows).
    history_rows: list[TickRecord | QuietRun] = field(default_factory=list)
    deployments: list[dict] = field(default_factory=list)
    drift_tick: TickRecord | None = None
    distributions: Distributions | None = None
    distributions_problem: str | None = None
    # The probabilities the drift test "prediction" compared, drawn only from the frames the tick hands on.
    predictions: PredictedProbabilities | None = None
    predictions_problem: str | None = None
    ingested_detail: dict = field(default_factory=dict)
    packages: list[dict] = field(default_factory=list)


def gather_report_data(
    config: Config,
    deployed: DeployedModel | None = None,
    final_data: pd.DataFrame | None = None,
    test_data: pd.DataFrame | None = None,
    current_tick: TickRecord | None = None,
    drift_inputs: dict | None = None,
    packages: list[dict] | None = None,
    deployed_problem: str | None = None,
    read_missing: bool = True,
) -> ReportData:
    """The report's data from what was handed over, reading the rest.

    With `read_missing` the deployed model, the ingested data (None when there is none) and the test
    data are read when not given (a PipelineError when no model is deployed or the test data is
    missing); without it they stay as given and the report says "no data yet" for them. The run
    history, the deployment log, the deployed version's ingestion record and, unless `drift_inputs`
    ({"version", "reference", "new"}) are the frames of the last drift tick, a reference sample are
    always read; `packages` (the outdated-packages rows) are asked of the package index when None.
    `current_tick` is the record of a tick still running, shown as the newest tick.
    """
    if read_missing:
        deployed = deployed or deploy.load_deployed_model(config.prod_folder)
        final_data = final_data if final_data is not None else _optional_final_data(config)
        test_data = test_data if test_data is not None else score.load_test_data(config)
    history = history_view(config).with_current(current_tick)
    data = ReportData(
        config_name=config.path.name,
        schema=config.schema,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        deployed=deployed,
        deployed_problem=deployed_problem,
        test_data=test_data,
        final_data=final_data,
        history=history.recent,
        history_rows=history.rows or list(history.recent),
        history_records=history.records,
        deployments=deploy.deployment_history(config),
        drift_tick=history.drift_tick,
        ingested_detail=production_store(config).ingested_detail(deployed.version) if deployed is not None else {},
        packages=diagnostics.outdated_packages_list() if packages is None else packages,
    )
    if deployed is not None:
        data.calibration = deployed.calibration
        if test_data is None:
            data.scores_problem = f"no test data at {config.test_data_file}"
        else:
            data.confusion, data.scores, data.scores_problem = _test_scores(deployed, test_data, config.schema)
            data.importances, data.importance_rows, data.importances_problem = feature_importances(
                deployed, test_data, config.schema
            )
    if final_data is not None:
        data.summary = diagnostics.dataframe_summary(config, data=final_data)
        data.missing = diagnostics.missing_data(config, data=final_data)
    if data.drift_tick is not None:
        data.distributions, data.distributions_problem = _distributions(
            config, data.drift_tick, drift_inputs, deployed, final_data
        )
        data.predictions, data.predictions_problem = _predictions(config, data.drift_tick, drift_inputs, deployed)
    return data


def confusion_matrix_inputs(deployed: DeployedModel, test_data: pd.DataFrame, schema: Schema) -> ConfusionMatrix:
    """The deployed model's predictions on the labelled rows of `test_data`, as the confusion matrix draws them."""
    model: Any = deployed.model
    features, labels = labelled_rows(test_data, schema)
    return _confusion_matrix(deployed, labels, model.predict(features), schema)


def _confusion_matrix(deployed: DeployedModel, labels, predictions, schema: Schema) -> ConfusionMatrix:
    model: Any = deployed.model
    classes = list(model.classes_)
    return ConfusionMatrix(labels, predictions, classes, deployed.version, deployed.f1, schema.target_column)


def _test_scores(
    deployed: DeployedModel, test_data: pd.DataFrame, schema: Schema
) -> tuple[ConfusionMatrix | None, ModelScores | None, str | None]:
    """(confusion matrix, scores, why there are no scores) of the deployed model on the test data."""
    model: Any = deployed.model
    features, labels = labelled_rows(test_data, schema)
    if len(labels) == 0:
        return None, None, "no labelled rows in the test data"
    predictions = model.predict(features)
    matrix = _confusion_matrix(deployed, labels, predictions, schema)
    try:
        f1 = score.f1_on(model, test_data, schema)
    except PipelineError as exc:  # a label the model never saw
        return matrix, None, str(exc)
    positive = schema.positive_label
    is_positive = labels == positive
    probabilities = positive_probabilities(model, features, schema)
    try:
        auc = None if probabilities is None else float(roc_auc_score(is_positive, probabilities))
    except ValueError:  # one class only in the test data
        auc = None
    scores = ModelScores(
        f1=f1,
        precision=float(precision_score(labels, predictions, pos_label=positive, zero_division=0.0)),
        recall=float(recall_score(labels, predictions, pos_label=positive, zero_division=0.0)),
        roc_auc=auc,
        rows=len(labels),
        positives=int(is_positive.sum()),
    )
    return matrix, scores, None


def feature_importances(
    deployed: DeployedModel, test_data: pd.DataFrame, schema: Schema, max_rows: int = IMPORTANCE_ROWS
) -> tuple[list[FeatureImportance], int, str | None]:
    """(each schema feature's permutation importance for the deployed model's F1, most important first;
    the labelled test rows used, a fixed sample of at most `max_rows`; why there are none, or None).

    The whole pipeline is scored on the raw feature columns, so a one-hot encoded feature is shuffled as
    one: one importance per schema feature.
    """
    labelled = test_data[test_data[schema.target_column].notna()]
    if len(labelled) == 0:
        return [], 0, "no labelled rows in the test data"
    if len(labelled) > max_rows:
        labelled = labelled.sample(n=max_rows, random_state=IMPORTANCE_SEED)
    # A fresh 0..n-1 index: the feature matrix lines its categorical columns up by position.
    features, labels = labelled_rows(labelled.reset_index(drop=True), schema)
    names = list(features.columns) if isinstance(features, pd.DataFrame) else list(schema.numeric_features)
    scorer = make_scorer(f1_score, pos_label=schema.positive_label, zero_division=0.0)
    try:
        result = permutation_importance(
            deployed.model,
            features,
            labels,
            scoring=scorer,
            n_repeats=IMPORTANCE_REPEATS,
            random_state=IMPORTANCE_SEED,
        )
    except (ValueError, TypeError) as exc:  # a label the model never saw, an estimator scikit-learn cannot score
        return [], len(labels), f"cannot measure them: {str(exc).splitlines()[0]}"
    importances = [
        FeatureImportance(name, float(mean), float(std))
        for name, mean, std in zip(names, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(importances, key=lambda item: -item.mean), len(labels), None


def _distributions(
    config: Config,
    record: TickRecord,
    drift_inputs: dict | None,
    deployed: DeployedModel | None,
    final_data: pd.DataFrame | None,
) -> tuple[Distributions | None, str | None]:
    """(the frames to plot, why there are none) for the drift tick `record`."""
    given = drift_inputs or {}
    if given.get("version") == record.deployed_version_before and given.get("reference") is not None:
        # What the drift tests of this tick compared, handed on by the tick.
        new = given["new"]
        return Distributions(
            given["reference"], given["version"], new, f"the {len(new)} new rows the drift tests used"
        ), None
    # The drift tests compared the new data with the training data of the version
    # deployed *before* the tick; after a redeploy that is no longer the current one.
    candidates = [record.deployed_version_before, deployed.version if deployed else None]
    store = production_store(config)
    found = next(((v, sample) for v in candidates if v and (sample := store.reference_sample(v)) is not None), None)
    if found is None:
        return None, f"Reference sample of the training data: {NO_DATA}."
    version, sample = found
    if final_data is None:
        return None, f"New data: {NO_DATA}."
    try:
        reference = ingest.read_final_data(config, io.BytesIO(sample))
    except PipelineError as exc:  # e.g. written under another schema
        return None, f"Reference sample of the training data: {exc}"
    return Distributions(reference, version, final_data, f"the ingested data ({len(final_data)} rows)"), None


def _predictions(
    config: Config, record: TickRecord, drift_inputs: dict | None, deployed: DeployedModel | None
) -> tuple[PredictedProbabilities | None, str | None]:
    """(the positive-class probabilities the drift test "prediction" of `record` compared, why there are
    none); only from the frames that tick hands on: a report rebuilt later shows the recorded rates."""
    result = ((record.drift or {}).get("tests") or {}).get("prediction") or {}
    given = drift_inputs or {}
    if result.get("positive_rate_new") is None or given.get("version") != record.deployed_version_before:
        return None, None
    if given.get("reference") is None or given.get("new") is None:
        return None, None
    version = given["version"]
    try:
        model = _model_of(config, version, deployed)
    except PipelineError as exc:
        return None, f"Probabilities of {version}: {exc}"
    reference = positive_probabilities(model, feature_matrix(given["reference"], config.schema), config.schema)
    new = positive_probabilities(model, feature_matrix(given["new"], config.schema), config.schema)
    if reference is None or new is None:
        return None, f"Probabilities of {version}: the model gives none"
    return PredictedProbabilities(reference, new, version, f"training sample of {version}"), None


def _model_of(config: Config, version: str, deployed: DeployedModel | None) -> Any:
    """The fitted model of `version`: the deployed one, or after a redeploy the one it replaced, read from
    production and checked against its manifest (a PipelineError when it is gone or does not match)."""
    if deployed is not None and deployed.version == version:
        return deployed.model
    store = production_store(config)
    data = store.read_file(version, MODEL_FILE)
    if data is None:
        raise PipelineError(f"{store.describe(version, MODEL_FILE)} is no longer kept")
    expected = (store.manifest(version) or {}).get("files", {}).get(MODEL_FILE)
    return unpickle_checked(data, expected, store.describe(version, MODEL_FILE))


def _optional_final_data(config: Config) -> pd.DataFrame | None:
    try:
        return ingest.read_final_data(config)
    except PipelineError:
        return None
