"""The `rift` console script: installed with the project, usable from any directory."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import service.cli
from service.auth import user_from_header
from service.cli.command import Command
from service.domain.users import Role
from tests.support.databases import REPO_ROOT
from tests.support.processes import VENV_BIN

RIFT = VENV_BIN / "rift"
RUN_TIMEOUT_S = 60


def run_rift(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed script as an operator would: another directory, settings from env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RIFT_", "DATABASE_"))}
    return subprocess.run(
        [str(RIFT), *args],
        cwd=cwd,
        # Development unless a test says otherwise: anything else needs real secrets.
        env={**base, "RIFT_ENV": "development", **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def newest_migration() -> str | None:
    return ScriptDirectory.from_config(Config(str(REPO_ROOT / "alembic.ini"))).get_current_head()


def test_rift_migrate_from_another_directory_brings_the_database_to_the_newest_migration(
    tmp_path: Path,
) -> None:
    # Given a directory that is not the checkout, and an empty SQLite database
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite:///{tmp_path / 'rift.sqlite3'}"
    # When the operator migrates from there
    result = run_rift("migrate", cwd=elsewhere, DATABASE_URL=url, RIFT_DATA_DIR=str(tmp_path))
    # Then the schema is at the newest migration, and nothing was written where they stood
    assert result.returncode == 0, result.stderr
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert version == newest_migration()
    assert {"rifts", "proofs", "jobs"} <= tables
    assert list(elsewhere.iterdir()) == []


def test_rift_token_mints_a_token_signed_with_the_environments_secret(tmp_path: Path) -> None:
    secret = "console-script-test-secret-0123456789abcdef"
    result = run_rift("token", "ops-1", "--role", "admin", cwd=tmp_path, JWT_SECRET=secret)
    assert result.returncode == 0, result.stderr
    user = user_from_header(f"Bearer {result.stdout.strip()}", secret)
    assert (user.id, user.role) == ("ops-1", Role.ADMIN)


def test_rift_names_the_setting_to_fix_when_the_environment_is_wrong(tmp_path: Path) -> None:
    result = run_rift("token", "ops-1", cwd=tmp_path, RIFT_ENV="production")
    assert result.returncode == 1
    assert "JWT_SECRET and LICENSE_KEY_SECRET must be set" in result.stderr
    assert result.stdout == ""


def test_rift_demo_refuses_an_api_url_that_is_not_http(tmp_path: Path) -> None:
    result = run_rift("demo", "--api", "file:///etc/passwd", cwd=tmp_path)
    assert result.returncode == 1
    assert "--api must be an http:// or https:// URL" in result.stderr


def test_every_command_module_is_registered_once() -> None:
    # A module that defines COMMAND but is missing from the table would never be reachable.
    defined: list[Command] = []
    for module_info in pkgutil.iter_modules(service.cli.__path__):
        if module_info.name == "__main__":  # runs the script on import
            continue
        module = importlib.import_module(f"service.cli.{module_info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            defined.append(command)
    registered = list(service.cli.COMMANDS)
    assert sorted(c.name for c in defined) == sorted(c.name for c in registered)
    assert len({c.name for c in registered}) == len(registered)
