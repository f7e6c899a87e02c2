"""Inputs that used to be 500s or silently dropped: each is a clear 4xx, or stored as sent."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.auth import MAX_SUBJECT_CHARS
from service.domain.errors import InvalidInput
from service.domain.intake import display_name
from service.domain.users import Role
from service.models import Asset, AssetType, Proof
from tests.support.flows import DELIVERY_NOTE, SELLER, funded_rift, submit

NOTE = ("note.txt", DELIVERY_NOTE.encode(), "text/plain")


def blob_files(settings) -> list[Path]:
    return [p for p in Path(settings.blob_dir).rglob("*") if p.is_file()]


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def raw_submit(client, auth, rift_id: str, body: bytes, user: str = SELLER):
    return client.simulate_post(
        f"/api/rifts/{rift_id}/proofs",
        body=body,
        headers={**auth(user), "Content-Type": "multipart/form-data; boundary=b"},
    )


def part(name: str, content: bytes, *, filename: str | None = None, ctype: str | None = None):
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--b\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


def test_a_token_naming_a_user_id_longer_than_its_column_is_401(client, auth, sessions):
    long_user = "u" * (MAX_SUBJECT_CHARS + 1)
    body = {
        "title": "Logo",
        "item_type": "SERVICES",
        "seller_id": SELLER,
        "subtotal": 100,
        "currency": "USD",
    }
    result = client.simulate_post("/api/rifts", json=body, headers=auth(long_user))
    assert result.status_code == 401
    assert f"at most {MAX_SUBJECT_CHARS}" in result.json["message"]


def test_a_file_part_content_type_longer_than_its_column_is_422(client, auth, sessions, settings):
    rift = funded_rift(client, auth)
    long_type = "text/" + "x" * 200
    result = submit(
        client, auth, rift["id"], files=[("note.txt", DELIVERY_NOTE.encode(), long_type)]
    )
    assert result.status_code == 422
    assert result.json["field"] == "files"
    assert blob_files(settings) == []
    assert count(sessions, Proof) == 0


def test_a_10000_character_file_name_is_a_422_that_says_what_to_fix(client, auth, settings):
    rift = funded_rift(client, auth)
    body = part("files", DELIVERY_NOTE.encode(), filename="n" * 10_000 + ".txt") + b"--b--\r\n"
    result = raw_submit(client, auth, rift["id"], body)
    assert result.status_code == 422
    assert "255 characters" in result.json["message"]
    assert blob_files(settings) == []


def test_text_and_url_sent_as_octet_stream_are_kept_not_dropped(client, auth, sessions):
    rift = funded_rift(client, auth)
    body = (
        part("text", DELIVERY_NOTE.encode(), ctype="application/octet-stream")
        + part("url", b"https://example.com/delivery/4411", ctype="application/octet-stream")
        + b"--b--\r\n"
    )
    result = raw_submit(client, auth, rift["id"], body)
    assert result.status_code == 202, result.text
    with sessions() as session:
        stored = {a.type: a.value_text for a in session.scalars(select(Asset))}
    assert stored[AssetType.TEXT] == DELIVERY_NOTE.strip()
    assert stored[AssetType.URL] == "https://example.com/delivery/4411"


def test_a_text_field_that_is_not_utf8_is_422_naming_it(client, auth, sessions):
    rift = funded_rift(client, auth)
    body = part("text", "Lieferung über".encode("latin-1") * 10) + b"--b--\r\n"
    result = raw_submit(client, auth, rift["id"], body)
    assert result.status_code == 422
    assert result.json["field"] == "text"
    assert "UTF-8" in result.json["message"]
    assert count(sessions, Proof) == 0


def test_a_huge_text_field_is_422_without_reading_it_all(client, auth, sessions):
    rift = funded_rift(client, auth)
    body = part("tracking_number", b"1" * 2 * 1024 * 1024) + b"--b--\r\n"
    result = raw_submit(client, auth, rift["id"], body)
    assert result.status_code == 422
    assert result.json["field"] == "tracking_number"
    assert count(sessions, Proof) == 0


def zip_claiming_an_unsupported_method() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("delivery.txt", DELIVERY_NOTE)
    raw = bytearray(buffer.getvalue())
    # Method 99 (AE-x) in both the local header (offset 8) and the central directory (10).
    raw[8:10] = (99).to_bytes(2, "little")
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 10 : central + 12] = (99).to_bytes(2, "little")
    return bytes(raw)


def test_a_zip_whose_member_claims_an_unsupported_method_is_not_a_500(client, auth):
    rift = funded_rift(client, auth)
    result = submit(
        client,
        auth,
        rift["id"],
        files=[("goods.zip", zip_claiming_an_unsupported_method(), "application/zip")],
    )
    assert result.status_code in (202, 415), result.text
    assert result.json


def test_a_job_age_filter_past_what_a_date_can_hold_is_422_not_500(client, auth):
    # Found by the schemathesis run: `now - timedelta(seconds=10**20)` overflowed.
    result = client.simulate_get(
        "/api/admin/jobs", params={"min_age_s": str(10**20)}, headers=auth("ops", Role.ADMIN)
    )
    assert result.status_code == 422
    assert result.json["field"] == "min_age_s"


def test_an_idempotency_key_longer_than_its_column_is_422_before_the_body_is_stored(
    client, auth, sessions, settings
):
    rift = funded_rift(client, auth)
    result = submit(client, auth, rift["id"], files=[NOTE], headers={"Idempotency-Key": "k" * 129})
    assert result.status_code == 422
    assert result.json["field"] == "Idempotency-Key"
    assert blob_files(settings) == []
    assert count(sessions, Proof) == 0


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("C:\\Users\\me\\invoice.pdf", "invoice.pdf"),  # a browser's whole path
        ("photos/2026/shed.jpg", "shed.jpg"),
        ("  délivery.txt ", "délivery.txt"),
        (None, "upload"),
    ],
)
def test_a_file_name_is_shown_as_its_last_part(sent: str | None, shown: str) -> None:
    assert display_name(sent) == shown


@pytest.mark.parametrize(
    ("sent", "complaint"),
    [
        ("../../etc/passwd.txt", "'..' path segment"),
        ("a\\..\\b.txt", "'..' path segment"),
        ("invoice\u202efdp.exe", "U+202E"),  # shows as "invoiceexe.pdf"
        ("no\x00te.txt", "U+0000"),
        ("note\x1b[31m.txt", "U+001B"),
        ("zero\u200bwidth.pdf", "U+200B"),
    ],
)
def test_a_file_name_that_climbs_or_hides_characters_is_refused_saying_why(
    sent: str, complaint: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        display_name(sent)
    assert complaint in str(refused.value)
    assert refused.value.field == "files"
