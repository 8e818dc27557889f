"""Typed settings built once at start-up from ``TICKETING_*`` environment variables.

Each setting has a default, its unit in its name and a one-line description. An
unknown ``TICKETING_*`` variable or a value that does not parse stops start-up with a
message naming it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "TICKETING_"


class SettingsError(ValueError):
    """A ``TICKETING_*`` variable is unknown or its value is invalid."""


def _setting(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process of the system can be tuned with."""

    log_level: str = _setting("INFO", "Lowest level of log lines written.")
    kafka_host: str = _setting(
        "127.0.0.1", "Kafka broker host(s), comma-separated; all use the same port."
    )
    kafka_port: int = _setting(9092, "Kafka broker port; the controller uses +1.")
    kafka_replication_factor: int = _setting(
        1, "Replicas of every topic created here (3 on a cluster)."
    )
    kafka_min_insync_replicas: int = _setting(
        1, "Replicas that must have a record before it counts as written (2)."
    )
    cassandra_host: str = _setting(
        "127.0.0.1", "Cassandra contact point(s), comma-separated; same port."
    )
    cassandra_replication_factor: int = _setting(
        1, "Replicas of the read-model keyspace (per data centre if one is named)."
    )
    cassandra_consistency: str = _setting(
        "LOCAL_ONE", "Consistency level of reads and writes (LOCAL_QUORUM on RF 3)."
    )
    cassandra_serial_consistency: str = _setting(
        "SERIAL", "Consistency level of the waiting room's compare-and-set writes."
    )
    cassandra_datacenter: str = _setting(
        "",
        "Data centre of NetworkTopologyStrategy for the keyspace; empty: "
        "SimpleStrategy.",
    )
    cassandra_storage_port: int = _setting(7000, "Cassandra inter-node port.")
    cassandra_jmx_port: int = _setting(7199, "Cassandra JMX port; 0 turns JMX off.")
    kafka_heap: str = _setting("512m", "Kafka JVM heap (-Xms and -Xmx).")
    cassandra_heap_min: str = _setting("512m", "Cassandra JVM initial heap.")
    cassandra_heap_max: str = _setting("1g", "Cassandra JVM maximum heap.")
    kafka_start_timeout_seconds: float = _setting(
        90.0, "How long to wait for Kafka to answer after launch."
    )
    cassandra_start_timeout_seconds: float = _setting(
        240.0, "How long to wait for Cassandra to answer CQL after launch."
    )
    service_stop_timeout_seconds: float = _setting(
        30.0, "Grace period after SIGTERM before a service is killed."
    )
    java: str = _setting("", "Java binary for the services; empty: find Java 17.")
    cassandra_port: int = _setting(9042, "Cassandra native protocol port.")
    cassandra_keyspace: str = _setting("ticketing", "Keyspace of the read models.")
    command_partitions: int = _setting(8, "Partitions of the command and event topics.")
    topic_prefix: str = _setting("ticketing", "Prefix of every topic name.")
    agent_id: str = _setting("ticketing-inventory", "Faust app id (consumer group).")
    agent_data_dir: str = _setting(
        "infra/.run/agent", "Folder of the agent's local RocksDB tables."
    )
    agent_web_port: int = _setting(
        6066,
        "Port of the agent's Prometheus metrics; the N-th agent on a host "
        "(folder worker-N) serves on this port + N.",
    )
    agent_commit_interval_seconds: float = _setting(
        0.1, "How often the agent commits its transaction."
    )
    agent_session_timeout_seconds: float = _setting(
        30.0,
        "How long a killed worker keeps its partitions before the group moves "
        "them (Kafka session timeout; the broker allows 6-300 s).",
    )
    agent_heartbeat_interval_seconds: float = _setting(
        1.0, "How often a worker tells the group it is alive (under 1/3 of the above)."
    )
    agent_rebalance_timeout_seconds: float = _setting(
        30.0, "How long the group waits for every worker to rejoin a rebalance."
    )
    agent_standby_replicas: int = _setting(
        1,
        "Standby copies of each table partition other workers keep, so a moved "
        "partition resumes without replaying its whole changelog.",
    )
    tick_interval_seconds: float = _setting(
        1.0, "How often the agent puts a Tick on each partition it owns."
    )
    agent_batch_max_commands: int = _setting(
        2000, "Most commands the agent decides in one batch."
    )
    agent_batch_window_seconds: float = _setting(
        0.005, "Longest wait to fill a batch of commands."
    )
    gateway_host: str = _setting("127.0.0.1", "Address the gateway listens on.")
    gateway_port: int = _setting(8080, "Port the gateway listens on.")
    gateway_listen_backlog: int = _setting(
        4096,
        "Connections the kernel queues for the gateway before it accepts them (a "
        "spike of new connections past it waits 1-3 s for SYN retries); capped "
        "by net.core.somaxconn.",
    )
    gateway_reply_timeout_seconds: float = _setting(
        2.0, "How long a hold request waits for its outcome before a 202."
    )
    availability_cache_ttl_seconds: float = _setting(
        0.5, "How long the gateway serves an availability answer from cache."
    )
    gateway_signing_keys: str = _setting(
        "dev:ticketing-dev-signing-key-change-me",
        "Keys signing queue tickets and admission tokens: id:secret,...; the first "
        "signs, all verify (rotation).",
    )
    gateway_queue_secret: str = _setting(
        "ticketing-dev-queue-secret-change-me",
        "Secret of the early-arrival shuffle and of ticket and token ids.",
    )
    gateway_admit_per_second: float = _setting(
        400.0, "Default waiting-room outflow (buyers admitted per second)."
    )
    gateway_room_refresh_seconds: float = _setting(
        0.5, "How often an instance reloads and pumps the rooms it serves."
    )
    gateway_queue_ticket_ttl_seconds: float = _setting(
        86400.0, "How long a queue ticket stays valid."
    )
    gateway_admission_ttl_seconds: float = _setting(
        600.0, "How long an admission token stays valid."
    )
    gateway_pass_leeway_seconds: float = _setting(
        5.0, "Clock skew allowed when checking a pass's expiry."
    )
    gateway_hold_quota: int = _setting(
        4, "Holds one admission token (one buyer in one show) may place."
    )
    gateway_admissions_per_device: int = _setting(
        2,
        "Buyers one device may be admitted as, per show; more accounts on one "
        "device get 403 device-limit-reached (counted in the shared room store).",
    )
    gateway_pow_base_bits: int = _setting(
        10, "Proof-of-work difficulty at queue join under no load (bits)."
    )
    gateway_pow_max_bits: int = _setting(22, "Highest proof-of-work difficulty (bits).")
    gateway_pow_target_joins_per_second: float = _setting(
        500.0, "Joins per second per instance above which difficulty grows."
    )
    gateway_ip_requests_per_second: float = _setting(
        50.0, "Refill of the per-IP bucket (requests per second)."
    )
    gateway_ip_burst: int = _setting(100, "Capacity of the per-IP bucket.")
    gateway_device_requests_per_second: float = _setting(
        5.0, "Refill of the per-device bucket (requests per second)."
    )
    gateway_device_burst: int = _setting(20, "Capacity of the per-device bucket.")
    gateway_buyer_commands_per_second: float = _setting(
        1.0, "Refill of the per-buyer bucket on holds and checkouts, all instances."
    )
    gateway_buyer_burst: int = _setting(
        5, "Capacity of the per-buyer bucket on holds and checkouts."
    )
    gateway_global_commands_per_second: float = _setting(
        2000.0, "Refill of this instance's bucket in front of the command topic."
    )
    gateway_global_burst: int = _setting(
        2000, "Capacity of this instance's bucket in front of the command topic."
    )
    gateway_lag_target_seconds: float = _setting(
        0.5, "Write-path lag up to which the waiting room lets in its full outflow."
    )
    gateway_lag_shed_seconds: float = _setting(
        5.0, "Write-path lag above which holds and checkouts are shed with 503."
    )
    projection_group: str = _setting(
        "ticketing-projection", "Consumer group of the projection worker."
    )
    provider_host: str = _setting(
        "127.0.0.1", "Address of the (simulated) payment provider."
    )
    provider_port: int = _setting(8090, "Port of the (simulated) payment provider.")
    provider_timeout_seconds: float = _setting(
        2.0, "How long one provider call may take before it counts as failed."
    )
    provider_max_attempts: int = _setting(
        5, "Failed calls of one request before it goes to dead letters."
    )
    provider_backoff_base_seconds: float = _setting(
        0.2, "Longest wait before the first retry of a provider call (jittered)."
    )
    provider_backoff_max_seconds: float = _setting(
        5.0, "Longest wait before any retry of a provider call."
    )
    provider_breaker_failures: int = _setting(
        5, "Failed provider calls in a row that open its circuit breaker."
    )
    provider_breaker_open_seconds: float = _setting(
        5.0, "How long an open provider breaker refuses calls before a probe."
    )
    payment_currency: str = _setting("EUR", "Currency of every price and payment.")
    payments_group: str = _setting(
        "ticketing-payments", "Consumer group of the payments worker."
    )
    payments_concurrency: int = _setting(
        32, "Provider calls the payments worker makes at once."
    )
    payment_poll_interval_seconds: float = _setting(
        5.0, "How often the payments worker polls payments still processing."
    )
    webhook_secret: str = _setting(
        "simulated-provider-secret", "Shared secret of webhook signatures (secret)."
    )
    webhook_tolerance_seconds: float = _setting(
        300.0, "How far a webhook's signed time may be from now."
    )
    webhook_url: str = _setting(
        "", "Where the simulated provider posts webhooks; empty: this gateway."
    )

    metrics_host: str = _setting(
        "127.0.0.1", "Address the workers' and the audit's metrics listen on."
    )
    projection_metrics_port: int = _setting(
        9102, "Port of the projection worker's Prometheus metrics."
    )
    payments_metrics_port: int = _setting(
        9103, "Port of the payments worker's Prometheus metrics."
    )
    audit_metrics_port: int = _setting(
        9104, "Port of the audit's Prometheus metrics (the invariant checker)."
    )
    audit_paid_deadline_seconds: float = _setting(
        900.0, "How long a paid hold may stay without tickets or refund (audit)."
    )

    def __post_init__(self) -> None:
        """Refuse replication settings no topic or keyspace could be created with."""
        if self.kafka_replication_factor < 1 or self.cassandra_replication_factor < 1:
            raise SettingsError("replication factors must be at least 1")
        if not 1 <= self.kafka_min_insync_replicas <= self.kafka_replication_factor:
            raise SettingsError(
                "TICKETING_KAFKA_MIN_INSYNC_REPLICAS must be between 1 and "
                "TICKETING_KAFKA_REPLICATION_FACTOR"
            )

    @property
    def kafka_hosts(self) -> list[str]:
        """Every Kafka broker host named in ``TICKETING_KAFKA_HOST``."""
        return _hosts(self.kafka_host)

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port[,host:port...]`` of the Kafka bootstrap servers."""
        return ",".join(f"{host}:{self.kafka_port}" for host in self.kafka_hosts)

    @property
    def cassandra_hosts(self) -> list[str]:
        """Every Cassandra contact point named in ``TICKETING_CASSANDRA_HOST``."""
        return _hosts(self.cassandra_host)

    @property
    def provider_url(self) -> str:
        """Base URL of the (simulated) payment provider."""
        return f"http://{self.provider_host}:{self.provider_port}"

    @property
    def webhook_target(self) -> str:
        """Where the simulated provider posts webhooks."""
        return (
            self.webhook_url
            or f"http://{self.gateway_host}:{self.gateway_port}/v1/payments/webhook"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TICKETING_*`` variables, refusing unknown ones."""
        environ = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, raw in environ.items():
            if not name.startswith(PREFIX):
                continue
            key = name.removeprefix(PREFIX).lower()
            if key not in fields:
                raise SettingsError(f"unknown setting {name}")
            values[key] = _parse(name, raw, type(fields[key].default))
        return cls(**values)

    def default_secrets(self) -> list[str]:
        """The variables of secrets still at their published default value.

        The defaults are in the source, so with them anyone can sign admission
        tokens or payment webhooks: fine on a laptop, never in a sale.
        """
        return [
            PREFIX + f.name.upper()
            for f in dataclasses.fields(self)
            if f.name.endswith(SECRET_SUFFIXES) and getattr(self, f.name) == f.default
        ]

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(variable, value in effect, default, description) for every setting."""
        return [
            (
                PREFIX + f.name.upper(),
                _shown(f.name, getattr(self, f.name)),
                _shown(f.name, f.default),
                f.metadata["description"],
            )
            for f in dataclasses.fields(self)
        ]


SECRET_SUFFIXES = ("_secret", "_keys")
MAX_PORT = 65_535


def _hosts(text: str) -> list[str]:
    """The hosts of a comma-separated list, blanks dropped."""
    return [host.strip() for host in text.split(",") if host.strip()]


def _shown(name: str, value: Any) -> str:
    """A setting's value as printed: secrets and keys never are."""
    return "(hidden)" if name.endswith(SECRET_SUFFIXES) else str(value)


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        value = kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc
    if isinstance(value, int | float) and value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    if name.endswith("_PORT") and isinstance(value, int) and value > MAX_PORT:
        raise SettingsError(f"{name}={raw!r} is not a port (0 to {MAX_PORT})")
    return value
