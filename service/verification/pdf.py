"""PDF rules: readable pages, real text, a plausible age, no active content."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject

from service.verification.issues import ScoreCard, describe
from service.verification.thresholds import VerificationThresholds

# Bounds on how much of the object graph is walked looking for actions, so a crafted
# document with millions of annotations cannot pin a worker. Reaching one is an issue
# (pdf.too_complex): the part not walked is unchecked, not harmless.
MAX_PAGES_FOR_ACTIONS = 1000
MAX_ANNOTATIONS_PER_PAGE = 500
MAX_ANNOTATIONS = 5000
MAX_ACTIONS_WALKED = 2000
MAX_ACTION_STEPS = 10 * MAX_ACTIONS_WALKED


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
        _flag_active_content(card, reader, page_count)

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
        resources = _dict(reader.pages[index].get("/Resources"))
        if resources is not None and _xobjects_hold_image(resources, depth=2):
            return True
    return False


def _xobjects_hold_image(resources: DictionaryObject, depth: int) -> bool:
    xobjects = _dict(resources.get("/XObject"))
    if xobjects is None:
        return False
    for ref in xobjects.values():
        xobject = _dict(ref)
        if xobject is None:
            continue
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        # Images are often wrapped in a form XObject one level down.
        nested = _dict(xobject.get("/Resources"))
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


def _flag_active_content(card: ScoreCard, reader: PdfReader, page_count: int) -> None:
    walk = _ActionWalk()
    catalog = _dict(reader.trailer.get("/Root"))
    if catalog is None:
        return
    open_action = _dict(catalog.get("/OpenAction"))
    # A bare destination array is harmless ("open at page 1"); an action dictionary is not.
    if open_action is not None and open_action.get("/S") not in (None, "/GoTo"):
        walk.kinds.add("open_action")
    walk.action(open_action)
    if "/AA" in catalog:
        walk.kinds.add("auto_action")
        walk.triggers(catalog.get("/AA"))
    names = _dict(catalog.get("/Names"))
    if names is not None and "/JavaScript" in names:
        walk.kinds.add("javascript")
    if page_count > MAX_PAGES_FOR_ACTIONS:
        walk.cap_hit(f"more than {MAX_PAGES_FOR_ACTIONS} pages")
    annotations_seen = 0
    for index in range(min(page_count, MAX_PAGES_FOR_ACTIONS)):
        page = reader.pages[index]
        if "/AA" in page:
            walk.kinds.add("auto_action")
            walk.triggers(page.get("/AA"))
        annotations = _array(page.get("/Annots"))
        if len(annotations) > MAX_ANNOTATIONS_PER_PAGE:
            walk.cap_hit(f"a page with more than {MAX_ANNOTATIONS_PER_PAGE} annotations")
        for annotation_ref in annotations[:MAX_ANNOTATIONS_PER_PAGE]:
            annotations_seen += 1
            if annotations_seen > MAX_ANNOTATIONS:
                walk.cap_hit(f"more than {MAX_ANNOTATIONS} annotations")
                break
            annotation = _dict(annotation_ref)
            if annotation is None:
                continue
            walk.action(_dict(annotation.get("/A")))
            if "/AA" in annotation:
                walk.kinds.add("auto_action")
                walk.triggers(annotation.get("/AA"))
        if walk.exhausted or annotations_seen > MAX_ANNOTATIONS:
            break
    messages = {
        "javascript": "The PDF carries JavaScript.",
        "launch_action": "The PDF can launch an external program.",
        "open_action": "The PDF runs an action when it is opened.",
        "auto_action": "The PDF runs actions automatically on document or page events.",
    }
    for kind in sorted(walk.kinds):
        card.flag(f"pdf.{kind}", messages[kind])
    if walk.caps:
        # What was not walked may hold the active content: unchecked is not harmless.
        card.flag(
            "pdf.too_complex",
            "The PDF is too complex to check for active content completely ("
            + "; ".join(sorted(walk.caps))
            + ").",
        )


class _ActionWalk:
    """Walk action dictionaries under one budget for the whole document.

    Actions chain through /Next (one action or an array of them) and may reference each
    other in cycles; each is visited once, and at most MAX_ACTIONS_WALKED in all, however
    long a chain or an array is. Array items are resolved one at a time, so a /Next array
    of a million entries costs the budget, not a million object lookups.
    """

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.caps: set[str] = set()
        self.walked = 0
        self.steps = 0
        self._seen: set[tuple[int, int]] = set()

    @property
    def exhausted(self) -> bool:
        return self.walked >= MAX_ACTIONS_WALKED

    def cap_hit(self, what: str) -> None:
        self.caps.add(what)

    def triggers(self, value: Any) -> None:
        """Walk every action of an additional-actions (/AA) dictionary."""
        triggers = _dict(value)
        if triggers is None:
            return
        for action in triggers.values():
            self.action(_dict(action))

    def action(self, first: DictionaryObject | None) -> None:
        """Walk one action and everything chained after it."""
        pending: list[Any] = [first]
        while pending:
            # Steps count revisits too: many annotations sharing one long /Next array
            # cost the budget, not annotations x array length.
            self.steps += 1
            if self.exhausted or self.steps > MAX_ACTION_STEPS:
                self.cap_hit(f"more than {MAX_ACTIONS_WALKED} actions")
                return
            current = _dict(pending.pop())
            if current is None or not self._first_visit(current):
                continue
            self.walked += 1
            subtype = current.get("/S")
            if subtype == "/JavaScript" or "/JS" in current:
                self.kinds.add("javascript")
            if subtype == "/Launch":
                self.kinds.add("launch_action")
            following = current.get("/Next")
            resolved = following.get_object() if following is not None else None
            if isinstance(resolved, ArrayObject):
                room = MAX_ACTIONS_WALKED - self.walked
                if len(resolved) > room:
                    self.cap_hit(f"more than {MAX_ACTIONS_WALKED} actions")
                # Reversed, so the stack pops them in document order.
                pending.extend(reversed(resolved[: room + 1]))
            elif resolved is not None:
                pending.append(resolved)

    def _first_visit(self, action: DictionaryObject) -> bool:
        reference = getattr(action, "indirect_reference", None)
        # Direct objects cannot be shared or form cycles; only references need the set.
        if reference is None:
            return True
        key = (reference.idnum, reference.generation)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _dict(value: Any) -> DictionaryObject | None:
    resolved = value.get_object() if value is not None else None
    return resolved if isinstance(resolved, DictionaryObject) else None


def _array(value: Any) -> list[Any]:
    resolved = value.get_object() if value is not None else None
    return list(resolved) if isinstance(resolved, ArrayObject) else []
