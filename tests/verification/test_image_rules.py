"""Image rules on generated photos, near-duplicates and decompression bombs."""

from __future__ import annotations

import io
import resource
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from proof_fixtures import check_bytes, codes, deduction_codes, encode_image, photo, png_bomb

from service.verification import (
    VerificationThresholds,
    apply_reuse,
    band_probes,
    hamming,
    is_near_duplicate,
    phash_bands,
)
from service.verification.images import to_signed64

DEFAULTS = VerificationThresholds()
HASHES = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def test_a_camera_jpeg_with_exif_scores_full_marks_and_gets_a_phash(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "JPEG", with_exif=True, quality=90))
    assert result.sniffed_mime == "image/jpeg"
    assert result.check.score == 100
    assert result.check.issues == ()
    assert result.phash is not None
    assert -(2**63) <= result.phash < 2**63  # fits a signed BIGINT column
    assert result.facts == {"width_px": 640, "height_px": 480}


def test_a_jpeg_without_exif_loses_5(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "JPEG", quality=90))
    assert deduction_codes(result.check) == {"image.exif_stripped"}
    assert result.check.score == 95
    assert result.check.issues == ()


def test_a_webp_without_exif_loses_5(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "WEBP", quality=80))
    assert result.sniffed_mime == "image/webp"
    assert deduction_codes(result.check) == {"image.exif_stripped"}


def test_a_png_screenshot_is_not_expected_to_carry_exif(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "PNG"))
    assert result.check.score == 100


def test_a_tiny_image_is_an_issue(tmp_path: Path) -> None:
    tiny = encode_image(photo(2, size=(60, 400)), "PNG")
    result = check_bytes(tmp_path, tiny)
    assert codes(result.check) == {"image.too_small"}


def test_a_truncated_image_fails_integrity(tmp_path: Path) -> None:
    whole = encode_image(photo(3), "PNG")
    result = check_bytes(tmp_path, whole[: len(whole) // 2])
    assert result.sniffed_mime == "image/png"
    assert codes(result.check) == {"image.unreadable"}
    assert not result.check.passed


def test_a_png_bomb_is_an_issue_without_decoding_or_a_memory_spike(tmp_path: Path) -> None:
    bomb = png_bomb(30_000, 30_000)  # 900 Mpx, about 100 KB on disk
    assert len(bomb) < 1_000_000
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = check_bytes(tmp_path, bomb)
    assert time.monotonic() - started < 5
    # Decoding would allocate 900 MB (one byte per pixel); the header check allocates nothing.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib < 200_000
    assert codes(result.check) == {"image.decompression_bomb"}
    assert not result.check.passed
    assert result.phash is None


def test_the_pixel_limit_is_per_call_not_pillows_global(tmp_path: Path) -> None:
    # 8000 x 8000 is under Pillow's global limit (~89 Mpx) but over the configured one.
    bomb = png_bomb(8_000, 8_000)
    result = check_bytes(
        tmp_path, bomb, thresholds=VerificationThresholds(max_image_pixels=40_000_000)
    )
    assert codes(result.check) == {"image.decompression_bomb"}
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 64_000_000
    roomy = VerificationThresholds(max_image_pixels=70_000_000)
    assert "image.decompression_bomb" not in codes(
        check_bytes(tmp_path, bomb, thresholds=roomy).check
    )


def test_a_resized_reencoded_copy_is_a_near_duplicate_and_a_new_photo_is_not(
    tmp_path: Path,
) -> None:
    original = photo(4, size=(1024, 768))
    copies = [
        encode_image(original.resize((400, 300), Image.Resampling.LANCZOS), "JPEG", quality=60),
        encode_image(original.resize((1600, 1200), Image.Resampling.BICUBIC), "WEBP", quality=40),
        encode_image(original.resize((512, 384)), "PNG"),
    ]
    source = check_bytes(tmp_path, encode_image(original, "JPEG", with_exif=True), name="a.jpg")
    assert source.phash is not None
    for index, data in enumerate(copies):
        copy = check_bytes(tmp_path, data, name=f"copy{index}")
        assert copy.phash is not None
        assert is_near_duplicate(source.phash, copy.phash, thresholds=DEFAULTS)
        assert hamming(source.phash, copy.phash) <= DEFAULTS.near_duplicate_max_distance
    unrelated = check_bytes(tmp_path, encode_image(photo(5, size=(1024, 768)), "JPEG"), name="b")
    assert unrelated.phash is not None
    assert not is_near_duplicate(source.phash, unrelated.phash, thresholds=DEFAULTS)


def test_a_near_duplicate_on_another_rift_loses_10_and_is_an_issue(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "JPEG", with_exif=True))
    flagged = apply_reuse(
        result,
        exact_copy_on_other_rift=False,
        near_duplicate_on_other_rift=True,
        thresholds=DEFAULTS,
    )
    assert flagged.check.score == 90
    assert codes(flagged.check) == {"image.near_duplicate"}
    assert flagged.phash == result.phash


def test_an_exact_copy_on_another_rift_is_an_issue(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, encode_image(photo(1), "PNG"))
    flagged = apply_reuse(
        result,
        exact_copy_on_other_rift=True,
        near_duplicate_on_other_rift=False,
        thresholds=DEFAULTS,
    )
    assert codes(flagged.check) == {"file.reused"}
    assert flagged.check.score == 100


@given(HASHES, st.sets(st.integers(min_value=0, max_value=63), max_size=7))
def test_hashes_within_distance_7_share_one_of_8_bands(h: int, flipped: set[int]) -> None:
    other = to_signed64(h ^ sum(1 << bit for bit in flipped))
    assert hamming(h, other) == len(flipped)
    assert any(a == b for a, b in zip(phash_bands(h), phash_bands(other), strict=True))


@given(HASHES, st.sets(st.integers(min_value=0, max_value=63), max_size=3))
def test_hashes_within_distance_3_share_one_of_4_bands(h: int, flipped: set[int]) -> None:
    other = h ^ sum(1 << bit for bit in flipped)
    assert any(a == b for a, b in zip(phash_bands(h, 4), phash_bands(other, 4), strict=True))


@given(HASHES, st.integers(min_value=1, max_value=64))
def test_bands_reassemble_the_hash(h: int, bands: int) -> None:
    parts = phash_bands(h, bands)
    widths = [64 // bands + (1 if i < 64 % bands else 0) for i in range(bands)]
    value = 0
    for part, width in zip(parts, widths, strict=True):
        assert 0 <= part < 1 << width
        value = (value << width) | part
    assert value == h & (2**64 - 1)


def test_a_threshold_wider_than_the_band_index_can_probe_is_rejected() -> None:
    with pytest.raises(ValueError, match="phash_bands"):
        VerificationThresholds(phash_bands=2, near_duplicate_max_distance=7)


@given(HASHES, st.sets(st.integers(min_value=0, max_value=63), max_size=7))
def test_hashes_within_distance_7_meet_in_a_probed_band(h: int, flipped: set[int]) -> None:
    other = h ^ sum(1 << bit for bit in flipped)
    probes = band_probes(h, DEFAULTS.phash_bands, DEFAULTS.near_duplicate_max_distance)
    stored = phash_bands(other, DEFAULTS.phash_bands)
    assert any(value in probe for value, probe in zip(stored, probes, strict=True))


def test_probes_stay_short_enough_for_an_index_lookup() -> None:
    probes = band_probes(0, DEFAULTS.phash_bands, DEFAULTS.near_duplicate_max_distance)
    assert [len(p) for p in probes] == [17, 17, 17, 17]


def test_an_image_is_decoded_from_its_bytes_not_its_name(tmp_path: Path) -> None:
    data = encode_image(photo(1), "PNG")
    result = check_bytes(tmp_path, data, name="photo.jpg", declared_mime="image/jpeg")
    assert result.sniffed_mime == "image/png"
    assert "file.type_mismatch" in codes(result.check)
    assert Image.open(io.BytesIO(data)).format == "PNG"
