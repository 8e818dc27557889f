"""Stateful property test of ``PartitionInventory`` against an independent ledger.

The ledger is folded only from the events the core emits; it checks every transition
of a hold (held, payment pending, sold, ended) and predicts each decision from its
own state. After every step the core must agree with it and the sale invariants
must hold. Along the way the persisted entries (``drain_changes``) are accumulated
and turned back into sections (``SectionInventory.restore``); a restored copy then
decides every later command next to the live one. At the end a Tick far in the
future must end every open hold, and the recorded commands, replayed into a fresh
inventory, must give the same events, byte for byte once encoded.
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
    AddInventory,
    ChangeHoldTtl,
    Checkout,
    CheckoutStarted,
    CloseSale,
    Command,
    CommandRejected,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    HoldTtlChanged,
    InventoryAdded,
    InventoryMode,
    InventoryWithdrawn,
    OpenSale,
    PlaceHold,
    RecordPaymentResult,
    RefundRequired,
    RejectionReason,
    ReleaseHold,
    ReleaseReason,
    Row,
    SaleClosed,
    SaleOpened,
    SectionCommand,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
    Tick,
    TicketsSold,
    WithdrawInventory,
)
from schemas.codec import encode_events

SHOW = "show-1"
OTHER_SHOW = "show-2"
RESERVED = "stalls"
GA = "floor"
UNKNOWN_SECTION = "balcony"
T0 = 1_000_000
FAR_FUTURE_MS = 10**12
ROW_LABELS = "ABC"
EXTRA_ROWS = (Row("D", ("1", "2", "3")), Row("A", ("4", "5")), Row("B", ("1",)))
MAX_SEATS_PER_ROW = 4

# Seats never in any plan drawn below.
UNKNOWN_SEATS = ("Z-1", "A-9", "A1")
BUYERS = ("b1", "b2", "b3")
REJECTED = "rejected"

buyers = st.sampled_from(BUYERS)
# An integer picks a seat ever in the plan (modulo their number), a string is unknown.
seat_picks = st.lists(
    st.one_of(
        st.integers(0, 12),
        st.integers(0, 12),
        st.integers(0, 12),
        st.sampled_from(UNKNOWN_SEATS),
    ),
    max_size=4,
)
plausible_seat_picks = st.lists(st.integers(0, 12), min_size=1, max_size=2, unique=True)
# ``None`` draws a fresh command id, an integer re-uses an earlier one.
command_id_choices = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 60))
time_steps = st.one_of(
    st.integers(-3000, 3000),
    st.integers(0, 12_000),
    st.sampled_from([-1, 0, 1]),
)
at_deadline = st.integers(0, 5).map(lambda n: n == 0)
# An integer picks a hold ever placed in the section, ``None`` an unknown hold.
hold_picks = st.one_of(st.integers(0, 1000), st.integers(0, 1000), st.none())
sections = st.sampled_from([RESERVED, GA])


@dataclass(slots=True)
class LedgerHold:
    hold_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    expires_at_ms: int
    pending: bool = False


@dataclass(slots=True)
class LedgerSection:
    """What one section must look like, folded from its events alone."""

    show_id: str
    section_id: str
    kind: SectionKind
    rows: list[Row]
    capacity: int
    ttl_ms: int
    window_ms: int
    max_per_buyer: int
    mode: InventoryMode
    clock_ms: int
    sale_open: bool = True
    open: dict[str, LedgerHold] = field(default_factory=dict)
    sold: dict[str, LedgerHold] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    refunded: set[str] = field(default_factory=set)
    placed_order: list[str] = field(default_factory=list)
    ever_sold_seats: set[str] = field(default_factory=set)
    decided_ids: set[str] = field(default_factory=set)

    @property
    def reserved(self) -> bool:
        return self.kind is SectionKind.RESERVED

    @property
    def all_seats(self) -> set[str]:
        return {f"{r.label}-{n}" for r in self.rows for n in r.seat_numbers}

    @property
    def held_count(self) -> int:
        return sum(hold.quantity for hold in self.open.values())

    @property
    def sold_count(self) -> int:
        return sum(hold.quantity for hold in self.sold.values())

    @property
    def free_count(self) -> int:
        return self.capacity - self.held_count - self.sold_count

    def taken_seats(self) -> list[str]:
        holds = [*self.open.values(), *self.sold.values()]
        return [seat for hold in holds for seat in hold.seat_ids]

    def free_seats(self) -> set[str]:
        return self.all_seats - set(self.taken_seats())

    def buyer_places(self) -> Counter[str]:
        places: Counter[str] = Counter()
        for hold in [*self.open.values(), *self.sold.values()]:
            places[hold.buyer_id] += hold.quantity
        return places

    def known(self, hold_id: str) -> bool:
        return hold_id in self.open or hold_id in self.sold or hold_id in self.ended

    # -- fold: every transition checked ------------------------------------------

    def fold(self, e: Event) -> None:
        if isinstance(e, HoldPlaced):
            assert not self.known(e.hold_id), f"hold {e.hold_id!r} placed twice"
            assert e.expires_at_ms == e.occurred_at_ms + self.ttl_ms
            self.placed_order.append(e.hold_id)
            self.open[e.hold_id] = LedgerHold(
                e.hold_id, e.buyer_id, e.seat_ids, e.quantity, e.expires_at_ms
            )
        elif isinstance(e, HoldExpired | HoldReleased):
            assert e.hold_id in self.open, f"{type(e).__name__} of a closed hold"
            hold = self.open.pop(e.hold_id)
            assert (e.seat_ids, e.quantity) == (hold.seat_ids, hold.quantity)
            if isinstance(e, HoldExpired):
                assert e.occurred_at_ms >= hold.expires_at_ms, "hold expired early"
                self.ended[e.hold_id] = "expired"
            else:
                assert e.occurred_at_ms < hold.expires_at_ms, "released after deadline"
                assert hold.pending == (e.reason is ReleaseReason.PAYMENT_FAILED)
                self.ended[e.hold_id] = e.reason.value
        elif isinstance(e, CheckoutStarted):
            hold = self.open[e.hold_id]
            assert not hold.pending, "checked out twice"
            assert e.payment_deadline_ms == e.occurred_at_ms + self.window_ms
            hold.pending = True
            hold.expires_at_ms = e.payment_deadline_ms
        elif isinstance(e, TicketsSold):
            assert e.hold_id in self.open, "sale of a hold that is not open"
            hold = self.open.pop(e.hold_id)
            assert (e.seat_ids, e.quantity, e.buyer_id) == (
                hold.seat_ids,
                hold.quantity,
                hold.buyer_id,
            )
            assert e.ticket_ids == tuple(
                f"{e.hold_id}-{n}" for n in range(1, hold.quantity + 1)
            )
            assert self.ever_sold_seats.isdisjoint(e.seat_ids), "seat sold twice"
            self.ever_sold_seats.update(e.seat_ids)
            self.sold[e.hold_id] = hold
        elif isinstance(e, RefundRequired):
            assert e.hold_id in self.ended, "refund for a hold that did not end unsold"
            assert e.hold_id not in self.refunded, "refund required twice"
            self.refunded.add(e.hold_id)
        else:
            self._fold_admin(e)

    def _fold_admin(self, e: Event) -> None:
        if isinstance(e, SaleOpened | SaleClosed):
            self.sale_open = isinstance(e, SaleOpened)
        elif isinstance(e, HoldTtlChanged):
            self.ttl_ms = e.hold_ttl_seconds * 1000
        elif isinstance(e, InventoryAdded):
            assert self.all_seats.isdisjoint(e.seat_ids)
            for row in e.rows:
                index = (
                    [r.label for r in self.rows].index(row.label)
                    if any(r.label == row.label for r in self.rows)
                    else None
                )
                if index is None:
                    self.rows.append(row)
                else:
                    old = self.rows[index]
                    self.rows[index] = Row(
                        old.label, old.seat_numbers + row.seat_numbers
                    )
            self.capacity += e.quantity
            assert e.capacity == self.capacity
        elif isinstance(e, InventoryWithdrawn):
            assert set(e.seat_ids) <= self.free_seats(), "withdrew a seat in use"
            self.rows = [
                Row(
                    r.label,
                    tuple(
                        n for n in r.seat_numbers if f"{r.label}-{n}" not in e.seat_ids
                    ),
                )
                for r in self.rows
            ]
            self.capacity -= e.quantity
            assert self.free_count >= 0
            assert e.capacity == self.capacity

    # -- predictions ----------------------------------------------------------------

    def best_block(self, quantity: int) -> tuple[str, ...] | None:
        free = self.free_seats()
        for row in self.rows:
            seats = [f"{row.label}-{n}" for n in row.seat_numbers]
            blocks = [
                (abs((start + (quantity - 1) / 2) - (len(seats) - 1) / 2), start)
                for start in range(len(seats) - quantity + 1)
                if all(s in free for s in seats[start : start + quantity])
            ]
            if blocks:
                _, start = min(blocks)
                return tuple(seats[start : start + quantity])
        return None

    def hold_reasons(self, c: PlaceHold) -> set[RejectionReason]:
        """Every reason that applies to the hold; empty if it must be placed."""
        if not self.sale_open:
            return {RejectionReason.SALE_CLOSED}
        quantity = len(c.seat_ids) or c.quantity
        if self.reserved:
            if (not c.seat_ids and c.quantity <= 0) or (
                c.seat_ids
                and (
                    c.quantity not in (0, quantity) or len(set(c.seat_ids)) != quantity
                )
            ):
                return {RejectionReason.INVALID_REQUEST}
        elif c.seat_ids or quantity <= 0:
            return {RejectionReason.INVALID_REQUEST}
        reasons: set[RejectionReason] = set()
        if self.buyer_places()[c.buyer_id] + quantity > self.max_per_buyer:
            reasons.add(RejectionReason.BUYER_LIMIT_REACHED)
        if self.reserved and c.seat_ids:
            if any(seat not in self.all_seats for seat in c.seat_ids):
                reasons.add(RejectionReason.UNKNOWN_SEAT)
            if any(seat in self.taken_seats() for seat in c.seat_ids):
                reasons.add(RejectionReason.SEAT_UNAVAILABLE)
        elif self.reserved:
            if self.best_block(quantity) is None:
                reasons.add(RejectionReason.SOLD_OUT)
        elif quantity > self.free_count:
            reasons.add(RejectionReason.SOLD_OUT)
        return reasons

    def buyer_hold_reason(self, hold_id: str, buyer_id: str) -> RejectionReason | None:
        if not self.known(hold_id):
            return RejectionReason.UNKNOWN_HOLD
        if hold_id not in self.open:
            return RejectionReason.HOLD_ENDED
        if self.open[hold_id].buyer_id != buyer_id:
            return RejectionReason.NOT_HOLD_OWNER
        if self.open[hold_id].pending:
            return RejectionReason.PAYMENT_PENDING
        return None

    def expected(self, c: SectionCommand) -> list[type] | RejectionReason:
        """Event types the command must decide, or the reason it must be refused."""
        if isinstance(c, ReleaseHold | Checkout):
            reason = self.buyer_hold_reason(c.hold_id, c.buyer_id)
            if reason is not None:
                return reason
            return [HoldReleased if isinstance(c, ReleaseHold) else CheckoutStarted]
        if isinstance(c, RecordPaymentResult):
            return self._expected_payment(c)
        if isinstance(c, AddInventory):
            return self._expected_add(c)
        if isinstance(c, WithdrawInventory):
            return self._expected_withdraw(c)
        if isinstance(c, ChangeHoldTtl):
            return [HoldTtlChanged] if c.hold_ttl_seconds > 0 else REASON_INVALID
        return [SaleOpened] if isinstance(c, OpenSale) else [SaleClosed]

    def _expected_payment(self, c: RecordPaymentResult) -> list[type] | RejectionReason:
        if not self.known(c.hold_id):
            return RejectionReason.UNKNOWN_HOLD
        if c.hold_id in self.sold:
            return []
        if c.hold_id in self.ended:
            refund = c.succeeded and c.hold_id not in self.refunded
            return [RefundRequired] if refund else []
        if c.succeeded:
            return [TicketsSold]
        return [HoldReleased] if self.open[c.hold_id].pending else []

    def _expected_add(self, c: AddInventory) -> list[type] | RejectionReason:
        seats = [f"{r.label}-{n}" for r in c.rows for n in r.seat_numbers]
        if not self.reserved:
            return REASON_INVALID if c.rows or c.quantity <= 0 else [InventoryAdded]
        if (
            not seats
            or c.quantity not in (0, len(seats))
            or len(set(seats)) < len(seats)
        ):
            return REASON_INVALID
        if any(s in self.all_seats for s in seats):
            return RejectionReason.SEAT_EXISTS
        return [InventoryAdded]

    def _expected_withdraw(self, c: WithdrawInventory) -> list[type] | RejectionReason:
        if not self.reserved:
            if c.seat_ids or c.quantity <= 0:
                return REASON_INVALID
            if c.quantity > self.free_count:
                return RejectionReason.INSUFFICIENT_FREE
            return [InventoryWithdrawn]
        seats = c.seat_ids
        if (
            not seats
            or c.quantity not in (0, len(seats))
            or len(set(seats)) < len(seats)
        ):
            return REASON_INVALID
        if any(s not in self.all_seats for s in seats):
            return RejectionReason.UNKNOWN_SEAT
        if not set(seats) <= self.free_seats():
            return RejectionReason.SEAT_IN_USE
        return [InventoryWithdrawn]


REASON_INVALID = RejectionReason.INVALID_REQUEST


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
        self.plan_seats: list[str] = []

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

    def _hold_id(self, section_id: str, pick: int | None) -> str:
        placed = self.ledger[section_key(SHOW, section_id)].placed_order
        if pick is None or not placed:
            return "no-such-hold"
        return placed[pick % len(placed)]

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

    def _time(self, step: int, to_deadline: bool, section_id: str) -> int:
        return self._issue_time(step, to_deadline, [section_key(SHOW, section_id)])

    def _run(self, command: Command) -> list[Event]:
        events = self.inventory.decide(command)
        if self.restored is not None:
            assert self.restored.decide(command) == events, "restored copy differs"
        self.commands.append(command)
        self.events.extend(events)
        return events

    def _section_command(self, command: SectionCommand) -> None:
        key = section_key(command.show_id, command.section_id)
        ledger = self.ledger.get(key)
        sections_before = {k: s.held_count for k, s in self.inventory.sections.items()}

        events = self._run(command)

        if ledger is None:
            assert len(events) == 1
            rejected = events[0]
            assert isinstance(rejected, HoldRejected | CommandRejected)
            assert rejected.reason is RejectionReason.UNKNOWN_SECTION
            assert rejected.occurred_at_ms == command.issued_at_ms
            assert {
                k: s.held_count for k, s in self.inventory.sections.items()
            } == sections_before
            event(f"rejected {rejected.reason}")
            return
        now_ms = max(ledger.clock_ms, command.issued_at_ms)
        decision = self._fold_expiries(ledger, command.command_id, now_ms, events)
        ledger.clock_ms = now_ms
        if isinstance(command, PlaceHold):
            self._check_hold(ledger, command, now_ms, decision)
        else:
            self._check_decision(ledger, command, now_ms, decision)

    def _fold_expiries(
        self, ledger: LedgerSection, command_id: str, now_ms: int, events: list[Event]
    ) -> list[Event]:
        """Check and fold the expiries a command caused; the rest of its events."""
        due = {h.hold_id for h in ledger.open.values() if h.expires_at_ms <= now_ms}
        expired = [e for e in events if isinstance(e, HoldExpired)]
        if any(e.command_id != command_id for e in events):
            raise AssertionError("an event names another command")
        deadlines = [(ledger.open[e.hold_id].expires_at_ms, e.hold_id) for e in expired]
        assert deadlines == sorted(deadlines), "expiries out of order"
        assert events[: len(expired)] == expired, "expiries must come first"
        assert {e.hold_id for e in expired} == due, "wrong holds expired"
        for expiry in expired:
            assert expiry.occurred_at_ms == now_ms
            ledger.fold(expiry)
        if expired:
            event("holds expired")
        return events[len(expired) :]

    def _check_hold(
        self, ledger: LedgerSection, c: PlaceHold, now_ms: int, decision: list[Event]
    ) -> None:
        if ledger.known(c.command_id) or c.command_id in ledger.decided_ids:
            event("redelivered hold")
            assert decision == [], "a redelivered hold decides nothing"
            return
        reasons = ledger.hold_reasons(c)
        if reasons:
            (decided,) = decision
            assert isinstance(decided, HoldRejected), f"expected one of {reasons}"
            assert decided.reason in reasons
            assert (decided.occurred_at_ms, decided.buyer_id) == (now_ms, c.buyer_id)
            # A refused hold's id is decided, like any command's: its redelivery
            # is not refused a second time.
            ledger.decided_ids.add(c.command_id)
            event(f"hold rejected {decided.reason}")
            return
        placed = decision[0]
        assert isinstance(placed, HoldPlaced), f"expected a hold, got {placed}"
        quantity = len(c.seat_ids) or c.quantity
        seats = c.seat_ids or (ledger.best_block(quantity) if ledger.reserved else ())
        assert placed == HoldPlaced(
            command_id=c.command_id,
            occurred_at_ms=now_ms,
            hold_id=c.command_id,
            show_id=ledger.show_id,
            section_id=ledger.section_id,
            buyer_id=c.buyer_id,
            seat_ids=seats or (),
            quantity=quantity,
            expires_at_ms=now_ms + ledger.ttl_ms,
        )
        immediate = ledger.mode is InventoryMode.IMMEDIATE
        assert [type(e) for e in decision] == (
            [HoldPlaced, CheckoutStarted] if immediate else [HoldPlaced]
        )
        for decided in decision:
            ledger.fold(decided)
        best = ledger.reserved and not c.seat_ids
        event(f"placed in {ledger.kind}{' best available' if best else ''}")

    def _check_decision(
        self,
        ledger: LedgerSection,
        c: SectionCommand,
        now_ms: int,
        decision: list[Event],
    ) -> None:
        name = type(c).__name__
        if c.command_id in ledger.decided_ids:
            event(f"redelivered {name}")
            assert decision == []
            return
        ledger.decided_ids.add(c.command_id)
        expected = ledger.expected(c)
        if isinstance(expected, RejectionReason):
            assert decision == [
                CommandRejected(
                    c.command_id,
                    now_ms,
                    ledger.show_id,
                    ledger.section_id,
                    name,
                    expected,
                    decision[0].detail if decision else "",  # type: ignore[union-attr]
                )
            ]
            event(f"{name} rejected {expected}")
            return
        assert [type(e) for e in decision] == expected, (decision, expected)
        for decided in decision:
            assert decided.occurred_at_ms == now_ms
            ledger.fold(decided)
        event(f"{name} -> {[t.__name__ for t in expected]}")

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
        window_seconds=st.integers(1, 12),
        mode=st.sampled_from(InventoryMode),
    )
    def create_show(
        self,
        rows: int,
        seats_per_row: int,
        capacity: int,
        max_per_buyer: int,
        ttl_seconds: int,
        window_seconds: int,
        mode: InventoryMode,
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
            inventory_mode=mode,
            payment_window_seconds=window_seconds,
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
                inventory_mode=mode,
            )
            for spec in specs
        ]
        event(f"mode {mode}")
        self.plan_seats = list(specs[0].seat_ids()) + [
            f"{r.label}-{n}" for r in EXTRA_ROWS for n in r.seat_numbers
        ]
        for spec in specs:
            self.ledger[section_key(SHOW, spec.section_id)] = LedgerSection(
                show_id=SHOW,
                section_id=spec.section_id,
                kind=spec.kind,
                rows=list(spec.rows),
                capacity=spec.place_count(),
                ttl_ms=ttl_seconds * 1000,
                window_ms=window_seconds * 1000,
                max_per_buyer=max_per_buyer,
                mode=mode,
                clock_ms=T0,
            )

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        buyer=buyers,
        seats=st.one_of(
            plausible_seat_picks, plausible_seat_picks, seat_picks, st.just([])
        ),
        quantity=st.one_of(st.just(0), st.just(0), st.integers(-2, 5)),
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
        self._section_command(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._time(step, to_deadline, RESERVED),
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
        quantity=st.integers(1, 4),
    )
    def hold_best_available(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        buyer: str,
        quantity: int,
    ) -> None:
        self._section_command(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._time(step, to_deadline, RESERVED),
                show_id=SHOW,
                section_id=RESERVED,
                buyer_id=buyer,
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
        self._section_command(
            PlaceHold(
                command_id=self._command_id(id_choice),
                issued_at_ms=self._time(step, to_deadline, GA),
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
        show_id=st.sampled_from([SHOW, OTHER_SHOW]),
        section_id=st.sampled_from([RESERVED, GA, UNKNOWN_SECTION]),
        buyer=buyers,
        seats=seat_picks,
        quantity=st.integers(-2, 7),
        release=st.booleans(),
    )
    def command_anywhere(
        self,
        id_choice: int | None,
        step: int,
        show_id: str,
        section_id: str,
        buyer: str,
        seats: list[int | str],
        quantity: int,
        release: bool,
    ) -> None:
        command_id = self._command_id(id_choice)
        at_ms = self._issue_time(step, False, [])
        command: SectionCommand = (
            ReleaseHold(command_id, at_ms, show_id, section_id, buyer, "h")
            if release
            else PlaceHold(
                command_id,
                at_ms,
                show_id,
                section_id,
                buyer,
                self._seats(seats),
                quantity,
            )
        )
        self._section_command(command)

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        section_id=sections,
        pick=hold_picks,
        owner=st.integers(0, 4),
        other=buyers,
        checkout=st.booleans(),
    )
    def release_or_checkout(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        section_id: str,
        pick: int | None,
        owner: int,
        other: str,
        checkout: bool,
    ) -> None:
        hold_id = self._hold_id(section_id, pick)
        ledger = self.ledger[section_key(SHOW, section_id)]
        known = ledger.open.get(hold_id) or ledger.sold.get(hold_id)
        buyer = known.buyer_id if known and owner else other
        kind = Checkout if checkout else ReleaseHold
        self._section_command(
            kind(
                self._command_id(id_choice),
                self._time(step, to_deadline, section_id),
                SHOW,
                section_id,
                buyer,
                hold_id,
            )
        )

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        to_deadline=at_deadline,
        section_id=sections,
        pick=hold_picks,
        provider_event=st.sampled_from(["e1", "e2"]),
        succeeded=st.booleans(),
    )
    def record_payment_result(
        self,
        id_choice: int | None,
        step: int,
        to_deadline: bool,
        section_id: str,
        pick: int | None,
        provider_event: str,
        succeeded: bool,
    ) -> None:
        self._section_command(
            RecordPaymentResult(
                self._command_id(id_choice),
                self._time(step, to_deadline, section_id),
                SHOW,
                section_id,
                self._hold_id(section_id, pick),
                provider_event,
                succeeded,
            )
        )

    @rule(step=time_steps, to_deadline=at_deadline)
    def tick(self, step: int, to_deadline: bool) -> None:
        command = Tick(self._command_id(None), self._issue_time(step, to_deadline, []))
        self._tick(command)

    def _tick(self, command: Tick) -> None:
        due = sorted(
            (hold.expires_at_ms, hold.hold_id, key)
            for key, ledger in self.ledger.items()
            for hold in ledger.open.values()
            if hold.expires_at_ms <= max(ledger.clock_ms, command.issued_at_ms)
        )

        decided = self._run(command)

        events = [e for e in decided if isinstance(e, HoldExpired)]
        assert events == decided, "a tick only expires holds"
        assert [(e.hold_id, section_key(e.show_id, e.section_id)) for e in events] == [
            (hold_id, key) for _, hold_id, key in due
        ]
        for expiry in events:
            ledger = self.ledger[section_key(expiry.show_id, expiry.section_id)]
            assert expiry.occurred_at_ms == max(ledger.clock_ms, command.issued_at_ms)
            ledger.fold(expiry)
        for ledger in self.ledger.values():
            ledger.clock_ms = max(ledger.clock_ms, command.issued_at_ms)
        if events:
            event("tick expired holds")

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        section_id=sections,
        action=st.sampled_from(["open", "close", "close", "ttl"]),
        ttl_seconds=st.integers(-1, 8),
    )
    def sale_admin(
        self,
        id_choice: int | None,
        step: int,
        section_id: str,
        action: str,
        ttl_seconds: int,
    ) -> None:
        command_id = self._command_id(id_choice)
        at_ms = self._issue_time(step, False, [])
        command: SectionCommand
        if action == "ttl":
            command = ChangeHoldTtl(command_id, at_ms, SHOW, section_id, ttl_seconds)
        elif action == "open":
            command = OpenSale(command_id, at_ms, SHOW, section_id)
        else:
            command = CloseSale(command_id, at_ms, SHOW, section_id)
        self._section_command(command)

    @rule(
        id_choice=command_id_choices,
        step=time_steps,
        section_id=sections,
        add=st.booleans(),
        rows=st.lists(st.sampled_from(EXTRA_ROWS), max_size=2),
        seats=seat_picks,
        quantity=st.integers(-1, 4),
    )
    def change_inventory(
        self,
        id_choice: int | None,
        step: int,
        section_id: str,
        add: bool,
        rows: list[Row],
        seats: list[int | str],
        quantity: int,
    ) -> None:
        command_id = self._command_id(id_choice)
        at_ms = self._issue_time(step, False, [])
        reserved = section_id == RESERVED
        command: SectionCommand
        if add:
            command = AddInventory(
                command_id,
                at_ms,
                SHOW,
                section_id,
                tuple(rows),
                0 if reserved and rows else quantity,
            )
        else:
            command = WithdrawInventory(
                command_id,
                at_ms,
                SHOW,
                section_id,
                self._seats(seats),
                0 if reserved and seats else quantity,
            )
        self._section_command(command)

    @rule(index=st.integers(0, 10_000), step=time_steps, same_time=st.booleans())
    def redeliver(self, index: int, step: int, same_time: bool) -> None:
        sent = [c for c in self.commands if not isinstance(c, CreateShow | Tick)]
        if not sent:
            return
        command = sent[index % len(sent)]
        assert not isinstance(command, CreateShow | Tick)
        if not same_time:
            command = dataclasses.replace(
                command, issued_at_ms=self._issue_time(step, False, [])
            )
        event("redelivered command")
        self._section_command(command)

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
            assert (
                copy.hold_ttl_seconds,
                copy.max_tickets_per_buyer,
                copy.inventory_mode,
                copy.payment_window_seconds,
                copy.sale_open,
            ) == (
                live.hold_ttl_seconds,
                live.max_tickets_per_buyer,
                live.inventory_mode,
                live.payment_window_seconds,
                live.sale_open,
            )
            assert copy.clock_ms == live.clock_ms
            assert copy.holds == live.holds
            assert copy.sold_holds == live.sold_holds
            assert copy.ended_holds == live.ended_holds
            assert (copy.free_count, copy.held_count, copy.sold_count) == (
                live.free_count,
                live.held_count,
                live.sold_count,
            )
            assert copy.free_seat_ids() == live.free_seat_ids()

    @invariant()
    def never_oversold(self) -> None:
        for section in self.inventory.sections.values():
            assert section.held_count + section.sold_count <= section.capacity
            assert section.free_count >= 0
            assert section.held_count >= 0
            total = section.free_count + section.held_count + section.sold_count
            assert total == section.capacity

    @invariant()
    def core_agrees_with_ledger(self) -> None:
        for key, ledger in self.ledger.items():
            live = self.inventory.sections[key]
            assert live.capacity == ledger.capacity
            assert live.held_count == ledger.held_count
            assert live.sold_count == ledger.sold_count
            assert live.free_count == ledger.free_count
            assert live.holds.keys() == ledger.open.keys()
            assert live.sold_holds.keys() == ledger.sold.keys()
            assert live.sale_open == ledger.sale_open
            assert live.clock_ms == ledger.clock_ms, "section clock lags log time"

    @invariant()
    def reserved_seats_are_partitioned(self) -> None:
        for key, ledger in self.ledger.items():
            if not ledger.reserved:
                continue
            taken = ledger.taken_seats()
            free = self.inventory.sections[key].free_seat_ids()
            assert len(taken) == len(set(taken)), "a seat is in two holds"
            assert free.isdisjoint(taken)
            assert free | set(taken) == ledger.all_seats
            assert free.isdisjoint(ledger.ever_sold_seats), "a sold seat is free"

    @invariant()
    def buyer_limit_holds(self) -> None:
        for ledger in self.ledger.values():
            for places in ledger.buyer_places().values():
                assert places <= ledger.max_per_buyer

    @invariant()
    def no_hold_outlives_its_deadline(self) -> None:
        for ledger in self.ledger.values():
            for hold in ledger.open.values():
                assert hold.expires_at_ms > ledger.clock_ms, "lapsed hold still open"

    @invariant()
    def restored_copy_tracks_live(self) -> None:
        if self.restored is not None:
            self._assert_restored_matches_live()

    def teardown(self) -> None:
        if not self.ledger:
            return
        self._tick(Tick("final-tick", FAR_FUTURE_MS))
        for ledger in self.ledger.values():
            assert ledger.open == {}, "a hold outlived a tick far in the future"
            ends = [*ledger.sold, *ledger.ended]
            assert sorted(ends) == sorted(ledger.placed_order), "a hold has no end"
            assert len(ends) == len(set(ends)), "a hold ended twice"

        replayed = PartitionInventory().decide_all(self.commands)
        assert replayed == self.events, "replay of the same commands differs"
        assert encode_events(replayed) == encode_events(self.events)


# Settings come from the profile loaded in conftest.py (HYPOTHESIS_PROFILE).
TestInventoryMachine = InventoryMachine.TestCase
