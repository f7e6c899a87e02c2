"""Decode a large PNG strip by strip into a small grey picture, for the perceptual hash.

Pillow decodes a PNG whole: a 49-megapixel RGBA screenshot of 186 KiB costs 196 MB of
pixels, and more to convert it. The hash needs 32x32 grey pixels. So the image rows are
inflated a strip at a time, each strip wrapped as a PNG of its own that Pillow decodes,
greys and shrinks by a box filter; only one strip and the small result are held at once.

PNG filters a row against the row above it, so each strip's PNG starts with the previous
strip's last row, reconstructed and stored unfiltered (filter type 0), and that row is
dropped after decoding. Covers the plain case, 8 bits per sample and not interlaced
(what cameras, phones and screenshots write); anything else returns None and the caller
treats the image as too large to check.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> samples per pixel (PNG specification, section 11.2.2).
SAMPLES_PER_PIXEL = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Chunks a strip needs besides its pixels: the palette and its transparency.
COPIED_CHUNKS = frozenset({b"PLTE", b"tRNS"})
STRIP_RAW_BYTES = 8 * 1024 * 1024
READ_BYTES = 256 * 1024
_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")


class _NotPlain(Exception):
    """Not a PNG this decoder handles; the caller falls back."""


def reduced_png(path: Path, max_side_px: int) -> Image.Image | None:
    """Return the PNG shrunk to at most `max_side_px` a side, grey; None if not plain."""
    try:
        with path.open("rb") as stream:
            return _reduce(stream, max_side_px)
    except _NotPlain:
        return None


def _reduce(stream: BinaryIO, max_side_px: int) -> Image.Image:
    if stream.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise _NotPlain
    chunks = _chunks(stream)
    kind, header = next(chunks, (b"", b""))
    if kind != b"IHDR" or len(header) != _IHDR.size:
        raise _NotPlain
    width, height, depth, colour, _, _, interlace = _IHDR.unpack(header)
    if depth != 8 or interlace != 0 or colour not in SAMPLES_PER_PIXEL or not width or not height:
        raise _NotPlain
    row_bytes = 1 + width * SAMPLES_PER_PIXEL[colour]
    factor = max(1, math.ceil(max(width, height) / max_side_px))
    # Whole boxes per strip, so the strips' reductions line up with one reduction of all.
    rows_per_strip = max(factor, (STRIP_RAW_BYTES // row_bytes) // factor * factor)
    copied = bytearray()
    inflater = zlib.decompressobj()
    pending = bytearray()
    reduced = Image.new("L", (math.ceil(width / factor), math.ceil(height / factor)))
    previous_row: bytes | None = None
    done_rows = 0

    def strip_of(rows: bytes, count: int) -> None:
        nonlocal previous_row, done_rows
        strip_height = count + (previous_row is not None)
        body = (b"\x00" + previous_row if previous_row is not None else b"") + rows
        strip = _decode_strip(header, bytes(copied), width, strip_height, body)
        if previous_row is not None:
            strip = strip.crop((0, 1, width, strip_height))
        previous_row = strip.crop((0, count - 1, width, count)).tobytes()
        grey = strip.convert("L").reduce(factor)
        reduced.paste(grey, (0, done_rows // factor))
        done_rows += count

    for kind, body in chunks:
        if kind in COPIED_CHUNKS:
            copied += _chunk(kind, body)
        elif kind == b"IDAT":
            # Bounded inflation: never more than one strip beyond what is pending.
            data = body
            while data and done_rows < height:
                pending += inflater.decompress(data, rows_per_strip * row_bytes)
                data = inflater.unconsumed_tail
                while len(pending) >= rows_per_strip * row_bytes and done_rows < height:
                    count = min(rows_per_strip, height - done_rows)
                    strip_of(bytes(pending[: count * row_bytes]), count)
                    del pending[: count * row_bytes]
        elif kind == b"IEND":
            break
    pending += inflater.flush()
    while done_rows < height:
        count = min(rows_per_strip, height - done_rows, len(pending) // row_bytes)
        if count == 0:
            raise ValueError("the PNG's image data ends before its last row")
        strip_of(bytes(pending[: count * row_bytes]), count)
        del pending[: count * row_bytes]
    return reduced


def _decode_strip(
    header: bytes, copied: bytes, width: int, height: int, rows: bytes
) -> Image.Image:
    """Let Pillow decode `height` filtered rows as a PNG of their own."""
    strip_header = struct.pack(">II", width, height) + header[8:]
    png = (
        PNG_SIGNATURE
        + _chunk(b"IHDR", strip_header)
        + copied
        + _chunk(b"IDAT", zlib.compress(rows, 0))
        + _chunk(b"IEND", b"")
    )
    with Image.open(io.BytesIO(png), formats=("PNG",)) as strip:
        strip.load()
        # Kept in its own mode: the last row, as bytes, is the next strip's raw first row.
        return strip.copy()


def _chunks(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    while True:
        head = stream.read(_CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            return
        length, kind = _CHUNK_HEAD.unpack(head)
        body = stream.read(length)
        stream.read(4)  # the CRC: Pillow checks the copied chunks, zlib the pixels
        if len(body) < length:
            return
        yield kind, body


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
