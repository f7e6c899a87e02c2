"""The schema: migrations match the models on both databases; the event log only grows."""

import pytest
from alembic import command
from alembic.config import Config

from service.domain.clock import utcnow
from service.models import ActorRole, AppendOnlyViolation, RiftEvent
from tests.support.databases import REPO_ROOT
from tests.support.flows import create_rift


def test_migrations_produce_exactly_the_models_schema(database_url):
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    # Raises if autogenerate would find any difference between models and migrated tables.
    command.check(config)


def test_rift_events_cannot_be_rewritten_or_deleted(client, auth, sessions):
    rift = create_rift(client, auth)
    with sessions() as session, session.begin():
        session.add(
            RiftEvent(
                rift_id=rift["id"],
                actor_role=ActorRole.SYSTEM,
                actor_id=None,
                from_status=None,
                to_status=None,
                kind="note",
                reason="x",
                created_at=utcnow(),
            )
        )
    with pytest.raises(AppendOnlyViolation), sessions() as session, session.begin():
        event = session.query(RiftEvent).filter_by(kind="note").one()
        event.reason = "rewritten"
    with pytest.raises(AppendOnlyViolation), sessions() as session, session.begin():
        session.delete(session.query(RiftEvent).filter_by(kind="note").one())
    with sessions() as session:
        assert session.query(RiftEvent).filter_by(kind="note").one().reason == "x"
