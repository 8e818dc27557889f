"""A buyer never holds more than the show's limit, whatever sections and order.

Several writers (partitions) each own some sections and some buyers' ledgers.
Requests and the follow-up commands between writers are delivered in any
interleaving hypothesis picks, as Kafka would across partitions, while each
partition keeps its own order.
"""

from __future__ import annotations

import zlib
from collections import Counter, deque

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.buyers import buyer_key
from commands.inventory import PartitionInventory, section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    IdempotencyKeyReused,
    RequestHold,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
    Tick,
)
from commands.policy import follow_ups

PARTITIONS = 3
SHOW = "show-1"
SECTIONS = ("ga-a", "ga-b", "ga-c")
BUYERS = ("ann", "bob")
LIMIT = 4
T0 = 1_000_000


def _partition(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


class Cluster:
    """Writers with their logs; delivery order is chosen by the test."""

    def __init__(self) -> None:
        self.writers = [PartitionInventory() for _ in range(PARTITIONS)]
        self.logs: list[deque[Command]] = [deque() for _ in range(PARTITIONS)]
        self.events: list[Event] = []

    def send(self, key: str, command: Command) -> None:
        self.logs[_partition(key)].append(command)

    def deliver(self, partition: int) -> None:
        command = self.logs[partition].popleft()
        events = self.writers[partition].decide(command)
        self.events.extend(events)
        for key, follow_up in follow_ups(events):
            self.send(key, follow_up)

    def pending(self) -> list[int]:
        return [p for p, log in enumerate(self.logs) if log]


def _setup(cluster: Cluster) -> None:
    for section in SECTIONS:
        spec = SectionSpec(section, SectionKind.GENERAL_ADMISSION, capacity=6)
        create = CreateShow(f"create-{section}", T0, SHOW, 5, 10, (spec,))
        cluster.send(section_key(SHOW, section), create)
    for partition in range(PARTITIONS):
        limit = SetBuyerLimit(f"limit-{partition}", T0, SHOW, LIMIT)
        cluster.logs[partition].append(limit)
    while cluster.pending():
        cluster.deliver(cluster.pending()[0])


def _held_by_buyer(events: list[Event]) -> Counter[str]:
    held: Counter[str] = Counter()
    open_holds: dict[str, HoldPlaced] = {}
    peak: Counter[str] = Counter()
    for event in events:
        if isinstance(event, HoldPlaced):
            open_holds[event.hold_id] = event
            held[event.buyer_id] += event.quantity
            peak[event.buyer_id] = max(peak[event.buyer_id], held[event.buyer_id])
        elif isinstance(event, HoldExpired) and event.hold_id in open_holds:
            held[open_holds.pop(event.hold_id).buyer_id] -= event.quantity
    return peak


requests = st.lists(
    st.tuples(
        st.sampled_from(BUYERS),
        st.sampled_from(SECTIONS),
        st.integers(1, 3),
        st.integers(0, 5),  # key number: repeats reuse a key
        st.integers(0, 9_000),  # log time offset; holds last 5 s
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(requests=requests, schedule=st.lists(st.integers(0, PARTITIONS - 1)))
def test_buyer_never_exceeds_the_show_limit_when_requests_race_across_sections(
    requests: list[tuple[str, str, int, int, int]], schedule: list[int]
) -> None:
    cluster = Cluster()
    _setup(cluster)
    setup_events = len(cluster.events)
    sent: dict[str, tuple[str, int]] = {}

    for buyer, section, quantity, key_number, offset in requests:
        command_id = f"{buyer}-key-{key_number}"
        digest = f"{section}:{quantity}"
        sent.setdefault(command_id, (digest, 0))
        request = RequestHold(
            command_id, T0 + offset, SHOW, section, buyer, (), quantity, digest
        )
        cluster.send(buyer_key(SHOW, buyer), request)
    choices = iter(schedule)
    while cluster.pending():
        pending = cluster.pending()
        cluster.deliver(pending[next(choices, 0) % len(pending)])
    for partition in range(PARTITIONS):
        cluster.logs[partition].append(Tick(f"tick-{partition}", T0 + 100_000))
    while cluster.pending():
        cluster.deliver(cluster.pending()[0])

    events = cluster.events[setup_events:]
    assert max(_held_by_buyer(events).values(), default=0) <= LIMIT
    outcomes = Counter(
        e.command_id
        for e in events
        if isinstance(e, HoldPlaced | HoldRejected | IdempotencyKeyReused)
    )
    first_outcomes = Counter(
        e.command_id for e in events if isinstance(e, HoldPlaced | HoldRejected)
    )
    assert set(first_outcomes) == set(sent), "every key gets exactly one outcome"
    assert max(first_outcomes.values()) == 1
    assert sum(outcomes.values()) >= len(sent)
    places_left = [
        account.places()
        for writer in cluster.writers
        for account in writer.buyers.accounts.values()
    ]
    assert places_left and max(places_left) == 0, "expired holds give places back"
