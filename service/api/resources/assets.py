"""GET /api/assets/{id}/content: a delivered file, for the deal's parties, once scanned clean."""

from __future__ import annotations

from urllib.parse import quote

import falcon

from service.blobs import BlobStore
from service.db import SessionFactory
from service.domain.downloads import open_clean_file
from service.web.page_session import reader

# The file is never rendered by the browser as a page of this origin: no script, no
# plugins, no requests, even if a viewer opens it inline.
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def content_disposition(name: str) -> str:
    """An attachment header that keeps a Unicode name and cannot be broken by quotes."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class AssetContent:
    def __init__(self, sessions: SessionFactory, blobs: BlobStore, secret: str) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.secret = secret

    def on_get(self, req: falcon.Request, resp: falcon.Response, asset_id: str) -> None:
        # A bearer token, or the page cookie: the pages link here with plain <a download>.
        user = reader(req, self.secret)
        with self.sessions() as session:
            download = open_clean_file(session, self.blobs, asset_id, user)
        resp.content_type = download.mime_type
        resp.set_header("Content-Disposition", content_disposition(download.name))
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Content-Security-Policy", DOWNLOAD_CSP)
        resp.set_header("Cache-Control", "private, no-store")
        resp.set_stream(download.content, download.size_bytes)
