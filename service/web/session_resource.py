"""POST /session trades a bearer token for the page cookie; DELETE /session signs out."""

from __future__ import annotations

import falcon

from service.web.page_session import close_page_session, open_page_session


class PageSession:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Only a bearer header opens a session, so no other site can open one for a visitor.
        user = open_page_session(req, resp, self.secret)
        resp.set_header("Cache-Control", "no-store")
        resp.media = {"user_id": user.id, "role": user.role.value}

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        close_page_session(resp)
        resp.status = falcon.HTTP_204
