"""HTTP-level refusals of request bodies: media type, size, JSON, path ids."""

from __future__ import annotations

import orjson
import pytest

from gateway.testing import harness, serve
from tests.unit.test_gateway_holds import key

HOLD_PATH = "/v1/shows/s1/sections/a/holds"
JSON = {"Content-Type": "application/json"}


async def test_malformed_json_answers_400_problem_when_posted() -> None:
    gateway = harness()

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", data=b"{", headers=JSON)
        body = orjson.loads(await response.read())

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert body["type"] == "/problems/malformed-json"


async def test_invalid_show_answers_422_with_errors_when_posted() -> None:
    gateway = harness()

    async with serve(gateway.app) as client:
        response = await client.post(
            "/v1/shows", json={"show_id": "s", "sections": [{}]}
        )
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["type"] == "/problems/invalid-request"
    assert {e["field"] for e in body["errors"]} == {
        "sections[0].section_id",
        "sections[0].kind",
    }
    assert gateway.bus.sent == []


async def test_show_body_over_1_mib_answers_413_when_posted() -> None:
    gateway = harness()

    async with serve(gateway.app) as client:
        response = await client.post(
            "/v1/shows", data=b" " * (1024 * 1024 + 1), headers=JSON
        )
        body = orjson.loads(await response.read())

    assert response.status == 413
    assert body["type"] == "/problems/payload-too-large"


async def test_hold_body_over_16_kib_answers_413_when_posted() -> None:
    gateway = harness()
    headers = {"Idempotency-Key": "k1", **JSON}

    async with serve(gateway.app) as client:
        response = await client.post(
            HOLD_PATH, data=b" " * (16 * 1024 + 1), headers=headers
        )
        body = orjson.loads(await response.read())

    assert response.status == 413
    assert body["type"] == "/problems/payload-too-large"


async def test_invalid_path_ids_answer_422_when_holding() -> None:
    gateway = harness()
    headers = {"Idempotency-Key": "k1"}

    async with serve(gateway.app) as client:
        response = await client.post(
            "/v1/shows/bad%20id/sections/a/holds",
            json={"buyer_id": "b", "quantity": 1},
            headers=headers,
        )
        body = orjson.loads(await response.read())

    assert response.status == 422
    assert body["errors"] == [
        {"field": "path.show_id", "message": "an id: 1 to 64 of [A-Za-z0-9_.-]"}
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ],
)
@pytest.mark.parametrize("path", ["/v1/shows", HOLD_PATH])
async def test_post_answers_415_problem_when_the_body_is_not_json(
    path: str, content_type: str | None
) -> None:
    gateway = harness()
    headers = {"Idempotency-Key": "k1"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = orjson.dumps({"buyer_id": "b", "quantity": 1})

    async with serve(gateway.app) as client:
        response = await client.post(path, data=body, headers=headers)
        problem = orjson.loads(await response.read())

    assert response.status == 415
    assert response.content_type == "application/problem+json"
    assert problem["type"] == "/problems/unsupported-media-type"
    assert gateway.bus.sent == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/JSON; charset=UTF-8"]
)
async def test_hold_accepts_json_when_charset_is_utf8_or_absent(
    content_type: str,
) -> None:
    gateway = harness(reply_timeout_seconds=0.01)
    headers = {**key("k1", buyer_id="b"), "Content-Type": content_type}
    body = orjson.dumps({"buyer_id": "b", "quantity": 1})

    async with serve(gateway.app) as client:
        response = await client.post(HOLD_PATH, data=body, headers=headers)

    assert response.status == 202
    assert len(gateway.bus.sent) == 1
