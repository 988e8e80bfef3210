"""/v1/openapi.json says what the API does: form bodies, access_token auth, a server, a
description for every operation, and no schema nothing refers to."""

import json

import pytest

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def schema(client):
    return client.get("/v1/openapi.json").json()


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_every_operation_has_a_description(schema):
    assert [(m, p) for m, p, op in _operations(schema) if not op.get("description")] == []


def test_every_json_body_may_also_be_form_encoded_the_token_grant_included(schema):
    bodies = {(m, p): op["requestBody"]["content"] for m, p, op in _operations(schema) if "requestBody" in op}

    assert FORM in bodies[("post", "/oauth/token")]
    assert [key for key, content in bodies.items() if "application/json" in content and FORM not in content] == []
    assert "multipart/form-data" in bodies[("put", "/v1/products/{product}/devices/{device_id}")]


def test_access_token_is_a_security_scheme_beside_the_bearer_header(schema):
    assert schema["components"]["securitySchemes"]["AccessTokenQuery"] == {
        "type": "apiKey", "in": "query", "name": "access_token",
        "description": schema["components"]["securitySchemes"]["AccessTokenQuery"]["description"],
    }
    secured = [op["security"] for _m, path, op in _operations(schema)
               if op.get("security") and not path.startswith("/v1/device/")]
    assert secured and all({"AccessTokenQuery": []} in security for security in secured)


def test_the_device_gateway_takes_a_devices_key_and_nothing_else(schema):
    gateway = [op["security"] for _m, path, op in _operations(schema) if path.startswith("/v1/device/")]
    assert len(gateway) == 3 and all(security == [{"DeviceKeyAuth": []}] for security in gateway)
    assert schema["components"]["securitySchemes"]["DeviceKeyAuth"]["scheme"] == "basic"


def test_a_server_is_listed(schema):
    assert schema["servers"][0]["url"] == "/"


def test_every_schema_is_referred_to(schema):
    text = json.dumps(schema["paths"]) + json.dumps(schema["components"]["schemas"])
    unused = [name for name in schema["components"]["schemas"] if f'"#/components/schemas/{name}"' not in text]
    assert unused == []
