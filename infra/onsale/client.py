"""The simulated visitors' HTTP client: one request, or a mobile client's retries.

Every request is counted per class of visitor (human or bot) and every answer
per step and status, so the report can say what each class sent and got. A
mobile client retries a timeout or a 5xx with the same request, so the same
``Idempotency-Key``, after a jittered backoff, and waits ``Retry-After`` when
told to; its attempts are bounded.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

MAX_ATTEMPTS: Final = 6
BACKOFF_BASE_SECONDS: Final = 0.25
BACKOFF_MAX_SECONDS: Final = 4.0
MAX_RETRY_AFTER_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: status, JSON body (empty if none), headers that matter."""

    status: int
    body: dict[str, Any]
    retry_after_seconds: float | None = None
    location: str | None = None
    etag: str | None = None

    @property
    def problem(self) -> str:
        """The problem type's slug (``sold-out``), or ``http-<status>``."""
        kind = str(self.body.get("type", "")).rsplit("/", 1)[-1]
        return kind or f"http-{self.status}"


NO_ANSWER: Final = Answer(0, {})
"""A request that timed out or failed to connect, after every attempt."""


@dataclass
class Recorder:
    """Everything the visitors saw, for the report."""

    requests: Counter[str] = field(default_factory=Counter)
    """Requests sent per class (``human``, ``bot``)."""
    answers: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(class, step, status or problem) -> answers."""
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Step -> seconds, for humans (each a whole step, retries included)."""
    retries: Counter[str] = field(default_factory=Counter)

    def latency(self, step: str, seconds: float) -> None:
        """Note how long one step took a human."""
        self.latencies[step].append(seconds)


class Client:
    """One class of visitors' HTTP, over a shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        recorder: Recorder,
        kind: str,
        rng: random.Random,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.recorder = recorder
        self.kind = kind
        self.rng = rng

    async def send(
        self,
        method: str,
        path: str,
        step: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Answer:
        """One request; a timeout or connection failure is ``NO_ANSWER``."""
        self.recorder.requests[self.kind] += 1
        data = None if body is None else orjson.dumps(body)
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method, self.base_url + path, data=data, headers=sent
            ) as response:
                raw = await response.read()
                answer = Answer(
                    response.status,
                    _json(raw),
                    _seconds(response.headers.get("Retry-After")),
                    response.headers.get("Location"),
                    response.headers.get("ETag"),
                )
        except (TimeoutError, aiohttp.ClientError):
            answer = NO_ANSWER
        label = answer.problem if answer.status >= 400 else str(answer.status)
        self.recorder.answers[(self.kind, step, label)] += 1
        return answer

    async def retrying(
        self,
        method: str,
        path: str,
        step: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        deadline: float = float("inf"),
    ) -> Answer:
        """The request as a mobile client sends it: the same again after a
        timeout, a 5xx (backoff) or a 429 (``Retry-After``), up to a bound."""
        answer = NO_ANSWER
        for attempt in range(MAX_ATTEMPTS):
            answer = await self.send(method, path, step, headers, body)
            if answer.status != 0 and answer.status < 500 and answer.status != 429:
                return answer
            wait = self.backoff(attempt, answer)
            if attempt + 1 == MAX_ATTEMPTS or time.time() + wait > deadline:
                return answer
            self.recorder.retries[step] += 1
            await asyncio.sleep(wait)
        return answer

    def backoff(self, attempt: int, answer: Answer) -> float:
        """``Retry-After`` if given, else full-jitter exponential backoff."""
        if answer.retry_after_seconds is not None:
            return min(answer.retry_after_seconds, MAX_RETRY_AFTER_SECONDS)
        cap = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        return self.rng.uniform(0.05, cap)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        return None
