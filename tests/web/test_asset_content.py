"""GET /api/assets/{id}/content: parties only, CLEAN only, as a sandboxed attachment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from service.domain.users import Role
from service.models import Asset, ScanStatus
from tests.support.flows import (
    BUYER,
    DELIVERY_NOTE,
    OPERATOR,
    SELLER,
    STRANGER,
    funded_rift,
    submit,
)

NOTE_BYTES = DELIVERY_NOTE.encode()


def file_asset(client, auth, name: str = 'déjà "vu".txt') -> str:
    rift = funded_rift(client, auth)
    result = submit(client, auth, rift["id"], files=[(name, NOTE_BYTES, "text/plain")])
    assert result.status_code == 202, result.text
    return str(result.json["asset_ids"][0])


def set_scan(sessions, asset_id: str, status: ScanStatus, **values) -> None:
    with sessions() as session, session.begin():
        session.execute(
            update(Asset).where(Asset.id == asset_id).values(scan_status=status, **values)
        )


@pytest.mark.parametrize("reader", [BUYER, SELLER, OPERATOR])
def test_a_clean_file_is_served_to_each_party_as_a_sandboxed_attachment(
    client, auth, sessions, reader
):
    asset_id = file_asset(client, auth)
    set_scan(sessions, asset_id, ScanStatus.CLEAN)
    role = Role.ADMIN if reader == OPERATOR else Role.USER

    result = client.simulate_get(f"/api/assets/{asset_id}/content", headers=auth(reader, role))

    assert result.status_code == 200, result.text
    assert result.content == NOTE_BYTES
    assert result.headers["Content-Type"] == "text/plain"
    assert result.headers["X-Content-Type-Options"] == "nosniff"
    assert result.headers["Content-Security-Policy"].startswith("sandbox")
    disposition = result.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="d_j_ _vu_.txt"')
    assert "filename*=UTF-8''d%C3%A9j%C3%A0%20%22vu%22.txt" in disposition


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (ScanStatus.PENDING, "still being scanned"),
        (ScanStatus.INFECTED, "flagged by the virus scanner"),
        (ScanStatus.ERROR, "could not be scanned"),
    ],
)
def test_a_file_not_scanned_clean_is_409_saying_why(client, auth, sessions, status, says):
    asset_id = file_asset(client, auth)
    set_scan(sessions, asset_id, status)

    result = client.simulate_get(f"/api/assets/{asset_id}/content", headers=auth(SELLER))

    assert result.status_code == 409
    assert result.json["error"] == "file_not_servable"
    assert says in result.json["message"]


def test_a_quarantined_file_is_never_served_whatever_its_status_says(client, auth, sessions):
    asset_id = file_asset(client, auth)
    set_scan(sessions, asset_id, ScanStatus.CLEAN, quarantined_at=datetime.now(UTC))

    result = client.simulate_get(f"/api/assets/{asset_id}/content", headers=auth(BUYER))

    assert result.status_code == 409
    assert "quarantined" in result.json["message"]


def test_a_stranger_gets_the_same_404_as_for_a_missing_asset(client, auth, sessions):
    asset_id = file_asset(client, auth)
    set_scan(sessions, asset_id, ScanStatus.CLEAN)

    theirs = client.simulate_get(f"/api/assets/{asset_id}/content", headers=auth(STRANGER))
    missing = client.simulate_get("/api/assets/nope/content", headers=auth(STRANGER))

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json["error"] == missing.json["error"] == "not_found"


def test_without_a_token_or_page_cookie_it_is_401(client, auth):
    result = client.simulate_get("/api/assets/any/content")
    assert result.status_code == 401
    assert "sign-in link" in result.json["message"]
