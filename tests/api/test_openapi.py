"""The OpenAPI document names exactly the routes and methods the app serves."""

from falcon.routing import CompiledRouter

from service.api.openapi import DOCUMENT


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
    documented = {path: set(ops) for path, ops in DOCUMENT["paths"].items()}
    assert served == documented


def test_the_document_is_served(client):
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.json["openapi"].startswith("3.")
