"""Proof submission: 202 with the real job id at once; bad input refused with nothing left."""

from dataclasses import replace
from datetime import timedelta

import falcon.testing
import pytest
from sqlalchemy import func, select

from actors.broker import build_broker
from actors.dispatch import DramatiqDispatcher
from actors.queue_stats import RedisQueueStats
from service.api.app import create_app
from service.api.metrics import ApiMetrics
from service.blobs import blob_store_from_settings
from service.domain.clock import utcnow
from service.domain.jobs import relay_outbox
from service.models import Asset, Job, JobState, Proof
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, STRANGER, funded_rift, submit

TRACKING = {"tracking_number": "1Z999AA10123456784"}
NOTE = ("note.txt", DELIVERY_NOTE.encode(), "text/plain")


def blob_files(settings) -> list[str]:
    """Keys of the stored blobs, in whichever store settings name (local directory or S3)."""
    return [b.key for b in blob_store_from_settings(settings).list_blobs()]


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_submission_is_202_with_the_real_job_id_and_a_queued_record(
    client, auth, sessions, redis_conn
):
    rift = funded_rift(client, auth)
    result = submit(client, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert result.status_code == 202, result.text
    body = result.json
    assert body["status"] == "PENDING"
    assert body["status_url"] == f"/api/rifts/{rift['id']}/verification-status"
    assert len(body["asset_ids"]) == 2
    job = client.simulate_get(f"/api/jobs/{body['verification_job_id']}", headers=auth(SELLER))
    assert job.json["state"] == "QUEUED"
    assert job.json["actor"] == "verify_proof"
    # The message on the broker carries the job's id: workers find the record by it.
    assert redis_conn.llen("dramatiq:verification") == 1
    assert body["verification_job_id"].encode() in next(
        iter(redis_conn.hgetall("dramatiq:verification.msgs").values())
    )
    rift_now = client.simulate_get(f"/api/rifts/{rift['id']}", headers=auth(BUYER)).json
    assert rift_now["status"] == "PROOF_SUBMITTED"
    status = client.simulate_get(body["status_url"], headers=auth(BUYER)).json
    assert status["status"] == "pending"
    assert status["job"]["id"] == body["verification_job_id"]


def test_files_are_hashed_server_side_and_typed_from_their_bytes(client, auth, sessions):
    rift = funded_rift(client, auth)
    # The client claims a PNG; the bytes are text.
    result = submit(
        client, auth, rift["id"], files=[("x.png", DELIVERY_NOTE.encode(), "image/png")]
    )
    assert result.status_code == 202
    with sessions() as session:
        asset = session.scalars(select(Asset)).one()
    import hashlib

    assert asset.sha256 == hashlib.sha256(DELIVERY_NOTE.encode()).hexdigest()
    assert asset.sniffed_mime == "text/plain"
    assert asset.declared_mime == "image/png"
    assert asset.original_name == "x.png"


def test_only_the_seller_submits_proof(client, auth, sessions, settings):
    rift = funded_rift(client, auth)
    assert submit(client, auth, rift["id"], fields=TRACKING, user=BUYER).status_code == 403
    assert submit(client, auth, rift["id"], fields=TRACKING, user=STRANGER).status_code == 404
    assert count(sessions, Proof) == 0


def test_proof_on_a_draft_rift_is_409_and_stores_nothing(client, auth, sessions, settings):
    from tests.support.flows import create_rift

    rift = create_rift(client, auth)
    result = submit(client, auth, rift["id"], fields=TRACKING, files=[NOTE])
    assert result.status_code == 409
    assert "FUNDED" in result.json["message"] or result.json["allowed"] is not None
    assert count(sessions, Proof) == 0 and count(sessions, Job) == 0
    assert blob_files(settings) == []


# The object store too: the file written before the refusal is deleted from the bucket.
@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)
def test_an_oversize_file_is_413_and_leaves_no_blob_or_row(client, auth, sessions, settings):
    rift = funded_rift(client, auth)
    too_big = b"a" * (settings.max_file_bytes + 1)
    result = submit(
        client, auth, rift["id"], fields=TRACKING, files=[NOTE, ("big.txt", too_big, "text/plain")]
    )
    assert result.status_code == 413
    assert "smaller" in result.json["message"]
    assert blob_files(settings) == []
    assert count(sessions, Proof) == 0 and count(sessions, Asset) == 0
    assert (
        client.simulate_get(f"/api/rifts/{rift['id']}", headers=auth(SELLER)).json["status"]
        == "FUNDED"
    )


def test_a_request_over_the_total_limit_is_refused_before_reading(client, auth, settings):
    rift = funded_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/proofs",
        body=b"x",
        headers={
            **auth(SELLER),
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(settings.max_request_bytes + 1),
        },
    )
    assert result.status_code == 413


# The object store too: the file written before the refusal is deleted from the bucket.
@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)
def test_a_disallowed_file_type_is_415_naming_the_allowed_ones(client, auth, sessions, settings):
    rift = funded_rift(client, auth)
    exe = b"MZ\x90\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode" + b"\x00" * 300
    result = submit(client, auth, rift["id"], files=[NOTE, ("setup.pdf", exe, "application/pdf")])
    assert result.status_code == 415
    assert "application/pdf" in result.json["message"]
    assert blob_files(settings) == []
    assert count(sessions, Asset) == 0


@pytest.mark.parametrize(("fields", "field"), [({}, None), ({"colour": "red"}, "colour")])
def test_empty_or_unknown_form_fields_are_422(client, auth, fields, field):
    rift = funded_rift(client, auth)
    result = submit(client, auth, rift["id"], fields=fields)
    assert result.status_code == 422
    assert result.json.get("field") == field


def test_json_instead_of_multipart_is_415(client, auth):
    rift = funded_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{rift['id']}/proofs", json=TRACKING, headers=auth(SELLER)
    )
    assert result.status_code == 415


def test_the_same_idempotency_key_gives_the_same_response_and_no_second_proof(
    client, auth, sessions, settings
):
    rift = funded_rift(client, auth)
    headers = {"Idempotency-Key": "order-4411-proof"}
    first = submit(client, auth, rift["id"], fields=TRACKING, files=[NOTE], headers=headers)
    again = submit(client, auth, rift["id"], fields=TRACKING, files=[NOTE], headers=headers)
    assert first.status_code == again.status_code == 202
    for key in ("proof_id", "verification_job_id", "asset_ids", "status_url"):
        assert first.json[key] == again.json[key]
    assert again.json["replayed"] is True
    assert count(sessions, Proof) == 1
    assert count(sessions, Job) == 2  # one verification, one scan
    assert len(blob_files(settings)) == 1


def test_an_idempotency_key_reused_for_other_content_is_422(client, auth, sessions):
    rift = funded_rift(client, auth)
    headers = {"Idempotency-Key": "k1"}
    assert submit(client, auth, rift["id"], fields=TRACKING, headers=headers).status_code == 202
    other = submit(
        client,
        auth,
        rift["id"],
        fields={"tracking_number": "9400111899223197428490"},
        headers=headers,
    )
    assert other.status_code == 422
    assert other.json["error"] == "idempotency_key_reused"
    assert count(sessions, Proof) == 1


def test_broker_down_at_submission_still_202_and_the_relay_dispatches_later(
    api_context, auth, sessions, redis_conn
):
    """The transactional outbox: nothing is lost when Redis is unreachable at submit time."""
    dead = replace(api_context.settings, redis_url="redis://127.0.0.1:1/0")
    down_ctx = replace(api_context, dispatcher=DramatiqDispatcher(build_broker(dead)))
    stats = RedisQueueStats(redis_conn, ["verification"])
    down = falcon.testing.TestClient(create_app(down_ctx, metrics=ApiMetrics(), queue_stats=stats))
    rift = funded_rift(down, auth)
    accepted = submit(down, auth, rift["id"], fields=TRACKING)
    assert accepted.status_code == 202
    job_id = accepted.json["verification_job_id"]
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.state, job.dispatched_at) == (JobState.PENDING, None)
    assert redis_conn.llen("dramatiq:verification") == 0

    # Broker back: the relay hands the job over, exactly once.
    sent = relay_outbox(sessions, api_context.dispatcher, utcnow, timedelta(0))
    assert sent == 1
    assert relay_outbox(sessions, api_context.dispatcher, utcnow, timedelta(0)) == 0
    with sessions() as session:
        assert session.get(Job, job_id).state is JobState.QUEUED
    assert redis_conn.llen("dramatiq:verification") == 1


def test_readiness_reports_a_broker_outage(api_context, redis_conn):
    ok = falcon.testing.TestClient(
        create_app(api_context, metrics=ApiMetrics(), queue_stats=RedisQueueStats(redis_conn, []))
    )
    assert ok.simulate_get("/readyz").json["checks"] == {
        "database": "ok",
        "broker": "ok",
        "blob_store": "ok",
    }
    import redis

    from actors.dispatch import RedisProbe

    broken = replace(
        api_context, broker=RedisProbe(redis.Redis(port=1, socket_connect_timeout=0.5))
    )
    down = falcon.testing.TestClient(
        create_app(broken, metrics=ApiMetrics(), queue_stats=RedisQueueStats(redis_conn, []))
    )
    result = down.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.json["checks"]["broker"] == "down"
    assert down.simulate_get("/healthz").status_code == 200
