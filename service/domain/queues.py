"""Every kind of background job the domain asks for, with the facts that govern it.

One declaration per kind: the actors read their queue, name and limits here, the stuck-job
check derives its threshold from the time limits, and the metrics contract and the
dashboards take their queue vocabulary from it. Behaviour is chosen by these fields, never
by comparing actor names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta


class OnFinalFailure(enum.Enum):
    """What the domain does once a job of the kind is FAILED or DEAD (no retry left)."""

    #: Nothing to compensate: the record says FAILED or DEAD, operators see it.
    NOTHING = "nothing"
    #: The file could not be scanned: mark it ERROR, which sends its proof to review.
    MARK_FILE_UNSCANNABLE = "mark_file_unscannable"
    #: The proof could not be checked: decide it "to review" with the reason, as SYSTEM.
    SEND_PROOF_TO_REVIEW = "send_proof_to_review"


@dataclass(frozen=True)
class JobKind:
    """One kind of job: where it runs, how long it may take, what a final failure does.

    Parameters:
      actor_name: the Dramatiq actor (and the job record's `actor_name`).
      queue_name: the queue, and the worker pool that consumes it.
      time_limit: how long one attempt may run before Dramatiq interrupts it.
      max_age: how long a message may wait; older ones are dead without running.
      max_retries: retries after the first attempt; None means the `JOB_MAX_RETRIES`
        setting, which applies to every kind that does not declare its own.
      on_final_failure: the compensation run once the job is FAILED or DEAD.
    """

    actor_name: str
    queue_name: str
    time_limit: timedelta
    max_age: timedelta
    max_retries: int | None = None
    on_final_failure: OnFinalFailure = OnFinalFailure.NOTHING

    @property
    def time_limit_ms(self) -> int:
        return _ms(self.time_limit)

    @property
    def max_age_ms(self) -> int:
        return _ms(self.max_age)

    def retries(self, default: int) -> int:
        """The retries this kind gets, given the system-wide default."""
        return default if self.max_retries is None else self.max_retries


def _ms(span: timedelta) -> int:
    return int(span / timedelta(milliseconds=1))


VERIFY_PROOF = JobKind(
    "verify_proof",
    "verification",
    time_limit=timedelta(minutes=2),
    max_age=timedelta(days=1),
    on_final_failure=OnFinalFailure.SEND_PROOF_TO_REVIEW,
)
SCAN_ASSET = JobKind(
    "scan_asset",
    "scan",
    time_limit=timedelta(minutes=5),
    max_age=timedelta(days=1),
    on_final_failure=OnFinalFailure.MARK_FILE_UNSCANNABLE,
)
CLEAN_UP_RIFT = JobKind(
    "clean_up_rift",
    "cleanup",
    time_limit=timedelta(minutes=5),
    max_age=timedelta(days=7),
)

ALL_JOB_KINDS = (VERIFY_PROOF, SCAN_ASSET, CLEAN_UP_RIFT)
QUEUE_NAMES = tuple(kind.queue_name for kind in ALL_JOB_KINDS)
ACTOR_NAMES = tuple(kind.actor_name for kind in ALL_JOB_KINDS)
LONGEST_TIME_LIMIT = max(kind.time_limit for kind in ALL_JOB_KINDS)

_BY_ACTOR = {kind.actor_name: kind for kind in ALL_JOB_KINDS}


def job_kind(actor_name: str) -> JobKind:
    """The declaration of the kind a job record or message names; KeyError if none."""
    return _BY_ACTOR[actor_name]
