"""Name a file's type from its bytes: libmagic, then the OOXML manifest for zip containers.

Kept apart from the rules so that the API, which sniffs every upload, loads neither the
PDF, image nor zip parsers. Sniffing is total: hostile bytes give a type, never an error.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import magic

from service.verification.zip_directory import read_central_directory

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
ZIP = "application/zip"
TEXT = "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OCTET_STREAM = "application/octet-stream"

ALLOWED_MIMES = frozenset({PDF, JPEG, PNG, GIF, WEBP, ZIP, TEXT, DOCX, XLSX, PPTX})
IMAGE_MIMES = frozenset({JPEG, PNG, GIF, WEBP})
OOXML_MIMES = frozenset({DOCX, XLSX, PPTX})
# Names clients and older tools use for the same types.
MIME_ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "application/x-pdf": PDF,
    "application/x-zip": ZIP,
    "application/x-zip-compressed": ZIP,
    "application/zip-compressed": ZIP,
    # libmagic guesses these from punctuation in ordinary prose; to a reader they are text.
    "text/csv": TEXT,
    "text/x-log": TEXT,
}
# The part folder that marks each OOXML flavour inside its zip container.
OOXML_BY_FOLDER = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))
OOXML_MANIFEST = "[Content_Types].xml"
# Past these the directory is not read for sniffing (an OOXML document has dozens of
# parts); the zip rules report such an archive.
SNIFF_MAX_MEMBERS = 10_000
SNIFF_MAX_DIRECTORY_BYTES = 4 * 1024 * 1024


def normalize_mime(mime: str) -> str:
    """Lower-case a MIME type, drop its parameters and map known aliases."""
    bare = mime.split(";", 1)[0].strip().lower()
    return MIME_ALIASES.get(bare, bare)


def sniff_mime(source: Path | bytes) -> str:
    """Name the type of a file from its bytes (libmagic), never from the client."""
    sniffed = _libmagic(source)
    # libmagic's OOXML verdict depends on member order and its version (it names a zip
    # with a "word/" folder a Word file); the package manifest inside decides instead.
    if sniffed in (ZIP, OCTET_STREAM) or sniffed in OOXML_MIMES:
        flavour = _ooxml_flavour(source)
        if flavour is not None:
            return flavour
        return ZIP if sniffed in OOXML_MIMES else sniffed
    return sniffed


def _libmagic(source: Path | bytes) -> str:
    try:
        if isinstance(source, Path):
            return normalize_mime(magic.from_file(str(source), mime=True))
        return normalize_mime(magic.from_buffer(source, mime=True))
    # libmagic's own failures (an unreadable file, a parse it gives up on) mean "unknown",
    # which the allow-list refuses; they are never the client's 500.
    except Exception:
        return OCTET_STREAM


def _ooxml_flavour(source: Path | bytes) -> str | None:
    """Read the central directory (no extraction) to tell an OOXML document from a zip."""
    try:
        directory = read_central_directory(source)
        if (
            directory is None
            or directory.member_count > SNIFF_MAX_MEMBERS
            or directory.directory_bytes > SNIFF_MAX_DIRECTORY_BYTES
        ):
            return None
        with zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source)) as zf:
            names = zf.namelist()
    # zipfile raises a dozen types on a crafted directory (struct.error, OverflowError,
    # NotImplementedError, UnicodeDecodeError...): any of them means "not an OOXML package".
    except Exception:
        return None
    if OOXML_MANIFEST not in names:
        return None
    for folder, mime in OOXML_BY_FOLDER:
        if any(name.startswith(folder) for name in names):
            return mime
    return None
