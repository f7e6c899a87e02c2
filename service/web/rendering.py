"""Templates (autoescaped Jinja2) and the headers every page carries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import falcon
import jinja2

from service.domain.clock import as_utc

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# No inline script or style anywhere: scripts and styles come from /static only, the page
# talks only to its own origin, and nothing may frame it.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _short_when(moment: datetime | None) -> str:
    return "-" if moment is None else as_utc(moment).strftime("%m-%d %H:%M")


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else as_utc(moment).isoformat()


def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} bytes"


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def build_environment() -> jinja2.Environment:
    """The one template environment: autoescape on for every template, undefined is an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, short_when=_short_when, iso=_iso, size=_size, money=_money)
    return env


class Pages:
    """Renders templates into responses with the pages' security headers."""

    def __init__(self, env: jinja2.Environment | None = None) -> None:
        self.env = env or build_environment()

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def respond(
        self,
        resp: falcon.Response,
        name: str,
        *,
        status: str = falcon.HTTP_200,
        **context: Any,
    ) -> None:
        """Render name into resp as an HTML page that no cache keeps and no frame shows."""
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.render(name, **context)
        secure_page(resp)


def secure_page(resp: falcon.Response) -> None:
    """Headers for anything rendered for one signed-in viewer."""
    resp.set_header("Content-Security-Policy", PAGE_CSP)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "no-referrer")
    resp.set_header("X-Frame-Options", "DENY")
    resp.set_header("Cache-Control", "no-store")
    resp.set_header("Vary", "Cookie, Authorization")
