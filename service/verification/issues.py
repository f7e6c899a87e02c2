"""Scores, deductions and issues: the vocabulary every asset check speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_SCORE = 100
MIN_SCORE = 0
# Error text from a parser can quote the file's bytes; an issue keeps only a short start.
MAX_ERROR_CHARS = 120
# Issues saying the virus scanner skipped part of a file: its CLEAN covers only the rest.
UNSCANNED_MEMBER_CODE = "zip.member_unscannable"
UNSCANNED_CONTENT_CODES = frozenset({UNSCANNED_MEMBER_CODE})


@dataclass(frozen=True)
class Issue:
    """A finding that sends the submission to a human, whatever the score."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return the JSON shape of this issue."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Deduction:
    """Points taken off an asset's score, with the rule that took them."""

    code: str
    message: str
    points: int

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of this deduction."""
        return {"code": self.code, "message": self.message, "points": self.points}


@dataclass(frozen=True)
class AssetCheck:
    """The outcome of checking one asset.

    Deductions lower the score; issues route the submission to review. A rule may do both
    (a near-duplicate image is -10 and an issue). `integrity_ok` is false when the asset
    could not be read as what it claims to be (corrupt file, malformed key); such an asset
    never passes.
    """

    score: int
    issues: tuple[Issue, ...]
    integrity_ok: bool
    deductions: tuple[Deduction, ...] = ()
    pass_score: int = 60

    @property
    def passed(self) -> bool:
        """Tell whether the asset is readable and scores at least the pass score."""
        return self.integrity_ok and self.score >= self.pass_score

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape stored with the asset and shown by the status endpoint."""
        return {
            "score": self.score,
            "passed": self.passed,
            "integrity_ok": self.integrity_ok,
            "issues": [issue.to_dict() for issue in self.issues],
            "deductions": [deduction.to_dict() for deduction in self.deductions],
        }


def clamp_score(score: int) -> int:
    """Clamp a raw score into 0..100."""
    return max(MIN_SCORE, min(MAX_SCORE, score))


@dataclass
class ScoreCard:
    """Accumulate deductions and issues for one asset, then freeze them into an AssetCheck."""

    pass_score: int
    deductions: list[Deduction] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    integrity_ok: bool = True

    @classmethod
    def resume(cls, check: AssetCheck) -> ScoreCard:
        """Start a card from a finished check, to add findings that need a later lookup."""
        return cls(
            pass_score=check.pass_score,
            deductions=list(check.deductions),
            issues=list(check.issues),
            integrity_ok=check.integrity_ok,
        )

    def deduct(self, code: str, message: str, points: int) -> None:
        """Take points off the score for a rule."""
        if points < 0:
            raise ValueError("a deduction takes points off; it cannot add them")
        self.deductions.append(Deduction(code, message, points))

    def flag(self, code: str, message: str) -> None:
        """Raise an issue that routes the submission to review."""
        self.issues.append(Issue(code, message))

    def fail_integrity(self, code: str, message: str) -> None:
        """Record that the asset cannot be read as what it claims to be."""
        self.integrity_ok = False
        self.flag(code, message)

    def finish(self) -> AssetCheck:
        """Freeze the card into an AssetCheck with the score clamped to 0..100."""
        score = clamp_score(MAX_SCORE - sum(d.points for d in self.deductions))
        return AssetCheck(
            score=score,
            issues=tuple(self.issues),
            integrity_ok=self.integrity_ok,
            deductions=tuple(self.deductions),
            pass_score=self.pass_score,
        )


def describe(exc: BaseException) -> str:
    """Name what went wrong reading an asset, briefly: the error type and its first words."""
    text = " ".join(str(exc).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
