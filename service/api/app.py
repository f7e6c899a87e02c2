"""The app factory: every route and its injected dependencies, wired in one place."""

from __future__ import annotations

import uuid
from typing import Any

import falcon
import structlog
from falcon.media.multipart import MultipartFormHandler

from service.api.context import ApiContext
from service.api.edge import LengthRequiredMiddleware
from service.api.errors import (
    handle_blob_store_unavailable,
    handle_commit_outcome_unknown,
    handle_database_unavailable,
    handle_domain_error,
    serialize_http_error,
)
from service.api.json_bodies import install as install_bounded_json
from service.api.metrics import ApiMetrics, MetricsMiddleware, MetricsResource
from service.api.openapi import OpenApiResource
from service.api.resources.health import Liveness, Readiness
from service.api.resources.jobs import (
    AdminJobCollection,
    AdminJobRetry,
    AdminQueues,
    JobItem,
    QueueStats,
)
from service.api.resources.proofs import (
    MAX_PART_HEADER_BYTES,
    ProofCollection,
    VerificationStatus,
)
from service.api.resources.rifts import (
    RiftCollection,
    RiftEvents,
    RiftItem,
    RiftRisk,
    RiftTransitions,
)
from service.blobs import BlobStoreUnavailable
from service.commit_outcome import CommitOutcomeUnknown
from service.db_outage import DATABASE_UNAVAILABLE
from service.domain.correlation import set_request_id
from service.domain.errors import DomainError
from service.domain.intake import IntakeLimits, ProofIntake
from service.domain.work import UnitOfWork
from service.web.routes import add_page_routes

WsgiApp = falcon.App[falcon.Request, falcon.Response]

MAX_REQUEST_ID_CHARS = 64


class RequestIdMiddleware:
    """Tag every log line of a request with its id, and echo the id to the caller."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        request_id = (
            incoming[:MAX_REQUEST_ID_CHARS]
            if incoming.isprintable() and incoming
            else uuid.uuid4().hex
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # The jobs this request creates carry its id to the workers.
        set_request_id(request_id)
        resp.set_header("X-Request-ID", request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        structlog.contextvars.clear_contextvars()
        set_request_id(None)


def create_app(ctx: ApiContext, *, metrics: ApiMetrics, queue_stats: QueueStats) -> WsgiApp:
    """Build the WSGI app from its dependencies."""
    middleware: list[Any] = [
        RequestIdMiddleware(),
        MetricsMiddleware(metrics),
        LengthRequiredMiddleware(),
    ]
    app: WsgiApp = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    multipart = app.req_options.media_handlers[falcon.MEDIA_MULTIPART]
    assert isinstance(multipart, MultipartFormHandler)
    multipart.parse_options.max_body_part_count = ctx.settings.max_files_per_proof + 8
    multipart.parse_options.max_body_part_headers_size = MAX_PART_HEADER_BYTES
    install_bounded_json(app)
    app.add_error_handler(DomainError, handle_domain_error)
    app.add_error_handler(DATABASE_UNAVAILABLE, handle_database_unavailable)
    app.add_error_handler(BlobStoreUnavailable, handle_blob_store_unavailable)
    app.add_error_handler(CommitOutcomeUnknown, handle_commit_outcome_unknown)
    app.set_error_serializer(serialize_http_error)

    # Each resource gets only the services it calls.
    authenticate = ctx.user
    work = UnitOfWork(ctx.sessions, ctx.dispatcher, ctx.clock, ctx.ids)
    intake = ProofIntake(
        work=work,
        blobs=ctx.blobs,
        sealer=ctx.sealer,
        limits=IntakeLimits(
            max_file_bytes=ctx.settings.max_file_bytes,
            max_files=ctx.settings.max_files_per_proof,
            max_request_bytes=ctx.settings.max_request_bytes,
        ),
    )
    app.add_route("/healthz", Liveness())
    app.add_route("/readyz", Readiness(ctx.sessions, ctx.broker, ctx.blobs))
    app.add_route("/metrics", MetricsResource(metrics))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/api/rifts", RiftCollection(authenticate, work))
    app.add_route("/api/rifts/{rift_id}", RiftItem(authenticate, work))
    app.add_route("/api/rifts/{rift_id}/transitions", RiftTransitions(authenticate, work))
    app.add_route("/api/rifts/{rift_id}/risk", RiftRisk(authenticate, work))
    app.add_route("/api/rifts/{rift_id}/events", RiftEvents(authenticate, work))
    app.add_route(
        "/api/rifts/{rift_id}/proofs", ProofCollection(authenticate, intake, metrics.submissions)
    )
    app.add_route(
        "/api/rifts/{rift_id}/verification-status", VerificationStatus(authenticate, work)
    )
    app.add_route("/api/jobs/{job_id}", JobItem(authenticate, work))
    app.add_route("/api/admin/jobs", AdminJobCollection(authenticate, work))
    app.add_route("/api/admin/jobs/{job_id}/retry", AdminJobRetry(authenticate, work))
    app.add_route("/api/admin/queues", AdminQueues(authenticate, queue_stats))

    # Pages: the seller's proof page, the operator console, file downloads (service/web).
    add_page_routes(
        app,
        settings=ctx.settings,
        authenticate=authenticate,
        work=work,
        blobs=ctx.blobs,
        queue_stats=queue_stats,
    )
    return app
