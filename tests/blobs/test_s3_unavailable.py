"""An object store that does not answer is an outage, never a missing file or a 500."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.blobs import BlobStoreUnavailable, blob_store_from_settings
from service.blobs_s3 import S3BlobStore, S3Location
from service.models import Asset, Proof
from service.settings import Settings
from tests.support.api import api_test_client, real_api_context
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.object_store import RunningS3
from tests.support.processes import free_port

MIB = 1024 * 1024


@pytest.fixture
def unanswered_store(s3_server: RunningS3, tmp_path: Path) -> S3BlobStore:
    """A store whose endpoint nothing listens on (its client still retries, as in production)."""
    client = replace(s3_server, endpoint_url=f"http://127.0.0.1:{free_port()}").client()
    return S3BlobStore(client, S3Location("rift-nowhere", "rift"), tmp_path / "scratch")


def test_every_call_on_an_unreachable_store_says_it_is_unavailable(
    unanswered_store: S3BlobStore,
):
    store = unanswered_store
    with pytest.raises(BlobStoreUnavailable, match="did not answer"):
        store.write([b"x" * 200], max_bytes=MIB, label="a")
    # Not FileNotFoundError: a scan must retry an outage, not mark its file as gone.
    with pytest.raises(BlobStoreUnavailable):
        store.open("2020/01/some-key")
    with pytest.raises(BlobStoreUnavailable):
        store.delete("2020/01/some-key")
    with pytest.raises(BlobStoreUnavailable):
        store.quarantine("2020/01/some-key")
    with pytest.raises(BlobStoreUnavailable):
        list(store.list_blobs())


@pytest.mark.parametrize("blob_store", ["s3"], indirect=True)
def test_a_submission_while_the_object_store_is_down_is_503_and_leaves_no_row(
    settings: Settings, sessions, auth
):
    up = api_test_client(real_api_context(settings, sessions))
    rift = funded_rift(up, auth)
    down_settings = replace(settings, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    down = api_test_client(real_api_context(down_settings, sessions))

    result = submit(
        down, auth, rift["id"], files=[("note.txt", DELIVERY_NOTE.encode(), "text/plain")]
    )

    assert result.status_code == 503, result.text
    assert result.json["error"] == "blob_store_unavailable"
    assert "send the same request again" in result.json["message"]
    assert result.headers["Retry-After"].isdigit()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Proof)) == 0
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert list(blob_store_from_settings(settings).list_blobs()) == []
    # And once the store answers again, the same submission is accepted.
    again = submit(up, auth, rift["id"], files=[("note.txt", DELIVERY_NOTE.encode(), "text/plain")])
    assert again.status_code == 202, again.text


@pytest.mark.parametrize("blob_store", ["s3"], indirect=True)
def test_readiness_says_the_object_store_is_the_dependency_that_is_down(
    settings: Settings, sessions
):
    up = api_test_client(real_api_context(settings, sessions))
    assert up.simulate_get("/readyz").json["checks"]["blob_store"] == "ok"
    down_settings = replace(settings, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    down = api_test_client(real_api_context(down_settings, sessions))

    result = down.simulate_get("/readyz")

    assert result.status_code == 503
    assert result.json["checks"] == {"database": "ok", "broker": "ok", "blob_store": "down"}
