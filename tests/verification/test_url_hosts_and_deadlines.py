"""URL hosts read as a resolver reads them; the probe's deadline holds on every read."""

from __future__ import annotations

import time
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from proof_fixtures import codes, self_signed_tls
from slow_servers import TricklingServer

from service.verification import AddressPolicy, UrlProbe, VerificationThresholds, check_url
from service.verification.addresses import host_address
from tests.support.hanging_server import HangingServer

DEFAULTS = VerificationThresholds()
PROBING = VerificationThresholds(url_reachability_check=True, url_timeout_s=1.0)
LOCAL_ONLY = AddressPolicy(extra_allowed=(ip_network("127.0.0.1/32"),))
DEADLINE_S = 1.0
# Generous for a loaded 2-core CI machine, far under the trickle's minutes.
DEADLINE_SLACK_S = 1.5

INWARD_SPELLINGS = [
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0X7F000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("2852039166", "169.254.169.254"),
    ("10.0x10203", "10.1.2.3"),
    ("0", "0.0.0.0"),  # noqa: S104 - an address to refuse, not one to bind
]


@pytest.mark.parametrize(("host", "address"), INWARD_SPELLINGS)
def test_hosts_are_read_the_way_inet_aton_reads_them(host: str, address: str) -> None:
    assert host_address(host) == ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.1.1.1", "0x"])
def test_names_and_impossible_numbers_are_not_addresses(host: str) -> None:
    assert host_address(host) is None


@pytest.mark.parametrize(("host", "_address"), INWARD_SPELLINGS)
def test_every_spelling_of_an_inward_address_fails_without_the_probe(
    host: str, _address: str
) -> None:
    check = check_url(f"http://{host}/receipt", thresholds=DEFAULTS).check
    assert codes(check) == {"url.forbidden_address"}
    assert not check.passed


@pytest.mark.parametrize(("host", "_address"), INWARD_SPELLINGS)
def test_every_spelling_of_an_inward_address_is_refused_by_the_probe_without_connecting(
    host: str, _address: str
) -> None:
    asked: list[str] = []

    def resolver(name: str, port: int) -> list[object]:
        asked.append(name)
        raise AssertionError("a literal address must not be resolved")

    probe = UrlProbe(resolver=resolver)  # type: ignore[arg-type]
    result = probe(f"http://{host}:9/")
    assert result.refusal is not None
    assert asked == []


def test_a_public_address_in_a_short_form_passes() -> None:
    # 8.8.8.8 written as one decimal number: a public address stays allowed.
    assert codes(check_url("http://134744072/", thresholds=DEFAULTS).check) == set()


def probe_of_local(**options: object) -> UrlProbe:
    """A probe whose "slow.test" is 127.0.0.1, the one address its policy allows."""
    return UrlProbe(
        timeout_s=DEADLINE_S,
        policy=LOCAL_ONLY,
        resolver=lambda _host, _port: [ip_address("127.0.0.1")],
        **options,  # type: ignore[arg-type]
    )


def test_headers_trickled_one_byte_at_a_time_end_at_the_deadline() -> None:
    with TricklingServer() as server:
        started = time.monotonic()
        result = check_url(
            f"http://slow.test:{server.port}/", thresholds=PROBING, probe=probe_of_local()
        )
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + DEADLINE_SLACK_S
    assert codes(result.check) == {"url.unreachable"}
    assert result.probe is not None and result.probe.error is not None
    assert "ran out of time" in result.probe.error
    assert server.bytes_sent > 3  # the server was trickling, not silent


def test_a_tls_handshake_that_never_answers_ends_at_the_deadline() -> None:
    with HangingServer() as server:
        started = time.monotonic()
        result = probe_of_local()(f"https://slow.test:{server.port}/")
        elapsed = time.monotonic() - started
    assert server.accepted.is_set()
    assert elapsed < DEADLINE_S + DEADLINE_SLACK_S
    assert not result.reachable and result.error is not None


def test_headers_trickled_inside_tls_end_at_the_deadline(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed_tls(tmp_path, "slow.test")
    with TricklingServer(tls=server_tls) as server:
        started = time.monotonic()
        result = probe_of_local(ssl_context=client_tls)(f"https://slow.test:{server.port}/")
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + DEADLINE_SLACK_S
    assert not result.reachable
    assert result.error is not None and "ran out of time" in result.error
    assert server.bytes_sent > 3
