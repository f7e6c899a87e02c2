"""What a virus scan concluded about one file, and the scanner interface actors depend on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeAlias

from service.scanning.status import ScanStatus

# Either a readable binary file object (read in bounded chunks, never whole) or an iterable
# of byte chunks, e.g. a storage backend's download stream.
ChunkSource: TypeAlias = Iterable[bytes] | BinaryIO


@dataclass(frozen=True, slots=True)
class ScanResult:
    status: ScanStatus
    signature: str | None = None
    detail: str | None = None

    @classmethod
    def clean(cls) -> ScanResult:
        return cls(ScanStatus.CLEAN)

    @classmethod
    def infected(cls, signature: str) -> ScanResult:
        return cls(ScanStatus.INFECTED, signature=signature)

    @classmethod
    def unscannable(cls, detail: str) -> ScanResult:
        return cls(ScanStatus.ERROR, detail=detail)


class VirusScanner(Protocol):
    """What the scan actor needs from a scanner; ClamdScanner is the real one."""

    def ping(self) -> bool: ...

    def scan_stream(self, source: ChunkSource) -> ScanResult: ...
