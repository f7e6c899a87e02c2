"""The OpenAPI document is valid and names exactly the routes and methods the app serves."""

import re

import pytest
from falcon.routing import CompiledRouter
from openapi_spec_validator import validate

from service.api.openapi import DOCUMENT

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def served_routes(app) -> dict[str, set[str]]:
    router = app._router
    assert isinstance(router, CompiledRouter)
    routes: dict[str, set[str]] = {}

    def walk(nodes):
        for node in nodes:
            if node.resource is not None:
                methods = {
                    m.lower()
                    for m, fn in node.method_map.items()
                    if getattr(fn, "__name__", "") != "method_not_allowed" and m not in ("OPTIONS",)
                }
                routes[node.uri_template] = methods
            walk(node.children)

    walk(router._roots)
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(client):
    served = served_routes(client.app)
    documented = {path: set(ops) & HTTP_METHODS for path, ops in DOCUMENT["paths"].items()}
    assert served == documented


def test_the_document_is_served(client):
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.json["openapi"].startswith("3.")


def test_the_document_is_valid_openapi_3_1(client):
    validate(client.simulate_get("/openapi.json").json)


def test_every_path_parameter_is_declared():
    for template, item in DOCUMENT["paths"].items():
        names = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", template)), template


def test_every_error_a_client_can_cause_is_documented_with_the_error_body():
    statuses = {
        code
        for item in DOCUMENT["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
        for code, response in op["responses"].items()
        if response.get("content", {}).get("application/json", {}).get("schema")
        == {"$ref": "#/components/schemas/Error"}
    }
    assert {"400", "401", "403", "404", "409", "411", "413", "415", "422", "503"} <= statuses


# Falcon's test client runs the app under wsgiref's validator, which warns on such methods.
@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_a_made_up_method_is_counted_as_other_not_as_a_new_label(client):
    client.simulate_request("FOOBAR", "/healthz")
    client.simulate_request("GET", "/healthz")
    exposition = client.simulate_get("/metrics").text
    assert 'method="FOOBAR"' not in exposition
    assert 'method="other",route="/healthz"' in exposition
    assert 'method="GET",route="/healthz"' in exposition


def test_an_unknown_route_or_method_is_json_saying_what_exists(client):
    missing = client.simulate_get("/api/nope")
    assert (missing.status_code, missing.json["error"]) == (404, "not_found")
    assert "/openapi.json" in missing.json["message"]
    wrong = client.simulate_delete("/api/rifts")
    assert (wrong.status_code, wrong.json["error"]) == (405, "method_not_allowed")
    assert "allowed: POST" in wrong.json["message"]
