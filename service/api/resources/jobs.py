"""Job records: a caller reads their own; operators list failures, retry them, see queues."""

from __future__ import annotations

from typing import Protocol

import falcon

from service.api.resources import Authenticate
from service.api.resources.job_filters import job_filter_from_query
from service.api.views import job_view
from service.domain.errors import Forbidden
from service.domain.job_queries import readable_job
from service.domain.job_search import RETRYABLE_STATES, search_jobs
from service.domain.jobs import get_job
from service.domain.operator_actions import retry_one
from service.domain.users import User
from service.domain.work import UnitOfWork

MAX_PAGE = 200


class QueueStats(Protocol):
    def snapshot(self) -> list[dict[str, object]]: ...


class JobItem:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        user = self.authenticate(req)
        with self.work.read() as session:
            resp.media = job_view(readable_job(session, job_id, user))


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("operators only: this needs an admin token")


class AdminJobCollection:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_admin(self.authenticate(req))
        flt = job_filter_from_query(req, default_states=[s.value for s in RETRYABLE_STATES])
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_PAGE) or 50
        with self.work.read() as session:
            page = search_jobs(
                session, flt, self.work.clock(), limit=limit, cursor=req.get_param("cursor")
            )
            resp.media = {
                "jobs": [job_view(j) for j in page.jobs],
                "total": page.total,
                "total_is_lower_bound": page.total_is_lower_bound,
                "next_cursor": page.next_cursor,
            }


class AdminJobRetry:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        operator = self.authenticate(req)
        _require_admin(operator)
        self.work.run(lambda session, now: (None, [retry_one(session, job_id, operator, now)]))
        with self.work.read() as session:
            resp.status = falcon.HTTP_202
            resp.media = job_view(get_job(session, job_id))


class AdminQueues:
    def __init__(self, authenticate: Authenticate, stats: QueueStats) -> None:
        self.authenticate = authenticate
        self.stats = stats

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_admin(self.authenticate(req))
        resp.media = {"queues": self.stats.snapshot()}
