"""PDF rules: readable pages, real text, a plausible age, no active content."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import DictionaryObject

from service.verification.issues import ScoreCard, describe
from service.verification.pdf_actions import as_dict, flag_active_content
from service.verification.thresholds import VerificationThresholds


@dataclass(frozen=True)
class PdfFacts:
    """What the PDF rules learned about a document."""

    page_count: int
    text_chars: int
    has_images: bool
    created_at: datetime | None


def inspect_pdf(
    card: ScoreCard, path: Path, *, uploaded_at: datetime, thresholds: VerificationThresholds
) -> PdfFacts | None:
    """Apply the PDF rules to the document at `path`; return None when it cannot be parsed."""
    try:
        return _inspect(card, path, uploaded_at=uploaded_at, thresholds=thresholds)
    except RecursionError:
        card.fail_integrity("pdf.unreadable", "The PDF nests objects too deeply to be parsed.")
        return None
    # Everything the bytes can provoke in pypdf and below it (its own errors, zlib.error,
    # NotImplementedError for a filter it lacks, struct.error, MemoryError...) means
    # "unreadable", never a failed job.
    except Exception as exc:
        card.fail_integrity("pdf.unreadable", f"The PDF could not be parsed ({describe(exc)}).")
        return None


def _inspect(
    card: ScoreCard, path: Path, *, uploaded_at: datetime, thresholds: VerificationThresholds
) -> PdfFacts:
    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        card.flag("pdf.encrypted", "The PDF is encrypted, so its content cannot be checked.")
        # Documents with only an owner password open with an empty user password.
        with contextlib.suppress(PyPdfError, NotImplementedError, ValueError):
            reader.decrypt("")
    readable = not reader.is_encrypted or _decrypted(reader)
    page_count = len(reader.pages) if readable else 0
    text_chars = _count_text_chars(reader, page_count, thresholds) if readable else 0
    has_images = readable and _has_images(reader, page_count, thresholds)
    created_at = _creation_date(reader) if readable else None
    if readable:
        flag_active_content(card, reader, page_count)

    if page_count == 0 or text_chars < thresholds.pdf_min_text_chars:
        card.deduct(
            "pdf.no_text",
            f"The PDF has no pages or under {thresholds.pdf_min_text_chars} characters of text.",
            thresholds.pdf_no_text_penalty,
        )
    elif page_count == 1 and text_chars < thresholds.pdf_single_page_min_text_chars:
        card.deduct(
            "pdf.thin_single_page",
            "The PDF is a single page with under "
            f"{thresholds.pdf_single_page_min_text_chars} characters of text.",
            thresholds.pdf_thin_single_page_penalty,
        )
    if (
        created_at is not None
        and uploaded_at - created_at < timedelta(seconds=thresholds.pdf_fresh_window_s)
        and text_chars < thresholds.pdf_fresh_min_text_chars
    ):
        card.deduct(
            "pdf.freshly_created",
            "The PDF was created moments before upload and carries little text.",
            thresholds.pdf_fresh_penalty,
        )
    if has_images and text_chars <= thresholds.pdf_image_only_max_text_chars:
        card.deduct(
            "pdf.image_only",
            "The PDF holds images but almost no text.",
            thresholds.pdf_image_only_penalty,
        )
    return PdfFacts(page_count, text_chars, has_images, created_at)


def _decrypted(reader: PdfReader) -> bool:
    # pypdf exposes no public "is unlocked" flag; reading the page count fails while locked.
    try:
        return len(reader.pages) >= 0
    except PyPdfError:
        return False


def _count_text_chars(
    reader: PdfReader, page_count: int, thresholds: VerificationThresholds
) -> int:
    """Count non-whitespace text characters, stopping once every rule's bar is cleared."""
    enough = 1 + max(
        thresholds.pdf_min_text_chars,
        thresholds.pdf_single_page_min_text_chars,
        thresholds.pdf_fresh_min_text_chars,
        thresholds.pdf_image_only_max_text_chars,
    )
    total = 0
    for index in range(min(page_count, thresholds.pdf_max_pages_for_text)):
        # Whitespace is free to add, so it does not count as content.
        total += len("".join(reader.pages[index].extract_text().split()))
        if total >= enough:
            break
    return total


def _has_images(reader: PdfReader, page_count: int, thresholds: VerificationThresholds) -> bool:
    for index in range(min(page_count, thresholds.pdf_max_pages_for_text)):
        resources = as_dict(reader.pages[index].get("/Resources"))
        if resources is not None and _xobjects_hold_image(resources, depth=2):
            return True
    return False


def _xobjects_hold_image(resources: DictionaryObject, depth: int) -> bool:
    xobjects = as_dict(resources.get("/XObject"))
    if xobjects is None:
        return False
    for ref in xobjects.values():
        xobject = as_dict(ref)
        if xobject is None:
            continue
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        # Images are often wrapped in a form XObject one level down.
        nested = as_dict(xobject.get("/Resources"))
        if (
            subtype == "/Form"
            and depth > 0
            and nested is not None
            and _xobjects_hold_image(nested, depth - 1)
        ):
            return True
    return False


def _creation_date(reader: PdfReader) -> datetime | None:
    try:
        metadata = reader.metadata
        created = metadata.creation_date if metadata is not None else None
    except (PyPdfError, ValueError, TypeError):
        return None
    if created is None:
        return None
    # PDF dates without a zone are local to an unknown place; UTC is the least-wrong guess.
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)
