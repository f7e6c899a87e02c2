"""PDF active content: actions found in the catalog, pages and annotations, under budgets."""

from __future__ import annotations

from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject

from service.verification.issues import ScoreCard

# Bounds on how much of the object graph is walked looking for actions, so a crafted
# document with millions of annotations cannot pin a worker. Reaching one is an issue
# (pdf.too_complex): the part not walked is unchecked, not harmless.
MAX_PAGES_FOR_ACTIONS = 1000
MAX_ANNOTATIONS_PER_PAGE = 500
MAX_ANNOTATIONS = 5000
MAX_ACTIONS_WALKED = 2000
MAX_ACTION_STEPS = 10 * MAX_ACTIONS_WALKED


def flag_active_content(card: ScoreCard, reader: PdfReader, page_count: int) -> None:
    """Flag JavaScript, launch, open and automatic actions anywhere they are walked to."""
    walk = _ActionWalk()
    catalog = as_dict(reader.trailer.get("/Root"))
    if catalog is None:
        return
    open_action = as_dict(catalog.get("/OpenAction"))
    # A bare destination array is harmless ("open at page 1"); an action dictionary is not.
    if open_action is not None and open_action.get("/S") not in (None, "/GoTo"):
        walk.kinds.add("open_action")
    walk.action(open_action)
    if "/AA" in catalog:
        walk.kinds.add("auto_action")
        walk.triggers(catalog.get("/AA"))
    names = as_dict(catalog.get("/Names"))
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
        annotations = as_array(page.get("/Annots"))
        if len(annotations) > MAX_ANNOTATIONS_PER_PAGE:
            walk.cap_hit(f"a page with more than {MAX_ANNOTATIONS_PER_PAGE} annotations")
        for annotation_ref in annotations[:MAX_ANNOTATIONS_PER_PAGE]:
            annotations_seen += 1
            if annotations_seen > MAX_ANNOTATIONS:
                walk.cap_hit(f"more than {MAX_ANNOTATIONS} annotations")
                break
            annotation = as_dict(annotation_ref)
            if annotation is None:
                continue
            walk.action(as_dict(annotation.get("/A")))
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
        triggers = as_dict(value)
        if triggers is None:
            return
        for action in triggers.values():
            self.action(as_dict(action))

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
            current = as_dict(pending.pop())
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


def as_dict(value: Any) -> DictionaryObject | None:
    """Resolve a reference; the dictionary it names, or None for anything else."""
    resolved = value.get_object() if value is not None else None
    return resolved if isinstance(resolved, DictionaryObject) else None


def as_array(value: Any) -> list[Any]:
    """Resolve a reference; the items of the array it names, or none."""
    resolved = value.get_object() if value is not None else None
    return list(resolved) if isinstance(resolved, ArrayObject) else []
