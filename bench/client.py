"""What a seller's client does: funded rifts to submit to, small proofs, HTTP calls."""

from __future__ import annotations

import http.client
import io
import json
import os
import textwrap
import uuid
from collections.abc import Mapping, Sequence
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
    text = (INVOICE.format(ref=ref) * (chars // 150 + 1))[:chars]
    ops = ["BT /F1 9 Tf 40 800 Td 11 TL"]
    ops += [f"({line}) Tj T*" for line in textwrap.wrap(text, 90)]
    content = "\n".join([*ops, "ET"]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref_at)
    )
    return out.getvalue()


def png_photo(size: tuple[int, int] = (320, 240)) -> bytes:
    """A PNG of smooth random structure (not a near-duplicate of any other call's)."""
    small = Image.frombytes("RGB", (8, 6), os.urandom(8 * 6 * 3))
    out = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(out, "PNG")
    return out.getvalue()


def multipart(
    fields: Mapping[str, str], files: Sequence[tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """Encode fields and (filename, content, content type) files; return body, content type."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for filename, content, content_type in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        )
        out.write(content)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def small_proof(ref: str | None = None) -> tuple[bytes, str]:
    """The issue's small proof: one PDF with text, one PNG, a tracking number."""
    ref = ref or uuid.uuid4().hex[:12]
    return multipart(
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
