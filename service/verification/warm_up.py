"""Run the file rules once on a small sample of every accepted type, before any fork.

The rules' libraries load parts of themselves on first use: imagehash imports scipy inside
phash (about 190 ms), Pillow imports every plugin the first time a format outside its
common five is asked for, pypdf its filters, zipfile the cp437 codec, and regular
expressions are compiled into re's cache on first match. The fork server checks each file
in a fresh child, so whatever the server has not done yet, every child does again. Checking
one sample of each type in the server before it forks does it once, and the children
inherit the result (tests/verification/test_warm_up.py fails when a rule loads a module
in a child that this warm-up did not load).

The samples are built here, from Pillow and zipfile, rather than shipped as files: each
one takes the paths a real proof takes (text and an image in a PDF, JavaScript and a link
action, EXIF in a JPEG and a WebP, OOXML manifests, markup in text).
"""

from __future__ import annotations

import codecs
import io
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from service.verification.files import check_file
from service.verification.thresholds import VerificationThresholds

SAMPLE_UPLOADED_AT = datetime(2025, 1, 1, tzinfo=UTC)
SAMPLE_SIDE_PX = 128
PROSE = (
    "Invoice 1 for the delivery of the goods described in the order, shipped to the buyer "
    "with the tracking number given on the proof. "
) * 4


# The codecs a PDF string can select by its first bytes (a byte-order mark: pypdf's
# create_string_object). No sample can take all those paths: an encrypted PDF's strings
# decrypt to random bytes, so which codec a file loads is chance, and a codec is a module
# imported on first use. All of them are looked up here, once.
PDF_STRING_CODECS = ("utf-8", "utf-16", "utf-16-be", "utf-16-le", "latin-1", "charmap")


def warm_up(thresholds: VerificationThresholds | None = None) -> int:
    """Check every sample file in-process; return how many were checked."""
    thresholds = thresholds or VerificationThresholds()
    for codec in PDF_STRING_CODECS:
        codecs.lookup(codec)
    checked = 0
    with tempfile.TemporaryDirectory(prefix="rift-warm-up-") as folder:
        for name, build in SAMPLES.items():
            # Stored blobs have no extension, and Pillow picks its plugins by extension
            # first: the samples are named the same way, so they take the same path.
            path = Path(folder) / name
            try:
                path.write_bytes(build())
            # A sample this Pillow cannot write (a build without WebP, say) is one less
            # thing warmed, never a server that does not start.
            except Exception:  # noqa: S112
                continue
            check_file(
                path,
                declared_mime=None,
                size_bytes=path.stat().st_size,
                uploaded_at=SAMPLE_UPLOADED_AT,
                thresholds=thresholds,
            )
            checked += 1
    return checked


def sample_pdf() -> bytes:
    """A one-page PDF with text, an image, dates, a JavaScript open action and a link."""
    text = b"BT /F1 12 Tf 72 720 Td (" + PROSE.encode() + b") Tj ET"
    content = text + b" q 64 0 0 64 72 600 cm /Im1 Do Q"
    pixels = bytes(range(0, 256, 4)) * 64
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (void 0) >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Annots [7 0 R]"
        b" /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray"
        b" /BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream",
        b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10]"
        b" /A << /S /URI /URI (https://example.com/) >> >>",
        b"<< /CreationDate (D:20240101000000+00'00') /ModDate (D:20240101000000Z) >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 8 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref_at)
    )
    return out.getvalue()


def _picture() -> Image.Image:
    """Structure enough for a perceptual hash: noise over a gradient, in colour."""
    gradient = Image.linear_gradient("L").resize((SAMPLE_SIDE_PX, SAMPLE_SIDE_PX))
    noise = Image.effect_noise((SAMPLE_SIDE_PX, SAMPLE_SIDE_PX), 40)
    return Image.merge("RGB", (gradient, noise, gradient.rotate(90)))


def _encoded(fmt: str, *, exif: bool = False, mode: str = "RGB") -> Callable[[], bytes]:
    def build() -> bytes:
        picture = _picture().convert(mode)
        out = io.BytesIO()
        if exif:
            tags = Image.Exif()
            tags[0x010F] = "Rift"  # camera make
            tags[0x0132] = "2024:01:01 00:00:00"  # date and time
            picture.save(out, fmt, exif=tags.tobytes())
        else:
            picture.save(out, fmt)
        return out.getvalue()

    return build


def _zip(members: dict[str, bytes]) -> Callable[[], bytes]:
    def build() -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return out.getvalue()

    return build


def _ooxml(folder: str, part: str) -> Callable[[], bytes]:
    manifest = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'content-types"/>'
    )
    return _zip(
        {
            "[Content_Types].xml": manifest,
            "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
            f"{folder}{part}": b'<?xml version="1.0"?><doc>' + PROSE.encode() + b"</doc>",
        }
    )


def _polyglot() -> bytes:
    # A PNG with a zip appended: the second-format rule reads the zip directory.
    return _encoded("PNG")() + _zip({"notes.txt": PROSE.encode()})()


SAMPLES: dict[str, Callable[[], bytes]] = {
    "pdf": sample_pdf,
    "png": _encoded("PNG"),
    "png-palette": _encoded("PNG", mode="P"),
    "png-rgba": _encoded("PNG", mode="RGBA"),
    "jpeg": _encoded("JPEG", exif=True),
    "gif": _encoded("GIF"),
    "webp": _encoded("WEBP", exif=True),
    "zip": lambda: _zip({"notes.txt": PROSE.encode(), "invoice.pdf": sample_pdf()})(),
    "docx": _ooxml("word/", "document.xml"),
    "xlsx": _ooxml("xl/", "workbook.xml"),
    "pptx": _ooxml("ppt/", "presentation.xml"),
    "text": lambda: PROSE.encode(),
    "text-markup": lambda: PROSE.encode() + b"<script>void 0</script>",
    "polyglot": _polyglot,
}
