"""Schemathesis against the OpenAPI description: generated requests to every API operation never get a
500, and every answer matches the documented status codes and schemas. Bounded to finish in CI: a few
examples per operation, and no shrinking time limit."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from narcotrack.access.accounts import create_api_token
from narcotrack.config import Settings
from narcotrack.store.db import session_scope
from narcotrack.store.schema import User
from narcotrack.web.app import create_app
from tests.web.helpers import make_user

EXAMPLES = 12


def test_no_operation_answers_500(sqlite_engine: Engine) -> None:
    make_user(sqlite_engine, "fuzzer", "KH-NACD", "analyst")
    with session_scope(sqlite_engine) as s:
        user = s.query(User).filter_by(username="fuzzer").one()
        token = create_api_token(s, user, "schemathesis")
    app = create_app(sqlite_engine, settings=Settings(totp_roles=""))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # every record type's five routes, and the rest

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:200]}")

        check()
    assert failures == []
    # the run reached the handlers (not only the validation layer): some calls succeeded, some were refused
    assert statuses[200] + statuses[201] > len(operations) and statuses[422] > 0, statuses
