"""Agent workers scale out and in mid-sale and lose nothing.

Holds for every partition arrive continuously while a second worker joins
(takes half the partitions), leaves with SIGTERM (gives them back), joins again
and is killed with SIGKILL (its partitions resume on the survivor), then
restarts. Standby table replicas are on, as in production.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from commands.inventory import section_key
from commands.model import (
    CreateShow,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    Row,
    SectionCreated,
    SectionKind,
    SectionSpec,
)
from infra.settings import Settings
from infra.topics import commands_topic, partition_for
from schemas.codec import decode_commands
from tests.integration.support import (
    command_producer,
    read_events,
    send_commands,
    settings_env,
    start_cli,
)

NOW_MS = 1_800_000_000_000
SHOW = "show-1"
SEATS_PER_SECTION = 30
SESSION_TIMEOUT_SECONDS = 12.0
ACTIVE = re.compile(
    r'^ticketing_agent_assigned_partitions\{role="active"\} (\S+)$', re.M
)


def _sections(partitions: int) -> list[str]:
    """Two section ids per command partition, so holds reach every partition."""
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(ids) < 2 for ids in found.values()):
        section = f"s{n}"
        ids = found[partition_for(section_key(SHOW, section), partitions)]
        if len(ids) < 2:
            ids.append(section)
        n += 1
    return [s for ids in found.values() for s in ids]


def _show(sections: list[str]) -> list[CreateShow]:
    numbers = tuple(str(n) for n in range(1, SEATS_PER_SECTION + 1))
    return [
        CreateShow(
            f"create-{s}",
            NOW_MS,
            SHOW,
            3600,
            4,
            (SectionSpec(s, SectionKind.RESERVED, rows=(Row("A", numbers),)),),
        )
        for s in sections
    ]


def _holds(sections: list[str]) -> list[PlaceHold]:
    """Every seat asked for twice, by two buyers, the second ask a while later."""
    first = [
        PlaceHold(f"{s}-{n}-a", NOW_MS + n, SHOW, s, f"a{s}{n}", (f"A-{n}",))
        for n in range(1, SEATS_PER_SECTION + 1)
        for s in sections
    ]
    second = [
        PlaceHold(f"{s}-{n}-b", NOW_MS + 10_000 + n, SHOW, s, f"b{s}{n}", (f"A-{n}",))
        for n in range(1, SEATS_PER_SECTION + 1)
        for s in sections
    ]
    # Interleaved with a lag, so both asks of a seat span the rebalances.
    lag = len(first) // 3
    return (
        first[:lag]
        + [h for pair in zip(first[lag:], second, strict=False) for h in pair]
        + second[len(first) - lag :]
    )


def _send_steadily(
    settings: Settings, holds: list[PlaceHold], seconds: float, stop: threading.Event
) -> None:
    producer = command_producer(settings)
    gap = seconds / len(holds)
    for hold in holds:
        if stop.is_set():
            return
        send_commands(settings, [hold], producer)
        time.sleep(gap)


def _active_partitions(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
            found = ACTIVE.search(reply.read().decode())
    except OSError:
        return None
    return int(float(found.group(1))) if found else None


def _where(settings: Settings, command_ids: set[str]) -> dict[str, tuple[int, int]]:
    """Partition and offset of each command on the command log (for a failure)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-where",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    topic = commands_topic(settings)
    consumer.assign(
        [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
    )
    found: dict[str, tuple[int, int]] = {}
    try:
        for _ in range(40):
            messages = consumer.consume(500, 0.5)
            for message in messages:
                if message.error():
                    continue
                for command in decode_commands(message.value(), message.headers()):
                    if command.command_id in command_ids:
                        found[command.command_id] = (
                            message.partition(),
                            message.offset(),
                        )
            if not messages and len(found) == len(command_ids):
                break
    finally:
        consumer.close()
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting until {what}")


def test_no_hold_is_lost_or_doubled_when_workers_join_leave_and_die_mid_sale(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    env = {
        **settings_env(settings),
        "TICKETING_AGENT_SESSION_TIMEOUT_SECONDS": str(SESSION_TIMEOUT_SECONDS),
        "TICKETING_AGENT_STANDBY_REPLICAS": "1",
    }
    port_a, port_b = settings.agent_web_port, settings.agent_web_port + 1
    sections = _sections(settings.command_partitions)
    holds = _holds(sections)
    send_commands(settings, _show(sections))
    first = start_cli(env, ["agent"], tmp_path / "first.log")
    processes: list[subprocess.Popen[bytes]] = [first]
    stop = threading.Event()
    sender = threading.Thread(target=_send_steadily, args=(settings, holds, 55.0, stop))

    def split() -> bool:
        return _active_partitions(port_a) == _active_partitions(port_b) == 4

    try:
        _wait_for(lambda: _active_partitions(port_a) == 8, 60, "the first owns all")
        sender.start()

        # A second worker joins and takes half the partitions.
        second = start_cli(env, ["agent"], tmp_path / "second.log")
        processes.append(second)
        _wait_for(split, 40, "the second worker takes half the partitions")

        # It leaves cleanly: the first takes them back.
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        _wait_for(lambda: _active_partitions(port_a) == 8, 30, "the first owns all")

        # It joins again and is killed: the survivor resumes its partitions.
        second = start_cli(env, ["agent"], tmp_path / "second-again.log")
        processes.append(second)
        _wait_for(split, 40, "the second worker takes half the partitions again")
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(10)
        _wait_for(
            lambda: _active_partitions(port_a) == 8,
            SESSION_TIMEOUT_SECONDS + 30,
            "the survivor owns the killed worker's partitions",
        )

        # The killed worker restarts and joins.
        processes.append(start_cli(env, ["agent"], tmp_path / "restarted.log"))
        sender.join(90)
        events = read_events(
            settings, expected=len(sections) + len(holds), timeout_seconds=90
        )
        alive = first.poll() is None and processes[-1].poll() is None
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(30)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)

    decided = Counter(e.command_id for e in events)
    placed = [e for e in events if isinstance(e, HoldPlaced)]
    rejected = [e for e in events if isinstance(e, HoldRejected)]
    seats = Counter((e.section_id, seat) for e in placed for seat in e.seat_ids)
    undecided = {h.command_id for h in holds} - set(decided)
    assert alive, "no worker stopped except the one killed"
    assert not undecided, (
        f"holds without a decision: {_where(settings, undecided)}; agent logs in "
        f"{tmp_path}"
    )
    assert max(decided.values()) == 1, "every command decided exactly once"
    assert max(seats.values()) == 1, "no seat held twice"
    first_asks_refused = Counter(
        (e.reason.value, e.detail) for e in rejected if e.command_id.endswith("-a")
    )
    assert len(placed) == len(rejected) == len(sections) * SEATS_PER_SECTION, (
        f"first asks refused: {first_asks_refused.most_common(5)}"
    )
    assert sum(isinstance(e, SectionCreated) for e in events) == len(sections)
