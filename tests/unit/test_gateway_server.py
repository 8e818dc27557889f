"""Every error is problem+json, also those aiohttp's HTTP parser answers itself."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess

import orjson
import pytest

from gateway.server import PortUnavailable, serve_until_signalled
from gateway.testing import harness, serve
from tests.unit.test_gateway_holds import GA_HOLD, HOLD_PATH, place


async def raw_request(host: str, port: int, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes to the server; its answer's head and body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_a_10_kb_idempotency_key_answers_our_400_problem_when_sent() -> None:
    gateway = harness(place)
    headers = {"Idempotency-Key": "k" * 10_000}

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, json=GA_HOLD, headers=headers)
        body = orjson.loads(await response.read())

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert body["type"] == "/problems/invalid-idempotency-key"
    assert gateway.bus.sent == []


async def test_a_header_beyond_the_parser_limit_answers_400_problem_when_sent() -> None:
    gateway = harness(place)
    request = (
        b"POST " + HOLD_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Idempotency-Key: " + b"k" * 20_000 + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )

    async with serve(gateway.app) as client:
        server = client.server
        head, body = await raw_request(str(server.host), int(server.port or 0), request)

    problem = orjson.loads(body)
    assert head.split(b" ")[1] == b"400"
    assert b"content-type: application/problem+json" in head.lower()
    assert problem["type"] == "/problems/bad-request"
    assert b"kkkk" not in body
    assert gateway.bus.sent == []


async def test_a_malformed_request_line_answers_400_problem_when_sent() -> None:
    async with serve(harness().app) as client:
        server = client.server
        head, body = await raw_request(
            str(server.host), int(server.port or 0), b"NOT HTTP AT ALL\r\n\r\n"
        )

    assert head.split(b" ")[1] == b"400"
    assert orjson.loads(body)["type"] == "/problems/bad-request"


def _listening(port: int) -> list[str]:
    """The ``ss`` line of the socket listening on port, split (empty if none)."""
    command = ["ss", "-ltnH", f"sport = :{port}"]
    return subprocess.run(
        command, capture_output=True, text=True, check=True
    ).stdout.split()


async def test_the_gateway_listens_with_the_backlog_it_is_given() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serving = asyncio.create_task(
        serve_until_signalled(harness().app, "127.0.0.1", port, backlog=777)
    )
    try:
        for _ in range(100):
            listed = await asyncio.to_thread(_listening, port)
            if listed:
                break
            await asyncio.sleep(0.05)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    state, _queued, backlog = listed[:3]
    assert (state, backlog) == ("LISTEN", "777")


async def test_a_taken_port_is_one_clear_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve_until_signalled(harness().app, "127.0.0.1", port)
