"""Large images are hashed from a reduced decode; what cannot be is flagged, never decoded whole."""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from proof_fixtures import check_bytes, codes, encode_image, photo

from service.verification import png_strips
from service.verification.images import perceptual_hash
from service.verification.thresholds import VerificationThresholds

# The case of the issue: 49 megapixels, RGBA, about 200 KiB; a whole decode costs ~256 MiB.
HUGE_SIDE_PX = 7000
# Peak memory the check of that file may add to the process (it was 246 MiB before).
HUGE_PNG_MAX_EXTRA_MIB = 96
# Under an 800x600 picture decoded whole (1.4 MB RGB, 480 kB as a GIF's palette indices),
# over the same JPEG drafted at half scale (360 kB).
TINY_BUDGET = VerificationThresholds(image_full_decode_max_bytes=400_000)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_uniform_rgba_png(path: Path, side_px: int) -> None:
    """Write a big one-colour RGBA PNG row by row, never holding its pixels."""
    deflate = zlib.compressobj(9)
    row = b"\x00" + bytes([30, 120, 200, 255]) * side_px
    idat = b"".join(deflate.compress(row) for _ in range(side_px)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side_px, side_px, 8, 6, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def drawing(mode: str, size: tuple[int, int]) -> Image.Image:
    """A picture with edges, so the encoder uses the Up and Paeth filters across strips."""
    base = Image.linear_gradient("L").resize(size)
    rgb = Image.merge("RGB", (base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base))
    pen = ImageDraw.Draw(rgb)
    for x in range(0, size[0], 37):
        pen.line((x, 0, size[0] - x, size[1]), fill=(x % 256, 80, 200), width=3)
    return rgb.quantize(64) if mode == "P" else rgb.convert(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA"])
def test_strip_decoding_gives_exactly_the_whole_image_reduced(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(png_strips, "STRIP_RAW_BYTES", 50_000)  # many strips, many seams
    path = tmp_path / "drawing.png"
    drawing(mode, (1003, 1517)).save(path)
    factor = math.ceil(1517 / 512)
    with Image.open(path) as whole:
        expected = whole.convert("L").reduce(factor)
    reduced = png_strips.reduced_png(path, 512)
    assert reduced is not None
    assert reduced.size == expected.size
    assert reduced.tobytes() == expected.tobytes()


def test_a_49_megapixel_rgba_png_is_checked_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "screenshot.png"
    write_uniform_rgba_png(path, HUGE_SIDE_PX)
    assert path.stat().st_size < 400 * 1024
    # A fresh interpreter, so the figure is this check's own peak and nothing else's.
    script = f"""
import json
from datetime import UTC, datetime
from pathlib import Path
from service.verification.files import check_file
from service.verification.thresholds import VerificationThresholds
def peak_kib():
    # VmHWM is this address space's own peak; ru_maxrss would start at the parent's.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
before = peak_kib()
path = Path({str(path)!r})
found = check_file(path, declared_mime="image/png", size_bytes=path.stat().st_size,
                   uploaded_at=datetime.now(UTC), thresholds=VerificationThresholds())
after = peak_kib()
print(json.dumps({{"extra_kib": after - before, "issues": [i.code for i in found.check.issues],
                  "phash": found.phash, "facts": found.facts}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    extra_mib = measured["extra_kib"] / 1024
    print(f"49-megapixel RGBA PNG: peak +{extra_mib:.0f} MiB (budget {HUGE_PNG_MAX_EXTRA_MIB})")
    assert extra_mib < HUGE_PNG_MAX_EXTRA_MIB
    assert measured["issues"] == []
    assert measured["phash"] is not None
    assert measured["facts"] == {"width_px": HUGE_SIDE_PX, "height_px": HUGE_SIDE_PX}


def test_a_large_jpeg_is_hashed_from_a_scaled_down_decode(tmp_path: Path) -> None:
    data = encode_image(photo(4, (800, 600)), "JPEG", with_exif=True)
    result = check_bytes(tmp_path, data, thresholds=TINY_BUDGET)
    assert result.phash is not None
    assert "image.too_large_to_check" not in codes(result.check)


def test_a_format_that_cannot_be_decoded_reduced_is_flagged_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    drawing("RGB", (800, 600)).save(path, "GIF")
    result = check_bytes(tmp_path, path.read_bytes(), thresholds=TINY_BUDGET)
    assert codes(result.check) == {"image.too_large_to_check"}
    assert result.phash is None


def test_an_interlaced_png_over_the_budget_is_flagged_not_decoded(tmp_path: Path) -> None:
    plain = encode_image(drawing("RGB", (800, 600)), "PNG")
    # Pillow writes no interlaced PNGs: mark the header interlaced (Adam7), CRC and all.
    header = bytearray(plain[16:29])
    header[12] = 1
    data = plain[:16] + bytes(header) + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    data += plain[33:]
    result = check_bytes(tmp_path, data, thresholds=TINY_BUDGET)
    assert codes(result.check) == {"image.too_large_to_check"}


def test_below_the_budget_images_are_decoded_whole_as_before(tmp_path: Path) -> None:
    data = encode_image(photo(5, (640, 480)), "PNG")
    with Image.open(io.BytesIO(data)) as whole:
        whole.load()
        expected = perceptual_hash(whole)
    assert check_bytes(tmp_path, data).phash == expected
