"""Free text: minimum length and script or markup injection."""

from __future__ import annotations

import pytest
from proof_fixtures import codes, prose

from service.verification import VerificationThresholds, check_text

DEFAULTS = VerificationThresholds()
SUMMARY = prose(200)


def test_a_plain_delivery_summary_passes_cleanly() -> None:
    check = check_text(SUMMARY, thresholds=DEFAULTS)
    assert check.score == 100
    assert check.issues == ()


def test_a_short_text_fails_and_is_an_issue() -> None:
    check = check_text("Delivered, thanks.      " * 2, thresholds=DEFAULTS)
    assert codes(check) == {"text.too_short"}
    assert not check.passed


@pytest.mark.parametrize(
    "payload",
    [
        "<script>fetch('/steal')</script>",
        "< SCRIPT src=//evil.example>",
        '<a href="javascript:alert(1)">proof</a>',
        "<img src=x onerror=alert(1)>",
        '<div onmouseover="x()">hover</div>',
        "<iframe src=//evil.example></iframe>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<a href='&#106;avascript:alert(1)'>x</a>",
        "<a href='java\u200bscript:alert(1)'>x</a>",
        "<svg/onload=alert(1)>",
        "<object data=x.swf>",
        "see data:text/html;base64,PHNjcmlwdD4=",
    ],
)
def test_script_or_markup_is_an_issue(payload: str) -> None:
    check = check_text(f"{SUMMARY} {payload}", thresholds=DEFAULTS)
    assert codes(check) == {"text.injection"}


@pytest.mark.parametrize(
    "innocent",
    [
        "The total was 3 < 5 units, and the scripts were delivered on time.",
        "Delivery confirmed online; the buyer was happy. JavaScript code is in the repo.",
        "Use the formula a<b and b>c to compare.",
    ],
)
def test_ordinary_prose_about_scripts_is_not_an_injection(innocent: str) -> None:
    assert check_text(f"{SUMMARY} {innocent}", thresholds=DEFAULTS).issues == ()
