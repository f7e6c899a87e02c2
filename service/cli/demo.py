"""`rift demo`: one submission end to end over HTTP against a running system."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

from service.auth import mint_token
from service.cli.command import Command, CommandError
from service.domain.users import Role
from service.multipart import encode_multipart
from service.settings import Settings
from service.web.links import OPS_PATH, rift_page_path, sign_in_link

DEMO_POLL_TIMEOUT_S = 60.0
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEMO_SELLER, DEMO_BUYER, DEMO_OPERATOR = "demo-seller", "demo-buyer", "demo-operator"


def _call(
    base: str,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def demo(settings: Settings, base: str) -> None:
    """Create a rift, fund it, submit proof and print the verdict as the API returns it."""
    ttl = timedelta(hours=1)
    buyer = mint_token(DEMO_BUYER, Role.USER, settings.jwt_secret, ttl=ttl)
    seller = mint_token(DEMO_SELLER, Role.USER, settings.jwt_secret, ttl=ttl)
    rift = _call(
        base,
        "POST",
        "/api/rifts",
        buyer,
        json.dumps(
            {
                "title": "Demo: e-book delivery",
                "item_type": "DIGITAL_GOODS",
                "seller_id": DEMO_SELLER,
                "subtotal": 2500,
                "currency": "EUR",
            }
        ).encode(),
    )
    _call(
        base,
        "POST",
        f"/api/rifts/{rift['id']}/transitions",
        buyer,
        json.dumps({"to": "FUNDED"}).encode(),
    )
    # Unique per rift: an identical file on another rift is flagged as reused proof.
    notes = (
        f"Delivered the e-book for rift {rift['id']} by email on request; "
        "download link valid for 30 days, receipt attached.\n" * 3
    ).encode()
    body, content_type = encode_multipart(
        {"tracking_number": "1Z999AA10123456784", "license_key": f"DEMO-{uuid.uuid4().hex[:16]}"},
        [("delivery-note.txt", notes, "text/plain")],
    )
    accepted = _call(base, "POST", f"/api/rifts/{rift['id']}/proofs", seller, body, content_type)
    print("submitted:", json.dumps(accepted, indent=2))
    deadline = time.monotonic() + DEMO_POLL_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _call(base, "GET", accepted["status_url"], seller)
        if status["status"] in ("completed", "failed"):
            print("verdict:", json.dumps(status, indent=2))
            _print_page_links(settings, base, rift["id"])
            return
        time.sleep(0.2)
    raise CommandError("no verdict within a minute: are the workers running? (make status)")


def _print_page_links(settings: Settings, base: str, rift_id: str) -> None:
    """The same deal in the browser: sign-in links as `rift link` prints them."""
    page = rift_page_path(rift_id)
    for label, user, path, role in (
        ("seller's page", DEMO_SELLER, page, Role.USER),
        ("buyer's page", DEMO_BUYER, page, Role.USER),
        ("operator console", DEMO_OPERATOR, OPS_PATH, Role.ADMIN),
    ):
        print(f"{label}: {sign_in_link(base, path, user, role, settings.jwt_secret)}")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=DEFAULT_API_URL, help="the API's base URL")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if not args.api.startswith(("http://", "https://")):
        raise CommandError("--api must be an http:// or https:// URL")
    try:
        demo(settings, args.api.rstrip("/"))
    except urllib.error.HTTPError as exc:
        raise CommandError(
            f"{exc.code} {exc.reason}: {exc.read().decode(errors='replace')}"
        ) from None


COMMAND = Command(
    name="demo",
    help="run a submission end to end over HTTP",
    run=_run,
    add_arguments=_add_arguments,
)
