"""The README's table of operator commands lists every registered `rift` command."""

from __future__ import annotations

import re

from service.cli import COMMANDS
from tests.support.processes import REPO_ROOT

README = REPO_ROOT / "README.md"


def documented_commands() -> set[str]:
    section = README.read_text().split("### Operator commands", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `rift ([a-z-]+)", section, re.MULTILINE))


def test_every_rift_command_has_a_row_in_the_readme() -> None:
    registered = {command.name for command in COMMANDS}
    assert registered - documented_commands() == set(), "add rows to README's Operator commands"
    assert documented_commands() - registered == set(), "README lists commands rift lacks"
