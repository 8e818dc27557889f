"""Stateful property test: sections move between two partitions during a sale.

Every command is decided twice: once by a reference inventory that owns both
sections and never moves them, and once by two partition inventories between
which the sections move at random points. Producers may keep a stale route for a
while (the old owner then forwards), commands are sent again after a move, and a
partition may restart from its stored entries at any time. After every command:
the partitions give the same events as the reference, once the hand-off events
are left out; each section lives on exactly one partition; nothing is oversold.
At the end a tick far in the future ends every hold that is neither sold nor
ended, on both sides alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import hypothesis.strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from commands.inventory import PartitionInventory, section_key
from commands.model import (
    Checkout,
    Command,
    CreateShow,
    Event,
    HandOffSection,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    PlaceHold,
    RecordPaymentResult,
    ReleaseHold,
    Row,
    SectionAdopted,
    SectionHandedOff,
    SectionKind,
    SectionSpec,
    Tick,
    TicketsSold,
)
from commands.moves import is_move_event

SHOW = "show-1"
RESERVED, GA = "stalls", "floor"
KEYS = {RESERVED: section_key(SHOW, RESERVED), GA: section_key(SHOW, GA)}
SEATS = ("A-1", "A-2", "A-3", "B-1", "B-2")
GA_CAPACITY = 5
T0 = 1_000_000
FAR_FUTURE_MS = 10**12
BUYERS = ("b1", "b2", "b3")
PARTITIONS = 2

sections = st.sampled_from([RESERVED, GA])


def by_section(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by their section, each group in decision order."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        grouped[section_key(event.show_id, getattr(event, "section_id", ""))].append(
            event
        )
    return dict(grouped)


class MovingSections(RuleBasedStateMachine):
    """Two partitions with moving sections against one that never moves them."""

    def __init__(self) -> None:
        super().__init__()
        self.reference = PartitionInventory()
        self.parts = [PartitionInventory(partition=p) for p in range(PARTITIONS)]
        self.tables: list[dict[str, dict[str, Any]]] = [{} for _ in self.parts]
        self.home = {key: 0 for key in KEYS.values()}
        self.route = dict(self.home)
        self.clock_ms = T0
        self.sent: list[tuple[str, Command]] = []
        self.holds: dict[str, list[str]] = {RESERVED: [], GA: []}
        self.n = 0
        self.moves = 0
        self.split_events: list[Event] = []

    # -- delivery ----------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def _persist(self, partition: int) -> None:
        table = self.tables[partition]
        for key, changes in self.parts[partition].drain_changes().items():
            entries = table.setdefault(key, {})
            for name, value in changes.items():
                if value is None:
                    entries.pop(name, None)
                else:
                    entries[name] = value

    def _decide_at(self, partition: int, command: Command) -> list[Event]:
        """Decide at one partition, then deliver what it sends on, in order."""
        inventory = self.parts[partition]
        events = inventory.decide(command)
        self._persist(partition)
        for target, sent in inventory.drain_sends():
            events.extend(self._decide_at(target, sent))
        return events

    def _deliver(self, key: str, command: Command) -> None:
        expected = self.reference.decide(command)
        got = self._decide_at(self.route[key], command)
        self.split_events.extend(got)
        moves = [e for e in got if is_move_event(e)]
        assert moves == [], f"a move event from an ordinary command: {moves}"
        assert got == expected
        self.sent.append((key, command))

    # -- set-up ------------------------------------------------------------------

    @initialize()
    def create_show(self) -> None:
        rows = (Row("A", ("1", "2", "3")), Row("B", ("1", "2")))
        command = CreateShow(
            command_id="create",
            issued_at_ms=T0,
            show_id=SHOW,
            hold_ttl_seconds=5,
            max_tickets_per_buyer=4,
            sections=(
                SectionSpec(RESERVED, SectionKind.RESERVED, rows=rows),
                SectionSpec(GA, SectionKind.GENERAL_ADMISSION, capacity=GA_CAPACITY),
            ),
            payment_window_seconds=8,
        )
        self._deliver(KEYS[RESERVED], command)

    # -- the sale ----------------------------------------------------------------

    @rule(
        section=sections,
        buyer=st.sampled_from(BUYERS),
        seats=st.lists(st.sampled_from(SEATS), min_size=1, max_size=2, unique=True),
        quantity=st.integers(1, 3),
        step_ms=st.integers(0, 3000),
    )
    def place_hold(
        self,
        section: str,
        buyer: str,
        seats: list[str],
        quantity: int,
        step_ms: int,
    ) -> None:
        self.clock_ms += step_ms
        hold_id = self._next_id("hold")
        reserved = section == RESERVED
        command = PlaceHold(
            command_id=hold_id,
            issued_at_ms=self.clock_ms,
            show_id=SHOW,
            section_id=section,
            buyer_id=buyer,
            seat_ids=tuple(seats) if reserved else (),
            quantity=0 if reserved else quantity,
        )
        self.holds[section].append(hold_id)
        self._deliver(KEYS[section], command)

    @precondition(lambda self: any(self.holds.values()))
    @rule(
        section=sections,
        pick=st.integers(0, 1000),
        action=st.sampled_from(["release", "checkout", "paid", "declined"]),
        step_ms=st.integers(0, 3000),
    )
    def act_on_hold(self, section: str, pick: int, action: str, step_ms: int) -> None:
        holds = self.holds[section] or self.holds[RESERVED] + self.holds[GA]
        hold_id = holds[pick % len(holds)]
        section = RESERVED if hold_id in self.holds[RESERVED] else GA
        self.clock_ms += step_ms
        placed = [
            e
            for e in self.split_events
            if isinstance(e, HoldPlaced) and e.hold_id == hold_id
        ]
        buyer = placed[0].buyer_id if placed else BUYERS[0]
        command_id = self._next_id(action)
        where = {
            "command_id": command_id,
            "issued_at_ms": self.clock_ms,
            "show_id": SHOW,
            "section_id": section,
        }
        command: Command
        if action == "release":
            command = ReleaseHold(**where, buyer_id=buyer, hold_id=hold_id)
        elif action == "checkout":
            command = Checkout(**where, buyer_id=buyer, hold_id=hold_id)
        else:
            command = RecordPaymentResult(
                **where,
                hold_id=hold_id,
                provider_event_id=f"evt-{command_id}",
                succeeded=action == "paid",
            )
        self._deliver(KEYS[section], command)

    @rule(step_ms=st.integers(0, 9000))
    def tick(self, step_ms: int) -> None:
        self.clock_ms += step_ms
        tick = Tick(command_id=self._next_id("tick"), issued_at_ms=self.clock_ms)
        expected = self.reference.decide(tick)
        got: list[Event] = []
        for partition in range(PARTITIONS):
            got.extend(self._decide_at(partition, tick))
        self.split_events.extend(got)
        assert by_section(got) == by_section(expected)

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(0, 1000))
    def send_again(self, pick: int) -> None:
        key, command = self.sent[pick % len(self.sent)]
        if isinstance(command, CreateShow):
            return
        self._deliver(key, command)

    # -- moves -------------------------------------------------------------------

    @rule(section=sections, producers_follow=st.booleans(), to_stale=st.booleans())
    def move(self, section: str, producers_follow: bool, to_stale: bool) -> None:
        key = KEYS[section]
        source = self.home[key]
        target = 1 - source
        # The operator's tool may itself hold a stale route: the old owner forwards.
        sent_to = self.route[key] if to_stale else source
        command = HandOffSection(
            command_id=self._next_id("move"),
            issued_at_ms=self.clock_ms,
            show_id=SHOW,
            section_id=section,
            to_partition=target,
        )

        events = self._decide_at(sent_to, command)

        handed = [e for e in events if isinstance(e, SectionHandedOff)]
        adopted = [e for e in events if isinstance(e, SectionAdopted)]
        assert [type(e) for e in events] == [SectionHandedOff, SectionAdopted]
        assert handed[0].from_partition == source == adopted[0].from_partition
        assert handed[0].epoch == adopted[0].epoch
        assert self.parts[target].route_epoch(key) == handed[0].epoch
        assert self.parts[source].route_epoch(key) == handed[0].epoch - 1
        mirror = self.reference.sections[key]
        assert (adopted[0].held, adopted[0].sold) == (
            mirror.held_count,
            mirror.sold_count,
        )
        self.home[key] = target
        self.moves += 1
        if producers_follow:
            self.route[key] = target

    @rule(section=sections)
    def producers_catch_up(self, section: str) -> None:
        self.route[KEYS[section]] = self.home[KEYS[section]]

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def restart(self, partition: int) -> None:
        self.parts[partition] = PartitionInventory.restore(
            self.tables[partition], partition=partition
        )

    @rule(section=sections)
    def move_to_own_partition_is_refused(self, section: str) -> None:
        key = KEYS[section]
        command = HandOffSection(
            command_id=self._next_id("noop-move"),
            issued_at_ms=self.clock_ms,
            show_id=SHOW,
            section_id=section,
            to_partition=self.home[key],
        )

        events = self._decide_at(self.home[key], command)

        assert [type(e).__name__ for e in events] == ["CommandRejected"]
        assert self.parts[self.home[key]].sections.get(key) is not None

    # -- invariants --------------------------------------------------------------

    @invariant()
    def each_section_lives_on_exactly_one_partition(self) -> None:
        for key, home in self.home.items():
            owners = [p for p, part in enumerate(self.parts) if key in part.sections]
            assert owners == [home]
            other = self.parts[1 - home]
            if key in other.moved:
                assert other.moved[key].to_partition == home

    @invariant()
    def owner_counts_match_the_reference(self) -> None:
        for key, home in self.home.items():
            section = self.parts[home].sections[key]
            mirror = self.reference.sections[key]
            assert section.capacity == section.held_count + section.sold_count + (
                section.free_count
            )
            assert (section.held_count, section.sold_count) == (
                mirror.held_count,
                mirror.sold_count,
            )
            assert section.free_count >= 0

    @invariant()
    def no_seat_is_held_or_sold_twice(self) -> None:
        taken: dict[str, str] = {}
        for event in self.split_events:
            if isinstance(event, HoldPlaced):
                for seat in event.seat_ids:
                    assert seat not in taken, f"seat {seat} placed twice"
                    taken[seat] = event.hold_id
            elif isinstance(event, HoldExpired | HoldReleased):
                for seat in event.seat_ids:
                    assert taken.pop(seat) == event.hold_id
            elif isinstance(event, TicketsSold):
                for seat in event.seat_ids:
                    assert taken[seat] == event.hold_id

    def teardown(self) -> None:
        if not hasattr(self, "reference") or not self.reference.sections:
            return
        tick = Tick(command_id="final", issued_at_ms=FAR_FUTURE_MS)
        expected = self.reference.decide(tick)
        got: list[Event] = []
        for partition in range(PARTITIONS):
            got.extend(self._decide_at(partition, tick))
        assert by_section(got) == by_section(expected)
        for key, home in self.home.items():
            assert self.parts[home].sections[key].holds == {}
        placed = {e.hold_id for e in self.split_events if isinstance(e, HoldPlaced)}
        ended = {
            e.hold_id
            for e in [*self.split_events, *got]
            if isinstance(e, HoldExpired | HoldReleased | TicketsSold)
        }
        assert placed == ended, "a hold neither sold, released nor expired"


TestMovingSections = MovingSections.TestCase
