"""Parsing clamd's replies and the CLAMD_ADDRESS setting; no daemon needed."""

from __future__ import annotations

import pytest

from service.scanning import (
    ClamdAddress,
    ClamdScanner,
    InvalidClamdAddress,
    ScannerUnavailable,
    ScanResult,
    ScanStatus,
    parse_instream_reply,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("stream: OK", ScanResult.clean()),
        (
            "stream: Rift.Test.EICAR.UNOFFICIAL FOUND",
            ScanResult.infected("Rift.Test.EICAR.UNOFFICIAL"),
        ),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", ScanResult.infected("Win.Test.EICAR_HDB-1")),
        (
            "INSTREAM size limit exceeded. ERROR",
            ScanResult.unscannable("INSTREAM size limit exceeded. ERROR"),
        ),
        (
            "stream: Can't allocate memory ERROR",
            ScanResult.unscannable("stream: Can't allocate memory ERROR"),
        ),
    ],
)
def test_instream_replies_become_verdicts(reply: str, expected: ScanResult) -> None:
    assert parse_instream_reply(reply) == expected


def test_a_scan_limit_alert_is_unscannable_not_infected() -> None:
    result = parse_instream_reply("stream: Heuristics.Limits.Exceeded.MaxScanTime FOUND")

    assert result.status is ScanStatus.ERROR
    assert result.signature is None
    assert result.detail is not None and "MaxScanTime" in result.detail


@pytest.mark.parametrize("reply", ["COMMAND READ TIMED OUT", "UNKNOWN COMMAND", "PONG", "HTTP/1.1"])
def test_replies_that_say_nothing_about_the_file_are_unavailable(reply: str) -> None:
    with pytest.raises(ScannerUnavailable, match="unexpected reply"):
        parse_instream_reply(reply)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("tcp://127.0.0.1:3310", ClamdAddress(host="127.0.0.1", port=3310)),
        ("tcp://clamd.internal:3310/", ClamdAddress(host="clamd.internal", port=3310)),
        ("tcp://[::1]:3310", ClamdAddress(host="::1", port=3310)),
        (" unix:///run/clamav/clamd.ctl ", ClamdAddress(socket_path="/run/clamav/clamd.ctl")),
    ],
)
def test_clamd_address_parses_tcp_and_unix_settings(setting: str, expected: ClamdAddress) -> None:
    address = ClamdAddress.parse(setting)

    assert address == expected
    assert ClamdAddress.parse(str(address)) == address


@pytest.mark.parametrize(
    "setting",
    [
        "127.0.0.1:3310",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:notaport",
        "tcp://127.0.0.1:99999",
        "tcp://:3310",
        "unix://run/clamav/clamd.ctl",
        "unix://",
        "http://127.0.0.1:3310",
    ],
)
def test_clamd_address_rejects_settings_it_cannot_use(setting: str) -> None:
    with pytest.raises(InvalidClamdAddress, match="expected tcp://HOST:PORT"):
        ClamdAddress.parse(setting)


def test_clamd_address_holds_exactly_one_kind_of_location() -> None:
    with pytest.raises(InvalidClamdAddress):
        ClamdAddress(host="127.0.0.1", port=3310, socket_path="/run/clamd.ctl")
    with pytest.raises(InvalidClamdAddress):
        ClamdAddress(host="127.0.0.1")


@pytest.mark.parametrize(("timeout_s", "chunk_bytes"), [(0.0, 1024), (1.0, 0)])
def test_scanner_rejects_non_positive_limits(timeout_s: float, chunk_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ClamdScanner(ClamdAddress(host="127.0.0.1", port=3310), timeout_s, chunk_bytes=chunk_bytes)


@pytest.mark.parametrize("kind", ["Zip", "PDF", "Doc"])
def test_an_encrypted_file_alert_is_unscannable_not_infected(kind: str) -> None:
    result = parse_instream_reply(f"stream: Heuristics.Encrypted.{kind} FOUND")

    assert result.status is ScanStatus.ERROR
    assert result.detail is not None and f"Encrypted.{kind}" in result.detail
