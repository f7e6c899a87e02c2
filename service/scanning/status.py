"""The one scan-status vocabulary: what the scanner says, what an asset stores, what decides."""

from __future__ import annotations

import enum


class ScanStatus(enum.StrEnum):
    """The virus scanner's word on an asset, from submission to verdict."""

    # Not a file (a tracking number, a URL...): nothing to scan.
    NOT_APPLICABLE = "NOT_APPLICABLE"
    # A file whose scan has not reported yet; the verdict waits for it.
    PENDING = "PENDING"
    CLEAN = "CLEAN"
    INFECTED = "INFECTED"
    # The file could not be scanned completely (over the stream limit, a clamd limit hit, a
    # clamd error about this file). Definitive: a retry gives the same answer, so the proof
    # goes to review instead of being retried forever.
    ERROR = "ERROR"
