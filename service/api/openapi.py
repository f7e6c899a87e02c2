"""The OpenAPI document, served at /openapi.json and tested against the app's routes."""

from __future__ import annotations

from typing import Any

import falcon

ERROR = {"$ref": "#/components/schemas/Error"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _op(
    summary: str,
    status: str,
    *,
    body: str | None = None,
    auth: bool = True,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = {status: {"description": summary}}
    for code in errors + (("401", "404") if auth else ()):
        responses[code] = {
            "description": "error",
            "content": {"application/json": {"schema": ERROR}},
        }
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if auth:
        op["security"] = BEARER
    if body:
        op["requestBody"] = {"required": True, "content": {body: {"schema": {"type": "object"}}}}
    return op


PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {"get": _op("The process answers", "200", auth=False)},
    "/readyz": {"get": _op("Database and broker answer", "200", auth=False, errors=("503",))},
    "/metrics": {"get": _op("Prometheus exposition", "200", auth=False)},
    "/openapi.json": {"get": _op("This document", "200", auth=False)},
    "/api/rifts": {
        "post": _op(
            "Create a rift; the caller is the buyer",
            "201",
            body="application/json",
            errors=("422",),
        )
    },
    "/api/rifts/{rift_id}": {"get": _op("Read a rift", "200")},
    "/api/rifts/{rift_id}/transitions": {
        "post": _op(
            "Move a rift, by the role-aware transition table",
            "200",
            body="application/json",
            errors=("403", "409", "422"),
        )
    },
    "/api/rifts/{rift_id}/events": {"get": _op("The rift's append-only event log", "200")},
    "/api/rifts/{rift_id}/proofs": {
        "post": _op(
            "Submit proof; verified in the background",
            "202",
            body="multipart/form-data",
            errors=("403", "409", "413", "415", "422"),
        )
    },
    "/api/rifts/{rift_id}/verification-status": {
        "get": _op("Where verification stands, and its verdict", "200")
    },
    "/api/jobs/{job_id}": {"get": _op("A job record", "200")},
    "/api/admin/jobs": {"get": _op("Failed and dead jobs (admin)", "200", errors=("403",))},
    "/api/admin/jobs/{job_id}/retry": {
        "post": _op("Run a FAILED or DEAD job again (admin)", "202", errors=("403", "409"))
    },
    "/api/admin/queues": {
        "get": _op("Queue depth, delay, dead letters, workers (admin)", "200", errors=("403",))
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Rift proof verification", "version": "1"},
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "allowed": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    },
}


class OpenApiResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = DOCUMENT
