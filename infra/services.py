"""Fetch, configure, start, wait for and stop local Kafka (KRaft) and Cassandra."""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from string import Template

from infra.settings import Settings, SettingsError

HOST = "127.0.0.1"
INFRA_DIR = Path(__file__).resolve().parent
CONF_DIR = INFRA_DIR / "conf"
MAVEN_DIR = INFRA_DIR / "maven"
CACHE_DIR = INFRA_DIR / ".cache"
RUN_DIR = INFRA_DIR / ".run"
LOG_DIR = RUN_DIR / "logs"
JAVA17_FALLBACK = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")

KAFKA = "kafka"
CASSANDRA = "cassandra"
SERVICES = (CASSANDRA, KAFKA)  # start order: the slowest first
MAIN_CLASS = {
    KAFKA: "kafka.Kafka",
    CASSANDRA: "org.apache.cassandra.service.CassandraDaemon",
}
PROBE_TIMEOUT = 2.0
PROGRESS_EVERY = 10.0
LOG_TAIL_LINES = 40
MVN_TIMEOUT = 900.0

# JPMS flags from Cassandra 5.0's conf/jvm17-server.options.
CASSANDRA_JVM17_FLAGS = (
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
)  # fmt: skip


class ServiceError(RuntimeError):
    """A service could not be fetched, configured, started or reached."""


def kafka_controller_port(s: Settings) -> int:
    """Port of the KRaft controller listener."""
    return s.kafka_port + 1


def service_ports(s: Settings, service: str) -> list[tuple[int, str]]:
    """Ports a service binds, each with the setting that moves it."""
    if service == KAFKA:
        return [
            (s.kafka_port, "TICKETING_KAFKA_PORT"),
            (kafka_controller_port(s), "TICKETING_KAFKA_PORT (controller = +1)"),
        ]
    ports = [
        (s.cassandra_port, "TICKETING_CASSANDRA_PORT"),
        (s.cassandra_storage_port, "TICKETING_CASSANDRA_STORAGE_PORT"),
    ]
    if s.cassandra_jmx_port:
        ports.append((s.cassandra_jmx_port, "TICKETING_CASSANDRA_JMX_PORT"))
    return ports


def start_timeout_seconds(s: Settings, service: str) -> float:
    """Start-up timeout of a service in seconds."""
    if service == KAFKA:
        return s.kafka_start_timeout_seconds
    return s.cassandra_start_timeout_seconds


@dataclass
class Launch:
    """A JVM being waited for: its pid, start instant and log offset."""

    service: str
    pid: int
    started: float
    log_offset: int
    existing: bool = False


def settings() -> Settings:
    """Current settings from the environment."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise ServiceError(str(exc)) from exc


def kafka_bootstrap() -> str:
    """Kafka bootstrap.servers string for clients."""
    return f"{HOST}:{settings().kafka_port}"


def cassandra_contact() -> tuple[str, int]:
    """Cassandra contact point (host, native port) for clients."""
    return HOST, settings().cassandra_port


def say(message: str) -> None:
    """Print one progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- paths


def run_dir(service: str) -> Path:
    """Config and data root of a service."""
    return RUN_DIR / service


def data_dir(service: str) -> Path:
    """Data directory of a service."""
    return run_dir(service) / "data"


def pid_file(service: str) -> Path:
    """Pid file of a service."""
    return RUN_DIR / f"{service}.pid"


def log_file(service: str) -> Path:
    """Combined stdout/stderr log of a service's JVM."""
    return LOG_DIR / f"{service}.log"


def lib_dir(service: str) -> Path:
    """Directory holding a service's jars."""
    return CACHE_DIR / service / "lib"


def _stamp_file(service: str) -> Path:
    """File recording the pom hash and jar names of a fetch."""
    return CACHE_DIR / service / "stamp"


def _pom(service: str) -> Path:
    """Maven pom listing a service's jars."""
    return MAVEN_DIR / service / "pom.xml"


# ---------------------------------------------------------------- prerequisites


def _java_major(java: str) -> int | None:
    """Major version of a java binary, or None if it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _java_candidates(s: Settings) -> list[str]:
    """Java binaries to consider, most preferred first."""
    found = [s.java]
    if os.environ.get("JAVA_HOME"):
        found.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    found += [shutil.which("java") or "", str(JAVA17_FALLBACK)]
    return list(dict.fromkeys(c for c in found if c))


def find_java(s: Settings) -> str:
    """A Java 17 (else 11) binary; Cassandra 5.0 runs on nothing else."""
    versions = {c: _java_major(c) for c in _java_candidates(s)}
    for wanted in (17, 11):
        for candidate, major in versions.items():
            if major == wanted:
                return candidate
    seen = ", ".join(f"{c} -> {v or 'not runnable'}" for c, v in versions.items())
    raise ServiceError(
        "no Java 17 (or 11) found; Cassandra 5.0 needs one. "
        f"Checked: {seen or 'nothing on PATH'}. Install openjdk-17 or set "
        "TICKETING_JAVA=/path/to/java"
    )


def find_mvn() -> str:
    """The mvn binary, needed only to fetch jars."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("mvn not found on PATH; it is needed to fetch the jars")
    return mvn


def _port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def check_ports(s: Settings, services: list[str]) -> None:
    """Fail if a port of a service about to start is taken or duplicated."""
    owners: dict[int, str] = {}
    for service in SERVICES:
        for port, setting in service_ports(s, service):
            if port in owners:
                raise ServiceError(f"port {port} used twice: {owners[port]}, {setting}")
            owners[port] = setting
    for service in services:
        for port, setting in service_ports(s, service):
            if not _port_free(port):
                raise ServiceError(
                    f"{service}: port {HOST}:{port} is already in use; "
                    f"free it or move it with {setting}"
                )


# ---------------------------------------------------------------- jars


def _pom_sha(service: str) -> str:
    """sha256 of a service's pom."""
    return hashlib.sha256(_pom(service).read_bytes()).hexdigest()


def jars_cached(service: str) -> bool:
    """Whether the stamp matches the pom and every recorded jar exists."""
    stamp = _stamp_file(service)
    if not stamp.is_file():
        return False
    lines = stamp.read_text().split()
    if len(lines) < 2 or lines[0] != _pom_sha(service):
        return False
    return all((lib_dir(service) / name).is_file() for name in lines[1:])


def fetch_jars(service: str, mvn: str) -> None:
    """Copy a service's jars from Maven into the cache, atomically."""
    tmp = CACHE_DIR / service / "lib.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(_pom(service)),
        "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{service}: mvn took over {MVN_TIMEOUT:.0f} s") from None
    jars = sorted(p.name for p in tmp.glob("*.jar"))
    if proc.returncode != 0 or not jars:
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        tail = _last_lines(output, 25)
        raise ServiceError(
            f"{service}: fetching jars with mvn failed (exit {proc.returncode}, "
            f"{len(jars)} jars):\n{tail}"
        )
    shutil.rmtree(lib_dir(service), ignore_errors=True)
    tmp.rename(lib_dir(service))
    _stamp_file(service).write_text("\n".join([_pom_sha(service), *jars]) + "\n")


def ensure_jars(service: str, mvn: str | None) -> None:
    """Fetch jars unless the cache already matches the pom."""
    if jars_cached(service):
        say(f"{service}: jars cached")
        return
    say(f"{service}: fetching jars")
    fetch_jars(service, mvn or find_mvn())


def _jar(service: str, prefix: str) -> Path:
    """The single cached jar whose name starts with prefix."""
    found = sorted(lib_dir(service).glob(f"{prefix}*.jar"))
    if not found:
        raise ServiceError(f"{service}: no {prefix}*.jar in {lib_dir(service)}")
    return found[0]


# ---------------------------------------------------------------- configs


def _render(template: str, target: Path, values: Mapping[str, object]) -> None:
    """Fill a template from infra/conf into target."""
    text = (CONF_DIR / template).read_text()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(Template(text).substitute(values))


def _copy_conf(name: str, target: Path) -> None:
    """Copy a verbatim config file from infra/conf into target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONF_DIR / name, target)


def _kafka_log_dir() -> Path:
    """Kafka's log.dirs directory."""
    return data_dir(KAFKA) / "kraft-logs"


def write_kafka_config(s: Settings) -> None:
    """Write server.properties and log4j.properties for Kafka."""
    values = {
        "host": HOST,
        "port": s.kafka_port,
        "controller_port": kafka_controller_port(s),
        "log_dirs": _kafka_log_dir(),
    }
    _render("kafka-server.properties", run_dir(KAFKA) / "server.properties", values)
    _copy_conf("kafka-log4j.properties", run_dir(KAFKA) / "log4j.properties")
    _kafka_log_dir().mkdir(parents=True, exist_ok=True)


def write_cassandra_config(s: Settings) -> None:
    """Write cassandra.yaml and logback.xml for Cassandra."""
    values = {
        "host": HOST,
        "native_port": s.cassandra_port,
        "storage_port": s.cassandra_storage_port,
        "data_dir": data_dir(CASSANDRA),
    }
    _render("cassandra.yaml", run_dir(CASSANDRA) / "cassandra.yaml", values)
    _copy_conf("cassandra-logback.xml", run_dir(CASSANDRA) / "logback.xml")
    data_dir(CASSANDRA).mkdir(parents=True, exist_ok=True)


def _kafka_cluster_id() -> str:
    """A cluster id as kafka.tools.StorageTool random-uuid makes it."""
    for _ in range(100):
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
    raise ServiceError("kafka: could not make a cluster id")  # pragma: no cover


def format_kafka(java: str) -> None:
    """Format Kafka's KRaft storage once (skipped if meta.properties exists)."""
    if (_kafka_log_dir() / "meta.properties").is_file():
        return
    say("kafka: formatting storage")
    cmd = [
        java, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        f"-Dlog4j.configuration=file:{run_dir(KAFKA) / 'log4j.properties'}",
        "-cp", f"{lib_dir(KAFKA)}/*", "kafka.tools.StorageTool", "format",
        "-t", _kafka_cluster_id(), "-c", str(run_dir(KAFKA) / "server.properties"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tail = _last_lines(proc.stdout + proc.stderr, LOG_TAIL_LINES)
        raise ServiceError(f"kafka: storage format failed:\n{tail}")


# ---------------------------------------------------------------- commands


def kafka_command(java: str, s: Settings) -> list[str]:
    """JVM command line of the Kafka broker+controller."""
    return [
        java, f"-Xms{s.kafka_heap}", f"-Xmx{s.kafka_heap}",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+PerfDisableSharedMem", "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j.configuration=file:{run_dir(KAFKA) / 'log4j.properties'}",
        f"-Dkafka.logs.dir={LOG_DIR}",
        "-cp", f"{lib_dir(KAFKA)}/*",
        MAIN_CLASS[KAFKA], str(run_dir(KAFKA) / "server.properties"),
    ]  # fmt: skip


def _cassandra_jmx_flags(s: Settings) -> list[str]:
    """JMX on 127.0.0.1 only (local mode), or nothing when the port is 0."""
    if not s.cassandra_jmx_port:
        return []
    return [
        f"-Dcassandra.jmx.local.port={s.cassandra_jmx_port}",
        f"-Dcom.sun.management.jmxremote.rmi.port={s.cassandra_jmx_port}",
        f"-Djava.rmi.server.hostname={HOST}",
    ]


def cassandra_command(
    java: str,
    s: Settings,
    conf: Path | None = None,
    data: Path | None = None,
    logs: Path = LOG_DIR,
    initial_token: int = 0,
) -> list[str]:
    """JVM command line of a Cassandra daemon (the single node unless told)."""
    conf = conf or run_dir(CASSANDRA)
    data = data or data_dir(CASSANDRA)
    return [
        java, f"-Xms{s.cassandra_heap_min}", f"-Xmx{s.cassandra_heap_max}",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=300", "-XX:+ParallelRefProcEnabled",
        "-XX:+UseThreadPriorities", "-XX:+PerfDisableSharedMem",
        "-XX:+ExitOnOutOfMemoryError", "-ea", "-da:net.openhft...",
        "-Djava.net.preferIPv4Stack=true",
        *CASSANDRA_JVM17_FLAGS,
        f"-javaagent:{_jar(CASSANDRA, 'jamm-')}",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dio.netty.allocator.useCacheForAllThreads=true",
        "-Dio.netty.allocator.maxOrder=11",
        "-Dchronicle.analytics.disable=true",
        "-Dchronicle.announcer.disable=true",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dcassandra.storagedir={data}",
        f"-Dcassandra.logdir={logs}",
        f"-Dlogback.configurationFile=file://{conf / 'logback.xml'}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.load_ring_state=false",
        f"-Dcassandra.initial_token={initial_token}",
        *_cassandra_jmx_flags(s),
        "-cp", f"{lib_dir(CASSANDRA)}/*",
        MAIN_CLASS[CASSANDRA],
    ]  # fmt: skip


# ---------------------------------------------------------------- processes


# Popen objects of JVMs this process started, kept so they are never collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _read_pid(service: str) -> int | None:
    """Pid recorded in a service's pid file, if any."""
    try:
        return int(pid_file(service).read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> bytes:
    """A process's command line; retried briefly as it reads empty mid-exec."""
    cmdline = b""
    for _ in range(20):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if cmdline:
            break
        time.sleep(0.025)
    return cmdline


def pid_alive(pid: int, service: str) -> bool:
    """Whether pid is a live (non-zombie) JVM running the service's main class."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = _cmdline(pid)
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and MAIN_CLASS[service].encode() in cmdline


def running_pid(service: str) -> int | None:
    """Pid of the service's live JVM; drops a stale pid file."""
    pid = _read_pid(service)
    if pid is not None and pid_alive(pid, service):
        return pid
    pid_file(service).unlink(missing_ok=True)
    return None


def _log_size(service: str) -> int:
    """Current size of a service's log file."""
    try:
        return log_file(service).stat().st_size
    except OSError:
        return 0


def launch(service: str, cmd: list[str]) -> Launch:
    """Start a JVM detached, logging to its log file, and record its pid."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    offset = _log_size(service)
    with log_file(service).open("ab") as log:
        log.write(f"==== {service} start {time.ctime()} ====\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run_dir(service),
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    pid_file(service).write_text(f"{proc.pid}\n")
    say(f"{service}: started JVM (pid {proc.pid})")
    return Launch(service, proc.pid, time.monotonic(), offset)


def _last_lines(text: str, count: int) -> str:
    """The last count lines of text."""
    return "\n".join(text.splitlines()[-count:])


def log_tail(service: str, offset: int = 0, count: int = LOG_TAIL_LINES) -> str:
    """Last lines a service logged since offset."""
    try:
        with log_file(service).open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return _last_lines(text, count)


def _wait_gone(pid: int, service: str, timeout: float) -> bool:
    """Wait (bounded) until pid is gone; True if it went."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.2) + 2):
        if not pid_alive(pid, service):
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return not pid_alive(pid, service)


def stop(service: str, timeout: float) -> None:
    """Stop one service: SIGTERM, wait, then SIGKILL; remove its pid file."""
    pid = running_pid(service)
    if pid is None:
        say(f"{service}: not running")
        return
    say(f"{service}: stopping (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, service, timeout):
        say(f"{service}: no exit after {timeout:.0f} s, sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, service, 10.0):
            raise ServiceError(f"{service}: pid {pid} survived SIGKILL")
    pid_file(service).unlink(missing_ok=True)
    say(f"{service}: stopped")


# ---------------------------------------------------------------- probes


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a client library's logger for the duration of a probe."""
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def kafka_answers(s: Settings, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether Kafka answers a metadata request."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    client = AdminClient(
        {
            "bootstrap.servers": f"{HOST}:{s.kafka_port}",
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            "log_level": 0,  # no "connection refused" noise while it boots
        }
    )
    try:
        client.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def cassandra_answers(s: Settings, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether Cassandra answers a CQL query on system.local."""
    from cassandra.cluster import (  # type: ignore[import-untyped]
        EXEC_PROFILE_DEFAULT,
        Cluster,
        ExecutionProfile,
    )
    from cassandra.policies import (  # type: ignore[import-untyped]
        WhiteListRoundRobinPolicy,
    )

    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([HOST]),
        request_timeout=timeout,
    )
    with _quiet("cassandra"):
        cluster = Cluster(
            [HOST],
            port=s.cassandra_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=timeout,
            control_connection_timeout=timeout,
        )
        try:
            session = cluster.connect()
            session.execute("SELECT release_version FROM system.local")
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False
        finally:
            cluster.shutdown()
    return True


PROBES: dict[str, Callable[[Settings, float], bool]] = {
    KAFKA: kafka_answers,
    CASSANDRA: cassandra_answers,
}
WAITING_FOR = {KAFKA: "metadata", CASSANDRA: "CQL"}


def _failure(launch_: Launch, reason: str) -> ServiceError:
    """An error naming the service, the reason and its recent log."""
    tail = log_tail(launch_.service, launch_.log_offset)
    log = log_file(launch_.service)
    return ServiceError(
        f"{launch_.service}: {reason}; last {LOG_TAIL_LINES} lines of {log}:\n{tail}"
    )


def wait_ready(launch_: Launch, s: Settings) -> float:
    """Wait (bounded) until the service answers; return seconds since launch."""
    service, timeout = launch_.service, start_timeout_seconds(s, launch_.service)
    deadline = launch_.started + timeout
    last_report = time.monotonic()
    for _ in range(int(timeout / 0.5) + 10):
        if not pid_alive(launch_.pid, service):
            raise _failure(launch_, f"JVM (pid {launch_.pid}) exited during start-up")
        if PROBES[service](s, PROBE_TIMEOUT):
            return time.monotonic() - launch_.started
        now = time.monotonic()
        if now >= deadline:
            break
        if now - last_report >= PROGRESS_EVERY:
            elapsed = now - launch_.started
            say(f"{service}: waiting for {WAITING_FOR[service]} ({elapsed:.0f} s)")
            last_report = now
        time.sleep(min(0.5, max(0.0, deadline - now)))
    stop(service, s.service_stop_timeout_seconds)
    raise _failure(launch_, f"not answering after {timeout:.0f} s (stopped)")


# ---------------------------------------------------------------- orchestration


def _prepare_and_launch(
    service: str, s: Settings, java: str, mvn: str | None
) -> Launch:
    """Fetch jars, write configs, format storage if needed, start the JVM."""
    ensure_jars(service, mvn)
    say(f"{service}: writing config to {run_dir(service)}")
    if service == KAFKA:
        write_kafka_config(s)
        format_kafka(java)
        return launch(service, kafka_command(java, s))
    write_cassandra_config(s)
    return launch(service, cassandra_command(java, s))


@contextlib.contextmanager
def _exclusive(timeout: float) -> Iterator[None]:
    """Serialise up/down/reset across processes with a lock file."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / ".lock").open("w") as handle:
        deadline = time.monotonic() + timeout
        for attempt in range(int(timeout / 0.25) + 2):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 0:
                    say("another infra.services command is running; waiting for it")
                if time.monotonic() >= deadline:
                    raise ServiceError("infra.services lock still held") from None
                time.sleep(0.25)
        else:
            raise ServiceError("infra.services lock still held")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _adopt(service: str, pid: int) -> Launch:
    """Treat an already running JVM as a launch to wait for."""
    say(f"{service}: already running (pid {pid}), not starting another")
    return Launch(service, pid, time.monotonic(), _log_size(service), existing=True)


def _preflight(s: Settings, to_start: list[str]) -> tuple[str, str | None]:
    """Check java, mvn (if a fetch is due) and ports before starting anything."""
    java = find_java(s)
    need_fetch = [svc for svc in to_start if not jars_cached(svc)]
    mvn = find_mvn() if need_fetch else None
    check_ports(s, to_start)
    return java, mvn


def wait_concurrently(waits: Mapping[str, Callable[[], float]]) -> dict[str, float]:
    """Run every named wait at once; their seconds, or one error naming each failure."""
    results: dict[str, float] = {}
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=len(waits) or 1) as pool:
        futures = {name: pool.submit(wait) for name, wait in waits.items()}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except ServiceError as exc:
                errors.append(str(exc))
    if errors:
        raise ServiceError("\n\n".join(errors))
    return results


def _wait_all(launches: list[Launch], s: Settings) -> dict[str, float]:
    """Wait for all launches concurrently; raise one error naming every failure."""
    return wait_concurrently(
        {lc.service: partial(wait_ready, lc, s) for lc in launches}
    )


def up(reset: bool = False) -> dict[str, float]:
    """Start both services (idempotently); return start-up seconds per service."""
    s = settings()
    with _exclusive(s.cassandra_start_timeout_seconds + MVN_TIMEOUT):
        if reset:
            _stop_all(s)
            _wipe()
        return _up_locked(s)


def _up_locked(s: Settings) -> dict[str, float]:
    """Body of up(), run while holding the lock."""
    running = {svc: running_pid(svc) for svc in SERVICES}
    to_start = [svc for svc in SERVICES if running[svc] is None]
    java, mvn = _preflight(s, to_start) if to_start else ("", None)
    t0 = time.monotonic()
    launches: list[Launch] = []
    for service in SERVICES:
        pid = running[service]
        if pid is not None:
            launches.append(_adopt(service, pid))
        else:
            launches.append(_prepare_and_launch(service, s, java, mvn))
    results = _wait_all(launches, s)
    for lc in launches:
        note = " (was already running)" if lc.existing else ""
        say(f"{lc.service}: up in {results[lc.service]:.1f} s{note}")
    summary = ", ".join(f"{svc} {secs:.1f} s" for svc, secs in results.items())
    say(f"start-up: {summary}; total {time.monotonic() - t0:.1f} s")
    return results


def down() -> None:
    """Stop both services concurrently (idempotent)."""
    s = settings()
    with _exclusive(s.cassandra_start_timeout_seconds + MVN_TIMEOUT):
        _stop_all(s)


def _stop_all(s: Settings) -> None:
    """Stop both services concurrently."""
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        for future in [
            pool.submit(stop, svc, s.service_stop_timeout_seconds) for svc in SERVICES
        ]:
            future.result()


def stop_one(service: str) -> None:
    """Stop one service (SIGTERM, then SIGKILL after the stop timeout); idempotent.

    Fault tests use it to take Kafka or Cassandra away under load; the data
    directory stays, so ``start_one`` brings back the same topics and tables.
    """
    s = settings()
    with _exclusive(s.cassandra_start_timeout_seconds + MVN_TIMEOUT):
        stop(service, s.service_stop_timeout_seconds)


def start_one(service: str) -> float:
    """Start one service unless it runs, and wait until it answers; seconds taken."""
    s = settings()
    with _exclusive(s.cassandra_start_timeout_seconds + MVN_TIMEOUT):
        pid = running_pid(service)
        if pid is not None:
            return wait_ready(_adopt(service, pid), s)
        java, mvn = _preflight(s, [service])
        return wait_ready(_prepare_and_launch(service, s, java, mvn), s)


def status() -> dict[str, bool]:
    """Whether each service is running and answering."""
    s = settings()
    return {
        svc: running_pid(svc) is not None and PROBES[svc](s, PROBE_TIMEOUT)
        for svc in SERVICES
    }


def reset_data() -> None:
    """Stop both services and wipe their data directories."""
    s = settings()
    with _exclusive(s.cassandra_start_timeout_seconds + MVN_TIMEOUT):
        _stop_all(s)
        _wipe()


def _wipe() -> None:
    """Delete both services' data directories."""
    for service in SERVICES:
        shutil.rmtree(data_dir(service), ignore_errors=True)
        say(f"{service}: wiped {data_dir(service)}")


# ---------------------------------------------------------------- CLI


def _print_status() -> int:
    """Print one status line per service; 0 if all are up."""
    answers = status()
    for service, ok in answers.items():
        pid = running_pid(service)
        if ok:
            state = f"up (pid {pid})"
        elif pid is not None:
            state = f"running but not answering (pid {pid})"
        else:
            state = "down"
        print(f"{service}: {state}")
    return 0 if all(answers.values()) else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: up [--reset] | down | status | reset."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.services", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_cmd = commands.add_parser("up", help="start Kafka and Cassandra")
    up_cmd.add_argument("--reset", action="store_true", help="wipe data first")
    commands.add_parser("down", help="stop both")
    commands.add_parser("status", help="show whether each is up")
    commands.add_parser("reset", help="stop both and wipe their data")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(reset=args.reset)
        elif args.command == "down":
            down()
        elif args.command == "reset":
            reset_data()
        else:
            return _print_status()
    except ServiceError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
