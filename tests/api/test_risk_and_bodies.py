"""Risk is the platform's; JSON bodies are bounded and exact; titles and currencies are checked."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from service.api.json_bodies import MAX_JSON_BODY_BYTES, MAX_JSON_DEPTH
from service.domain.users import Role
from service.models import Rift
from tests.support.flows import BUYER, OPERATOR, SELLER, STRANGER, create_rift

GOOD_RIFT = {
    "title": "Logo design",
    "item_type": "SERVICES",
    "seller_id": SELLER,
    "subtotal": 25_000,
    "currency": "USD",
}


def rifts_stored(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Rift))


def post_raw(client, auth, body: bytes, path: str = "/api/rifts"):
    return client.simulate_post(
        path, body=body, headers={**auth(BUYER), "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    "risk", [{"risk_score": 0}, {"requires_manual_review": False}, {"risk_score": 0, "x": 1}]
)
def test_a_buyer_cannot_set_the_risk_inputs(client, auth, sessions, risk):
    result = client.simulate_post("/api/rifts", json={**GOOD_RIFT, **risk}, headers=auth(BUYER))
    assert result.status_code == 422
    assert result.json["field"] in risk
    assert "PUT /api/rifts/{rift_id}/risk" in result.json["message"]
    assert rifts_stored(sessions) == 0


def test_unknown_fields_are_422_naming_them(client, auth, sessions):
    body = {**GOOD_RIFT, "colour": "red", "notes": "x" * 1000}
    result = client.simulate_post("/api/rifts", json=body, headers=auth(BUYER))
    assert result.status_code == 422
    assert result.json["field"] == "colour"
    assert "colour, notes" in result.json["message"]
    assert rifts_stored(sessions) == 0


def test_only_an_admin_sets_risk_and_the_log_records_it(client, auth):
    rift = create_rift(client, auth)
    assessment = {"risk_score": 80, "requires_manual_review": True, "reason": "chargeback history"}
    for caller in (BUYER, SELLER, STRANGER):
        refused = client.simulate_put(
            f"/api/rifts/{rift['id']}/risk", json=assessment, headers=auth(caller)
        )
        assert refused.status_code == 403, caller

    assessed = client.simulate_put(
        f"/api/rifts/{rift['id']}/risk", json=assessment, headers=auth(OPERATOR, Role.ADMIN)
    )

    assert assessed.status_code == 200
    assert (assessed.json["risk_score"], assessed.json["requires_manual_review"]) == (80, True)
    events = client.simulate_get(f"/api/rifts/{rift['id']}/events", headers=auth(BUYER)).json
    last = events["events"][-1]
    assert (last["kind"], last["actor_role"], last["actor_id"]) == (
        "risk_assessed",
        "ADMIN",
        OPERATOR,
    )
    assert "risk_score 0 -> 80" in last["reason"] and "chargeback history" in last["reason"]


@pytest.mark.parametrize(
    ("assessment", "field"),
    [
        ({"risk_score": 101, "requires_manual_review": False, "reason": "x"}, "risk_score"),
        (
            {"risk_score": 10, "requires_manual_review": "no", "reason": "x"},
            "requires_manual_review",
        ),
        ({"risk_score": 10, "requires_manual_review": False}, "reason"),
    ],
)
def test_a_bad_risk_assessment_is_422_naming_the_field(client, auth, assessment, field):
    rift = create_rift(client, auth)
    result = client.simulate_put(
        f"/api/rifts/{rift['id']}/risk", json=assessment, headers=auth(OPERATOR, Role.ADMIN)
    )
    assert result.status_code == 422
    assert result.json["field"] == field


def test_json_nested_10000_deep_is_a_400(client, auth, sessions):
    result = post_raw(client, auth, b"[" * 10_000 + b"]" * 10_000)
    assert result.status_code == 400
    assert f"deeper than {MAX_JSON_DEPTH}" in result.json["message"]
    assert rifts_stored(sessions) == 0


def test_a_json_body_over_the_size_limit_is_a_413(client, auth):
    body = json.dumps({**GOOD_RIFT, "title": "x" * MAX_JSON_BODY_BYTES}).encode()
    result = post_raw(client, auth, body)
    assert result.status_code == 413
    assert str(MAX_JSON_BODY_BYTES) in result.json["message"]


def test_duplicate_keys_are_refused(client, auth, sessions):
    body = json.dumps(GOOD_RIFT)[:-1].encode() + b', "seller_id": "someone-else"}'
    result = post_raw(client, auth, body)
    assert result.status_code == 400
    assert "'seller_id' appears twice" in result.json["message"]
    assert rifts_stored(sessions) == 0


def test_a_form_body_on_a_json_route_is_415(client, auth):
    result = client.simulate_post(
        "/api/rifts",
        body=b"title=x",
        headers={**auth(BUYER), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status_code == 415


@pytest.mark.parametrize("currency", ["XYZ", "ABC", "XXX"])
def test_a_currency_outside_iso_4217_is_422(client, auth, currency):
    result = client.simulate_post(
        "/api/rifts", json={**GOOD_RIFT, "currency": currency}, headers=auth(BUYER)
    )
    assert result.status_code == 422
    assert result.json["field"] == "currency"


def test_a_lower_case_iso_code_is_stored_upper_case(client, auth):
    rift = create_rift(client, auth, currency="eur")
    assert rift["currency"] == "EUR"


@pytest.mark.parametrize(
    "title", ["Logo\x00design", "Logo\x07design", "Logo \u202edesign", "Logo\u2066x", "a\nb"]
)
def test_control_and_bidi_characters_in_a_title_are_refused(client, auth, sessions, title):
    result = client.simulate_post(
        "/api/rifts", json={**GOOD_RIFT, "title": title}, headers=auth(BUYER)
    )
    assert result.status_code == 422
    assert result.json["field"] == "title"
    assert rifts_stored(sessions) == 0


def test_a_seller_id_longer_than_its_column_is_422(client, auth, sessions):
    result = client.simulate_post(
        "/api/rifts", json={**GOOD_RIFT, "seller_id": "s" * 65}, headers=auth(BUYER)
    )
    assert result.status_code == 422
    assert result.json["field"] == "seller_id"
    assert rifts_stored(sessions) == 0
