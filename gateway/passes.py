"""Queue tickets and admission tokens: what they carry and how they are checked.

Both are ``gateway.signing`` passes. A queue ticket proves a place in a show's
waiting room; an admission token lets its visitor (buyer and device) place up to
``hold_quota`` holds in that show until it expires. Ids are secret, stable
functions of (show, buyer), so joining again or being admitted again gives the
same ticket (the same place before opening) and the same token id (the same
quota): opening sessions gains a visitor nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Final

from gateway.signing import InvalidPass, Keyring, keyed_digest

TICKET_KIND: Final = "q"
TOKEN_KIND: Final = "a"
ID_HEX_CHARS: Final = 32
VERIFIED_TICKETS: Final = 200_000


class ExpiredPass(InvalidPass):
    """A genuine pass past its expiry (beyond the leeway)."""


class WrongPass(InvalidPass):
    """A genuine pass presented for another show, buyer or device."""


@dataclass(frozen=True, slots=True)
class QueueTicket:
    """A place in a show's waiting room."""

    ticket_id: str
    show_id: str
    buyer_id: str
    device_id: str
    joined_at_ms: int
    """Wall time of the first join; before the sale opens it only marks early."""
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class AdmissionToken:
    """A short-lived pass from the waiting room to the sale, for one visitor."""

    token_id: str
    show_id: str
    buyer_id: str
    device_id: str
    hold_quota: int
    expires_at_ms: int


def ticket_id_for(secret: bytes, show_id: str, buyer_id: str) -> str:
    """The one queue ticket id a buyer gets in a show."""
    return keyed_digest(secret, "ticket", show_id, buyer_id).hex()[:ID_HEX_CHARS]


def token_id_for(secret: bytes, show_id: str, buyer_id: str) -> str:
    """The one admission token id (and so quota) a buyer gets in a show."""
    return keyed_digest(secret, "admission", show_id, buyer_id).hex()[:ID_HEX_CHARS]


def sign_ticket(keyring: Keyring, ticket: QueueTicket) -> str:
    """The signed queue ticket."""
    return keyring.sign({"k": TICKET_KIND, **asdict(ticket)})


def sign_token(keyring: Keyring, token: AdmissionToken) -> str:
    """The signed admission token."""
    return keyring.sign({"k": TOKEN_KIND, **asdict(token)})


def read_ticket(
    keyring: Keyring,
    text: str,
    show_id: str,
    now_ms: int,
    leeway_ms: int,
    verified: VerifiedTickets | None = None,
) -> QueueTicket:
    """A genuine, unexpired queue ticket of this show; ``InvalidPass`` otherwise.

    ``verified`` remembers tickets whose signature checked out, so a ticket
    polled again skips the HMAC and the decoding (show and expiry are checked
    every time).
    """
    ticket = verified.get(text) if verified is not None else None
    if ticket is None:
        payload = keyring.verify(text)
        ticket = QueueTicket(**pass_fields(payload, TICKET_KIND, QueueTicket))
        if verified is not None:
            verified.put(text, ticket)
    check_pass(ticket.show_id, show_id, ticket.expires_at_ms, now_ms, leeway_ms)
    return ticket


class VerifiedTickets:
    """Queue tickets whose signature this process checked, least recent evicted.

    A pure memo: the signature of a text never changes its verdict under one
    keyring, so a hit is as good as verifying again.
    """

    def __init__(self, capacity: int = VERIFIED_TICKETS) -> None:
        self._capacity = capacity
        self._tickets: OrderedDict[str, QueueTicket] = OrderedDict()

    def get(self, text: str) -> QueueTicket | None:
        """The ticket of a text verified before, if still remembered."""
        return self._tickets.get(text)

    def put(self, text: str, ticket: QueueTicket) -> None:
        """Remember a verified ticket."""
        self._tickets[text] = ticket
        if len(self._tickets) > self._capacity:
            self._tickets.popitem(last=False)


def read_token(
    keyring: Keyring,
    text: str,
    show_id: str | None,
    now_ms: int,
    leeway_ms: int,
) -> AdmissionToken:
    """A genuine, unexpired admission token of this show (``None``: of any show);
    ``InvalidPass`` else."""
    token = AdmissionToken(
        **pass_fields(keyring.verify(text), TOKEN_KIND, AdmissionToken)
    )
    wanted = token.show_id if show_id is None else show_id
    check_pass(token.show_id, wanted, token.expires_at_ms, now_ms, leeway_ms)
    return token


def pass_fields(payload: dict[str, Any], kind: str, shape: type) -> dict[str, Any]:
    """The payload's fields if it is a pass of this kind with every field typed."""
    if payload.pop("k", None) != kind:
        raise InvalidPass("another kind of pass")
    expected = shape.__annotations__
    if set(payload) != set(expected):
        raise InvalidPass("unexpected fields")
    for name, annotation in expected.items():
        value = payload[name]
        wanted = {"str": str, "int": int, "bool": bool}[str(annotation)]
        if type(value) is not wanted:
            raise InvalidPass(f"{name} is not a {annotation}")
    return payload


def check_pass(
    found_show: str, show_id: str, expires_at_ms: int, now_ms: int, leeway_ms: int
) -> None:
    if found_show != show_id:
        raise WrongPass("a pass of another show")
    if now_ms > expires_at_ms + leeway_ms:
        raise ExpiredPass("the pass has expired")
