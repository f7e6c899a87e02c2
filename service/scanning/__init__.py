"""Virus scanning: verdicts, and the clamd client that produces them."""

from service.scanning.address import ClamdAddress
from service.scanning.clamd import INSTREAM_CHUNK_BYTES, ClamdScanner, parse_instream_reply
from service.scanning.errors import InvalidClamdAddress, ScannerUnavailable
from service.scanning.status import ScanStatus
from service.scanning.verdict import ChunkSource, ScanResult, VirusScanner

__all__ = [
    "INSTREAM_CHUNK_BYTES",
    "ChunkSource",
    "ClamdAddress",
    "ClamdScanner",
    "InvalidClamdAddress",
    "ScanResult",
    "ScanStatus",
    "ScannerUnavailable",
    "VirusScanner",
    "parse_instream_reply",
]
