"""5. Upload streaming: peak RSS of an API worker for a 50 MB vs a 1 MB file; sha256 speed.

One gunicorn worker (so the worker that served the upload is the one measured). Before
each upload its peak RSS (VmHWM) is reset to its current RSS, so each figure is what that
one request raised it to. The sha256 throughput of the upload path is the blob store's
streaming write (hash while writing, in the API's chunk size) over the same bytes that
`sha256sum` reads from a file in the page cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import dataclass

from bench.client import SELLER, Api, bearer, funded_rifts, incompressible_text
from bench.harness import BenchRun, Figure, Spread, ratios, reset_rss_peak, rss_peak_kib
from service.api.resources.proofs import UPLOAD_CHUNK_BYTES
from service.blobs import LocalBlobStore
from service.multipart import encode_multipart

MIB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    small_bytes: int = 1 * MIB
    large_bytes: int = 50 * MIB
    rounds: int = 3


def _current_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _upload(api: Api, rift_id: str, body: bytes, content_type: str) -> float:
    started = time.perf_counter()
    status, raw = api.call(
        "POST",
        f"/api/rifts/{rift_id}/proofs",
        body,
        {**bearer(SELLER), "Content-Type": content_type},
    )
    if status != 202:
        raise RuntimeError(f"upload answered {status}: {raw[:300]!r}")
    return time.perf_counter() - started


def _sha256sum_mib_s(path: str, size: int) -> float:
    started = time.perf_counter()
    subprocess.run(["sha256sum", path], check=True, capture_output=True)
    return size / MIB / (time.perf_counter() - started)


def _blob_write_mib_s(store: LocalBlobStore, data: bytes) -> float:
    view = memoryview(data)
    chunks = (
        bytes(view[i : i + UPLOAD_CHUNK_BYTES]) for i in range(0, len(data), UPLOAD_CHUNK_BYTES)
    )
    started = time.perf_counter()
    blob = store.write(chunks, max_bytes=len(data), label="bench")
    elapsed = time.perf_counter() - started
    store.delete(blob.key)
    return len(data) / MIB / elapsed


def _hashlib_mib_s(data: bytes) -> float:
    view = memoryview(data)
    digest = hashlib.sha256()
    started = time.perf_counter()
    for i in range(0, len(data), UPLOAD_CHUNK_BYTES):
        digest.update(view[i : i + UPLOAD_CHUNK_BYTES])
    return len(data) / MIB / (time.perf_counter() - started)


def run(bench: BenchRun, cfg: Config) -> list[Figure]:
    large_mb, small_mb = cfg.large_bytes / MIB, cfg.small_bytes / MIB
    print(
        f"\n[5] upload streaming: {large_mb:.0f} MiB vs {small_mb:.0f} MiB text file, "
        f"{cfg.rounds} rounds, gunicorn 1 worker x 4 threads; sha256 over the same bytes"
    )
    data = incompressible_text(cfg.large_bytes)
    small = data[: cfg.small_bytes]
    bodies = {
        size: encode_multipart({}, [(f"delivery-{size}.txt", payload, "text/plain")])
        for size, payload in ((cfg.large_bytes, data), (cfg.small_bytes, small))
    }
    peaks: dict[int, list[float]] = {cfg.large_bytes: [], cfg.small_bytes: []}
    upload_mib_s: list[float] = []
    with bench.postgres() as database_url:
        rifts = iter(funded_rifts(database_url, 2 * cfg.rounds + 2))
        env = bench.env(
            database_url,
            bench.path("data-upload"),
            MAX_FILE_BYTES=str(cfg.large_bytes + MIB),
            MAX_REQUEST_BYTES=str(cfg.large_bytes + 8 * MIB),
        )
        server, port = bench.gunicorn("api-upload", "service.api.wsgi:app", env, workers=1)
        (worker,) = server.children()
        api = Api(port, timeout_s=120)
        for size in (cfg.small_bytes, cfg.large_bytes):  # warm every code path once
            _upload(api, next(rifts), *bodies[size])
        for round_no in range(cfg.rounds):
            order = (
                (cfg.small_bytes, cfg.large_bytes)
                if round_no % 2 == 0
                else (cfg.large_bytes, cfg.small_bytes)
            )
            for size in order:
                reset_rss_peak(worker)
                took = _upload(api, next(rifts), *bodies[size])
                peaks[size].append(rss_peak_kib(worker) / 1024)
                if size == cfg.large_bytes:
                    upload_mib_s.append(size / MIB / took)
        rss_now = _current_rss_kib(worker) / 1024
        api.close()

    path = bench.path("sha") / "payload.txt"
    path.write_bytes(data)
    store = LocalBlobStore(bench.path("sha-blobs"), bench.path("sha-quarantine"))
    sums, writes, hashes = [], [], []
    _sha256sum_mib_s(str(path), len(data))  # page cache
    for _ in range(cfg.rounds):
        sums.append(_sha256sum_mib_s(str(path), len(data)))
        writes.append(_blob_write_mib_s(store, data))
        hashes.append(_hashlib_mib_s(data))

    large_peak, small_peak = Spread.of(peaks[cfg.large_bytes]), Spread.of(peaks[cfg.small_bytes])
    delta = Spread.of(
        [a - b for a, b in zip(peaks[cfg.large_bytes], peaks[cfg.small_bytes], strict=True)]
    )
    write_ratio = ratios(writes, sums)
    upload_ratio = ratios(upload_mib_s, sums)
    print(
        f"    worker peak RSS: {small_mb:.0f} MiB upload {small_peak.fmt(' MiB')}, "
        f"{large_mb:.0f} MiB upload {large_peak.fmt(' MiB')}; RSS now {rss_now:.1f} MiB"
    )
    print(f"    difference               {delta.fmt(' MiB')}   target < 10 MB")
    print(f"    sha256sum                {Spread.of(sums).fmt(' MiB/s', 0)}")
    print(
        f"    blob store write (hash + write, {UPLOAD_CHUNK_BYTES // 1024} KiB chunks) "
        f"{Spread.of(writes).fmt(' MiB/s', 0)}; hashlib alone "
        f"{Spread.of(hashes).fmt(' MiB/s', 0)}"
    )
    print(f"    ratio blob write/sha256sum {write_ratio.fmt('', 2)}   target >= 0.8")
    print(
        f"    whole HTTP upload of {large_mb:.0f} MiB {Spread.of(upload_mib_s).fmt(' MiB/s', 0)}"
        f" = {upload_ratio.fmt('', 2)} of sha256sum (multipart parsing, disk, DB, broker)"
    )
    return [
        Figure(
            "5 upload peak RSS",
            f"50 MiB: {large_peak.median:.1f} MiB",
            f"1 MiB: {small_peak.median:.1f} MiB",
            f"+{delta.fmt(' MiB')}",
            "< 10 MB apart",
            delta.median < 10 * 1e6 / MIB,
        ),
        Figure(
            "5 upload sha256",
            f"blob write {Spread.of(writes).median:.0f} MiB/s",
            f"sha256sum {Spread.of(sums).median:.0f} MiB/s",
            write_ratio.fmt("", 2),
            ">= 0.8",
            write_ratio.median >= 0.8,
        ),
        Figure(
            "5 HTTP upload (info)",
            f"{Spread.of(upload_mib_s).median:.0f} MiB/s",
            f"sha256sum {Spread.of(sums).median:.0f} MiB/s",
            upload_ratio.fmt("", 2),
            "-",
            None,
        ),
    ]
