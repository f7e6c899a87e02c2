"""One declaration per job kind: the actors, the stuck-job check and the metrics read it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from dramatiq.brokers.stub import StubBroker

from actors.broker import build_services, register_actors
from grafana.metric_contract import METRICS
from grafana.scrape_config import WORKER_POOLS
from service.db import SessionFactory
from service.domain.queues import ALL_JOB_KINDS, QUEUE_NAMES, SCAN_ASSET, JobKind, job_kind
from service.domain.retention import STUCK_AFTER
from service.observability.worker_metrics import WorkerMetrics
from service.settings import Settings


@pytest.fixture
def declared(settings: Settings, sessions: SessionFactory) -> StubBroker:
    broker = StubBroker()
    services = build_services(settings, broker, WorkerMetrics(), sessions)
    register_actors(broker, services)
    return broker


@pytest.mark.parametrize("kind", ALL_JOB_KINDS, ids=lambda kind: kind.actor_name)
def test_each_actor_runs_with_the_queue_and_limits_its_kind_declares(
    declared: StubBroker, settings: Settings, kind: JobKind
) -> None:
    actor = declared.get_actor(kind.actor_name)

    assert actor.queue_name == kind.queue_name
    assert actor.options["time_limit"] == kind.time_limit / timedelta(milliseconds=1)
    assert actor.options["max_age"] == kind.max_age / timedelta(milliseconds=1)
    assert actor.options["max_retries"] == kind.retries(settings.max_retries)


def test_every_declared_kind_has_an_actor_and_no_actor_lacks_a_declaration(
    declared: StubBroker,
) -> None:
    assert set(declared.get_declared_actors()) == {kind.actor_name for kind in ALL_JOB_KINDS}
    # Dramatiq declares each queue's delay queue (".DQ") beside it.
    queues = {q for q in declared.get_declared_queues() if not q.endswith(".DQ")}
    assert queues == set(QUEUE_NAMES)


def test_a_kind_with_its_own_retries_overrides_the_system_default() -> None:
    stubborn = replace(SCAN_ASSET, max_retries=9)

    assert stubborn.retries(3) == 9
    assert SCAN_ASSET.retries(3) == 3


def test_a_job_counts_as_stuck_only_after_every_kind_s_time_limit_has_passed() -> None:
    assert all(kind.time_limit < STUCK_AFTER for kind in ALL_JOB_KINDS)
    assert timedelta(minutes=15) == STUCK_AFTER


def test_job_records_find_their_kind_by_actor_name_and_an_unknown_name_is_an_error() -> None:
    assert job_kind("scan_asset") is SCAN_ASSET
    with pytest.raises(KeyError):
        job_kind("no_such_actor")


def test_the_metric_contract_and_the_scrape_config_name_exactly_the_declared_queues() -> None:
    queue_vocabularies = {
        metric.name: metric.values["queue"] for metric in METRICS if "queue" in metric.values
    }

    assert queue_vocabularies, "the queue metrics must declare their queue vocabulary"
    assert all(values == set(QUEUE_NAMES) for values in queue_vocabularies.values())
    assert tuple(WORKER_POOLS) == QUEUE_NAMES
