"""The buyers' ledger: per-show limits and idempotency keys across sections."""

from __future__ import annotations

from commands.buyers import BuyerLedgers, buyer_key
from commands.inventory import PartitionInventory, section_key
from commands.model import (
    BuyerPlacesReturned,
    HoldExpired,
    HoldRejected,
    HoldRequested,
    IdempotencyKeyReused,
    PlaceHold,
    RejectionReason,
    RequestHold,
    ReturnBuyerPlaces,
    SetBuyerLimit,
)
from commands.policy import follow_ups

T0 = 1_000_000
SHOW = "show-1"


def _ledger(limit: int = 4) -> BuyerLedgers:
    ledger = BuyerLedgers()
    ledger.decide(SetBuyerLimit("limit", T0, SHOW, limit))
    return ledger


def _request(
    command_id: str, section: str, quantity: int, digest: str = ""
) -> RequestHold:
    digest = digest or f"{section}:{quantity}"
    return RequestHold(command_id, T0, SHOW, section, "ann", (), quantity, digest)


def test_request_is_admitted_when_the_buyer_has_room_left() -> None:
    ledger = _ledger()

    events = ledger.decide(_request("k1", "ga-a", 3))

    assert events == [HoldRequested("k1", T0, SHOW, "ga-a", "ann", (), 3)]


def test_request_is_refused_when_it_would_pass_the_limit_in_another_section() -> None:
    ledger = _ledger(limit=4)
    ledger.decide(_request("k1", "ga-a", 3))

    events = ledger.decide(_request("k2", "ga-b", 2))

    assert [type(e) for e in events] == [HoldRejected]
    assert events[0].reason is RejectionReason.BUYER_LIMIT_REACHED


def test_reused_key_has_no_effect_when_it_names_another_section() -> None:
    ledger = _ledger()
    ledger.decide(_request("k1", "ga-a", 1))

    events = ledger.decide(_request("k1", "ga-b", 1))

    assert events == [IdempotencyKeyReused("k1", T0, SHOW, "ga-b", "ann")]
    assert ledger.accounts[buyer_key(SHOW, "ann")].places() == 1


def test_same_request_again_gives_no_second_effect_when_its_key_is_known() -> None:
    ledger = _ledger()
    ledger.decide(_request("k1", "ga-a", 2))

    events = ledger.decide(_request("k1", "ga-a", 2))

    assert events == []
    assert ledger.accounts[buyer_key(SHOW, "ann")].places() == 2


def test_places_come_back_once_when_the_hold_ends_unsold() -> None:
    ledger = _ledger(limit=2)
    ledger.decide(_request("k1", "ga-a", 2))
    give_back = ReturnBuyerPlaces("return:k1", T0 + 1, SHOW, "ann", "k1")

    first = ledger.decide(give_back)
    again = ledger.decide(give_back)

    assert first == [BuyerPlacesReturned("return:k1", T0 + 1, SHOW, "ann", "k1", 2)]
    assert again == []
    assert ledger.decide(_request("k2", "ga-a", 2))[0].quantity == 2


def test_request_is_refused_when_the_show_has_no_limit_here() -> None:
    ledger = BuyerLedgers()

    events = ledger.decide(_request("k1", "ga-a", 1))

    assert events[0].reason is RejectionReason.UNKNOWN_SHOW


def test_ledger_is_the_same_when_restored_from_its_entries() -> None:
    live = PartitionInventory()
    live.decide(SetBuyerLimit("limit", T0, SHOW, 3))
    live.decide(_request("k1", "ga-a", 2))
    restored = PartitionInventory.restore(live.drain_changes())

    events = restored.decide(_request("k2", "ga-b", 2))

    assert events[0].reason is RejectionReason.BUYER_LIMIT_REACHED
    assert restored.decide(_request("k1", "ga-b", 2)) == [
        IdempotencyKeyReused("k1", T0, SHOW, "ga-b", "ann")
    ]


def test_follow_ups_route_admitted_requests_and_give_back_ended_holds() -> None:
    requested = HoldRequested("k1", T0, SHOW, "ga-a", "ann", (), 2)
    expired = HoldExpired("tick", T0 + 9, "k1", SHOW, "ga-a", (), 2, "ann")

    routed = follow_ups([requested, expired])

    assert routed == [
        (
            section_key(SHOW, "ga-a"),
            PlaceHold("k1", T0, SHOW, "ga-a", "ann", (), 2),
        ),
        (
            buyer_key(SHOW, "ann"),
            ReturnBuyerPlaces("return:k1", T0 + 9, SHOW, "ann", "k1"),
        ),
    ]
