"""What the HTTP layer is given to work with; built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import falcon

from service.auth import user_from_header
from service.blobs import BlobStore
from service.db import SessionFactory
from service.domain.clock import Clock, IdFactory
from service.domain.jobs import JobDispatcher
from service.domain.proofs import KeySealer
from service.domain.users import User
from service.settings import Settings


class BrokerProbe(Protocol):
    def ping(self) -> bool: ...


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    sessions: SessionFactory
    blobs: BlobStore
    dispatcher: JobDispatcher
    sealer: KeySealer
    broker: BrokerProbe
    clock: Clock
    ids: IdFactory

    def user(self, req: falcon.Request) -> User:
        """Authenticate the request's bearer token."""
        return user_from_header(req.get_header("Authorization"), self.settings.jwt_secret)
