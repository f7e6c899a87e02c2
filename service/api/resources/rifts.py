"""Rifts: create, read, transition, and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
from sqlalchemy.orm import Session

from service.api.resources import Authenticate
from service.api.views import event_view, rift_view
from service.domain.errors import InvalidInput
from service.domain.rifts import NewRift, create_rift, load_rift, request_transition, rift_events
from service.domain.work import UnitOfWork
from service.models import ItemType, Job, RiftStatus


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    # bool is an int in Python; an amount or score of `true` is a client bug.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"{name} must be a {kind.__name__}", field=name)
    return value


def _enum_field(body: dict[str, Any], name: str, enum_type: type[Any]) -> Any:
    raw = _field(body, name, str)
    try:
        return enum_type(raw)
    except ValueError:
        names = ", ".join(m.value for m in enum_type)
        raise InvalidInput(f"{name} must be one of: {names}", field=name) from None


def json_body(req: falcon.Request) -> dict[str, Any]:
    body = req.get_media(default_when_empty=None)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    return body


class RiftCollection:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = self.authenticate(req)
        body = json_body(req)
        spec = NewRift(
            title=_field(body, "title", str),
            item_type=_enum_field(body, "item_type", ItemType),
            seller_id=_field(body, "seller_id", str),
            subtotal_minor=_field(body, "subtotal", int),
            currency=_field(body, "currency", str),
            risk_score=_field(body, "risk_score", int, required=False) or 0,
            requires_manual_review=bool(
                _field(body, "requires_manual_review", bool, required=False)
            ),
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
        body = json_body(req)
        target = _enum_field(body, "to", RiftStatus)
        expected_version = _field(body, "version", int, required=False)
        reason = _field(body, "reason", str, required=False) or "requested over the API"

        def move(session: Session, now: datetime) -> tuple[dict[str, Any], list[Job]]:
            rift, jobs = request_transition(
                session,
                rift_id,
                user,
                target,
                expected_version=expected_version,
                reason=reason[:500],
                now=now,
                ids=self.work.ids,
            )
            return rift_view(rift), jobs

        resp.media = self.work.run(move)


class RiftEvents:
    def __init__(self, authenticate: Authenticate, work: UnitOfWork) -> None:
        self.authenticate = authenticate
        self.work = work

    def on_get(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        user = self.authenticate(req)
        with self.work.read() as session:
            events = rift_events(session, rift_id, user)
            resp.media = {"rift_id": rift_id, "events": [event_view(e) for e in events]}
