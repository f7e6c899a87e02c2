"""Bearer tokens: missing or bad is 401; someone else's rift or job is 404, like a missing one."""

from datetime import timedelta

import jwt
import pytest

from service.auth import mint_token
from service.domain.users import Role
from tests.support.flows import BUYER, SELLER, STRANGER, create_rift, funded_rift, submit


def test_requests_without_a_token_are_401_with_a_hint(client):
    result = client.simulate_get("/api/rifts/any")
    assert result.status_code == 401
    assert "Bearer" in result.json["message"]
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-jwt"])
def test_malformed_authorization_is_401(client, header):
    assert client.simulate_get("/api/rifts/x", headers={"Authorization": header}).status_code == 401


def test_expired_token_is_401_saying_so(client, settings):
    token = mint_token(BUYER, Role.USER, settings.jwt_secret, ttl=timedelta(seconds=-120))
    result = client.simulate_get("/api/rifts/x", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 401
    assert "expired" in result.json["message"]


def test_token_signed_with_another_secret_is_401(client):
    token = mint_token(
        BUYER, Role.USER, "some-other-secret-0123456789abcdef0123", ttl=timedelta(minutes=5)
    )
    result = client.simulate_get("/api/rifts/x", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 401


def test_token_with_unknown_role_is_401(client, settings):
    token = jwt.encode(
        {"sub": BUYER, "role": "superuser", "exp": 2**33}, settings.jwt_secret, algorithm="HS256"
    )
    result = client.simulate_get("/api/rifts/x", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 401


def test_someone_elses_rift_looks_exactly_like_a_missing_one(client, auth):
    rift = create_rift(client, auth)
    theirs = client.simulate_get(f"/api/rifts/{rift['id']}", headers=auth(STRANGER))
    missing = client.simulate_get("/api/rifts/no-such-rift", headers=auth(STRANGER))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json["error"] == missing.json["error"] == "not_found"


def test_buyer_seller_and_admin_can_read_the_rift_and_its_status(client, auth):
    rift = funded_rift(client, auth)
    for headers in (auth(BUYER), auth(SELLER), auth("ops", Role.ADMIN)):
        assert client.simulate_get(f"/api/rifts/{rift['id']}", headers=headers).status_code == 200
        status = client.simulate_get(
            f"/api/rifts/{rift['id']}/verification-status", headers=headers
        )
        assert status.status_code == 200
        assert status.json["status"] == "not_started"


def test_a_strangers_job_lookup_is_404(client, auth):
    rift = funded_rift(client, auth)
    accepted = submit(client, auth, rift["id"], fields={"tracking_number": "1Z999AA10123456784"})
    job_url = f"/api/jobs/{accepted.json['verification_job_id']}"
    assert client.simulate_get(job_url, headers=auth(SELLER)).status_code == 200
    assert client.simulate_get(job_url, headers=auth(BUYER)).status_code == 200
    assert client.simulate_get(job_url, headers=auth(STRANGER)).status_code == 404


def test_an_unknown_job_id_is_404_never_a_fake_pending(client, auth):
    result = client.simulate_get(
        "/api/jobs/00000000-0000-0000-0000-000000000000", headers=auth("ops", Role.ADMIN)
    )
    assert result.status_code == 404
    assert result.json["error"] == "not_found"
