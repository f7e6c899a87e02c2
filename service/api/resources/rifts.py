"""Rifts: create, read, transition, the platform's risk assessment, and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
from sqlalchemy.orm import Session

from service.api import schemas
from service.api.resources import Authenticate
from service.api.validation import BodySchema, json_body
from service.api.views import event_view, rift_view
from service.domain.rifts import (
    NewRift,
    RiskAssessment,
    assess_risk,
    create_rift,
    load_rift,
    request_transition,
    rift_events,
)
from service.domain.work import UnitOfWork
from service.models import ItemType, Job, RiftStatus

NEW_RIFT = BodySchema(schemas.NEW_RIFT)
TRANSITION_REQUEST = BodySchema(schemas.TRANSITION_REQUEST)
RISK_ASSESSMENT = BodySchema(schemas.RISK_ASSESSMENT)


class RiftCollection:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.authenticate(req)
        body = json_body(req, NEW_RIFT)
        spec = NewRift(
            title=body["title"],
            item_type=ItemType(body["item_type"]),
            seller_id=body["seller_id"],
            subtotal_minor=body["subtotal"],
            currency=body["currency"],
        )
        view = self.work.run(
            lambda session, now: (
                rift_view(create_rift(session, user, spec, now=now, ids=self.work.ids)),
                [],
            )
        )
        resp.status = falcon.HTTP_201
        resp.location = f"/api/rifts/{view['id']}"
        resp.media = view


class RiftItem:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        with self.work.read() as session:
            resp.media = rift_view(load_rift(session, rift_id, user))


class RiftTransitions:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        body = json_body(req, TRANSITION_REQUEST)
        target = RiftStatus(body["to"])

        def move(session: Session, now: datetime) -> tuple[dict[str, Any], list[Job]]:
            rift, jobs = request_transition(
                session,
                rift_id,
                user,
                target,
                expected_version=body.get("version"),
                reason=body.get("reason") or "requested over the API",
                now=now,
                ids=self.work.ids,
            )
            return rift_view(rift), jobs

        resp.media = self.work.run(move)


class RiftRisk:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_put(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        body = json_body(req, RISK_ASSESSMENT)
        assessment = RiskAssessment(
            risk_score=body["risk_score"],
            requires_manual_review=body["requires_manual_review"],
            reason=body["reason"],
        )
        resp.media = self.work.run(
            lambda session, now: (
                rift_view(assess_risk(session, rift_id, user, assessment, now=now)),
                [],
            )
        )


class RiftEvents:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        with self.work.read() as session:
            events = rift_events(session, rift_id, user)
            resp.media = {"rift_id": rift_id, "events": [event_view(e) for e in events]}
