"""Settings: one declaration per variable, read, written for child processes and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import (
    DEV_JWT_SECRET,
    DEV_LICENSE_KEY_SECRET,
    MIN_SECRET_BYTES,
    Settings,
    SettingsError,
    documented_default,
    env_fields,
)
from tests.support.settings import test_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def configuration_table() -> dict[str, str]:
    """README's configuration rows: variable -> its default cell, backticks dropped."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    defaults: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names_cell, default_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names = re.findall(r"`([^`]+)`", names_cell)
        cells = [c.replace("`", "").strip() for c in default_cell.split(" / ")]
        for position, name in enumerate(names):
            defaults[name] = cells[position] if len(cells) == len(names) else default_cell
    return defaults


def test_the_readme_lists_every_variable_with_its_default() -> None:
    documented = configuration_table()
    missing = [var.name for _, var in env_fields() if var.name not in documented]
    assert missing == [], f"add these to the README's configuration table: {missing}"
    for setting, var in env_fields():
        assert documented[var.name].startswith(documented_default(setting, var)), var.name


def test_a_child_process_environment_reads_back_the_same_settings(tmp_path: Path) -> None:
    settings = test_settings(
        "postgresql+psycopg://root@127.0.0.1/rift", "redis://127.0.0.1:6379/3", tmp_path, 3311
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_unset_variables_take_the_declared_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"RIFT_ENV": "development", "RIFT_DATA_DIR": str(tmp_path)})
    assert settings.max_file_bytes == 50 * 1024 * 1024
    assert settings.sentry_dsn is None
    assert settings.database_url == f"sqlite:///{tmp_path / 'rift.sqlite3'}"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("MAX_FILE_BYTES", "50MB", "whole number"),
        ("SCAN_TIMEOUT_S", "soon", "a number"),
        ("URL_REACHABILITY_CHECK", "maybe", "true or false"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_variable(name: str, raw: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be .*{says}"):
        Settings.from_env({"RIFT_ENV": "development", name: raw})


REAL_SECRETS = {"JWT_SECRET": "j" * MIN_SECRET_BYTES, "LICENSE_KEY_SECRET": "k" * MIN_SECRET_BYTES}


@pytest.mark.parametrize("environment", [None, "production", "prod", "Production", "staging"])
def test_anything_but_development_refuses_to_start_without_real_secrets(
    environment: str | None,
) -> None:
    environ = {} if environment is None else {"RIFT_ENV": environment}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    message = str(refused.value)
    assert "JWT_SECRET and LICENSE_KEY_SECRET must be set" in message
    assert "RIFT_ENV=development" in message and "token_urlsafe" in message


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({**REAL_SECRETS, "JWT_SECRET": "x" * (MIN_SECRET_BYTES - 1)}, "JWT_SECRET is 31 bytes"),
        ({"JWT_SECRET": "j" * MIN_SECRET_BYTES}, "LICENSE_KEY_SECRET is not set"),
        (
            {**REAL_SECRETS, "LICENSE_KEY_SECRET": DEV_LICENSE_KEY_SECRET},
            "LICENSE_KEY_SECRET is the public development value",
        ),
    ],
)
def test_production_names_the_secret_to_fix(secrets: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"RIFT_ENV": "production", **secrets})


def test_production_with_real_secrets_starts_and_logs_json() -> None:
    settings = Settings.from_env({"RIFT_ENV": "Production", **REAL_SECRETS})
    assert (settings.environment, settings.log_format) == ("production", "json")
    assert settings.jwt_secret == REAL_SECRETS["JWT_SECRET"]


@pytest.mark.parametrize("environment", ["development", "Development"])
def test_only_explicit_development_runs_on_the_development_secrets(environment: str) -> None:
    settings = Settings.from_env({"RIFT_ENV": environment})
    assert settings.environment == "development"
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.log_format == "console"
