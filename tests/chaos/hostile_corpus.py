"""A seeded corpus of hostile proof files for the chaos suite (and a few clean ones).

Each entry is one submission's file: mutated zips and PDFs (bytes flipped, overwritten,
inserted, deleted, cut), bombs (a flat and a nested zip of zeros, a PNG of huge
dimensions), deep PDF action chains and objects nested past the recursion limit, a
49-megapixel RGBA PNG, zips with corrupt deflate streams or unsupported methods, PDFs
with filters pypdf lacks; plus files the door refuses (empty, over the size limit). Every
file is distinct (a tag per index), so no verdict is about a file reused across rifts.
The same seed gives the same bytes, so a failure names a file that can be built again.
"""

from __future__ import annotations

import functools
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.flows import DELIVERY_NOTE
from tests.verification.proof_fixtures import (
    build_pdf,
    build_zip,
    docx,
    encode_image,
    photo,
    png_bomb,
    prose,
    zip_bomb,
)

SEED = 10  # the number
LONG_AGO = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
ZIP = "application/zip"
PDF = "application/pdf"
PNG = "image/png"
# 49 megapixels RGBA: ~186 KiB of PNG, ~190 MiB decoded whole (the budget case).
HUGE_SIDE_PX = 7000
BOMB_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class HostileFile:
    kind: str
    name: str
    content: bytes
    declared_mime: str

    @property
    def mutated(self) -> bool:
        return self.kind.startswith("mutated")

    def part(self) -> tuple[str, bytes, str]:
        return (self.name, self.content, self.declared_mime)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(header: bytes, idat: bytes, tag: bytes) -> bytes:
    # The tag rides in a tEXt chunk: the picture stays the same, its hash does not.
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"tEXt", b"Comment\x00" + tag)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def _huge_rgba_idat() -> bytes:
    deflate = zlib.compressobj(9)
    row = b"\x00" + bytes([30, 120, 200, 255]) * HUGE_SIDE_PX
    return b"".join(deflate.compress(row) for _ in range(HUGE_SIDE_PX)) + deflate.flush()


def huge_rgba_png(tag: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", HUGE_SIDE_PX, HUGE_SIDE_PX, 8, 6, 0, 0, 0)
    return _png(header, _huge_rgba_idat(), tag)


@functools.cache
def _png_bomb() -> bytes:
    return png_bomb(60_000, 60_000)  # 3.6 gigapixels, about 450 KiB


@functools.cache
def _flat_bomb() -> bytes:
    return zip_bomb(BOMB_BYTES)


def _with_zip_comment(data: bytes, tag: bytes) -> bytes:
    # The end record's last field is the comment's length; the comment follows it.
    end = data.rfind(b"PK\x05\x06")
    return data[: end + 20] + struct.pack("<H", len(tag)) + tag


def _with_pdf_comment(data: bytes, tag: bytes) -> bytes:
    return data + b"%" + tag + b"\n"


def _with_method(data: bytes, method: int) -> bytes:
    """Rewrite every member's compression method in the local and central headers."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = patched.find(signature)
        while at >= 0:
            patched[at + offset : at + offset + 2] = struct.pack("<H", method)
            at = patched.find(signature, at + 4)
    return bytes(patched)


def _chained_actions(count: int, last: bytes) -> bytes:
    chain = last
    for _ in range(count):
        chain = b"<< /S /URI /URI (https://example.com) /Next " + chain + b" >>"
    return chain


def _pdf(**options: Any) -> bytes:
    return build_pdf([prose(1500), prose(600)], created_at=LONG_AGO, **options)


@functools.cache
def _seeds() -> dict[str, bytes]:
    readme = prose(3000).encode()
    return {
        "zip": build_zip({"docs/readme.txt": readme, "a/b.txt": b"x" * 900}),
        "zip_bzip2": build_zip({"notes.txt": readme}, compression=zipfile.ZIP_BZIP2),
        "zip_lzma": build_zip({"notes.txt": readme}, compression=zipfile.ZIP_LZMA),
        "docx": docx(),
        "pdf": build_pdf([prose(1500), prose(300)], created_at=LONG_AGO, with_image=True),
        "pdf_actions": _pdf(open_action_js="x()", page_auto_action_js="y()"),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte flips, overwrites, insertions, deletions or a truncation (as the fuzz does)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        at = rng.randrange(len(out))
        kind = rng.choice(["flip", "overwrite", "insert", "delete", "truncate"])
        if kind == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "overwrite":
            chunk = rng.randbytes(rng.randint(1, 8))
            out[at : at + len(chunk)] = chunk
        elif kind == "insert":
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == "delete":
            del out[at : at + rng.randint(1, 64)]
        else:
            del out[at:]
    return bytes(out)


Builder = Callable[[int, random.Random, bytes], HostileFile]


def _mutated_zip(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    seed = rng.choice(["zip", "zip_bzip2", "zip_lzma", "docx"])
    return HostileFile(f"mutated {seed}", f"m{i}.zip", mutate(_seeds()[seed], rng) + tag, ZIP)


def _mutated_pdf(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    seed = rng.choice(["pdf", "pdf_actions"])
    return HostileFile(f"mutated {seed}", f"m{i}.pdf", mutate(_seeds()[seed], rng) + tag, PDF)


def _flat_zip_bomb(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    return HostileFile("flat zip bomb", f"bomb{i}.zip", _with_zip_comment(_flat_bomb(), tag), ZIP)


def _nested_zip_bomb(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    nested = build_zip({"inner.zip": _flat_bomb(), "tag.txt": tag})
    return HostileFile("nested zip bomb", f"nest{i}.zip", nested, ZIP)


def _png_bomb_file(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    data = _png_bomb()
    # Splice the tag in as a chunk right after IHDR (8 signature + 25 IHDR bytes).
    tagged = data[:33] + _png_chunk(b"tEXt", b"Comment\x00" + tag) + data[33:]
    return HostileFile("png bomb 60000x60000", f"bomb{i}.png", tagged, PNG)


def _huge_png(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    return HostileFile("49 MP RGBA png", f"huge{i}.png", huge_rgba_png(tag), PNG)


def _deep_action_chain(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    chain = _chained_actions(rng.randint(20, 60), b"<< /S /JavaScript /JS (x()) >>")
    pdf = _pdf(annotation_entries=b"/A " + chain)
    return HostileFile("deep action chain", f"chain{i}.pdf", _with_pdf_comment(pdf, tag), PDF)


def _long_next_array(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    harmless = b"<< /S /URI /URI (https://example.com) >> " * 2000
    action = b"<< /S /URI /URI (x) /Next [" + harmless + b"<< /S /JavaScript /JS (x()) >>] >>"
    pdf = _pdf(annotation_entries=b"/A " + action)
    return HostileFile("next array past the walk", f"next{i}.pdf", _with_pdf_comment(pdf, tag), PDF)


def _nested_objects(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    deep = b"[" * 100_000 + b"]" * 100_000
    pdf = _pdf(catalog_entries=b"/Deep " + deep)
    return HostileFile("objects nested 100k deep", f"deep{i}.pdf", _with_pdf_comment(pdf, tag), PDF)


def _unknown_filter(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    name = rng.choice([b"JBIG2Decode", b"NoSuchDecode", b"FlateDecode"])
    pdf = _pdf().replace(b"<< /Length", b"<< /Filter /" + name + b" /Length", 1)
    kind = f"stream filter {name.decode()} over plain bytes"
    return HostileFile(kind, f"filter{i}.pdf", _with_pdf_comment(pdf, tag), PDF)


def _corrupt_deflate(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    data = bytearray(build_zip({"notes.txt": prose(2000).encode() + tag}))
    start = 30 + len("notes.txt")
    data[start : start + 4] = b"\xff\xff\xff\xff"
    return HostileFile("corrupt deflate stream", f"corrupt{i}.zip", bytes(data), ZIP)


def _unsupported_method(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    data = _with_method(build_zip({"notes.txt": prose(800).encode() + tag}), 97)
    return HostileFile("unsupported compression method", f"method{i}.zip", data, ZIP)


def _clean(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    choice = rng.choice(["note", "pdf", "jpeg"])
    if choice == "note":
        body = (DELIVERY_NOTE + f"Order {tag.decode()}.\n").encode()
        return HostileFile("clean note", f"note{i}.txt", body, "text/plain")
    if choice == "pdf":
        return HostileFile("clean pdf", f"p{i}.pdf", _with_pdf_comment(_pdf(), tag), PDF)
    jpeg = encode_image(photo(i, (320, 240)), "JPEG", with_exif=True)
    return HostileFile("clean jpeg", f"photo{i}.jpg", jpeg, "image/jpeg")


def _empty(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    return HostileFile("empty file", f"empty{i}.pdf", b"", PDF)


def _oversized(i: int, rng: random.Random, tag: bytes) -> HostileFile:
    # Over the test settings' 2 MiB per-file limit: refused while streaming (413).
    return HostileFile(
        "over the size limit", f"big{i}.zip", tag * (3 * 1024 * 1024 // len(tag)), ZIP
    )


# Weights: how many of each in a hundred (about). Refused-at-the-door kinds are few.
KINDS: list[tuple[Builder, int]] = [
    (_mutated_zip, 20),
    (_mutated_pdf, 20),
    (_flat_zip_bomb, 6),
    (_nested_zip_bomb, 5),
    (_png_bomb_file, 5),
    (_huge_png, 3),
    (_deep_action_chain, 7),
    (_long_next_array, 4),
    (_nested_objects, 4),
    (_unknown_filter, 5),
    (_corrupt_deflate, 4),
    (_unsupported_method, 4),
    (_clean, 8),
    (_empty, 1),
    (_oversized, 1),
]
#: Kinds the API refuses with a 4xx before anything is stored.
REFUSED_AT_THE_DOOR = frozenset({"empty file", "over the size limit"})
#: Kinds whose every file carries an issue that keeps it from being approved automatically.
ALWAYS_FLAGGED = frozenset(
    {
        "flat zip bomb",
        "nested zip bomb",
        "png bomb 60000x60000",
        "deep action chain",
        "next array past the walk",
        "objects nested 100k deep",
        "corrupt deflate stream",
        "unsupported compression method",
        "stream filter JBIG2Decode over plain bytes",
        "stream filter NoSuchDecode over plain bytes",
    }
)


def corpus(count: int, seed: int = SEED) -> list[HostileFile]:
    """`count` files, every kind at least once, then drawn by weight; the same for a seed."""
    rng = random.Random(seed)
    builders = [builder for builder, _ in KINDS]
    picks = builders + rng.choices(builders, weights=[w for _, w in KINDS], k=count - len(KINDS))
    rng.shuffle(picks)
    return [builder(i, rng, f"corpus-{seed}-{i:04d}".encode()) for i, builder in enumerate(picks)]
