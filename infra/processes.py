"""Start and stop the system's own processes (agent, projection, gateway).

Each runs as ``python -m infra.cli <role>`` in its own session, logging to
``infra/.run/logs/<role>.log``; a failed start names the role and shows its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from commands.errors import InfrastructureError

LOG_DIR = Path(__file__).resolve().parent / ".run" / "logs"
ROOT = Path(__file__).resolve().parent.parent


class ProcessFailed(InfrastructureError):
    """A process of ours died or did not become ready."""


@dataclass
class Managed:
    """One process of ours and where its log goes."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the log tail when the process has died."""
        if not self.alive():
            raise ProcessFailed(
                f"{self.role} exited with code {self.process.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def stop(self, timeout_seconds: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after the timeout."""
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def start(role: str, env: dict[str, str] | None = None, *args: str) -> Managed:
    """Start ``ticketing <role>`` in the background."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{role}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", role, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return Managed(role, process, log_path)


def wait_until(
    what: str, ready: Callable[[], bool], managed: list[Managed], timeout_seconds: float
) -> float:
    """Poll ``ready()`` until true; fail early if a process dies. Returns seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_seconds:
        for item in managed:
            item.check_alive()
        if ready():
            return time.monotonic() - started
        time.sleep(0.2)
    tails = "\n".join(f"--- {m.role}:\n{m.log_tail()}" for m in managed)
    raise ProcessFailed(f"{what} not ready after {timeout_seconds:.0f} s\n{tails}")
