"""The end-of-central-directory record of a zip, read before anything else in the archive.

A zip's member count and directory size are stated once, at its end; reading them first
lets a caller refuse a directory of a million entries before zipfile parses every one.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

EOCD_SIGNATURE = b"PK\x05\x06"
CENTRAL_ENTRY_SIGNATURE = b"PK\x01\x02"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
# signature, disk, directory disk, entries here, entries total, directory size and offset,
# comment length (APPNOTE 4.3.16).
_EOCD = struct.Struct("<4sHHHHIIH")
# signature, directory disk, zip64 record offset, disks (APPNOTE 4.3.15).
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
# signature, record size, versions, disk, directory disk, entries here, entries total,
# directory size and offset (APPNOTE 4.3.14).
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
MAX_COMMENT_BYTES = 0xFFFF
_TAIL_BYTES = _EOCD.size + MAX_COMMENT_BYTES


@dataclass(frozen=True)
class CentralDirectory:
    """What a zip's end record claims: how many members, where their directory lies."""

    member_count: int
    directory_bytes: int
    directory_offset: int
    # Where the end record starts: bytes before the directory that the directory does not
    # account for are data some other format put in front (a polyglot, or a self-extractor).
    end_record_offset: int


def read_central_directory(source: Path | bytes | BinaryIO) -> CentralDirectory | None:
    """Read the end record of a zip; None when there is none (not a zip, or truncated)."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            return _read(stream)
    if isinstance(source, bytes):
        return _read(io.BytesIO(source))
    return _read(source)


def has_zip_directory(source: Path) -> bool:
    """Tell whether a file ends in a real zip directory (end record and the entries it names).

    Checking the first entry's signature where the end record says the directory starts
    keeps four random bytes of a photo or a compressed stream from passing for a zip.
    """
    with source.open("rb") as stream:
        found = _read(stream)
        if found is None or found.member_count == 0:
            return False
        start = found.end_record_offset - found.directory_bytes
        if start < 0:
            return False
        stream.seek(start)
        return stream.read(4) == CENTRAL_ENTRY_SIGNATURE


def _read(stream: BinaryIO) -> CentralDirectory | None:
    size = stream.seek(0, io.SEEK_END)
    tail_start = max(0, size - _TAIL_BYTES)
    stream.seek(tail_start)
    tail = stream.read()
    at = tail.rfind(EOCD_SIGNATURE)
    while at >= 0:
        record = tail[at : at + _EOCD.size]
        if len(record) == _EOCD.size:
            _, _, _, _, total, directory_bytes, directory_offset, comment_bytes = _EOCD.unpack(
                record
            )
            # The comment must end where the file does, or this is a signature inside data.
            if at + _EOCD.size + comment_bytes <= len(tail):
                found = CentralDirectory(total, directory_bytes, directory_offset, tail_start + at)
                return _zip64(stream, found) if _needs_zip64(found) else found
        at = tail.rfind(EOCD_SIGNATURE, 0, at)
    return None


def _needs_zip64(found: CentralDirectory) -> bool:
    return (
        found.member_count == 0xFFFF
        or found.directory_bytes == 0xFFFFFFFF
        or found.directory_offset == 0xFFFFFFFF
    )


def _zip64(stream: BinaryIO, found: CentralDirectory) -> CentralDirectory:
    locator_at = found.end_record_offset - _ZIP64_LOCATOR.size
    if locator_at < 0:
        return found
    stream.seek(locator_at)
    locator = stream.read(_ZIP64_LOCATOR.size)
    if len(locator) != _ZIP64_LOCATOR.size:
        return found
    signature, _, record_at, _ = _ZIP64_LOCATOR.unpack(locator)
    if signature != ZIP64_LOCATOR_SIGNATURE:
        return found
    stream.seek(record_at)
    record = stream.read(_ZIP64_EOCD.size)
    if len(record) != _ZIP64_EOCD.size:
        return found
    fields = _ZIP64_EOCD.unpack(record)
    if fields[0] != ZIP64_EOCD_SIGNATURE:
        return found
    return CentralDirectory(fields[7], fields[8], fields[9], found.end_record_offset)
