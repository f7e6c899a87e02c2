"""The last of a proof's jobs decides its verdict, also when the other commits while it waits.

The checks and the scans of one proof run at once, and whichever finishes last decides,
under the proof's lock. A job that waited for that lock must see what the job holding it
committed: had it read the proof's files as they were before its wait (a statement that
locks the proof and joins its assets does, under READ COMMITTED), the checks would see
the scan still pending, the scan had seen the checks not done, and neither would decide.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from service.blobs import LocalBlobStore
from service.db import transaction
from service.domain.clock import new_id, utcnow
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.domain.verification import check_proof
from service.inspection import RuleInspector
from service.models import Asset, AssetType, Proof, ScanStatus
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import wait_for

LOCK_WAIT_TIMEOUT_S = 10.0


def lock_waiters(engine: sa.Engine) -> int:
    """Sessions of this database waiting for a row lock (PostgreSQL)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_the_checks_waiting_for_the_lock_see_the_scan_committed_meanwhile_and_decide(
    client: Any, auth: Any, settings: Settings, sessions: Any, engine: sa.Engine
) -> None:
    # Given a submitted proof of one file (no workers run: the test plays both jobs)
    rift = funded_rift(client, auth)
    submitted = submit(
        client, auth, rift["id"], files=[("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")]
    )
    assert submitted.status_code == 202, submitted.text
    proof_id = submitted.json["proof_id"]
    inspector = RuleInspector(
        LocalBlobStore(settings.blob_dir, settings.quarantine_dir),
        LicenseKeyVault(settings.license_key_secret.encode()),
        settings.thresholds(),
    )
    rules = VerdictRules(settings.thresholds(), ReleasePolicy())
    outcome: dict[str, Any] = {}

    def verification_job() -> None:
        outcome["result"] = check_proof(
            sessions, proof_id, inspector, rules, clock=utcnow, ids=new_id
        )

    # And the scan holding the proof's lock, its CLEAN written but not yet committed (it
    # found the checks not done, so it does not decide)
    scan = transaction(sessions)
    session = scan.__enter__()
    try:
        session.execute(sa.select(Proof.id).where(Proof.id == proof_id).with_for_update())
        session.execute(
            sa.update(Asset)
            .where(Asset.proof_id == proof_id, Asset.type == AssetType.FILE)
            .values(scan_status=ScanStatus.CLEAN, scanned_at=utcnow())
        )

        # When the checks finish meanwhile and wait for the lock
        checks = threading.Thread(target=verification_job)
        checks.start()
        if engine.dialect.name == "postgresql":
            wait_for(lambda: lock_waiters(engine) >= 1, LOCK_WAIT_TIMEOUT_S, "checks to wait")
        else:
            time.sleep(1.0)  # SQLite: the checks wait at BEGIN IMMEDIATE
    finally:
        # And the scan commits
        scan.__exit__(None, None, None)
    checks.join(LOCK_WAIT_TIMEOUT_S)
    assert not checks.is_alive()

    # Then the checks, last to finish, decided the verdict
    _, verdict = outcome["result"]
    assert verdict is not None
    with sessions() as read:
        proof = read.get_one(Proof, proof_id)
        assert proof.verdict_at is not None
