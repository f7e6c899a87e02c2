"""JSON Schemas of every request and response body: the contract's one source.

The OpenAPI document (service/api/openapi.py) publishes them; request bodies are validated
against the same objects (service/api/validation.py), so what is documented is what is
enforced. Request schemas are self-contained (no $ref) so that each validates on its own;
`x-error` on a property is the message a client gets when that property is wrong.
"""

from __future__ import annotations

from typing import Any

from service.domain.job_search import MAX_COUNTED
from service.domain.proofs import MAX_FIELD_CHARS, MAX_IDEMPOTENCY_KEY_CHARS
from service.domain.rifts import (
    MAX_REASON_CHARS,
    MAX_SUBTOTAL_MINOR,
    MAX_TITLE_CHARS,
    MAX_USER_ID_CHARS,
)
from service.models import ActorRole, AssetType, ItemType, JobState, RiftStatus

Schema = dict[str, Any]


def _enum(values: type[Any]) -> list[str]:
    return [member.value for member in values]


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
MAYBE_TIME = _nullable(TIME)
MAYBE_STRING = _nullable(STRING)

# -- request bodies ------------------------------------------------------------------

NEW_RIFT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "item_type", "seller_id", "subtotal", "currency"],
    "properties": {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TITLE_CHARS,
            "description": "plain text: no control or bidirectional formatting characters",
        },
        "item_type": {"type": "string", "enum": _enum(ItemType)},
        "seller_id": {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID_CHARS},
        "subtotal": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SUBTOTAL_MINOR,
            "description": "in minor units (cents)",
            "x-error": "subtotal must be a positive amount in minor units, "
            f"at most {MAX_SUBTOTAL_MINOR}",
        },
        "currency": {
            "type": "string",
            "pattern": "^[A-Za-z]{3}$",
            "description": "an active ISO 4217 code",
            "x-error": "currency must be a 3-letter ISO 4217 code such as USD or EUR",
        },
    },
    # Named when a buyer sends them: the decisive risk inputs are not the buyer's to set.
    "x-refused": {
        "risk_score": "risk_score (between 0 and 100) and requires_manual_review are the "
        "platform's to set: an admin sets them with PUT /api/rifts/{rift_id}/risk",
        "requires_manual_review": "risk_score (between 0 and 100) and requires_manual_review "
        "are the platform's to set: an admin sets them with PUT /api/rifts/{rift_id}/risk",
    },
}

TRANSITION_REQUEST: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to"],
    "properties": {
        "to": {"type": "string", "enum": _enum(RiftStatus)},
        "version": {
            "type": "integer",
            "minimum": 1,
            "description": "the version you last read; 409 if the rift moved since",
        },
        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
    },
}

RISK_ASSESSMENT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["risk_score", "requires_manual_review", "reason"],
    "properties": {
        "risk_score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "x-error": "risk_score must be between 0 and 100",
        },
        "requires_manual_review": {"type": "boolean"},
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
    },
}

PROOF_FORM: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "at least one field; every text field is UTF-8",
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "PDF, JPEG, PNG, GIF, WebP, zip, plain text, docx/xlsx/pptx",
        },
        **{name: {"type": "string", "maxLength": limit} for name, limit in MAX_FIELD_CHARS.items()},
    },
}

IDEMPOTENCY_KEY: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS}

# -- responses -------------------------------------------------------------------------

ERROR: Schema = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. invalid_input"},
        "message": {"type": "string", "description": "what went wrong and what to do"},
        "field": {"type": "string", "description": "the field to fix (422)"},
        "allowed": {"type": "array", "items": STRING, "description": "allowed targets (409)"},
    },
}

RIFT: Schema = {
    "type": "object",
    "required": ["id", "title", "item_type", "buyer_id", "seller_id", "status", "version"],
    "properties": {
        "id": STRING,
        "title": STRING,
        "item_type": {"type": "string", "enum": _enum(ItemType)},
        "buyer_id": STRING,
        "seller_id": STRING,
        "subtotal": {"type": "integer"},
        "currency": STRING,
        "risk_score": {"type": "integer", "minimum": 0, "maximum": 100},
        "requires_manual_review": {"type": "boolean"},
        "status": {"type": "string", "enum": _enum(RiftStatus)},
        "version": {"type": "integer"},
        "proof_valid": _nullable({"type": "boolean"}),
        "created_at": TIME,
        "funded_at": MAYBE_TIME,
        "proof_submitted_at": MAYBE_TIME,
        "released_at": MAYBE_TIME,
        "auto_release_at": MAYBE_TIME,
    },
}

_STATUS_OR_NULL = _nullable({"type": "string", "enum": _enum(RiftStatus)})
RIFT_EVENTS: Schema = {
    "type": "object",
    "required": ["rift_id", "events"],
    "properties": {
        "rift_id": STRING,
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "actor_role", "reason", "created_at"],
                "properties": {
                    "kind": STRING,
                    "actor_role": {"type": "string", "enum": _enum(ActorRole)},
                    "actor_id": MAYBE_STRING,
                    "from_status": _STATUS_OR_NULL,
                    "to_status": _STATUS_OR_NULL,
                    "reason": STRING,
                    "created_at": TIME,
                },
            },
        },
    },
}

JOB: Schema = {
    "type": "object",
    "required": ["id", "actor", "queue", "state", "attempts"],
    "properties": {
        "id": STRING,
        "actor": STRING,
        "queue": STRING,
        "state": {"type": "string", "enum": _enum(JobState)},
        "rift_id": MAYBE_STRING,
        "proof_id": MAYBE_STRING,
        "attempts": {"type": "integer"},
        "progress": {"type": "integer"},
        "last_error": _nullable(
            {"type": "string", "description": "the error class and a safe message"}
        ),
        "waiting_for_redelivery": {
            "type": "boolean",
            "description": "the broker lost the job; the reconciler sent it again, under its id",
        },
        "result": _nullable({"type": "object"}),
        "created_at": TIME,
        "dispatched_at": MAYBE_TIME,
        "started_at": MAYBE_TIME,
        "finished_at": MAYBE_TIME,
        "updated_at": TIME,
    },
}

JOB_LIST: Schema = {
    "type": "object",
    "required": ["jobs", "total", "total_is_lower_bound", "next_cursor"],
    "properties": {
        "jobs": {"type": "array", "items": JOB},
        "total": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_COUNTED,
            "description": f"jobs the filter matches, counted up to {MAX_COUNTED:,} (a count "
            "of every match would cost more than the page on a large table)",
        },
        "total_is_lower_bound": {
            "type": "boolean",
            "description": f"more than {MAX_COUNTED:,} match: total is where the count stopped",
        },
        "next_cursor": {
            **MAYBE_STRING,
            "description": "pass as cursor for the next page; null on the last page",
        },
    },
}

PROOF_RECEIPT: Schema = {
    "type": "object",
    "required": ["proof_id", "verification_job_id", "status", "status_url", "asset_ids"],
    "properties": {
        "proof_id": STRING,
        "verification_job_id": STRING,
        "status": {"type": "string", "enum": ["PENDING"]},
        "status_url": STRING,
        "job_url": STRING,
        "asset_ids": {"type": "array", "items": STRING},
        "replayed": {"type": "boolean", "description": "an Idempotency-Key seen before"},
    },
}

ASSET_RESULT: Schema = {
    "type": "object",
    "required": ["asset_id", "type"],
    "properties": {
        "asset_id": STRING,
        "type": {"type": "string", "enum": _enum(AssetType)},
        "passed": _nullable({"type": "boolean"}),
        "score": _nullable({"type": "integer"}),
        "issues": {"type": "array"},
        "deductions": {"type": "array"},
        "scan_status": MAYBE_STRING,
        "deleted": {"type": "boolean"},
        "name": STRING,
        "size_bytes": _nullable({"type": "integer"}),
        "sha256": MAYBE_STRING,
        "mime_type": MAYBE_STRING,
        "scan_signature": MAYBE_STRING,
        "quarantined": {"type": "boolean"},
    },
}

VERIFICATION_STATUS: Schema = {
    "type": "object",
    "required": ["rift_id", "rift_status", "status"],
    "properties": {
        "rift_id": STRING,
        "rift_status": {"type": "string", "enum": _enum(RiftStatus)},
        "proof_id": MAYBE_STRING,
        "status": {
            "type": "string",
            "enum": ["not_started", "pending", "processing", "completed", "failed"],
        },
        "job": _nullable(JOB),
        "result": _nullable(
            {
                "type": "object",
                "properties": {
                    "passed": _nullable({"type": "boolean"}),
                    "route_to_review": _nullable({"type": "boolean"}),
                    "auto_approved": _nullable({"type": "boolean"}),
                    "reasons": {"type": "array"},
                    "decided_at": MAYBE_TIME,
                    "assets": {"type": "array", "items": ASSET_RESULT},
                },
            }
        ),
        "auto_release_at": MAYBE_TIME,
    },
}

QUEUES: Schema = {
    "type": "object",
    "required": ["queues"],
    "properties": {"queues": {"type": "array", "items": {"type": "object"}}},
}

LIVENESS: Schema = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
}

READINESS: Schema = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": ["ok", "down"]},
        },
    },
}

#: Every schema the document publishes, by component name.
COMPONENTS: dict[str, Schema] = {
    "Error": ERROR,
    "NewRift": NEW_RIFT,
    "TransitionRequest": TRANSITION_REQUEST,
    "RiskAssessment": RISK_ASSESSMENT,
    "ProofForm": PROOF_FORM,
    "Rift": RIFT,
    "RiftEvents": RIFT_EVENTS,
    "Job": JOB,
    "JobList": JOB_LIST,
    "ProofReceipt": PROOF_RECEIPT,
    "VerificationStatus": VERIFICATION_STATUS,
    "Queues": QUEUES,
    "Liveness": LIVENESS,
    "Readiness": READINESS,
}
