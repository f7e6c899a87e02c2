"""`rift demo` against a running system: the README's first try, run as written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import WorkerFactory, settings_env
from tests.support.gunicorn import start_gunicorn_api
from tests.support.processes import VENV_BIN

DEMO_TIMEOUT_S = 90


@pytest.mark.slow
# The command is what is under test; both databases run the same flow in tests/lifecycle.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rift_demo_prints_the_verdict_of_its_submission(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    # Given the API under gunicorn and a worker for every queue
    start_worker()
    api = start_gunicorn_api(settings, tmp_path)
    try:
        # When the operator runs the demo from another directory against it
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        result = subprocess.run(
            [str(VENV_BIN / "rift"), "demo", "--api", api.url],
            cwd=elsewhere,
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
        )
    finally:
        api.process.stop()
    # Then it submitted proof and printed the completed verification with its verdict
    assert result.returncode == 0, result.stderr + api.process.output()
    assert "submitted:" in result.stdout
    verdict = result.stdout.split("verdict:", 1)[1]
    assert '"status": "completed"' in verdict
    # and the sign-in links that open the same deal in the browser
    links = dict(line.split(": ", 1) for line in verdict.splitlines() if ": http" in line)
    assert set(links) == {"seller's page", "buyer's page", "operator console"}
    assert "/rifts/" in links["seller's page"] and "#token=" in links["seller's page"]
    assert links["operator console"].startswith(f"{api.url}/ops#token=")
    assert os.listdir(elsewhere) == []
