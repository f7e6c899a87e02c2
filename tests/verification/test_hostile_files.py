"""Hostile bytes end as issues on the file, never as an exception out of the rules."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

from proof_fixtures import UPLOADED_AT, build_pdf, build_zip, check_bytes, codes, prose

from service.verification.pdf_actions import (
    MAX_ACTIONS_WALKED,
    MAX_ANNOTATIONS_PER_PAGE,
    MAX_PAGES_FOR_ACTIONS,
)
from service.verification.sniffing import sniff_mime

README = b"These are the delivered project files. " * 10
LONG_AGO = UPLOADED_AT.replace(year=2024)


def with_method(data: bytes, method: int) -> bytes:
    """Rewrite every member's compression method in the local and central headers."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = patched.find(signature)
        while at >= 0:
            patched[at + offset : at + offset + 2] = struct.pack("<H", method)
            at = patched.find(signature, at + 4)
    return bytes(patched)


def test_a_corrupt_deflate_stream_is_a_corrupt_member(tmp_path: Path) -> None:
    data = bytearray(build_zip({"notes.txt": README * 20}))
    # Corrupt the deflate stream just after the first local header and its name.
    data_start = 30 + len("notes.txt")
    data[data_start : data_start + 4] = b"\xff\xff\xff\xff"
    result = check_bytes(tmp_path, bytes(data))
    assert "zip.corrupt_member" in codes(result.check)
    assert not result.check.passed


def test_an_unsupported_compression_method_is_an_issue_and_sniffs(tmp_path: Path) -> None:
    data = with_method(build_zip({"notes.txt": README}), 97)  # WavPack: zipfile lacks it
    assert sniff_mime(data) == "application/zip"
    result = check_bytes(tmp_path, data)
    assert "zip.unsupported_compression" in codes(result.check)


def test_a_zip_whose_end_record_claims_millions_of_members_is_refused_unparsed(
    tmp_path: Path,
) -> None:
    data = bytearray(build_zip({"notes.txt": README}))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 0xFFFE, 0xFFFE)
    started = time.monotonic()
    result = check_bytes(tmp_path, bytes(data))
    assert time.monotonic() - started < 1.0
    assert codes(result.check) == {"zip.too_many_members"}
    assert result.facts == {"member_count": 0xFFFE}


def test_a_zip_without_an_end_record_is_unreadable(tmp_path: Path) -> None:
    data = build_zip({"notes.txt": README})
    result = check_bytes(tmp_path, data[: data.rfind(b"PK\x05\x06")] + b"\x00" * 22)
    assert codes(result.check) == {"zip.unreadable"}


def pdf_with_stream_filter(filter_name: bytes) -> bytes:
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    # Claim the page's content stream is encoded with a filter pypdf does not implement.
    return pdf.replace(b"<< /Length", b"<< /Filter /" + filter_name + b" /Length", 1)


def test_a_pdf_stream_filter_pypdf_lacks_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    for name in (b"JBIG2Decode", b"NoSuchDecode"):
        result = check_bytes(tmp_path, pdf_with_stream_filter(name))
        assert result.sniffed_mime == "application/pdf"
        assert codes(result.check) == {"pdf.unreadable"}
        assert not result.check.passed


def test_a_pdf_with_a_corrupt_flate_stream_is_not_a_crash(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    broken = pdf.replace(b"<< /Length", b"<< /Filter /FlateDecode /Length", 1)
    result = check_bytes(tmp_path, broken)
    # pypdf reads the undecodable stream as no text: the page's words are gone, and so are 50.
    assert {d.code for d in result.check.deductions} == {"pdf.no_text"}
    assert not result.check.passed


def test_objects_nested_past_the_recursion_limit_are_unreadable(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO, catalog_entries=b"/Deep " + deep)
    result = check_bytes(tmp_path, pdf)
    assert "pdf.unreadable" in codes(result.check)


def chained_actions(count: int, last: bytes) -> bytes:
    """An action chain of `count` harmless links, each one's /Next the following, then `last`."""
    chain = last
    for _ in range(count):
        chain = b"<< /S /URI /URI (https://example.com) /Next " + chain + b" >>"
    return chain


def test_javascript_after_forty_chained_actions_is_found(tmp_path: Path) -> None:
    action = chained_actions(40, b"<< /S /JavaScript /JS (x()) >>")
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO, annotation_entries=b"/A " + action)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.javascript"}


def test_javascript_in_a_next_array_after_many_harmless_actions_is_found(tmp_path: Path) -> None:
    harmless = b"<< /S /URI /URI (https://example.com) >> " * 100
    action = b"<< /S /URI /URI (x) /Next [" + harmless + b"<< /S /JavaScript /JS (x()) >>] >>"
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO, annotation_entries=b"/A " + action)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.javascript"}


def test_a_next_array_past_the_walk_budget_is_an_issue_and_quick(tmp_path: Path) -> None:
    harmless = b"<< /S /URI /URI (https://example.com) >> " * (MAX_ACTIONS_WALKED * 2)
    action = b"<< /S /URI /URI (x) /Next [" + harmless + b"<< /S /JavaScript /JS (x()) >>] >>"
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO, annotation_entries=b"/A " + action)
    started = time.monotonic()
    result = check_bytes(tmp_path, pdf)
    elapsed = time.monotonic() - started
    assert "pdf.too_complex" in codes(result.check)
    # Parsing the array is pypdf's cost; walking it is bounded by the budget.
    assert elapsed < 10.0


def test_more_annotations_on_a_page_than_are_walked_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    annots = b" ".join(b"<< /Type /Annot /Subtype /Link /Rect [0 0 1 1] >>" for _ in range(600))
    assert MAX_ANNOTATIONS_PER_PAGE < 600
    pdf = pdf.replace(b"/Type /Page /Parent", b"/Annots [" + annots + b"] /Type /Page /Parent", 1)
    assert "pdf.too_complex" in codes(check_bytes(tmp_path, pdf).check)


def test_a_chain_that_loops_back_on_itself_ends(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    # Object 3 is the font; make an action object referencing itself through /Next.
    looped = pdf.replace(
        b"/BaseFont /Helvetica >>", b"/BaseFont /Helvetica /S /URI /URI (x) /Next 3 0 R >>", 1
    )
    looped = looped.replace(b"/Type /Page /Parent", b"/AA << /O 3 0 R >> /Type /Page /Parent", 1)
    result = check_bytes(tmp_path, looped)
    assert "pdf.too_complex" not in codes(result.check)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_an_image_whose_chunks_are_corrupt_is_unreadable(tmp_path: Path) -> None:
    header = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 200, 200, 8, 2, 0, 0, 0)
    chunk = (
        struct.pack(">I", len(ihdr))
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    idat = zlib.compress(b"\x05" * 10_000)  # filter type 5 does not exist
    chunk += (
        struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )
    data = header + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    result = check_bytes(tmp_path, data)
    assert result.sniffed_mime == "image/png"
    assert "image.unreadable" in codes(result.check)


def test_sniffing_survives_a_zip_whose_directory_lies(tmp_path: Path) -> None:
    data = bytearray(build_zip({"word/document.xml": README, "[Content_Types].xml": README}))
    central = data.find(b"PK\x01\x02")
    data[central + 28 : central + 30] = struct.pack("<H", 0xFFFF)  # name length past the end
    assert sniff_mime(bytes(data)) in ("application/zip", "application/octet-stream")


def test_many_annotations_sharing_one_long_next_array_cost_one_budget(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500)], created_at=LONG_AGO)
    # Object 3 (the font) becomes a 1,500-entry array of links; 400 annotations chain to it.
    links = b"<< /S /URI /URI (https://example.com) >> " * 1_500
    shared = pdf.replace(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", b"[" + links + b"]", 1
    )
    annots = b" ".join(
        b"<< /Type /Annot /Subtype /Link /Rect [0 0 1 1] /A << /S /URI /URI (x) /Next 3 0 R >> >>"
        for _ in range(400)
    )
    shared = shared.replace(
        b"/Type /Page /Parent", b"/Annots [" + annots + b"] /Type /Page /Parent", 1
    )
    started = time.monotonic()
    result = check_bytes(tmp_path, shared)
    assert time.monotonic() - started < 10.0
    assert "pdf.too_complex" in codes(result.check)


def test_more_pages_than_are_walked_for_actions_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500)] + ["x"] * MAX_PAGES_FOR_ACTIONS, created_at=LONG_AGO)
    assert "pdf.too_complex" in codes(check_bytes(tmp_path, pdf).check)
