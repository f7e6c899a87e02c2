"""The API in the test process, wired by the app's own builder to the real services."""

from __future__ import annotations

import falcon.testing

from actors.transport import connect_transport
from service.api.bootstrap import api_context, assemble_api
from service.api.context import ApiContext
from service.db import SessionFactory
from service.settings import Settings


def real_api_context(settings: Settings, sessions: SessionFactory) -> ApiContext:
    return api_context(settings, sessions, connect_transport(settings, sessions))


def api_test_client(ctx: ApiContext) -> falcon.testing.TestClient:
    """A client of the app over ctx (which a test may have altered, e.g. a dead dispatcher)."""
    return falcon.testing.TestClient(
        assemble_api(ctx, connect_transport(ctx.settings, ctx.sessions))
    )
