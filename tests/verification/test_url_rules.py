"""URLs: scheme, shorteners, and a reachability probe that never reaches inward."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from proof_fixtures import codes, http_server, self_signed_tls

from service.verification import AddressPolicy, UrlProbe, VerificationThresholds, check_url
from service.verification.addresses import IPAddress
from service.verification.probe import tcp_connector

DEFAULTS = VerificationThresholds()
PROBING = VerificationThresholds(url_reachability_check=True, url_timeout_s=2.0)
LOCAL_ONLY = AddressPolicy(extra_allowed=(ip_network("127.0.0.1/32"),))


@dataclass
class FakeDns:
    """A resolver with fixed answers, so public-looking names can point anywhere."""

    answers: dict[str, list[str]]

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return [ip_address(text) for text in self.answers[host]]


@dataclass
class RecordingConnector:
    """The real TCP connector, noting every address it is asked to reach."""

    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, address: IPAddress, port: int, timeout_s: float) -> socket.socket:
        self.calls.append((str(address), port))
        return tcp_connector(address, port, timeout_s)


def probe_with(
    answers: dict[str, list[str]],
    policy: AddressPolicy | None = None,
    *,
    timeout_s: float = 2.0,
    max_bytes: int = 64 * 1024,
    max_redirects: int = 5,
) -> tuple[UrlProbe, RecordingConnector]:
    """Build a probe over fake DNS that records where it connects."""
    connector = RecordingConnector()
    probe = UrlProbe(
        timeout_s=timeout_s,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        policy=policy or AddressPolicy(),
        resolver=FakeDns(answers),
        connector=connector,
    )
    return probe, connector


def test_a_plain_https_url_passes_without_any_network_by_default() -> None:
    result = check_url("https://shop.example.com/orders/118", thresholds=DEFAULTS)
    assert result.check.score == 100
    assert result.check.issues == ()
    assert result.probe is None


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)"]
)
def test_only_http_and_https_are_accepted(url: str) -> None:
    check = check_url(url, thresholds=DEFAULTS).check
    assert codes(check) == {"url.scheme"}
    assert not check.passed


@pytest.mark.parametrize("url", ["https://bit.ly/3xYz", "http://t.co/abc", "https://TinyURL.com/x"])
def test_known_shorteners_are_an_issue(url: str) -> None:
    assert codes(check_url(url, thresholds=DEFAULTS).check) == {"url.shortener"}


@pytest.mark.parametrize(
    "url", ["https://notbit.ly/x", "https://bit.ly.example.com/x", "https://reddit.co/x"]
)
def test_shorteners_match_whole_hosts_not_substrings(url: str) -> None:
    assert check_url(url, thresholds=DEFAULTS).check.issues == ()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com/" + "a" * 2048, "url.too_long"),
        ("https://example.com:99999/", "url.invalid"),
        ("https:///just-a-path", "url.invalid"),
        ("http://[::1/", "url.invalid"),
    ],
)
def test_a_malformed_url_fails(url: str, code: str) -> None:
    check = check_url(url, thresholds=DEFAULTS).check
    assert codes(check) == {code}
    assert not check.passed


def test_credentials_before_the_host_are_an_issue() -> None:
    check = check_url("https://paypal.com@evil.example/login", thresholds=DEFAULTS).check
    assert codes(check) == {"url.credentials"}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://10.1.2.3/", "http://169.254.169.254/", "http://[::1]/"]
)
def test_a_literal_private_address_fails_even_without_probing(url: str) -> None:
    assert codes(check_url(url, thresholds=DEFAULTS).check) == {"url.forbidden_address"}


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.20.30.40",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::",
    ],
)
def test_a_name_resolving_inward_is_refused_without_connecting(address: str) -> None:
    probe, connector = probe_with({"proof.example.com": [address]})
    result = check_url("https://proof.example.com/", thresholds=PROBING, probe=probe)
    assert codes(result.check) == {"url.forbidden_address"}
    assert result.probe is not None and result.probe.refusal is not None
    assert connector.calls == []


def test_one_inward_record_among_public_ones_is_refused() -> None:
    probe, connector = probe_with({"proof.example.com": ["93.184.216.34", "10.0.0.1"]})
    assert probe("http://proof.example.com/").refusal is not None
    assert connector.calls == []


def test_metadata_stays_refused_even_when_the_policy_is_widened() -> None:
    policy = AddressPolicy(extra_allowed=(ip_network("169.254.0.0/16"),))
    assert policy.refusal(ip_address("169.254.169.254")) == "cloud metadata address"
    assert policy.refusal(ip_address("169.254.1.1")) is None


def test_public_addresses_are_allowed() -> None:
    for text in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert AddressPolicy().refusal(ip_address(text)) is None


def test_a_reachable_url_is_fetched_at_the_pinned_address_with_its_own_host_name() -> None:
    with http_server({"/ok": (200, {}, b"delivered", 0.0)}) as server:
        probe, connector = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY)
        url = f"http://allowed.test:{server.port}/ok"
        result = check_url(url, thresholds=PROBING, probe=probe)
    assert result.check.issues == ()
    assert result.probe is not None and result.probe.status == 200
    assert connector.calls == [("127.0.0.1", server.port)]
    assert server.seen_hosts == [f"allowed.test:{server.port}"]


@pytest.mark.parametrize(
    ("location", "answers"),
    [
        ("http://10.0.0.1/", {}),
        ("http://169.254.169.254/latest/meta-data/", {}),
        ("http://internal.test/admin", {"internal.test": ["10.0.0.1"]}),
        ("http://[::1]:8080/", {}),
    ],
)
def test_a_redirect_from_an_allowed_host_to_an_inward_one_is_refused_before_connecting(
    location: str, answers: dict[str, list[str]]
) -> None:
    routes = {"/go": (302, {"Location": location}, b"", 0.0)}
    with http_server(routes) as server:
        probe, connector = probe_with({"allowed.test": ["127.0.0.1"], **answers}, LOCAL_ONLY)
        result = check_url(f"http://allowed.test:{server.port}/go", thresholds=PROBING, probe=probe)
    assert codes(result.check) == {"url.forbidden_address"}
    assert result.probe is not None and result.probe.hops == 1
    assert connector.calls == [("127.0.0.1", server.port)]  # the second hop never connected


def test_a_redirect_to_another_scheme_is_refused() -> None:
    routes = {"/go": (301, {"Location": "file:///etc/passwd"}, b"", 0.0)}
    with http_server(routes) as server:
        probe, _ = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY)
        result = probe(f"http://allowed.test:{server.port}/go")
    assert result.refusal is not None and "scheme" in result.refusal


def test_relative_redirects_are_followed_up_to_the_limit() -> None:
    routes = {
        "/a": (302, {"Location": "/b"}, b"", 0.0),
        "/b": (307, {"Location": "/ok"}, b"", 0.0),
        "/ok": (200, {}, b"fine", 0.0),
        "/loop": (302, {"Location": "/loop"}, b"", 0.0),
    }
    with http_server(routes) as server:
        probe, connector = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY, max_redirects=3)
        ok = probe(f"http://allowed.test:{server.port}/a")
        loop = probe(f"http://allowed.test:{server.port}/loop")
    assert ok.reachable and ok.hops == 2 and ok.final_url.endswith("/ok")
    assert not loop.reachable and loop.error == "too many redirects"
    assert len(connector.calls) == 3 + 4


def test_the_body_read_is_capped() -> None:
    with http_server({"/big": (200, {}, b"x" * 2_000_000, 0.0)}) as server:
        probe, _ = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY, max_bytes=10_000)
        result = probe(f"http://allowed.test:{server.port}/big")
    assert result.reachable
    assert result.bytes_read == 10_000


def test_a_slow_server_is_abandoned_at_the_timeout() -> None:
    with http_server({"/slow": (200, {}, b"late", 3.0)}) as server:
        probe, _ = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY, timeout_s=0.5)
        started = time.monotonic()
        result = check_url(
            f"http://allowed.test:{server.port}/slow", thresholds=PROBING, probe=probe
        )
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert codes(result.check) == {"url.unreachable"}


def test_an_error_status_is_unreachable() -> None:
    with http_server({}) as server:
        probe, _ = probe_with({"allowed.test": ["127.0.0.1"]}, LOCAL_ONLY)
        result = check_url(
            f"http://allowed.test:{server.port}/missing", thresholds=PROBING, probe=probe
        )
    assert codes(result.check) == {"url.unreachable"}
    assert result.probe is not None and result.probe.status == 404


def test_an_unknown_host_is_unreachable() -> None:
    probe, connector = probe_with({})
    result = check_url("https://nowhere.example.com/", thresholds=PROBING, probe=probe)
    assert codes(result.check) == {"url.unreachable"}
    assert connector.calls == []


def test_the_default_probe_resolves_through_the_system_and_refuses_localhost() -> None:
    result = check_url("http://localhost:9/", thresholds=PROBING)
    assert codes(result.check) == {"url.forbidden_address"}


def test_https_is_verified_against_the_original_host_name_at_the_pinned_address(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = self_signed_tls(tmp_path, "allowed.test")
    with http_server({"/ok": (200, {}, b"secure", 0.0)}, tls=server_tls) as server:
        connector = RecordingConnector()
        probe = UrlProbe(
            policy=LOCAL_ONLY,
            resolver=FakeDns({"allowed.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}),
            connector=connector,
            ssl_context=client_tls,
        )
        trusted = probe(f"https://allowed.test:{server.port}/ok")
        # The same server and address, reached under a name its certificate does not carry.
        mismatched = probe(f"https://other.test:{server.port}/ok")
    assert trusted.reachable and trusted.status == 200
    assert not mismatched.reachable
    assert mismatched.error is not None and "CERTIFICATE_VERIFY_FAILED" in mismatched.error
    assert connector.calls == [("127.0.0.1", server.port)] * 2
