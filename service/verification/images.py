"""Image rules: bounded decoding, minimum size, EXIF presence, perceptual hash."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image, UnidentifiedImageError

from service.verification.issues import ScoreCard, describe
from service.verification.png_strips import reduced_png
from service.verification.thresholds import VerificationThresholds

HASH_BITS = 64
MASK64 = (1 << HASH_BITS) - 1
# Only the formats on the allow-list; Pillow's exotic decoders are attack surface we do not need.
PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# Formats whose cameras and editors write EXIF; PNG and GIF rarely carry it.
EXIF_FORMATS = frozenset({"JPEG", "WEBP"})
# phash looks at a 32x32 thumbnail, so JPEGs can be decoded at a fraction of full size.
DRAFT_SIZE_PX = (256, 256)
# Side of the reduced picture a large PNG is hashed from (service/verification/png_strips.py).
REDUCED_SIDE_PX = 512


@dataclass(frozen=True)
class ImageFacts:
    """What the image rules learned about a picture."""

    width_px: int
    height_px: int
    has_exif: bool
    phash: int | None


def inspect_image(
    card: ScoreCard, path: Path, *, thresholds: VerificationThresholds
) -> ImageFacts | None:
    """Apply the image rules to the picture at `path`; return None when it cannot be decoded."""
    try:
        # open() reads only the header. Pillow's global bomb check also runs here, as a
        # backstop (an error, or a warning that -W error turns into one); ours is per call.
        with Image.open(path, formats=PILLOW_FORMATS) as im:
            return _inspect(card, path, im, thresholds)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        _flag_bomb(card, thresholds)
        return None
    except UnidentifiedImageError:
        card.fail_integrity("image.unreadable", "The image could not be decoded.")
        return None
    # Whatever the pixels provoke in a decoder (OSError "truncated", SyntaxError, struct
    # errors, MemoryError...) means "unreadable", never a failed job.
    except Exception as exc:
        card.fail_integrity(
            "image.unreadable", f"The image could not be decoded ({describe(exc)})."
        )
        return None


def _inspect(
    card: ScoreCard, path: Path, im: Image.Image, thresholds: VerificationThresholds
) -> ImageFacts | None:
    width_px, height_px = im.size
    # Decided from the header alone, before a single pixel is decoded.
    if width_px * height_px > thresholds.max_image_pixels:
        _flag_bomb(card, thresholds)
        return None
    if width_px < thresholds.min_image_width_px or height_px < thresholds.min_image_height_px:
        card.flag(
            "image.too_small",
            f"The image is {width_px}x{height_px} px, under the minimum of "
            f"{thresholds.min_image_width_px}x{thresholds.min_image_height_px} px.",
        )
    # Only where the rule applies: Pillow finds a PNG's EXIF by decoding the whole image.
    has_exif = im.format in EXIF_FORMATS and len(im.getexif()) > 0
    if im.format in EXIF_FORMATS and not has_exif:
        card.deduct(
            "image.exif_stripped",
            "The photo carries no EXIF metadata, as if it was stripped.",
            thresholds.exif_stripped_penalty,
        )
    if im.format == "JPEG":
        # DCT scaling decodes at 1/2 to 1/8 of the size: the hash needs no more.
        im.draft(im.mode, DRAFT_SIZE_PX)
    decoded_bytes = im.width * im.height * len(im.getbands())
    if decoded_bytes <= thresholds.image_full_decode_max_bytes:
        im.load()
        return ImageFacts(width_px, height_px, has_exif, perceptual_hash(im))
    # Decided before a pixel is decoded: too big to hold whole, so decode it reduced.
    reduced = reduced_png(path, REDUCED_SIDE_PX) if im.format == "PNG" else None
    if reduced is None:
        card.flag(
            "image.too_large_to_check",
            f"The image would decode to {decoded_bytes} bytes, over the "
            f"{thresholds.image_full_decode_max_bytes} byte budget, so it was not compared "
            "with other rifts' images.",
        )
        return ImageFacts(width_px, height_px, has_exif, None)
    return ImageFacts(width_px, height_px, has_exif, perceptual_hash(reduced))


def _flag_bomb(card: ScoreCard, thresholds: VerificationThresholds) -> None:
    card.fail_integrity(
        "image.decompression_bomb",
        f"The image would decode to more than {thresholds.max_image_pixels} pixels.",
    )


def perceptual_hash(im: Image.Image) -> int:
    """Return the 64-bit DCT perceptual hash as a signed integer (fits a SQL BIGINT)."""
    unsigned = int(str(imagehash.phash(im)), 16)
    return to_signed64(unsigned)


def to_signed64(value: int) -> int:
    """Reinterpret a 64-bit pattern as a two's-complement signed integer."""
    value &= MASK64
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def hamming(a: int, b: int) -> int:
    """Count the differing bits of two 64-bit hashes, signed or unsigned."""
    return ((a ^ b) & MASK64).bit_count()


def phash_bands(h: int, bands: int = 8) -> tuple[int, ...]:
    """Split a 64-bit hash into `bands` contiguous bit ranges for a pigeonhole index.

    If two hashes differ in at most d bits and there are b > d bands, at least one band
    holds none of the differing bits, so the two hashes agree on it exactly. Storing one
    indexed row (band number, band value) per band turns "every stored hash within d" into
    b exact index lookups plus a Hamming check on the candidates they return.

    Exact band matches only cover d < b. For wider d, `band_probes` also looks up every
    band value within r = d // b bits (multi-index hashing): some band is always that close.

    Scaling: with w = 64 / b bits per band and N stored hashes spread evenly, each probed
    value returns about N / 2**w rows. The default, 4 bands of 16 bits probed with radius 1
    for distance <= 7 (wide enough for resized and re-encoded copies), is 4 * 17 index
    probes reading about 68 N / 65536, roughly N / 960 rows, where 8 exact bands of 8 bits
    would read N / 32. Real phashes are not uniform (the DC bit is nearly constant), so
    measured candidate counts run somewhat higher than this bound.
    """
    if not 1 <= bands <= HASH_BITS:
        raise ValueError("bands must be within 1..64")
    value = h & MASK64
    widths = [HASH_BITS // bands + (1 if i < HASH_BITS % bands else 0) for i in range(bands)]
    parts: list[int] = []
    shift = HASH_BITS
    for width in widths:
        shift -= width
        parts.append((value >> shift) & ((1 << width) - 1))
    return tuple(parts)


def band_probe_radius(bands: int, max_distance: int) -> int:
    """Return r such that hashes within max_distance have a band within r bits of each other.

    If every band differed in more than r bits the hashes would differ in at least
    bands * (r + 1) > max_distance bits, so some band is within r (pigeonhole).
    """
    return max_distance // bands


def band_probes(h: int, bands: int, max_distance: int) -> tuple[frozenset[int], ...]:
    """List, per band, every band value within the probe radius of this hash's band."""
    radius = band_probe_radius(bands, max_distance)
    widths = [HASH_BITS // bands + (1 if i < HASH_BITS % bands else 0) for i in range(bands)]
    probes = []
    for part, width in zip(phash_bands(h, bands), widths, strict=True):
        values = {part}
        for _ in range(radius):
            values |= {v ^ (1 << bit) for v in values for bit in range(width)}
        probes.append(frozenset(values))
    return tuple(probes)


def is_near_duplicate(a: int, b: int, *, thresholds: VerificationThresholds) -> bool:
    """Tell whether two perceptual hashes are close enough to be the same picture."""
    return hamming(a, b) <= thresholds.near_duplicate_max_distance
