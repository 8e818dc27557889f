"""``ticketing token SHOW --buyer B --device D``: a buyer's admission token.

For trying the HTTP API by hand (README, "HTTP API"): asks the show's waiting
room for a proof-of-work puzzle, solves it, joins, polls the queue status as the
answers suggest until the buyer is admitted, takes the admission token and
prints it on standard output (progress goes to standard error). The token and
the same ``Device-Id`` go on the holds and checkouts of that buyer.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson

from gateway.pow import solve

USER_AGENT = "ticketing-token/1.0"


class TokenError(RuntimeError):
    """The waiting room refused a step; the message names the problem."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _call(
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else orjson.dumps(body)
    sent = {"User-Agent": USER_AGENT, **headers}
    if data is not None:
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError as error:
        raise TokenError(f"no answer from {url}: {error}") from error
    found: dict[str, Any] = orjson.loads(raw) if raw else {}
    return status, found


def _expect(step: str, status: int, body: dict[str, Any], wanted: int) -> None:
    if status != wanted:
        problem = str(body.get("type", "")).rsplit("/", 1)[-1] or str(status)
        detail = body.get("detail", "")
        raise TokenError(f"{step}: {status} {problem}: {detail}".rstrip(": "))


def admission_token(
    gateway: str,
    show_id: str,
    buyer_id: str,
    device_id: str,
    max_seconds: float = 600.0,
    say: Callable[[str], None] = _say,
) -> str:
    """Queue as a buyer on a device until admitted; the admission token."""
    room = f"{gateway.rstrip('/')}/v1/shows/{show_id}/waiting-room"
    device = {"Device-Id": device_id}
    status, puzzle = _call("POST", f"{room}/challenge", device, {"buyer_id": buyer_id})
    _expect("challenge", status, puzzle, 201)
    bits = int(puzzle["difficulty_bits"])
    say(f"solving a {bits}-bit puzzle")
    solution = solve(str(puzzle["challenge"]), bits)
    body = {
        "buyer_id": buyer_id,
        "challenge": puzzle["challenge"],
        "solution": solution,
    }
    status, joined = _call("POST", f"{room}/join", device, body)
    _expect("join", status, joined, 201)
    ticket = {**device, "Queue-Ticket": str(joined["queue_ticket"])}
    state, wait = str(joined["state"]), float(joined["poll_after_seconds"])
    deadline = time.monotonic() + max_seconds
    while state != "admitted":
        if time.monotonic() + wait > deadline:
            raise TokenError(f"not admitted within {max_seconds:.0f} s")
        say(
            f"waiting: position {joined.get('position')}, "
            f"about {joined.get('eta_seconds')} s; asking again in {wait:.1f} s"
        )
        time.sleep(wait)
        status, joined = _call("GET", f"{room}/status", ticket)
        _expect("status", status, joined, 200)
        state, wait = str(joined["state"]), float(joined["poll_after_seconds"])
    status, admitted = _call("POST", f"{room}/admission", ticket)
    _expect("admission", status, admitted, 201)
    return str(admitted["admission_token"])


def add_token_parser(commands: Any) -> None:
    """``token``: the arguments of the command."""
    token = commands.add_parser(
        "token", help="queue as a buyer until admitted; print the admission token"
    )
    token.add_argument("show", help="show id")
    token.add_argument("--buyer", required=True, help="buyer id")
    token.add_argument("--device", required=True, help="device id (Device-Id)")
    token.add_argument(
        "--gateway", help="gateway URL (default: this machine's gateway setting)"
    )
    token.add_argument("--max-seconds", type=float, default=600.0)


def run(args: Any, gateway: str) -> int:
    """Print the token, or one line naming what was refused."""
    try:
        print(
            admission_token(
                args.gateway or gateway,
                args.show,
                args.buyer,
                args.device,
                args.max_seconds,
            )
        )
    except TokenError as error:
        print(f"ticketing token: {error}", file=sys.stderr)
        return 1
    return 0
