"""Encoded records of the events topic without Kafka: for the projector and bench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.topics import partition_for
from schemas.codec import encode_events, event_headers
from tests.fakes.sale_log import LogRecord

TOPIC = "ticketing.events"


@dataclass(frozen=True)
class EncodedRecord:
    """What the projector reads of a Kafka message, plus where it sits in the log."""

    partition: int
    offset: int
    payload: bytes
    header_list: list[tuple[str, bytes]]

    def value(self) -> Any:
        return self.payload

    def headers(self) -> Any:
        return self.header_list

    def topic(self) -> Any:
        return TOPIC


def encoded(records: Sequence[LogRecord], partitions: int = 4) -> list[EncodedRecord]:
    """The records in log order, each on its key's partition at the next offset."""
    next_offset = [0] * partitions
    headers = event_headers()
    out = []
    for key, events in records:
        partition = partition_for(key, partitions)
        offset = next_offset[partition]
        next_offset[partition] += 1
        out.append(EncodedRecord(partition, offset, encode_events(events), headers))
    return out
