"""Zip rules on generated archives: bombs, executables, nesting, limits, corruption."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

from proof_fixtures import PE_HEADER, build_zip, check_bytes, codes, zip_bomb

from service.verification import VerificationThresholds

README = b"These are the delivered project files. " * 10


def test_an_ordinary_zip_of_documents_is_clean(tmp_path: Path) -> None:
    data = build_zip({"docs/readme.txt": README, "docs/notes.md": README, "img/": b""})
    result = check_bytes(tmp_path, data, declared_mime="application/x-zip-compressed")
    assert result.sniffed_mime == "application/zip"
    assert result.check.score == 100
    assert result.check.issues == ()
    assert result.facts == {"member_count": 2}


def test_a_zip_bomb_is_flagged_by_its_compression_ratio(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, zip_bomb(20 * 1024 * 1024))
    assert codes(result.check) == {"zip.compression_ratio"}


def test_a_zip_over_the_total_size_limit_is_flagged(tmp_path: Path) -> None:
    data = build_zip({"big.bin": os.urandom(2 * 1024 * 1024)})
    limited = VerificationThresholds(zip_max_total_uncompressed_bytes=1024 * 1024)
    assert codes(check_bytes(tmp_path, data, thresholds=limited).check) == {"zip.too_large"}
    assert check_bytes(tmp_path, data).check.issues == ()


def test_a_zip_with_too_many_members_is_flagged(tmp_path: Path) -> None:
    data = build_zip({f"part{i}.txt": README for i in range(6)})
    limited = VerificationThresholds(zip_max_members=5)
    assert codes(check_bytes(tmp_path, data, thresholds=limited).check) == {"zip.too_many_members"}


def test_an_exe_inside_is_flagged(tmp_path: Path) -> None:
    data = build_zip({"readme.txt": README, "setup.exe": PE_HEADER + os.urandom(512)})
    assert codes(check_bytes(tmp_path, data).check) == {"zip.executable"}


def test_an_executable_is_found_by_its_bytes_whatever_its_name(tmp_path: Path) -> None:
    data = build_zip(
        {"invoice.pdf": b"MZ" + b"\x00" * 300, "tool": b"\x7fELF\x02\x01\x01" + bytes(200)}
    )
    assert codes(check_bytes(tmp_path, data).check) == {"zip.executable"}


def test_an_executable_is_found_by_its_name_whatever_its_bytes(tmp_path: Path) -> None:
    data = build_zip({"invoice.pdf.exe": README})
    assert codes(check_bytes(tmp_path, data).check) == {"zip.executable"}


def test_a_nested_archive_is_flagged_by_bytes_and_by_name(tmp_path: Path) -> None:
    inner = build_zip({"readme.txt": README})
    assert codes(check_bytes(tmp_path, build_zip({"inner.dat": inner})).check) == {
        "zip.nested_archive"
    }
    named = build_zip({"backup.tar.gz": README})
    assert codes(check_bytes(tmp_path, named).check) == {"zip.nested_archive"}


def test_a_member_escaping_the_folder_is_flagged(tmp_path: Path) -> None:
    data = build_zip({"../../etc/cron.d/job": README})
    assert codes(check_bytes(tmp_path, data).check) == {"zip.unsafe_path"}


def test_a_truncated_zip_fails_integrity(tmp_path: Path) -> None:
    data = build_zip({"readme.txt": README * 5})
    result = check_bytes(tmp_path, data[: len(data) - 30])  # loses the central directory
    assert result.sniffed_mime == "application/zip"
    assert codes(result.check) == {"zip.unreadable"}
    assert not result.check.passed


def test_a_zip_whose_headers_understate_sizes_fails_integrity(tmp_path: Path) -> None:
    # Given a member whose local and central headers both claim 10 bytes instead of 4000,
    data = bytearray(build_zip({"readme.txt": README * 10}, compression=zipfile.ZIP_DEFLATED))
    real = struct.pack("<I", len(README) * 10)
    fake = struct.pack("<I", 10)
    assert data.count(real) == 2
    data = bytearray(bytes(data).replace(real, fake))
    # when the worker streams it, the decompressed bytes no longer match the CRC.
    result = check_bytes(tmp_path, bytes(data))
    assert codes(result.check) == {"zip.corrupt_member"}
    assert not result.check.integrity_ok


def test_password_protected_members_are_flagged(tmp_path: Path) -> None:
    data = bytearray(build_zip({"secret.txt": README}, compression=zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit in the local header (offset 6) and central directory (8).
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    assert codes(check_bytes(tmp_path, bytes(data)).check) == {"zip.encrypted"}


def test_a_compression_method_that_cannot_be_read_is_flagged(tmp_path: Path) -> None:
    data = bytearray(build_zip({"notes.txt": README}, compression=zipfile.ZIP_DEFLATED))
    # Relabel the member as Deflate64 (method 9), which zipfile cannot decompress.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 8] = 9
    data[central + 10] = 9
    assert codes(check_bytes(tmp_path, bytes(data)).check) == {"zip.unsupported_compression"}
