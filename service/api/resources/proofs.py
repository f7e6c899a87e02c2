"""Proof submission (202 with the real job id) and the verification status a seller polls."""

from __future__ import annotations

from collections.abc import Iterator

import falcon
from falcon.media.multipart import BodyPart
from prometheus_client import Counter

from service.api.resources import Authenticate
from service.api.views import status_view
from service.domain.errors import InvalidInput, UnsupportedMediaType
from service.domain.intake import MAX_NAME_CHARS, FormField, ProofIntake
from service.domain.proofs import latest_verification
from service.domain.work import UnitOfWork

UPLOAD_CHUNK_BYTES = 256 * 1024
#: Falcon's limit on one part's header block (its default, set explicitly by the app).
MAX_PART_HEADER_BYTES = 8192


def _chunks(part: BodyPart) -> Iterator[bytes]:
    while chunk := part.stream.read(UPLOAD_CHUNK_BYTES):
        yield chunk


def form_fields(req: falcon.Request) -> Iterator[FormField]:
    """Stream the multipart body's parts; a malformed body is the client's 422."""
    try:
        for part in req.get_media():
            yield FormField(part.name, part.filename, part.content_type, _chunks(part))
    except falcon.MediaMalformedError as exc:
        detail = exc.description or "unreadable"
        if detail == "incomplete body part headers":
            detail += (
                f": each part's headers must end within {MAX_PART_HEADER_BYTES} bytes "
                f"(send file names of at most {MAX_NAME_CHARS} characters)"
            )
        raise InvalidInput(f"malformed multipart body: {detail}") from None


class ProofCollection:
    def __init__(
        self, authenticate: Authenticate, intake: ProofIntake, submissions: Counter
    ) -> None:
        self.authenticate = authenticate
        self.intake = intake
        self.submissions = submissions

    def on_post(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        self.intake.check_size(req.content_length)
        self.intake.authorise(rift_id, user)
        if not (req.content_type or "").startswith(falcon.MEDIA_MULTIPART):
            raise UnsupportedMediaType("send proof as multipart/form-data")
        receipt = self.intake.submit(
            rift_id, user, form_fields(req), idempotency_key=req.get_header("Idempotency-Key")
        )
        if not receipt.replayed:
            self.submissions.inc()
        resp.status = falcon.HTTP_202
        resp.location = f"/api/rifts/{rift_id}/verification-status"
        resp.media = {
            "proof_id": receipt.proof_id,
            "verification_job_id": receipt.verification_job_id,
            "status": "PENDING",
            "status_url": f"/api/rifts/{rift_id}/verification-status",
            "job_url": f"/api/jobs/{receipt.verification_job_id}",
            "asset_ids": receipt.asset_ids,
            "replayed": receipt.replayed,
        }


class VerificationStatus:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        with self.work.read() as session:
            snapshot = latest_verification(session, rift_id, user)
            resp.media = status_view(snapshot.rift, snapshot.proof, snapshot.job)
