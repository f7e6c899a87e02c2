"""Job records: a caller reads their own; operators list failures, retry them, see queues."""

from __future__ import annotations

from typing import Protocol

import falcon
from sqlalchemy import select

from service.api.context import ApiContext
from service.api.views import job_view
from service.db import transaction
from service.domain.errors import Forbidden, InvalidInput, NotFound
from service.domain.jobs import dispatch_jobs, get_job, retry_job
from service.domain.users import User
from service.models import Job, JobState, Rift

MAX_PAGE = 200


class QueueStats(Protocol):
    def snapshot(self) -> list[dict[str, object]]: ...


def _may_read(user: User, job: Job, rift: Rift | None) -> bool:
    if user.is_admin or job.requested_by == user.id:
        return True
    return rift is not None and user.relation_to(rift) is not None


class JobItem:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        user = self.ctx.user(req)
        with self.ctx.sessions() as session:
            job = session.get(Job, job_id)
            rift = session.get(Rift, job.rift_id) if job and job.rift_id else None
            # Someone else's job answers exactly like a job that does not exist.
            if job is None or not _may_read(user, job, rift):
                raise NotFound(f"no job {job_id}")
            resp.media = job_view(job)


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("operators only: this needs an admin token")


class AdminJobCollection:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_admin(self.ctx.user(req))
        raw_states = req.get_param_as_list("state") or [JobState.FAILED.value, JobState.DEAD.value]
        try:
            states = [JobState(s.upper()) for s in raw_states]
        except ValueError:
            raise InvalidInput(
                "state must be one of: " + ", ".join(s.value for s in JobState), field="state"
            ) from None
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_PAGE) or 50
        with self.ctx.sessions() as session:
            jobs = session.scalars(
                select(Job)
                .where(Job.state.in_(states))
                .order_by(Job.updated_at.desc())
                .limit(limit)
            )
            resp.media = {"jobs": [job_view(j) for j in jobs]}


class AdminJobRetry:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        _require_admin(self.ctx.user(req))
        with transaction(self.ctx.sessions) as session:
            job = retry_job(session, job_id, self.ctx.clock())
        dispatch_jobs(self.ctx.sessions, self.ctx.dispatcher, [job], self.ctx.clock)
        with self.ctx.sessions() as session:
            resp.status = falcon.HTTP_202
            resp.media = job_view(get_job(session, job_id))


class AdminQueues:
    def __init__(self, ctx: ApiContext, stats: QueueStats) -> None:
        self.ctx = ctx
        self.stats = stats

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_admin(self.ctx.user(req))
        resp.media = {"queues": self.stats.snapshot()}
