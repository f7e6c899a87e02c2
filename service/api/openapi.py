"""The OpenAPI document, built from the schemas the server enforces (service/api/schemas.py).

Served at /openapi.json; tests check it with openapi-spec-validator, compare its routes
with the app's, and fuzz every operation against it with schemathesis.
"""

from __future__ import annotations

import re
from typing import Any

import falcon

from service.api.resources.job_filters import MAX_AGE_S
from service.api.schemas import COMPONENTS, IDEMPOTENCY_KEY
from service.models import JobState

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
JSON = "application/json"

#: What each documented error status means for a client (every body is an Error).
ERROR_MEANINGS = {
    "400": "malformed request: the body is not the JSON this route reads",
    "401": "no bearer token, or one that is not valid (expired, wrong signature)",
    "403": "the caller's role may not do this",
    "404": "no such resource, or not the caller's (the same answer, by design)",
    "409": "the resource's state or version does not allow this",
    "411": "a body sent without Content-Length (chunked): send its length",
    "413": "the body is larger than the limit",
    "415": "the body's media type is not the one this route reads",
    "422": "a field is missing, unknown or invalid; `field` names it",
    "503": (
        "the database or file storage is unavailable; retry after Retry-After seconds "
        "(`outcome_unknown`: the database went away during the commit and the request may "
        "have been saved; look before sending it again, or resend with its Idempotency-Key)"
    ),
}
# Every route that reads a body can answer these, whatever it does with the body.
BODY_ERRORS = ("400", "411", "413", "415", "422")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(
    summary: str,
    status: str,
    *,
    body: str | None = None,
    auth: bool = True,
    errors: tuple[str, ...] = (),
    request: str | None = None,
    response: str | None = None,
    response_type: str = JSON,
    parameters: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """One operation: its success response (and schema), every error it can answer."""
    success: dict[str, Any] = {"description": summary}
    if response is not None:
        success["content"] = {response_type: {"schema": _ref(response)}}
    responses: dict[str, Any] = {status: success}
    codes = set(errors) | ({"401", "404", "503"} if auth else set())
    if body:
        codes |= set(BODY_ERRORS)
    for code in sorted(codes):
        responses[code] = {
            "description": ERROR_MEANINGS.get(code, "error"),
            "content": {JSON: {"schema": _ref("Error")}},
        }
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if auth:
        op["security"] = BEARER
    if parameters:
        op["parameters"] = list(parameters)
    if body:
        schema = _ref(request) if request else {"type": "object"}
        op["requestBody"] = {"required": True, "content": {body: {"schema": schema}}}
    return op


STATE_QUERY = {
    "name": "state",
    "in": "query",
    "required": False,
    "description": "job states to list (repeatable); FAILED and DEAD when absent",
    "schema": {"type": "array", "items": {"type": "string", "enum": [s.value for s in JobState]}},
    "style": "form",
    "explode": True,
}
LIMIT_QUERY = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


AGE_S = {"type": "integer", "minimum": 0, "maximum": MAX_AGE_S}
JOB_FILTER_QUERY = (
    _query("actor", {"type": "string", "maxLength": 64}, "the actor's name"),
    _query("rift_id", {"type": "string", "maxLength": 64}, "jobs of this rift"),
    _query("job_id", {"type": "string", "maxLength": 64}, "this job"),
    _query("min_age_s", AGE_S, "at least this old"),
    _query("max_age_s", AGE_S, "at most this old"),
    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
)
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "the same key and content answer as the first request did (replayed)",
    "schema": IDEMPOTENCY_KEY,
}

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {"get": _op("The process answers", "200", auth=False, response="Liveness")},
    "/readyz": {
        "get": {
            **_op(
                "Database, broker and blob store answer", "200", auth=False, response="Readiness"
            ),
            "responses": {
                "200": {
                    "description": "ready",
                    "content": {JSON: {"schema": _ref("Readiness")}},
                },
                "503": {
                    "description": "a dependency is down; `checks` names it",
                    "content": {JSON: {"schema": _ref("Readiness")}},
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus exposition",
            "responses": {
                "200": {
                    "description": "Prometheus exposition",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "This document",
                    "content": {JSON: {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/api/rifts": {
        "post": _op(
            "Create a rift; the caller is the buyer",
            "201",
            body=JSON,
            request="NewRift",
            response="Rift",
        )
    },
    "/api/rifts/{rift_id}": {"get": _op("Read a rift", "200", response="Rift")},
    "/api/rifts/{rift_id}/transitions": {
        "post": _op(
            "Move a rift, by the role-aware transition table",
            "200",
            body=JSON,
            request="TransitionRequest",
            response="Rift",
            errors=("403", "409"),
        )
    },
    "/api/rifts/{rift_id}/risk": {
        "put": _op(
            "Set the rift's risk inputs (admin); recorded in its event log",
            "200",
            body=JSON,
            request="RiskAssessment",
            response="Rift",
            errors=("403",),
        )
    },
    "/api/rifts/{rift_id}/events": {
        "get": _op("The rift's append-only event log", "200", response="RiftEvents")
    },
    "/api/rifts/{rift_id}/proofs": {
        "post": _op(
            "Submit proof; verified in the background",
            "202",
            body="multipart/form-data",
            request="ProofForm",
            response="ProofReceipt",
            errors=("403", "409"),
            parameters=(IDEMPOTENCY_HEADER,),
        )
    },
    "/api/rifts/{rift_id}/verification-status": {
        "get": _op(
            "Where verification stands, and its verdict", "200", response="VerificationStatus"
        )
    },
    "/api/jobs/{job_id}": {"get": _op("A job record", "200", response="Job")},
    "/api/admin/jobs": {
        "get": _op(
            "Failed and dead jobs (admin)",
            "200",
            response="JobList",
            errors=("400", "403", "422"),
            parameters=(STATE_QUERY, LIMIT_QUERY, *JOB_FILTER_QUERY),
        )
    },
    "/api/admin/jobs/{job_id}/retry": {
        "post": _op(
            "Run a FAILED or DEAD job again (admin)",
            "202",
            response="Job",
            errors=("403", "409"),
        )
    },
    "/api/admin/queues": {
        "get": _op(
            "Queue depth, delay, dead letters, workers (admin)",
            "200",
            response="Queues",
            errors=("403",),
        )
    },
    # Pages and what they call (service/web): HTML for a signed-in viewer, file downloads,
    # and the operator actions of the console.
    "/session": {
        "post": _op("Trade the bearer token for the page cookie", "200", auth=True),
        "delete": _op("Forget the page cookie", "204", auth=False),
    },
    "/rifts/{rift_id}": {"get": _op("The proof page (HTML; bearer or page cookie)", "200")},
    "/rifts/{rift_id}/progress": {
        "get": _op("The proof page's progress section (HTML); 304 when unchanged", "200")
    },
    "/ops": {"get": _op("The operator console (HTML, admin)", "200")},
    "/ops/jobs/{job_id}": {"get": _op("One job in the console (HTML, admin)", "200")},
    "/api/assets/{asset_id}/content": {
        "get": _op("A file asset's bytes, once scanned CLEAN (attachment)", "200", errors=("409",))
    },
    "/api/admin/jobs/retry": {
        "post": _op(
            "Retry every FAILED or DEAD job a filter matches, given the confirmed count (admin)",
            "202",
            body="application/json",
            errors=("403", "409", "422"),
        )
    },
    "/api/admin/rifts/{rift_id}/decisions": {
        "post": _op(
            "Decide a review: release, refund or ask for new proof (admin)",
            "200",
            body="application/json",
            errors=("403", "409", "422"),
        )
    },
    "/api/admin/actions": {
        "get": _op("Operator actions, newest first (admin)", "200", errors=("403",))
    },
}


def _with_path_parameters(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Declare every {name} of every path template as a required string path parameter."""
    declared: dict[str, dict[str, Any]] = {}
    for template, operations in paths.items():
        names = re.findall(r"{(\w+)}", template)
        item = dict(operations)
        if names:
            item["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ]
        declared[template] = item
    return declared


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Rift proof verification", "version": "1"},
    "paths": _with_path_parameters(PATHS),
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": COMPONENTS,
    },
}


class OpenApiResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = DOCUMENT
