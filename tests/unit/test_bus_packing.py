"""Packing of the command bus: every send once, in order, whole, within the bound."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from commands.model import Tick
from gateway.bus import PACKED_KEY_PREFIX, PendingSend, pack


def _sends(shape: list[tuple[int, int]]) -> list[PendingSend]:
    """Sends with keys ``k<key>`` and ``size`` ticks each, ids naming their order."""
    loop = asyncio.new_event_loop()
    try:
        return [
            PendingSend(
                f"k{key}",
                tuple(Tick(f"s{n}-c{i}", 0) for i in range(size)),
                loop.create_future(),
            )
            for n, (key, size) in enumerate(shape)
        ]
    finally:
        loop.close()


@given(
    shape=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 12)), min_size=1, max_size=60
    ),
    bound=st.integers(1, 40),
)
def test_packing_keeps_every_send_whole_once_and_in_order(
    shape: list[tuple[int, int]], bound: int
) -> None:
    sends = _sends(shape)

    records = pack(5, sends, bound)

    assert [s for r in records for s in r.sends] == sends
    assert [c for r in records for c in r.commands()] == [
        c for s in sends for c in s.commands
    ]
    for record in records:
        size = sum(len(s.commands) for s in record.sends)
        assert size <= bound or len(record.sends) == 1
        keys = {s.key for s in record.sends}
        expected = next(iter(keys)) if len(keys) == 1 else f"{PACKED_KEY_PREFIX}5"
        assert record.key == expected


def test_sends_under_the_bound_share_one_record() -> None:
    sends = _sends([(0, 1)] * 10 + [(1, 1)] * 5)

    records = pack(2, sends, 256)

    assert len(records) == 1
    assert records[0].key == f"{PACKED_KEY_PREFIX}2"
    assert len(records[0].commands()) == 15
