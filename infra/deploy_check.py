"""Checks of the deployment configs in ``infra/deploy/`` (and the local cluster's).

Kafka: every broker keeps topics at replication factor 3 or more with
``min.insync.replicas`` 2, never elects an unclean leader, replicates its
transaction state log the same way, advertises exactly the listener it binds;
every server of the cluster names the same controller quorum, whose voters are
the controllers' own listeners. Environment files: every ``TICKETING_*``
variable is a known setting whose value parses. Cassandra: every top-level key
of ``cassandra.yaml`` is one Cassandra 5.0 reads (the public fields of its
``org.apache.cassandra.config.Config``, listed in ``CASSANDRA_KEYS``).

``python -m infra.deploy_check`` checks the checked-in files and exits 1 on a
problem; ``--refresh-keys`` rewrites the key list from the fetched jar.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.settings import Settings, SettingsError

DEPLOY_DIR = Path(__file__).resolve().parent / "deploy"
CASSANDRA_KEYS = DEPLOY_DIR / "cassandra" / "config-keys-5.0.txt"
CONFIG_CLASS = "org/apache/cassandra/config/Config.class"
MIN_REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2

Properties = dict[str, str]


def parse_properties(text: str) -> Properties:
    """``key=value`` lines of a Java properties file (no continuation lines)."""
    found: Properties = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        found[key.strip()] = value.strip()
    return found


def parse_env(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an environment file (comments and blanks skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        found[name.strip()] = value.strip().strip("'\"")
    return found


# ---------------------------------------------------------------- kafka


def _listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` as name -> ``host:port``."""
    found = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, address = item.partition("://")
        found[name] = address
    return found


def check_server(name: str, props: Properties) -> list[str]:
    """Problems of one KRaft server's properties (broker, controller or both)."""
    problems: list[str] = []
    roles = set(props.get("process.roles", "").split(","))
    if not roles <= {"broker", "controller"} or not roles - {""}:
        problems.append(f"{name}: process.roles must be broker and/or controller")
    if "node.id" not in props:
        problems.append(f"{name}: node.id is missing")
    listeners = _listeners(props.get("listeners", ""))
    controller_names = props.get("controller.listener.names", "").split(",")
    if "controller" in roles:
        for listener in controller_names:
            if listener not in listeners:
                problems.append(f"{name}: controller listener {listener} not bound")
    if "broker" in roles:
        problems += _check_broker(name, props, listeners, controller_names)
    return problems


def _check_broker(
    name: str, props: Properties, listeners: dict[str, str], controllers: list[str]
) -> list[str]:
    """Replication and listener rules of a server that is a broker."""
    problems: list[str] = []

    def at_least(key: str, low: int) -> None:
        value = props.get(key, "")
        if not value.isdigit() or int(value) < low:
            problems.append(f"{name}: {key} must be at least {low} (is {value!r})")

    at_least("default.replication.factor", MIN_REPLICATION_FACTOR)
    at_least("offsets.topic.replication.factor", MIN_REPLICATION_FACTOR)
    at_least("transaction.state.log.replication.factor", MIN_REPLICATION_FACTOR)
    at_least("min.insync.replicas", MIN_INSYNC_REPLICAS)
    at_least("transaction.state.log.min.isr", MIN_INSYNC_REPLICAS)
    if props.get("unclean.leader.election.enable", "false") != "false":
        problems.append(f"{name}: unclean.leader.election.enable must be false")
    if props.get("auto.create.topics.enable") != "false":
        problems.append(f"{name}: auto.create.topics.enable must be false")

    advertised = _listeners(props.get("advertised.listeners", ""))
    if not advertised:
        problems.append(f"{name}: advertised.listeners is missing")
    for listener, address in advertised.items():
        if listener in controllers:
            problems.append(f"{name}: advertises its controller listener {listener}")
        elif listener not in listeners:
            problems.append(f"{name}: advertises {listener}, which it does not bind")
        elif listeners[listener].rsplit(":", 1)[-1] != address.rsplit(":", 1)[-1]:
            problems.append(f"{name}: {listener} binds one port, advertises another")
        elif "0.0.0.0" in address or not address.split(":")[0]:
            problems.append(f"{name}: {listener} advertises no reachable host")
    inter = props.get("inter.broker.listener.name", "PLAINTEXT")
    if inter not in advertised:
        problems.append(f"{name}: inter-broker listener {inter} is not advertised")
    return problems


def check_quorum(servers: Mapping[str, Properties]) -> list[str]:
    """Problems across the servers of one cluster: ids, voters, replicas."""
    problems: list[str] = []
    ids = [props.get("node.id") for props in servers.values()]
    if len(set(ids)) != len(ids):
        problems.append(f"node.id values repeat: {ids}")
    voters = {props.get("controller.quorum.voters", "") for props in servers.values()}
    if len(voters) != 1:
        return problems + [f"servers name different quorums: {sorted(voters)}"]
    declared = {}
    for voter in filter(None, voters.pop().split(",")):
        node_id, _, address = voter.partition("@")
        declared[node_id] = address
    if len(declared) % 2 == 0 or len(declared) < 3:
        problems.append(f"the quorum needs an odd number (>= 3) of voters: {declared}")
    for name, props in servers.items():
        if "controller" not in props.get("process.roles", ""):
            continue
        listener = props.get("controller.listener.names", "").split(",")[0]
        bound = _listeners(props.get("listeners", "")).get(listener)
        if declared.get(props.get("node.id", "")) != bound:
            problems.append(f"{name}: its voter entry is not its controller listener")
    controllers = sum(
        "controller" in props.get("process.roles", "") for props in servers.values()
    )
    if controllers != len(declared):
        problems.append(f"{controllers} controllers but {len(declared)} voters")
    brokers = sum(
        "broker" in props.get("process.roles", "") for props in servers.values()
    )
    if brokers < MIN_REPLICATION_FACTOR:
        problems.append(
            f"{brokers} brokers cannot hold {MIN_REPLICATION_FACTOR} replicas"
        )
    return problems


# ---------------------------------------------------------------- settings


def check_env(
    name: str, env: Mapping[str, str], shared: Mapping[str, str] | None = None
) -> list[str]:
    """Every variable is a known ``TICKETING_*`` setting; with ``shared`` they parse.

    ``shared`` holds the variables every process gets (``common.env``); a role's
    file is checked on top of them, as the process would start.
    """
    known = {variable for variable, *_ in Settings().describe()}
    problems = [
        f"{name}: {variable} is not a known TICKETING_* setting"
        for variable in env
        if variable not in known
    ]
    try:
        Settings.from_env({**(shared or {}), **env})
    except SettingsError as exc:
        problems.append(f"{name}: {exc}")
    return problems


# ---------------------------------------------------------------- cassandra


def _constant_pool(data: bytes, offset: int) -> tuple[dict[int, str], int]:
    """The UTF-8 constants of a class file's pool, and the offset after it."""
    (count,) = struct.unpack_from(">H", data, offset)
    offset += 2
    texts: dict[int, str] = {}
    sizes = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3}
    sizes |= {16: 2, 17: 4, 18: 4, 19: 2, 20: 2}
    index = 1
    while index < count:
        tag = data[offset]
        offset += 1
        if tag == 1:
            (length,) = struct.unpack_from(">H", data, offset)
            texts[index] = data[offset + 2 : offset + 2 + length].decode(
                "utf-8", "replace"
            )
            offset += 2 + length
        else:
            offset += sizes[tag]
        index += 2 if tag in (5, 6) else 1  # longs and doubles take two slots
    return texts, offset


def public_fields(class_bytes: bytes) -> set[str]:
    """Names of the public, non-static fields of a compiled Java class."""
    texts, offset = _constant_pool(class_bytes, 8)
    offset += 6  # access flags, this class, super class
    (interfaces,) = struct.unpack_from(">H", class_bytes, offset)
    offset += 2 + 2 * interfaces
    (count,) = struct.unpack_from(">H", class_bytes, offset)
    offset += 2
    names = set()
    for _ in range(count):
        flags, name_index, _descriptor, attributes = struct.unpack_from(
            ">HHHH", class_bytes, offset
        )
        offset += 8
        for _ in range(attributes):
            (length,) = struct.unpack_from(">I", class_bytes, offset + 2)
            offset += 6 + length
        if flags & 0x0001 and not flags & 0x0008:
            names.add(texts[name_index])
    return names


def cassandra_jar(version: str = "5.0.6") -> Path | None:
    """The fetched cassandra-all jar (infra cache or the local Maven repo)."""
    cached = sorted(
        (DEPLOY_DIR.parent / ".cache/cassandra/lib").glob("cassandra-all-*.jar")
    )
    m2 = Path.home() / ".m2/repository/org/apache/cassandra/cassandra-all"
    candidates = [*cached, m2 / version / f"cassandra-all-{version}.jar"]
    return next((path for path in candidates if path.is_file()), None)


def keys_in_jar(jar: Path) -> set[str]:
    """The cassandra.yaml keys Cassandra's Config class reads."""
    with zipfile.ZipFile(jar) as archive:
        return public_fields(archive.read(CONFIG_CLASS))


def known_cassandra_keys() -> set[str]:
    """The checked-in list of keys Cassandra 5.0 reads."""
    return set(CASSANDRA_KEYS.read_text().split())


def check_cassandra(
    name: str, document: Any, known: Iterable[str], production: bool = True
) -> list[str]:
    """Problems of a cassandra.yaml: unknown keys, and what production relies on."""
    if not isinstance(document, dict):
        return [f"{name}: not a YAML mapping"]
    known = set(known)
    problems = [f"{name}: unknown key {key}" for key in document if key not in known]
    if production and document.get("auto_snapshot") is not True:
        problems.append(f"{name}: keep auto_snapshot on in production")
    if production and document.get("endpoint_snitch") == "SimpleSnitch":
        problems.append(f"{name}: NetworkTopologyStrategy needs a topology snitch")
    return problems


# ---------------------------------------------------------------- files


def check_deploy(folder: Path = DEPLOY_DIR) -> list[str]:
    """Every problem of the checked-in deployment configs."""
    servers = {
        path.name: parse_properties(path.read_text())
        for path in sorted((folder / "kafka").glob("*.properties"))
    }
    problems = [p for name, props in servers.items() for p in check_server(name, props)]
    problems += check_quorum(servers)
    shared = parse_env((folder / "env" / "common.env").read_text())
    for path in sorted((folder / "env").glob("*.env")):
        problems += check_env(path.name, parse_env(path.read_text()), shared)
    cassandra = folder / "cassandra" / "cassandra.yaml"
    problems += check_cassandra(
        str(cassandra.relative_to(folder.parent.parent)),
        yaml.safe_load(cassandra.read_text()),
        known_cassandra_keys(),
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check the deployment configs; 1 if any problem."""
    parser = argparse.ArgumentParser(prog="python -m infra.deploy_check")
    parser.add_argument("--refresh-keys", action="store_true")
    args = parser.parse_args(argv)
    if args.refresh_keys:
        jar = cassandra_jar()
        if jar is None:
            print("no cassandra-all jar fetched yet", file=sys.stderr)
            return 1
        CASSANDRA_KEYS.write_text("\n".join(sorted(keys_in_jar(jar))) + "\n")
        print(f"wrote {CASSANDRA_KEYS} from {jar}")
    problems = check_deploy()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
