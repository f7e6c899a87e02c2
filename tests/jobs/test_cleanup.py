"""Closing a deal deletes its stored proof in the background; tombstones stay for audit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import select

from service.blobs import BlobInfo, BlobStore, LocalBlobStore, StoredBlob
from service.db import transaction
from service.domain.cleanup import clean_up_rift
from service.domain.clock import new_id, utcnow
from service.domain.jobs import dispatch_jobs, new_job
from service.domain.queues import CLEAN_UP_RIFT
from service.domain.users import Role
from service.models import Asset, Job
from service.settings import Settings
from tests.jobs.conftest import (
    EICAR,
    blob_files,
    events,
    quarantined_keys,
    status,
    stored_keys,
    wait_for_job,
    wait_for_verdict,
)
from tests.support.brokers import BROKERS
from tests.support.flows import BUYER, DELIVERY_NOTE, OPERATOR, funded_rift, submit

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("broker", BROKERS, indirect=True)]


def note(name: str) -> tuple[str, bytes, str]:
    return (name, f"{name}\n{DELIVERY_NOTE}".encode(), "text/plain")


def cleanup_job_ids(sessions, rift_id: str) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Job.id)
                .where(Job.rift_id == rift_id, Job.actor_name == CLEAN_UP_RIFT.actor_name)
                .order_by(Job.created_at)
            )
        )


def proof_under_review(client, auth, files) -> tuple[dict, dict]:
    """A rift whose proof the workers verified and sent to review (manual review required)."""
    rift = funded_rift(client, auth, requires_manual_review=True)
    submitted = submit(client, auth, rift["id"], files=files, fields={"text": DELIVERY_NOTE})
    assert submitted.status_code == 202, submitted.text
    verdict = wait_for_verdict(client, auth, rift["id"])
    assert verdict["rift_status"] == "UNDER_REVIEW"
    return rift, submitted.json


def move(client, auth, rift_id: str, to: str, user: str = OPERATOR) -> dict:
    role = Role.ADMIN if user == OPERATOR else Role.USER
    moved = client.simulate_post(
        f"/api/rifts/{rift_id}/transitions", json={"to": to}, headers=auth(user, role)
    )
    assert moved.status_code == 200, moved.text
    return dict(moved.json)


def run_cleanup_again(sessions, api_context, rift_id: str) -> str:
    """Dispatch one more cleanup job for the rift, as a redelivery or an operator would."""
    with transaction(sessions) as session:
        job = new_job(
            session, CLEAN_UP_RIFT, subject_id=rift_id, rift_id=rift_id, now=utcnow(), ids=new_id
        )
    dispatch_jobs(sessions, api_context.dispatcher, [job], utcnow)
    return job.id


@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)
def test_a_refund_deletes_the_rifts_blobs_keeps_tombstones_and_a_second_run_deletes_nothing(
    client, auth, settings: Settings, sessions, api_context, start_worker
):
    start_worker()
    rift, submitted = proof_under_review(
        client, auth, [note("a.txt"), note("b.txt"), ("eicar.txt", EICAR, "text/plain")]
    )
    assert len(stored_keys(settings)) == 2
    [quarantined] = quarantined_keys(settings)

    move(client, auth, rift["id"], "REFUNDED")

    [job_id] = cleanup_job_ids(sessions, rift["id"])
    job = wait_for_job(client, auth, job_id)
    assert job["state"] == "SUCCEEDED"
    assert job["result"] == {"rift_id": rift["id"], "assets_deleted": 4, "blobs_deleted": 2}
    assert stored_keys(settings) == set()
    # The infected file stays in quarantine for its retention; the sweep removes it later.
    assert quarantined_keys(settings) == {quarantined}
    tombstones = status(client, auth, rift["id"])["result"]["assets"]
    assert sorted(a["asset_id"] for a in tombstones) == sorted(submitted["asset_ids"])
    assert all(a["deleted"] for a in tombstones)
    with sessions() as session:
        rows = session.scalars(select(Asset).where(Asset.rift_id == rift["id"])).all()
        assert all(r.deleted_at is not None for r in rows)
        assert all(r.value_text is None for r in rows), "the text proof's content is dropped"
        assert all(r.sha256 for r in rows if r.type.value == "FILE"), "hashes kept for reuse"
    assert [e["kind"] for e in events(client, auth, rift["id"])].count("assets_deleted") == 1

    again = wait_for_job(client, auth, run_cleanup_again(sessions, api_context, rift["id"]))

    assert again["state"] == "SUCCEEDED"
    assert again["result"] == {"rift_id": rift["id"], "assets_deleted": 0, "blobs_deleted": 0}
    assert [e["kind"] for e in events(client, auth, rift["id"])].count("assets_deleted") == 1


def test_a_cancel_dispatches_cleanup_to_its_own_pool_which_finishes_it(
    client, auth, sessions, start_worker
):
    # The transition table allows CANCELED only from DRAFT and FUNDED, before any proof.
    rift = funded_rift(client, auth)
    move(client, auth, rift["id"], "CANCELED", user=BUYER)
    [job_id] = cleanup_job_ids(sessions, rift["id"])
    assert wait_for_job(client, auth, job_id, {"QUEUED"})["queue"] == "cleanup"

    start_worker(["cleanup"])

    job = wait_for_job(client, auth, job_id)
    assert job["state"] == "SUCCEEDED"
    assert job["result"] == {"rift_id": rift["id"], "assets_deleted": 0, "blobs_deleted": 0}


class CrashAfterFirstDelete:
    """A blob store that dies right after its first delete, before the row is marked."""

    def __init__(self, inner: LocalBlobStore) -> None:
        self.inner = inner
        self.deleted: list[str] = []

    def delete(self, key: str) -> bool:
        if self.deleted:
            pytest.fail("the crashed run deleted a second blob")
        self.deleted.append(key)
        assert self.inner.delete(key)
        raise ConnectionError("worker lost its storage mid-cleanup")

    def write(self, chunks: Iterable[bytes], *, max_bytes: int, label: str) -> StoredBlob:
        return self.inner.write(chunks, max_bytes=max_bytes, label=label)

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        return self.inner.local_path(key)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def quarantine(self, key: str) -> bool:
        return self.inner.quarantine(key)

    def list_blobs(self) -> Iterator[BlobInfo]:
        return self.inner.list_blobs()

    def list_quarantined(self) -> Iterator[BlobInfo]:
        return self.inner.list_quarantined()

    def delete_quarantined(self, key: str) -> bool:
        return self.inner.delete_quarantined(key)


def test_a_cleanup_interrupted_halfway_is_finished_by_the_job_without_deleting_twice(
    client, auth, settings: Settings, sessions, start_worker
):
    start_worker(["verification", "scan"])
    rift, submitted = proof_under_review(
        client, auth, [note("a.txt"), note("b.txt"), note("c.txt")]
    )
    move(client, auth, rift["id"], "REFUNDED")  # the cleanup job waits: no cleanup pool yet
    [job_id] = cleanup_job_ids(sessions, rift["id"])

    # Given a cleanup run that crashed between deleting a blob and marking its row.
    crashing = CrashAfterFirstDelete(LocalBlobStore(settings.blob_dir, settings.quarantine_dir))
    store: BlobStore = crashing
    with pytest.raises(ConnectionError):
        clean_up_rift(sessions, store, rift["id"], utcnow)
    [gone] = crashing.deleted
    assert len(blob_files(settings.blob_dir)) == 2
    with sessions() as session:
        assert (
            session.scalars(
                select(Asset.storage_key).where(
                    Asset.rift_id == rift["id"], Asset.deleted_at.is_(None)
                )
            )
            .all()
            .count(gone)
            == 1
        ), "the crash came before the row was marked"

    # When the real cleanup job runs, it finishes the work.
    start_worker(["cleanup"])
    job = wait_for_job(client, auth, job_id)

    assert job["state"] == "SUCCEEDED"
    # All four rows marked, only the two remaining blobs deleted: nothing deleted twice.
    assert job["result"] == {"rift_id": rift["id"], "assets_deleted": 4, "blobs_deleted": 2}
    assert blob_files(settings.blob_dir) == set()
    assets = status(client, auth, rift["id"])["result"]["assets"]
    assert len(assets) == len(submitted["asset_ids"]) == 4
    assert all(a["deleted"] for a in assets)
