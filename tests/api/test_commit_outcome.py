"""The database breaking the connection at a request's COMMIT: the answer says what happened.

A seller told "nothing was saved, send it again" sends it again; if the first one was
stored after all, the rift has two proofs and two verdicts (the chaos suite's PostgreSQL
outage found one). Here a proxy in front of the real PostgreSQL breaks the API's
connection at the COMMIT (tests/support/pg_proxy.py), and every answer is checked against
what is stored: a 202 names a stored proof whose jobs reach the broker, a 503 "nothing was
saved" leaves nothing behind, and a 503 "outcome unknown" keeps the files of a proof that
may be stored. Answers cover a proof, a JSON transition and a rift's creation.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

import service.db
from service.blobs import blob_store_from_settings
from service.db import create_db_engine, create_session_factory
from service.models import Job, JobState, Proof, Rift
from tests.support.api import api_test_client, real_api_context
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.support.pg_proxy import Cut

pytestmark = pytest.mark.postgresql_only

TRACKING = {"tracking_number": "1Z999AA10123456784"}
NOTE = ("note.txt", DELIVERY_NOTE.encode(), "text/plain")
# Short, so "the database stays away past the wait" takes seconds.
SETTLE_WITHIN_S = 2.0


@pytest.fixture
def api(settings, sessions, redis_conn, proxy, monkeypatch):
    """The API on a connection through the proxy; `sessions` looks at the database directly."""
    monkeypatch.setattr(service.db, "SETTLE_WITHIN_S", SETTLE_WITHIN_S)
    url = proxy.url(settings.database_url)
    engine = create_db_engine(url)
    ctx = real_api_context(replace(settings, database_url=url), create_session_factory(engine))
    yield api_test_client(ctx)
    engine.dispose()


def proofs_of(sessions, rift_id: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Proof.id).where(Proof.rift_id == rift_id)))


def blobs(settings) -> set[str]:
    return {b.key for b in blob_store_from_settings(settings).list_blobs()}


def test_a_proof_whose_commit_answer_was_lost_is_202_stored_once_and_its_jobs_are_sent(
    api, auth, sessions, settings, redis_conn, proxy
):
    rift = funded_rift(api, auth)
    proxy.arm(Cut.LOSE_ANSWER)
    result = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert proxy.cuts == 1
    assert result.status_code == 202, result.text
    assert proofs_of(sessions, rift["id"]) == [result.json["proof_id"]]
    with sessions() as session:
        states = session.scalars(select(Job.state).where(Job.proof_id == result.json["proof_id"]))
        assert set(states) == {JobState.QUEUED}
    assert redis_conn.llen("dramatiq:verification") == 1
    assert redis_conn.llen("dramatiq:scan") == 1
    assert len(blobs(settings)) == 1  # the file the stored asset names


def test_a_proof_whose_commit_never_reached_the_database_is_503_and_nothing_is_left(
    api, auth, sessions, settings, redis_conn, proxy
):
    rift = funded_rift(api, auth)
    proxy.arm(Cut.DROP_COMMIT)
    result = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert result.status_code == 503, result.text
    assert result.json["error"] == "database_unavailable"
    assert "nothing was saved" in result.json["message"]
    assert proofs_of(sessions, rift["id"]) == []
    assert blobs(settings) == set()
    assert redis_conn.llen("dramatiq:verification") == 0
    # Sent again, as the answer says: one proof.
    again = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert again.status_code == 202, again.text
    assert proofs_of(sessions, rift["id"]) == [again.json["proof_id"]]


def test_the_database_away_past_the_wait_is_503_outcome_unknown_and_the_files_stay(
    api, auth, sessions, settings, proxy
):
    rift = funded_rift(api, auth)
    key = {"Idempotency-Key": "order-4411-proof"}
    proxy.arm(Cut.LOSE_ANSWER, refuse_s=SETTLE_WITHIN_S + 2)
    result = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE], headers=key)
    assert result.status_code == 503, result.text
    assert result.json["error"] == "outcome_unknown"
    assert "may have been" in result.json["message"]
    assert int(result.headers["Retry-After"]) > 0
    # It was stored, and the file its asset names was kept.
    [proof_id] = proofs_of(sessions, rift["id"])
    assert len(blobs(settings)) == 1
    # Once the database is back, the same request with the same key is answered as the
    # first one was: the stored proof, not a second one.
    deadline = time.monotonic() + SETTLE_WITHIN_S + 10
    while True:
        again = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE], headers=key)
        if again.status_code != 503 or time.monotonic() > deadline:
            break
        assert again.json["error"] == "database_unavailable"  # still away: refused at once
        time.sleep(0.5)
    assert again.status_code == 202, again.text
    assert again.json["replayed"] is True
    assert again.json["proof_id"] == proof_id
    assert proofs_of(sessions, rift["id"]) == [proof_id]
    assert len(blobs(settings)) == 1  # the replay's own copy was removed


def test_a_transition_whose_commit_answer_was_lost_is_200_and_moves_the_rift_once(
    api, auth, sessions, proxy
):
    rift = funded_rift(api, auth)
    submitted = submit(api, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert submitted.status_code == 202, submitted.text
    proxy.arm(Cut.LOSE_ANSWER)
    result = api.simulate_post(
        f"/api/rifts/{rift['id']}/transitions",
        json={"to": "DISPUTED", "reason": "the parcel never came"},
        headers=auth(BUYER),
    )
    assert proxy.cuts == 1
    assert result.status_code == 200, result.text
    assert result.json["status"] == "DISPUTED"
    with sessions() as session:
        assert session.get_one(Rift, rift["id"]).status.value == "DISPUTED"


def test_a_rift_created_when_the_commit_answer_was_lost_is_201_and_there_is_one(
    api, auth, sessions, proxy
):
    proxy.arm(Cut.LOSE_ANSWER)
    result = api.simulate_post(
        "/api/rifts",
        json={
            "title": "Logo design",
            "item_type": "SERVICES",
            "seller_id": SELLER,
            "subtotal": 25_000,
            "currency": "USD",
        },
        headers=auth(BUYER),
    )
    assert proxy.cuts == 1
    assert result.status_code == 201, result.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Rift)) == 1
