"""`rift link USER RIFT_ID` and `rift link --ops ADMIN`: sign-in links for the pages.

The token travels in the link's fragment (`#token=...`), which browsers never send to a
server: it reaches no access log. Anyone holding the link is signed in until it expires,
so send it as you would send the token itself.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from service.cli.command import Command, CommandError
from service.domain.users import Role
from service.settings import Settings
from service.web.links import OPS_PATH, rift_page_path, sign_in_link

DEFAULT_TTL_HOURS = 12.0


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id", help="who the link signs in (a seller, buyer or admin id)")
    parser.add_argument("rift_id", nargs="?", help="the rift whose proof page the link opens")
    parser.add_argument(
        "--ops", action="store_true", help="a link to the operator console (signs in as admin)"
    )
    parser.add_argument(
        "--admin", action="store_true", help="sign in with the admin role (implied by --ops)"
    )
    parser.add_argument("--hours", type=float, default=DEFAULT_TTL_HOURS, help="lifetime in hours")
    parser.add_argument(
        "--base", help="the service's address (default: RIFT_PUBLIC_URL, or http://127.0.0.1:8000)"
    )


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.ops == bool(args.rift_id):
        raise CommandError("give either a RIFT_ID (the proof page) or --ops (the console)")
    if not 0 < args.hours <= 24 * 30:
        raise CommandError("--hours must be more than 0 and at most 720 (30 days)")
    base = args.base or settings.public_url
    if not base.startswith(("http://", "https://")):
        raise CommandError("--base must be an http:// or https:// address")
    role = Role.ADMIN if args.ops or args.admin else Role.USER
    path = OPS_PATH if args.ops else rift_page_path(args.rift_id)
    ttl = timedelta(hours=args.hours)
    print(sign_in_link(base, path, args.user_id, role, settings.jwt_secret, ttl=ttl))


COMMAND = Command(
    name="link",
    help="print a sign-in link to a rift's proof page, or with --ops to the operator console",
    run=_run,
    add_arguments=_add_arguments,
)
