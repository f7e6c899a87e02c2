"""Small builders for the requests every API test makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import falcon.testing

from service.domain.users import Role
from service.multipart import encode_multipart

BUYER, SELLER, STRANGER, OPERATOR = "buyer-1", "seller-1", "stranger-1", "operator-1"

# A delivery note long enough to pass the text and file rules, with nothing suspicious in it.
DELIVERY_NOTE = (
    "Delivery note for order 4411. The customer received the goods in person on Monday; "
    "signature on file, photos of the package attached separately, serial numbers listed.\n"
) * 4


def multipart(
    fields: Mapping[str, str] | None = None, files: Sequence[tuple[str, bytes, str]] = ()
) -> tuple[bytes, dict[str, str]]:
    """Encode fields and (filename, content, content type) files as multipart/form-data."""
    body, content_type = encode_multipart(fields or {}, files)
    return body, {"Content-Type": content_type}


RISK_FIELDS = ("risk_score", "requires_manual_review")


def create_rift(client: falcon.testing.TestClient, auth: Any, **overrides: Any) -> dict[str, Any]:
    """Create a rift as BUYER; risk overrides are set afterwards by an admin, as they must be."""
    risk = {name: overrides.pop(name) for name in RISK_FIELDS if name in overrides}
    body = {
        "title": "Logo design",
        "item_type": "SERVICES",
        "seller_id": SELLER,
        "subtotal": 25_000,
        "currency": "USD",
        **overrides,
    }
    result = client.simulate_post("/api/rifts", json=body, headers=auth(BUYER))
    assert result.status_code == 201, result.text
    if not risk:
        return dict(result.json)
    assessed = client.simulate_put(
        f"/api/rifts/{result.json['id']}/risk",
        json={
            "risk_score": risk.get("risk_score", 0),
            "requires_manual_review": risk.get("requires_manual_review", False),
            "reason": "set up by the test",
        },
        headers=auth(OPERATOR, Role.ADMIN),
    )
    assert assessed.status_code == 200, assessed.text
    return dict(assessed.json)


def funded_rift(client: falcon.testing.TestClient, auth: Any, **overrides: Any) -> dict[str, Any]:
    rift = create_rift(client, auth, **overrides)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "FUNDED"}, headers=auth(BUYER)
    )
    assert result.status_code == 200, result.text
    return dict(result.json)


def submit(
    client: falcon.testing.TestClient,
    auth: Any,
    rift_id: str,
    *,
    fields: Mapping[str, str] | None = None,
    files: Sequence[tuple[str, bytes, str]] = (),
    user: str = SELLER,
    headers: Mapping[str, str] | None = None,
) -> falcon.testing.Result:
    body, content_headers = multipart(fields, files)
    return client.simulate_post(
        f"/api/rifts/{rift_id}/proofs",
        body=body,
        headers={**auth(user), **content_headers, **(headers or {})},
    )
