"""Proof of work at queue join: a hashcash puzzle whose difficulty adapts.

The gateway hands out a signed challenge bound to the show, buyer and device,
with its difficulty in bits inside the signature (a client cannot lower it). The
client finds a ``solution`` such that ``sha256(challenge ":" solution)`` starts
with that many zero bits: about ``2**bits`` hashes to find, one to check.
Difficulty grows by a bit per doubling of the join rate above its target, and by
the suspicion of the visitor (several accounts from one device, no user agent).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Final

from gateway.passes import check_pass, pass_fields
from gateway.signing import Keyring

CHALLENGE_KIND: Final = "c"
MAX_SOLUTION_CHARS: Final = 32
BITS_PER_EXTRA_ACCOUNT: Final = 2
BITS_WITHOUT_USER_AGENT: Final = 2


@dataclass(frozen=True, slots=True)
class Challenge:
    """A puzzle for one visitor's join."""

    show_id: str
    buyer_id: str
    device_id: str
    nonce: str
    bits: int
    expires_at_ms: int


def sign_challenge(keyring: Keyring, challenge: Challenge) -> str:
    """The signed challenge a client solves."""
    return keyring.sign({"k": CHALLENGE_KIND, **asdict(challenge)})


def read_challenge(keyring: Keyring, text: str, show_id: str, now_ms: int) -> Challenge:
    """A genuine, unexpired challenge of this show; ``InvalidPass`` otherwise."""
    fields = pass_fields(keyring.verify(text), CHALLENGE_KIND, Challenge)
    challenge = Challenge(**fields)
    check_pass(challenge.show_id, show_id, challenge.expires_at_ms, now_ms, 0)
    return challenge


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits a digest starts with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solves(challenge_text: str, solution: str, bits: int) -> bool:
    """Whether a solution meets the difficulty for this challenge."""
    if not 0 < len(solution) <= MAX_SOLUTION_CHARS:
        return False
    digest = hashlib.sha256(f"{challenge_text}:{solution}".encode()).digest()
    return leading_zero_bits(digest) >= bits


def solve(challenge_text: str, bits: int, max_tries: int = 1 << 26) -> str:
    """A solution found by counting (what a client does); raises if none found."""
    prefix = hashlib.sha256(f"{challenge_text}:".encode())
    for counter in range(max_tries):
        candidate = format(counter, "x")
        digest = prefix.copy()
        digest.update(candidate.encode())
        if leading_zero_bits(digest.digest()) >= bits:
            return candidate
    raise ValueError(f"no solution in {max_tries} tries")


def difficulty_bits(
    base_bits: int,
    max_bits: int,
    joins_per_second: float,
    target_joins_per_second: float,
    accounts_on_device: int,
    has_user_agent: bool,
) -> int:
    """The bits for the next challenge: base, load, then the visitor's signals."""
    load = 0
    if target_joins_per_second > 0 and joins_per_second > target_joins_per_second:
        load = math.ceil(math.log2(joins_per_second / target_joins_per_second))
    suspicion = BITS_PER_EXTRA_ACCOUNT * max(0, accounts_on_device - 1)
    if not has_user_agent:
        suspicion += BITS_WITHOUT_USER_AGENT
    return min(max_bits, base_bits + load + suspicion)
