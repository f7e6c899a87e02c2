"""Proof intake: the whole submission use case, from the seller's form to dispatched jobs.

The HTTP resource hands over the form's fields as they stream in; this module decides who
may submit, stores the files (removing them again if the submission is refused or fails),
writes everything in one transaction, answers a replayed Idempotency-Key as the first
request was answered (also when two such requests race), and dispatches the jobs after
the commit.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from service.blobs import BlobStore, StoredBlob
from service.commit_outcome import CommitOutcomeUnknown
from service.domain.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.domain.jobs import NewJob
from service.domain.proofs import (
    MAX_FIELD_CHARS,
    KeySealer,
    ProofSubmission,
    SubmissionReceipt,
    UploadedFile,
    authorise_submission,
    check_idempotency_key,
    find_replay,
    submit_proof,
)
from service.domain.users import User
from service.domain.work import UnitOfWork
from service.verification.sniffing import ALLOWED_MIMES, OCTET_STREAM, sniff_mime

MAX_NAME_CHARS = 255
# Unicode control (Cc) and format (Cf: bidirectional overrides, zero-width) characters.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})
#: The assets table's declared_mime column.
MAX_DECLARED_MIME_CHARS = 128
TEXT_FIELDS = tuple(MAX_FIELD_CHARS)
#: UTF-8 needs at most 4 bytes a character: a text field over this many bytes is too long
#: whatever it holds, so reading stops there instead of buffering a huge field.
UTF8_MAX_BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int
    max_files: int
    max_request_bytes: int


@dataclass(frozen=True)
class FormField:
    """One part of the submission form, its content still streaming."""

    name: str | None
    filename: str | None
    content_type: str | None
    chunks: Iterator[bytes]


def display_name(filename: str | None) -> str:
    """Reduce a client's file name to something safe to show: no path, no control chars.

    A browser may send a whole path ("C:\\Users\\me\\invoice.pdf"): its last part is the
    name. A name that climbs out of its folder or hides characters (controls, bidirectional
    overrides that show "invoice<U+202E>fdp.exe" as "invoiceexe.pdf") is refused: no
    honest upload carries them, and a reviewer must see the name the seller chose.
    """
    path = unicodedata.normalize("NFC", filename or "upload").replace("\\", "/")
    if ".." in path.split("/"):
        raise InvalidInput(
            "a file name contains a '..' path segment; send the file under its own name",
            field="files",
        )
    hidden = sorted({ch for ch in path if unicodedata.category(ch) in HIDDEN_CATEGORIES})
    if hidden:
        points = ", ".join(f"U+{ord(ch):04X}" for ch in hidden[:5])
        raise InvalidInput(
            f"a file name contains control or invisible formatting characters ({points}); "
            "rename the file without them",
            field="files",
        )
    name = path.rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.strip()[:MAX_NAME_CHARS] or "upload"


def read_text_field(field: FormField) -> str:
    """Decode a text field as UTF-8 whatever Content-Type the client gave it.

    A field sent as application/octet-stream is still the seller's text: dropping it
    silently would accept a proof without the part the seller meant to send.
    """
    name = field.name or "field"
    limit = MAX_FIELD_CHARS[name]
    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces: list[str] = []
    size = 0
    try:
        for chunk in field.chunks:
            size += len(chunk)
            if size > limit * UTF8_MAX_BYTES_PER_CHAR:
                raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
            pieces.append(decoder.decode(chunk))
        pieces.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise InvalidInput(f"send {name} as UTF-8 text", field=name) from None
    return "".join(pieces)


@dataclass(frozen=True)
class ProofIntake:
    """Takes a seller's proof submission; see the module docstring for what it owns."""

    work: UnitOfWork
    blobs: BlobStore
    sealer: KeySealer
    limits: IntakeLimits

    def check_size(self, declared_bytes: int | None) -> None:
        """Refuse a request whose declared size is over the limit, before reading it."""
        if declared_bytes is not None and declared_bytes > self.limits.max_request_bytes:
            raise PayloadTooLarge(
                f"the request is larger than {self.limits.max_request_bytes} bytes; "
                "send fewer or smaller files"
            )

    def authorise(self, rift_id: str, user: User) -> None:
        """Refuse whoever may not submit to this rift, before a byte of the body is read.

        A stranger's 50 MB upload is refused without ever touching the disk.
        """
        with self.work.read_once() as conn:
            authorise_submission(conn, rift_id, user)

    def submit(
        self,
        rift_id: str,
        seller: User,
        form: Iterable[FormField],
        *,
        idempotency_key: str | None,
    ) -> SubmissionReceipt:
        """Store the proof in form and dispatch its jobs; a replay answers as the first did."""
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)  # before a byte of the body is stored
        stored: list[StoredBlob] = []
        try:
            submission = self._read_form(form, stored)
            receipt = self._store(rift_id, seller, submission, idempotency_key)
        except CommitOutcomeUnknown:
            # The proof may be stored and its assets name these blobs: they stay. If it was
            # not, the upkeep deletes them as orphans (ORPHAN_GRACE).
            raise
        except BaseException:
            # Nothing half-written: blobs of a refused or failed submission are removed.
            self._discard(stored)
            raise
        if receipt.replayed:
            self._discard(stored)
        return receipt

    def _discard(self, stored: list[StoredBlob]) -> None:
        for blob in stored:
            self.blobs.delete(blob.key)

    def _read_form(self, form: Iterable[FormField], stored: list[StoredBlob]) -> ProofSubmission:
        files: list[UploadedFile] = []
        values: dict[str, str] = {}
        for field in form:
            if field.name == "files":
                if len(files) >= self.limits.max_files:
                    raise InvalidInput(
                        f"at most {self.limits.max_files} files per proof", field="files"
                    )
                name = display_name(field.filename)
                blob = self.blobs.write(
                    field.chunks, max_bytes=self.limits.max_file_bytes, label=f"file {name!r}"
                )
                stored.append(blob)
                files.append(self._accept_file(blob, name, field.content_type))
            elif field.name in TEXT_FIELDS:
                if field.name in values:
                    raise InvalidInput(f"send {field.name} once", field=field.name)
                values[field.name] = read_text_field(field)
            else:
                raise InvalidInput(
                    f"unknown form field {field.name!r}; expected files, " + ", ".join(TEXT_FIELDS),
                    field=field.name,
                )
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
        if declared is not None and len(declared) > MAX_DECLARED_MIME_CHARS:
            raise InvalidInput(
                f"file {name!r} declares a Content-Type longer than "
                f"{MAX_DECLARED_MIME_CHARS} characters; send its real type or none",
                field="files",
            )
        return UploadedFile(
            blob=blob,
            original_name=name,
            declared_mime=declared if declared and declared != OCTET_STREAM else None,
            sniffed_mime=sniffed,
        )

    def _store(
        self,
        rift_id: str,
        seller: User,
        submission: ProofSubmission,
        idempotency_key: str | None,
    ) -> SubmissionReceipt:
        try:
            return self.work.run(
                lambda session, now: _with_jobs(
                    submit_proof(
                        session,
                        rift_id,
                        seller,
                        submission,
                        idempotency_key=idempotency_key,
                        sealer=self.sealer,
                        now=now,
                        ids=self.work.ids,
                    )
                )
            )
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race: answer as it did.
            if idempotency_key is None:
                raise
            with self.work.read() as session:
                replay = find_replay(session, rift_id, idempotency_key, submission.fingerprint())
            if replay is None:
                raise
            return replay


def _with_jobs(receipt: SubmissionReceipt) -> tuple[SubmissionReceipt, list[NewJob]]:
    return receipt, receipt.jobs
