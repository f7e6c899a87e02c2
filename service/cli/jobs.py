"""`rift jobs list | show | retry`: the console's job views and actions, on a terminal.

Reads and writes the job records directly (the database in DATABASE_URL); a retried job is
handed to the broker at once, or left in the outbox for the scheduler's relay when the
broker does not answer. Every retry is recorded as an operator action, like the console's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from actors.transport import connect_transport
from service.api.views import iso, job_view
from service.cli.command import Command, CommandError
from service.db import SessionFactory, create_db_engine, create_session_factory
from service.domain.clock import new_id, utcnow
from service.domain.errors import DomainError
from service.domain.job_search import JobFilter, job_timeline, parse_states, search_jobs
from service.domain.jobs import get_job
from service.domain.operator_actions import (
    count_retryable,
    recent_actions,
    retry_matching,
    retry_one,
)
from service.domain.queues import ACTOR_NAMES
from service.domain.users import Role, User
from service.domain.work import UnitOfWork
from service.models import Job
from service.settings import Settings
from service.web.links import ConsoleLinks

DURATION = re.compile(r"^(\d+)([smhd])$")
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
ERROR_COLUMN_CHARS = 60


def duration_s(text: str) -> int:
    """Read 90s, 5m, 2h or 3d as seconds."""
    match = DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 5m, 2h or 3d")
    return int(match[1]) * SECONDS_PER_UNIT[match[2]]


def _add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", action="append", default=[], help="repeatable: FAILED, DEAD...")
    parser.add_argument("--actor", choices=ACTOR_NAMES)
    parser.add_argument("--rift", dest="rift_id")
    parser.add_argument("--job", dest="job_id")
    parser.add_argument("--older-than", dest="min_age_s", type=duration_s, metavar="AGE")
    parser.add_argument("--newer-than", dest="max_age_s", type=duration_s, metavar="AGE")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="jobs matching a filter, newest first")
    _add_filter_arguments(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="the next page, as the previous page printed it")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="one job: record, timeline, error, result, actions")
    show.add_argument("job_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    retry = actions.add_parser(
        "retry", help="run FAILED or DEAD jobs again: by id, or all matching a filter"
    )
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    retry.add_argument("--all", action="store_true", help="every FAILED or DEAD job matching")
    _add_filter_arguments(retry)
    retry.add_argument(
        "--confirm", type=int, metavar="N", help="the count --all printed: retry exactly those"
    )
    retry.add_argument(
        "--as", dest="operator", help="who is recorded as acting (default: cli:$USER)"
    )


def _filter(args: argparse.Namespace, *, default_states: tuple[str, ...] = ()) -> JobFilter:
    try:
        states = parse_states(args.state or list(default_states))
    except DomainError as exc:
        raise CommandError(exc.message) from None
    return JobFilter(
        states=states,
        actor=args.actor,
        rift_id=args.rift_id,
        job_id=args.job_id,
        min_age_s=args.min_age_s,
        max_age_s=args.max_age_s,
    )


@contextmanager
def _database(settings: Settings) -> Iterator[SessionFactory]:
    engine = create_db_engine(settings.database_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


def _row(job: Job) -> str:
    error = (job.last_error or "").replace("\n", " ")[:ERROR_COLUMN_CHARS]
    return (
        f"{job.id}  {job.actor_name:<14} {job.state.value:<9} {job.attempts:>3}  "
        f"{job.rift_id or '-':<36}  {iso(job.created_at)}  {error}"
    )


def _list(args: argparse.Namespace, settings: Settings) -> None:
    flt = _filter(args, default_states=("FAILED", "DEAD"))
    with _database(settings) as sessions, sessions() as session:
        try:
            page = search_jobs(session, flt, utcnow(), limit=args.limit, cursor=args.cursor)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if args.json:
            print(
                json.dumps(
                    {
                        "jobs": [job_view(j) for j in page.jobs],
                        "total": page.total,
                        "total_is_lower_bound": page.total_is_lower_bound,
                        "next_cursor": page.next_cursor,
                    },
                    indent=2,
                )
            )
            return
        more = "+" if page.total_is_lower_bound else ""
        print(f"{page.total}{more} job(s) match; showing {len(page.jobs)}, newest first")
        for job in page.jobs:
            print(_row(job))
        if page.next_cursor:
            print(f"next page: add --cursor {page.next_cursor}")


def _show(args: argparse.Namespace, settings: Settings) -> None:
    links = ConsoleLinks(settings.grafana_url, settings.sentry_issues_url)
    with _database(settings) as sessions, sessions() as session:
        try:
            job = get_job(session, args.job_id)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        actions = recent_actions(session, job_id=job.id, limit=50)
        if args.json:
            view: dict[str, Any] = job_view(job)
            view["actions"] = [
                {"operator": a.actor_id, "action": a.action, "at": iso(a.created_at)}
                for a in actions
            ]
            view["sentry_url"] = links.sentry_for(job)
            print(json.dumps(view, indent=2))
            return
        print(f"job {job.id}: {job.actor_name} on {job.queue_name}, {job.state.value}")
        print(f"  rift {job.rift_id or '-'}  proof {job.proof_id or '-'}  subject {job.subject_id}")
        for moment, what in job_timeline(job, actions):
            print(f"  {iso(moment)}  {what}")
        print("last error:", job.last_error or "none")
        print("result:", json.dumps(job.result) if job.result else "none")
        if links.sentry_for(job):
            print("sentry:", links.sentry_for(job))
        for action in actions:
            print(f"action: {iso(action.created_at)}  {action.actor_id}  {action.action}")


def _retry(args: argparse.Namespace, settings: Settings) -> int:
    operator = User(id=args.operator or f"cli:{getpass.getuser()}", role=Role.ADMIN)
    if args.all == bool(args.job_ids):
        raise CommandError("give JOB_IDs, or --all with a filter (and --confirm N)")
    flt = _filter(args)
    with _database(settings) as sessions:
        if args.all and args.confirm is None:
            # The terminal's confirmation: say how many, act only when told that number.
            with sessions() as session:
                count = count_retryable(session, flt, utcnow())
            print(f"{count} FAILED or DEAD job(s) match; to retry them, add --confirm {count}")
            return 0
        transport = connect_transport(settings, sessions)
        work = UnitOfWork(sessions, transport.dispatcher, utcnow, new_id)

        def retry(session: Session, now: datetime) -> tuple[list[str], list[Job]]:
            if args.all:
                jobs = retry_matching(session, flt, operator, now, confirmed_count=args.confirm)
            else:
                jobs = [retry_one(session, job_id, operator, now) for job_id in args.job_ids]
            return [job.id for job in jobs], jobs

        try:
            retried = work.run(retry)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            transport.broker.close()
    for job_id in retried:
        print(f"job {job_id} queued again")
    print(f"{len(retried)} job(s) queued again as {operator.id}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int | None:
    if args.jobs_action == "list":
        _list(args, settings)
    elif args.jobs_action == "show":
        _show(args, settings)
    else:
        return _retry(args, settings)
    return None


COMMAND = Command(
    name="jobs",
    help="list, show and retry jobs (what the console's Jobs section does)",
    run=_run,
    add_arguments=_add_arguments,
)
