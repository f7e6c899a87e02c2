"""Build the API from settings: the composition root gunicorn's WSGI module calls."""

from __future__ import annotations

from actors.transport import Transport, connect_transport
from service.api.app import WsgiApp, create_app
from service.api.context import ApiContext
from service.api.metrics import ApiMetrics
from service.blobs import blob_store_from_settings
from service.db import SessionFactory, create_db_engine, create_session_factory
from service.domain.clock import new_id, utcnow
from service.observability.logs import configure_logging
from service.observability.sentry import init_sentry
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault


def api_context(settings: Settings, sessions: SessionFactory, transport: Transport) -> ApiContext:
    """What the app is given: the real blob store and key vault, the broker's transport."""
    return ApiContext(
        settings=settings,
        sessions=sessions,
        blobs=blob_store_from_settings(settings),
        dispatcher=transport.dispatcher,
        sealer=LicenseKeyVault(settings.license_key_secret.encode()),
        broker=transport.probe,
        clock=utcnow,
        ids=new_id,
    )


def assemble_api(ctx: ApiContext, transport: Transport) -> WsgiApp:
    """The app over ctx, reporting the transport's queues; the tests build theirs here too."""
    return create_app(ctx, metrics=ApiMetrics(), queue_stats=transport.queue_stats)


def build_api(settings: Settings) -> WsgiApp:
    """Wire real dependencies (database, blob store, broker transport) into the app."""
    configure_logging(settings.log_format)
    init_sentry(settings, "api")
    # The API only enqueues and observes: the transport, no worker middleware, no actors.
    sessions = create_session_factory(create_db_engine(settings.database_url))
    transport = connect_transport(settings, sessions)
    return assemble_api(api_context(settings, sessions, transport), transport)
