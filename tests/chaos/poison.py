"""A worker setup whose verification dies with its process on one marked proof.

`dramatiq tests.chaos.poison:setup` is the real worker (actors.broker:setup) with one
change: verifying a proof that carries a file named POISON_FILE_NAME SIGKILLs the worker
process, every time, the way a parser crash or an OOM kill on a hostile file would. A
crash like that never reaches Dramatiq's retry counter (it dies with the process).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select

from actors.broker import setup as real_setup
from service.db import create_db_engine, create_session_factory
from service.domain.queues import VERIFY_PROOF
from service.models import Asset
from service.settings import Settings

POISON_FILE_NAME = "poison.txt"


def setup() -> RedisBroker:
    broker = real_setup()
    sessions = create_session_factory(create_db_engine(Settings.from_env().database_url))
    actor = broker.get_actor(VERIFY_PROOF.actor_name)
    verify = actor.fn

    def verify_or_die(proof_id: str) -> Any:
        with sessions() as session:
            names = session.scalars(select(Asset.original_name).where(Asset.proof_id == proof_id))
            if POISON_FILE_NAME in set(names):
                os.kill(os.getpid(), signal.SIGKILL)
        return verify(proof_id)

    actor.fn = verify_or_die
    return broker
