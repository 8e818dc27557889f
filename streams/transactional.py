"""Sends that join the transaction of the partition being processed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import faust
from aiokafka.errors import ProducerFenced
from aiokafka.structs import RecordMetadata

logger = logging.getLogger(__name__)


def transactional_id(app: faust.App, source_topic: str, partition: int) -> str:
    """The transactional id faust uses for one partition of a source topic."""
    group = app.assignor.group_for_topic(source_topic)
    return f"{app.conf.id}-{group}-{partition}"


async def send_in_transaction(
    app: faust.App,
    *,
    source_topic: str,
    partition: int,
    topic: str,
    key: bytes,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    target_partition: int | None = None,
    on_fenced: Callable[[BaseException], None] | None = None,
) -> Awaitable[RecordMetadata]:
    """Send to ``topic`` inside the source partition's transaction.

    The record goes to ``target_partition``, by default the source ``partition``.
    A fenced producer is reported to ``on_fenced`` (``streams.fencing``); without
    one the app stops.

    Faust picks a transaction by the destination partition and only for topics the
    app consumes; events go to a topic the agent does not consume, so the id is
    taken from the source partition, whose offsets commit in the same transaction.
    """
    try:
        return await app.producer.send(
            topic,
            key,
            value,
            partition if target_partition is None else target_partition,
            None,
            list(headers),
            transactional_id=transactional_id(app, source_topic, partition),
        )
    except ProducerFenced as exc:
        # Another worker took the partition, or the broker aborted this
        # producer's transaction: it can send nothing more. The batch stops
        # here (its records are decided again by the partition's owner); the
        # fence watch stops the worker if no rebalance explains the fence.
        if on_fenced is None:
            await app.crash(exc)
        else:
            on_fenced(exc)
        raise
