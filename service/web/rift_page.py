"""The proof page at /rifts/{id} and the progress fragment its script polls."""

from __future__ import annotations

from dataclasses import dataclass

import falcon

from service.db import SessionFactory
from service.domain.errors import NotFound
from service.domain.proof_progress import load_proof_progress
from service.web.page_session import page_viewer, reader
from service.web.progress_view import progress_view
from service.web.rendering import Pages, secure_page


@dataclass(frozen=True)
class UploadLimits:
    max_files: int
    max_file_bytes: int


class RiftPage:
    """The whole page, server-rendered: it shows the current state with JavaScript off."""

    def __init__(
        self, pages: Pages, sessions: SessionFactory, secret: str, limits: UploadLimits
    ) -> None:
        self.pages = pages
        self.sessions = sessions
        self.secret = secret
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        viewer = page_viewer(req, self.secret)
        if viewer is None:
            # The token may still be in the fragment, which only the page's script can read.
            self.pages.respond(resp, "signin.html", status=falcon.HTTP_401)
            return
        with self.sessions() as session:
            try:
                progress = load_proof_progress(session, rift_id, viewer)
            except NotFound:
                self.pages.respond(resp, "not_found.html", status=falcon.HTTP_404)
                return
            self.pages.respond(
                resp,
                "rift.html",
                rift=progress.rift,
                proof=progress.proof,
                view=progress_view(progress),
                role=progress.viewer_role.value.lower(),
                etag=progress.fingerprint(),
                max_files=self.limits.max_files,
                max_file_bytes=self.limits.max_file_bytes,
            )


class RiftProgress:
    """The progress section alone; 304 while nothing it shows has changed."""

    def __init__(self, pages: Pages, sessions: SessionFactory, secret: str) -> None:
        self.pages = pages
        self.sessions = sessions
        self.secret = secret

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        viewer = reader(req, self.secret)
        with self.sessions() as session:
            progress = load_proof_progress(session, rift_id, viewer)
            etag = progress.fingerprint()
            secure_page(resp)
            # Polled every few seconds: revalidated each time, never stored by a cache.
            resp.set_header("Cache-Control", "private, no-cache")
            resp.etag = etag
            if req.if_none_match and any(tag == etag for tag in req.if_none_match):
                resp.status = falcon.HTTP_304
                return
            resp.content_type = falcon.MEDIA_HTML
            resp.text = self.pages.render(
                "_progress.html",
                rift=progress.rift,
                proof=progress.proof,
                view=progress_view(progress),
            )
