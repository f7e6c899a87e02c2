"""check_proof parses files with no database session open (SQLite's write lock stays free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.blobs import LocalBlobStore
from service.domain.clock import new_id, utcnow
from service.domain.inspector import AssetContent, InspectedAsset, ToCrossCheck
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.domain.verification import check_proof
from service.inspection import RuleInspector
from service.models import Asset
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit


@dataclass
class WatchedInspector:
    """The real inspector, noting how many connections were checked out while it examined."""

    inner: RuleInspector
    engine: sa.Engine
    checked_out_while_examining: list[int] = field(default_factory=list)
    examined: list[str] = field(default_factory=list)

    def examine(self, asset: AssetContent) -> InspectedAsset:
        self.checked_out_while_examining.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
        self.examined.append(asset.id)
        return self.inner.examine(asset)

    def cross_check(
        self, session: Session, rift_id: str, assets: Sequence[ToCrossCheck]
    ) -> list[InspectedAsset]:
        return self.inner.cross_check(session, rift_id, assets)


def test_files_are_examined_with_no_connection_checked_out(
    client, auth, settings: Settings, sessions, engine: sa.Engine
) -> None:
    # Given a submitted proof with a file and a text (no worker runs: we check it here)
    rift = funded_rift(client, auth)
    submitted = submit(
        client,
        auth,
        rift["id"],
        fields={"text": DELIVERY_NOTE},
        files=[("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")],
    )
    assert submitted.status_code == 202, submitted.text
    inspector = WatchedInspector(
        RuleInspector(
            LocalBlobStore(settings.blob_dir, settings.quarantine_dir),
            LicenseKeyVault(settings.license_key_secret.encode()),
            settings.thresholds(),
        ),
        engine,
    )
    rules = VerdictRules(settings.thresholds(), ReleasePolicy())

    # When the proof is checked
    result, _ = check_proof(
        sessions, submitted.json["proof_id"], inspector, rules, clock=utcnow, ids=new_id
    )

    # Then every asset was examined while no session held a connection
    assert sorted(inspector.examined) == sorted(submitted.json["asset_ids"])
    assert inspector.checked_out_while_examining == [0, 0]
    assert result["checked_assets"] == 2
    with sessions() as session:
        stored = session.scalars(sa.select(Asset).where(Asset.proof_id == result["proof_id"]))
        assert all(asset.checked_at is not None for asset in stored)
