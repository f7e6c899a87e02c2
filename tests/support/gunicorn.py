"""The API under a real gunicorn with the deployed config, on a port of its own."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from service.settings import Settings
from tests.conftest import settings_env
from tests.support.processes import REPO_ROOT, VENV_BIN, ManagedProcess, free_port, wait_for

GUNICORN_CONFIG = REPO_ROOT / "deploy" / "gunicorn.conf.py"
READY_TIMEOUT_S = 30.0


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    """The status and the X-Request-ID the API answered with, 4xx and 5xx included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.headers.get("X-Request-ID")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Request-ID")


@dataclass
class GunicornApi:
    process: ManagedProcess
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def answers(self) -> bool:
        try:
            return get(f"{self.url}/openapi.json")[0] == 200
        except OSError:
            return False


def start_gunicorn_api(settings: Settings, workdir: Path, **env: str) -> GunicornApi:
    """Start gunicorn as supervisord does and wait until it answers; the caller stops it."""
    port = free_port()
    process = ManagedProcess(
        [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONFIG), "service.api.wsgi:app"],
        settings_env(
            settings,
            API_BIND=f"127.0.0.1:{port}",
            API_WORKERS="1",
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
            **env,
        ),
        workdir / "gunicorn.log",
    ).start()
    api = GunicornApi(process, f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: not process.alive() or api.answers(), READY_TIMEOUT_S, "the API")
        assert process.alive(), process.output()
    except BaseException:
        process.stop()
        raise
    return api
