"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

The app runs in-process (in-process limits, demo model) behind schemathesis's ASGI transport,
lifespan included, once on SQLite and once on PostgreSQL: text PostgreSQL cannot store must be
refused there too, never answered 500. Every operation gets generated requests,
valid ones and invalid ones, sent with a real credential: once as a logged-in session (access
token) and once as an API key. Every answer must pass the checks below: never a 5xx, only
documented status codes and content types, and a body that matches the documented schema.

About half the generated requests get a NUL character put into one of their body or query
strings (hypothesis rarely draws one by itself): it must be refused, never stored or a 5xx.

Nothing is excluded. `POST /v1/auth/logout` ends the session it is sent with, so after a 204 a
new session is logged in for the following cases. Streaming answers (`stream: true`) are read
to their end as event streams and checked for their documented content type.

The default run is bounded (`EXAMPLES` per operation and mode) to stay fast; the `slow`
variant runs many more.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent_api.api.app import create_app
from tests.conftest import make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10
SLOW_EXAMPLES = 150
PASSWORD = "correct horse battery"


@dataclass
class Caller:
    """A credential for the generated requests; `renew` gets a new one after a logout."""

    kind: str
    header: str
    renew: Callable[[], str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.header}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI document, bound to the app (which runs with its lifespan), on a
    private SQLite file and on the session's PostgreSQL database in turn."""
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    database: dict[str, str] = {}
    if request.param == "postgresql":
        database["database_url"] = request.getfixturevalue("migrated_pg_url")
    # Limits high enough that the generated traffic is not answered with 429 only (429 is
    # documented and checked all the same).
    app = create_app(
        make_settings(
            tmp,
            **database,
            rate_limit_per_minute=1_000_000,
            rate_limit_per_day=1_000_000,
            auth_rate_limit_per_minute=1_000_000,
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Read every event stream to its end (the default stops after 20 events and cancels the
    # app mid-run, which is a client disconnect: tests/e2e/test_disconnect.py covers that).
    schema.config.max_stream_events = 100_000
    yield schema
    asgi.shutdown_lifespans()


def _login(schema: schemathesis.BaseSchema, email: str) -> str:
    with asgi.get_client(schema.app) as client:
        client.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Fuzz"}
        )
        response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["data"]["access_token"]
        return token


def _api_key(schema: schemathesis.BaseSchema, token: str) -> str:
    with asgi.get_client(schema.app) as client:
        response = client.post(
            "/v1/api-keys",
            json={"name": "fuzz"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        key: str = response.json()["data"]["key"]
        return key


def _string_slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every string value in `value`, at any depth."""
    slots: list[tuple[Any, Any]] = []
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, str):
            slots.append((value, key))
        elif isinstance(item, dict | list):
            slots.extend(_string_slots(item))
    return slots


def _put_nul(case: schemathesis.Case, data: st.DataObject) -> None:
    """Puts a NUL into one string of the case's body or query, when it has one."""
    slots = [
        slot
        for part in (case.body, case.query)
        if isinstance(part, dict | list)
        for slot in _string_slots(part)
    ]
    if not slots:
        return
    container, key = data.draw(st.sampled_from(slots), label="string given a NUL")
    text = container[key]
    container[key] = text[: len(text) // 2] + "\x00" + text[len(text) // 2 :]


def _run(
    schema: schemathesis.BaseSchema, caller: Caller, examples: int, failures: list[str]
) -> dict[str, int]:
    """Sends up to `examples` generated requests per operation and generation mode (valid and
    invalid data); returns the cases sent per operation and appends every failing operation's
    report (with schemathesis's reproducing call) to `failures`."""
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,  # the same cases every run: a failure reproduces
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case, data: st.DataObject) -> None:
                if data.draw(st.booleans(), label="with a NUL"):
                    _put_nul(case, data)
                response = case.call_and_validate(headers=caller.headers, checks=CHECKS)
                name = case.operation.label
                counts[name] = counts.get(name, 0) + 1
                if name == "POST /v1/auth/logout" and response.status_code == 204:
                    assert caller.renew is not None
                    caller.header = caller.renew()

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): negative mode is moot.
                assert mode is GenerationMode.NEGATIVE, label
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{caller.kind}: {label} ({mode.value} data): {exc}")
    return counts


def _fuzz(schema: schemathesis.BaseSchema, examples: int) -> None:
    started = time.monotonic()

    def new_session() -> str:
        return _login(schema, f"fuzz-{uuid.uuid4().hex[:12]}@example.com")

    callers = [
        Caller("access token", new_session(), renew=new_session),
        Caller("API key", _api_key(schema, new_session())),
    ]
    failures: list[str] = []
    total = 0
    operations = 0
    for caller in callers:
        counts = _run(schema, caller, examples, failures)
        total += sum(counts.values())
        operations = len(counts)
    assert not failures, "\n\n".join(failures)
    assert operations == len(list(schema.get_all_operations()))
    print(
        f"\nschemathesis: {total} cases over {operations} operations x 2 credentials "
        f"in {time.monotonic() - started:.1f} s"
    )


def test_every_operation_conforms_to_its_schema_and_never_answers_5xx(
    api: schemathesis.BaseSchema,
) -> None:
    _fuzz(api, EXAMPLES)


@pytest.mark.slow
def test_every_operation_conforms_to_its_schema_long(api: schemathesis.BaseSchema) -> None:
    _fuzz(api, SLOW_EXAMPLES)
