"""Request bodies checked against the published schemas; every failure is a 422 naming a field.

Hand-written schemas (service/api/schemas.py) validated with jsonschema, rather than a
framework that derives the document from handler signatures: the resources stay plain
Falcon, the same schema objects are published and enforced, and a test compares the
document's routes with the app's.
"""

from __future__ import annotations

from typing import Any

import falcon
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from service.api.schemas import Schema
from service.domain.errors import InvalidInput, UnsupportedMediaType

JSON_TYPE_NAMES = {
    "object": "a JSON object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


class BodySchema:
    """One request body's schema, compiled once."""

    def __init__(self, schema: Schema) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self.validator = Draft202012Validator(schema)

    def check(self, body: Any) -> dict[str, Any]:
        """Return body if it matches the schema; else raise InvalidInput saying what to fix."""
        if not isinstance(body, dict):
            raise InvalidInput("send a JSON object")
        unknown = sorted(set(body) - set(self.schema.get("properties", {})))
        if unknown and self.schema.get("additionalProperties") is False:
            raise self._unknown_fields(unknown)
        # Required fields first, then the rest in a stable (document) order.
        errors = sorted(self.validator.iter_errors(body), key=_error_order)
        if errors:
            raise _describe(errors[0])
        return body

    def _unknown_fields(self, unknown: list[str]) -> InvalidInput:
        refused = self.schema.get("x-refused", {})
        hints = sorted({refused[name] for name in unknown if name in refused})
        takes = ", ".join(self.schema["properties"])
        message = f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
        message += "; " + "; ".join(hints) if hints else f"; this body takes: {takes}"
        return InvalidInput(message, field=unknown[0])


def _error_order(error: ValidationError) -> tuple[int, str]:
    return (0 if error.validator == "required" else 1, str(list(error.absolute_path)))


def _describe(error: ValidationError) -> InvalidInput:
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = next(name for name in required if name not in present)
        return InvalidInput(f"{missing} is required", field=missing)
    path = [str(part) for part in error.absolute_path]
    name = path[0] if path else None
    if name is None:
        return InvalidInput(f"the body {error.message}")
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "type":
        return InvalidInput(f"{name} must be {JSON_TYPE_NAMES[schema['type']]}", field=name)
    if schema.get("x-error"):
        return InvalidInput(schema["x-error"], field=name)
    if error.validator == "enum":
        return InvalidInput(
            f"{name} must be one of: " + ", ".join(str(v) for v in schema["enum"]), field=name
        )
    if error.validator in ("minLength", "maxLength"):
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        span = f"{low}-{high}" if high is not None else f"at least {low}"
        return InvalidInput(f"{name} must be {span} characters", field=name)
    if error.validator in ("minimum", "maximum"):
        return InvalidInput(
            f"{name} must be between {schema.get('minimum')} and {schema.get('maximum')}",
            field=name,
        )
    return InvalidInput(f"{name}: {error.message}", field=name)


def json_body(req: falcon.Request, schema: BodySchema) -> dict[str, Any]:
    """Parse the request's JSON body (bounded, see json_bodies) and check it against schema."""
    # A form or multipart body would otherwise reach its own parser and pass for a dict.
    if req.content_type and not req.content_type.startswith(falcon.MEDIA_JSON):
        raise UnsupportedMediaType("send the body as application/json")
    body = req.get_media(default_when_empty=None)
    return schema.check(body)
