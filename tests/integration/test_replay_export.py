"""Replay and export against the real Kafka and Cassandra: counts and rows check out.

A generated sale (``tests.fakes.sale_log``) goes onto the events topic; the live
worker folds it into the home keyspace; then ``run_replay`` rebuilds into a fresh
keyspace, a killed worker restarts, and ``run_export`` slices the log.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cassandra.cluster import Session

from infra.settings import Settings
from projections.active import POINTER_CHECK_SECONDS, active_keyspace
from projections.export import ExportFilter
from projections.export_command import run_export
from projections.replay_command import ReplayRefused, run_replay
from projections.schema import READ_MODEL_TABLES
from projections.store import AvailabilityStore
from tests.fakes.sale_log import sale_log
from tests.integration.support import (
    ROOT,
    fold_to_end,
    settings_env,
    wait_until_committed,
)
from tests.integration.test_projection_worker import (
    produce,
    session,
    settings,
)

pytestmark = pytest.mark.integration
__all__ = ["session", "settings"]  # fixtures

SALE = sale_log(seed=7, steps=600, sections=4)
SALE_EVENTS = [event for _, events in SALE for event in events]


@pytest.fixture()
def rebuilt(settings: Settings, session: Session) -> Iterator[str]:
    """The name of a fresh keyspace for a replay, dropped afterwards."""
    keyspace = f"{settings.cassandra_keyspace}_r"
    yield keyspace
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


def table_rows(session: Session, keyspace: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, sorted."""
    found = {}
    for table in READ_MODEL_TABLES:
        rows = session.execute(f"SELECT * FROM {keyspace}.{table}")
        found[table] = sorted((tuple(row) for row in rows), key=repr)
    return found


def test_replay_gives_the_rows_of_the_live_projection_when_it_reads_the_whole_log(
    settings: Settings, session: Session, rebuilt: str
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    fold_to_end(settings)
    report = io.StringIO()

    result = run_replay(settings, rebuilt, switch=True, report=report)

    live = table_rows(session, settings.cassandra_keyspace)
    assert table_rows(session, rebuilt) == live
    assert all(live[table] for table in READ_MODEL_TABLES)
    assert result.complete and result.switched
    assert result.counts.records == len(SALE)
    orders = Counter(type(e).__name__ for e in SALE_EVENTS)["TicketsSold"]
    assert orders > 0
    assert result.rows_by_table["orders_by_id"] == orders
    assert result.rows_by_table["orders_by_buyer"] == orders
    assert active_keyspace(session, settings.cassandra_keyspace) == rebuilt
    assert "complete: yes" in report.getvalue()
    assert "offsets stored" in report.getvalue()


def test_replay_is_refused_when_the_keyspace_is_the_live_one(
    settings: Settings, session: Session
) -> None:
    with pytest.raises(ReplayRefused):
        run_replay(settings, settings.cassandra_keyspace, report=io.StringIO())


def test_a_worker_killed_mid_batch_ends_identical_when_restarted(
    settings: Settings, session: Session, rebuilt: str, tmp_path: Path
) -> None:
    big = sale_log(seed=11, steps=6000, sections=6)
    produce(settings, [events for _, events in big])
    wait_until_committed(settings, [key for key, _ in big])
    worker = _start_worker(settings, tmp_path / "worker.log")
    _wait_for_some_progress(session, settings.cassandra_keyspace)

    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    restarted = fold_to_end(settings)

    run_replay(settings, rebuilt, report=io.StringIO())
    assert 0 < restarted.records < len(big)  # it resumed, not restarted
    assert table_rows(session, settings.cassandra_keyspace) == table_rows(
        session, rebuilt
    )


def test_export_counts_equal_the_log_when_exporting_everything(
    settings: Settings, tmp_path: Path
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    out = tmp_path / "all.jsonl"

    counts = run_export(settings, ExportFilter(), "jsonl", str(out), io.StringIO())

    lines = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert counts.records == len(SALE)
    assert counts.events_read == counts.events_written == len(SALE_EVENTS)
    assert Counter(line["type"] for line in lines) == Counter(
        type(e).__name__ for e in SALE_EVENTS
    )
    assert sum(counts.end_offsets.values()) >= len(SALE)


def test_export_counts_equal_the_log_when_a_slice_is_exported_as_csv(
    settings: Settings, tmp_path: Path
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    wanted = ExportFilter(
        show_id="show-1", section_id="S1", types=frozenset({"HoldPlaced"})
    )
    out = tmp_path / "slice.csv"

    counts = run_export(settings, wanted, "csv", str(out), io.StringIO())

    expected = sum(wanted.matches(e) for e in SALE_EVENTS)
    assert expected > 0
    assert counts.events_written == expected
    assert len(out.read_text().splitlines()) == expected + 1  # header
    assert counts.events_read == len(SALE_EVENTS)


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """``ticketing projection`` as its own process group, as production runs it."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "projection"],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_some_progress(session: Session, keyspace: str) -> None:
    """Wait until the worker saved the offsets of at least one batch."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            query = f"SELECT next_offset FROM {keyspace}.projection_offsets"
            rows = list(session.execute(query))
        except Exception:  # the worker creates the table; not there yet
            rows = []
        if any(row.next_offset > 0 for row in rows):
            return
        time.sleep(0.05)
    pytest.fail("the projection worker saved no progress within 60 s")


def test_the_live_worker_folds_into_the_new_keyspace_when_a_replay_switches(
    settings: Settings, session: Session, rebuilt: str, tmp_path: Path
) -> None:
    first, later = SALE[: len(SALE) // 2], SALE[len(SALE) // 2 :]
    produce(settings, [events for _, events in first])
    wait_until_committed(settings, [key for key, _ in first])
    worker = _start_worker(settings, tmp_path / "worker.log")
    try:
        _wait_for_rows(session, settings.cassandra_keyspace, "holds_by_id", 1)
        run_replay(settings, rebuilt, switch=True, report=io.StringIO())
        time.sleep(POINTER_CHECK_SECONDS + 2.0)  # the worker has seen the switch
        home_holds = _count(session, settings.cassandra_keyspace, "holds_by_id")

        produce(settings, [events for _, events in later])
        all_holds = len({_hold_id(e) for e in SALE_EVENTS if _hold_id(e) is not None})
        _wait_for_rows(session, rebuilt, "holds_by_id", all_holds)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    assert _count(session, rebuilt, "holds_by_id") == all_holds
    assert _count(session, settings.cassandra_keyspace, "holds_by_id") == home_holds
    assert home_holds < all_holds


def _hold_id(event: Any) -> str | None:
    if type(event).__name__ == "HoldRejected":
        return str(event.command_id)
    return getattr(event, "hold_id", None)


def _count(session: Session, keyspace: str, table: str) -> int:
    return int(session.execute(f"SELECT COUNT(*) FROM {keyspace}.{table}").one()[0])


def _wait_for_rows(session: Session, keyspace: str, table: str, rows: int) -> None:
    """Wait until a table of a keyspace has at least ``rows`` rows."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _count(session, keyspace, table) >= rows:
                return
        except Exception:  # the worker creates the table; not there yet
            pass
        time.sleep(0.2)
    pytest.fail(f"{keyspace}.{table} did not reach {rows} rows within 60 s")


def test_the_cli_exports_and_replays_with_counts_when_run_as_commands(
    settings: Settings, session: Session, rebuilt: str, tmp_path: Path
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    out = tmp_path / "sold.csv"
    sold = sum(type(e).__name__ == "TicketsSold" for e in SALE_EVENTS)

    export = _cli(
        settings,
        "export",
        "--type",
        "TicketsSold",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    replay = _cli(settings, "replay", "--keyspace", rebuilt)

    assert export.returncode == 0, export.stderr
    assert f"events written: {sold}" in export.stderr
    assert f"  TicketsSold: {sold}" in export.stderr
    assert len(out.read_text().splitlines()) == sold + 1
    assert replay.returncode == 0, replay.stderr
    assert "complete: yes" in replay.stderr
    assert f"rows in orders_by_id: {sold}" in replay.stderr
    assert "switched: no" in replay.stderr


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_redelivered_events_change_no_row_when_the_worker_is_rewound(
    settings: Settings, session: Session
) -> None:
    produce(settings, [events for _, events in SALE])
    wait_until_committed(settings, [key for key, _ in SALE])
    fold_to_end(settings)
    ks = settings.cassandra_keyspace
    before = table_rows(session, ks)
    stamps = f"SELECT seat_id, WRITETIME(status) FROM {ks}.seats_by_section"
    stamps_before = sorted(tuple(row) for row in session.execute(stamps))
    store = AvailabilityStore(session, ks)
    store.save_offsets(dict.fromkeys(range(settings.command_partitions), 0))

    again = fold_to_end(settings)

    assert again.records == len(SALE)
    assert table_rows(session, ks) == before
    assert sorted(tuple(row) for row in session.execute(stamps)) == stamps_before
