"""A proof's verdict and the rules that decide it: thresholds and the release delay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.models import ItemType
from service.verification.thresholds import VerificationThresholds


@dataclass(frozen=True)
class ReleasePolicy:
    auto_release_after: timedelta = timedelta(hours=72)
    auto_release_after_digital: timedelta = timedelta(hours=48)

    @classmethod
    def from_hours(cls, hours: int, digital_hours: int) -> ReleasePolicy:
        return cls(timedelta(hours=hours), timedelta(hours=digital_hours))

    def release_delay(self, item_type: ItemType) -> timedelta:
        if item_type is ItemType.DIGITAL_GOODS:
            return self.auto_release_after_digital
        return self.auto_release_after


@dataclass(frozen=True)
class FinalVerdict:
    """A verdict decided by this call (None is returned when one was not, or not yet)."""

    proof_id: str
    rift_id: str
    passed: bool
    route_to_review: bool
    auto_approved: bool
    submitted_at: datetime
    decided_at: datetime

    @property
    def outcome(self) -> str:
        if self.route_to_review:
            return "review"
        return "auto_approved" if self.auto_approved else "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "proof_id": self.proof_id,
            "passed": self.passed,
            "route_to_review": self.route_to_review,
            "auto_approved": self.auto_approved,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class VerdictRules:
    thresholds: VerificationThresholds
    release: ReleasePolicy
