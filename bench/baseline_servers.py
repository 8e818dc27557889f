"""Start a throwaway PostgreSQL and Redis on loopback for the baselines.

Both come from Debian's packages (``postgresql``, ``redis-server``); a missing one
is installed with ``apt-get`` when we run as root, else start-up stops with the
command to run. Each server gets a fresh temporary directory and is stopped (and
the directory removed) when its context ends. PostgreSQL refuses to run as root,
so as root the cluster is initialised and run as the ``postgres`` system user
(created by the Debian package) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PG_USER = "bench"
PG_DATABASE = "bench"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
APT_TIMEOUT_SECONDS = 600.0

log = logging.getLogger(__name__)


class ServerError(RuntimeError):
    """A baseline server could not be installed, started or reached."""


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: where to connect and which version answers."""

    port: int
    version: str

    @property
    def dsn(self) -> str:
        """Connection string for the bench superuser (trust auth on loopback)."""
        return f"postgresql://{PG_USER}@{HOST}:{self.port}/{PG_DATABASE}"


@dataclass(frozen=True)
class RedisServer:
    """A running Redis: where to connect and which version answers."""

    port: int
    version: str

    @property
    def url(self) -> str:
        """Connection URL of the server."""
        return f"redis://{HOST}:{self.port}/0"


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(package: str) -> None:
    """Install one Debian package, or stop with the command a person should run."""
    if not _is_root() or shutil.which("apt-get") is None:
        raise ServerError(
            f"the Debian package {package!r} is missing and this process cannot "
            f"install it; run: sudo apt-get install -y {package}"
        )
    print(f"installing {package} from Debian's packages (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
    ):
        done = subprocess.run(
            args,
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(
                f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}"
            )


def _postgres_bin_dir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]),
    )
    return Path(candidates[-1]).parent if candidates else None


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{what} exited with {process.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1):
            return
        time.sleep(0.1)
    raise ServerError(f"{what} did not listen on {HOST}:{port} within the timeout")


def _stop(process: subprocess.Popen[bytes], what: str) -> None:
    if process.poll() is not None:
        return
    # Signal the server's own session: under runuser the server is a child.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("%s ignored SIGTERM; killing it", what)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_SECONDS)


def _as_postgres_user(args: Sequence[str]) -> list[str]:
    """The command line that runs ``args`` as a user PostgreSQL accepts."""
    if not _is_root():
        return list(args)
    return ["runuser", "-u", "postgres", "--", *args]


@contextlib.contextmanager
def postgres(port: int, max_connections: int) -> Iterator[PostgresServer]:
    """Run a fresh PostgreSQL cluster on ``127.0.0.1:port`` until the block ends.

    Durability settings stay at their defaults (fsync and synchronous_commit on),
    so a placed hold is on disk when its transaction returns.
    """
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        _apt_install("postgresql")
        bin_dir = _postgres_bin_dir()
        if bin_dir is None:
            raise ServerError("postgresql installed but no postgres binary found")
    data_root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data_dir = data_root / "data"
    if _is_root():
        shutil.chown(data_root, "postgres", "postgres")
    try:
        init = subprocess.run(
            _as_postgres_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        if init.returncode != 0:
            raise ServerError(f"initdb failed: {init.stderr[-2000:]}")
        with (data_root / "postgres.log").open("ab") as log_file:
            process = subprocess.Popen(
                _as_postgres_user(
                    [
                        str(bin_dir / "postgres"),
                        "-D",
                        str(data_dir),
                        "-c",
                        f"listen_addresses={HOST}",
                        "-c",
                        f"port={port}",
                        "-c",
                        f"unix_socket_directories={data_root}",
                        "-c",
                        f"max_connections={max_connections}",
                    ]
                ),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for_port(port, process, "postgres")
            _create_database(bin_dir, port)
            version = subprocess.run(
                [str(bin_dir / "postgres"), "--version"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            yield PostgresServer(port, version)
        finally:
            _stop(process, "postgres")
    finally:
        shutil.rmtree(data_root, ignore_errors=True)


def _create_database(bin_dir: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        done = subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                HOST,
                "-p",
                str(port),
                "-U",
                PG_USER,
                PG_DATABASE,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
        # The port opens a moment before the cluster accepts connections.
        if "starting up" not in done.stderr or time.monotonic() > deadline:
            raise ServerError(f"createdb failed: {done.stderr[-2000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def redis(port: int) -> Iterator[RedisServer]:
    """Run an in-memory Redis (no RDB, no AOF) on ``127.0.0.1:port``."""
    if shutil.which("redis-server") is None:
        _apt_install("redis-server")
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerError("redis-server installed but not on PATH")
    work_dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    try:
        with (work_dir / "redis.log").open("ab") as log_file:
            process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(work_dir),
                    "--daemonize",
                    "no",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for_port(port, process, "redis-server")
            version = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, check=True
            ).stdout.strip()
            yield RedisServer(port, version)
        finally:
            _stop(process, "redis-server")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
