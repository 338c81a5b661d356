"""The OpenAPI 3.1 document of the API (GET /openapi.json), built from the config: its schema
gives the record fields, its token the security scheme."""

from __future__ import annotations

from drs.api_client import NONCE_HEADER, NONCE_PATTERN, PROOF_FIELD
from drs.categories import MAX_VALUE_CHARS, MAX_WARNINGS, UNSEEN_WARNING
from drs.config import Config, Schema
from drs.files import CONFUSION_MATRIX_FILE, REPORT_FILE

ERROR_REASONS = {
    400: "The request is invalid; the error says what (a field, a column, a line)",
    401: "No token, or a wrong one (the server has an API token)",
    403: "'filepath' lies outside the data folders",
    404: "Not found",
    409: "The pipeline's state does not allow an answer (e.g. no data ingested, no test data, a model "
    "trained for another schema)",
    413: "The body exceeds max_request_bytes, or the rows (records) exceed max_request_rows, "
    "or a filepath's file exceeds max_input_file_bytes",
    415: "The content type is neither application/json nor text/csv",
    503: "No usable model is deployed",
}
NULLABLE_NUMBER = {"type": ["number", "null"]}
FILEPATH_DESCRIPTION = (
    "A .csv file inside a data folder (input, ingested or test data); "
    "a relative path starts at the config file's folder"
)


def _summary_schemas(schema: Schema) -> dict:
    """GET /summarystats' answer for each feature: numeric ones' mean, median and std; categorical ones' counts."""
    numeric = {
        name: {"type": "object", "properties": {stat: NULLABLE_NUMBER for stat in ("mean", "median", "std")}}
        for name in schema.numeric_features
    }
    categorical = {
        name: {
            "type": "object",
            "properties": {
                "counts": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "rows of each of the 20 most frequent categories",
                },
                "mode": {"type": ["string", "null"]},
                "categories": {"type": "integer"},
                "missing": {"type": "integer"},
            },
        }
        for name in schema.categorical_features
    }
    return {**numeric, **categorical}


def _warning_schema(schema: Schema) -> dict:
    """One entry of a prediction's "warnings": a category the model never saw."""
    categorical = list(schema.categorical_features)
    return {
        "type": "object",
        "required": ["record", "feature", "value", "warning"],
        "properties": {
            "record": {"type": "integer", "minimum": 0, "description": "The row (record) it concerns, from 0"},
            "feature": {"type": "string", **({"enum": categorical} if categorical else {})},
            "value": {
                "type": "string",
                "description": f"The category as normalised (its first {MAX_VALUE_CHARS} characters)",
            },
            "warning": {"enum": [UNSEEN_WARNING]},
        },
        "description": "A category the deployed model never saw in training: it is answered as a rare one, or as none",
    }


def _prediction_schemas(schema: Schema) -> dict:
    """What POST /prediction takes (a record, records, a filepath) and answers."""
    features = {
        **{name: {"type": ["number", "null"]} for name in schema.numeric_features},
        **{name: {"type": ["string", "null"]} for name in schema.categorical_features},
    }
    label = {"type": "number"} if schema.numeric_target else {"type": "string"}
    return {
        "Record": {
            "type": "object",
            "required": list(schema.features),
            "properties": features,
            "description": "One row's features: numeric features are numbers (finite), categorical ones strings; "
            "null is a missing value, as an empty CSV cell is. Other fields (an id, the target) are ignored.",
        },
        "RecordsBody": {
            "type": "object",
            "required": ["records"],
            "properties": {
                "records": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Record"}}
            },
        },
        "FilepathBody": {
            "type": "object",
            "required": ["filepath"],
            "properties": {"filepath": {"type": "string", "description": FILEPATH_DESCRIPTION}},
        },
        "Warning": _warning_schema(schema),
        "Prediction": {
            "type": "object",
            "required": ["predictions", "version", "warnings"],
            "properties": {
                "predictions": {"type": "array", "items": label, "description": "The predicted label of each row"},
                "probabilities": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0, "maximum": 1},
                    "description": f"The probability of the positive label ({schema.positive_label!r}) "
                    "of each row, when the estimator gives probabilities",
                },
                "version": {"type": "string", "description": "The deployed model version that answered"},
                "warnings": {
                    "type": "array",
                    "maxItems": MAX_WARNINGS,
                    "items": {"$ref": "#/components/schemas/Warning"},
                    "description": f"The first {MAX_WARNINGS} categories the model never saw, by record then "
                    "feature; empty when there are none",
                },
                "warnings_omitted": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "How many more there were, when there were more",
                },
            },
        },
    }


def _schemas(schema: Schema) -> dict:
    """Every schema the document references, by name."""
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        **_prediction_schemas(schema),
        "Score": {
            "type": "object",
            "required": ["f1", "version"],
            "properties": {"f1": {"type": "number"}, "version": {"type": "string"}},
        },
        "SummaryStats": {"type": "object", "properties": _summary_schemas(schema), "required": list(schema.features)},
        "Diagnostics": {
            "type": "object",
            "properties": {
                "execution_time": {"type": "object", "additionalProperties": NULLABLE_NUMBER},
                "missing_data": {
                    "type": "object",
                    "additionalProperties": {"type": "number"},
                    "description": "percent of missing values by column",
                },
                "outdated_packages": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "pid"],
            "properties": {
                "status": {"enum": ["ok", "degraded", "unavailable"]},
                "version": {"type": "string"},
                "f1": NULLABLE_NUMBER,
                "pid": {"type": "integer", "description": "the worker process that answered"},
                "problem": {"type": "string"},
                "error": {"type": "string"},
                PROOF_FIELD: {
                    "type": "string",
                    "description": f"with an API token and a {NONCE_HEADER} header: HMAC-SHA256(token, nonce) in hex",
                },
            },
        },
    }


def _components(config: Config) -> dict:
    """The schemas, and with an API token its security schemes (a query one with token_in_query)."""
    components: dict = {"schemas": _schemas(config.schema)}
    if config.api_token is not None:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        if config.token_in_query:
            components["securitySchemes"]["queryToken"] = {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "GET only (token_in_query): for a browser on a trusted network; the token ends up "
                "in URLs, browser history and proxy logs",
            }
    return components


def _content(media_type: str, schema_or_ref: dict | str, description: str) -> dict:
    """A response (or body) of one media type: a schema, or the name of one in the components."""
    value = {"$ref": f"#/components/schemas/{schema_or_ref}"} if isinstance(schema_or_ref, str) else schema_or_ref
    return {"description": description, "content": {media_type: {"schema": value}}}


class _Operations:
    """Builds the operations of one config's API: its errors, and with a token each one's security."""

    def __init__(self, config: Config):
        self.config = config

    def operation(
        self,
        operation_id: str,
        summary: str,
        ok: dict,
        errors: dict | tuple = (),
        method: str = "get",
        open_route: bool = False,
    ) -> dict:
        """{method: the operation}: 200 `ok`, then `errors` (status -> reason, None: the usual one) as
        Error bodies; with a token, 401 and the security every route but the open ones needs."""
        config = self.config
        responses = {"200": ok}
        errors = dict.fromkeys(errors) if isinstance(errors, tuple) else errors
        if config.api_token is not None and not open_route:
            errors = {401: None, **errors}
        for status in sorted(errors):
            responses[str(status)] = _content("application/json", "Error", errors[status] or ERROR_REASONS[status])
        result: dict = {"operationId": operation_id, "summary": summary, "responses": responses}
        if config.api_token is not None:
            protected: dict[str, list] = {"bearerAuth": []}
            with_query = config.token_in_query and method == "get"
            result["security"] = [] if open_route else [protected, {"queryToken": []}] if with_query else [protected]
        return {method: result}


def _prediction(operations: _Operations) -> dict:
    """POST /prediction: ?filepath= with no body, JSON records or filepath, or a CSV body."""
    prediction = operations.operation(
        "predict",
        "Predict the label (and its probability) of each row",
        _content("application/json", "Prediction", "One prediction per row, in order"),
        {
            400: None,
            403: None,
            404: "'filepath' names no file",
            409: "The deployed model was trained for another schema than the API's config: retrain, roll back "
            "or restart the API with the matching config",
            413: None,
            415: None,
            503: None,
        },
        method="post",
    )
    json_body = {"oneOf": [{"$ref": "#/components/schemas/RecordsBody"}, {"$ref": "#/components/schemas/FilepathBody"}]}
    prediction["post"]["parameters"] = [
        {
            "name": "filepath",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": f"{FILEPATH_DESCRIPTION}; given here, the request has no body (validated as "
            "the JSON form's 'filepath')",
        }
    ]
    prediction["post"]["requestBody"] = {
        "required": False,
        "description": "JSON records, a JSON filepath to a CSV in a data folder, or a CSV body "
        "(none with the 'filepath' query parameter)",
        "content": {
            "application/json": {"schema": json_body},
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "A CSV with a header row naming at least the "
                    "features (other columns are ignored); an empty cell is a missing value, "
                    "imputed as in training",
                }
            },
        },
    }
    return prediction


def _course_paths(operations: _Operations) -> dict:
    """The course's endpoints: /prediction, /scoring, /summarystats, /diagnostics."""
    return {
        "/prediction": _prediction(operations),
        "/scoring": operations.operation(
            "score",
            "The deployed model's F1 on the test data",
            _content("application/json", "Score", "F1 and version"),
            (409, 503),
        ),
        "/summarystats": operations.operation(
            "summaryStats",
            "Summary statistics of each feature of the ingested data",
            _content("application/json", "SummaryStats", "By feature"),
            (409,),
        ),
        "/diagnostics": operations.operation(
            "diagnostics",
            "Stage timings, missing data, outdated packages",
            _content("application/json", "Diagnostics", "Diagnostics"),
            (409,),
        ),
    }


def _operator_paths(operations: _Operations, config: Config) -> dict:
    """/health, /metrics and this document."""
    health = operations.operation(
        "health",
        "Whether a model is served (open without a token)",
        _content(
            "application/json",
            "Health",
            "ok, or degraded: production failed its check and the model held keeps serving, or the model "
            "held was trained for another schema than the API's config (predictions answer 409)",
        ),
        {503: None},
        open_route=True,
    )
    health["get"]["responses"]["503"] = _content("application/json", "Health", ERROR_REASONS[503])
    # A client proves it talks to its own API (the token's holder) before it sends the token.
    health["get"]["parameters"] = [
        {
            "name": NONCE_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": f"^{NONCE_PATTERN}$"},
            "description": f"a random challenge: the answer's {PROOF_FIELD} proves the API holds the token",
        }
    ]
    return {
        "/health": health,
        "/metrics": operations.operation(
            "metrics",
            "Prometheus metrics (text exposition format)",
            _content("text/plain", {"type": "string"}, "The metrics"),
            open_route=config.metrics_public,
        ),
        "/openapi.json": operations.operation(
            "openapi",
            "This document",
            _content("application/json", {"type": "object"}, "The OpenAPI 3.1 description of this API"),
        ),
    }


def _people_paths(operations: _Operations) -> dict:
    """The status page and the files it links."""
    missing = "not generated yet: it is written after each deployment"
    return {
        "/": operations.operation(
            "statusPage", "The status page (HTML)", _content("text/html", {"type": "string"}, "The page")
        ),
        "/" + REPORT_FILE: operations.operation(
            "reportPdf",
            "The deployed model's report",
            _content("application/pdf", {"type": "string", "contentMediaType": "application/pdf"}, "The PDF"),
            {404: f"{REPORT_FILE} {missing}"},
        ),
        "/" + CONFUSION_MATRIX_FILE: operations.operation(
            "confusionMatrixPng",
            "The deployed model's confusion matrix",
            _content("image/png", {"type": "string", "contentMediaType": "image/png"}, "The image"),
            {404: f"{CONFUSION_MATRIX_FILE} {missing}"},
        ),
        "/scorehistory.png": operations.operation(
            "scoreHistoryPng",
            "The test F1 of every deployment",
            _content("image/png", {"type": "string", "contentMediaType": "image/png"}, "The image"),
            {404: "No deployment recorded yet"},
        ),
    }


def openapi_document(config: Config) -> dict:
    """The OpenAPI 3.1 description of the API `config` serves: every endpoint and its errors,
    and the record fields derived from the config's schema (every feature required; numeric
    ones numbers, categorical ones strings). With an API token: a bearer security scheme
    (and a query one with token_in_query), every operation but the open ones requiring it."""
    operations = _Operations(config)
    course, operator, people = _course_paths(operations), _operator_paths(operations, config), _people_paths(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dynamic Risk Assessment API",
            "version": "1",
            "description": "Churn-risk predictions from the deployed model, its scores and the pipeline's "
            "state. Every answer is JSON but the pages, files and metrics; an error is "
            '{"error": "..."}.',
        },
        "paths": {**course, **operator, **people},
        "components": _components(config),
    }
