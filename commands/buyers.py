"""The buyers' ledger of a show: per-buyer limits and idempotency key records.

Every hold request of one buyer for one show, whatever section it names, is
routed to the same single writer (the partition of ``buyer_key``). There the
ledger counts the buyer's places (requested, held or sold) against the show's
limit, and remembers which request each command id (buyer + idempotency key)
was first used for, so a key reused for another request is refused with no
effect, across sections, gateway instances and restarts. Places come back when
the section refuses the hold or the hold ends unsold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from commands.model import (
    BuyerLimitSet,
    BuyerPlacesReturned,
    Event,
    HoldRejected,
    HoldRequested,
    IdempotencyKeyReused,
    RejectionReason,
    RequestHold,
    ReturnBuyerPlaces,
    SetBuyerLimit,
)
from commands.state import EntryValue

BUYER_KEY_MARK = "/~buyer/"
LIMIT_KEY_MARK = "/~limit"
LIMIT_ENTRY = "max"
HOLD_ENTRY_PREFIX = "hold:"
REQUEST_ENTRY_PREFIX = "req:"
RETURNED = 0
"""Entry value of a hold whose places came back to the buyer."""


def buyer_key(show_id: str, buyer_id: str) -> str:
    """The key a buyer's requests for a show are routed and stored by."""
    return f"{show_id}{BUYER_KEY_MARK}{buyer_id}"


def limit_key(show_id: str) -> str:
    """The key a show's per-buyer limit is stored by, in every partition."""
    return f"{show_id}{LIMIT_KEY_MARK}"


def is_ledger_key(key: str) -> bool:
    """Whether a stored key belongs to the buyers' ledger (not to a section)."""
    return BUYER_KEY_MARK in key or key.endswith(LIMIT_KEY_MARK)


@dataclass(slots=True)
class BuyerAccount:
    """One buyer's places in one show, and the requests their keys named."""

    places_by_hold: dict[str, int] = field(default_factory=dict)
    digest_by_command: dict[str, str] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)

    def places(self) -> int:
        """Places requested, held or sold and not given back."""
        return sum(self.places_by_hold.values())


@dataclass(slots=True)
class BuyerLedgers:
    """The ledgers one writer owns: limits by show, accounts by show and buyer."""

    limits: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, BuyerAccount] = field(default_factory=dict)
    _dirty_limits: set[str] = field(default_factory=set)

    def decide(
        self, command: RequestHold | SetBuyerLimit | ReturnBuyerPlaces
    ) -> list[Event]:
        """Decide one ledger command and fold its events into the state."""
        if isinstance(command, SetBuyerLimit):
            return [self._set_limit(command)]
        if isinstance(command, ReturnBuyerPlaces):
            return self._return(command)
        return self._request(command)

    def _set_limit(self, command: SetBuyerLimit) -> BuyerLimitSet:
        self.limits[command.show_id] = command.max_tickets_per_buyer
        self._dirty_limits.add(command.show_id)
        return BuyerLimitSet(
            command.command_id,
            command.issued_at_ms,
            command.show_id,
            command.max_tickets_per_buyer,
        )

    def _request(self, command: RequestHold) -> list[Event]:
        account = self.accounts.setdefault(
            buyer_key(command.show_id, command.buyer_id), BuyerAccount()
        )
        known = account.digest_by_command.get(command.command_id)
        if known is not None and known != command.request_digest:
            return [
                IdempotencyKeyReused(
                    command.command_id,
                    command.issued_at_ms,
                    command.show_id,
                    command.section_id,
                    command.buyer_id,
                )
            ]
        if known is not None:
            # TODO(limit): a redelivered request gives no event; the gateway answers
            # it from the holds read model, which may lag by a projection batch.
            return []
        account.digest_by_command[command.command_id] = command.request_digest
        account.dirty.add(REQUEST_ENTRY_PREFIX + command.command_id)
        return [self._admit(account, command)]

    def _admit(self, account: BuyerAccount, command: RequestHold) -> Event:
        limit = self.limits.get(command.show_id)
        if limit is None:
            return _rejected(command, RejectionReason.UNKNOWN_SHOW, "no such show")
        wanted = len(command.seat_ids) or command.quantity
        if wanted <= 0:
            return _rejected(
                command, RejectionReason.INVALID_REQUEST, "ask for one place or more"
            )
        if account.places() + wanted > limit:
            return _rejected(
                command,
                RejectionReason.BUYER_LIMIT_REACHED,
                f"at most {limit} places per buyer in this show",
            )
        account.places_by_hold[command.command_id] = wanted
        account.dirty.add(HOLD_ENTRY_PREFIX + command.command_id)
        return HoldRequested(
            command.command_id,
            command.issued_at_ms,
            command.show_id,
            command.section_id,
            command.buyer_id,
            command.seat_ids,
            command.quantity,
        )

    def _return(self, command: ReturnBuyerPlaces) -> list[Event]:
        account = self.accounts.get(buyer_key(command.show_id, command.buyer_id))
        if account is None or not account.places_by_hold.get(command.hold_id):
            return []
        quantity = account.places_by_hold[command.hold_id]
        account.places_by_hold[command.hold_id] = RETURNED
        account.dirty.add(HOLD_ENTRY_PREFIX + command.hold_id)
        return [
            BuyerPlacesReturned(
                command.command_id,
                command.issued_at_ms,
                command.show_id,
                command.buyer_id,
                command.hold_id,
                quantity,
            )
        ]

    def drain_changes(self) -> dict[str, dict[str, EntryValue]]:
        """Changed entries by stored key, as the stream adapter persists them."""
        changes: dict[str, dict[str, EntryValue]] = {
            limit_key(show): {LIMIT_ENTRY: self.limits[show]}
            for show in self._dirty_limits
        }
        self._dirty_limits.clear()
        for key, account in self.accounts.items():
            if account.dirty:
                changes[key] = {name: _entry(account, name) for name in account.dirty}
                account.dirty.clear()
        return changes

    def restore(self, key: str, entries: Mapping[str, EntryValue]) -> None:
        """Load one stored key's entries (a limit or a buyer's account)."""
        if key.endswith(LIMIT_KEY_MARK):
            self.limits[key.removesuffix(LIMIT_KEY_MARK)] = entries[LIMIT_ENTRY]
            return
        account = self.accounts.setdefault(key, BuyerAccount())
        for name, value in entries.items():
            if name.startswith(HOLD_ENTRY_PREFIX):
                account.places_by_hold[name.removeprefix(HOLD_ENTRY_PREFIX)] = value
            elif name.startswith(REQUEST_ENTRY_PREFIX):
                command_id = name.removeprefix(REQUEST_ENTRY_PREFIX)
                account.digest_by_command[command_id] = value


def _entry(account: BuyerAccount, name: str) -> EntryValue:
    if name.startswith(HOLD_ENTRY_PREFIX):
        return account.places_by_hold[name.removeprefix(HOLD_ENTRY_PREFIX)]
    return account.digest_by_command[name.removeprefix(REQUEST_ENTRY_PREFIX)]


def _rejected(command: RequestHold, reason: RejectionReason, detail: str) -> Event:
    return HoldRejected(
        command.command_id,
        command.issued_at_ms,
        command.show_id,
        command.section_id,
        command.buyer_id,
        reason,
        detail,
    )
