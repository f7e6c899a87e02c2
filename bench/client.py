"""What a seller's client does: funded rifts to submit to, small proofs, HTTP calls."""

from __future__ import annotations

import http.client
import io
import json
import os
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from PIL import Image

from bench.harness import JWT_SECRET
from service.auth import mint_token
from service.db import create_db_engine, create_session_factory, transaction
from service.domain.clock import new_id, utcnow
from service.domain.rifts import NewRift, create_rift, request_transition
from service.domain.users import Role, User
from service.models import ItemType, RiftStatus
from service.multipart import encode_multipart
from tests.verification.proof_fixtures import build_pdf

BUYER, SELLER = "bench-buyer", "bench-seller"
TRACKING_NUMBER = "1Z999AA10123456784"
RIFT_BATCH = 250
INVOICE = (
    "Invoice {ref} for the delivery of the website redesign. The seller delivered the final "
    "source files, the design system and the deployment notes to the buyer on request. "
)


def bearer(user_id: str, role: Role = Role.USER) -> dict[str, str]:
    token = mint_token(user_id, role, JWT_SECRET, ttl=timedelta(hours=2))
    return {"Authorization": f"Bearer {token}"}


def funded_rifts(database_url: str, n: int) -> list[str]:
    """Create n FUNDED rifts (buyer BUYER, seller SELLER) the way the API would."""
    engine = create_db_engine(database_url)
    sessions = create_session_factory(engine)
    buyer = User(id=BUYER, role=Role.USER)
    spec = NewRift(
        title="Website redesign",
        item_type=ItemType.SERVICES,
        seller_id=SELLER,
        subtotal_minor=25_000,
        currency="USD",
    )
    ids: list[str] = []
    for offset in range(0, n, RIFT_BATCH):
        with transaction(sessions) as session:
            for _ in range(min(RIFT_BATCH, n - offset)):
                now = utcnow()
                rift = create_rift(session, buyer, spec, now=now, ids=new_id)
                request_transition(
                    session,
                    rift.id,
                    buyer,
                    RiftStatus.FUNDED,
                    expected_version=None,
                    reason="bench",
                    now=now,
                    ids=new_id,
                )
                ids.append(rift.id)
    engine.dispose()
    return ids


def pdf_with_text(ref: str, chars: int = 1500) -> bytes:
    """A one-page PDF whose text layer holds about `chars` characters of invoice prose."""
    return build_pdf([(INVOICE.format(ref=ref) * (chars // 150 + 1))[:chars]])


def png_photo(size: tuple[int, int] = (320, 240)) -> bytes:
    """A PNG of smooth random structure (not a near-duplicate of any other call's)."""
    small = Image.frombytes("RGB", (8, 6), os.urandom(8 * 6 * 3))
    out = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(out, "PNG")
    return out.getvalue()


def small_proof(ref: str | None = None) -> tuple[bytes, str]:
    """The issue's small proof: one PDF with text, one PNG, a tracking number."""
    ref = ref or uuid.uuid4().hex[:12]
    return encode_multipart(
        {"tracking_number": TRACKING_NUMBER},
        [
            (f"invoice-{ref}.pdf", pdf_with_text(ref), "application/pdf"),
            (f"parcel-{ref}.png", png_photo(), "image/png"),
        ],
    )


class Api:
    """One keep-alive HTTP connection to a server on 127.0.0.1."""

    def __init__(self, port: int, timeout_s: float = 60.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=dict(headers or {}))
                response = self.conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # gunicorn closes idle keep-alive connections after a few seconds.
                self._reconnect()
                if attempt == 2:
                    raise
            except (http.client.HTTPException, OSError):
                self._reconnect()
                raise
        raise AssertionError("unreachable")

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)

    def json(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        status, raw = self.call(method, path, body, headers)
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def incompressible_text(n_bytes: int) -> bytes:
    """n_bytes of printable text that libmagic calls text/plain: lines of random hex."""
    line_chars, block_bytes = 127, 1024 * 1024
    raw = os.urandom(block_bytes // 2 + line_chars).hex().encode()
    block = b"\n".join(raw[i : i + line_chars] for i in range(0, len(raw), line_chars))
    # A 1 MiB random block, repeated: hashing and streaming cost the same as all-random.
    return (block[:block_bytes] * (n_bytes // block_bytes + 1))[:n_bytes]
