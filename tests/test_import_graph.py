"""The import graph points one way: the domain knows neither Falcon nor Dramatiq, and the
API reaches the broker only through the transport, never through a module of the worker."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import actors
import service.domain
from tests.support.processes import REPO_ROOT

# What the API may load of actors/: the broker's construction, dispatch, probe and stats.
TRANSPORT_MODULES = frozenset(
    {
        "actors",
        "actors.transport",
        "actors.dispatch",
        "actors.queue_stats",
        "actors.wakeful",
        "actors.rabbitmq",
    }
)


def modules_loaded_by(*imports: str) -> set[str]:
    """Import modules in a fresh interpreter; return every module it then holds."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(imports)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def package_modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [info.name for info in pkgutil.walk_packages(path, prefix)]


def test_the_domain_imports_neither_falcon_nor_dramatiq_nor_the_workers() -> None:
    loaded = modules_loaded_by(*package_modules(service.domain))

    leaks = {
        name for name in loaded if name.split(".")[0] in {"falcon", "dramatiq", "actors", "redis"}
    }
    assert leaks == set()


def test_the_api_reaches_the_broker_only_through_the_transport() -> None:
    loaded = modules_loaded_by("service.api.bootstrap", "service.api.app")

    worker_modules = set(package_modules(actors)) - TRANSPORT_MODULES
    assert "actors.transport" in loaded, "the API builds its broker from the transport"
    assert sorted(loaded & worker_modules) == []


def test_the_transport_list_names_modules_that_exist() -> None:
    assert set(package_modules(actors)) | {"actors"} >= TRANSPORT_MODULES
