"""Blob storage behind a small interface: streamed writes, hashed on the way in."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from service.domain.errors import PayloadTooLarge

if TYPE_CHECKING:
    from service.settings import Settings

SNIFF_HEAD_BYTES = 8192
TEMP_SUFFIX = ".partial"

log = logging.getLogger(__name__)


class BlobStoreUnavailable(Exception):
    """The blob store did not answer (down, unreachable, overloaded); try again later.

    Not a client's mistake: the API answers 503 with Retry-After, a job is retried.
    """


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size_bytes: int
    sha256: str
    head: bytes  # the first bytes, for type sniffing without another read


@dataclass(frozen=True)
class BlobInfo:
    key: str
    modified_at: datetime


def new_blob_key(now: datetime) -> str:
    """A fresh storage key; the month prefix keeps listings and manual cleanups bounded."""
    return f"{now:%Y/%m}/{uuid.uuid4().hex}"


class BlobIntake:
    """Count, hash and keep the head of an upload's chunks; past max_bytes is a 413.

    Every store feeds its upload through one of these, so the limit, the digest and the
    sniffing head mean the same whichever store holds the bytes.
    """

    def __init__(self, *, max_bytes: int, label: str) -> None:
        self.max_bytes = max_bytes
        self.label = label
        self.size_bytes = 0
        self._digest = hashlib.sha256()
        self._head = bytearray()

    def take(self, chunk: bytes) -> bytes:
        """Account for one chunk and hand it back for writing."""
        self.size_bytes += len(chunk)
        if self.size_bytes > self.max_bytes:
            raise PayloadTooLarge(
                f"{self.label} is larger than the {self.max_bytes} byte limit; "
                "upload a smaller file"
            )
        self._digest.update(chunk)
        if len(self._head) < SNIFF_HEAD_BYTES:
            self._head += chunk[: SNIFF_HEAD_BYTES - len(self._head)]
        return chunk

    def stored(self, key: str) -> StoredBlob:
        return StoredBlob(
            key=key,
            size_bytes=self.size_bytes,
            sha256=self._digest.hexdigest(),
            head=bytes(self._head),
        )


class BlobStore(Protocol):
    """Where proof files live; an S3-compatible store implements the same calls.

    local_path and open find a blob in quarantine too (workers must still read a file a
    scan has just quarantined); the API never serves blobs through either.
    """

    def write(self, chunks: Iterable[bytes], *, max_bytes: int, label: str) -> StoredBlob: ...

    def local_path(self, key: str) -> AbstractContextManager[Path]: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> bool: ...

    def quarantine(self, key: str) -> bool: ...

    def list_blobs(self) -> Iterator[BlobInfo]: ...

    def list_quarantined(self) -> Iterator[BlobInfo]: ...

    def delete_quarantined(self, key: str) -> bool: ...

    def ping(self) -> bool:
        """Answer readiness checks: can the store take a file right now?"""
        ...


def sync_directory(path: Path) -> None:
    """fsync a directory: the names created, renamed or removed in it reach the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directories(path: Path) -> list[Path]:
    """Create path and its missing parents; answer those this call created."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        # Another thread may create it first: theirs is as good, and both sync its parent.
        directory.mkdir(exist_ok=True)
    return missing


def _write_all(out: BinaryIO, data: bytes) -> None:
    # A raw write may take less than it was given (at a size limit, say); the next one
    # then raises.
    view = memoryview(data)
    while view:
        view = view[out.write(view) :]


def _unavailable(label: str, error: OSError) -> BlobStoreUnavailable:
    log.warning("blob store refused %s: %s", label, error)
    return BlobStoreUnavailable(f"the blob directory refused {label}: {error}")


@contextmanager
def _disk_refusals(label: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise _unavailable(label, error) from error


class LocalBlobStore:
    """Blobs as files under one directory; quarantine is a sibling nothing serves."""

    def __init__(self, root: Path, quarantine_root: Path) -> None:
        self.root = root
        self.quarantine_root = quarantine_root
        root.mkdir(parents=True, exist_ok=True)
        quarantine_root.mkdir(parents=True, exist_ok=True)
        # Resolved once: resolving costs a system call per path component.
        self._resolved = {root: root.resolve(), quarantine_root: quarantine_root.resolve()}

    def _path(self, key: str, root: Path | None = None) -> Path:
        base = root or self.root
        path = (base / key).resolve()
        resolved = self._resolved.get(base) or base.resolve()
        if resolved not in path.parents:
            raise ValueError(f"storage key {key!r} escapes the blob directory")
        return path

    def write(self, chunks: Iterable[bytes], *, max_bytes: int, label: str) -> StoredBlob:
        """Stream chunks to a new blob, hashing as they pass; over max_bytes is a 413.

        When this returns, the file and its name are on disk: the submission's COMMIT and
        its 202 come after, so a host crash cannot leave a stored proof naming a lost file.
        A disk that refuses (full, read-only, failing) is BlobStoreUnavailable, a 503.
        """
        key = new_blob_key(datetime.now(UTC))
        # A key of our own making (a date and a random id): nothing to resolve or check.
        final = self._resolved[self.root] / key
        temp = final.with_name(final.name + TEMP_SUFFIX)
        intake = BlobIntake(max_bytes=max_bytes, label=label)
        try:
            with _disk_refusals(label):
                created = _make_directories(final.parent)
                # Unbuffered: a refused write fails here, not again in a buffer's flush
                # at close. The chunks are large enough not to need a buffer.
                out = open(temp, "wb", buffering=0)  # noqa: SIM115 (closed below)
            try:
                # The chunks' own errors (a client gone mid-upload) are not the disk's.
                for chunk in chunks:
                    data = intake.take(chunk)
                    try:
                        _write_all(out, data)
                    except OSError as error:
                        raise _unavailable(label, error) from error
                with _disk_refusals(label):
                    # The bytes reach the disk before a name points at them.
                    os.fdatasync(out.fileno())
            finally:
                out.close()
            with _disk_refusals(label):
                # Rename last: a crash never leaves a half-written blob under a real key.
                os.replace(temp, final)
                # A rename is durable once its directory is, and a new directory once its
                # parent is.
                for directory in (final.parent, *(new.parent for new in created)):
                    sync_directory(directory)
        except BaseException:
            # Under either name: a refused directory sync comes after the rename, and the
            # caller, told nothing was saved, will not remove a file it was never given.
            temp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return intake.stored(key)

    def _readable_path(self, key: str) -> Path:
        # A scan may quarantine a blob while verification still has to read it, and a
        # redelivered scan may find its blob already moved: workers read it where it is.
        # Nothing serves blobs to clients, so this does not make quarantine reachable.
        path = self._path(key)
        if not path.exists():
            quarantined = self._path(key, self.quarantine_root)
            if quarantined.exists():
                return quarantined
        return path

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        yield self._readable_path(key)

    def open(self, key: str) -> BinaryIO:
        return open(self._readable_path(key), "rb")

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def quarantine(self, key: str) -> bool:
        source = self._path(key)
        target = self._path(key, self.quarantine_root)
        created = _make_directories(target.parent)
        try:
            shutil.move(source, target)
        except FileNotFoundError:
            # Moved already (a redelivered scan): synced again below, in case the first
            # attempt failed between its move and its syncs.
            if not target.exists():
                return False
        # Durable before the scan records INFECTED: after a crash the file is in quarantine,
        # where the record says it is.
        for directory in (target.parent, source.parent, *(new.parent for new in created)):
            sync_directory(directory)
        return True

    def ping(self) -> bool:
        return all(
            root.is_dir() and os.access(root, os.W_OK) for root in (self.root, self.quarantine_root)
        )

    def _list(self, root: Path) -> Iterator[BlobInfo]:
        # Half-written uploads (TEMP_SUFFIX) are listed too: no row ever names one, so the
        # retention sweep removes those a crashed upload left, once they are past its grace.
        for path in root.rglob("*"):
            if path.is_file():
                yield BlobInfo(
                    key=path.relative_to(root).as_posix(),
                    modified_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                )

    def list_blobs(self) -> Iterator[BlobInfo]:
        return self._list(self.root)

    def list_quarantined(self) -> Iterator[BlobInfo]:
        return self._list(self.quarantine_root)

    def delete_quarantined(self, key: str) -> bool:
        try:
            self._path(key, self.quarantine_root).unlink()
        except FileNotFoundError:
            return False
        return True


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The store BLOB_STORE selects: the local directory by default, else an S3 bucket."""
    if not settings.blob_store:
        return LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    # Imported here: hosts on the local store never load boto3.
    from service.blobs_s3 import s3_blob_store

    return s3_blob_store(settings)
