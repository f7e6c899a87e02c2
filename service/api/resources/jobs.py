"""Job records: a caller reads their own; operators list failures, retry them, see queues."""

from __future__ import annotations

from typing import Protocol

import falcon

from service.api.resources import Authenticate
from service.api.views import job_view
from service.domain.errors import Forbidden, InvalidInput
from service.domain.job_queries import jobs_in_states, readable_job
from service.domain.jobs import get_job, retry_job
from service.domain.users import User
from service.domain.work import UnitOfWork
from service.models import JobState

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
        raw_states = req.get_param_as_list("state") or [JobState.FAILED.value, JobState.DEAD.value]
        try:
            states = [JobState(s.upper()) for s in raw_states]
        except ValueError:
            raise InvalidInput(
                "state must be one of: " + ", ".join(s.value for s in JobState), field="state"
            ) from None
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_PAGE) or 50
        with self.work.read() as session:
            resp.media = {"jobs": [job_view(j) for j in jobs_in_states(session, states, limit)]}


class AdminJobRetry:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        _require_admin(self.authenticate(req))
        self.work.run(lambda session, now: (None, [retry_job(session, job_id, now)]))
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
