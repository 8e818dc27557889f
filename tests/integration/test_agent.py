"""The inventory agent against the real Kafka, with faust exactly-once on."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from commands.model import (
    CreateShow,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    IdempotencyKeyReused,
    PlaceHold,
    RejectionReason,
    RequestHold,
    Row,
    SectionCreated,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
)
from infra.settings import Settings
from tests.integration.support import (
    read_events,
    send_commands,
    send_to_partitions,
    start_agent,
)

NOW_MS = 1_800_000_000_000


def _show() -> CreateShow:
    return CreateShow(
        command_id="create-1",
        issued_at_ms=NOW_MS,
        show_id="show-1",
        hold_ttl_seconds=600,
        max_tickets_per_buyer=4,
        sections=(SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=5),),
    )


def _reserved_show() -> CreateShow:
    return CreateShow(
        command_id="create-2",
        issued_at_ms=NOW_MS,
        show_id="show-1",
        hold_ttl_seconds=600,
        max_tickets_per_buyer=4,
        sections=(
            SectionSpec(
                "stalls", SectionKind.RESERVED, rows=(Row("A", ("1", "2", "3")),)
            ),
        ),
    )


def _ga_hold(index: int) -> PlaceHold:
    return PlaceHold(
        command_id=f"ga-{index}",
        issued_at_ms=NOW_MS + index,
        show_id="show-1",
        section_id="ga",
        buyer_id=f"buyer-{index}",
        quantity=1,
    )


def _outcomes(events: list) -> dict[str, str]:
    return {
        e.command_id: "placed" if isinstance(e, HoldPlaced) else e.reason.value
        for e in events
        if isinstance(e, HoldPlaced | HoldRejected)
    }


def test_agent_decides_holds_in_log_order_when_exactly_once_is_on(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    agent = start_agent(isolated_settings, tmp_path / "agent.log")
    contested = [
        PlaceHold(f"seat-{i}", NOW_MS + 10 + i, "show-1", "stalls", f"b{i}", ("A-2",))
        for i in range(3)
    ]

    try:
        send_commands(
            isolated_settings,
            [_show(), _reserved_show(), *(_ga_hold(i) for i in range(7)), *contested],
        )
        events = read_events(isolated_settings, expected=12)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    assert sum(isinstance(e, SectionCreated) for e in events) == 2
    outcomes = _outcomes(events)
    assert len(events) == 12, "no duplicates on the log"
    assert [outcomes[f"ga-{i}"] for i in range(7)] == ["placed"] * 5 + [
        RejectionReason.SOLD_OUT.value
    ] * 2
    assert [outcomes[f"seat-{i}"] for i in range(3)] == ["placed"] + [
        RejectionReason.SEAT_UNAVAILABLE.value
    ] * 2


def test_agent_keeps_its_inventory_when_killed_and_restarted(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    agent = start_agent(isolated_settings, log)
    send_commands(isolated_settings, [_show(), *(_ga_hold(i) for i in range(4))])
    assert len(read_events(isolated_settings, expected=5)) == 5
    time.sleep(1.0)  # let a commit pass; the restart must not depend on luck
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait(10)

    agent = start_agent(isolated_settings, log)
    try:
        send_commands(isolated_settings, [_ga_hold(i) for i in range(4, 7)])
        events = read_events(isolated_settings, expected=8, timeout_seconds=90)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    outcomes = _outcomes(events)
    assert len(events) == 8, (
        "no duplicates and no gaps across the restart: "
        f"{[(type(e).__name__, e.command_id) for e in events]}"
    )
    assert outcomes["ga-4"] == "placed"
    assert outcomes["ga-5"] == outcomes["ga-6"] == RejectionReason.SOLD_OUT.value


def test_lapsed_hold_expires_without_other_commands_when_ticks_run(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    now_ms = int(time.time() * 1000)
    show = CreateShow(
        command_id="create-ttl",
        issued_at_ms=now_ms,
        show_id="show-1",
        hold_ttl_seconds=1,
        max_tickets_per_buyer=4,
        sections=(SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=5),),
    )
    hold = PlaceHold("ttl-1", now_ms, "show-1", "ga", "buyer-1", quantity=2)
    agent = start_agent(isolated_settings, tmp_path / "agent.log")

    try:
        send_commands(isolated_settings, [show, hold])
        events = read_events(isolated_settings, expected=3, timeout_seconds=60)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    expired = [e for e in events if isinstance(e, HoldExpired)]
    assert [e.hold_id for e in expired] == ["ttl-1"]
    assert expired[0].command_id.startswith("tick-")
    assert expired[0].occurred_at_ms >= now_ms + 1000


def test_buyer_limit_holds_across_sections_when_requests_arrive_together(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    sections = ("ga-a", "ga-b", "ga-c")
    specs = tuple(
        SectionSpec(s, SectionKind.GENERAL_ADMISSION, capacity=10) for s in sections
    )
    creates = [
        CreateShow(f"create-{s.section_id}", NOW_MS, "show-1", 600, 10, (s,))
        for s in specs
    ]
    limits = [
        (p, SetBuyerLimit(f"limit-{p}", NOW_MS, "show-1", 4))
        for p in range(isolated_settings.command_partitions)
    ]
    requests = [
        RequestHold(f"k-{s}", NOW_MS + 1, "show-1", s, "ann", (), 3, f"{s}:3")
        for s in sections
    ]
    reused = RequestHold("k-ga-a", NOW_MS + 2, "show-1", "ga-b", "ann", (), 1, "x")
    agent = start_agent(isolated_settings, tmp_path / "agent.log")

    try:
        send_to_partitions(isolated_settings, limits)
        send_commands(isolated_settings, [*creates, *requests, reused])
        # 3 sections, 8 limits, 1 admitted, 2 refused, 1 key reused, 1 placed
        events = read_events(isolated_settings, expected=16)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    outcomes = _outcomes(events)
    placed = [s for s in sections if outcomes[f"k-{s}"] == "placed"]
    assert len(placed) == 1, "3 + 3 places would pass the limit of 4"
    assert sorted(outcomes[f"k-{s}"] for s in sections) == [
        "buyer_limit_reached",
        "buyer_limit_reached",
        "placed",
    ]
    assert sum(isinstance(e, IdempotencyKeyReused) for e in events) == 1
    assert len(events) == 16
