"""The Dramatiq internals the wake-token broker and the queue statistics copy are unchanged.

`actors/wakeful.py` re-implements private parts of Dramatiq's Redis broker (the consumer's
fetch loop, the dispatch script's argument list, enqueue's hooks) and `actors/queue_stats.py`
reads the Redis keys Dramatiq's dispatch script writes. pyproject.toml pins the minor version
they were copied from; this test fails loudly on any upgrade that changes one of them, so the
copies are re-read against the new source before the upgrade lands.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import dq_name, xq_name

from actors.queue_stats import RedisQueueStats

COPIED_FROM_VERSION = "2.2.1"
WAIT_S = 0.05


def _lua(name: str) -> bytes:
    return (resources.files("dramatiq.brokers") / "redis" / name).read_bytes()


def _source(obj: Callable[..., Any]) -> bytes:
    return inspect.getsource(obj).encode()


# What each copy relies on -> (sha256 of Dramatiq's text when it was copied, where the copy is).
COPIED_INTERNALS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "RedisBroker.enqueue": (
        lambda: _source(RedisBroker.enqueue),
        "e1590deaae2f786a112a39bbea6003e910489c7e69f3bc227fca16a2d898e9ee",
        "wakeful.py WakefulRedisBroker.enqueue_many (options, hooks)",
    ),
    "RedisBroker._dispatch": (
        lambda: _source(RedisBroker._dispatch),
        "ee77793d07f17bbefbffb5da1da34b5bcce1d5d7eb78eb793a6863eb397fd3d5",
        "wakeful.py _pipeline_enqueue (the dispatch script's arguments, in order)",
    ),
    "RedisBroker._should_do_maintenance": (
        lambda: _source(RedisBroker._should_do_maintenance),
        "12c5be867fd067ada71dc514a5475f76a9747c0179445b8c9e62303dfda93419",
        "wakeful.py _pipeline_enqueue",
    ),
    "RedisBroker._max_unpack_size": (
        lambda: _source(RedisBroker._max_unpack_size),
        "502754eaaa6b949e629d19f1214557e0863f68bea604d747f2ae6f4774b1cd78",
        "wakeful.py _pipeline_enqueue",
    ),
    "RedisBroker.consumer_class": (
        lambda: _source(RedisBroker.consumer_class.fget),  # type: ignore[attr-defined]
        "43d97c3b7d756fe2b21d53d930e6758dc0427b0b9e1a8117cd6882294a7db057",
        "wakeful.py WakefulRedisBroker.consumer_class",
    ),
    "_RedisConsumer.__init__": (
        lambda: _source(_RedisConsumer.__init__),
        "c626986d71660eb6baa1cc492a70cb13f23f7cfe794d3f049a5b8f5eff302921",
        "wakeful.py _WakefulConsumer (message_cache, misses, prefetch, timeout)",
    ),
    "_RedisConsumer.outstanding_message_count": (
        lambda: _source(_RedisConsumer.outstanding_message_count.fget),  # type: ignore[attr-defined]
        "e428a98a5f25c9274bd745a23fd8bb12e70c1c4b25af00d9942e3d5531686436",
        "wakeful.py _WakefulConsumer._wait",
    ),
    "_RedisConsumer.__next__": (
        lambda: _source(_RedisConsumer.__next__),
        "b8245bc4ab8044d67d72216baca5e5be0d07fccce15c443a5887b6397c9906e1",
        "wakeful.py _WakefulConsumer.__next__ (the fetch loop, idle sleep replaced)",
    ),
    "dq_name": (
        lambda: _source(dq_name),
        "4b62771aca29830b4cf9cdc98be36b624407fccb87482a6e7dac6daeb31f0c83",
        "queue_stats.py RedisQueueStats.read (the .DQ suffix)",
    ),
    "xq_name": (
        lambda: _source(xq_name),
        "6a4a012a8ad6caebf58f05fb691a4db42eb20a40643d0887ad1823914cedbbcc",
        "queue_stats.py RedisQueueStats.read (the .XQ suffix)",
    ),
    "redis/dispatch.lua": (
        lambda: _lua("dispatch.lua"),
        "ba4d872e4fb204ebc3f73ca4719265a9946d70e847856c125314f01a8c90540c",
        "queue_stats.py (key layout, message_timestamp) and wakeful.py (the enqueue command)",
    ),
}


@pytest.mark.parametrize("name", sorted(COPIED_INTERNALS))
def test_dramatiq_internal_is_the_one_that_was_copied(name: str) -> None:
    read, copied_sha256, copy = COPIED_INTERNALS[name]
    now = hashlib.sha256(read()).hexdigest()
    assert now == copied_sha256, (
        f"Dramatiq {dramatiq.__version__} changed {name} (copied from {COPIED_FROM_VERSION}), "
        f"which actors/{copy} relies on: compare the new source with the copy, update the "
        f"copy, then record sha256 {now} here and move the pin in pyproject.toml"
    )


def test_queue_statistics_read_the_keys_dramatiq_writes(redis_conn: redis.Redis) -> None:
    # Given a dead-lettered, a delayed and a ready message, written by Dramatiq itself
    broker = RedisBroker(client=redis_conn)
    broker.declare_queue("internals")
    message = dramatiq.Message(
        queue_name="internals", actor_name="noop", args=(), kwargs={}, options={}
    )
    broker.enqueue(message.copy(message_id="dead"))
    consumer = broker.consume("internals", prefetch=1, timeout=100)
    taken = next(consumer)
    assert taken is not None and taken.message_id == "dead"
    consumer.nack(taken)
    consumer.close()
    broker.enqueue(message.copy(message_id="delayed"), delay=60_000)
    broker.enqueue(message.copy(message_id="ready"))
    time.sleep(WAIT_S)
    # When the statistics read them
    (snapshot,) = RedisQueueStats(redis_conn, ["internals"]).read()
    # Then each is counted where Dramatiq put it, and the ready one's age is its wait
    assert (snapshot.depth, snapshot.delayed, snapshot.dead_letters) == (1, 1, 1)
    assert WAIT_S <= snapshot.oldest_age_s < 60.0
