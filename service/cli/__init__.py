"""Operator commands: `rift migrate | token | demo | link | jobs | queues`.

Also `python -m service.cli ...`.

To add a command, write a module in this package that defines `COMMAND = Command(...)`
(see `service/cli/command.py`) and list it in `COMMANDS`, the one registration point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import demo, jobs, link, migrate, queues, token
from service.cli.command import Command, CommandError
from service.settings import Settings, SettingsError

# In the order `rift --help` lists them.
COMMANDS: tuple[Command, ...] = (
    migrate.COMMAND,
    token.COMMAND,
    demo.COMMAND,
    link.COMMAND,
    jobs.COMMAND,
    queues.COMMAND,
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """One parser with a subcommand per registered command."""
    parser = argparse.ArgumentParser(prog="rift", description="Rift operator commands.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in commands:
        command_parser = sub.add_parser(entry.name, help=entry.help, description=entry.help)
        entry.add_arguments(command_parser)
        # Under a key of its own: a command's arguments may be called anything.
        command_parser.set_defaults(rift_command=entry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status for the shell."""
    args = build_parser().parse_args(argv)
    entry: Command = args.rift_command
    try:
        status = entry.run(args, Settings.from_env())
    except (CommandError, SettingsError) as exc:
        print(f"rift {entry.name}: {exc}", file=sys.stderr)
        return 1
    return status or 0
