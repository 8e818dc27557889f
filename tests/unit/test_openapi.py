"""docs/openapi.yaml against the gateway: the same routes, and answers it allows.

The route test compares the document's operations with the routes the aiohttp
app registers, both ways, so neither can change alone. The schemathesis test
serves the gateway on loopback (the production server class, so the status
shortcut and the problem rendering of unparseable requests are in it) with the
domain core in process and no Kafka, and checks a bounded number of generated
requests per operation: no 5xx, a documented status, content type, headers and
body.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis
import yaml
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from commands.model import (
    CreateShow,
    Row,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
)
from gateway.fields import valid_id
from gateway.problem_types import PROBLEM_TYPES
from gateway.read_views import LAG_HEADER, STALE_HEADER, add_read_routes
from gateway.server import ProblemAppRunner
from gateway.testing import Harness, InMemoryCore, admission_headers, harness
from tests.fakes.read_side import FakeReadSide

DOCUMENT: Final = Path(__file__).parents[2] / "docs" / "openapi.yaml"
METHODS: Final = {"get", "put", "post", "delete", "patch"}
EXAMPLE_SHOW: Final = "arena-2026-12-31"
MAX_EXAMPLES: Final = int(os.environ.get("TICKETING_OPENAPI_MAX_EXAMPLES", "25"))
"""Per operation and phase; raise it by hand to hunt further than CI does."""
ADMITTED_OPERATIONS: Final = {"placeHold", "checkoutHold"}
BUYER_OPERATIONS: Final = {"getOrder", "listMyOrders"}
"""Read with the admission token of buyer ``b1`` (the fake read side's)."""
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def documented_operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the document."""
    document = yaml.safe_load(DOCUMENT.read_text())
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def served_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app registers (HEAD aside)."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if route.method != "HEAD":
            found.add((route.method, str(template)))
    return found


def with_read_side(gateway: Harness) -> Harness:
    """The gateway as ``gateway.app.run`` serves it: with seat maps and orders."""
    add_read_routes(gateway.app, FakeReadSide(), ttl_seconds=1.0)
    return gateway


def test_the_document_names_every_route_the_gateway_serves_and_no_other() -> None:
    app = with_read_side(harness()).app

    documented, served = documented_operations(), served_operations(app)

    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_the_document_lists_every_problem_type_and_no_other() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())

    listed = document["components"]["schemas"]["ProblemType"]["enum"]

    assert sorted(listed) == sorted(kind.uri for kind in PROBLEM_TYPES.values())


@dataclass(frozen=True)
class SectionRow:
    """An availability row as the projection reader returns it."""

    section_id: str
    kind: str
    capacity: int
    free: int
    held: int
    sold: int


def on_sale(core: InMemoryCore) -> None:
    """The document's example show on sale in the core: seats and a GA floor."""
    seats = tuple(str(n) for n in range(1, 21))
    sections = (
        SectionSpec("stalls", SectionKind.RESERVED, rows=(Row("A", seats),)),
        SectionSpec("floor", SectionKind.GENERAL_ADMISSION, capacity=500),
    )
    core(SetBuyerLimit("limit", 1, EXAMPLE_SHOW, 4))
    core(CreateShow("create", 1, EXAMPLE_SHOW, 600, 4, sections))


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    """A gateway on a loopback port, served from its own thread and loop."""
    core = InMemoryCore()
    on_sale(core)
    gateway = with_read_side(harness(core, reply_timeout_seconds=0.2))
    gateway.availability.rows[EXAMPLE_SHOW] = [
        SectionRow("floor", "general_admission", 500, 480, 15, 5)
    ]
    gateway.availability.as_of_ms = 1_780_000_000_000
    gateway.availability.lag_seconds = 0.25
    loop = asyncio.new_event_loop()
    runner = ProblemAppRunner(gateway.app, access_log=None)
    ready = threading.Event()
    ports: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(runner.addresses[0][1])

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="gateway", daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    try:
        yield f"http://127.0.0.1:{ports[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


schema = schemathesis.openapi.from_path(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_gateway_answers_as_the_document_says(case: Any, gateway_url: str) -> None:
    admit(case)

    case.call_and_validate(base_url=gateway_url, checks=CHECKS, timeout=10)


def admit(case: Any) -> None:
    """A genuine admission token on a valid hold or checkout, so it gets past
    the waiting room to the core (random tokens only ever meet the 401)."""
    meta = case.meta
    operation = case.operation.definition.raw.get("operationId")
    if operation in BUYER_OPERATIONS and meta is not None:
        if meta.generation.mode is GenerationMode.POSITIVE:
            case.headers.update(admission_headers("s1", "b1", "device-1"))
        return
    if operation not in ADMITTED_OPERATIONS:
        return
    if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return
    body, device = case.body, case.headers.get("Device-Id")
    show_id = case.path_parameters.get("show_id", EXAMPLE_SHOW)
    if isinstance(body, dict) and isinstance(body.get("buyer_id"), str):
        if valid_id(device) and valid_id(show_id):
            case.headers.update(admission_headers(show_id, body["buyer_id"], device))


def test_the_document_describes_the_staleness_headers_of_cached_reads() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    paths = document["paths"]
    cached = (
        "/v1/shows/{show_id}/availability",
        "/v1/shows/{show_id}/sections/{section_id}/seats",
    )

    described = {
        (path, status): set(paths[path]["get"]["responses"][status]["headers"])
        for path in cached
        for status in ("200", "304")
    }

    for headers in described.values():
        assert {LAG_HEADER, STALE_HEADER, "Age"} <= headers
