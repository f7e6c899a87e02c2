"""File rules: type from the bytes, the allow-list, size bounds; then per-type checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.verification.images import inspect_image
from service.verification.issues import AssetCheck, ScoreCard, describe
from service.verification.pdf import inspect_pdf
from service.verification.sniffing import (
    ALLOWED_MIMES,
    IMAGE_MIMES,
    OCTET_STREAM,
    OOXML_MIMES,
    PDF,
    TEXT,
    ZIP,
    normalize_mime,
    sniff_mime,
)
from service.verification.thresholds import VerificationThresholds
from service.verification.zip_directory import has_zip_directory
from service.verification.zips import inspect_zip

PDF_HEADER = b"%PDF-"
POLYGLOT_HEAD_BYTES = 64 * 1024
# Markup a browser runs or renders active, were the "text" shown as a page.
ACTIVE_MARKUP = re.compile(
    rb"<\s*(script|html|svg|iframe|object|embed|body|img[^>]+on\w+\s*=)|<!doctype\s+html"
    rb"|javascript\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FileCheck:
    """The check of one stored file, plus the facts the caller persists with the asset."""

    check: AssetCheck
    sniffed_mime: str
    phash: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of this file check."""
        return {**self.check.to_dict(), "sniffed_mime": self.sniffed_mime, "facts": self.facts}


def check_file(
    path: Path,
    *,
    declared_mime: str | None,
    size_bytes: int,
    uploaded_at: datetime,
    thresholds: VerificationThresholds,
) -> FileCheck:
    """Apply the file rules, then the rules of its sniffed type, to the stored file."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    uploaded_at = uploaded_at if uploaded_at.tzinfo is not None else uploaded_at.replace(tzinfo=UTC)
    try:
        on_disk_bytes = path.stat().st_size
    except OSError:
        card.fail_integrity("file.missing", "The stored file could not be read.")
        return FileCheck(card.finish(), sniffed_mime=OCTET_STREAM)
    if on_disk_bytes != size_bytes:
        card.fail_integrity(
            "file.size_mismatch",
            f"The stored file holds {on_disk_bytes} bytes, not the {size_bytes} recorded.",
        )
    sniffed = sniff_mime(path)
    facts: dict[str, Any] = {}

    if size_bytes < thresholds.min_file_bytes:
        card.flag(
            "file.too_small",
            f"The file is {size_bytes} bytes, under the minimum of {thresholds.min_file_bytes}.",
        )
    if size_bytes > thresholds.max_file_bytes:
        card.fail_integrity(
            "file.too_large",
            f"The file is {size_bytes} bytes, over the maximum of {thresholds.max_file_bytes}.",
        )
    if sniffed not in ALLOWED_MIMES:
        card.fail_integrity("file.type_not_allowed", f"Files of type {sniffed} are not accepted.")
    declared = normalize_mime(declared_mime) if declared_mime else None
    # Browsers send octet-stream when they do not know; that is no claim to contradict.
    if declared not in (None, "", OCTET_STREAM) and declared != sniffed:
        card.flag(
            "file.type_mismatch",
            f"The file was declared as {declared} but its content is {sniffed}.",
        )
    if not card.integrity_ok:
        return FileCheck(card.finish(), sniffed_mime=sniffed, facts=facts)

    try:
        _flag_second_format(card, path, sniffed)
        phash, facts = _inspect_content(card, path, sniffed, uploaded_at, thresholds)
    # Each type's rules turn their parser's errors into issues; this fence catches what
    # slips past them, so no byte sequence ends the check instead of failing the file.
    except Exception as exc:
        card.fail_integrity(
            "file.unreadable", f"The file could not be inspected ({describe(exc)})."
        )
        phash, facts = None, {}
    return FileCheck(card.finish(), sniffed_mime=sniffed, phash=phash, facts=facts)


def _flag_second_format(card: ScoreCard, path: Path, sniffed: str) -> None:
    """Flag a file that is two formats at once: each reader sees a different file."""
    with path.open("rb") as stream:
        head = stream.read(POLYGLOT_HEAD_BYTES)
    if sniffed != ZIP and sniffed not in OOXML_MIMES and has_zip_directory(path):
        card.flag(
            "file.polyglot",
            f"The file is {sniffed} and also a zip archive (one is appended to the other), "
            "so what a reader opens depends on the program.",
        )
    # PDF readers look for the header anywhere in the first kilobyte.
    if sniffed != PDF and PDF_HEADER in head:
        card.flag("file.polyglot", f"The file is {sniffed} and also a PDF.")
    if sniffed == PDF and not head.startswith(PDF_HEADER):
        card.flag("file.polyglot", "Something other than the PDF comes before its header.")
    if sniffed == TEXT and ACTIVE_MARKUP.search(head) is not None:
        card.flag(
            "file.active_markup",
            "The text file holds HTML or script markup, which a browser would run.",
        )


def _inspect_content(
    card: ScoreCard,
    path: Path,
    sniffed: str,
    uploaded_at: datetime,
    thresholds: VerificationThresholds,
) -> tuple[int | None, dict[str, Any]]:
    if sniffed == PDF:
        pdf = inspect_pdf(card, path, uploaded_at=uploaded_at, thresholds=thresholds)
        if pdf is not None:
            return None, {"page_count": pdf.page_count, "text_chars": pdf.text_chars}
    elif sniffed in IMAGE_MIMES:
        image = inspect_image(card, path, thresholds=thresholds)
        if image is not None:
            return image.phash, {"width_px": image.width_px, "height_px": image.height_px}
    elif sniffed == ZIP or sniffed in OOXML_MIMES:
        archive = inspect_zip(card, path, thresholds=thresholds)
        if archive is not None:
            return None, {"member_count": archive.member_count}
    return None, {}


def apply_reuse(
    file_check: FileCheck,
    *,
    exact_copy_on_other_rift: bool,
    near_duplicate_on_other_rift: bool,
    thresholds: VerificationThresholds,
) -> FileCheck:
    """Add the findings of the caller's sha256 and perceptual-hash lookups to a file check."""
    card = ScoreCard.resume(file_check.check)
    if exact_copy_on_other_rift:
        card.flag("file.reused", "The same file was submitted as proof on another rift.")
    if near_duplicate_on_other_rift:
        card.deduct(
            "image.near_duplicate",
            "The image is a near-duplicate of an image submitted on another rift.",
            thresholds.near_duplicate_penalty,
        )
        card.flag(
            "image.near_duplicate",
            "The image is a near-duplicate of an image submitted on another rift.",
        )
    return FileCheck(
        card.finish(),
        sniffed_mime=file_check.sniffed_mime,
        phash=file_check.phash,
        facts=file_check.facts,
    )
