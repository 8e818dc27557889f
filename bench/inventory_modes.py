"""The two inventory modes side by side, on the pure core (no Kafka, no I/O).

A GA section of 10,000 places; 20,000 buyers arrive over ten minutes of log time
and ticks run every second, as the agent's do.
In hold mode a buyer holds, then a share of them checks out and pays; in
immediate mode the purchase takes the place and asks for payment in one step.
Abandoning buyers never pay: their places come back at the hold TTL (hold mode)
or the payment deadline (immediate mode). Reported: commands decided per second
(one core, this machine), commands per ticket sold, tickets sold, and how long
abandoned places stayed unsellable. Usage: ``python -m bench.inventory_modes``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from commands.inventory import PartitionInventory
from commands.model import (
    Checkout,
    Command,
    CreateShow,
    HoldExpired,
    HoldPlaced,
    InventoryMode,
    PlaceHold,
    RecordPaymentResult,
    SectionKind,
    SectionSpec,
    Tick,
    TicketsSold,
)

PLACES = 10_000
BUYERS = 20_000
ARRIVAL_GAP_MS = 30
HOLD_TTL_SECONDS = 120
TICK_MS = 1000
PAYMENT_WINDOW_SECONDS = 300
PAY_DELAY_MS = 30_000
ABANDON_SHARE = 0.3


@dataclass
class ModeResult:
    """What one mode did with the same buyers."""

    mode: str
    commands: int
    seconds: float
    sold: int
    abandoned_place_seconds: float


def _commands(mode: InventoryMode, seed: int = 1) -> list[Command]:
    rng = random.Random(seed)
    spec = SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=PLACES)
    create = CreateShow(
        "create", 0, "bench", HOLD_TTL_SECONDS, 4, (spec,), mode, PAYMENT_WINDOW_SECONDS
    )
    timeline: list[tuple[int, int, Command]] = []
    for n in range(BUYERS):
        arrive = n * ARRIVAL_GAP_MS
        hold = f"h{n}"
        timeline.append(
            (arrive, 0, PlaceHold(hold, arrive, "bench", "ga", f"b{n}", (), 1))
        )
        if rng.random() < ABANDON_SHARE:
            continue
        paid_at = arrive + PAY_DELAY_MS
        if mode is InventoryMode.HOLDS:
            timeline.append(
                (
                    paid_at - 1,
                    1,
                    Checkout(f"c{n}", paid_at - 1, "bench", "ga", f"b{n}", hold),
                )
            )
        timeline.append(
            (
                paid_at,
                2,
                RecordPaymentResult(
                    f"p{n}", paid_at, "bench", "ga", hold, f"e{n}", True
                ),
            )
        )
    last = timeline[-1][0] + PAY_DELAY_MS
    timeline += [(t, 3, Tick(f"t{t}", t)) for t in range(0, last, TICK_MS)]
    timeline.sort(key=lambda item: (item[0], item[1]))
    end = timeline[-1][0] + max(HOLD_TTL_SECONDS, PAYMENT_WINDOW_SECONDS) * 1000 + 1
    return [create, *(command for _, _, command in timeline), Tick("end", end)]


def run_mode(mode: InventoryMode) -> ModeResult:
    """Decide the whole sale in one mode and measure it."""
    commands = _commands(mode)
    inventory = PartitionInventory()
    started = time.perf_counter()
    events = inventory.decide_all(commands)
    seconds = time.perf_counter() - started

    placed_at = {
        e.hold_id: e.occurred_at_ms for e in events if isinstance(e, HoldPlaced)
    }
    sold = {e.hold_id for e in events if isinstance(e, TicketsSold)}
    freed = [
        (e.occurred_at_ms - placed_at[e.hold_id]) / 1000
        for e in events
        if isinstance(e, HoldExpired) and e.hold_id in placed_at
    ]
    return ModeResult(
        mode.value, len(commands), seconds, len(sold), sum(freed) / max(len(freed), 1)
    )


def main() -> None:
    """Print both modes' figures."""
    for mode in (InventoryMode.HOLDS, InventoryMode.IMMEDIATE):
        result = run_mode(mode)
        print(
            f"{result.mode:<10} {result.commands / result.seconds:9.0f} commands/s  "
            f"{result.commands / max(result.sold, 1):.2f} commands per ticket  "
            f"{result.sold} sold of {PLACES}  "
            f"abandoned places unsellable {result.abandoned_place_seconds:.0f} s"
        )


if __name__ == "__main__":
    main()
