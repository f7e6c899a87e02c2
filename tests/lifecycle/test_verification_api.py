"""Every rule, end to end: a fixture submitted over HTTP ends with the verdict the rules say.

One worker serves all the submissions of a test; each case names what a seller or buyer
would see in GET /api/rifts/{id}/verification-status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.verification.proof_fixtures import (
    PE_HEADER,
    build_pdf,
    build_zip,
    encode_image,
    encrypt_pdf,
    photo,
    png_bomb,
    prose,
    zip_bomb,
)

pytestmark = pytest.mark.slow

LONG_AGO = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
VERDICTS_TIMEOUT_S = 60.0
TRACKING = "1Z999AA10123456784"


@dataclass
class Case:
    name: str
    files: list[tuple[str, bytes, str]] = field(default_factory=list)
    # Files whose bytes depend on the time of submission (a PDF "made just now"): built when
    # submitted, since the session's later backends run many minutes after collection.
    make_files: Callable[[], list[tuple[str, bytes, str]]] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    review: bool = True
    auto_approved: bool = False
    codes: set[str] = field(default_factory=set)  # issue or deduction codes on the assets
    rift: dict[str, Any] = field(default_factory=dict)


def pdf(text_chars: int, created: datetime = LONG_AGO, **kw: Any) -> bytes:
    return build_pdf([prose(text_chars)], created_at=created, **kw)


def jpeg(seed: int, *, exif: bool, size: tuple[int, int] = (640, 480), quality: int = 90) -> bytes:
    return encode_image(photo(seed, size), "JPEG", with_exif=exif, quality=quality)


CASES: list[Case] = [
    Case(
        "rich pdf and photo with exif",
        files=[
            ("invoice.pdf", pdf(3000), "application/pdf"),
            ("photo.jpg", jpeg(1, exif=True), "image/jpeg"),
        ],
        fields={"tracking_number": TRACKING},
        review=False,
        auto_approved=True,
    ),
    Case(
        "pdf without text",
        files=[("scan.pdf", build_pdf([""], created_at=LONG_AGO), "application/pdf")],
        codes={"pdf.no_text"},
    ),
    Case(
        "thin single-page pdf",
        files=[("note.pdf", pdf(300), "application/pdf")],
        # Deductions alone lower the score: at 70 the proof passes, but not automatically.
        review=False,
        codes={"pdf.thin_single_page"},
    ),
    Case(
        "pdf made just now with little text",
        make_files=lambda: [
            ("fresh.pdf", pdf(800, datetime.now(UTC) - timedelta(minutes=2)), "application/pdf")
        ],
        review=False,
        codes={"pdf.freshly_created"},
    ),
    Case(
        "encrypted pdf",
        files=[("locked.pdf", encrypt_pdf(pdf(3000), user_password="x"), "application/pdf")],
        codes={"pdf.encrypted"},
    ),
    Case(
        "pdf with javascript",
        files=[("js.pdf", pdf(3000, open_action_js="app.alert(1)"), "application/pdf")],
        codes={"pdf.javascript"},
    ),
    Case(
        "photo without exif",
        files=[("stripped.jpg", jpeg(2, exif=False), "image/jpeg")],
        fields={"tracking_number": TRACKING},
        review=False,
        auto_approved=True,  # 95 with no issue still clears the auto-approve bar of 90
        codes={"image.exif_stripped"},
    ),
    Case(
        "png decompression bomb",
        files=[("bomb.png", png_bomb(20_000, 20_000), "image/png")],
        codes={"image.decompression_bomb"},
    ),
    Case(
        "tiny image",
        files=[("dot.png", encode_image(photo(3, (20, 20)), "PNG"), "image/png")],
        codes={"image.too_small"},
    ),
    Case(
        "zip bomb",
        files=[("bomb.zip", zip_bomb(300 * 1024 * 1024), "application/zip")],
        codes={"zip.compression_ratio"},
    ),
    Case(
        "zip with an executable",
        files=[
            (
                "tools.zip",
                build_zip(
                    {"readme.txt": DELIVERY_NOTE.encode(), "setup.exe": PE_HEADER + b"\x00" * 4096}
                ),
                "application/zip",
            )
        ],
        codes={"zip.executable"},
    ),
    Case(
        "nested zip",
        files=[
            (
                "outer.zip",
                build_zip({"inner.zip": build_zip({"a.txt": DELIVERY_NOTE.encode()})}),
                "application/zip",
            )
        ],
        codes={"zip.nested_archive"},
    ),
    Case(
        "declared type contradicts the bytes",
        files=[("photo.png", DELIVERY_NOTE.encode(), "image/png")],
        codes={"file.type_mismatch"},
    ),
    Case("tiny file", files=[("x.txt", b"ok, delivered", "text/plain")], codes={"file.too_small"}),
    Case(
        "tracking number with bad characters",
        fields={"tracking_number": "1Z99<>9AA1012"},
        review=False,
        codes={"tracking.characters", "tracking.unknown_carrier"},
    ),
    Case(
        "unknown carrier pattern",
        fields={"tracking_number": "ABCD-EFGH-1234"},
        review=False,
        auto_approved=True,
        codes={"tracking.unknown_carrier"},
    ),
    Case(
        "license key with bad format",
        fields={"license_key": "no spaces allowed!"},
        codes={"license_key.format"},
    ),
    Case(
        "url to a loopback address",
        fields={"url": "http://127.0.0.1/admin"},
        codes={"url.forbidden_address"},
    ),
    Case(
        "url to the cloud metadata service",
        fields={"url": "http://169.254.169.254/latest"},
        codes={"url.forbidden_address"},
    ),
    Case("url through a shortener", fields={"url": "https://bit.ly/abc"}, codes={"url.shortener"}),
    Case("url with a non-http scheme", fields={"url": "file:///etc/passwd"}, codes={"url.scheme"}),
    Case(
        "text with a script",
        fields={"text": DELIVERY_NOTE + "<script>x()</script>"},
        codes={"text.injection"},
    ),
    Case(
        "clean proof on a risky rift", fields={"tracking_number": TRACKING}, rift={"risk_score": 75}
    ),
    Case(
        "clean proof on a rift marked for manual review",
        fields={"tracking_number": TRACKING},
        rift={"requires_manual_review": True},
    ),
    Case(
        "clean proof over the subtotal threshold",
        fields={"tracking_number": TRACKING},
        rift={"subtotal": 5_000_000},
    ),
]


def wait_for_verdicts(
    client: Any, auth: Callable[..., dict[str, str]], rift_ids: list[str]
) -> dict[str, dict[str, Any]]:
    verdicts: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + VERDICTS_TIMEOUT_S
    while len(verdicts) < len(rift_ids) and time.monotonic() < deadline:
        for rift_id in rift_ids:
            if rift_id in verdicts:
                continue
            status = client.simulate_get(
                f"/api/rifts/{rift_id}/verification-status", headers=auth(SELLER)
            ).json
            if status["status"] in ("completed", "failed"):
                verdicts[rift_id] = status
        time.sleep(0.1)
    missing = len(rift_ids) - len(verdicts)
    assert not missing, f"{missing} submissions got no verdict in {VERDICTS_TIMEOUT_S}s"
    return verdicts


def all_codes(status: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for asset in status["result"]["assets"]:
        found |= {i["code"] for i in asset["issues"]} | {d["code"] for d in asset["deductions"]}
    return found


def test_each_fixture_ends_with_the_verdict_its_rules_give(client, auth, start_worker):
    start_worker(threads=4)
    submitted: dict[str, Case] = {}
    for case in CASES:
        rift = funded_rift(client, auth, **case.rift)
        files = case.make_files() if case.make_files else case.files
        accepted = submit(client, auth, rift["id"], fields=case.fields, files=files)
        assert accepted.status_code == 202, f"{case.name}: {accepted.text}"
        submitted[rift["id"]] = case

    verdicts = wait_for_verdicts(client, auth, list(submitted))

    problems = []
    for rift_id, case in submitted.items():
        status = verdicts[rift_id]
        result = status["result"]
        if status["status"] != "completed":
            problems.append(f"{case.name}: status {status['status']} ({status['job']})")
            continue
        codes = all_codes(status)
        if result["route_to_review"] is not case.review:
            problems.append(
                f"{case.name}: route_to_review={result['route_to_review']}, "
                f"reasons={result['reasons']}, codes={codes}"
            )
        if result["auto_approved"] is not case.auto_approved:
            problems.append(f"{case.name}: auto_approved={result['auto_approved']}, codes={codes}")
        if not case.codes <= codes:
            problems.append(f"{case.name}: expected {case.codes}, got {codes}")
        expected_status = "UNDER_REVIEW" if case.review else "PROOF_SUBMITTED"
        if status["rift_status"] != expected_status:
            problems.append(f"{case.name}: rift is {status['rift_status']}")
        for asset in result["assets"]:
            assert 0 <= asset["score"] <= 100
    assert not problems, "\n".join(problems)


def test_reuse_across_rifts_is_caught(client, auth, start_worker):
    """The same file, the same license key, a re-encoded resized photo: all on another rift."""
    start_worker()
    original = photo(7, (800, 600))
    first_files = [
        ("invoice.pdf", pdf(3000), "application/pdf"),
        ("photo.jpg", encode_image(original, "JPEG", with_exif=True, quality=92), "image/jpeg"),
    ]
    near_copy = encode_image(original.resize((640, 480)), "JPEG", with_exif=True, quality=70)
    second_files = [
        ("invoice.pdf", first_files[0][1], "application/pdf"),
        ("photo.jpg", near_copy, "image/jpeg"),
    ]
    key = "ACME-PRO-2024-XK29-77QP"

    first = funded_rift(client, auth)
    submit(client, auth, first["id"], fields={"license_key": key}, files=first_files)
    first_status = wait_for_verdicts(client, auth, [first["id"]])[first["id"]]
    assert first_status["result"]["auto_approved"] is True, all_codes(first_status)

    second = funded_rift(client, auth, seller_id=SELLER)
    submit(client, auth, second["id"], fields={"license_key": key.lower()}, files=second_files)
    status = wait_for_verdicts(client, auth, [second["id"]])[second["id"]]

    assert status["result"]["route_to_review"] is True
    by_type: dict[str, set[str]] = {}
    for asset in status["result"]["assets"]:
        codes = {i["code"] for i in asset["issues"]}
        by_type.setdefault(asset.get("mime_type") or asset["type"], set()).update(codes)
    assert "file.reused" in by_type["application/pdf"]
    assert "image.near_duplicate" in by_type["image/jpeg"]
    assert "license_key.reused" in by_type["LICENSE_KEY"]
    key_asset = next(a for a in status["result"]["assets"] if a["type"] == "LICENSE_KEY")
    assert key_asset["score"] == 60
    # The buyer sees the same verdict; the first rift is untouched.
    assert (
        client.simulate_get(f"/api/rifts/{first['id']}", headers=auth(BUYER)).json["status"]
        == "PROOF_SUBMITTED"
    )
