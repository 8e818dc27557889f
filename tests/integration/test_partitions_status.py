"""``ticketing partitions status`` against the real Kafka: rate, shares, hot keys."""

from __future__ import annotations

import json
import subprocess
import sys

from confluent_kafka import Producer

from commands.inventory import section_key
from commands.model import PlaceHold, Tick
from infra.routing import Route, encode_route
from infra.settings import Settings
from infra.topics import commands_topic, partition_for, routing_topic
from schemas.codec import command_headers, encode_commands
from tests.integration.support import ROOT, settings_env

SHOW = "show-s"


def _sections_on_one_partition(partitions: int) -> tuple[str, str, int]:
    """Two section ids whose keys hash to the same partition."""
    seen: dict[int, str] = {}
    for n in range(1000):
        section = f"s{n}"
        partition = partition_for(section_key(SHOW, section), partitions)
        if partition in seen:
            return seen[partition], section, partition
        seen[partition] = section
    raise AssertionError("no two sections share a partition")


def test_status_shows_rate_shares_hottest_keys_and_routes_when_read(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    hot, cool, partition = _sections_on_one_partition(settings.command_partitions)
    moved_to = (partition + 1) % settings.command_partitions
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    topic = commands_topic(settings)
    for n in range(40):
        section = hot if n % 4 else cool
        hold = PlaceHold(f"h{n}", 1, SHOW, section, f"b{n}", quantity=1)
        key = section_key(SHOW, section)
        producer.produce(
            topic,
            encode_commands([hold]),
            key.encode(),
            partition=partition,
            headers=command_headers(),
        )
    tick = Tick("t", 1)
    producer.produce(
        topic,
        encode_commands([tick]),
        b"~tick",
        partition=partition,
        headers=command_headers(),
    )
    routed = section_key(SHOW, "elsewhere")
    producer.produce(
        routing_topic(settings),
        encode_route(Route(moved_to, 2)),
        routed.encode(),
        partition=0,
    )
    assert producer.flush(10) == 0

    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "partitions", "status", "--json"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = subprocess.run(
        [sys.executable, "-m", "infra.cli", "partitions", "status"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    by_partition = {p["partition"]: p for p in document["partitions"]}
    busy = by_partition[partition]
    assert busy["sampled_records"] == 41
    assert busy["sampled_commands"] == 40 and busy["ticks"] == 1
    assert busy["commands_per_second"] > 0
    assert busy["lag"] is None, "no agent group has committed anything"
    shares = {s["key"]: s["share"] for s in busy["sections"]}
    assert shares == {section_key(SHOW, hot): 0.75, section_key(SHOW, cool): 0.25}
    assert busy["hottest_keys"][0] == {
        "key": section_key(SHOW, hot),
        "commands": 30,
        "share": 0.75,
    }
    assert document["routes"] == {routed: {"partition": moved_to, "epoch": 2}}
    elsewhere = {s["key"]: s for s in by_partition[moved_to]["sections"]}
    assert elsewhere[routed]["route_epoch"] == 2
    quiet = [p for n, p in by_partition.items() if n not in (partition, moved_to)]
    assert all(p["sampled_records"] == 0 and p["sections"] == [] for p in quiet)
    assert text.returncode == 0, text.stderr
    assert f"partition {partition}: " in text.stdout
    assert f"{section_key(SHOW, hot)} 75%" in text.stdout
