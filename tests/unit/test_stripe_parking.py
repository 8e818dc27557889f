"""How a stripe keeps its parked holds: entries in blocks, restored in order."""

from __future__ import annotations

from commands.inventory import PartitionInventory, section_key
from commands.model import (
    CreateShow,
    HandOffSection,
    HoldRejected,
    PlaceHold,
    ReceiveCapacity,
    SectionKind,
    SectionSpec,
)
from commands.state import DECIDED_BLOCK_SIZE, PARK_BLOCK_PREFIX, PARK_BLOCK_SIZE
from commands.stripes import stripe_id

SHOW = "s1"
STRIPE = stripe_id("floor", 0)
KEY = section_key(SHOW, STRIPE)


def _dry_stripe() -> PartitionInventory:
    """Stripe 0 of two, with no places of its own."""
    inventory = PartitionInventory()
    spec = SectionSpec(STRIPE, SectionKind.GENERAL_ADMISSION, capacity=0, stripes=2)
    inventory.decide(CreateShow("c", 0, SHOW, 60, 4, (spec,)))
    return inventory


def _park(inventory: PartitionInventory, holds: int) -> None:
    for n in range(holds):
        inventory.decide(PlaceHold(f"h{n}", 1, SHOW, STRIPE, f"b{n}", quantity=1))


def _persist(stored: dict[str, object], inventory: PartitionInventory) -> None:
    for name, value in inventory.drain_changes().get(KEY, {}).items():
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = value


def test_parked_holds_take_one_entry_per_block_when_many_park() -> None:
    inventory = _dry_stripe()
    inventory.drain_changes()
    holds = 2 * PARK_BLOCK_SIZE + 1

    _park(inventory, holds)
    changes = inventory.drain_changes()[KEY]

    blocks = [name for name in changes if name.startswith(PARK_BLOCK_PREFIX)]
    assert len(blocks) == 3
    assert sum(len(changes[name]) for name in blocks) == holds
    assert not [name for name in changes if name.startswith("park:")]
    assert not [name for name in changes if name.startswith("cmd:")]


def test_a_parked_hold_delivered_again_decides_nothing_when_restored() -> None:
    inventory = _dry_stripe()
    stored: dict[str, object] = {}
    _persist(stored, inventory)
    _park(inventory, 2)
    _persist(stored, inventory)

    restored = PartitionInventory.restore({KEY: stored})
    again = restored.decide(PlaceHold("h1", 2, SHOW, STRIPE, "b1", quantity=1))

    assert again == []
    assert list(restored.sections[KEY].parked) == ["h0", "h1"]


def test_refusing_parked_holds_deletes_their_blocks_and_keeps_their_ids() -> None:
    inventory = _dry_stripe()
    stored: dict[str, object] = {}
    _persist(stored, inventory)
    _park(inventory, PARK_BLOCK_SIZE + 1)
    _persist(stored, inventory)

    answer = ReceiveCapacity(
        "in:r", 2, SHOW, STRIPE, stripe_id("floor", 1), 0, "r", f"{SHOW}/{STRIPE}#0"
    )
    events = inventory.decide(answer)
    _persist(stored, inventory)
    restored = PartitionInventory.restore({KEY: stored})
    again = restored.decide(PlaceHold("h0", 3, SHOW, STRIPE, "b0", quantity=1))

    refused = [e for e in events if isinstance(e, HoldRejected)]
    assert len(refused) == PARK_BLOCK_SIZE + 1
    assert not [name for name in stored if name.startswith(PARK_BLOCK_PREFIX)]
    assert sorted(name for name in stored if name.startswith("cmd:")) == [
        "cmd:c",
        "cmd:in:r",
    ]
    assert stored["decided:0"] == [f"h{n}" for n in range(DECIDED_BLOCK_SIZE)]
    assert stored["decided:1"] == [f"h{DECIDED_BLOCK_SIZE}"]
    assert again == []


def test_parked_holds_come_back_in_their_order_when_restored() -> None:
    inventory = _dry_stripe()
    stored: dict[str, object] = {}
    _persist(stored, inventory)
    _park(inventory, PARK_BLOCK_SIZE + 5)
    _persist(stored, inventory)

    restored = PartitionInventory.restore({KEY: stored})

    section = restored.sections[KEY]
    assert list(section.parked) == [f"h{n}" for n in range(PARK_BLOCK_SIZE + 5)]
    assert section.entries() == inventory.sections[KEY].entries()
    assert restored.drain_changes() == {}


def test_holds_parked_in_the_older_form_are_rewritten_in_blocks_when_restored() -> None:
    inventory = _dry_stripe()
    stored: dict[str, object] = {}
    _persist(stored, inventory)
    _park(inventory, 3)
    _persist(stored, inventory)
    blocks = [n for n in stored if n.startswith(PARK_BLOCK_PREFIX)]
    for name in blocks:
        members = stored.pop(name)
        assert isinstance(members, list)
        for order, hold_id, buyer_id, quantity in members:
            stored[f"park:{hold_id}"] = [order, buyer_id, quantity]

    restored = PartitionInventory.restore({KEY: stored})
    _persist(stored, restored)

    assert list(restored.sections[KEY].parked) == ["h0", "h1", "h2"]
    assert not [name for name in stored if name.startswith("park:")]
    assert stored[f"{PARK_BLOCK_PREFIX}0"] == [
        [0, "h0", "b0", 1],
        [1, "h1", "b1", 1],
        [2, "h2", "b2", 1],
    ]


def test_older_park_entries_are_deleted_when_handed_off_before_rewritten() -> None:
    inventory = _dry_stripe()
    stored: dict[str, object] = {}
    _persist(stored, inventory)
    _park(inventory, 1)
    _persist(stored, inventory)
    stored.pop(f"{PARK_BLOCK_PREFIX}0")
    stored["park:h0"] = [0, "b0", 1]
    restored = PartitionInventory.restore({KEY: stored}, partition=0)

    restored.decide(HandOffSection("mv", 2, SHOW, STRIPE, 1))
    changes = restored.drain_changes()[KEY]

    assert changes["park:h0"] is None
    assert changes[f"{PARK_BLOCK_PREFIX}0"] is None


def test_parking_is_stored_but_only_the_outcome_reaches_the_event_log() -> None:
    inventory = _dry_stripe()

    first = inventory.decide(PlaceHold("h0", 1, SHOW, STRIPE, "b0", quantity=1))
    second = inventory.decide(PlaceHold("h1", 1, SHOW, STRIPE, "b1", quantity=1))

    assert [type(e).__name__ for e in first] == ["CapacityRequested"]
    assert second == [], "parked while the round is open: nothing to log yet"
    assert set(inventory.sections[KEY].parked) == {"h0", "h1"}
    answer = ReceiveCapacity(
        "in:r", 2, SHOW, STRIPE, stripe_id("floor", 1), 0, "r", f"{SHOW}/{STRIPE}#0"
    )
    outcome = inventory.decide(answer)
    refused = [e.command_id for e in outcome if isinstance(e, HoldRejected)]
    assert refused == ["h0", "h1"]
