"""Stateful property test of GA stripes trading places by commands.

Each stripe of a section (and the buyers' ledger, and in one variant the section
that was striped while on sale) is its own ``PartitionInventory``: a writer that
sees only the commands delivered to it. The follow-up commands the core asks for
are kept in flight and delivered in an order hypothesis picks, some of them
twice, some after the writer was rebuilt from its persisted entries. After every
step: no stripe oversells, the capacities of the section and its stripes plus the
places of transfers still on their way add up to the section's capacity, no
transfer leaves or arrives twice, and no buyer holds more than the show's limit
across stripes. At the end, once every command in flight is delivered, every
hold request has its verdict, every transfer arrived once, and a new buyer who
asks any stripe for places is served exactly when the section has that many free.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from commands.buyers import buyer_key
from commands.inventory import PartitionInventory, section_key
from commands.model import (
    CapacityTransferredIn,
    CapacityTransferredOut,
    Command,
    CreateShow,
    Event,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    ReceiveCapacity,
    RecordPaymentResult,
    ReleaseHold,
    RequestHold,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
    StripeSection,
)
from commands.policy import follow_ups
from commands.state import StripeState
from commands.stripes import DRY_RETRY_MS, stripe_id, stripe_shares

SHOW = "show-s"
SECTION = "floor"
LIMIT = 4
LEDGER = "ledger"
MAX_DRAIN_STEPS = 1_000


@dataclass
class Writer:
    """One single writer: its inventory and the entries it persisted so far."""

    inventory: PartitionInventory = field(default_factory=PartitionInventory)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def decide(self, command: Command) -> list[Event]:
        events = self.inventory.decide(command)
        for key, changes in self.inventory.drain_changes().items():
            stored = self.entries.setdefault(key, {})
            for name, value in changes.items():
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = value
        return events

    def restart(self) -> None:
        self.inventory = PartitionInventory.restore(self.entries)


class StripeNetwork(RuleBasedStateMachine):
    """Stripes created with the show, wired only by follow-up commands."""

    striped_live = False

    def __init__(self) -> None:
        super().__init__()
        self.writers: dict[str, Writer] = {}
        self.in_flight: list[tuple[str, str, Command]] = []
        """(source writer, target key, command), in the order they were sent.
        Each target reads its commands in that order, as a partition is read in
        the order of its log: a stripe's creation is read before a request a
        sibling could only send after its own creation."""
        self.events: list[Event] = []
        self.requests: dict[str, int] = {}
        self.placed: dict[str, HoldPlaced] = {}
        self.capacity = 0
        self.stripes = 0
        self.clock_ms = 1_000
        self.next_id = 0

    # -- wiring --------------------------------------------------------------

    def _writer_key(self, key: str) -> str:
        return LEDGER if "/~buyer/" in key or key.endswith("/~limit") else key

    def _deliver(self, key: str, command: Command) -> None:
        source = self._writer_key(key)
        writer = self.writers.setdefault(source, Writer())
        events = writer.decide(command)
        self.events.extend(events)
        for event in events:
            if isinstance(event, HoldPlaced):
                self.placed[event.hold_id] = event
        self.in_flight.extend((source, k, c) for k, c in follow_ups(events))

    def _channel_heads(self) -> list[int]:
        seen: set[str] = set()
        heads = []
        for index, (_, key, _) in enumerate(self.in_flight):
            if key not in seen:
                seen.add(key)
                heads.append(index)
        return heads

    def _tick(self) -> int:
        self.clock_ms += 1
        return self.clock_ms

    def _stripe_keys(self) -> list[str]:
        return [section_key(SHOW, stripe_id(SECTION, i)) for i in range(self.stripes)]

    def _sections(self) -> list[Any]:
        found = []
        for key in [section_key(SHOW, SECTION), *self._stripe_keys()]:
            writer = self.writers.get(key)
            if writer is not None and key in writer.inventory.sections:
                found.append(writer.inventory.sections[key])
        return found

    # -- set-up --------------------------------------------------------------

    @initialize(
        capacity=st.integers(min_value=0, max_value=30),
        stripes=st.integers(min_value=2, max_value=5),
    )
    def create(self, capacity: int, stripes: int) -> None:
        self.capacity, self.stripes = capacity, stripes
        limit = SetBuyerLimit("limit", 0, SHOW, LIMIT)
        self._deliver(buyer_key(SHOW, "any"), limit)
        if self.striped_live:
            spec = SectionSpec(
                SECTION, SectionKind.GENERAL_ADMISSION, capacity=capacity
            )
            create = CreateShow("create", 0, SHOW, 60, LIMIT, (spec,))
            self._deliver(section_key(SHOW, SECTION), create)
            return
        for index, share in enumerate(stripe_shares(capacity, stripes)):
            spec = SectionSpec(
                stripe_id(SECTION, index),
                SectionKind.GENERAL_ADMISSION,
                capacity=share,
                stripes=stripes,
            )
            create = CreateShow(f"create-{index}", 0, SHOW, 60, LIMIT, (spec,))
            self._deliver(self._stripe_keys()[index], create)

    # -- rules ---------------------------------------------------------------

    @rule(
        buyer=st.integers(min_value=0, max_value=6),
        quantity=st.integers(min_value=1, max_value=3),
        stripe=st.integers(min_value=0, max_value=4),
    )
    def request_hold(self, buyer: int, quantity: int, stripe: int) -> None:
        self.next_id += 1
        hold_id = f"h{self.next_id}"
        section_id = stripe_id(SECTION, stripe % self.stripes)
        created = section_key(SHOW, section_id) in self._created_keys()
        if self.striped_live and (stripe % 2 or not created):
            # A gateway sends only to stripes the read model shows, else to
            # the section, which forwards once striped.
            section_id = SECTION
        command = RequestHold(
            hold_id, self._tick(), SHOW, section_id, f"b{buyer}", quantity=quantity
        )
        self.requests[hold_id] = quantity
        self._deliver(buyer_key(SHOW, f"b{buyer}"), command)

    @precondition(lambda self: bool(self.in_flight))
    @rule(pick=st.integers(min_value=0), again=st.booleans())
    def deliver(self, pick: int, again: bool) -> None:
        heads = self._channel_heads()
        index = heads[pick % len(heads)]
        _, key, command = self.in_flight[index]
        if again:
            # Delivered a second time later, after the commands behind it.
            self.in_flight.append(self.in_flight[index])
        del self.in_flight[index]
        self._deliver(key, command)

    @precondition(lambda self: bool(self.placed))
    @rule(pick=st.integers(min_value=0), sell=st.booleans())
    def end_hold(self, pick: int, sell: bool) -> None:
        holds = sorted(self.placed)
        hold = self.placed[holds[pick % len(holds)]]
        command: Command
        if sell:
            command = RecordPaymentResult(
                f"pay-{hold.hold_id}",
                self._tick(),
                SHOW,
                hold.section_id,
                hold.hold_id,
                f"pe-{hold.hold_id}",
                True,
            )
        else:
            command = ReleaseHold(
                f"rel-{hold.hold_id}",
                self._tick(),
                SHOW,
                hold.section_id,
                hold.buyer_id,
                hold.hold_id,
            )
        self._deliver(section_key(SHOW, hold.section_id), command)

    @precondition(lambda self: bool(self.writers))
    @rule(pick=st.integers(min_value=0))
    def restart_writer(self, pick: int) -> None:
        keys = sorted(self.writers)
        self.writers[keys[pick % len(keys)]].restart()

    @precondition(lambda self: self.striped_live)
    @rule()
    def stripe_live(self) -> None:
        command = StripeSection("stripe-it", self._tick(), SHOW, SECTION, self.stripes)
        self._deliver(section_key(SHOW, SECTION), command)

    # -- invariants ----------------------------------------------------------

    @invariant()
    def never_oversold_and_balanced(self) -> None:
        for section in self._sections():
            assert section.free_count >= 0
            assert section.held_count + section.sold_count <= section.capacity

    @invariant()
    def persisted_entries_are_the_sections_entries(self) -> None:
        # What a writer stored, change by change, is what it would store afresh:
        # blocks of parked and refused holds are kept up to date entry by entry.
        for writer in self.writers.values():
            for key, section in writer.inventory.sections.items():
                stored = dict(writer.entries.get(key, {}))
                # A stripe state never changed is left out of entries().
                if stored.get("stripe") == StripeState().entry():
                    del stored["stripe"]
                assert stored == section.entries()

    @invariant()
    def capacity_is_conserved(self) -> None:
        on_the_way = 0
        for _, key, command in set(self.in_flight):
            if not isinstance(command, ReceiveCapacity):
                continue
            writer = self.writers.get(self._writer_key(key))
            section = None if writer is None else writer.inventory.sections.get(key)
            if section is None or command.command_id not in section._decided_ids:
                on_the_way += command.quantity
        created = [s for s in self._sections()]
        # Shares of stripes not created yet are still in the striped section's
        # SectionStriped event, i.e. on the way as well.
        pending_creates = sum(
            spec.capacity
            for _, key, command in set(self.in_flight)
            if isinstance(command, CreateShow) and key not in self._created_keys()
            for spec in command.sections
        )
        total = sum(s.capacity for s in created) + on_the_way + pending_creates
        assert total == self.capacity

    def _created_keys(self) -> set[str]:
        return {
            key
            for key in self._stripe_keys()
            if key in self.writers and key in self.writers[key].inventory.sections
        }

    @invariant()
    def every_transfer_leaves_and_arrives_at_most_once(self) -> None:
        outs = Counter(
            e.transfer_id for e in self.events if isinstance(e, CapacityTransferredOut)
        )
        ins = Counter(
            e.transfer_id for e in self.events if isinstance(e, CapacityTransferredIn)
        )
        assert all(n == 1 for n in outs.values())
        assert all(n == 1 for n in ins.values())
        assert set(ins) <= set(outs)

    @invariant()
    def no_buyer_holds_more_than_the_limit_across_stripes(self) -> None:
        places: Counter[str] = Counter()
        for section in self._sections():
            for buyer, count in section._buyer_places.items():
                places[buyer] += count
        assert all(count <= LIMIT for count in places.values())

    @invariant()
    def each_hold_is_placed_or_refused_at_most_once(self) -> None:
        verdicts = Counter(
            e.command_id
            for e in self.events
            if isinstance(e, HoldPlaced | HoldRejected)
            and e.command_id in self.requests
        )
        assert all(n == 1 for n in verdicts.values())

    # -- the end -------------------------------------------------------------

    def _drain(self) -> None:
        steps = 0
        while self.in_flight:
            _, key, command = self.in_flight.pop(0)
            self._deliver(key, command)
            steps += 1
            assert steps < MAX_DRAIN_STEPS, "commands keep calling for commands"

    def teardown(self) -> None:
        if not self.writers:
            return
        self._drain()
        if self.striped_live:
            self.stripe_live()
            self._drain()

        verdicts = {
            e.command_id
            for e in self.events
            if isinstance(e, HoldPlaced | HoldRejected)
        }
        assert set(self.requests) <= verdicts
        assert all(not s.parked for s in self._sections())
        outs = {
            e.transfer_id for e in self.events if isinstance(e, CapacityTransferredOut)
        }
        ins = {
            e.transfer_id for e in self.events if isinstance(e, CapacityTransferredIn)
        }
        assert outs == ins
        self._probe_liveness()

    def _probe_liveness(self) -> None:
        """New buyers are served exactly while the section has the places."""
        for probe in range(3):
            free = sum(s.free_count for s in self._sections())
            quantity = min(LIMIT, max(1, free)) if probe < 2 else free + 1
            if quantity > LIMIT:
                return
            hold_id = f"probe-{probe}"
            # A buyer who comes back after a stripe found its siblings dry.
            self.clock_ms += DRY_RETRY_MS
            section_id = stripe_id(SECTION, probe % self.stripes)
            buyer = f"probe-buyer-{probe}"
            command = RequestHold(
                hold_id, self._tick(), SHOW, section_id, buyer, quantity=quantity
            )
            self._deliver(buyer_key(SHOW, buyer), command)
            self._drain()
            served = any(
                isinstance(e, HoldPlaced) and e.hold_id == hold_id for e in self.events
            )
            assert served == (quantity <= free), (quantity, free)


class LiveStripingNetwork(StripeNetwork):
    """A plain GA section striped while buyers keep asking it for places."""

    striped_live = True


TestStripesCreatedWithTheShow = StripeNetwork.TestCase
TestStripesOfASectionStripedOnSale = LiveStripingNetwork.TestCase


def test_placed_counts_add_up_when_a_stripe_runs_dry() -> None:
    network = StripeNetwork()
    network.create(capacity=4, stripes=2)

    for n in range(4):
        network.request_hold(buyer=n, quantity=1, stripe=0)
        network._drain()
    network._drain()

    placed = [e for e in network.events if isinstance(e, HoldPlaced)]
    assert len(placed) == 4
    assert {e.section_id for e in placed} == {"floor~0"}
    assert any(
        isinstance(e, CapacityTransferredIn) and e.quantity for e in network.events
    )
    assert all(not isinstance(c, PlaceHold) for _, _, c in network.in_flight)
