"""`rift migrate`: bring the database schema to the newest migration."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

from service.cli.command import Command, CommandError
from service.settings import Settings

# The checkout's alembic.ini, whatever the current directory: the project is installed
# editable from the checkout, which holds the migrations next to the package.
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def migrate(settings: Settings) -> None:
    """Bring the database schema to the newest migration."""
    if not ALEMBIC_INI.is_file():
        raise CommandError(
            f"{ALEMBIC_INI} not found: install the project from its checkout "
            "(pip install -e .) so the migrations travel with it"
        )
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, "head")


def _run(_: argparse.Namespace, settings: Settings) -> None:
    migrate(settings)


COMMAND = Command(name="migrate", help="apply database migrations", run=_run)
