from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Promtool = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """Run promtool from Debian's prometheus package; its absence is a failure, not a skip."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not on PATH; install Debian's prometheus package (make deps)")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
        )

    return run
