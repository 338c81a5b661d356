"""The OpenAPI 3.1 document of the API (GET /openapi.json), built from the config: its schema
gives the record fields, its token the security scheme."""

from __future__ import annotations

from drs.config import CONFUSION_MATRIX_FILE, REPORT_FILE, Config

ERROR_REASONS = {
    400: "The request is invalid; the error says what (a field, a column, a line)",
    401: "No token, or a wrong one (the server has an API token)",
    403: "'filepath' lies outside the data folders",
    404: "Not found",
    409: "The pipeline's state does not allow an answer (e.g. no data ingested, no test data, a model "
    "trained for another schema)",
    413: "The body exceeds max_request_bytes",
    415: "The content type is neither application/json nor text/csv",
    503: "No usable model is deployed",
}


def openapi_document(config: Config) -> dict:
    """The OpenAPI 3.1 description of the API `config` serves: every endpoint and its errors,
    and the record fields derived from the config's schema (every feature required; numeric
    ones numbers, categorical ones strings). With an API token: a bearer security scheme
    (and a query one with token_in_query), every operation but the open ones requiring it."""
    schema = config.schema
    label = {"type": "number"} if schema.numeric_target else {"type": "string"}
    features = {
        **{name: {"type": "number"} for name in schema.numeric_features},
        **{name: {"type": "string"} for name in schema.categorical_features},
    }
    nullable_number = {"type": ["number", "null"]}
    summaries = {
        **{
            name: {"type": "object", "properties": {stat: nullable_number for stat in ("mean", "median", "std")}}
            for name in schema.numeric_features
        },
        **{
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
        },
    }
    components = {
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Record": {
                "type": "object",
                "required": list(schema.features),
                "properties": features,
                "description": "One row's features: numeric features are numbers (finite), categorical ones strings. "
                "Other fields (an id, the target) are ignored.",
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
                "properties": {
                    "filepath": {
                        "type": "string",
                        "description": "A .csv file inside a data folder (input, ingested or test data); "
                        "a relative path starts at the config file's folder",
                    }
                },
            },
            "Prediction": {
                "type": "object",
                "required": ["predictions", "version"],
                "properties": {
                    "predictions": {"type": "array", "items": label, "description": "The predicted label of each row"},
                    "probabilities": {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "description": f"The probability of the positive label ({schema.positive_label!r}) "
                        "of each row, when the estimator gives probabilities",
                    },
                    "version": {"type": "string", "description": "The deployed model version that answered"},
                },
            },
            "Score": {
                "type": "object",
                "required": ["f1", "version"],
                "properties": {"f1": {"type": "number"}, "version": {"type": "string"}},
            },
            "SummaryStats": {"type": "object", "properties": summaries, "required": list(schema.features)},
            "Diagnostics": {
                "type": "object",
                "properties": {
                    "execution_time": {"type": "object", "additionalProperties": nullable_number},
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
                    "f1": nullable_number,
                    "pid": {"type": "integer", "description": "the worker process that answered"},
                    "problem": {"type": "string"},
                    "error": {"type": "string"},
                },
            },
        }
    }
    protected: dict[str, list] = {"bearerAuth": []}
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

    def body(media_type: str, schema_or_ref: dict | str, description: str) -> dict:
        value = {"$ref": f"#/components/schemas/{schema_or_ref}"} if isinstance(schema_or_ref, str) else schema_or_ref
        return {"description": description, "content": {media_type: {"schema": value}}}

    def operation(
        operation_id: str,
        summary: str,
        ok: dict,
        errors: dict | tuple = (),
        method: str = "get",
        open_route: bool = False,
    ) -> dict:
        responses = {"200": ok}
        errors = dict.fromkeys(errors) if isinstance(errors, tuple) else errors
        if config.api_token is not None and not open_route:
            errors = {401: None, **errors}
        for status in sorted(errors):
            responses[str(status)] = body("application/json", "Error", errors[status] or ERROR_REASONS[status])
        result: dict = {"operationId": operation_id, "summary": summary, "responses": responses}
        if config.api_token is not None:
            with_query = config.token_in_query and method == "get"
            result["security"] = [] if open_route else [protected, {"queryToken": []}] if with_query else [protected]
        return {method: result}

    json_body = {"oneOf": [{"$ref": "#/components/schemas/RecordsBody"}, {"$ref": "#/components/schemas/FilepathBody"}]}
    prediction = operation(
        "predict",
        "Predict the label (and its probability) of each row",
        body("application/json", "Prediction", "One prediction per row, in order"),
        {
            400: None,
            403: None,
            404: "'filepath' names no file",
            409: "The deployed model was trained for another schema: retrain it",
            413: None,
            415: None,
            503: None,
        },
        method="post",
    )
    prediction["post"]["requestBody"] = {
        "required": True,
        "description": "JSON records, a JSON filepath to a CSV in a data folder, or a CSV body",
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
    missing = "not generated yet: it is written after each deployment"
    paths = {
        "/prediction": prediction,
        "/scoring": operation(
            "score",
            "The deployed model's F1 on the test data",
            body("application/json", "Score", "F1 and version"),
            (409, 503),
        ),
        "/summarystats": operation(
            "summaryStats",
            "Summary statistics of each feature of the ingested data",
            body("application/json", "SummaryStats", "By feature"),
            (409,),
        ),
        "/diagnostics": operation(
            "diagnostics",
            "Stage timings, missing data, outdated packages",
            body("application/json", "Diagnostics", "Diagnostics"),
            (409,),
        ),
        "/health": operation(
            "health",
            "Whether a model is served (open without a token)",
            body(
                "application/json",
                "Health",
                "ok, or degraded: production failed its check and the model held keeps serving",
            ),
            {503: None},
            open_route=True,
        ),
        "/metrics": operation(
            "metrics",
            "Prometheus metrics (text exposition format)",
            body("text/plain", {"type": "string"}, "The metrics"),
            open_route=config.metrics_public,
        ),
        "/openapi.json": operation(
            "openapi",
            "This document",
            body("application/json", {"type": "object"}, "The OpenAPI 3.1 description of this API"),
        ),
        "/": operation("statusPage", "The status page (HTML)", body("text/html", {"type": "string"}, "The page")),
        "/" + REPORT_FILE: operation(
            "reportPdf",
            "The deployed model's report",
            body("application/pdf", {"type": "string", "contentMediaType": "application/pdf"}, "The PDF"),
            {404: f"{REPORT_FILE} {missing}"},
        ),
        "/" + CONFUSION_MATRIX_FILE: operation(
            "confusionMatrixPng",
            "The deployed model's confusion matrix",
            body("image/png", {"type": "string", "contentMediaType": "image/png"}, "The image"),
            {404: f"{CONFUSION_MATRIX_FILE} {missing}"},
        ),
        "/scorehistory.png": operation(
            "scoreHistoryPng",
            "The test F1 of every deployment",
            body("image/png", {"type": "string", "contentMediaType": "image/png"}, "The image"),
            {404: "No deployment recorded yet"},
        ),
    }
    paths["/health"]["get"]["responses"]["503"] = body("application/json", "Health", ERROR_REASONS[503])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dynamic Risk Assessment API",
            "version": "1",
            "description": "Churn-risk predictions from the deployed model, its scores and the pipeline's "
            "state. Every answer is JSON but the pages, files and metrics; an error is "
            '{"error": "..."}.',
        },
        "paths": paths,
        "components": components,
    }
