"""Start and stop real clamd daemons through deploy/clamav/start-clamd.sh."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from service.scanning import ClamdAddress, ClamdScanner
from tests.support.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO_ROOT / "deploy" / "clamav" / "start-clamd.sh"
CLAMD_START_TIMEOUT_S = 60
CLAMD_STOP_TIMEOUT_S = 10.0
TEST_SCAN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningClamd:
    runtime_dir: Path
    port: int
    pid: int

    @property
    def tcp_address(self) -> ClamdAddress:
        return ClamdAddress(host="127.0.0.1", port=self.port)

    @property
    def unix_address(self) -> ClamdAddress:
        return ClamdAddress(socket_path=str(self.runtime_dir / "clamd.ctl"))

    def scanner(self, **options: int) -> ClamdScanner:
        return ClamdScanner(self.tcp_address, TEST_SCAN_TIMEOUT_S, **options)


def run_start_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(START_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=CLAMD_START_TIMEOUT_S + 10,
        env={**os.environ, "CLAMD_START_TIMEOUT_S": str(CLAMD_START_TIMEOUT_S)},
        check=False,
    )


def start_clamd(runtime_dir: Path, *options: str) -> RunningClamd:
    port = free_port()
    started = run_start_script(*options, runtime_dir, str(port))
    if started.returncode != 0:
        raise RuntimeError(
            f"start-clamd.sh failed with status {started.returncode}; is clamav-daemon "
            f"installed?\n{started.stderr}"
        )
    pid = int((runtime_dir / "clamd.pid").read_text().strip())
    return RunningClamd(runtime_dir=runtime_dir, port=port, pid=pid)


def process_is_gone(pid: int) -> bool:
    # clamd is not our child (the start script's), so poll /proc; a zombie counts as gone.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def stop_process(pid: int) -> None:
    """Stop one process we started, by its pid, and wait until it has exited."""
    if process_is_gone(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + CLAMD_STOP_TIMEOUT_S
    while not process_is_gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + CLAMD_STOP_TIMEOUT_S
        time.sleep(0.05)
