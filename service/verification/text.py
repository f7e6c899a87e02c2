"""Free-text proof: a minimum length and no script or markup injection."""

from __future__ import annotations

import html
import re
import unicodedata

from service.verification.issues import AssetCheck, ScoreCard
from service.verification.thresholds import VerificationThresholds

# Each pattern names a way text becomes active when some viewer renders it as HTML.
INJECTION_PATTERNS = (
    re.compile(r"<\s*/?\s*(script|iframe|frame|frameset|object|embed|applet|svg|math|base"
               r"|link|meta|style|form|img|video|audio|input|button|textarea)\b"),
    re.compile(r"\b(java|vb|live)script\s*:"),
    re.compile(r"\bdata\s*:\s*(text/html|application/xhtml|image/svg)"),
    re.compile(r"<[^>]*\son[a-z]+\s*="),
    re.compile(r"\bexpression\s*\("),
)  # fmt: skip
# Zero-width and control characters split keywords ("java\u200bscript:") invisibly.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})


def check_text(text: str, *, thresholds: VerificationThresholds) -> AssetCheck:
    """Apply the free-text rules."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    if len("".join(text.split())) < thresholds.text_min_chars:
        message = f"The text is under {thresholds.text_min_chars} characters."
        card.deduct("text.too_short", message, thresholds.text_too_short_penalty)
        card.flag("text.too_short", message)
    if contains_injection(text):
        card.flag("text.injection", "The text carries script or markup that could run in a viewer.")
    return card.finish()


def contains_injection(text: str) -> bool:
    """Tell whether text holds script or markup, also after entity decoding."""
    candidates = {text, html.unescape(text), html.unescape(html.unescape(text))}
    for candidate in candidates:
        visible = "".join(
            ch
            for ch in candidate
            if ch in "\n\t" or unicodedata.category(ch) not in INVISIBLE_CATEGORIES
        )
        folded = unicodedata.normalize("NFKC", visible).lower()
        if any(pattern.search(folded) for pattern in INJECTION_PATTERNS):
            return True
    return False
