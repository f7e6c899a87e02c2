"""Every operation of /openapi.json fuzzed by schemathesis, as seller, buyer, stranger, admin.

Against gunicorn on real services (the session's database, Redis): no response is a 5xx,
and every response has a documented status, content type and body schema. Failing cases
found this way are kept as tests (tests/api/test_hostile_input.py, test_risk_and_bodies.py).

Budget: MAX_EXAMPLES_PER_OPERATION generated cases per operation, role and variant (valid
data, invalid data, valid data on a real rift), and the run stops starting operations after
FUZZ_BUDGET_S seconds (about a minute on two cores). It runs on the PostgreSQL backend.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.domain.users import Role
from service.settings import Settings
from tests.monitoring.stack import HttpClient, Stack
from tests.support.flows import BUYER, OPERATOR, SELLER, STRANGER, funded_rift
from tests.support.summary import report

pytestmark = pytest.mark.slow

MAX_EXAMPLES_PER_OPERATION = 10
FUZZ_BUDGET_S = 120.0
ROLES = ((SELLER, Role.USER), (BUYER, Role.USER), (STRANGER, Role.USER), (OPERATOR, Role.ADMIN))
# The JSON API; the HTML pages answer text/html (errors included) and are left out here.
JSON_PATHS = ("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    headers: dict[str, str],
    statuses: Counter[int],
    mode: schemathesis.GenerationMode,
    path_parameters: dict[str, str] | None,
) -> None:
    """Send MAX_EXAMPLES_PER_OPERATION generated cases as one caller; any failed check raises."""

    @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=base_url, headers=headers, checks=CHECKS, timeout=10
        )
        statuses[response.status_code] += 1

    try:
        call()
    except Unsatisfiable:
        # Negative data for an operation with nothing to make invalid (no parameters, no
        # body): there is no such request to send.
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label


def variants(
    operation: schemathesis.APIOperation, rift_id: str
) -> list[tuple[schemathesis.GenerationMode, dict[str, str] | None]]:
    """Valid and invalid data everywhere; valid data on a real rift where the path takes one."""
    runs: list[tuple[schemathesis.GenerationMode, dict[str, str] | None]] = [
        (schemathesis.GenerationMode.POSITIVE, None),
        (schemathesis.GenerationMode.NEGATIVE, None),
    ]
    if "{rift_id}" in operation.path:
        runs.append((schemathesis.GenerationMode.POSITIVE, {"rift_id": rift_id}))
    return runs


# Once is enough for the budget: on PostgreSQL, which enforces column lengths.
@pytest.mark.postgresql_only
def test_every_operation_survives_fuzzing_in_every_role(
    settings: Settings, tmp_path: Path, redis_conn: redis.Redis, auth: Callable[..., dict[str, str]]
) -> None:
    stack = Stack(settings, tmp_path, redis_conn)
    try:
        api = stack.api(workers=1, threads=4)
        stack.wait_ready(api)
        # A funded rift the roles relate to, so that some generated ids are not only 404s.
        rift_id = funded_rift(HttpClient(api.url), auth)["id"]
        schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        operations = 0
        started = time.monotonic()
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith(JSON_PATHS):
                continue  # HTML pages (service/web): their contract is not this JSON one
            operations += 1
            for user, user_role in ROLES:
                headers = auth(user, user_role)
                if time.monotonic() - started > FUZZ_BUDGET_S:
                    break

                for mode, path_parameters in variants(operation, rift_id):
                    try:
                        fuzz_operation(operation, api.url, headers, statuses, mode, path_parameters)
                    # Schemathesis raises a BaseExceptionGroup of failed checks; collect every
                    # operation's, not just the first one's.
                    except BaseExceptionGroup as failure:
                        failures.append(
                            f"{operation.label} as {user} ({mode.value}, {path_parameters}): "
                            f"{failure.exceptions}"[:2000]
                        )
    finally:
        stack.stop_all()
    requests = sum(statuses.values())
    line = (
        f"fuzz: {operations} operations x {len(ROLES)} roles x up to 3 variants, "
        f"{requests} requests, "
        f"{sum(n for s, n in statuses.items() if 400 <= s < 500)} 4xx, "
        f"{sum(n for s, n in statuses.items() if s >= 500)} 5xx; by status {dict(statuses)}"
    )
    print("\n" + line)
    report(line)
    assert operations >= 15
    assert not any(status >= 500 for status in statuses)
    assert failures == [], "\n\n".join(failures)
