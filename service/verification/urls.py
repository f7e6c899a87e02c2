"""URL proof rules: scheme, host, shorteners; the reachability probe when it is switched on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.verification.addresses import (
    AddressPolicy,
    MalformedUrl,
    UnsupportedScheme,
    parse_target,
)
from service.verification.issues import AssetCheck, ScoreCard
from service.verification.probe import ProbeResult, UrlProbe
from service.verification.thresholds import VerificationThresholds

SHORTENER_HOSTS = frozenset(
    {
        "bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly",
        "rebrand.ly", "cutt.ly", "shorturl.at", "tiny.cc", "v.gd", "rb.gy", "t.ly", "s.id",
        "bl.ink", "lnkd.in", "trib.al", "soo.gd", "qr.ae", "adf.ly", "shorte.st", "clck.ru",
        "tr.im", "x.co", "y2u.be", "db.tt", "amzn.to", "youtu.be",
    }
)  # fmt: skip


@dataclass(frozen=True)
class UrlCheck:
    """The check of a URL, with the probe's findings when the probe ran."""

    check: AssetCheck
    probe: ProbeResult | None = None


def is_shortener(host: str) -> bool:
    """Tell whether a host is a known URL shortener, by whole host or parent domain."""
    host = host.rstrip(".").lower()
    # Matching whole labels keeps "notbit.ly" and "bit.ly.example.com" out.
    return any(host == short or host.endswith("." + short) for short in SHORTENER_HOSTS)


def check_url(
    url: str,
    *,
    thresholds: VerificationThresholds,
    probe: Callable[[str], ProbeResult] | None = None,
) -> UrlCheck:
    """Apply the URL rules; probe reachability only when the thresholds switch it on."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    if len(url) > thresholds.url_max_chars:
        card.fail_integrity(
            "url.too_long", f"The URL is over {thresholds.url_max_chars} characters."
        )
        return UrlCheck(card.finish())
    try:
        target = parse_target(url.strip())
    except UnsupportedScheme:
        card.fail_integrity("url.scheme", "Only http and https URLs are accepted.")
        return UrlCheck(card.finish())
    except MalformedUrl as exc:
        card.fail_integrity("url.invalid", str(exc))
        return UrlCheck(card.finish())
    if target.has_credentials:
        card.flag("url.credentials", "The URL carries a user name or password before the host.")
    if is_shortener(target.host):
        card.flag("url.shortener", "The URL goes through a link shortener that hides its target.")
    # Refused without the probe too: the link is shown to a buyer, whose browser would
    # follow it inward.
    if target.literal is not None and (reason := AddressPolicy().refusal(target.literal)):
        card.fail_integrity("url.forbidden_address", f"The URL points at a {reason}.")
        return UrlCheck(card.finish())
    if not thresholds.url_reachability_check:
        return UrlCheck(card.finish())

    result = (probe or UrlProbe.from_thresholds(thresholds))(url.strip())
    if result.refusal is not None:
        card.fail_integrity(
            "url.forbidden_address",
            f"The URL leads to an address that is never fetched: {result.refusal}.",
        )
    elif not result.reachable:
        detail = f"HTTP {result.status}" if result.status is not None else result.error
        card.flag("url.unreachable", f"The URL could not be reached ({detail}).")
    return UrlCheck(card.finish(), result)
