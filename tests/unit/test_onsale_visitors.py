"""A visitor's path through the queue, against scripted gateway answers."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from infra.onsale.client import Answer, Client, Recorder
from infra.onsale.plan import OnsalePlan, Visitor
from infra.onsale.visitors import (
    ADMISSION_REFUSED,
    Sale,
    VisitorResult,
    wait_for_admission,
)

DEVICE_LIMIT = {"type": "/problems/device-limit-reached", "status": 403}


class ScriptedClient(Client):
    """Answers every admission with the given answer; counts the requests."""

    def __init__(self, admission: Answer) -> None:
        super().__init__(None, "", Recorder(), "bot", random.Random(1))  # type: ignore[arg-type]
        self.admission = admission
        self.sent: list[str] = []

    async def send(self, method: str, path: str, step: str, *args: Any) -> Answer:
        self.sent.append(step)
        return self.admission


def test_a_device_refused_for_good_stops_asking_for_admission() -> None:
    client = ScriptedClient(Answer(403, DEVICE_LIMIT))
    sale = Sale("s1", OnsalePlan(), time.time(), time.time() + 30, Recorder(), {})
    result = VisitorResult(Visitor("b7", "farm", True, 0.0, "ga", 4))
    joined = {"queue_ticket": "t", "state": "admitted", "poll_after_seconds": 1}

    started = time.monotonic()
    token = asyncio.run(
        wait_for_admission(client, sale, result, {"Device-Id": "farm"}, joined, 0.1)
    )

    assert token is None
    assert result.outcome == ADMISSION_REFUSED
    assert client.sent == ["admission"]
    assert time.monotonic() - started < 5
