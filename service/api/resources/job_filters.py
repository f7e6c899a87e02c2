"""Reading a job filter from a query string or a JSON body, the same way for both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon

from service.domain.errors import InvalidInput
from service.domain.job_search import JobFilter, parse_states

MAX_ID_CHARS = 64
#: Ages of job records are bounded by their retention; ten years is far past any.
MAX_AGE_S = 10 * 365 * 24 * 3600
FILTER_FIELDS = ("state", "actor", "rift_id", "job_id", "min_age_s", "max_age_s")


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{name} must be text of at most {MAX_ID_CHARS} characters", field=name)
    return value.strip() or None


def _seconds(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a whole number of seconds", field=name) from None
    # Past the bound, `now - timedelta(seconds)` overflows datetime (a 500, found by fuzzing).
    if isinstance(value, bool) or not 0 <= seconds <= MAX_AGE_S:
        raise InvalidInput(
            f"{name} must be a whole number of seconds, 0 to {MAX_AGE_S}", field=name
        )
    return seconds


def job_filter(values: Mapping[str, Any]) -> JobFilter:
    """Build a JobFilter from plain values; state may be one name or a list of names."""
    raw_states = values.get("state") or []
    if isinstance(raw_states, str):
        raw_states = raw_states.split(",")
    if not isinstance(raw_states, list) or not all(isinstance(s, str) for s in raw_states):
        raise InvalidInput("state must be a state name or a list of them", field="state")
    return JobFilter(
        states=parse_states(raw_states),
        actor=_text(values.get("actor"), "actor"),
        rift_id=_text(values.get("rift_id"), "rift_id"),
        job_id=_text(values.get("job_id"), "job_id"),
        min_age_s=_seconds(values.get("min_age_s"), "min_age_s"),
        max_age_s=_seconds(values.get("max_age_s"), "max_age_s"),
    )


def job_filter_from_query(
    req: falcon.Request, *, default_states: list[str] | None = None
) -> JobFilter:
    """Read the filter from ?state=..&state=..&actor=..&rift_id=..&job_id=..&min_age_s=.."""
    values: dict[str, Any] = {name: req.get_param(name) for name in FILTER_FIELDS[1:]}
    values["state"] = req.get_param_as_list("state") or default_states or []
    return job_filter(values)
