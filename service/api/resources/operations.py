"""Operator actions over the API: retry what a filter matches, decide reviews, read the record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
from sqlalchemy.orm import Session

from service.api.resources import Authenticate
from service.api.resources.job_filters import job_filter
from service.api.views import iso, rift_view
from service.domain.errors import Forbidden, InvalidInput
from service.domain.operator_actions import recent_actions, retry_matching
from service.domain.review import ReviewDecision, decide_review
from service.domain.users import User
from service.domain.work import UnitOfWork
from service.models import Job, OperatorAction

MAX_ACTIONS_PAGE = 200


def require_admin(user: User) -> User:
    if not user.is_admin:
        raise Forbidden("operators only: this needs an admin token")
    return user


def _json_object(req: falcon.Request) -> dict[str, Any]:
    body = req.get_media(default_when_empty=None)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    return body


def action_view(action: OperatorAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "operator": action.actor_id,
        "action": action.action,
        "job_id": action.job_id,
        "rift_id": action.rift_id,
        "detail": action.detail,
        "at": iso(action.created_at),
    }


class AdminBulkRetry:
    """POST /api/admin/jobs/retry: the filter, and the count the operator confirmed."""

    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        operator = require_admin(self.authenticate(req))
        body = _json_object(req)
        flt = job_filter(body)
        confirmed = body.get("confirmed_count")
        if not isinstance(confirmed, int) or isinstance(confirmed, bool) or confirmed < 1:
            raise InvalidInput(
                "confirmed_count must be the number of jobs you were shown and confirmed",
                field="confirmed_count",
            )

        def retry(session: Session, now: datetime) -> tuple[list[str], list[Job]]:
            jobs = retry_matching(session, flt, operator, now, confirmed_count=confirmed)
            return [job.id for job in jobs], jobs

        retried = self.work.run(retry)
        resp.status = falcon.HTTP_202
        resp.media = {"retried": len(retried), "job_ids": retried}


class AdminReviewDecision:
    """POST /api/admin/rifts/{id}/decisions: release, refund or ask for new proof."""

    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        operator = require_admin(self.authenticate(req))
        body = _json_object(req)
        try:
            decision = ReviewDecision(str(body.get("decision")))
        except ValueError:
            names = ", ".join(d.value for d in ReviewDecision)
            raise InvalidInput(f"decision must be one of: {names}", field="decision") from None
        reason = body.get("reason") or ""
        version = body.get("version")
        if not isinstance(reason, str):
            raise InvalidInput("reason must be text", field="reason")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise InvalidInput("version must be the rift version you were shown", field="version")

        def decide(session: Session, now: datetime) -> tuple[dict[str, Any], list[Job]]:
            rift, jobs = decide_review(
                session,
                rift_id,
                operator,
                decision,
                reason=reason,
                expected_version=version,
                now=now,
                ids=self.work.ids,
            )
            return rift_view(rift), jobs

        resp.media = self.work.run(decide)


class AdminActions:
    """GET /api/admin/actions: who did what, newest first (?job_id=, ?rift_id=)."""

    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(self.authenticate(req))
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_ACTIONS_PAGE) or 50
        with self.work.read() as session:
            actions = recent_actions(
                session,
                limit=limit,
                job_id=req.get_param("job_id"),
                rift_id=req.get_param("rift_id"),
            )
            resp.media = {"actions": [action_view(a) for a in actions]}
