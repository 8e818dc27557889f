"""Stateful property test of ``PartitionInventory`` against an independent ledger.

The ledger is folded only from the events the core emits (``HoldPlaced`` /
``HoldExpired``); after every step the core's own state must agree with it and the
sale invariants must hold. Along the way the persisted entries (``drain_changes``)
are accumulated and turned back into sections (``SectionInventory.restore``); a
restored copy then decides every later command next to the live one. At the end the
recorded commands are replayed into a fresh inventory: same events.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import event
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from commands.inventory import PartitionInventory, SectionInventory, section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    Row,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
)

SHOW = "show-1"
OTHER_SHOW = "show-2"
RESERVED = "stalls"
GA = "floor"
UNKNOWN_SECTION = "balcony"
T0 = 1_000_000
ROW_LABELS = "ABC"
MAX_SEATS_PER_ROW = 3

# Seats never in any plan drawn below.
UNKNOWN_SEATS = ("Z-1", "A-9", "A1", "D-1")
BUYERS = ("b1", "b2", "b3")

buyers = st.sampled_from(BUYERS)
# An integer picks a seat of the drawn plan (modulo its size), a string is unknown.
seat_picks = st.lists(
    st.one_of(
        st.integers(0, 8),
        st.integers(0, 8),
        st.integers(0, 8),
        st.sampled_from(UNKNOWN_SEATS),
    ),
    max_size=4,
)
plausible_seat_picks = st.lists(st.integers(0, 8), min_size=1, max_size=2, unique=True)
# ``None`` draws a fresh command id, an integer re-uses an earlier one.
command_id_choices = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 40))
time_steps = st.one_of(
    st.integers(-3000, 3000),
    st.integers(0, 12_000),
    st.sampled_from([-1, 0, 1]),
)
at_deadline = st.integers(0, 5).map(lambda n: n == 0)


@dataclass(slots=True)
class LedgerHold:
    hold_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    expires_at_ms: int


@dataclass(slots=True)
class LedgerSection:
    """What one section must look like, folded from its events alone."""

    show_id: str
    section_id: str
    kind: SectionKind
    all_seats: frozenset[str]
    capacity: int
    ttl_ms: int
    max_per_buyer: int
    clock_ms: int
    open: dict[str, LedgerHold] = field(default_factory=dict)
    ever_placed: set[str] = field(default_factory=set)
    ever_expired: set[str] = field(default_factory=set)

    @property
    def reserved(self) -> bool:
        return self.kind is SectionKind.RESERVED

    @property
    def held_count(self) -> int:
        return sum(hold.quantity for hold in self.open.values())

    def held_seats(self) -> list[str]:
        return [seat for hold in self.open.values() for seat in hold.seat_ids]

    def buyer_places(self) -> Counter[str]:
        places: Counter[str] = Counter()
        for hold in self.open.values():
            places[hold.buyer_id] += hold.quantity
        return places

    def place(self, placed: HoldPlaced) -> None:
        assert placed.hold_id not in self.ever_placed, (
            f"hold {placed.hold_id!r} placed a second time in {self.section_id}"
        )
        self.ever_placed.add(placed.hold_id)
        self.open[placed.hold_id] = LedgerHold(
            placed.hold_id,
            placed.buyer_id,
            placed.seat_ids,
            placed.quantity,
            placed.expires_at_ms,
        )

    def expire(self, expired: HoldExpired) -> None:
        assert expired.hold_id in self.ever_placed, "expiry of an unknown hold"
        assert expired.hold_id not in self.ever_expired, "hold expired twice"
        hold = self.open.pop(expired.hold_id)
        self.ever_expired.add(expired.hold_id)
        assert (expired.seat_ids, expired.quantity) == (hold.seat_ids, hold.quantity)
        assert expired.occurred_at_ms >= hold.expires_at_ms, "hold expired early"

    def expected_reasons(self, command: PlaceHold) -> set[RejectionReason]:
        """Every reason that applies to the command; empty if it must be placed."""
        if self.reserved:
            quantity = len(command.seat_ids)
            if (
                not command.seat_ids
                or command.quantity not in (0, quantity)
                or len(set(command.seat_ids)) != quantity
            ):
                return {RejectionReason.INVALID_REQUEST}
        else:
            quantity = command.quantity
            if command.seat_ids or quantity <= 0:
                return {RejectionReason.INVALID_REQUEST}
        reasons: set[RejectionReason] = set()
        if self.buyer_places()[command.buyer_id] + quantity > self.max_per_buyer:
            reasons.add(RejectionReason.BUYER_LIMIT_REACHED)
        if self.reserved:
            if any(seat not in self.all_seats for seat in command.seat_ids):
                reasons.add(RejectionReason.UNKNOWN_SEAT)
            held = set(self.held_seats())
            if any(seat in held for seat in command.seat_ids):
                reasons.add(RejectionReason.SEAT_UNAVAILABLE)
        elif quantity > self.capacity - self.held_count:
            reasons.add(RejectionReason.SOLD_OUT)
        return reasons


def json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value))


class InventoryMachine(RuleBasedStateMachine):
    """One show: a reserved section and a GA section, three buyers."""

    def __init__(self) -> None:
        super().__init__()
        self.inventory = PartitionInventory()
        self.ledger: dict[str, LedgerSection] = {}
        self.commands: list[Command] = []
        self.events: list[Event] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.restored: PartitionInventory | None = None
        self.issued_ms = T0
        self.command_ids: list[str] = []
        self.plan_seats: tuple[str, ...] = ()

    # -- driving -----------------------------------------------------------------

    def _command_id(self, choice: int | None) -> str:
        if choice is None or not self.command_ids:
            command_id = f"c{len(self.command_ids)}"
            self.command_ids.append(command_id)
            return command_id
        event("re-used command id")
        return self.command_ids[choice % len(self.command_ids)]

    def _seats(self, picks: list[int | str]) -> tuple[str, ...]:
        plan = self.plan_seats
        return tuple(p if isinstance(p, str) else plan[p % len(plan)] for p in picks)

    def _issue_time(self, step: int, to_deadline: bool, keys: list[str]) -> int:
        deadlines = [
            hold.expires_at_ms
            for key in keys
            if key in self.ledger
            for hold in self.ledger[key].open.values()
        ]
        if to_deadline and deadlines:
            event("command exactly at a deadline")
            self.issued_ms = min(deadlines)
        else:
            self.issued_ms += step
        return self.issued_ms

    def _run(self, command: Command) -> list[Event]:
        events = self.inventory.decide(command)
        if self.restored is not None:
            assert self.restored.decide(command) == events, "restored copy differs"
        self.commands.append(command)
        self.events.extend(events)
        return events

    def _hold(self, command: PlaceHold) -> None:
        key = section_key(command.show_id, command.section_id)
        ledger = self.ledger.get(key)
        sections_before = {k: s.held_count for k, s in self.inventory.sections.items()}

        events = self._run(command)

        if ledger is None:
            assert len(events) == 1
            rejected = events[0]
            assert isinstance(rejected, HoldRejected)
            assert rejected.reason is RejectionReason.UNKNOWN_SECTION
            assert rejected.occurred_at_ms == command.issued_at_ms
            assert {
                k: s.held_count for k, s in self.inventory.sections.items()
            } == sections_before
            event(f"rejected {rejected.reason}")
            return
        self._check_section_events(ledger, command, events)

    def _check_section_events(
        self, ledger: LedgerSection, command: PlaceHold, events: list[Event]
    ) -> None:
        now_ms = max(ledger.clock_ms, command.issued_at_ms)
        due = {h.hold_id for h in ledger.open.values() if h.expires_at_ms <= now_ms}
        expired = [e for e in events if isinstance(e, HoldExpired)]
        assert events[: len(expired)] == expired, "expiries must come first"
        assert [e.hold_id for e in expired] == list(
            dict.fromkeys(e.hold_id for e in expired)
        )
        assert {e.hold_id for e in expired} == due, "wrong holds expired"
        for expiry in expired:
            assert expiry.command_id == command.command_id
            assert expiry.occurred_at_ms == now_ms
            assert (expiry.show_id, expiry.section_id) == (
                ledger.show_id,
                ledger.section_id,
            )
            ledger.expire(expiry)
        if expired:
            event("holds expired")

        decision = events[len(expired) :]
        if command.command_id in ledger.open:
            event("redelivered open hold")
            assert decision == [], "a redelivered open hold decides nothing"
        elif command.command_id in ledger.ever_placed:
            # Its hold has ended: whatever the answer, no second hold of that id.
            event("redelivered ended hold")
            assert len(decision) <= 1
            assert not any(isinstance(e, HoldPlaced) for e in decision), (
                f"hold {command.command_id!r} placed a second time in "
                f"{ledger.section_id}"
            )
        else:
            assert len(decision) == 1
            self._check_decision(ledger, command, now_ms, decision[0])
        ledger.clock_ms = now_ms

    def _check_decision(
        self, ledger: LedgerSection, command: PlaceHold, now_ms: int, decided: Event
    ) -> None:
        reasons = ledger.expected_reasons(command)
        if reasons:
            assert isinstance(decided, HoldRejected), f"expected one of {reasons}"
            assert decided.reason in reasons
            assert decided == HoldRejected(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=ledger.show_id,
                section_id=ledger.section_id,
                buyer_id=command.buyer_id,
                reason=decided.reason,
                detail=decided.detail,
            )
            event(f"rejected {decided.reason}")
            return
        assert isinstance(decided, HoldPlaced), f"expected a hold, got {decided}"
        quantity = len(command.seat_ids) if ledger.reserved else command.quantity
        assert decided == HoldPlaced(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            hold_id=command.command_id,
            show_id=ledger.show_id,
            section_id=ledger.section_id,
            buyer_id=command.buyer_id,
            seat_ids=command.seat_ids,
            quantity=quantity,
            expires_at_ms=now_ms + ledger.ttl_ms,
        )
        ledger.place(decided)
        event(f"placed in {ledger.kind}")

    def _drain(self) -> None:
        for key, changes in self.inventory.drain_changes().items():
            accumulated = self.entries.setdefault(key, {})
            for name, value in changes.items():
                if value is None:
                    accumulated.pop(name, None)
                else:
                    accumulated[name] = json_round_trip(value)

    # -- rules ---------------------------------------------------------------------

    @initialize(
        rows=st.integers(1, len(ROW_LABELS)),
        seats_per_row=st.integers(1, MAX_SEATS_PER_ROW),
        capacity=st.integers(1, 6),
        max_per_buyer=st.integers(1, 4),
        ttl_seconds=st.integers(1, 8),
    )
    def create_show(
        self,
        rows: int,
        seats_per_row: int,
        capacity: int,
        max_per_buyer: int,
        ttl_seconds: int,
    ) -> None:
        numbers = tuple(str(n) for n in range(1, seats_per_row + 1))
        specs = (
            SectionSpec(
                RESERVED,
                SectionKind.RESERVED,
                rows=tuple(Row(label, numbers) for label in ROW_LABELS[:rows]),
            ),
            SectionSpec(GA, SectionKind.GENERAL_ADMISSION, capacity=capacity),
        )
        command = CreateShow(
            command_id=self._command_id(None),
            issued_at_ms=T0,
            show_id=SHOW,
            hold_ttl_seconds=ttl_seconds,
            max_tickets_per_buyer=max_per_buyer,
            sections=specs,
        )

        events = self._run(command)

        assert events == [
            SectionCreated(
                command_id=command.command_id,
                occurred_at_ms=T0,
                show_id=SHOW,
                section_id=spec.section_id,
                kind=spec.kind,
                capacity=spec.place_count(),
                hold_ttl_seconds=ttl_seconds,
            )
            for spec in specs
        ]
        self.plan_seats = specs[0].seat_ids()
        for spec in specs:
            self.ledger[section_key(SHOW, spec.section_id)] = LedgerSection(
                show_id=SHOW,
                section_id=spec.section_id,
                kind=spec.kind,
                all_seats=frozenset(spec.seat_ids()),
                capacity=spec.place_count(),
                ttl_ms=ttl_seconds * 1000,
                max_per_buyer=max_per_buyer,
                clock_ms=T0,
            )

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        buyer=buyers,
        seats=st.one_of(plausible_seat_picks, plausible_seat_picks, seat_picks),
        quantity=st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-2, 5)),
    )
    def hold_seats(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        buyer: str,
        seats: list[int | str],
        quantity: int,
    ) -> None:
        self._hold(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._issue_time(
                    step, to_deadline, [section_key(SHOW, RESERVED)]
                ),
                show_id=SHOW,
                section_id=RESERVED,
                buyer_id=buyer,
                seat_ids=self._seats(seats),
                quantity=quantity,
            )
        )

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        buyer=buyers,
        quantity=st.integers(-2, 7),
        seats=st.one_of(st.just([]), st.just([]), st.just([]), seat_picks),
    )
    def hold_places(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        buyer: str,
        quantity: int,
        seats: list[int | str],
    ) -> None:
        self._hold(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._issue_time(
                    step, to_deadline, [section_key(SHOW, GA)]
                ),
                show_id=SHOW,
                section_id=GA,
                buyer_id=buyer,
                seat_ids=self._seats(seats),
                quantity=quantity,
            )
        )

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        show_id=st.sampled_from([SHOW, OTHER_SHOW]),
        section_id=st.sampled_from([RESERVED, GA, UNKNOWN_SECTION]),
        buyer=buyers,
        seats=seat_picks,
        quantity=st.integers(-2, 7),
    )
    def hold_anywhere(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        show_id: str,
        section_id: str,
        buyer: str,
        seats: list[int | str],
        quantity: int,
    ) -> None:
        self._hold(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._issue_time(step, to_deadline, list(self.ledger)),
                show_id=show_id,
                section_id=section_id,
                buyer_id=buyer,
                seat_ids=self._seats(seats),
                quantity=quantity,
            )
        )

    @rule(index=st.integers(0, 10_000), step=time_steps, same_time=st.booleans())
    def redeliver(self, index: int, step: int, same_time: bool) -> None:
        holds = [c for c in self.commands if isinstance(c, PlaceHold)]
        if not holds:
            return
        command = holds[index % len(holds)]
        if not same_time:
            command = dataclasses.replace(
                command, issued_at_ms=self._issue_time(step, False, [])
            )
        event("redelivered command")
        self._hold(command)

    @rule(
        step=time_steps,
        ttl_seconds=st.integers(0, 20),
        capacity=st.integers(0, 50),
        which=st.sampled_from([(RESERVED,), (GA,), (RESERVED, GA)]),
    )
    def create_show_again(
        self, step: int, ttl_seconds: int, capacity: int, which: tuple[str, ...]
    ) -> None:
        specs = tuple(
            SectionSpec(section_id, SectionKind.GENERAL_ADMISSION, capacity=capacity)
            for section_id in which
        )
        command = CreateShow(
            command_id=self._command_id(None),
            issued_at_ms=self._issue_time(step, False, []),
            show_id=SHOW,
            hold_ttl_seconds=ttl_seconds,
            max_tickets_per_buyer=capacity,
            sections=specs,
        )
        before = {
            key: (s.spec, s.clock_ms, dict(s.holds), s.free_seat_ids())
            for key, s in self.inventory.sections.items()
        }

        events = self._run(command)

        assert events == [
            SectionRejected(
                command_id=command.command_id,
                occurred_at_ms=command.issued_at_ms,
                show_id=SHOW,
                section_id=section_id,
                reason=RejectionReason.SECTION_EXISTS,
            )
            for section_id in which
        ]
        after = {
            key: (s.spec, s.clock_ms, dict(s.holds), s.free_seat_ids())
            for key, s in self.inventory.sections.items()
        }
        assert after == before

    @rule()
    def drain(self) -> None:
        self._drain()

    @rule()
    def restore_from_entries(self) -> None:
        self._drain()

        restored = {
            key: SectionInventory.restore(entries)
            for key, entries in self.entries.items()
        }

        assert restored.keys() == self.inventory.sections.keys()
        self.restored = PartitionInventory(restored)
        self._assert_restored_matches_live()
        event("restored from entries")

    # -- invariants ------------------------------------------------------------------

    def _assert_restored_matches_live(self) -> None:
        assert self.restored is not None
        for key, live in self.inventory.sections.items():
            copy = self.restored.sections[key]
            assert copy.spec == live.spec
            assert (copy.hold_ttl_seconds, copy.max_tickets_per_buyer) == (
                live.hold_ttl_seconds,
                live.max_tickets_per_buyer,
            )
            assert copy.clock_ms == live.clock_ms
            assert copy.holds == live.holds
            assert copy.free_count == live.free_count
            assert copy.held_count == live.held_count
            assert copy.free_seat_ids() == live.free_seat_ids()

    @invariant()
    def never_oversold(self) -> None:
        for section in self.inventory.sections.values():
            assert section.held_count + section.sold_count <= section.capacity
            assert section.free_count >= 0
            assert section.held_count >= 0

    @invariant()
    def core_agrees_with_ledger(self) -> None:
        for key, ledger in self.ledger.items():
            live = self.inventory.sections[key]
            assert live.held_count == ledger.held_count
            assert live.free_count == ledger.capacity - ledger.held_count
            assert live.holds.keys() == ledger.open.keys()
            assert live.clock_ms == ledger.clock_ms, "section clock lags log time"

    @invariant()
    def reserved_seats_are_partitioned(self) -> None:
        for key, ledger in self.ledger.items():
            if not ledger.reserved:
                continue
            held = ledger.held_seats()
            free = self.inventory.sections[key].free_seat_ids()
            assert len(held) == len(set(held)), "a seat is in two open holds"
            assert free.isdisjoint(held)
            assert free | set(held) == ledger.all_seats

    @invariant()
    def buyer_limit_holds(self) -> None:
        for ledger in self.ledger.values():
            for places in ledger.buyer_places().values():
                assert places <= ledger.max_per_buyer

    @invariant()
    def no_hold_outlives_its_ttl(self) -> None:
        for ledger in self.ledger.values():
            for hold in ledger.open.values():
                assert hold.expires_at_ms > ledger.clock_ms, "lapsed hold still open"

    @invariant()
    def restored_copy_tracks_live(self) -> None:
        if self.restored is not None:
            self._assert_restored_matches_live()

    def teardown(self) -> None:
        replayed = PartitionInventory().decide_all(self.commands)
        assert replayed == self.events, "replay of the same commands differs"

        placed = Counter(
            (e.section_id, e.hold_id) for e in self.events if isinstance(e, HoldPlaced)
        )
        ended = Counter(
            (e.section_id, e.hold_id) for e in self.events if isinstance(e, HoldExpired)
        )
        for hold, count in ended.items():
            assert count <= placed[hold], f"{hold} ended without being placed"
        assert all(count == 1 for count in ended.values())


# Settings come from the profile loaded in conftest.py (HYPOTHESIS_PROFILE).
TestInventoryMachine = InventoryMachine.TestCase
