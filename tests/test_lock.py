"""requirements.lock covers every dependency pyproject.toml declares, within its bounds.

`make` installs the lock with --no-deps, so a dependency added to pyproject.toml without
`make lock` would be missing on a fresh machine; this names it instead.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.processes import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def locked_versions() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in declared]


def extra_requirements(requirement: Requirement) -> list[Requirement]:
    """What `name[extra]` adds, read from the installed distribution's metadata."""
    added = []
    for line in metadata.requires(requirement.name) or ():
        dependency = Requirement(line)
        marker = dependency.marker
        # Only the lines an extra switches on: those without one are checked on their own.
        if marker is None or marker.evaluate({"extra": ""}):
            continue
        if any(marker.evaluate({"extra": extra}) for extra in requirement.extras):
            added.append(dependency)
    return added


def test_every_declared_dependency_is_locked_within_its_bounds() -> None:
    locked = locked_versions()
    problems = []
    for requirement in declared_requirements():
        for wanted in (requirement, *extra_requirements(requirement)):
            version = locked.get(canonicalize_name(wanted.name))
            if version is None:
                problems.append(f"{wanted} is not in requirements.lock")
            elif not wanted.specifier.contains(version, prereleases=True):
                problems.append(f"{wanted} but requirements.lock has {version}")
    assert problems == [], "run `make lock` and commit requirements.lock:\n" + "\n".join(problems)
