"""A small bounded load generator: N threads, one keep-alive connection each, fixed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.client import Api

# method, path, body, headers
Request = tuple[str, str, bytes | None, Mapping[str, str]]


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    exhausted: bool = False

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


def run_load(
    port: int,
    next_request: Callable[[], Request | None],
    *,
    concurrency: int,
    duration_s: float,
    expect_status: int,
) -> LoadResult:
    """Send requests from next_request until duration_s passes or it returns None."""
    result = LoadResult()
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    deadline = 0.0

    def client() -> None:
        api = Api(port)
        start_gate.wait()
        try:
            while time.perf_counter() < deadline:
                with lock:
                    request = next_request()
                if request is None:
                    result.exhausted = True
                    return
                method, path, body, headers = request
                sent = time.perf_counter()
                try:
                    status, raw = api.call(method, path, body, headers)
                except OSError as exc:
                    status, raw = 0, repr(exc).encode()
                took = time.perf_counter() - sent
                with lock:
                    if status == expect_status:
                        result.ok += 1
                        result.latencies_s.append(took)
                    else:
                        result.errors += 1
                        if len(result.error_samples) < 3:
                            result.error_samples.append(f"{status}: {raw[:200]!r}")
        finally:
            api.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + duration_s
    start_gate.wait()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.perf_counter() - started
    return result
