"""Each agent on a host has a folder and a metrics port of its own; a taken port
costs the metrics, not the process."""

from __future__ import annotations

import socket
from pathlib import Path

from prometheus_client import CollectorRegistry

from infra.metrics import serve
from infra.settings import Settings
from streams.worker import claim_data_dir, metrics_port, wipe_tables


def test_second_agent_gets_another_folder_when_the_first_still_runs(
    tmp_path: Path,
) -> None:
    first, first_lock = claim_data_dir(tmp_path)

    second, second_lock = claim_data_dir(tmp_path)

    assert first != second
    first_lock.close()
    second_lock.close()


def test_folder_is_reused_when_its_agent_has_stopped(tmp_path: Path) -> None:
    first, lock = claim_data_dir(tmp_path)
    lock.close()

    again, again_lock = claim_data_dir(tmp_path)

    assert again == first
    again_lock.close()


def test_wiping_keeps_the_lock_when_tables_are_dropped(tmp_path: Path) -> None:
    folder, lock = claim_data_dir(tmp_path)
    (folder / "tables").mkdir()
    (folder / "tables" / "data.sst").write_bytes(b"x")

    wipe_tables(folder)

    assert [p.name for p in folder.iterdir()] == [".lock"]
    lock.close()


def test_each_agent_on_a_host_serves_metrics_on_a_port_of_its_own(
    tmp_path: Path,
) -> None:
    settings = Settings(agent_web_port=6066)
    first, first_lock = claim_data_dir(tmp_path)
    second, second_lock = claim_data_dir(tmp_path)

    ports = metrics_port(settings, first), metrics_port(settings, second)

    assert ports == (6066, 6067)
    first_lock.close()
    second_lock.close()


def test_a_taken_metrics_port_costs_the_metrics_not_the_process() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        served = serve(CollectorRegistry(), "127.0.0.1", port)
    finally:
        taken.close()

    assert served is False
