"""Build the API from settings: the composition root gunicorn's WSGI module calls."""

from __future__ import annotations

from actors.broker import build_broker, redis_client
from actors.dispatch import DramatiqDispatcher, RedisProbe
from actors.queue_stats import RedisQueueStats
from service.api.app import WsgiApp, create_app
from service.api.context import ApiContext
from service.api.metrics import ApiMetrics
from service.blobs import blob_store_from_settings
from service.db import create_db_engine, create_session_factory
from service.domain.clock import new_id, utcnow
from service.domain.queues import QUEUE_NAMES
from service.observability.logs import configure_logging
from service.observability.sentry import init_sentry
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault


def build_api(settings: Settings) -> WsgiApp:
    """Wire real dependencies (database, blob store, Redis broker) into the app."""
    configure_logging(settings.log_format)
    init_sentry(settings, "api")
    client = redis_client(settings)
    # The API only enqueues: no worker middleware, no actors.
    broker = build_broker(settings)
    ctx = ApiContext(
        settings=settings,
        sessions=create_session_factory(create_db_engine(settings.database_url)),
        blobs=blob_store_from_settings(settings),
        dispatcher=DramatiqDispatcher(broker),
        sealer=LicenseKeyVault(settings.license_key_secret.encode()),
        broker=RedisProbe(client),
        clock=utcnow,
        ids=new_id,
    )
    return create_app(ctx, metrics=ApiMetrics(), queue_stats=RedisQueueStats(client, QUEUE_NAMES))
