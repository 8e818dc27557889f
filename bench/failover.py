"""How long the agent's partitions pause when a worker dies, leaves or joins.

Each scenario runs on topics of its own: the command topic is filled with
``--preload`` holds (so the table has a changelog worth restoring), two workers
start, and a steady stream of holds over every partition runs while one fault is
applied: ``kill`` (SIGKILL one worker), ``term`` (SIGTERM one worker: a clean
leave) or ``join`` (a third worker starts). Per partition it measures, from the
event log read with read_committed (record timestamps, set when the agent sends):

- ``gap_seconds``: the longest time between two decisions after the fault;
- ``resumed_after_fault_seconds``: from the fault to the decision that ended it;
- ``last_before_fault_seconds`` / ``first_after_fault_seconds`` around the fault.

The table restore times come from the workers' ``tables restored`` log lines
(``ticketing_agent_table_recovery_seconds`` measures the same). Every scenario
runs with standby replicas on (1) and off (0). The JSON goes to
``bench/results/failover-<date>.json``. Needs Kafka; bounded in time by
``--observe-seconds`` per scenario. Usage:
``python -m bench.failover [--scenarios kill,term,join] [--standby 1,0]``.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from commands.inventory import section_key
from commands.model import CreateShow, PlaceHold, SectionKind, SectionSpec
from infra.settings import Settings
from infra.topics import commands_topic, ensure_topics, events_topic, partition_for
from schemas.codec import command_headers, decode_events, encode_commands
from tests.integration.support import (
    command_producer,
    send_commands,
    settings_env,
    start_cli,
)

SHOW = "failover"
SECTIONS_PER_PARTITION = 2
RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = ("gap_before_fault_seconds", "gap_seconds", "resumed_after_fault_seconds")


def sections_over_all_partitions(partitions: int) -> list[str]:
    """Section ids whose keys cover every partition, two sections each."""
    found: dict[int, list[str]] = defaultdict(list)
    n = 0
    while any(len(found[p]) < SECTIONS_PER_PARTITION for p in range(partitions)):
        section = f"ga{n}"
        partition = partition_for(section_key(SHOW, section), partitions)
        if len(found[partition]) < SECTIONS_PER_PARTITION:
            found[partition].append(section)
        n += 1
    return [s for p in range(partitions) for s in found[p]]


def hold(n: int, sections: list[str], now_ms: int) -> PlaceHold:
    """The n-th hold of the run: one place, its own buyer, sections in turn."""
    section = sections[n % len(sections)]
    return PlaceHold(f"h{n}", now_ms + n, SHOW, section, f"b{n}", quantity=1)


class HoldStream:
    """Sends holds at a steady rate from a thread until stopped or the limit."""

    def __init__(self, settings: Settings, sections: list[str], first: int) -> None:
        self.settings = settings
        self.sections = sections
        self.next = first
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self, rate_per_second: float, limit_seconds: float) -> None:
        self.rate = rate_per_second
        self.limit_seconds = limit_seconds
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)

    def _run(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        topic = commands_topic(self.settings)
        partitions = self.settings.command_partitions
        started = time.monotonic()
        sent = 0
        while not self.stopped.is_set():
            elapsed = time.monotonic() - started
            if elapsed > self.limit_seconds:
                break
            while sent < elapsed * self.rate:
                command = hold(self.next, self.sections, int(time.time() * 1000))
                key = section_key(SHOW, command.section_id)
                producer.produce(
                    topic,
                    encode_commands([command]),
                    key.encode(),
                    partition=partition_for(key, partitions),
                    headers=command_headers(),
                )
                self.next += 1
                sent += 1
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(30)


class DecisionLog:
    """Reads the event log (read_committed) from a thread: decision times per
    partition, and how often each command was decided."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.times_ms: dict[int, list[int]] = defaultdict(list)
        self.decided: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        """Per command: (partition, offset, timestamp ms, event) of each decision."""
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)

    def count(self) -> int:
        with self.lock:
            return len(self.decided)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"bench-failover-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        topic = events_topic(self.settings)
        partitions = range(self.settings.command_partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        try:
            while not self.stopped.is_set():
                for message in consumer.consume(1000, 0.2):
                    if message.error():
                        continue
                    events = decode_events(message.value(), message.headers())
                    with self.lock:
                        self.times_ms[message.partition()].append(
                            message.timestamp()[1]
                        )
                        for event in events:
                            self.decided[event.command_id].append(
                                (
                                    message.partition(),
                                    message.offset(),
                                    message.timestamp()[1],
                                    type(event).__name__,
                                )
                            )
        finally:
            consumer.close()


class Worker:
    """One ``ticketing agent`` process with its log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.process = start_cli(env, ["agent"], log_path)

    def signal(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(10)

    def lines(self) -> Iterator[dict[str, Any]]:
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    yield json.loads(raw)
                except ValueError:
                    continue

    def restores(self) -> list[tuple[float, float]]:
        """(wall time, seconds) of every table restore this worker logged."""
        found = []
        for line in self.lines():
            if line.get("message") == "tables restored":
                seconds = line.get("restore_seconds")
                if seconds is not None:
                    found.append((_wall(line["ts"]), float(seconds)))
        return found

    def assignment(self) -> list[int] | None:
        """The partitions of the last assignment, once its tables are restored."""
        assigned: list[int] | None = None
        restored = False
        for line in self.lines():
            if line.get("message") == "partitions assigned":
                assigned, restored = line.get("partitions", []), False
            elif line.get("message") == "tables restored":
                restored = True
        return assigned if restored else None


def _wall(ts: str) -> float:
    """Epoch seconds of a log line's ``ts`` (UTC, milliseconds)."""
    base, millis = ts.rstrip("Z").split(".")
    return (
        calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000
    )


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 0.5 s until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def wait_for_split(workers: list[Worker], partitions: int, timeout: float) -> bool:
    """Until the running workers own every partition between them, restored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [w.assignment() for w in workers]
        if all(o for o in owned) and sorted(p for o in owned for p in o or []) == list(
            range(partitions)
        ):
            return True
        time.sleep(0.5)
    return False


def delete_topics(settings: Settings) -> None:
    """Remove the scenario's topics (commands, events, changelog) from Kafka."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [
        name
        for name in admin.list_topics(timeout=10).topics
        if name.startswith((settings.topic_prefix, settings.agent_id))
    ]
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result(timeout=30)


def partition_figures(
    times_ms: list[int], fault: float, end: float
) -> dict[str, float | None]:
    """Gap figures of one partition around a fault at ``fault`` (epoch s)."""
    stamps = sorted(t / 1000 for t in times_ms if fault - 10 <= t / 1000 <= end)
    before = [t for t in stamps if t < fault]
    after = [t for t in stamps if t >= fault]
    steady = [b - a for a, b in zip(before, before[1:], strict=False)]
    figures: dict[str, float | None] = {
        "gap_before_fault_seconds": round(max(steady), 3) if steady else None,
        "last_before_fault_seconds": round(fault - before[-1], 3) if before else None,
        "first_after_fault_seconds": round(after[0] - fault, 3) if after else None,
        "gap_seconds": None,
        "resumed_after_fault_seconds": None,
    }
    if before and after:
        pairs = [
            (b - a, b) for a, b in zip(stamps, stamps[1:], strict=False) if b >= fault
        ]
        gap, resumed = max(pairs)
        figures["gap_seconds"] = round(gap, 3)
        figures["resumed_after_fault_seconds"] = round(resumed - fault, 3)
    return figures


def _summary(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"median": None, "max": None, "missing": len(values)}
    return {
        "median": round(statistics.median(known), 3),
        "max": round(max(known), 3),
        "missing": len(values) - len(known),
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Gap figures split: the faulted worker's partitions, and all the others.

    ``split_before_fault`` lists each worker's partitions (a, b); b is the one
    killed or stopped. In ``join`` no worker faults: all count as others.
    """
    split = result["split_before_fault"]
    faulted = set(split[1] or []) if result["scenario"] != "join" else set()
    per_partition = {int(p): f for p, f in result["per_partition"].items()}
    moved = {p for p in per_partition if p in faulted}
    stayed = set(per_partition) - moved
    figures: dict[str, Any] = {}
    for name, group in (("faulted_worker", moved), ("other_partitions", stayed)):
        for figure in FIGURES:
            figures[f"{figure}_{name}"] = _summary(
                [per_partition[p].get(figure) for p in sorted(group)]
            )
    return figures


def run_scenario(
    base: Settings, scenario: str, standby: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One fault on a fresh set of topics; the figures of every partition."""
    run = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        base,
        topic_prefix=f"bench-fo-{run}",
        agent_id=f"bench-fo-{run}-agent",
        agent_data_dir=tempfile.mkdtemp(prefix="bench-failover-"),
    )
    ensure_topics(settings)
    partitions = settings.command_partitions
    sections = sections_over_all_partitions(partitions)
    now_ms = int(time.time() * 1000)
    shows = [
        CreateShow(
            f"create-{s}",
            now_ms,
            SHOW,
            3600,
            4,
            (SectionSpec(s, SectionKind.GENERAL_ADMISSION, capacity=10_000_000),),
        )
        for s in sections
    ]
    preload = [hold(n, sections, now_ms) for n in range(args.preload)]
    send_commands(settings, [*shows, *preload], command_producer(settings))

    env = {
        **settings_env(settings),
        "TICKETING_LOG_LEVEL": "INFO",
        "TICKETING_AGENT_STANDBY_REPLICAS": str(standby),
    }
    logs = Path(settings.agent_data_dir) / "logs"
    logs.mkdir()
    decisions = DecisionLog(settings)
    stream = HoldStream(settings, sections, first=args.preload)
    workers = [Worker(env, logs / "worker-a.log")]
    result: dict[str, Any] = {"scenario": scenario, "standby_replicas": standby}
    try:
        # Two workers own the partitions between them, with standbys caught up.
        time.sleep(3)
        workers.append(Worker(env, logs / "worker-b.log"))
        split = wait_for_split(workers, partitions, args.ready_seconds)
        caught_up = wait_until(
            lambda: decisions.count() >= args.preload, args.ready_seconds
        )
        stream.start(args.rate, args.ready_seconds + args.observe_seconds + 60)
        time.sleep(args.settle_seconds)
        result["split_before_fault"] = [w.assignment() for w in workers]
        result["ready"] = split and caught_up
        result["backlog_at_fault"] = stream.next - decisions.count()

        # The fault.
        fault = time.time()
        if scenario == "kill":
            workers[1].signal(signal.SIGKILL)
        elif scenario == "term":
            workers[1].signal(signal.SIGTERM)
        else:
            workers.append(Worker(env, logs / "worker-c.log"))
        time.sleep(args.observe_seconds)
        end = time.time()
    finally:
        stream.stop()
        for worker in workers:
            worker.stop()
    time.sleep(2)
    decisions.stop()
    twice = {c: d for c, d in decisions.decided.items() if len(d) > 1}
    if not twice:
        delete_topics(settings)  # kept as evidence otherwise

    per_partition = {
        p: partition_figures(decisions.times_ms.get(p, []), fault, end)
        for p in range(partitions)
    }
    restores = [
        {
            "worker": w.log_path.stem,
            "at_fault_seconds": round(at - fault, 3),
            "seconds": round(s, 3),
        }
        for w in workers
        for at, s in w.restores()
        if at >= fault
    ]
    result |= {
        "decided_commands": decisions.count(),
        "commands_decided_twice": len(twice),
        "decided_twice": {
            c: [(p, o, round(t / 1000 - fault, 3), e) for p, o, t, e in d]
            for c, d in sorted(twice.items())[:20]
        },
        "topic_prefix": settings.topic_prefix,
        "per_partition": per_partition,
        "gap_seconds": _summary([f["gap_seconds"] for f in per_partition.values()]),
        "resumed_after_fault_seconds": _summary(
            [f["resumed_after_fault_seconds"] for f in per_partition.values()]
        ),
        "table_restores_after_fault": restores,
        "logs": str(logs),
    }
    return result | summarize(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="kill,term,join")
    parser.add_argument("--standby", default="1,0", help="standby replicas to try")
    parser.add_argument("--preload", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="holds per second")
    parser.add_argument("--ready-seconds", type=float, default=120.0)
    parser.add_argument("--settle-seconds", type=float, default=8.0)
    parser.add_argument(
        "--observe-seconds",
        type=float,
        default=0.0,
        help="after the fault; 0: session timeout + 30 s",
    )
    parser.add_argument("--out", default="", help="result file (default: dated)")
    args = parser.parse_args()
    base = Settings.from_env()
    if not args.observe_seconds:
        args.observe_seconds = base.agent_session_timeout_seconds + 30.0

    results = []
    for standby in (int(s) for s in args.standby.split(",")):
        for scenario in args.scenarios.split(","):
            print(f"scenario {scenario}, standby replicas {standby}", flush=True)
            found = run_scenario(base, scenario, standby, args)
            print(
                json.dumps(
                    {
                        k: found[k]
                        for k in (
                            "ready",
                            "backlog_at_fault",
                            *(f"{f}_faulted_worker" for f in FIGURES),
                            *(f"{f}_other_partitions" for f in FIGURES),
                            "table_restores_after_fault",
                            "commands_decided_twice",
                        )
                    }
                ),
                flush=True,
            )
            results.append(found)

    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out or RESULTS / f"failover-{time.strftime('%Y-%m-%d')}.json")
    load = os.getloadavg()
    out.write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": f"{os.cpu_count()} cores, shared; load average "
                f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end",
                "session_timeout_seconds": base.agent_session_timeout_seconds,
                "heartbeat_interval_seconds": base.agent_heartbeat_interval_seconds,
                "args": vars(args),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
