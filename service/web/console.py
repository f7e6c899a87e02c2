"""The operator console: /ops (review queue, queues, jobs, actions) and /ops/jobs/{id}."""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import urlencode

import falcon

from service.api.resources.job_filters import job_filter_from_query
from service.db import SessionFactory
from service.domain.clock import Clock
from service.domain.errors import NotFound
from service.domain.job_search import RETRYABLE_STATES, JobFilter, job_timeline, search_jobs
from service.domain.jobs import get_job
from service.domain.operator_actions import count_retryable, recent_actions
from service.domain.queues import ACTOR_NAMES
from service.domain.review import review_queue
from service.domain.users import User
from service.models import FINAL_JOB_STATES, JobState
from service.web.advice import review_reason_words
from service.web.links import ConsoleLinks
from service.web.page_session import page_viewer
from service.web.progress_view import asset_card
from service.web.rendering import Pages

log = logging.getLogger(__name__)

JOBS_PAGE_SIZE = 25
ACTIONS_SHOWN = 15
AGE_CHOICES_S = ((300, "5 minutes"), (3600, "1 hour"), (86_400, "1 day"), (7 * 86_400, "1 week"))


class QueueStats(Protocol):
    def snapshot(self) -> list[dict[str, object]]: ...


def _operator(pages: Pages, req: falcon.Request, resp: falcon.Response, secret: str) -> User | None:
    viewer = page_viewer(req, secret)
    if viewer is None:
        pages.respond(resp, "signin.html", status=falcon.HTTP_401)
        return None
    if not viewer.is_admin:
        # The console is not there for anyone else: the same page as any missing address.
        pages.respond(resp, "not_found.html", status=falcon.HTTP_404)
        return None
    return viewer


class OpsConsole:
    def __init__(
        self,
        pages: Pages,
        sessions: SessionFactory,
        secret: str,
        stats: QueueStats,
        links: ConsoleLinks,
        clock: Clock,
    ) -> None:
        self.pages = pages
        self.sessions = sessions
        self.secret = secret
        self.stats = stats
        self.links = links
        self.clock = clock

    def _queues(self) -> list[dict[str, object]] | None:
        try:
            return self.stats.snapshot()
        except Exception:  # the broker is down: the rest of the console still works
            log.warning("queue figures unavailable", exc_info=True)
            return None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if _operator(self.pages, req, resp, self.secret) is None:
            return
        filtered = req.get_param("filtered") == "1"
        flt = job_filter_from_query(
            req, default_states=None if filtered else [s.value for s in RETRYABLE_STATES]
        )
        now = self.clock()
        with self.sessions() as session:
            page = search_jobs(
                session, flt, now, limit=JOBS_PAGE_SIZE, cursor=req.get_param("cursor")
            )
            context: dict[str, Any] = {
                "review": [
                    {
                        "rift": item.rift,
                        "proof": item.proof,
                        "reasons": [
                            review_reason_words(r.get("code", ""), r.get("message", ""))
                            for r in (item.proof.verdict_reasons or [] if item.proof else [])
                        ],
                        "assets": [asset_card(a) for a in item.proof.assets] if item.proof else [],
                    }
                    for item in review_queue(session)
                ],
                "queues": self._queues(),
                "dashboards": self.links.dashboards(),
                "page": page,
                "filter": flt,
                "filter_json": _filter_json(flt),
                "next_url": _next_url(flt, page.next_cursor),
                "retryable": count_retryable(session, flt, now),
                "actions": recent_actions(session, limit=ACTIONS_SHOWN),
                "states": list(JobState),
                "actors": ACTOR_NAMES,
                "ages": AGE_CHOICES_S,
                "now": now,
            }
            self.pages.respond(resp, "ops.html", **context)


def _filter_json(flt: JobFilter) -> dict[str, Any]:
    view = flt.as_dict()
    if "states" in view:
        view["state"] = view.pop("states")
    return view


def _next_url(flt: JobFilter, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    query: list[tuple[str, str]] = [("filtered", "1")]
    query += [("state", state.value) for state in flt.states]
    for name in ("actor", "rift_id", "job_id", "min_age_s", "max_age_s"):
        value = getattr(flt, name)
        if value not in (None, ""):
            query.append((name, str(value)))
    query.append(("cursor", cursor))
    return "/ops?" + urlencode(query) + "#jobs"


class OpsJobPage:
    def __init__(
        self, pages: Pages, sessions: SessionFactory, secret: str, links: ConsoleLinks
    ) -> None:
        self.pages = pages
        self.sessions = sessions
        self.secret = secret
        self.links = links

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        if _operator(self.pages, req, resp, self.secret) is None:
            return
        with self.sessions() as session:
            try:
                job = get_job(session, job_id)
            except NotFound:
                self.pages.respond(resp, "not_found.html", status=falcon.HTTP_404)
                return
            actions = recent_actions(session, job_id=job.id, limit=50)
            self.pages.respond(
                resp,
                "ops_job.html",
                job=job,
                timeline=job_timeline(job, actions),
                actions=actions,
                sentry_url=self.links.sentry_for(job),
                retryable=job.state in RETRYABLE_STATES,
                final=job.state in FINAL_JOB_STATES,
            )
