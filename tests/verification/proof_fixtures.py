"""Builders for real proof files (PDFs, photos, PNG bombs, zips) and a local HTTP server."""

from __future__ import annotations

import contextlib
import functools
import io
import ssl
import struct
import textwrap
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image
from pypdf import PdfReader, PdfWriter

from service.verification import AssetCheck, FileCheck, VerificationThresholds, check_file

LOREM = (
    "Invoice 2024-118 for the delivery of the website redesign. The seller delivered the "
    "final source files, the design system, and the deployment notes to the buyer. "
)


def prose(chars: int) -> str:
    """Return roughly `chars` characters of invoice-like prose."""
    return (LOREM * (chars // len(LOREM) + 1))[:chars]


def _pdf_date(moment: datetime) -> str:
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(
    pages: list[str],
    *,
    created_at: datetime | None = None,
    with_image: bool = False,
    open_action_js: str | None = None,
    open_action_destination: bool = False,
    launch_link: bool = False,
    page_auto_action_js: str | None = None,
    catalog_entries: bytes = b"",
    annotation_entries: bytes | None = None,
) -> bytes:
    """Write a small, valid PDF with the given text per page and optional active content."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog_id = add(b"")  # filled in last
    pages_id = add(b"")
    font_id = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    image_id = None
    if with_image:
        pixels = bytes(range(0, 256, 4)) * 64  # 64x64 gradient, 8-bit gray
        image_id = add(
            b"<< /Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream"
        )
    page_ids: list[int] = []
    for text in pages:
        lines = textwrap.wrap(text, 90) or [""]
        ops = ["BT /F1 9 Tf 40 800 Td 11 TL"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        if image_id is not None:
            ops.append("q 200 0 0 200 100 100 cm /Im1 Do Q")
        content = "\n".join(ops).encode("latin-1")
        content_id = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        xobjects = b"/XObject << /Im1 %d 0 R >>" % image_id if image_id is not None else b""
        annots = b""
        if launch_link:
            action_id = add(b"<< /Type /Action /S /Launch /F (calc.exe) >>")
            annot_id = add(
                b"<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] /A %d 0 R >>" % action_id
            )
            annots = b"/Annots [%d 0 R]" % annot_id
        elif annotation_entries is not None:
            annot_id = add(
                b"<< /Type /Annot /Subtype /Widget /Rect [0 0 100 100] %s >>" % annotation_entries
            )
            annots = b"/Annots [%d 0 R]" % annot_id
        auto = b""
        if page_auto_action_js is not None:
            js = _escape(page_auto_action_js).encode()
            auto = b"/AA << /O << /S /JavaScript /JS (" + js + b") >> >>"
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                b"/Resources << /Font << /F1 %d 0 R >> %s >> /Contents %d 0 R %s %s >>"
                % (pages_id, font_id, xobjects, content_id, annots, auto)
            )
        )
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    open_action = b""
    if open_action_js is not None:
        js_id = add(b"<< /S /JavaScript /JS (" + _escape(open_action_js).encode() + b") >>")
        open_action = b"/OpenAction %d 0 R" % js_id
    elif open_action_destination and page_ids:
        open_action = b"/OpenAction [%d 0 R /Fit]" % page_ids[0]
    objects[catalog_id - 1] = b"<< /Type /Catalog /Pages %d 0 R %s %s >>" % (
        pages_id,
        open_action,
        catalog_entries,
    )
    info_id = None
    if created_at is not None:
        info_id = add(
            b"<< /Producer (rift tests) /CreationDate (%s) >>" % _pdf_date(created_at).encode()
        )

    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    info = b"/Info %d 0 R" % info_id if info_id is not None else b""
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R %s >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog_id, info, xref_at)
    )
    return out.getvalue()


def encrypt_pdf(pdf: bytes, *, user_password: str) -> bytes:
    """Return the PDF encrypted with AES-256 (an empty user password opens it read-only)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@functools.lru_cache(maxsize=16)
def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Draw a photo-like RGB image: soft blobs, gradients and sensor noise (do not mutate)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(6):
            cx, cy, spread = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(40, 200)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * spread * spread))
            pixels[..., channel] += rng.uniform(40, 120) * blob
        pixels[..., channel] += rng.uniform(0, 80) * x / width + rng.uniform(0, 80) * y / height
    pixels += rng.normal(0, 8, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))


def encode_image(
    image: Image.Image, fmt: str, *, with_exif: bool = False, **options: object
) -> bytes:
    """Encode an image, optionally with camera EXIF (make, model, date)."""
    out = io.BytesIO()
    if with_exif:
        exif = Image.Exif()
        exif[0x010F] = "RiftCam"
        exif[0x0110] = "Model 7"
        exif[0x0132] = "2024:05:01 10:00:00"
        image.save(out, fmt, exif=exif.tobytes(), **options)
    else:
        image.save(out, fmt, **options)
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """Write a 1-bit grayscale PNG of the given size, streaming the compressor row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


PE_HEADER = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48


def build_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """Write a zip holding the given members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_bomb(uncompressed_bytes: int) -> bytes:
    """Write a zip with one member of zeros, streamed so it never sits in memory whole."""
    out = io.BytesIO()
    block = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("data.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(uncompressed_bytes // len(block)):
            member.write(block)
    return out.getvalue()


def docx(*, manifest_first: bool = True) -> bytes:
    """Write a minimal Word document (an OOXML zip)."""
    parts = {
        "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
        "word/document.xml": b'<?xml version="1.0"?><w:document>'
        + prose(400).encode()
        + b"</w:document>",
    }
    if not manifest_first:
        parts = dict(reversed(list(parts.items())))
    return build_zip(parts)


@dataclass
class LocalServer:
    """A local HTTP server; `routes` maps a path to (status, headers, body, delay_s)."""

    port: int
    seen_hosts: list[str] = field(default_factory=list)


@contextmanager
def http_server(
    routes: dict[str, tuple[int, dict[str, str], bytes, float]],
    *,
    tls: ssl.SSLContext | None = None,
) -> Iterator[LocalServer]:
    """Serve `routes` on 127.0.0.1 (over TLS when given) in a thread; shut down on exit."""
    seen_hosts: list[str] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen_hosts.append(self.headers.get("Host", ""))
            status, headers, body, delay_s = routes.get(self.path, (404, {}, b"", 0.0))
            if delay_s:
                stop.wait(delay_s)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The probe hangs up once it has read its byte cap.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield LocalServer(port=server.server_address[1], seen_hosts=seen_hosts)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


UPLOADED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def check_bytes(
    tmp_path: Path,
    data: bytes,
    *,
    name: str = "proof.bin",
    declared_mime: str | None = None,
    uploaded_at: datetime = UPLOADED_AT,
    thresholds: VerificationThresholds | None = None,
) -> FileCheck:
    """Store `data` as a file and run the file rules on it, as the worker would."""
    path = tmp_path / name
    path.write_bytes(data)
    return check_file(
        path,
        declared_mime=declared_mime,
        size_bytes=len(data),
        uploaded_at=uploaded_at,
        thresholds=thresholds or VerificationThresholds(),
    )


def codes(check: AssetCheck) -> set[str]:
    """Return the issue codes of a check."""
    return {issue.code for issue in check.issues}


def deduction_codes(check: AssetCheck) -> set[str]:
    """Return the deduction codes of a check."""
    return {deduction.code for deduction in check.deductions}


def self_signed_tls(tmp_path: Path, host: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (server context, client context trusting it) for a certificate naming `host`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / f"{host}.pem"
    key_path = tmp_path / f"{host}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client
