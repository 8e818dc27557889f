"""Producers of partitions handed to another worker are stopped at assignment."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.eos import stop_revoked_producers

GROUP = "ticketing-inventory"


class FakeProducer:
    def __init__(self, transactional_ids: list[str]) -> None:
        self._transaction_producers = dict.fromkeys(transactional_ids, object())
        self.stopped: list[str] = []

    async def stop_transaction(self, transactional_id: str) -> None:
        self._transaction_producers.pop(transactional_id, None)
        self.stopped.append(transactional_id)


def _app(producer: FakeProducer, standbys: set[TP]) -> Any:
    def ids_of(tps: set[TP]) -> set[str]:
        # faust's format: app id, topic group, partition (one group here).
        return {f"{GROUP}-1-{tp.partition}" for tp in tps}

    return SimpleNamespace(
        producer=producer,
        consumer=SimpleNamespace(
            transactions=SimpleNamespace(_tps_to_transactional_ids=ids_of)
        ),
        assignor=SimpleNamespace(assigned_standbys=lambda: standbys),
    )


def test_producers_of_partitions_now_kept_as_standby_are_stopped() -> None:
    producer = FakeProducer([f"{GROUP}-1-{p}" for p in range(4)])
    assigned = {TP("commands", 2), TP("commands", 3), TP("changelog", 0)}
    app = _app(producer, standbys={TP("changelog", 0), TP("changelog", 1)})

    stopped = asyncio.run(stop_revoked_producers(app, assigned))

    assert stopped == producer.stopped == [f"{GROUP}-1-0", f"{GROUP}-1-1"]
    assert set(producer._transaction_producers) == {f"{GROUP}-1-2", f"{GROUP}-1-3"}


def test_nothing_is_stopped_when_every_producer_has_its_partition() -> None:
    producer = FakeProducer([f"{GROUP}-1-0"])
    app = _app(producer, standbys=set())

    stopped = asyncio.run(stop_revoked_producers(app, {TP("commands", 0)}))

    assert stopped == []
