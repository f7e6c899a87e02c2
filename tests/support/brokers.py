"""The two brokers the lifecycle suites run on: Redis, and RabbitMQ in a vhost of our own.

Each test session gets its own RabbitMQ virtual host (made with rabbitmqctl, as the tests
run as root next to the server), so concurrent sessions never see each other's queues;
each test starts and ends with the vhost's queues deleted. A missing RabbitMQ or
rabbitmqctl fails the run, never skips it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import quote

import pika
import pika.exceptions
import pytest
import redis
from dramatiq.common import dq_name, xq_name

from actors.queue_stats import HEARTBEAT_KEY
from actors.rabbitmq import connection_parameters
from service.domain.queues import QUEUE_NAMES
from service.settings import Settings

RABBITMQ_HOST = "127.0.0.1:5672"
RABBITMQ_USER = "guest"
RABBITMQ_PASSWORD = "guest"
#: For `@pytest.mark.parametrize("broker", BROKERS, indirect=True)` (see tests/conftest.py).
BROKERS = ("redis", "rabbitmq")
RABBITMQCTL_TIMEOUT_S = 60.0


def rabbitmqctl(*args: str) -> None:
    try:
        done = subprocess.run(
            ["rabbitmqctl", "-q", *args],
            capture_output=True,
            text=True,
            timeout=RABBITMQCTL_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        pytest.fail("rabbitmqctl is required to give each test session its own RabbitMQ vhost")
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")


def create_vhost() -> str:
    """A fresh vhost that the guest user may use; returns its name."""
    vhost = f"rift-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
    return vhost


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)


def vhost_url(vhost: str) -> str:
    return f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{RABBITMQ_HOST}/{quote(vhost, safe='')}"


def delete_queues(url: str) -> None:
    """Delete every queue Dramatiq declares for the job kinds (a clean slate per test)."""
    try:
        connection = pika.BlockingConnection(connection_parameters(url))
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ on {RABBITMQ_HOST} is required for these tests: {exc!r}")
    try:
        channel = connection.channel()
        for queue in QUEUE_NAMES:
            for name in (queue, dq_name(queue), xq_name(queue)):
                channel.queue_delete(queue=name)  # a missing queue is no error here
    finally:
        connection.close()


def workers_alive(settings: Settings, queue: str) -> int:
    """Worker processes consuming queue, as the broker knows them."""
    if settings.uses_rabbitmq:
        assert settings.broker_url is not None
        connection = pika.BlockingConnection(connection_parameters(settings.broker_url))
        try:
            reply = connection.channel().queue_declare(queue=queue, passive=True)
            return int(reply.method.consumer_count)
        except pika.exceptions.ChannelClosedByBroker:
            return 0  # not declared yet: no worker has started consuming it
        finally:
            if connection.is_open:
                connection.close()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.zcard(HEARTBEAT_KEY.format(queue=queue)))
    finally:
        client.close()
