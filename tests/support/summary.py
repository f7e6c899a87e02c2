"""Figures a suite prints at the end of the run (pytest captures a test's own output).

The fuzz, abuse and mutation suites state their counts here, so CI's log shows them
whether they pass or fail.
"""

from __future__ import annotations

_LINES: list[str] = []


def report(line: str) -> None:
    """Keep line for the end-of-run summary."""
    _LINES.append(line)


def reported() -> list[str]:
    return list(_LINES)
