"""The API in the test process, wired to the real database, blob store and Redis broker."""

from __future__ import annotations

import falcon.testing

from actors.broker import build_broker, redis_client
from actors.dispatch import DramatiqDispatcher, RedisProbe
from actors.queue_stats import RedisQueueStats
from service.api.app import create_app
from service.api.context import ApiContext
from service.api.metrics import ApiMetrics
from service.blobs import blob_store_from_settings
from service.db import SessionFactory
from service.domain.clock import new_id, utcnow
from service.domain.queues import QUEUE_NAMES
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault


def real_api_context(settings: Settings, sessions: SessionFactory) -> ApiContext:
    return ApiContext(
        settings=settings,
        sessions=sessions,
        blobs=blob_store_from_settings(settings),
        dispatcher=DramatiqDispatcher(build_broker(settings)),
        sealer=LicenseKeyVault(settings.license_key_secret.encode()),
        broker=RedisProbe(redis_client(settings)),
        clock=utcnow,
        ids=new_id,
    )


def api_test_client(ctx: ApiContext) -> falcon.testing.TestClient:
    stats = RedisQueueStats(redis_client(ctx.settings), QUEUE_NAMES)
    return falcon.testing.TestClient(create_app(ctx, metrics=ApiMetrics(), queue_stats=stats))
