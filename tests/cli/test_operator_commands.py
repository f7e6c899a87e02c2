"""`rift link`, `rift jobs list|show|retry` and `rift queues`: the console on a terminal."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.auth import user_from_header
from service.cli import main
from service.domain.clock import new_id, utcnow
from service.domain.jobs import new_job
from service.domain.queues import QUEUE_NAMES, SCAN_ASSET, VERIFY_PROOF
from service.domain.users import Role
from service.models import Job, JobState, OperatorAction


@pytest.fixture
def rift_env(settings, sessions, redis_conn, monkeypatch):
    """The environment an operator's shell would have for this test's services."""
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    return settings


def dead_jobs(sessions, count: int, kind=SCAN_ASSET) -> list[str]:
    now = utcnow()
    with sessions() as session, session.begin():
        jobs = [
            new_job(session, kind, subject_id=new_id(), now=now - timedelta(minutes=i), ids=new_id)
            for i in range(count)
        ]
        for job in jobs:
            job.state = JobState.DEAD
            job.last_error = "clamd unreachable"
    return [job.id for job in jobs]


def test_rift_link_signs_in_through_the_fragment_only(rift_env, capsys):
    assert main(["link", "seller-1", "rift-42", "--base", "http://pages.example:8000"]) == 0
    link = capsys.readouterr().out.strip()

    page, _, fragment = link.partition("#token=")
    assert page == "http://pages.example:8000/rifts/rift-42"
    assert "?" not in link, "a token in a query string would land in access logs"
    user = user_from_header(f"Bearer {fragment}", rift_env.jwt_secret)
    assert (user.id, user.role) == ("seller-1", Role.USER)


def test_rift_link_ops_opens_the_console_as_an_admin(rift_env, capsys):
    assert main(["link", "--ops", "ops-1"]) == 0
    link = capsys.readouterr().out.strip()

    assert link.startswith(f"{rift_env.public_url}/ops#token=")
    user = user_from_header(f"Bearer {link.partition('#token=')[2]}", rift_env.jwt_secret)
    assert (user.id, user.role) == ("ops-1", Role.ADMIN)


def test_rift_link_needs_a_rift_or_ops(rift_env, capsys):
    assert main(["link", "seller-1"]) == 1
    assert "RIFT_ID" in capsys.readouterr().err


def test_rift_jobs_list_filters_and_pages_like_the_console(rift_env, sessions, capsys):
    dead = dead_jobs(sessions, 3)
    dead_jobs(sessions, 1, kind=VERIFY_PROOF)

    assert main(["jobs", "list", "--state", "DEAD", "--actor", "scan_asset", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 job(s) match; showing 2, newest first")
    assert dead[0] in out and dead[1] in out and dead[2] not in out
    cursor = out.rsplit("--cursor ", 1)[1].strip()

    assert main(["jobs", "list", "--actor", "scan_asset", "--cursor", cursor, "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [job["id"] for job in page["jobs"]] == [dead[2]]
    assert page["next_cursor"] is None


def test_rift_jobs_retry_all_says_how_many_then_retries_exactly_those(rift_env, sessions, capsys):
    dead = dead_jobs(sessions, 2)

    assert main(["jobs", "retry", "--all", "--state", "DEAD"]) == 0
    assert "add --confirm 2" in capsys.readouterr().out
    assert main(["jobs", "retry", "--all", "--state", "DEAD", "--confirm", "3"]) == 1
    assert "now matches 2" in capsys.readouterr().err
    assert main(["jobs", "retry", "--all", "--state", "DEAD", "--confirm", "2", "--as", "ana"]) == 0
    assert "2 job(s) queued again as ana" in capsys.readouterr().out

    with sessions() as session:
        states = set(session.scalars(select(Job.state).where(Job.id.in_(dead))))
        action = session.scalars(select(OperatorAction)).one()
    assert states <= {JobState.QUEUED, JobState.PENDING}
    assert (action.actor_id, action.action, action.detail["count"]) == ("ana", "retry_jobs", 2)


def test_rift_jobs_retry_and_show_one_job(rift_env, sessions, capsys):
    (job_id,) = dead_jobs(sessions, 1)

    assert main(["jobs", "retry", job_id, "--as", "ana"]) == 0
    assert main(["jobs", "show", job_id]) == 0
    out = capsys.readouterr().out

    assert f"job {job_id}: scan_asset on scan" in out
    assert "created (in the outbox)" in out
    assert "last error: clamd unreachable" in out
    assert "ana  retry_job" in out
    assert main(["jobs", "retry", job_id]) == 1, "a queued job is not retryable"
    assert "only FAILED or DEAD" in capsys.readouterr().err


def test_rift_queues_prints_every_queue(rift_env, capsys):
    assert main(["queues", "--json"]) == 0
    queues = json.loads(capsys.readouterr().out)["queues"]
    assert [q["queue"] for q in queues] == list(QUEUE_NAMES)
    assert {"depth", "delayed", "dead_letters", "oldest_age_s", "workers_alive"} <= set(queues[0])
