"""`rift token USER_ID`: mint a bearer token signed with this environment's JWT_SECRET."""

from __future__ import annotations

import argparse
from datetime import timedelta

from service.auth import mint_token
from service.cli.command import Command
from service.domain.users import Role
from service.settings import Settings

DEFAULT_TTL_HOURS = 12.0


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    parser.add_argument("--hours", type=float, default=DEFAULT_TTL_HOURS, help="lifetime in hours")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    ttl = timedelta(hours=args.hours)
    print(mint_token(args.user_id, Role(args.role), settings.jwt_secret, ttl=ttl))


COMMAND = Command(
    name="token",
    help="mint a development bearer token",
    run=_run,
    add_arguments=_add_arguments,
)
