"""A bot session: one of many accounts on one device, cheating where it can.

Each session first deep-links to the hold route with no admission token, then
asks for a puzzle: over its budget (every other account on the device makes
the puzzle harder) it sends a made-up solution. Once in the queue it polls at
its own pace whatever it is told, and once admitted it tries another bot's
token, takes the most places it may, pays, and replays its token for more.
Every answer is counted under the bot class (``bot-*`` steps).
"""

from __future__ import annotations

import random
from typing import Any

from infra.onsale.client import Client
from infra.onsale.plan import GA_SECTION, Visitor
from infra.onsale.visitors import (
    Sale,
    VisitorResult,
    checkout_and_pay,
    hold,
    join_room,
    new_key,
    wait_for_admission,
)


async def bot(client: Client, sale: Sale, result: VisitorResult) -> None:
    """One bot session's sale; its result."""
    visitor = result.visitor
    headers = {"Device-Id": visitor.device_id}
    body = {"buyer_id": visitor.buyer_id, "quantity": visitor.places}
    path = sale.holds_path(visitor.section_id)

    # Around the queue: a hold with no admission token at all.
    no_token = {**headers, "Idempotency-Key": new_key()}
    await client.send("POST", path, "bot-no-token", no_token, body)

    joined = await join_room(
        client, sale, result, headers, sale.plan.bot_pow_budget_bits
    )
    if joined is None:
        return
    token = await wait_for_admission(
        client, sale, result, headers, joined, sale.plan.bot_poll_seconds
    )
    if token is None:
        return

    await _use_anothers_token(client, sale, visitor, headers, body)
    sale.token_pool.append((token, visitor.buyer_id))
    headers = {**headers, "Admission-Token": token}
    held = await _grab(client, sale, result, headers)
    if held is not None:
        await checkout_and_pay(client, sale, result, held, headers)

    # Replay the token for more than the per-buyer limit allows.
    replay = {**headers, "Idempotency-Key": new_key()}
    await client.send("POST", path, "bot-replay", replay, body)


async def _use_anothers_token(
    client: Client,
    sale: Sale,
    visitor: Visitor,
    headers: dict[str, str],
    body: dict[str, Any],
) -> None:
    """Present a token given to another bot account, from this device."""
    if not sale.token_pool:
        return
    token, _owner = random.Random(visitor.buyer_id).choice(sale.token_pool)
    stolen = {**headers, "Admission-Token": token, "Idempotency-Key": new_key()}
    answer = await client.send(
        "POST", sale.holds_path(visitor.section_id), "bot-others-token", stolen, body
    )
    if answer.status in (201, 202):
        sale.progress["stolen token accepted"] += 1


async def _grab(
    client: Client, sale: Sale, result: VisitorResult, headers: dict[str, str]
) -> dict[str, Any] | None:
    """The most places allowed, in the wanted section, else on the floor."""
    visitor = result.visitor
    for section in dict.fromkeys((visitor.section_id, GA_SECTION)):
        if section not in sale.sections:
            continue
        body = {"buyer_id": visitor.buyer_id, "quantity": visitor.places}
        answer = await hold(client, sale, section, body, headers)
        if answer.status == 201:
            result.held_places = int(answer.body.get("quantity", visitor.places))
            result.hold_id = str(answer.body["hold_id"])
            sale.progress["bot held"] += 1
            return answer.body
        result.outcome = f"hold:{answer.problem}"
        if answer.problem != "sold-out":
            return None
    return None
