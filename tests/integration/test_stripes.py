"""GA stripes against the real Kafka: the agent, its follow-ups, the event log."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from bench.stripes import EventCounter, run_mode
from commands.inventory import section_key
from commands.model import (
    CreateShow,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    SectionKind,
    SectionSpec,
)
from infra.partitions import move_section
from infra.settings import Settings
from infra.stripe_command import stripe_section
from infra.topics import partition_for
from projections.ledger import audit_show
from tests.integration.support import send_commands, start_agent

NOW_MS = 1_800_000_000_000


def test_stripes_sell_exactly_the_capacity_when_buyers_crowd_one_stripe(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    agent = start_agent(isolated_settings, tmp_path / "agent.log")

    try:
        # 1,000 places on 4 stripes, 5,000 holds: 90 % steered to stripe 0,
        # which must get places from its siblings; then every placed hold paid.
        figures = run_mode(
            isolated_settings, "show-s", 1_000, 5_000, 4, batch=50, hot_share=0.9
        )
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    assert len(set(figures["partitions_used"])) == 4
    assert figures["verdicts"] == 5_000
    assert figures["placed"] == 1_000
    assert figures["sold_from_log"] == 1_000
    assert figures["oversold"] == 0
    assert figures["sold_twice"] == 0
    assert figures["places_transferred"] > 0
    assert figures["transfers_each_once"]


def test_a_section_striped_during_the_sale_loses_no_hold_and_oversells_nothing(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    spec = SectionSpec("floor", SectionKind.GENERAL_ADMISSION, capacity=600)
    send_commands(
        isolated_settings, [CreateShow("create", NOW_MS, "show-l", 600, 4, (spec,))]
    )
    agent = start_agent(isolated_settings, tmp_path / "agent.log")
    holds = [
        PlaceHold(f"h{n}", NOW_MS + n, "show-l", "floor", f"b{n}", quantity=1)
        for n in range(1_500)
    ]

    counter = EventCounter.from_now(isolated_settings)
    try:
        # Holds keep coming to the section while it is striped.
        sender = threading.Thread(
            target=lambda: [
                send_commands(isolated_settings, holds[i : i + 100])
                for i in range(0, len(holds), 100)
            ]
        )
        sender.start()
        result = stripe_section(isolated_settings, "show-l", "floor", 4, 120)
        sender.join(120)
        _, events = counter.until("show-l", (HoldPlaced, HoldRejected), 1_500, 180)
    finally:
        counter.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    ledger = audit_show(isolated_settings, "show-l", 120)
    verdicts = {
        e.command_id for e in events if isinstance(e, HoldPlaced | HoldRejected)
    }
    placed = [e for e in events if isinstance(e, HoldPlaced)]
    assert result.stripes == 4
    assert {h.command_id for h in holds} <= verdicts
    assert len(placed) == len({e.hold_id for e in placed}) == 600
    assert ledger.oversold == 0
    assert ledger.transfers_balanced()
    stripe_keys = [section_key("show-l", f"floor~{i}") for i in range(4)]
    partitions = isolated_settings.command_partitions
    assert len({partition_for(k, partitions) for k in stripe_keys}) == 4


def test_a_section_moved_before_is_striped_where_it_lives_now(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    spec = SectionSpec("floor", SectionKind.GENERAL_ADMISSION, capacity=40)
    send_commands(
        isolated_settings, [CreateShow("create", NOW_MS, "show-m", 600, 4, (spec,))]
    )
    partitions = isolated_settings.command_partitions
    home = partition_for(section_key("show-m", "floor"), partitions)
    target = (home + 3) % partitions
    agent = start_agent(isolated_settings, tmp_path / "agent.log")
    try:
        moved = move_section(
            isolated_settings, "show-m/floor", (home + 3) % partitions, 120
        )
        result = stripe_section(isolated_settings, "show-m", "floor", 2, 60)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    assert moved.to_partition == target
    assert (result.stripes, sum(result.shares)) == (2, 40)
