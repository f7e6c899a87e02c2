"""Gunicorn's access log, under the app's own config, in the shape of the app's JSON logs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import settings_env
from tests.support.databases import migrate
from tests.support.processes import REPO_ROOT, VENV_BIN, ManagedProcess, free_port, wait_for
from tests.support.settings import test_settings

GUNICORN_CONFIG = REPO_ROOT / "deploy" / "gunicorn.conf.py"
READY_TIMEOUT_S = 30.0
LOG_TIMEOUT_S = 10.0
HEALTHZ = "/healthz"
RIFT = "/api/rifts/rift-1"


def get(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
    """The status and the X-Request-ID the API answered with."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.headers.get("X-Request-ID")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Request-ID")


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def access_lines(api: ManagedProcess) -> list[dict[str, object]]:
    return [line for line in json_lines(api.output()) if line.get("logger") == "gunicorn.access"]


@pytest.mark.slow
def test_gunicorn_writes_json_access_lines_with_the_requests_id(
    redis_url: str, tmp_path: Path
) -> None:
    # Given the API under gunicorn with the deployed config and LOG_FORMAT=json
    database_url = f"sqlite:///{tmp_path / 'rift.sqlite3'}"
    migrate(database_url)
    # No request below reaches clamd: any port will do.
    settings = test_settings(database_url, redis_url, tmp_path / "data", free_port())
    port = free_port()
    api = ManagedProcess(
        [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONFIG), "service.api.wsgi:app"],
        settings_env(
            settings,
            LOG_FORMAT="json",
            API_BIND=f"127.0.0.1:{port}",
            API_WORKERS="1",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        ),
        tmp_path / "gunicorn.log",
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: not api.alive() or "Booting worker" in api.output(),
            READY_TIMEOUT_S,
            "gunicorn to boot a worker",
        )
        assert api.alive(), api.output()
        wait_for(lambda: _answers(base), READY_TIMEOUT_S, "the API to answer")
        # When a caller sends a request with its own id, and one without (401: no token)
        assert get(base + HEALTHZ, {"X-Request-ID": "req-from-caller"})[0] == 200
        status, answered_id = get(base + RIFT, {})
        assert status == 401 and answered_id
        # Gunicorn writes a request's line after sending the response: wait for both.
        wait_for(
            lambda: {HEALTHZ, RIFT} <= {line["path"] for line in access_lines(api)},
            LOG_TIMEOUT_S,
            "both requests' access lines",
        )
    finally:
        api.stop()
    # Then every line gunicorn wrote is JSON, the access lines shaped like the app's lines
    output = api.output()
    assert all(line.startswith("{") for line in output.splitlines() if line), output
    (ours,) = [line for line in access_lines(api) if line["path"] == HEALTHZ]
    (unauthenticated,) = [line for line in access_lines(api) if line["path"] == RIFT]
    assert ours["event"] == "request"
    assert ours["level"] == "info"
    assert {"timestamp", "duration_ms", "response_bytes", "remote_addr"} <= ours.keys()
    assert (ours["method"], ours["path"], ours["status"], ours["request_id"]) == (
        "GET",
        HEALTHZ,
        200,
        "req-from-caller",
    )
    duration_ms = ours["duration_ms"]
    assert isinstance(duration_ms, float) and 0 < duration_ms < READY_TIMEOUT_S * 1000
    assert unauthenticated["status"] == 401
    # A request that came without an id is logged under the one the app gave it.
    assert unauthenticated["request_id"] == answered_id


def _answers(base: str) -> bool:
    try:
        return get(f"{base}/openapi.json", {})[0] == 200
    except OSError:
        return False
