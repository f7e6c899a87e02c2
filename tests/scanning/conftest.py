"""Real clamd daemons for the scanning tests, started with the project's own start script.

If clamd cannot start, the fixtures raise and the tests fail: a scanner test that skips
when there is no scanner would pass on exactly the machines where scanning is broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .clamd_process import RunningClamd, start_clamd, stop_process
from .samples import CLAMAV_TESTFILES_DIR, SMALL_STREAM_MAX_BYTES


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClamd]:
    """A clamd with the deployed configuration and the project's offline signatures."""
    running = start_clamd(tmp_path_factory.mktemp("clamd"))
    yield running
    stop_process(running.pid)


@pytest.fixture(scope="session")
def small_stream_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClamd]:
    """A clamd whose StreamMaxLength is SMALL_STREAM_MAX_BYTES, to reach the limit cheaply."""
    running = start_clamd(
        tmp_path_factory.mktemp("clamd-small"),
        "--stream-max-length",
        f"{SMALL_STREAM_MAX_BYTES // 1024}K",
    )
    yield running
    stop_process(running.pid)


@pytest.fixture
def own_clamd(tmp_path: Path) -> Iterator[RunningClamd]:
    """A clamd for one test, which may stop it; stopped at the end either way."""
    running = start_clamd(tmp_path / "clamd")
    yield running
    stop_process(running.pid)


@pytest.fixture(scope="session")
def clamav_testfiles_dir() -> Path:
    if not (CLAMAV_TESTFILES_DIR / "clam.exe").is_file():
        pytest.fail(f"{CLAMAV_TESTFILES_DIR} is missing; install the Debian clamav-testfiles")
    return CLAMAV_TESTFILES_DIR
