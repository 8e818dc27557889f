"""The inventory agent's metrics: commands decided, batch latency, its state.

Served by the agent worker on ``agent_web_port`` (faust's own web server is
off). ``record_decisions`` runs per partition of a batch, ``record_batch`` once
per batch, both in the agent's event loop; the state gauges are set there too,
so a scrape never walks the tables while the agent changes them.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from commands.inventory import PartitionInventory
from commands.model import (
    Command,
    CommandRejected,
    Event,
    HoldRejected,
    IdempotencyKeyReused,
    SectionRejected,
)
from infra.metrics import LATENCY_BUCKETS_SECONDS

ACCEPTED: Final = "accepted"
NO_EFFECT: Final = "no_effect"
"""Outcome of a command that gave no event (a redelivery, a tick with no expiry)."""
KEY_REUSED: Final = "idempotency_key_reused"
GUARD_REASONS: Final = frozenset(
    {"sold_out", "seat_unavailable", "seat_in_use", "insufficient_free"}
)
"""Refusals that stop a hold from taking places that are not free."""

REGISTRY = CollectorRegistry()

COMMANDS = Counter(
    "ticketing_agent_commands",
    "Commands decided, by command type and outcome (accepted, a rejection "
    "reason, or no_effect).",
    ["type", "outcome"],
    registry=REGISTRY,
)
OVERSELL_GUARD = Counter(
    "ticketing_agent_oversell_guard",
    "Holds the core refused because the places were not free, by reason.",
    ["reason"],
    registry=REGISTRY,
)
BATCH_DURATION = Histogram(
    "ticketing_agent_batch_duration_seconds",
    "Time to decide, persist and send one batch of command records.",
    buckets=LATENCY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
BATCH_RECORDS = Histogram(
    "ticketing_agent_batch_records",
    "Command records per batch.",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 2000, 5000),
    registry=REGISTRY,
)
COMMAND_AGE = Histogram(
    "ticketing_agent_command_age_seconds",
    "Time from a command record's append to the end of its batch.",
    buckets=LATENCY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
LAG = Gauge(
    "ticketing_agent_lag_seconds",
    "Age of the oldest command record of the last batch when it was decided.",
    registry=REGISTRY,
)
TABLE_SECTIONS = Gauge(
    "ticketing_agent_table_sections",
    "Sections whose inventory this worker keeps in its table.",
    registry=REGISTRY,
)
HOLDS_OPEN = Gauge(
    "ticketing_agent_holds_open",
    "Holds not ended (held or awaiting payment) in the sections of this worker.",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "ticketing_agent_dead_letters",
    "Command records sent to dead letters, by reason.",
    ["reason"],
    registry=REGISTRY,
)
REBALANCES = Counter(
    "ticketing_agent_rebalances",
    "Rebalances this worker took part in (its partitions were revoked).",
    registry=REGISTRY,
)
RECORDS_DROPPED_BY_FAUST = Counter(
    "ticketing_agent_queue_drops",
    "Times faust cleared queued command records of a partition; the agent then "
    "expects them again (streams/continuity.py).",
    registry=REGISTRY,
)
LOCAL_COPIES_DROPPED = Counter(
    "ticketing_agent_local_copies_dropped",
    "Table partitions whose local copy was dropped because their last decisions "
    "may have aborted when the partition was revoked.",
    registry=REGISTRY,
)
INCOMPLETE_RESTORES = Counter(
    "ticketing_agent_incomplete_restores",
    "Restored tables whose cursor was behind the offset committed with it; the "
    "worker stops so that a fresh one restores again.",
    registry=REGISTRY,
)
CURSOR_SEEKS = Counter(
    "ticketing_agent_cursor_seeks",
    "Seeks back to a command record missing before those handed over.",
    registry=REGISTRY,
)
RECORDS_HELD_BACK = Counter(
    "ticketing_agent_records_held_back",
    "Command records handed over before the worker's tables were restored, left "
    "undecided for faust to hand over again.",
    registry=REGISTRY,
)
LATE_CHANGELOG_RECORDS = Counter(
    "ticketing_agent_late_changelog_records",
    "Committed changelog records that reached the restore after it had ended; "
    "the restored table lacks them.",
    registry=REGISTRY,
)
ACKS_PAST_OFFSETS = Counter(
    "ticketing_agent_acks_past_offsets",
    "Records decided in a committed transaction past the offsets it committed "
    "(faust stopped at a record not acked); handed over again after a restart.",
    registry=REGISTRY,
)
RECOVERY_BUCKETS_SECONDS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
TABLE_RECOVERY = Histogram(
    "ticketing_agent_table_recovery_seconds",
    "Time from a partition assignment until the worker's table partitions are "
    "restored from their changelog.",
    buckets=RECOVERY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
REBALANCE_PAUSE = Histogram(
    "ticketing_agent_rebalance_pause_seconds",
    "Time this worker decided nothing in a rebalance: from its partitions' "
    "revocation until its tables are restored.",
    buckets=RECOVERY_BUCKETS_SECONDS,
    registry=REGISTRY,
)
ASSIGNED_PARTITIONS = Gauge(
    "ticketing_agent_assigned_partitions",
    "Command partitions this worker decides (active) and table partitions it "
    "keeps a standby copy of (standby).",
    ["role"],
    registry=REGISTRY,
)
COMMANDS_FORWARDED = Counter(
    "ticketing_agent_commands_sent_on",
    "Commands sent to another partition by the core: section adopts, and "
    "commands forwarded to the new owner of a section that moved.",
    registry=REGISTRY,
)


def _outcome(events: Sequence[Event]) -> str:
    for event in events:
        if isinstance(event, HoldRejected | CommandRejected | SectionRejected):
            return event.reason.value
        if isinstance(event, IdempotencyKeyReused):
            return KEY_REUSED
    return ACCEPTED if events else NO_EFFECT


def record_decisions(commands: Sequence[Command], events: Iterable[Event]) -> None:
    """Count each command by type and by what the core decided about it."""
    by_command: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_command[event.command_id].append(event)
    # Counted per label pair, then added once each: a batch of thousands of
    # holds looks its few label pairs up a few times, not once per command.
    counts: Tally[tuple[str, str]] = Tally()
    for command in commands:
        outcome = _outcome(by_command.get(command.command_id, ()))
        counts[type(command).__name__, outcome] += 1
    for (command_type, outcome), count in counts.items():
        COMMANDS.labels(command_type, outcome).inc(count)
        if outcome in GUARD_REASONS:
            OVERSELL_GUARD.labels(outcome).inc(count)


def record_batch(
    records: Sequence[Any],
    started: float,
    inventories: Mapping[int, PartitionInventory] | None,
) -> None:
    """Time a batch (``started`` from ``time.perf_counter``) and read the state.

    ``records`` are faust events; their ``message.timestamp`` is in seconds.
    """
    BATCH_DURATION.observe(time.perf_counter() - started)
    BATCH_RECORDS.observe(len(records))
    now = time.time()
    stamps = (getattr(r.message, "timestamp", None) for r in records)
    ages = [now - stamp for stamp in stamps if stamp]
    for age in ages:
        COMMAND_AGE.observe(max(0.0, age))
    if ages:
        LAG.set(max(0.0, max(ages)))
    if inventories is not None:
        sections = [s for inv in inventories.values() for s in inv.sections.values()]
        TABLE_SECTIONS.set(len(sections))
        HOLDS_OPEN.set(sum(len(section.holds) for section in sections))
