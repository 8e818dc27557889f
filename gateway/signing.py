"""Signed passes: compact HMAC-SHA256 tokens with key rotation.

A pass is ``<payload>.<key id>.<signature>``, payload and signature in unpadded
base64url; the signature covers ``<payload>.<key id>``. The ``Keyring`` signs with
its current key and verifies with any key it holds, so rotating means: add the new
key as current, keep the old one until every pass it signed has expired (queue
tickets and admission tokens live minutes, not days). Any gateway instance with
the same keyring verifies a pass without a round trip.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from commands.errors import TicketingError

MIN_SECRET_BYTES: Final = 16
KEY_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class InvalidPass(TicketingError):
    """A pass that is malformed, signed by an unknown key, or forged."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidPass("not base64url") from exc


@dataclass(frozen=True, slots=True)
class Keyring:
    """Signing keys by id; ``current`` signs, every key verifies."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current key {self.current!r} is not in the ring")
        for key_id, secret in self.keys.items():
            if not key_id or not set(key_id) <= KEY_ID_CHARS:
                raise ValueError(f"key id {key_id!r}: use [a-z0-9_-]")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"key {key_id!r} is shorter than 16 bytes")

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """A ring from ``id:secret,id:secret``; the first key is the current one."""
        keys: dict[str, bytes] = {}
        for part in spec.split(","):
            key_id, sep, secret = part.strip().partition(":")
            if not sep:
                raise ValueError("signing keys look like id:secret,id:secret")
            keys[key_id] = secret.encode()
        return cls(keys, next(iter(keys)))

    def sign(self, payload: Mapping[str, Any]) -> str:
        """The pass of a payload, signed with the current key."""
        body = _b64encode(orjson.dumps(payload))
        signed = f"{body}.{self.current}"
        return f"{signed}.{_b64encode(self._mac(self.current, signed))}"

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a genuine pass; ``InvalidPass`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidPass("a pass has three parts")
        body, key_id, signature = parts
        if key_id not in self.keys:
            raise InvalidPass("signed by an unknown key")
        # Compared as text: decoding would forgive stray characters and the
        # unused low bits of the last one, so a changed pass could still pass.
        expected = _b64encode(self._mac(key_id, f"{body}.{key_id}"))
        if not hmac.compare_digest(
            expected.encode(), signature.encode("utf-8", "replace")
        ):
            raise InvalidPass("bad signature")
        try:
            payload = orjson.loads(_b64decode(body))
        except orjson.JSONDecodeError as exc:
            raise InvalidPass("payload is not JSON") from exc
        if not isinstance(payload, dict):
            raise InvalidPass("payload is not an object")
        return payload

    def _mac(self, key_id: str, signed: str) -> bytes:
        return hmac.new(self.keys[key_id], signed.encode(), hashlib.sha256).digest()


def keyed_digest(secret: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 of NUL-joined parts: a secret, stable function of them."""
    message = "\x00".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()
