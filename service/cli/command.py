"""What a `rift` subcommand is: a name, its arguments and the function it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from service.settings import Settings

# Exit status of a command: None or 0 for success, anything else fails the shell command.
ExitStatus = int | None


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """Add nothing: the command takes no arguments."""


@dataclass(frozen=True)
class Command:
    """One `rift` subcommand.

    `add_arguments` receives the subcommand's own parser (a command with subcommands of
    its own, like `rift jobs list`, adds them there and reads them back from the
    namespace in `run`). `run` gets the parsed arguments and the settings read from the
    environment; it prints what the operator asked for and returns an exit status, or
    raises `CommandError` with a message that says what to fix.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace, Settings], ExitStatus]
    add_arguments: Callable[[argparse.ArgumentParser], None] = no_arguments


class CommandError(Exception):
    """The operator asked for something the command cannot do; the message says why."""
