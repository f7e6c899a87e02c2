"""File rules: sniffed type, allow-list, declared-vs-sniffed, size bounds, OOXML."""

from __future__ import annotations

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

from service.verification import VerificationThresholds, check_file, normalize_mime, sniff_mime
from service.verification.sniffing import DOCX

TEXT = prose(400).encode()


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("image/jpg", "image/jpeg"),
        ("IMAGE/PJPEG", "image/jpeg"),
        ("application/x-zip-compressed", "application/zip"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("application/x-pdf", "application/pdf"),
    ],
)
def test_mime_aliases_normalize(alias: str, canonical: str) -> None:
    assert normalize_mime(alias) == canonical


def test_a_declared_alias_of_the_sniffed_type_is_no_mismatch(tmp_path: Path) -> None:
    data = encode_image(photo(1), "JPEG", with_exif=True)
    result = check_bytes(tmp_path, data, declared_mime="image/jpg")
    assert result.check.issues == ()


def test_the_type_comes_from_the_bytes_and_a_false_claim_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)])
    result = check_bytes(tmp_path, pdf, name="photo.png", declared_mime="image/png")
    assert result.sniffed_mime == "application/pdf"
    assert codes(result.check) == {"file.type_mismatch"}


def test_an_unknown_declared_type_is_no_claim(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, TEXT, declared_mime="application/octet-stream")
    assert result.sniffed_mime == "text/plain"
    assert result.check.issues == ()


def test_a_type_off_the_allow_list_fails(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><head><title>x</title></head><body>" + TEXT + b"</body></html>"
    result = check_bytes(tmp_path, page, declared_mime="text/html")
    assert result.sniffed_mime == "text/html"
    assert codes(result.check) == {"file.type_not_allowed"}
    assert not result.check.passed


def test_a_bare_executable_is_not_allowed(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, PE_HEADER + bytes(4096), declared_mime="application/pdf")
    assert "file.type_not_allowed" in codes(result.check)


def test_a_file_under_the_minimum_size_is_an_issue(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, b"short text file\n")
    assert codes(result.check) == {"file.too_small"}


def test_a_file_over_the_maximum_size_fails_without_being_parsed(tmp_path: Path) -> None:
    limited = VerificationThresholds(max_file_bytes=200)
    result = check_bytes(tmp_path, TEXT, thresholds=limited)
    assert codes(result.check) == {"file.too_large"}
    assert not result.check.passed


def test_a_stored_file_whose_size_differs_from_the_record_fails(tmp_path: Path) -> None:
    path = tmp_path / "proof.txt"
    path.write_bytes(TEXT)
    result = check_file(
        path,
        declared_mime=None,
        size_bytes=len(TEXT) + 1,
        uploaded_at=UPLOADED_AT,
        thresholds=VerificationThresholds(),
    )
    assert codes(result.check) == {"file.size_mismatch"}


def test_a_missing_stored_file_fails(tmp_path: Path) -> None:
    result = check_file(
        tmp_path / "gone",
        declared_mime=None,
        size_bytes=10,
        uploaded_at=UPLOADED_AT,
        thresholds=VerificationThresholds(),
    )
    assert codes(result.check) == {"file.missing"}


@pytest.mark.parametrize("manifest_first", [True, False])
def test_a_word_document_is_recognised_whatever_the_part_order(
    tmp_path: Path, manifest_first: bool
) -> None:
    data = docx(manifest_first=manifest_first)
    path = tmp_path / "report.docx"
    path.write_bytes(data)
    assert sniff_mime(path) == DOCX
    result = check_bytes(tmp_path, data, declared_mime=DOCX)
    assert result.sniffed_mime == DOCX
    assert result.check.issues == ()


def test_a_plain_zip_is_not_mistaken_for_a_document() -> None:
    archive = build_zip({"word/readme.txt": TEXT})  # a folder name alone is not OOXML
    assert sniff_mime(archive) == "application/zip"


def test_sniff_mime_reads_a_head_of_bytes() -> None:
    assert sniff_mime(encode_image(photo(1), "PNG")[:2048]) == "image/png"
