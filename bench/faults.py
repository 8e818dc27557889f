"""Five faults under a steady sale, one after another; recovery times as JSON.

Runs the same scenarios as ``tests/integration/test_faults_under_load.py`` with
longer outages (Cassandra down 60 s by default) against the Kafka and Cassandra
of ``ticketing services up``, which it stops and starts again. Writes
``bench/results/faults-<date>.json``: per fault, the time from the repair to
the first successful checkout and to the checkout rate back at 80 % of the rate
before the fault, the same for tickets sold on the log, how long the
projections took to catch up, the load average, and every promise that broke
(none expected).

    .venv/bin/python -m bench.faults [--cassandra-outage-seconds 60]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fault_scenario import under_load
from bench.fault_system import Fault, FaultSystem, isolated
from infra import services
from infra.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


def _scenarios(
    system: FaultSystem, args: argparse.Namespace
) -> list[tuple[str, Callable[[str], Fault]]]:
    """Each fault by name, as a function of the show it hits."""
    return [
        ("poison-message", lambda show: system.poison(show, "floor-a")),
        ("provider-outage", lambda _: system.provider_outage(args.provider_seconds)),
        (
            "cassandra-outage",
            lambda _: system.cassandra_outage(args.cassandra_outage_seconds),
        ),
        ("agent-kill", lambda _: system.kill_agent()),
        ("kafka-restart", lambda _: system.kafka_outage(args.kafka_seconds)),
    ]


def main() -> None:
    """Run the faults and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassandra-outage-seconds", type=float, default=60.0)
    parser.add_argument("--kafka-seconds", type=float, default=10.0)
    parser.add_argument("--provider-seconds", type=float, default=20.0)
    parser.add_argument("--buyers-per-second", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", help="run only these faults")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="faults-"))
    settings = isolated(Settings.from_env(), work / "agent")
    system = FaultSystem(settings, work)
    reports: list[dict[str, Any]] = []
    system.start()
    try:
        for name, fault in _scenarios(system, args):
            if args.only and name not in args.only:
                continue
            show = f"bench-{uuid.uuid4().hex[:8]}"
            print(f"{name}: running", flush=True)
            try:
                report = under_load(
                    system,
                    show,
                    lambda show=show, fault=fault: fault(show),
                    buyers_per_second=args.buyers_per_second,
                    max_after_seconds=120.0,
                )
            finally:
                services.start_one(services.KAFKA)
                services.start_one(services.CASSANDRA)
            found = report.as_dict()
            found["load_average_1m"] = round(os.getloadavg()[0], 1)
            reports.append(found)
            print(json.dumps(found, indent=1), flush=True)
    finally:
        system.stop()
        system.delete_topics()
    _write(reports, args)


def _write(reports: list[dict[str, Any]], args: argparse.Namespace) -> None:
    today = datetime.date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"faults-{today}.json"
    document = {
        "measured_on": today,
        "measured_at_unix": int(time.time()),
        "machine": (
            f"{os.cpu_count()} shared cores, Kafka and Cassandra on loopback "
            "(one node each); timings are noisy, other work ran on the machine"
        ),
        "command": "python -m bench.faults "
        f"--cassandra-outage-seconds {args.cassandra_outage_seconds:g} "
        f"--kafka-seconds {args.kafka_seconds:g} "
        f"--provider-seconds {args.provider_seconds:g} "
        f"--buyers-per-second {args.buyers_per_second:g}",
        "recovery": (
            "seconds from the repair (restart answered, outage ended, poison "
            "sent) to the first success and to a 3 s window at >= 80 % of the "
            "rate before the fault"
        ),
        "faults": reports,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
