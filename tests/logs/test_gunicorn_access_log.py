"""Gunicorn's access log, under the app's own config, in the shape of the app's JSON logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.databases import migrate
from tests.support.gunicorn import GunicornApi, get, start_gunicorn_api
from tests.support.processes import free_port, wait_for
from tests.support.settings import test_settings

LOG_TIMEOUT_S = 10.0
HEALTHZ = "/healthz"
RIFT = "/api/rifts/rift-1"


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def access_lines(api: GunicornApi) -> list[dict[str, object]]:
    lines = json_lines(api.process.output())
    return [line for line in lines if line.get("logger") == "gunicorn.access"]


@pytest.mark.slow
def test_gunicorn_writes_json_access_lines_with_the_requests_id(
    redis_url: str, tmp_path: Path
) -> None:
    # Given the API under gunicorn with the deployed config and LOG_FORMAT=json
    database_url = f"sqlite:///{tmp_path / 'rift.sqlite3'}"
    migrate(database_url)
    # No request below reaches clamd: any port will do.
    settings = test_settings(database_url, redis_url, tmp_path / "data", free_port())
    api = start_gunicorn_api(settings, tmp_path, LOG_FORMAT="json")
    base = api.url
    try:
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
        api.process.stop()
    # Then every line gunicorn wrote is JSON, the access lines shaped like the app's lines
    output = api.process.output()
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
    assert isinstance(duration_ms, float) and 0 < duration_ms < 10_000
    assert unauthenticated["status"] == 401
    # A request that came without an id is logged under the one the app gave it.
    assert unauthenticated["request_id"] == answered_id
