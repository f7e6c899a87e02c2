"""Blobs in an S3-compatible object store: streamed multipart uploads, quarantine a prefix.

Objects live under `<prefix>/blobs/<key>`; quarantined ones move to `<prefix>/quarantine/<key>`,
which nothing serves (deny reads of it in the bucket policy, too). An object appears only
when its upload completes, so a failed upload never leaves a half-written blob under a key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as S3ConnectionError

from service.blobs import BlobInfo, BlobIntake, BlobStoreUnavailable, StoredBlob, new_blob_key
from service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 parts are at least 5 MiB (all but the last); one part buffer is all an upload holds.
PART_BYTES = 8 * 1024 * 1024
# Chunks copied from an object body to a scratch file for the rules that need a path.
COPY_CHUNK_BYTES = 1024 * 1024
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
SERVER_ERROR_STATUS = 500
BLOBS_FOLDER = "blobs"
QUARANTINE_FOLDER = "quarantine"


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix, from `s3://bucket/prefix`."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise SettingsError(f"BLOB_STORE must look like s3://bucket/prefix, got {url!r}")
        return cls(bucket=parts.netloc, prefix=parts.path.strip("/"))

    def folder(self, name: str) -> str:
        return f"{self.prefix}/{name}/" if self.prefix else f"{name}/"


def s3_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout_s: float = 30.0,
) -> S3Client:
    """A client for AWS or any S3-compatible endpoint (MinIO, Ceph, moto).

    Unset keys fall back to boto3's own chain (AWS_* variables, instance roles).
    """
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 4, "mode": "standard"},
        # Path-style addressing works on every S3-compatible server; AWS still accepts it.
        s3={"addressing_style": "path"} if endpoint_url else {},
        # Thread-pooled API and worker processes share one client per process.
        max_pool_connections=32,
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )


def s3_blob_store(settings: Settings) -> S3BlobStore:
    """The store BLOB_STORE=s3://... names, with the S3_* endpoint and credentials."""
    client = s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )
    return S3BlobStore(client, S3Location.parse(settings.blob_store), settings.scratch_dir)


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING_CODES


@contextmanager
def _answering(bucket: str) -> Iterator[None]:
    """Turn an object store that does not answer into BlobStoreUnavailable.

    botocore has already retried (the client's retry policy) by the time this sees an error.
    A missing key, a refused permission and other 4xx answers are not outages: they pass.
    """
    try:
        yield
    except (S3ConnectionError, HTTPClientError) as error:
        raise BlobStoreUnavailable(
            f"the object store for s3://{bucket} did not answer ({type(error).__name__})"
        ) from error
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status >= SERVER_ERROR_STATUS:
            raise BlobStoreUnavailable(
                f"the object store for s3://{bucket} answered {status}"
            ) from error
        raise


def _checked_key(key: str) -> str:
    # Keys come from new_blob_key, but a row edited by hand must not reach outside the prefix.
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or key.endswith("/"):
        raise ValueError(f"storage key {key!r} is not a blob key")
    return key


class S3BlobStore:
    """The BlobStore calls against one bucket and prefix; scratch_dir is this host's disk."""

    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        scratch_dir: Path,
        *,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.client = client
        self.location = location
        self.scratch_dir = scratch_dir
        self.part_bytes = part_bytes
        self._blobs = location.folder(BLOBS_FOLDER)
        self._quarantine = location.folder(QUARANTINE_FOLDER)
        scratch_dir.mkdir(parents=True, exist_ok=True)

    def _object(self, key: str, folder: str | None = None) -> str:
        return (folder or self._blobs) + _checked_key(key)

    def write(self, chunks: Iterable[bytes], *, max_bytes: int, label: str) -> StoredBlob:
        """Stream chunks into a new object, one bounded part at a time; over max_bytes is a 413."""
        key = new_blob_key(datetime.now(UTC))
        name = self._object(key)
        intake = BlobIntake(max_bytes=max_bytes, label=label)
        upload = _MultipartUpload(self.client, self.location.bucket, name)
        with _answering(self.location.bucket):
            self._stream_parts(chunks, intake, upload, name)
        return intake.stored(key)

    def _stream_parts(
        self, chunks: Iterable[bytes], intake: BlobIntake, upload: _MultipartUpload, name: str
    ) -> None:
        # The chunks of the part being filled; joined once when it is full (parts may run
        # a chunk over part_bytes, which S3 allows), so memory is about two parts at most.
        part: list[bytes] = []
        part_size = 0
        try:
            for chunk in chunks:
                part.append(intake.take(chunk))
                part_size += len(chunk)
                if part_size >= self.part_bytes:
                    upload.add_part(b"".join(part))
                    part, part_size = [], 0
            if upload.started:
                if part:
                    upload.add_part(b"".join(part))
                upload.complete()
            else:
                # Most proofs fit one part: one PUT, no multipart round trips.
                self.client.put_object(Bucket=self.location.bucket, Key=name, Body=b"".join(part))
        except BaseException:
            upload.abort()
            raise

    def _get(self, key: str) -> Any:
        # A scan may quarantine a blob while verification still has to read it, and a
        # redelivered scan may find its blob already moved: workers read it where it is.
        # Nothing serves blobs to clients, so this does not make quarantine reachable.
        for folder in (self._blobs, self._quarantine):
            try:
                with _answering(self.location.bucket):
                    return self.client.get_object(
                        Bucket=self.location.bucket, Key=self._object(key, folder)
                    )["Body"]
            except ClientError as error:
                if not _missing(error):
                    raise
        raise FileNotFoundError(f"no blob {key!r} in s3://{self.location.bucket}")

    def open(self, key: str) -> BinaryIO:
        """The object's body as a stream: clamd's INSTREAM reads it without a local copy."""
        return cast(BinaryIO, self._get(key))

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A scratch copy for the rules that seek (PDF xref, zip directory, image header).

        The copy is streamed to this host's disk and removed afterwards; a missing blob
        yields a path that does not exist, as the local store does, and the file rules
        report it as unreadable.
        """
        handle, name = tempfile.mkstemp(dir=self.scratch_dir, prefix="blob-")
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    body = self._get(key)
                except FileNotFoundError:
                    body = None
                if body is not None:
                    with contextlib.closing(body), _answering(self.location.bucket):
                        while chunk := body.read(COPY_CHUNK_BYTES):
                            out.write(chunk)
            if body is None:
                path.unlink()
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _exists(self, name: str) -> bool:
        try:
            with _answering(self.location.bucket):
                self.client.head_object(Bucket=self.location.bucket, Key=name)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def _delete(self, name: str) -> bool:
        # S3 deletes succeed whether or not the key exists; the head says which it was.
        existed = self._exists(name)
        if existed:
            with _answering(self.location.bucket):
                self.client.delete_object(Bucket=self.location.bucket, Key=name)
        return existed

    def delete(self, key: str) -> bool:
        return self._delete(self._object(key))

    def quarantine(self, key: str) -> bool:
        source = self._object(key)
        target = self._object(key, self._quarantine)
        bucket = self.location.bucket
        try:
            with _answering(bucket):
                # Server-side copy: the bytes never pass through this host (<= 5 GB).
                self.client.copy_object(
                    Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": source}
                )
        except ClientError as error:
            if _missing(error):
                return self._exists(target)
            raise
        with _answering(bucket):
            self.client.delete_object(Bucket=bucket, Key=source)
        return True

    def _list(self, folder: str) -> Iterator[BlobInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=folder
        )
        with _answering(self.location.bucket):
            for page in pages:
                for entry in page.get("Contents", []):
                    yield BlobInfo(
                        key=entry["Key"][len(folder) :],
                        modified_at=entry["LastModified"].astimezone(UTC),
                    )

    def list_blobs(self) -> Iterator[BlobInfo]:
        return self._list(self._blobs)

    def list_quarantined(self) -> Iterator[BlobInfo]:
        return self._list(self._quarantine)

    def delete_quarantined(self, key: str) -> bool:
        return self._delete(self._object(key, self._quarantine))

    def ping(self) -> bool:
        # HEAD on the bucket: answered, reachable and ours to use (a 403 or 404 is "down" too).
        try:
            self.client.head_bucket(Bucket=self.location.bucket)
        except (BotoCoreError, ClientError):
            return False
        return True


class _MultipartUpload:
    """One object's multipart upload, begun only when a second part is needed."""

    def __init__(self, client: S3Client, bucket: str, name: str) -> None:
        self.client = client
        self.bucket = bucket
        self.name = name
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    @property
    def started(self) -> bool:
        return self.upload_id is not None

    def add_part(self, data: bytes) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.name)
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        sent = self.client.upload_part(
            Bucket=self.bucket, Key=self.name, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def complete(self) -> None:
        assert self.upload_id is not None
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.name,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},  # type: ignore[typeddict-item]
        )
        self.upload_id = None

    def abort(self) -> None:
        """Drop the parts sent so far; S3 keeps (and bills) them until told to."""
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        # If even the abort fails, the bucket's AbortIncompleteMultipartUpload rule ends it.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.name, UploadId=upload_id
            )
