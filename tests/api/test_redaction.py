"""Nothing a seller wrote leaves the database by accident: not in logs, Sentry or API errors.

PostgreSQL's DETAIL line quotes the failing row; with bound parameters hidden and error
messages cut to their primary line, a marked proof text that makes a real write fail (in the
API and in a worker) must appear nowhere outside the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from service.domain.queues import VERIFY_PROOF
from service.settings import Settings
from tests.monitoring.sentry_inbox import SentryInbox
from tests.monitoring.stack import HttpClient, Stack
from tests.support.flows import DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

MARK = "MARK-7f3a-seller-private-gate-code-4412"
# First: PostgreSQL's DETAIL quotes the first 64 bytes of each column of the failing row.
MARKED_TEXT = f"{MARK} " + DELIVERY_NOTE
JOB_TIMEOUT_S = 30.0
EVENT_TIMEOUT_S = 10.0


@pytest.fixture
def inbox() -> Iterator[SentryInbox]:
    running = SentryInbox().start()
    yield running
    running.stop()


def refuse_marked_rows(engine: sa.Engine) -> None:
    """Make every write of a marked asset fail the way a real constraint does (with DETAIL)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE assets ADD CONSTRAINT test_refuses_marked_text "
                f"CHECK (value_text NOT LIKE '%{MARK}%') NOT VALID"
            )
        )


def allow_marked_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("ALTER TABLE assets DROP CONSTRAINT IF EXISTS test_refuses_marked_text")
        )


# The leak under test is PostgreSQL's DETAIL line, which quotes the failing row.
@pytest.mark.postgresql_only
def test_a_marked_text_in_failing_writes_reaches_no_log_sentry_event_or_api_error(
    settings: Settings,
    engine: sa.Engine,
    tmp_path: Path,
    redis_conn: redis.Redis,
    auth,
    inbox: SentryInbox,
) -> None:
    stack = Stack(settings, tmp_path, redis_conn)
    try:
        api = stack.api(workers=1, threads=2, SENTRY_DSN=inbox.dsn)
        stack.wait_ready(api)
        client = HttpClient(api.url)

        # Given a proof whose text carries the mark, accepted while the database still takes it
        rift = funded_rift(client, auth)
        accepted = submit(client, auth, rift["id"], fields={"text": MARKED_TEXT})
        assert accepted.status_code == 202, accepted.text
        refuse_marked_rows(engine)

        # When the worker's write of that asset fails on every attempt
        pool = stack.pool([VERIFY_PROOF.queue_name], SENTRY_DSN=inbox.dsn)
        stack.wait_ready(pool)
        job_url = f"/api/jobs/{accepted.json['verification_job_id']}"

        def job() -> dict[str, object]:
            return dict(client.simulate_get(job_url, headers=auth(SELLER)).json)

        wait_for(lambda: job()["state"] == "DEAD", JOB_TIMEOUT_S, "the job to fail for good")
        last_error = str(job()["last_error"])
        # and the API's own insert of another marked proof fails
        other = funded_rift(client, auth)
        refused = submit(client, auth, other["id"], fields={"text": MARKED_TEXT})
        inbox.wait_for_events(2, EVENT_TIMEOUT_S)
        pool.process.stop()
        api.process.stop()
    finally:
        allow_marked_rows(engine)
        stack.stop_all()
    # Then the failures are reported by class, and the mark is nowhere
    assert "IntegrityError" in last_error and MARK not in last_error
    assert refused.status_code == 500
    assert MARK not in refused.text
    logs = api.process.output() + pool.process.output()
    assert "IntegrityError" in logs, "the failures were not logged at all"
    assert MARK not in logs
    assert MARK.encode() not in inbox.raw()
