"""A file part of which the scanner skipped is never CLEAN, whichever of check and scan is last."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import sqlalchemy as sa

from service.blobs import LocalBlobStore
from service.domain.clock import new_id, utcnow
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.domain.verification import check_proof, record_scan
from service.inspection import RuleInspector
from service.models import Asset, ScanStatus
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.support.flows import funded_rift, submit
from tests.verification.proof_fixtures import build_zip

MIB = 1024 * 1024


@pytest.mark.parametrize("scan_first", [True, False], ids=["scan-first", "check-first"])
def test_a_clean_scan_of_a_zip_with_an_unscanned_member_is_an_error(
    client, auth, settings: Settings, sessions, scan_first: bool
) -> None:
    # Given a zip whose member is over what the scanner examines (here 1 MiB)
    thresholds = replace(settings.thresholds(), scanner_max_file_bytes=MIB)
    archive = build_zip({"notes.txt": os.urandom(MIB).hex().encode()})
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], files=[("files.zip", archive, "application/zip")])
    assert submitted.status_code == 202, submitted.text
    [file_id] = submitted.json["asset_ids"]
    inspector = RuleInspector(
        LocalBlobStore(settings.blob_dir, settings.quarantine_dir),
        LicenseKeyVault(settings.license_key_secret.encode()),
        thresholds,
    )
    rules = VerdictRules(thresholds, ReleasePolicy())

    def check() -> None:
        check_proof(
            sessions, submitted.json["proof_id"], inspector, rules, clock=utcnow, ids=new_id
        )

    def clean_scan() -> None:
        record_scan(
            sessions,
            file_id,
            ScanStatus.CLEAN,
            None,
            rules,
            on_infected=lambda _asset: pytest.fail("nothing is infected"),
            clock=utcnow,
            ids=new_id,
        )

    # When clamd says CLEAN (it skips such members in silence), before or after the check
    for step in (clean_scan, check) if scan_first else (check, clean_scan):
        step()

    # Then the file is ERROR and the proof goes to review
    with sessions() as session:
        asset = session.get_one(Asset, file_id)
        assert asset.scan_status is ScanStatus.ERROR
        assert "zip.member_unscannable" in {issue["code"] for issue in asset.issues}
        proof_reviewed = session.scalar(
            sa.text("SELECT route_to_review FROM proofs WHERE id = :id"),
            {"id": submitted.json["proof_id"]},
        )
    assert proof_reviewed
