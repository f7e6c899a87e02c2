"""The retention sweep against the S3 store: ages come from the objects' LastModified."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.blobs import blob_store_from_settings
from service.domain.clock import utcnow
from service.domain.retention import ORPHAN_GRACE, RetentionPolicy, sweep
from service.settings import Settings

POLICY = RetentionPolicy(job_records=timedelta(days=30), quarantine=timedelta(days=90))
MIB = 1024 * 1024


@pytest.mark.parametrize("blob_store", ["s3"], indirect=True)
def test_the_sweep_deletes_orphaned_objects_and_expired_quarantine_only_once_they_are_old(
    settings: Settings, sessions
):
    # Given an object no asset row names and a quarantined object, both just written
    store = blob_store_from_settings(settings)
    orphan = store.write([b"orphan" * 50], max_bytes=MIB, label="orphan").key
    infected = store.write([b"infected" * 50], max_bytes=MIB, label="infected").key
    assert store.quarantine(infected)

    # When the sweep runs now, then nothing is old enough to go
    young = sweep(sessions, store, POLICY, utcnow())
    assert (young.orphan_blobs_deleted, young.quarantine_deleted) == (0, 0)
    assert {b.key for b in store.list_blobs()} == {orphan}

    # When it runs past the orphan grace, the orphan goes and quarantine stays
    later = sweep(sessions, store, POLICY, utcnow() + 2 * ORPHAN_GRACE)
    assert (later.orphan_blobs_deleted, later.quarantine_deleted) == (1, 0)
    assert list(store.list_blobs()) == []
    assert {b.key for b in store.list_quarantined()} == {infected}

    # When it runs past quarantine retention, the quarantined object goes too
    expired = sweep(sessions, store, POLICY, utcnow() + POLICY.quarantine + timedelta(days=1))
    assert expired.quarantine_deleted == 1
    assert list(store.list_quarantined()) == []
