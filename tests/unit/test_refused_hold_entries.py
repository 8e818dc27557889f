"""Refused hold ids are kept in blocks of entries, not one entry each."""

from __future__ import annotations

from typing import Any

from commands.inventory import PartitionInventory, section_key
from commands.model import CreateShow, PlaceHold, SectionKind, SectionSpec
from commands.state import DECIDED_BLOCK_PREFIX, DECIDED_BLOCK_SIZE

SHOW = "s1"
KEY = section_key(SHOW, "ga")


def _sold_out_section(stored: dict[str, Any]) -> PartitionInventory:
    inventory = PartitionInventory()
    spec = SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=1)
    inventory.decide(CreateShow("c", 0, SHOW, 60, 4, (spec,)))
    inventory.decide(PlaceHold("first", 1, SHOW, "ga", "b-first", quantity=1))
    _persist(stored, inventory)
    return inventory


def _persist(stored: dict[str, Any], inventory: PartitionInventory) -> None:
    for name, value in inventory.drain_changes().get(KEY, {}).items():
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = value


def _refuse(inventory: PartitionInventory, holds: int) -> None:
    for n in range(holds):
        inventory.decide(PlaceHold(f"h{n}", 2, SHOW, "ga", f"b{n}", quantity=1))


def test_a_batch_of_refusals_writes_a_block_per_256_holds_when_persisted() -> None:
    stored: dict[str, Any] = {}
    inventory = _sold_out_section(stored)

    _refuse(inventory, 2 * DECIDED_BLOCK_SIZE + 3)
    changes = inventory.drain_changes()[KEY]

    blocks = sorted(name for name in changes if name.startswith(DECIDED_BLOCK_PREFIX))
    assert blocks == [f"{DECIDED_BLOCK_PREFIX}{n}" for n in range(3)]
    assert [len(changes[name]) for name in blocks] == [256, 256, 3]
    assert not [name for name in changes if name.startswith("cmd:h")]


def test_only_the_last_block_is_written_again_when_more_holds_are_refused() -> None:
    stored: dict[str, Any] = {}
    inventory = _sold_out_section(stored)
    _refuse(inventory, DECIDED_BLOCK_SIZE + 1)
    _persist(stored, inventory)

    inventory.decide(PlaceHold("late", 3, SHOW, "ga", "b-late", quantity=1))
    changes = inventory.drain_changes()[KEY]

    assert [name for name in changes if name.startswith(DECIDED_BLOCK_PREFIX)] == [
        f"{DECIDED_BLOCK_PREFIX}1"
    ]
    assert changes[f"{DECIDED_BLOCK_PREFIX}1"] == [f"h{DECIDED_BLOCK_SIZE}", "late"]


def test_a_refused_hold_delivered_again_decides_nothing_when_restored() -> None:
    stored: dict[str, Any] = {}
    inventory = _sold_out_section(stored)
    _refuse(inventory, DECIDED_BLOCK_SIZE + 1)
    _persist(stored, inventory)

    restored = PartitionInventory.restore({KEY: stored})
    again = [
        restored.decide(PlaceHold(f"h{n}", 4, SHOW, "ga", f"b{n}", quantity=1))
        for n in (0, DECIDED_BLOCK_SIZE)
    ]
    restored.decide(PlaceHold("next", 5, SHOW, "ga", "b-next", quantity=1))

    assert again == [[], []]
    assert restored.sections[KEY].entries() == {
        **inventory.sections[KEY].entries(),
        f"{DECIDED_BLOCK_PREFIX}1": [f"h{DECIDED_BLOCK_SIZE}", "next"],
        "clock": 5,
    }


def test_holds_refused_by_an_older_version_stay_refused_when_restored() -> None:
    stored: dict[str, Any] = {}
    _sold_out_section(stored)
    stored["cmd:old"] = 1

    restored = PartitionInventory.restore({KEY: stored})
    again = restored.decide(PlaceHold("old", 2, SHOW, "ga", "b-old", quantity=1))

    assert again == []
    assert "cmd:old" in restored.sections[KEY].entries()
