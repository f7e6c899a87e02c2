"""The one place domain errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from service.commit_outcome import CommitOutcomeUnknown
from service.db_outage import is_transient
from service.domain import errors
from service.observability.redaction import safe_error_text

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5
BLOB_STORE_RETRY_AFTER_S = 5

STATUS_BY_ERROR: dict[type[errors.DomainError], str] = {
    errors.Unauthenticated: falcon.HTTP_401,
    errors.Forbidden: falcon.HTTP_403,
    errors.NotFound: falcon.HTTP_404,
    errors.InvalidInput: falcon.HTTP_422,
    errors.PayloadTooLarge: falcon.HTTP_413,
    errors.UnsupportedMediaType: falcon.HTTP_415,
    errors.TransitionNotAllowed: falcon.HTTP_409,
    errors.VersionConflict: falcon.HTTP_409,
    errors.IdempotencyKeyReused: falcon.HTTP_422,
    errors.JobNotRetryable: falcon.HTTP_409,
    errors.FileNotServable: falcon.HTTP_409,
    errors.ConfirmationOutdated: falcon.HTTP_409,
}


def handle_domain_error(
    req: falcon.Request, resp: falcon.Response, error: errors.DomainError, params: Any
) -> None:
    """Render a domain error as JSON with a status that names its class of mistake."""
    status = next(
        (s for cls, s in STATUS_BY_ERROR.items() if isinstance(error, cls)), falcon.HTTP_400
    )
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    if isinstance(error, errors.InvalidInput) and error.field:
        body["field"] = error.field
    if isinstance(error, errors.TransitionNotAllowed):
        body["allowed"] = error.allowed
    if isinstance(error, errors.Unauthenticated):
        resp.append_header("WWW-Authenticate", 'Bearer realm="rift"')
    resp.status = status
    resp.media = body


def serialize_http_error(
    req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError
) -> None:
    """Render Falcon's own errors (bad JSON, unknown route) in the same JSON shape."""
    resp.content_type = falcon.MEDIA_JSON
    # Falcon's default title is the status line ("404 Not Found"): the code is its words.
    title = (exception.title or "error").lower()
    code = title.split(" ", 1)[1] if title[:3].isdigit() and " " in title else title
    resp.media = {
        "error": code.replace(" ", "_"),
        "message": exception.description or _advice(req, exception),
    }


def _advice(req: falcon.Request, exception: falcon.HTTPError) -> str:
    """What to do about one of Falcon's errors that came without a description."""
    if exception.status_code == 404:
        return f"no route {req.path}; the routes are listed at /openapi.json"
    if exception.status_code == 405:
        allowed = dict(exception.headers or {}).get("Allow", "")
        return f"{req.method} is not allowed on {req.path}; allowed: {allowed or 'none'}"
    return exception.title or "request failed"


def handle_blob_store_unavailable(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: Any
) -> None:
    """Answer 503 with Retry-After when the object store does not answer (never a 500)."""
    _unavailable(
        resp,
        "blob_store_unavailable",
        "file storage is unavailable right now; nothing was saved, "
        f"send the same request again in {BLOB_STORE_RETRY_AFTER_S} seconds",
        retry_after_s=BLOB_STORE_RETRY_AFTER_S,
    )


def handle_commit_outcome_unknown(
    req: falcon.Request, resp: falcon.Response, error: CommitOutcomeUnknown, params: Any
) -> None:
    """503 that says the truth: the request may have been saved, so look before resending."""
    log.error("commit outcome unknown: answered 503", extra={"error": str(error)})
    _unavailable(
        resp,
        "outcome_unknown",
        "the database went away while this request was being saved and has not come "
        "back to say whether it was: it may have been. Look before sending it again "
        "(for a proof: GET the rift, whose latest proof shows it), or send it again "
        "with the same Idempotency-Key, which is answered as the first request was",
        retry_after_s=DATABASE_RETRY_AFTER_S,
    )


def _unavailable(resp: falcon.Response, code: str, message: str, *, retry_after_s: int) -> None:
    resp.status = falcon.HTTP_503
    resp.append_header("Retry-After", str(retry_after_s))
    resp.media = {"error": code, "message": message}


def handle_database_unavailable(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: Any
) -> None:
    """Answer 503 with Retry-After when the database cannot be reached (never a 500)."""
    if not is_transient(error):
        log.error("database error", exc_info=error)
        raise falcon.HTTPInternalServerError()
    # The operator on call wants to see the outage (or a cause mistaken for one) too.
    log.warning("database unavailable: answered 503", extra={"error": safe_error_text(error)})
    _unavailable(
        resp,
        "database_unavailable",
        "the database is unavailable right now; nothing was saved, "
        f"send the same request again in {DATABASE_RETRY_AFTER_S} seconds",
        retry_after_s=DATABASE_RETRY_AFTER_S,
    )
