"""The edge under real gunicorn: its own errors in JSON, chunked bodies 411, fail-closed start."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from service.settings import Settings
from tests.conftest import settings_env
from tests.monitoring.stack import GUNICORN_CONFIG, Stack
from tests.support.flows import BUYER, SELLER
from tests.support.processes import VENV_BIN

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 30.0


@pytest.fixture
def api_url(settings: Settings, tmp_path: Path, redis_conn: redis.Redis) -> Iterator[str]:
    stack = Stack(settings, tmp_path, redis_conn)
    api = stack.api(workers=1, threads=2)
    stack.wait_ready(api)
    yield api.url
    stack.stop_all()


def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_error(headers: dict[str, str], body: bytes) -> dict[str, str]:
    assert headers["content-type"].startswith("application/json"), body[:200]
    error = json.loads(body)
    assert error["error"] and error["message"]
    return dict(error)


def test_a_nul_in_a_header_is_a_json_400(api_url: str) -> None:
    status, headers, body = raw_request(
        api_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n"
    )
    assert status == 400
    assert "header" in assert_json_error(headers, body)["message"]


def test_a_9_kb_header_is_a_json_431(api_url: str) -> None:
    big = b"X-Big: " + b"a" * 9 * 1024
    status, headers, body = raw_request(
        api_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n\r\n"
    )
    assert status == 431
    assert "smaller headers" in assert_json_error(headers, body)["message"]


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def test_a_chunked_json_body_is_411_naming_content_length(
    api_url: str, auth, settings: Settings
) -> None:
    token = auth(BUYER)["Authorization"].encode()
    body = json.dumps({"title": "x", "item_type": "SERVICES"}).encode()
    status, headers, answer = raw_request(
        api_url,
        b"POST /api/rifts HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body),
    )
    assert status == 411
    assert "Content-Length" in assert_json_error(headers, answer)["message"]


def test_a_chunked_proof_upload_is_411_and_stores_nothing(
    api_url: str, auth, settings: Settings
) -> None:
    token = auth(SELLER)["Authorization"].encode()
    form = (
        b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\n'
        + b"delivered in person, signed for " * 4
        + b"\r\n--b--\r\n"
    )
    status, headers, answer = raw_request(
        api_url,
        b"POST /api/rifts/any-rift/proofs HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(form),
    )
    assert status == 411
    assert_json_error(headers, answer)
    assert not any(p.is_file() for p in settings.blob_dir.rglob("*"))


@pytest.mark.parametrize("environment", ["production", "prod", "Production"])
def test_the_api_refuses_to_start_outside_development_without_real_secrets(
    settings: Settings, tmp_path: Path, environment: str
) -> None:
    env = settings_env(settings, RIFT_ENV=environment, JWT_SECRET="", LICENSE_KEY_SECRET="short")
    env["API_BIND"] = "127.0.0.1:0"
    result = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONFIG), "service.api.wsgi:app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert result.returncode != 0
    assert "JWT_SECRET and LICENSE_KEY_SECRET must be set" in result.stderr
    assert (
        "JWT_SECRET is not set" in result.stderr
        and "LICENSE_KEY_SECRET is 5 bytes" in result.stderr
    )
