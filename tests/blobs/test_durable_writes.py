"""A 202 means the files are on disk: synced before the proof's COMMIT and its answer.

A host crash keeps what was fsynced and may lose the rest, so durability is an order of
system calls, read here from the real API process with strace: each file's data synced,
then its rename, then its directory synced, then the COMMIT, then the 202. A disk that
refuses a write (full, read-only, over a size limit) answers 503 and leaves nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.blobs import TEMP_SUFFIX
from service.db import SessionFactory
from service.models import Asset, Proof
from service.settings import Settings
from tests.support.flows import DELIVERY_NOTE, SELLER, funded_rift, multipart
from tests.support.gunicorn import GunicornApi, start_gunicorn_api
from tests.support.processes import REPO_ROOT, VENV_BIN, child_pids
from tests.support.syscalls import Trace, strace_argv, traced

NOTE = DELIVERY_NOTE.encode()
# Under the limit below: the session's SQLite file and the metrics files stay writable.
FILE_SIZE_LIMIT = 16 * 1024 * 1024
# Just over: the body left unread when the API answers fits in the sockets' buffers.
OVER_THE_LIMIT = FILE_SIZE_LIMIT + 4096
HTTP_TIMEOUT_S = 30.0


def post_proof(
    api: GunicornApi, rift_id: str, token: dict[str, str], files: list[tuple[str, bytes, str]]
) -> tuple[int, dict[str, object], dict[str, str]]:
    body, headers = multipart({"tracking_number": "1Z999AA10123456784"}, files)
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=HTTP_TIMEOUT_S)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            # An answer sent before the whole body was read is still there to read.
            connection.request("POST", f"/api/rifts/{rift_id}/proofs", body, {**token, **headers})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, json.loads(response.read()), headers
    finally:
        connection.close()


def stored_keys(sessions: SessionFactory) -> list[str]:
    with sessions() as session:
        return [key for key in session.scalars(sa.select(Asset.storage_key)) if key]


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def assert_durable_before(trace: Trace, blob_root: Path, key: str, answered: int) -> None:
    """The file's data, its name and its directory all synced before position answered."""
    final = str(blob_root.resolve() / key)
    temp = final + TEMP_SUFFIX
    data = trace.index(
        lambda c: c.name in ("fdatasync", "fsync") and c.fd_path == temp and c.result == 0,
        f"syncing {temp}",
    )
    renamed = trace.index(
        lambda c: c.name.startswith("rename") and c.paths[-2:] == [temp, final],
        f"renaming {temp} to {final}",
    )
    directory = trace.index(
        lambda c: c.name == "fsync" and c.fd_path == str(Path(final).parent),
        f"syncing {Path(final).parent} after the rename",
        after=renamed,
    )
    assert data < renamed < directory < answered, trace.summary()


def test_a_202_comes_after_its_files_and_their_names_are_synced(
    settings: Settings, sessions: SessionFactory, client, auth, tmp_path: Path
) -> None:
    # Given the API under gunicorn, traced from its worker, and a funded rift
    rift = funded_rift(client, auth)
    api = start_gunicorn_api(settings, tmp_path)
    try:
        (worker,) = child_pids(api.process.pid)
        # When the seller submits two files
        with traced(worker, tmp_path / "api.strace") as trace:
            status, body, _ = post_proof(
                api,
                rift["id"],
                auth(SELLER),
                [("note.txt", NOTE, "text/plain"), ("notes-2.txt", NOTE * 2, "text/plain")],
            )
    finally:
        api.process.stop()
    assert status == 202, body
    # Then the answer left after both files were synced under their names
    answered = trace.index(
        lambda c: c.name == "sendto" and "HTTP/1.1 202" in c.args, "sending the 202"
    )
    if settings.database_url.startswith("postgresql"):
        committed = trace.index(
            lambda c: c.name == "sendto" and "COMMIT" in c.args, "sending the COMMIT"
        )
        assert committed < answered
    else:
        committed = answered  # SQLite commits in-process, by the file's own writes
    keys = stored_keys(sessions)
    assert len(keys) == 2
    for key in keys:
        assert_durable_before(trace, settings.blob_dir, key, committed)


def test_a_disk_that_refuses_a_file_answers_503_and_keeps_nothing(
    settings: Settings, sessions: SessionFactory, client, auth, tmp_path: Path
) -> None:
    # Given the API under gunicorn whose worker may write no file over 16 MiB (the kernel
    # answers EFBIG, as it answers ENOSPC on a full disk)
    rift = funded_rift(client, auth)
    settings = replace(
        settings, max_file_bytes=4 * FILE_SIZE_LIMIT, max_request_bytes=4 * FILE_SIZE_LIMIT
    )
    api = start_gunicorn_api(settings, tmp_path)
    try:
        (worker,) = child_pids(api.process.pid)
        _, hard = resource.prlimit(worker, resource.RLIMIT_FSIZE)
        resource.prlimit(worker, resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, hard))
        files = [("note.txt", NOTE, "text/plain"), ("big.txt", b"x" * OVER_THE_LIMIT, "text/plain")]
        # When the seller submits a small file, then one the disk refuses
        status, body, headers = post_proof(api, rift["id"], auth(SELLER), files)
        # Then the answer is a 503 that says to send it again, and nothing is left behind:
        # not the first file, not the part of the second, not a proof
        assert status == 503, body
        assert body["error"] == "blob_store_unavailable"
        assert "nothing was saved" in str(body["message"])
        assert int(headers["retry-after"]) > 0
        assert files_under(settings.blob_dir) == []
        with sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Proof)) == 0
        # And the operator's log says what the disk said
        assert "blob store refused file 'big.txt'" in api.process.output()
        assert "File too large" in api.process.output()
        # When the disk takes files again, the same request is accepted, once
        resource.prlimit(worker, resource.RLIMIT_FSIZE, (hard, hard))
        status, body, _ = post_proof(api, rift["id"], auth(SELLER), files)
    finally:
        api.process.stop()
    assert status == 202, body
    assert len(files_under(settings.blob_dir)) == 2
    assert sorted(
        p.relative_to(settings.blob_dir).as_posix() for p in files_under(settings.blob_dir)
    ) == sorted(stored_keys(sessions))


@pytest.mark.parametrize("failing", ["fdatasync", "fsync"])
def test_a_disk_that_cannot_sync_answers_503_and_keeps_nothing(
    failing: str, settings: Settings, sessions: SessionFactory, client, auth, tmp_path: Path
) -> None:
    # Given the API under gunicorn on a disk whose file syncs (fdatasync) or directory
    # syncs (fsync, after the rename) fail with EIO
    rift = funded_rift(client, auth)
    api = start_gunicorn_api(settings, tmp_path)
    try:
        (worker,) = child_pids(api.process.pid)
        with traced(worker, tmp_path / "api.strace", failing=failing):
            # When the seller submits two files
            status, body, _ = post_proof(
                api,
                rift["id"],
                auth(SELLER),
                [("note.txt", NOTE, "text/plain"), ("notes-2.txt", NOTE * 2, "text/plain")],
            )
        output = api.process.output()
    finally:
        api.process.stop()
    # Then the answer is a 503, and no file is left under either name, nor a proof
    assert status == 503, body
    assert body["error"] == "blob_store_unavailable"
    assert files_under(settings.blob_dir) == []
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Proof)) == 0
    assert "blob store refused file 'note.txt'" in output
    assert "Input/output error" in output


QUARANTINE_SCRIPT = """
import sys
from pathlib import Path
from service.blobs import LocalBlobStore
store = LocalBlobStore(Path(sys.argv[1]), Path(sys.argv[2]))
blob = store.write([b"EICAR-like bytes"], max_bytes=1024, label="file 'x'")
assert store.quarantine(blob.key)
assert store.quarantine(blob.key)  # redelivered: moved already
print(blob.key)
"""


def test_new_directories_and_a_quarantine_move_are_synced_even_when_redelivered(
    tmp_path: Path,
) -> None:
    # Given a store whose month directories do not exist yet
    blobs, quarantine = tmp_path / "blobs", tmp_path / "quarantine"
    log = tmp_path / "store.strace"
    # When a process writes a file there and quarantines it
    run = subprocess.run(
        strace_argv(
            log, str(VENV_BIN / "python"), "-c", QUARANTINE_SCRIPT, str(blobs), str(quarantine)
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    key = run.stdout.strip()
    trace = Trace(log)
    calls = trace.read()
    synced = [c.fd_path for c in calls if c.name == "fsync"]
    year, month = key.split("/")[:2]
    root, qroot = blobs.resolve(), quarantine.resolve()
    # Then every directory the write created is synced in its parent, and the move is
    # synced on both sides
    for directory in (
        root / year / month,
        root / year,
        root,
        qroot / year / month,
        qroot / year,
        qroot,
    ):
        assert str(directory) in synced, f"{directory} never synced:\n{trace.summary()}"
    moved = trace.index(
        lambda c: c.name.startswith("rename") and c.paths[-1:] == [str(qroot / key)],
        "moving the file into quarantine",
    )
    # (twice: a redelivered scan that finds the file moved syncs again, in case the first
    # attempt failed between its move and its syncs)
    assert [c.fd_path for c in calls[moved:] if c.name == "fsync"].count(
        str(qroot / year / month)
    ) == 2, trace.summary()
