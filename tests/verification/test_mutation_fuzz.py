"""Mutation fuzzing: valid zips, PDFs and images, damaged at random, always get a verdict.

Budget (CI): each property runs FUZZ_EXAMPLES examples (derandomized, no example
database) and is cut at FUZZ_TIMEOUT_S seconds (pytest-timeout); the three take about
FUZZ_SECONDS together on a 2-core machine. A failure prints the exact bytes, to keep as a
regression test.
"""

from __future__ import annotations

import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proof_fixtures import (
    UPLOADED_AT,
    build_pdf,
    build_zip,
    check_bytes,
    docx,
    encode_image,
    photo,
    prose,
)

from service.verification.files import FileCheck
from service.verification.sniffing import sniff_mime

FUZZ_EXAMPLES = 400
FUZZ_SECONDS = 20  # measured
FUZZ_TIMEOUT_S = 90
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG_AGO = UPLOADED_AT - timedelta(days=30)

SEEDS = {
    "zip_deflated": build_zip({"docs/readme.txt": prose(3000).encode(), "a/b.txt": b"x" * 900}),
    "zip_stored": build_zip({"notes.txt": prose(800).encode()}, compression=zipfile.ZIP_STORED),
    "zip_bzip2": build_zip({"notes.txt": prose(800).encode()}, compression=zipfile.ZIP_BZIP2),
    "zip_lzma": build_zip({"notes.txt": prose(800).encode()}, compression=zipfile.ZIP_LZMA),
    "docx": docx(),
    "pdf": build_pdf([prose(1500), prose(300)], created_at=LONG_AGO, with_image=True),
    "pdf_actions": build_pdf(
        [prose(1500)], created_at=LONG_AGO, open_action_js="x()", page_auto_action_js="y()"
    ),
    "png": encode_image(photo(1, (160, 120)), "PNG"),
    "jpeg": encode_image(photo(2, (160, 120)), "JPEG"),
}


@st.composite
def mutated(draw: st.DrawFn, seed_names: list[str]) -> bytes:
    """A seed file with a few byte flips, overwrites, insertions, deletions or a truncation."""
    data = bytearray(SEEDS[draw(st.sampled_from(seed_names))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


def assert_verdict(data: bytes) -> None:
    """The rules finish with a check for any bytes: they never raise."""
    assert isinstance(sniff_mime(data), str)
    with tempfile.TemporaryDirectory() as directory:
        result = check_bytes(Path(directory), data)
    assert isinstance(result, FileCheck)
    assert 0 <= result.check.score <= 100


ZIPS = ["zip_deflated", "zip_stored", "zip_bzip2", "zip_lzma", "docx"]
PDFS = ["pdf", "pdf_actions"]
IMAGES = ["png", "jpeg"]


@pytest.mark.timeout(FUZZ_TIMEOUT_S)
@FUZZ_SETTINGS
@given(mutated(ZIPS))
def test_mutated_zips_always_get_a_verdict(data: bytes) -> None:
    assert_verdict(data)


@pytest.mark.timeout(FUZZ_TIMEOUT_S)
@FUZZ_SETTINGS
@given(mutated(PDFS))
def test_mutated_pdfs_always_get_a_verdict(data: bytes) -> None:
    assert_verdict(data)


@pytest.mark.timeout(FUZZ_TIMEOUT_S)
@FUZZ_SETTINGS
@given(mutated(IMAGES))
def test_mutated_images_always_get_a_verdict(data: bytes) -> None:
    assert_verdict(data)
