"""A real browser (Debian's Chromium through Playwright) against the API under gunicorn.

The API runs as `make run` runs it (gunicorn with deploy/gunicorn.conf.py) on a free
loopback port, with real worker processes per test. Screenshots go to
$RIFT_BROWSER_ARTEFACTS, or a directory under pytest's temporary root, printed at the end.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from service.domain.users import Role
from service.settings import Settings
from service.web.links import sign_in_link
from tests.conftest import settings_env
from tests.scanning.clamd_process import RunningClamd
from tests.support.processes import REPO_ROOT, VENV_BIN, ManagedProcess, free_port, wait_for
from tests.support.settings import test_settings

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser download cannot run here: drive the system Chromium, headless,
# with nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS_ENV = "RIFT_BROWSER_ARTEFACTS"
API_READY_TIMEOUT_S = 30.0
# What the page must show within, after the action that leads to it (verdicts usually take
# well under a second on real workers).
UI_TIMEOUT_MS = 20_000
# The most one flow (setup included: workers, the server on first use) may take.
FLOW_BUDGET_S = 90
expect.set_options(timeout=UI_TIMEOUT_MS)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

_artefacts: list[Path] = []


@pytest.fixture(scope="session")
def artefacts_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get(ARTEFACTS_ENV)
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    _artefacts.append(path)
    return path


@pytest.fixture(scope="module")
def artefacts_dir(artefacts_root: Path, database_url: str) -> Path:
    """One directory per database backend: both runs of a flow keep their screenshot."""
    path = artefacts_root / database_url.split(":", 1)[0].split("+", 1)[0]
    path.mkdir(exist_ok=True)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in _artefacts:
        shots = sorted(p.relative_to(path).as_posix() for p in path.rglob("*.png"))
        terminalreporter.write_line(f"browser screenshots ({len(shots)}) in {path}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is required (apt-get install chromium; make test installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def web_settings(
    database_url: str,
    redis_url: str,
    clamd: RunningClamd,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    return test_settings(database_url, redis_url, tmp_path_factory.mktemp("web-data"), clamd.port)


@pytest.fixture(scope="module")
def web_url(web_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API and its pages under gunicorn, as `make run` serves them."""
    port = free_port()
    run_dir = tmp_path_factory.mktemp("web-api")
    base = f"http://127.0.0.1:{port}"
    api = ManagedProcess(
        [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(REPO_ROOT / "deploy" / "gunicorn.conf.py"),
            "service.api.wsgi:app",
        ],
        settings_env(
            web_settings,
            API_BIND=f"127.0.0.1:{port}",
            API_WORKERS="1",
            API_THREADS="4",
            PROMETHEUS_MULTIPROC_DIR=str(run_dir / "prom"),
            RIFT_PUBLIC_URL=base,
        ),
        run_dir / "gunicorn.log",
    ).start()
    try:
        wait_for(
            lambda: not api.alive() or _answers(f"{base}/healthz"), API_READY_TIMEOUT_S, "gunicorn"
        )
        assert api.alive(), f"gunicorn exited:\n{api.output()}"
        yield base
    finally:
        api.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:
    """open_page(viewport=PHONE, javascript=True) -> a page in a fresh browser profile."""
    contexts: list[BrowserContext] = []

    def new_page(
        viewport: dict[str, int] = DESKTOP,
        *,
        javascript: bool = True,
        storage_state: Any = None,
    ) -> Page:
        ctx = browser.new_context(
            viewport=viewport,
            accept_downloads=True,
            java_script_enabled=javascript,
            storage_state=storage_state,
        )
        ctx.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(ctx)
        return ctx.new_page()

    yield new_page
    for ctx in contexts:
        ctx.close()


def link(base: str, path: str, user: str, settings: Settings, role: Role = Role.USER) -> str:
    """What `rift link` prints, for this test's server."""
    return sign_in_link(base, path, user, role, settings.jwt_secret, ttl=timedelta(minutes=30))


def screenshot(page: Page, artefacts: Path, name: str) -> Path:
    path = artefacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# How long a native form submission gets to start navigating (it is queued at once).
NATIVE_SUBMIT_WINDOW_MS = 500


def without_script(page: Page, script: str) -> None:
    """Load the page's own script never, as a slow or failed download leaves it."""
    page.route(f"**/static/{script}", lambda route: route.abort())


def assert_inert_without_its_script(page: Page) -> None:
    """Before its script is bound, nothing on the page submits or pretends to act.

    A form without an action of its own is the script's: submitted natively it would
    reload the page with what was typed in the address (a tracking number, a reason) and
    the user would see nothing happen. So every visible button not in a native form
    (one with an action) is disabled, and Enter in any field of a script's form goes
    nowhere.
    """
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    live = [
        button
        for button in page.locator("button:visible").all()
        if not button.evaluate("b => Boolean(b.closest('form[action]'))")
    ]
    assert live, "no control on the page to check"
    for button in live:
        expect(button).to_be_disabled()
    fields = page.locator("form:not([action]) input[type=text], form:not([action]) textarea")
    assert fields.count(), "no field of a script's form to check"
    for field in fields.all():
        field.fill("typed before the script")
        field.press("Enter")
    page.wait_for_timeout(NATIVE_SUBMIT_WINDOW_MS)
    assert navigations == [], f"a form submitted natively: {navigations}"
