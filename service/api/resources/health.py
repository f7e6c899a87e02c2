"""Liveness (the process answers) and readiness (database, broker and blob store answer)."""

from __future__ import annotations

import falcon
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api.context import BrokerProbe
from service.blobs import BlobStore
from service.db import SessionFactory


class Liveness:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Readiness:
    def __init__(self, sessions: SessionFactory, broker: BrokerProbe, blobs: BlobStore) -> None:
        self.sessions = sessions
        self.broker = broker
        self.blobs = blobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {
            "database": self._database(),
            "broker": self.broker.ping(),
            "blob_store": self.blobs.ping(),
        }
        ready = all(checks.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {
            "status": "ready" if ready else "unavailable",
            "checks": {k: "ok" if v else "down" for k, v in checks.items()},
        }

    def _database(self) -> bool:
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True
