"""The BlobStore contract, pinned on both stores: the local directory and a real S3 server."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.blobs import SNIFF_HEAD_BYTES, BlobStore, LocalBlobStore
from service.blobs_s3 import S3BlobStore, S3Location
from service.domain.errors import PayloadTooLarge
from tests.support.object_store import RunningS3

MIB = 1024 * 1024
# S3's smallest allowed part, so multipart uploads are exercised with modest files.
S3_PART_BYTES = 5 * MIB
CHUNK_BYTES = 64 * 1024


def chunks_of(data: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def pseudo_random(n: int, seed: int = 1) -> bytes:
    # Incompressible and cheap: sha256 in counter mode.
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:n])


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs", tmp_path / "quarantine")
    s3: RunningS3 = request.getfixturevalue("s3_server")
    return S3BlobStore(
        s3.client(),
        S3Location(bucket=s3.new_bucket(), prefix="rift"),
        tmp_path / "scratch",
        part_bytes=S3_PART_BYTES,
    )


def keys(store: BlobStore) -> set[str]:
    return {b.key for b in store.list_blobs()}


def quarantined(store: BlobStore) -> set[str]:
    return {b.key for b in store.list_quarantined()}


def read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def open_uploads(store: BlobStore) -> list[object]:
    """Multipart uploads begun and never completed or aborted (S3 bills them)."""
    if not isinstance(store, S3BlobStore):
        return []
    listed = store.client.list_multipart_uploads(Bucket=store.location.bucket)
    return list(listed.get("Uploads", []))


def test_a_written_blob_reads_back_with_its_size_digest_and_head(store: BlobStore):
    data = pseudo_random(3 * SNIFF_HEAD_BYTES)

    blob = store.write(chunks_of(data, 1000), max_bytes=MIB, label="proof.bin")

    assert blob.size_bytes == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.head == data[:SNIFF_HEAD_BYTES]
    assert keys(store) == {blob.key}
    assert read(store, blob.key) == data
    with store.local_path(blob.key) as path:
        assert path.read_bytes() == data


def test_a_blob_larger_than_one_part_streams_in_bounded_memory(store: BlobStore):
    data = pseudo_random(8 * S3_PART_BYTES + 12345)
    tracemalloc.start()
    try:
        blob = store.write(chunks_of(data), max_bytes=len(data), label="big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size_bytes == len(data)
    # A part being filled and the one being sent, never the whole 40 MiB file.
    assert peak < 3 * S3_PART_BYTES, f"peak {peak / MIB:.1f} MiB while writing"
    assert read(store, blob.key) == data
    assert open_uploads(store) == []


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing_behind(store: BlobStore):
    data = pseudo_random(2 * S3_PART_BYTES + 1)

    with pytest.raises(PayloadTooLarge, match=r"big\.bin is larger than the"):
        store.write(chunks_of(data), max_bytes=2 * S3_PART_BYTES, label="big.bin")

    assert keys(store) == set()
    assert open_uploads(store) == []


def test_an_upload_that_fails_mid_stream_leaves_nothing_behind(store: BlobStore):
    class ClientWentAway(Exception):
        pass

    def stream() -> Iterator[bytes]:
        yield from chunks_of(pseudo_random(S3_PART_BYTES + MIB))
        raise ClientWentAway

    with pytest.raises(ClientWentAway):
        store.write(stream(), max_bytes=100 * MIB, label="cut.bin")

    assert keys(store) == set()
    assert open_uploads(store) == []


def test_deletes_are_idempotent_and_say_whether_anything_was_there(store: BlobStore):
    key = store.write([b"x" * 200], max_bytes=MIB, label="a").key

    assert store.delete(key) is True
    assert store.delete(key) is False
    assert keys(store) == set()
    with pytest.raises(FileNotFoundError):
        store.open(key)


def test_quarantine_moves_a_blob_out_of_the_listing_where_workers_can_still_read_it(
    store: BlobStore,
):
    key = store.write([b"infected?" * 30], max_bytes=MIB, label="a").key
    kept = store.write([b"clean" * 40], max_bytes=MIB, label="b").key

    assert store.quarantine(key) is True
    # A redelivered scan quarantines again: still true, still one copy.
    assert store.quarantine(key) is True

    assert keys(store) == {kept}
    assert quarantined(store) == {key}
    assert read(store, key) == b"infected?" * 30
    with store.local_path(key) as path:
        assert path.read_bytes() == b"infected?" * 30
    # Cleanup's delete does not reach into quarantine; only retention's does.
    assert store.delete(key) is False
    assert store.delete_quarantined(key) is True
    assert store.delete_quarantined(key) is False
    assert quarantined(store) == set()


def test_a_missing_blob_cannot_be_opened_quarantined_or_found_on_disk(store: BlobStore):
    assert store.quarantine("2020/01/never-written") is False
    with pytest.raises(FileNotFoundError):
        store.open("2020/01/never-written")
    with store.local_path("2020/01/never-written") as path:
        assert not path.exists()


def test_listings_give_each_blob_its_modification_time(store: BlobStore):
    before = datetime.now(UTC) - timedelta(seconds=5)
    key = store.write([b"y" * 300], max_bytes=MIB, label="a").key

    [info] = store.list_blobs()

    assert info.key == key
    assert before <= info.modified_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert info.modified_at.tzinfo is not None


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "2020/../../x"])
def test_a_key_that_escapes_the_store_is_refused(store: BlobStore, key: str):
    with pytest.raises(ValueError, match="key"):
        store.delete(key)


def test_the_s3_store_leaves_no_scratch_copies_behind(s3_server: RunningS3, tmp_path: Path):
    scratch = tmp_path / "scratch"
    store = S3BlobStore(s3_server.client(), S3Location(s3_server.new_bucket(), ""), scratch)
    key = store.write([b"z" * 500], max_bytes=MIB, label="a").key

    with store.local_path(key) as path:
        assert path.parent == scratch
        assert path.stat().st_size == 500

    assert os.listdir(scratch) == []
