"""Proof submission (202 with the real job id) and the verification status a seller polls."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import falcon
from falcon.media.multipart import BodyPart
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.api.context import ApiContext
from service.api.metrics import ApiMetrics
from service.api.views import status_view
from service.blobs import StoredBlob
from service.db import transaction
from service.domain.errors import (
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from service.domain.jobs import dispatch_jobs
from service.domain.proofs import (
    ProofSubmission,
    SubmissionReceipt,
    UploadedFile,
    authorise_submission,
    find_replay,
    submit_proof,
)
from service.domain.rifts import load_rift
from service.models import Job, Proof
from service.verification.files import ALLOWED_MIMES, sniff_mime

UPLOAD_CHUNK_BYTES = 256 * 1024
MAX_NAME_CHARS = 255
TEXT_FIELDS = ("license_key", "tracking_number", "url", "text")


def display_name(filename: str | None) -> str:
    """Reduce a client's file name to something safe to show: no path, no control chars."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C"
    )
    return name.strip()[:MAX_NAME_CHARS] or "upload"


def _chunks(part: BodyPart) -> Iterator[bytes]:
    while chunk := part.stream.read(UPLOAD_CHUNK_BYTES):
        yield chunk


class ProofCollection:
    def __init__(self, ctx: ApiContext, metrics: ApiMetrics) -> None:
        self.ctx = ctx
        self.metrics = metrics

    def on_post(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.ctx.user(req)
        settings = self.ctx.settings
        if req.content_length is not None and req.content_length > settings.max_request_bytes:
            raise PayloadTooLarge(
                f"the request is larger than {settings.max_request_bytes} bytes; "
                "send fewer or smaller files"
            )
        # Authorise before reading a byte of the body: a stranger's 50 MB upload is refused
        # without ever touching the disk.
        with self.ctx.sessions() as session:
            authorise_submission(session, rift_id, user)
        if not (req.content_type or "").startswith(falcon.MEDIA_MULTIPART):
            raise UnsupportedMediaType("send proof as multipart/form-data")

        stored: list[StoredBlob] = []
        try:
            submission = self._read_form(req, stored)
            receipt = self._store(rift_id, user, submission, req.get_header("Idempotency-Key"))
        except BaseException:
            # Nothing half-written: blobs of a refused or failed submission are removed.
            for blob in stored:
                self.ctx.blobs.delete(blob.key)
            raise
        if receipt.replayed:
            for blob in stored:
                self.ctx.blobs.delete(blob.key)
        else:
            self.metrics.submissions.inc()
            dispatch_jobs(self.ctx.sessions, self.ctx.dispatcher, receipt.jobs, self.ctx.clock)
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

    def _read_form(self, req: falcon.Request, stored: list[StoredBlob]) -> ProofSubmission:
        settings = self.ctx.settings
        files: list[UploadedFile] = []
        values: dict[str, str] = {}
        try:
            form = req.get_media()
            for part in form:
                if part.name == "files":
                    if len(files) >= settings.max_files_per_proof:
                        raise InvalidInput(
                            f"at most {settings.max_files_per_proof} files per proof", field="files"
                        )
                    name = display_name(part.filename)
                    blob = self.ctx.blobs.write(
                        _chunks(part), max_bytes=settings.max_file_bytes, label=f"file {name!r}"
                    )
                    stored.append(blob)
                    files.append(self._accept_file(blob, name, part.content_type))
                elif part.name in TEXT_FIELDS:
                    if part.name in values:
                        raise InvalidInput(f"send {part.name} once", field=part.name)
                    values[part.name] = part.get_text() or ""
                else:
                    raise InvalidInput(
                        f"unknown form field {part.name!r}; expected files, "
                        + ", ".join(TEXT_FIELDS),
                        field=part.name,
                    )
        except falcon.MediaMalformedError as exc:
            raise InvalidInput(f"malformed multipart body: {exc.description}") from None
        return ProofSubmission(
            files=files,
            **{k: (v.strip() or None) for k, v in values.items()},
        )

    def _accept_file(self, blob: StoredBlob, name: str, declared: str | None) -> UploadedFile:
        sniffed = sniff_mime(blob.head)
        if sniffed not in ALLOWED_MIMES:
            raise UnsupportedMediaType(
                f"file {name!r} is {sniffed}; allowed types: " + ", ".join(sorted(ALLOWED_MIMES))
            )
        declared_mime = declared if declared and declared != "application/octet-stream" else None
        return UploadedFile(
            blob=blob, original_name=name, declared_mime=declared_mime, sniffed_mime=sniffed
        )

    def _store(
        self, rift_id: str, user: Any, submission: ProofSubmission, idempotency_key: str | None
    ) -> SubmissionReceipt:
        try:
            with transaction(self.ctx.sessions) as session:
                return submit_proof(
                    session,
                    rift_id,
                    user,
                    submission,
                    idempotency_key=idempotency_key,
                    sealer=self.ctx.sealer,
                    now=self.ctx.clock(),
                    ids=self.ctx.ids,
                )
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race: answer as it did.
            if idempotency_key is None:
                raise
            with self.ctx.sessions() as session:
                replay = find_replay(session, rift_id, idempotency_key, submission.fingerprint())
            if replay is None:
                raise
            return replay


class VerificationStatus:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.ctx.user(req)
        with self.ctx.sessions() as session:
            rift = load_rift(session, rift_id, user)
            proof = session.scalars(
                select(Proof)
                .where(Proof.rift_id == rift_id)
                .order_by(Proof.submitted_at.desc())
                .limit(1)
            ).one_or_none()
            if proof is not None and proof.verdict_at is not None:
                # The verdict and the rift's move commit together; the rift read above may
                # predate both, so read it again to show them side by side.
                session.refresh(rift)
            job = session.get(Job, proof.verification_job_id) if proof else None
            resp.media = status_view(rift, proof, job)
