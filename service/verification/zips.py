"""Zip rules: inspect the member list and member prefixes without extracting to disk."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import magic

from service.verification.issues import UNSCANNED_MEMBER_CODE, ScoreCard, describe
from service.verification.thresholds import VerificationThresholds
from service.verification.zip_directory import read_central_directory

EXECUTABLE_SUFFIXES = frozenset(
    {
        ".exe", ".dll", ".scr", ".com", ".bat", ".cmd", ".msi", ".msp", ".pif", ".cpl",
        ".ps1", ".psm1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".jar",
        ".sh", ".bash", ".elf", ".so", ".dylib", ".app", ".apk", ".dex", ".deb", ".rpm",
        ".lnk", ".reg", ".sys", ".drv", ".ocx",
    }
)  # fmt: skip
ARCHIVE_SUFFIXES = frozenset(
    {
        ".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz",
        ".zst", ".lz", ".lzma", ".cab", ".iso", ".dmg", ".arj", ".ace",
    }
)  # fmt: skip
EXECUTABLE_MIMES = frozenset(
    {
        "application/x-dosexec",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-pie-executable",
        "application/x-sharedlib",
        "application/x-mach-binary",
        "application/x-elf",
        "application/java-archive",
        "application/x-java-applet",
        "text/x-shellscript",
        "text/x-msdos-batch",
        "application/x-ms-shortcut",
    }
)
ARCHIVE_MIMES = frozenset(
    {
        "application/zip",
        "application/x-zip-compressed",
        "application/gzip",
        "application/x-gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-rar",
        "application/vnd.rar",
        "application/x-7z-compressed",
        "application/x-tar",
        "application/zstd",
        "application/x-lzip",
        "application/x-lzma",
        "application/vnd.ms-cab-compressed",
        "application/x-iso9660-image",
    }
)
# libmagic wants more than a bare header to name a degenerate binary, but the OS loaders
# do not: these prefixes alone make a file executable.
EXECUTABLE_SIGNATURES = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"#!",
)
# Office macros in OOXML: the VBA project part (and its signature), Excel 4.0 macro sheets
# and Word's VBA data part, wherever a (renamed) package puts them.
MACRO_PART_NAMES = frozenset({"vbaproject.bin", "vbaprojectsignature.bin", "vbadata.xml"})
MACRO_FOLDERS = ("xl/macrosheets/",)
# Where OOXML keeps embedded OLE objects and ActiveX controls.
OLE_FOLDERS = ("/embeddings/", "/activex/")
# An OLE2 compound file, the container of VBA projects, legacy Office files and OLE objects.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Tiny members compress at absurd ratios for innocent reasons; only big ones can be bombs.
RATIO_MIN_MEMBER_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
# A directory entry is 46 bytes plus its name; this allows the member limit with long names.
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
# Member names in issues are shortened: a name can be 64 KiB of anything.
MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class ArchiveFacts:
    """What the zip rules learned about an archive."""

    member_count: int
    declared_uncompressed_bytes: int


def inspect_zip(
    card: ScoreCard, path: Path, *, thresholds: VerificationThresholds
) -> ArchiveFacts | None:
    """Apply the zip rules to the archive at `path`; return None when it cannot be read."""
    # The end record states the member count before zipfile parses a single entry, so a
    # directory of a million entries is refused for what it claims, not parsed to find out.
    directory = read_central_directory(path)
    if directory is None:
        card.fail_integrity("zip.unreadable", "The zip has no end-of-central-directory record.")
        return None
    if directory.member_count > thresholds.zip_max_members:
        _flag_too_many(card, directory.member_count, thresholds)
        return ArchiveFacts(directory.member_count, 0)
    if directory.directory_bytes > MAX_DIRECTORY_BYTES:
        card.flag(
            "zip.too_many_members",
            f"The zip's directory is {directory.directory_bytes} bytes, over the limit of "
            f"{MAX_DIRECTORY_BYTES}.",
        )
        return ArchiveFacts(directory.member_count, 0)
    try:
        with zipfile.ZipFile(path) as archive:
            return _inspect(card, archive, thresholds)
    # Whatever a crafted directory provokes in zipfile (BadZipFile, struct.error,
    # OverflowError, UnicodeDecodeError, MemoryError...) means "unreadable", never a crash.
    except Exception as exc:
        card.fail_integrity("zip.unreadable", f"The zip could not be read ({describe(exc)}).")
        return None


def _inspect(
    card: ScoreCard, archive: zipfile.ZipFile, thresholds: VerificationThresholds
) -> ArchiveFacts:
    members = [info for info in archive.infolist() if not info.is_dir()]
    declared_total = sum(info.file_size for info in members)
    facts = ArchiveFacts(len(members), declared_total)
    over_limits = _flag_limits(card, members, declared_total, thresholds)

    kinds: set[str] = set()
    _flag_unscannable(card, members, thresholds)
    for info in members[: thresholds.zip_max_members]:
        kinds |= _name_kinds(info.filename)
        if info.flag_bits & 0x1:
            kinds.add("encrypted")
            continue
        try:
            with archive.open(info) as member:
                prefix = member.read(thresholds.zip_member_prefix_bytes)
        except NotImplementedError:
            kinds.add("unsupported_compression")
            continue
        # A corrupt stream shows as BadZipFile, zlib.error, lzma.LZMAError, OSError (bz2),
        # EOFError...: all say the same about the member.
        except Exception as exc:
            _flag_corrupt(card, info, exc)
            return facts
        kinds |= _content_kinds(prefix)
    # Headers can lie; decompressing (bounded by the declared sizes just checked) proves
    # them. Skipped when the headers already admit to a bomb.
    if not over_limits:
        _verify_members(card, archive, members)

    messages = {
        "executable": "The zip contains an executable program.",
        "nested_archive": "The zip contains another archive, whose content cannot be checked.",
        "unsafe_path": "The zip has a member whose path escapes the extraction folder.",
        "encrypted": "The zip has password-protected members, whose content cannot be checked.",
        "unsupported_compression": "The zip uses a compression method that cannot be checked.",
        "macros": "The document carries macros (a VBA project or macro sheets): code that "
        "runs when it is opened.",
        "embedded_ole": "The document embeds an OLE object or ActiveX control, which can "
        "carry macros or programs.",
    }
    for kind in sorted(kinds):
        card.flag(f"zip.{kind}", messages[kind])
    return facts


def _flag_limits(
    card: ScoreCard,
    members: list[zipfile.ZipInfo],
    declared_total: int,
    thresholds: VerificationThresholds,
) -> bool:
    over = False
    if len(members) > thresholds.zip_max_members:
        _flag_too_many(card, len(members), thresholds)
        over = True
    if declared_total > thresholds.zip_max_total_uncompressed_bytes:
        card.flag(
            "zip.too_large",
            f"The zip unpacks to {declared_total} bytes, over the limit of "
            f"{thresholds.zip_max_total_uncompressed_bytes}.",
        )
        over = True
    compressed_total = sum(info.compress_size for info in members)
    worst_member_ratio = max(
        (
            info.file_size / max(info.compress_size, 1)
            for info in members
            if info.file_size >= RATIO_MIN_MEMBER_BYTES
        ),
        default=0.0,
    )
    overall_ratio = (
        declared_total / max(compressed_total, 1) if declared_total >= RATIO_MIN_MEMBER_BYTES else 0
    )
    if max(worst_member_ratio, overall_ratio) > thresholds.zip_max_compression_ratio:
        card.flag(
            "zip.compression_ratio",
            f"The zip compresses more than {thresholds.zip_max_compression_ratio}:1, "
            "the signature of a zip bomb.",
        )
        over = True
    return over


def _flag_unscannable(
    card: ScoreCard, members: list[zipfile.ZipInfo], thresholds: VerificationThresholds
) -> None:
    """Flag members the virus scanner skips: clamd passes them over in silence."""
    for info in members:
        if info.file_size > thresholds.scanner_max_file_bytes:
            card.flag(
                UNSCANNED_MEMBER_CODE,
                f"The zip member {info.filename[:MAX_NAME_CHARS]!r} unpacks to "
                f"{info.file_size} bytes, more than the virus scanner examines "
                f"({thresholds.scanner_max_file_bytes}), so it went unscanned.",
            )
            return


def _flag_too_many(card: ScoreCard, count: int, thresholds: VerificationThresholds) -> None:
    card.flag(
        "zip.too_many_members",
        f"The zip has {count} members, over the limit of {thresholds.zip_max_members}.",
    )


def _verify_members(
    card: ScoreCard, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]
) -> None:
    """Decompress every member into nothing, so a CRC or size lie shows as corruption."""
    for info in members:
        if info.flag_bits & 0x1:
            continue
        try:
            # zipfile stops at the declared size and then checks the CRC, so a member
            # whose header understates its content fails here instead of inflating.
            with archive.open(info) as member:
                while member.read(READ_CHUNK_BYTES):
                    pass
        except NotImplementedError:
            continue  # Reported as unsupported_compression from the prefix read.
        except Exception as exc:
            _flag_corrupt(card, info, exc)
            return


def _flag_corrupt(card: ScoreCard, info: zipfile.ZipInfo, exc: Exception) -> None:
    card.fail_integrity(
        "zip.corrupt_member",
        f"The zip member {info.filename[:MAX_NAME_CHARS]!r} is corrupt ({describe(exc)}).",
    )


def _name_kinds(name: str) -> set[str]:
    kinds: set[str] = set()
    normalized = name.replace("\\", "/")
    pure = PurePosixPath(normalized)
    if normalized.startswith("/") or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
        kinds.add("unsafe_path")
    lowered = normalized.lower()
    if pure.name.lower() in MACRO_PART_NAMES or lowered.startswith(MACRO_FOLDERS):
        kinds.add("macros")
    if any(folder in lowered for folder in OLE_FOLDERS) and lowered.endswith(".bin"):
        kinds.add("embedded_ole")
    # The last suffix is what a desktop acts on ("invoice.pdf.exe" runs).
    suffix = pure.suffix.lower()
    if suffix in EXECUTABLE_SUFFIXES:
        kinds.add("executable")
    if suffix in ARCHIVE_SUFFIXES:
        kinds.add("nested_archive")
    return kinds


def _content_kinds(prefix: bytes) -> set[str]:
    """Classify a member by its first bytes, never by its name."""
    kinds: set[str] = set()
    if not prefix:
        return kinds
    sniffed = magic.from_buffer(prefix, mime=True)
    if sniffed in EXECUTABLE_MIMES or prefix.startswith(EXECUTABLE_SIGNATURES):
        kinds.add("executable")
    if sniffed in ARCHIVE_MIMES:
        kinds.add("nested_archive")
    if prefix.startswith(OLE_SIGNATURE):
        kinds.add("embedded_ole")
    return kinds
