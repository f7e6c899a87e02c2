"""Domain errors: each says what went wrong and what the caller can do about it."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every error a caller can cause; the HTTP layer maps each class to a status."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidInput(DomainError):
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"

    def __init__(self, message: str, *, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.allowed = list(allowed)


class VersionConflict(DomainError):
    code = "version_conflict"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class JobNotRetryable(DomainError):
    code = "job_not_retryable"


class FileNotServable(DomainError):
    code = "file_not_servable"


class ConfirmationOutdated(DomainError):
    """What the operator confirmed no longer matches what the action would do."""

    code = "confirmation_outdated"
