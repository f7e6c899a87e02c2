"""Small PromQL builders shared by the dashboards and the alert rules."""

from __future__ import annotations


def by_queue(vector: str, aggregation: str = "sum") -> str:
    """Aggregate a Dramatiq vector by Rift's `queue` label (Dramatiq calls it queue_name)."""
    return (
        f'{aggregation} by (queue) (label_replace({vector}, "queue", "$1", "queue_name", "(.*)"))'
    )


def rate_by_queue(counter: str, window: str) -> str:
    """Sum a Dramatiq counter's per-second rate by queue."""
    return by_queue(f"rate({counter}[{window}])")


def retries_by_queue(window: str) -> str:
    """Sum the per-second rate of retries scheduled, by queue.

    Dramatiq counts a retry twice: when it is scheduled, on the delay queue ("scan.DQ"),
    and again when the delay expires and the message moves back to "scan". Only the first
    is a decision to retry, so count that one and strip the suffix.
    """
    return (
        "sum by (queue) (label_replace("
        f'rate(dramatiq_message_retries_total{{queue_name=~".+\\\\.DQ"}}[{window}]), '
        '"queue", "$1", "queue_name", "(.+)\\\\.DQ"))'
    )


def ratio_or_zero(numerator: str, denominator: str) -> str:
    """Divide, reading a missing numerator series as zero wherever the denominator exists.

    Error counters appear on the first error; without this a healthy queue or route
    shows "no data" instead of 0.
    """
    return f"(\n  {numerator}\n  or 0 * {denominator}\n)\n/\n{denominator}"


def quantile(q: float, buckets: str, window: str, by: tuple[str, ...] = ()) -> str:
    """Return the q-quantile of a histogram's rate, optionally kept per label."""
    labels = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({labels}) (rate({buckets}[{window}])))"
