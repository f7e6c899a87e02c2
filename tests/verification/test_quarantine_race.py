"""A file the scan quarantines while the checks read it is still checked, or said to be quarantined.

The scan and the content checks run at once on different workers; the scan may move an
infected file to quarantine between the checks finding its path and reading it. Before,
the seller then read "the stored file could not be read: upload it again".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from service.blobs import LocalBlobStore
from service.domain.clock import new_id, utcnow
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.domain.verification import check_proof
from service.inspection import RuleInspector
from service.models import Asset
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit


class QuarantinedWhileRead(LocalBlobStore):
    """The local store, with the scan's quarantine landing just after a path is resolved."""

    def __init__(self, blob_dir: Path, quarantine_dir: Path, *, lose_it: bool) -> None:
        super().__init__(blob_dir, quarantine_dir)
        self.lose_it = lose_it
        self.looked_up = 0

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        with super().local_path(key) as path:
            self.looked_up += 1
            if self.looked_up == 1:
                self.quarantine(key)
                if self.lose_it:  # e.g. an object store's copy not yet visible
                    self._path(key, self.quarantine_root).unlink()
            yield path


def check_with(store: LocalBlobStore, settings: Settings, sessions, proof_id: str) -> dict:
    inspector = RuleInspector(
        store, LicenseKeyVault(settings.license_key_secret.encode()), settings.thresholds()
    )
    rules = VerdictRules(settings.thresholds(), ReleasePolicy())
    check_proof(sessions, proof_id, inspector, rules, clock=utcnow, ids=new_id)
    with sessions() as session:
        [asset] = session.scalars(sa.select(Asset).where(Asset.proof_id == proof_id))
        return {"codes": {issue["code"] for issue in asset.issues}, "mime": asset.sniffed_mime}


def submitted_file(client, auth) -> tuple[str, str]:
    rift = funded_rift(client, auth)
    accepted = submit(
        client, auth, rift["id"], files=[("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")]
    )
    assert accepted.status_code == 202, accepted.text
    return accepted.json["proof_id"], accepted.json["asset_ids"][0]


def test_a_file_moved_to_quarantine_mid_check_is_read_from_there(
    client, auth, settings: Settings, sessions
) -> None:
    # Given a stored file, and a scan that quarantines it just as the checks find it
    proof_id, _ = submitted_file(client, auth)
    store = QuarantinedWhileRead(settings.blob_dir, settings.quarantine_dir, lose_it=False)

    # When the proof's content is checked
    found = check_with(store, settings, sessions, proof_id)

    # Then the file was read (from quarantine), not reported lost
    assert "file.missing" not in found["codes"]
    assert found["mime"] == "text/plain"
    assert store.looked_up == 2


def test_a_quarantined_file_that_cannot_be_read_says_so_not_upload_it_again(
    client, auth, settings: Settings, sessions
) -> None:
    # Given a file the scan quarantined (the row says so) and that cannot be read any more
    proof_id, asset_id = submitted_file(client, auth)
    with sessions.begin() as session:
        session.get_one(Asset, asset_id).quarantined_at = utcnow()
    store = QuarantinedWhileRead(settings.blob_dir, settings.quarantine_dir, lose_it=True)

    # When the proof's content is checked
    found = check_with(store, settings, sessions, proof_id)

    # Then the asset says it was quarantined before it could be checked
    assert found["codes"] == {"file.quarantined"}
