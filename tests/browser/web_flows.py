"""Deals set up over HTTP against the server under test, the way a marketplace would."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

from service.auth import mint_token
from service.domain.users import Role
from service.multipart import encode_multipart
from service.settings import Settings
from tests.monitoring.stack import http
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER

TRACKING = "1Z999AA10123456784"


def call(
    base: str,
    settings: Settings,
    user: str,
    method: str,
    path: str,
    body: Any = None,
    role: Role = Role.USER,
) -> Any:
    token = mint_token(user, role, settings.jwt_secret, ttl=timedelta(minutes=10))
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    status, payload = http(method, base + path, body=data, headers=headers)
    assert status < 300, f"{method} {path}: {status} {payload!r}"
    return json.loads(payload) if payload else None


def funded_rift(base: str, settings: Settings, title: str = "Logo design") -> dict[str, Any]:
    rift = call(
        base,
        settings,
        BUYER,
        "POST",
        "/api/rifts",
        {
            "title": title,
            "item_type": "SERVICES",
            "seller_id": SELLER,
            "subtotal": 25_000,
            "currency": "USD",
        },
    )
    call(base, settings, BUYER, "POST", f"/api/rifts/{rift['id']}/transitions", {"to": "FUNDED"})
    return dict(rift)


def unique_note(rift_id: str) -> bytes:
    """A delivery note no other rift has (an identical file elsewhere is reused proof)."""
    return (f"Rift {rift_id}, note {uuid.uuid4()}.\n" + DELIVERY_NOTE).encode()


def submit_over_http(
    base: str, settings: Settings, rift_id: str, files: list[tuple[str, bytes, str]]
) -> dict[str, Any]:
    token = mint_token(SELLER, Role.USER, settings.jwt_secret, ttl=timedelta(minutes=10))
    body, content_type = encode_multipart({}, files)
    status, payload = http(
        "POST",
        f"{base}/api/rifts/{rift_id}/proofs",
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    assert status == 202, payload
    return dict(json.loads(payload))


VERDICT_TIMEOUT_S = 30.0


def wait_for_verdict(base: str, settings: Settings, rift_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + VERDICT_TIMEOUT_S
    while time.monotonic() < deadline:
        status = call(base, settings, SELLER, "GET", f"/api/rifts/{rift_id}/verification-status")
        if status["status"] in ("completed", "failed"):
            return dict(status)
        time.sleep(0.1)
    raise AssertionError(f"no verdict for rift {rift_id} within {VERDICT_TIMEOUT_S}s")
