"""GET /openapi.json: every route of the app described with its errors, the record fields those of
the config's schema, references that resolve, the token's security schemes; and a record built
from the document alone is one the app accepts. In process (Flask's test client)."""

from __future__ import annotations

import pytest
from conftest import client_for

from drs.api.openapi import openapi_document

ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "415", "503"}
METHODS = {"get", "post", "put", "patch", "delete"}


def served_document(project, **headers) -> tuple[dict, object, object]:
    """The project's API's /openapi.json, its app, and its answer to a prediction of a record
    made from the document alone."""
    client = client_for(project)
    response = client.get("/openapi.json", headers=headers)
    assert response.status_code == 200, response.text
    record = example_record(response.json)
    prediction = client.post("/prediction", json={"records": [record]}, headers=headers)
    return response.json, client.application, prediction


def example_record(document: dict) -> dict:
    """A record made from the document alone, as a generated client would: 1.5 for a number, "a" for a string."""
    record_schema = document["components"]["schemas"]["Record"]
    values = {"number": 1.5, "string": "a"}
    return {name: values[field["type"][0]] for name, field in record_schema["properties"].items()}


def references(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def check_structure(document: dict, app) -> None:
    """What any OpenAPI 3.1 reader relies on, and what this API promises."""
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    routes = {rule.rule: {method.lower() for method in rule.methods} & METHODS for rule in app.url_map.iter_rules()}
    assert set(document["paths"]) == set(routes)
    for path, methods in routes.items():
        operations = document["paths"][path]
        assert set(operations) == methods, path
        for operation in operations.values():
            assert operation["operationId"] and operation["summary"]
            responses = operation["responses"]
            assert "200" in responses and set(responses) - {"200"} <= ERROR_STATUSES, (path, set(responses))
            for status, response in responses.items():
                assert response["description"]
                assert len(response["content"]) == 1, (path, status)
                if status != "200" and path != "/health":
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    operation_ids = [
        operation["operationId"] for operations in document["paths"].values() for operation in operations.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
    for reference in references(document):
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.rsplit("/", 1)[1] in document["components"]["schemas"], reference


def test_the_document_describes_every_route_and_the_schemas_records(deployed):
    document, app, prediction = served_document(deployed)
    check_structure(document, app)
    schema = app.config["DRS"].schema
    record = document["components"]["schemas"]["Record"]
    assert record["required"] == list(schema.features)
    assert record["properties"] == {name: {"type": ["number", "null"]} for name in schema.features}
    predict = document["paths"]["/prediction"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/csv"}
    # The file may be named in the query instead, with no body.
    assert predict["requestBody"]["required"] is False
    assert [(parameter["name"], parameter["in"]) for parameter in predict["parameters"]] == [("filepath", "query")]
    assert set(predict["responses"]) == {"200", "400", "403", "404", "409", "413", "415", "503"}
    assert set(document["paths"]["/report.pdf"]["get"]["responses"]) == {"200", "404"}
    # Without a token: no security anywhere, no 401.
    assert "securitySchemes" not in document["components"]
    assert all(
        "security" not in operation and "401" not in operation["responses"]
        for operations in document["paths"].values()
        for operation in operations.values()
    )
    # A record built from the document alone is accepted, and the answer is the one described.
    assert prediction.status_code == 200 and len(prediction.json["predictions"]) == 1
    answer = document["components"]["schemas"]["Prediction"]
    assert set(answer["required"]) <= set(prediction.json) <= set(answer["properties"])
    assert prediction.json["warnings"] == []


def test_categorical_features_are_strings(project):
    project.write_config(
        schema={
            "id_column": None,
            "target_column": "churned",
            "positive_label": "yes",
            "numeric_features": ["spend"],
            "categorical_features": ["plan", "region"],
        }
    )
    config = project.config()
    document = openapi_document(config)
    check_structure(document, client_for(project).application)
    schemas = document["components"]["schemas"]
    assert schemas["Record"]["properties"] == {
        "spend": {"type": ["number", "null"]},
        "plan": {"type": ["string", "null"]},
        "region": {"type": ["string", "null"]},
    }
    assert schemas["Record"]["required"] == ["spend", "plan", "region"]
    assert schemas["Prediction"]["properties"]["predictions"]["items"] == {"type": "string"}  # the labels
    assert set(schemas["SummaryStats"]["properties"]["plan"]["properties"]) == {
        "counts",
        "mode",
        "categories",
        "missing",
    }


@pytest.mark.parametrize("settings", [{}, {"metrics_public": True, "token_in_query": True}])
def test_with_a_token_the_document_needs_it_and_says_which_routes_do(deployed, settings):
    token = "openapi-test-token"
    deployed.write_config(api_token=token, **settings)
    assert client_for(deployed).get("/openapi.json").status_code == 401
    document, app, prediction = served_document(deployed, Authorization=f"Bearer {token}")
    check_structure(document, app)
    assert prediction.status_code == 200
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert ("queryToken" in schemes) == bool(settings.get("token_in_query"))
    open_paths = {"/health"} | ({"/metrics"} if settings.get("metrics_public") else set())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in open_paths:
                assert operation["security"] == [] and "401" not in operation["responses"], path
            else:
                assert {"bearerAuth": []} in operation["security"] and "401" in operation["responses"], path
                assert ({"queryToken": []} in operation["security"]) == (
                    bool(settings.get("token_in_query")) and method == "get"
                ), path
