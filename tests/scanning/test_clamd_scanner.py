"""ClamdScanner against a real clamd running the project's configuration and signatures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from service.scanning import ClamdAddress, ClamdScanner, ScanResult, ScanStatus

from .clamd_process import TEST_SCAN_TIMEOUT_S, RunningClamd
from .samples import CLAMAV_TESTFILE_SIGNATURE, EICAR, EICAR_SIGNATURE, SMALL_STREAM_MAX_BYTES

MIB = 1024 * 1024
# DESIGN section 3 caps uploads at 50 MB; deploy/clamav/clamd.conf.in sets StreamMaxLength 60M.
MAX_UPLOAD_BYTES = 50 * MIB
DEPLOYED_STREAM_MAX_BYTES = 60 * MIB
SIZE_LIMIT_DETAIL = "INSTREAM size limit exceeded. ERROR"


class ReadRecordingFile(io.BytesIO):
    """A file object that remembers how much each read asked for."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.read_sizes: list[int | None] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.read_sizes.append(size)
        return super().read(size)


def zip_with(member_name: str, content: bytes, compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr(member_name, content)
    return buffer.getvalue()


@pytest.fixture(params=["tcp", "unix"])
def address(request: pytest.FixtureRequest, clamd: RunningClamd) -> ClamdAddress:
    return clamd.tcp_address if request.param == "tcp" else clamd.unix_address


def test_ping_and_version_reach_clamd_over_tcp_and_unix_socket(address: ClamdAddress) -> None:
    scanner = ClamdScanner(address, TEST_SCAN_TIMEOUT_S)

    assert scanner.ping() is True
    assert scanner.version().startswith("ClamAV ")


def test_eicar_file_is_infected_with_the_rift_signature(
    address: ClamdAddress, tmp_path: Path
) -> None:
    eicar_file = tmp_path / "eicar.com"
    eicar_file.write_bytes(EICAR)
    scanner = ClamdScanner(address, TEST_SCAN_TIMEOUT_S)

    with eicar_file.open("rb") as upload:
        result = scanner.scan_stream(upload)

    assert result == ScanResult(ScanStatus.INFECTED, signature=EICAR_SIGNATURE)


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
def test_eicar_inside_a_zip_is_infected(clamd: RunningClamd, compression: int) -> None:
    archive = zip_with("goods/readme.txt", EICAR, compression)

    result = clamd.scanner().scan_stream(io.BytesIO(archive))

    assert result == ScanResult.infected(EICAR_SIGNATURE)


def test_eicar_straddling_chunk_boundaries_is_infected(clamd: RunningClamd) -> None:
    chunk_bytes = 7
    prefix = b"delivery note: " * 50
    # Given EICAR starting mid-chunk, so it spans ten chunks and no chunk holds it whole
    assert len(prefix) % chunk_bytes != 0
    upload = ReadRecordingFile(prefix + EICAR + b"\nend of note\n")

    result = clamd.scanner(chunk_bytes=chunk_bytes).scan_stream(upload)

    assert result == ScanResult.infected(EICAR_SIGNATURE)
    assert max(size for size in upload.read_sizes if size is not None) == chunk_bytes


def test_empty_chunks_in_an_iterable_do_not_end_the_stream_early(clamd: RunningClamd) -> None:
    # A zero-length INSTREAM chunk means "end of stream"; sent early, clamd would scan only
    # what came before it and answer OK.
    halfway = len(EICAR) // 2
    chunks = [b"", EICAR[:halfway], b"", EICAR[halfway:], b""]

    result = clamd.scanner().scan_stream(chunks)

    assert result == ScanResult.infected(EICAR_SIGNATURE)


def test_file_object_is_read_in_bounded_chunks_never_whole(clamd: RunningClamd) -> None:
    upload = ReadRecordingFile(b"photo bytes " * 100_000 + EICAR)

    result = clamd.scanner(chunk_bytes=64 * 1024).scan_stream(upload)

    assert result.status is ScanStatus.INFECTED
    assert len(upload.read_sizes) > 1
    assert set(upload.read_sizes) == {64 * 1024}


@pytest.mark.parametrize(
    "sample",
    [
        "clam.exe",
        "clam.zip",
        "clam.pdf",
        "clam.7z",
        "clam.tar.gz",
        "clam.cab",
        "clam.ole.doc",
        "clam.exe.rtf",
        "clam.mail",
        "clam-upx.exe",
    ],
)
def test_debian_clamav_testfiles_are_infected(
    clamd: RunningClamd, clamav_testfiles_dir: Path, sample: str
) -> None:
    with (clamav_testfiles_dir / sample).open("rb") as upload:
        result = clamd.scanner().scan_stream(upload)

    assert result == ScanResult.infected(CLAMAV_TESTFILE_SIGNATURE)


@pytest.mark.parametrize(
    "content",
    [
        b"Delivered 3 licences to the buyer on 2024-05-01.\n" * 1000,
        zip_with("invoice.txt", b"Invoice 1234: paid in full\n" * 100, zipfile.ZIP_DEFLATED),
        b"",
    ],
    ids=["text", "zip", "empty"],
)
def test_clean_content_is_clean(clamd: RunningClamd, content: bytes) -> None:
    assert clamd.scanner().scan_stream(io.BytesIO(content)) == ScanResult.clean()


def test_deployed_stream_limit_admits_a_maximum_size_upload(clamd: RunningClamd) -> None:
    upload = io.BytesIO(bytes(MAX_UPLOAD_BYTES))

    assert clamd.scanner().scan_stream(upload) == ScanResult.clean()


def test_stream_over_the_deployed_limit_is_an_unscannable_verdict(clamd: RunningClamd) -> None:
    upload = io.BytesIO(bytes(DEPLOYED_STREAM_MAX_BYTES + MIB))

    result = clamd.scanner().scan_stream(upload)

    assert result == ScanResult.unscannable(SIZE_LIMIT_DETAIL)


def test_stream_over_stream_max_length_is_error_not_unavailable(
    small_stream_clamd: RunningClamd,
) -> None:
    scanner = small_stream_clamd.scanner()

    result = scanner.scan_stream(io.BytesIO(bytes(3 * SMALL_STREAM_MAX_BYTES)))

    assert result.status is ScanStatus.ERROR
    assert result.detail == SIZE_LIMIT_DETAIL
    # The size limit ends that scan only: the next one on the same scanner gets a verdict.
    assert scanner.scan_stream([EICAR]) == ScanResult.infected(EICAR_SIGNATURE)


def test_stream_under_stream_max_length_is_scanned(small_stream_clamd: RunningClamd) -> None:
    upload = io.BytesIO(bytes(SMALL_STREAM_MAX_BYTES // 2))

    assert small_stream_clamd.scanner().scan_stream(upload) == ScanResult.clean()
