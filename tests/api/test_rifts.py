"""Rifts over HTTP: validation, the role-aware transition table, optimistic locking, the log."""

import pytest

from service.domain.users import Role
from tests.support.flows import BUYER, SELLER, STRANGER, create_rift, funded_rift


def test_a_buyer_creates_a_draft_rift(client, auth):
    rift = create_rift(client, auth)
    assert rift["status"] == "DRAFT"
    assert rift["buyer_id"] == BUYER
    assert rift["version"] == 1


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("subtotal", -5, "positive"),
        ("subtotal", True, "int"),
        ("currency", "EURO", "3-letter"),
        ("item_type", "CARS", "DIGITAL_GOODS"),
        ("title", "", "title"),
        ("seller_id", BUYER, "someone other"),
        ("risk_score", 101, "between 0 and 100"),
    ],
)
def test_bad_rift_fields_are_422_naming_the_field(client, auth, field, value, words):
    body = {
        "title": "x",
        "item_type": "SERVICES",
        "seller_id": SELLER,
        "subtotal": 100,
        "currency": "USD",
        field: value,
    }
    result = client.simulate_post("/api/rifts", json=body, headers=auth(BUYER))
    assert result.status_code == 422
    assert result.json["field"] == field
    assert words in result.json["message"]


def test_a_body_that_is_not_json_is_a_4xx_with_a_message(client, auth):
    result = client.simulate_post(
        "/api/rifts", body=b"{nope", headers={**auth(BUYER), "Content-Type": "application/json"}
    )
    assert 400 <= result.status_code < 500
    assert result.json["message"]


def test_the_buyer_funds_the_rift_and_the_log_records_who(client, auth):
    rift = funded_rift(client, auth)
    assert rift["status"] == "FUNDED"
    events = client.simulate_get(f"/api/rifts/{rift['id']}/events", headers=auth(SELLER)).json
    last = events["events"][-1]
    assert (last["from_status"], last["to_status"]) == ("DRAFT", "FUNDED")
    assert (last["actor_role"], last["actor_id"]) == ("BUYER", BUYER)


def test_an_illegal_transition_is_409_naming_the_allowed_ones(client, auth):
    rift = create_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "RELEASED"}, headers=auth(BUYER)
    )
    assert result.status_code == 409
    assert result.json["allowed"] == ["FUNDED", "CANCELED"]
    # Nothing changed.
    assert (
        client.simulate_get(f"/api/rifts/{rift['id']}", headers=auth(BUYER)).json["status"]
        == "DRAFT"
    )


def test_the_seller_cannot_fund_the_buyers_rift(client, auth):
    rift = create_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "FUNDED"}, headers=auth(SELLER)
    )
    assert result.status_code == 409
    assert "FUNDED" not in result.json["allowed"]


def test_proof_submitted_is_reached_only_by_submitting_proof(client, auth):
    rift = funded_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "PROOF_SUBMITTED"}, headers=auth(SELLER)
    )
    assert result.status_code == 403
    assert "/proofs" in result.json["message"]


def test_a_stale_version_is_409_and_changes_nothing(client, auth):
    rift = create_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions",
        json={"to": "FUNDED", "version": rift["version"] + 7},
        headers=auth(BUYER),
    )
    assert result.status_code == 409
    assert result.json["error"] == "version_conflict"
    ok = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions",
        json={"to": "FUNDED", "version": rift["version"]},
        headers=auth(BUYER),
    )
    assert ok.status_code == 200
    assert ok.json["version"] == rift["version"] + 1


def test_strangers_cannot_move_a_rift(client, auth):
    rift = create_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "CANCELED"}, headers=auth(STRANGER)
    )
    assert result.status_code == 404


def test_only_admins_list_failed_jobs(client, auth):
    assert client.simulate_get("/api/admin/jobs", headers=auth(BUYER)).status_code == 403
    listed = client.simulate_get("/api/admin/jobs", headers=auth("ops", Role.ADMIN))
    assert listed.status_code == 200
    assert listed.json == {
        "jobs": [],
        "total": 0,
        "total_is_lower_bound": False,
        "next_cursor": None,
    }
    bad = client.simulate_get(
        "/api/admin/jobs", params={"state": "NOPE"}, headers=auth("ops", Role.ADMIN)
    )
    assert bad.status_code == 422
