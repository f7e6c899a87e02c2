"""Where the pages, their session exchange and the file downloads are mounted."""

from __future__ import annotations

from typing import Any

import falcon

from service.api.resources import Authenticate
from service.api.resources.assets import AssetContent
from service.api.resources.operations import AdminActions, AdminBulkRetry, AdminReviewDecision
from service.blobs import BlobStore
from service.domain.work import UnitOfWork
from service.settings import Settings
from service.web.console import OpsConsole, OpsJobPage, QueueStats
from service.web.links import ConsoleLinks
from service.web.rendering import STATIC_DIR, Pages
from service.web.rift_page import RiftPage, RiftProgress, UploadLimits
from service.web.session_resource import PageSession


def add_page_routes(
    app: falcon.App[Any, Any],
    *,
    settings: Settings,
    authenticate: Authenticate,
    work: UnitOfWork,
    blobs: BlobStore,
    queue_stats: QueueStats,
) -> None:
    """Mount /rifts/{id}, /ops, /session, /static and the operator and download endpoints."""
    pages = Pages()
    secret = settings.jwt_secret
    sessions = work.sessions
    links = ConsoleLinks(settings.grafana_url, settings.sentry_issues_url)
    limits = UploadLimits(settings.max_files_per_proof, settings.max_file_bytes)
    app.add_route("/session", PageSession(secret))
    app.add_route("/rifts/{rift_id}", RiftPage(pages, sessions, secret, limits))
    app.add_route("/rifts/{rift_id}/progress", RiftProgress(pages, sessions, secret))
    app.add_route("/ops", OpsConsole(pages, sessions, secret, queue_stats, links, work.clock))
    app.add_route("/ops/jobs/{job_id}", OpsJobPage(pages, sessions, secret, links))
    app.add_route("/api/assets/{asset_id}/content", AssetContent(sessions, blobs, secret))
    app.add_route("/api/admin/jobs/retry", AdminBulkRetry(authenticate, work))
    app.add_route("/api/admin/rifts/{rift_id}/decisions", AdminReviewDecision(authenticate, work))
    app.add_route("/api/admin/actions", AdminActions(authenticate, work))
    app.add_static_route("/static", STATIC_DIR)
