"""The database down: 503 JSON with Retry-After, at once, and readiness names the database."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from service.db import create_db_engine, create_session_factory
from tests.support.api import api_test_client, real_api_context
from tests.support.flows import DELIVERY_NOTE, SELLER, multipart
from tests.support.processes import free_port

# Well under the API's request timeout: a refused connection must not hang a request.
ANSWER_WITHIN_S = 5.0


@pytest.fixture
def client_without_database(settings, redis_conn):
    # A PostgreSQL URL on a loopback port nothing listens on: every connection is refused.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/rift"
    engine = create_db_engine(url)
    ctx = real_api_context(replace(settings, database_url=url), create_session_factory(engine))
    yield api_test_client(ctx)
    engine.dispose()


def assert_database_unavailable(result) -> None:
    assert result.status_code == 503, result.text
    assert result.json["error"] == "database_unavailable"
    assert "again" in result.json["message"]
    assert int(result.headers["Retry-After"]) > 0


def test_a_submission_while_the_database_is_down_is_503_json_with_retry_after(
    client_without_database, auth
):
    body, headers = multipart(
        {"tracking_number": "1Z999AA10123456784"},
        [("note.txt", DELIVERY_NOTE.encode(), "text/plain")],
    )
    started = time.monotonic()
    result = client_without_database.simulate_post(
        "/api/rifts/some-rift/proofs", body=body, headers={**auth(SELLER), **headers}
    )
    assert time.monotonic() - started < ANSWER_WITHIN_S
    assert_database_unavailable(result)


def test_reads_while_the_database_is_down_are_503_json(client_without_database, auth):
    for path in ("/api/rifts/some-rift", "/api/rifts/some-rift/verification-status"):
        result = client_without_database.simulate_get(path, headers=auth(SELLER))
        assert_database_unavailable(result)


def test_readiness_says_the_database_is_the_dependency_that_is_down(client_without_database):
    result = client_without_database.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.json["checks"] == {"database": "down", "broker": "ok", "blob_store": "ok"}
