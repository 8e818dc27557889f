"""Parse request bodies into the core's types, collecting every field error.

Malformed JSON is a 400 problem; anything else wrong is one 422 problem listing
every invalid field with its path (see ``gateway.fields``). Unknown fields are
refused: a typo would otherwise fall back to a default silently. Show bodies are
parsed in ``gateway.show_validation`` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from gateway.fields import Errors, int_in, list_of, object_of, refuse_unknown
from gateway.problems import HttpProblem
from gateway.show_validation import ShowRequest, parse_show

__all__ = [
    "BUYER_ID_MAX_CHARS",
    "PRINTABLE_PATTERN",
    "HoldRequest",
    "ShowRequest",
    "parse_buyer",
    "parse_hold",
    "parse_json",
    "parse_show",
]

SEAT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,129}")
PRINTABLE_PATTERN: Final = re.compile(r"[\x20-\x7e]+")
BUYER_ID_MAX_CHARS: Final = 128
MAX_PLACES_PER_HOLD: Final = 100

_HOLD_FIELDS: Final = {"buyer_id", "seat_ids", "quantity"}
_BUYER_FIELDS: Final = {"buyer_id"}


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A valid request to hold named seats or a quantity of GA places."""

    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int


def parse_json(body: bytes) -> Any:
    """Decode a JSON body, raising the 400 malformed-json problem if it is not."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpProblem("malformed-json", f"body is not JSON: {exc.msg}") from exc


def parse_hold(data: Any) -> HoldRequest:
    """Validate a POST hold body: a buyer and seat_ids or a quantity."""
    errors = Errors()
    obj = object_of(data, "", errors)
    if obj is None:
        errors.raise_if_any()
    assert obj is not None

    refuse_unknown(obj, _HOLD_FIELDS, "", errors)
    buyer_id = _buyer_id(obj, errors)
    seat_ids, quantity = _places(obj, errors)
    errors.raise_if_any()

    assert buyer_id is not None
    return HoldRequest(buyer_id, seat_ids, quantity)


def parse_buyer(data: Any) -> str:
    """Validate a body that only names the buyer, ``{"buyer_id": ...}``."""
    errors = Errors()
    obj = object_of(data, "", errors)
    if obj is None:
        errors.raise_if_any()
    assert obj is not None

    refuse_unknown(obj, _BUYER_FIELDS, "", errors)
    buyer_id = _buyer_id(obj, errors)
    errors.raise_if_any()

    assert buyer_id is not None
    return buyer_id


def _buyer_id(obj: dict[str, Any], errors: Errors) -> str | None:
    """The required buyer id: 1 to 128 printable characters."""
    buyer_id = obj.get("buyer_id")
    if not isinstance(buyer_id, str):
        errors.add("buyer_id", "required string")
        return None
    if not 1 <= len(buyer_id) <= BUYER_ID_MAX_CHARS or not buyer_id.isprintable():
        errors.add("buyer_id", f"1 to {BUYER_ID_MAX_CHARS} printable characters")
        return None
    return buyer_id


def _places(obj: dict[str, Any], errors: Errors) -> tuple[tuple[str, ...], int]:
    """The seats or the quantity of a hold: exactly one of them."""
    has_seats, has_quantity = "seat_ids" in obj, "quantity" in obj
    if has_seats and has_quantity:
        errors.add("quantity", "give seat_ids or quantity, not both")
        return (), 0
    if has_quantity:
        return (), int_in(obj, "quantity", "", errors, (1, MAX_PLACES_PER_HOLD)) or 0
    if not has_seats:
        errors.add("seat_ids", "give seat_ids (reserved) or quantity (GA)")
        return (), 0
    seats = list_of(obj, "seat_ids", "", errors, MAX_PLACES_PER_HOLD)
    found: list[str] = []
    for index, seat in enumerate(seats):
        path = f"seat_ids[{index}]"
        if not isinstance(seat, str) or not SEAT_ID_PATTERN.fullmatch(seat):
            errors.add(path, "a seat id: <row>-<number>")
        elif seat in found:
            errors.add(path, f"seat {seat} is named twice")
        else:
            found.append(seat)
    return tuple(found), 0
