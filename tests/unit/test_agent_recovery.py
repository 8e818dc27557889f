"""The late record watch reports changelog records a restore ended without."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

from streams import metrics
from streams.recovery import IncompleteRestore, LateRecordWatch

CHANGELOG = "agent-section_entry_to_value-changelog"


class TP(NamedTuple):
    topic: str
    partition: int


def _late_records() -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ticketing_agent_late_changelog_records_total"
    )
    return value or 0.0


def _app(tp: TP) -> Any:
    recovery = SimpleNamespace(active_tps={tp}, active_offsets={tp: None})
    return SimpleNamespace(
        tables=SimpleNamespace(actives_ready=False, recovery=recovery)
    )


def test_a_record_received_after_the_restore_ended_below_its_end_is_reported() -> None:
    tp = TP(CHANGELOG, 3)
    app = _app(tp)
    watch = LateRecordWatch(app)
    before = _late_records()
    for offset in (10, 11):
        watch.on_record(tp, offset)
    # faust found the position past the end (14) and counted the partition as read
    app.tables.recovery.active_offsets[tp] = 14
    app.tables.actives_ready = True

    watch.on_record(tp, 12)

    assert _late_records() == before + 1


def test_a_record_received_again_or_during_the_restore_is_not_reported() -> None:
    tp = TP(CHANGELOG, 4)
    app = _app(tp)
    watch = LateRecordWatch(app)
    before = _late_records()
    app.tables.recovery.active_offsets[tp] = 20
    for offset in (18, 19):
        watch.on_record(tp, offset)
    app.tables.actives_ready = True

    watch.on_record(tp, 19)
    watch.on_record(TP(CHANGELOG, 5), 7)

    assert _late_records() == before


def test_a_late_record_stops_the_worker_once() -> None:
    tp = TP(CHANGELOG, 6)
    app = _app(tp)
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    app.crash = crash
    watch = LateRecordWatch(app)
    watch.on_record(tp, 1)
    app.tables.recovery.active_offsets[tp] = 9
    app.tables.actives_ready = True

    async def late_records() -> None:
        watch.on_record(tp, 5)
        watch.on_record(tp, 6)
        await asyncio.sleep(0)

    asyncio.run(late_records())

    assert [type(c) for c in crashes] == [IncompleteRestore]
