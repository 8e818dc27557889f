"""Field checks that collect errors with their paths instead of stopping early.

Paths read like code, ``sections[2].rows[0].seats[3]``; ``bool`` is never accepted
as an integer; at most ``MAX_REPORTED_ERRORS`` errors are reported in one problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.problems import FieldError, HttpProblem

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_REPORTED_ERRORS: Final = 100
ROOT: Final = "(body)"


@dataclass(slots=True)
class Errors:
    """The field errors of one request found so far."""

    found: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        """Record one error at a path."""
        self.found.append(FieldError(path or ROOT, message))

    def raise_if_any(self) -> None:
        """Raise the 422 problem if any error was found."""
        if not self.found:
            return
        total = len(self.found)
        shown = self.found[:MAX_REPORTED_ERRORS]
        detail = f"{total} invalid field(s)"
        if total > len(shown):
            detail += f", the first {len(shown)} listed"
        raise HttpProblem("invalid-request", detail, errors=shown)


def valid_id(value: object) -> bool:
    """Whether a value is an id: 1 to 64 of ``[A-Za-z0-9_.-]``."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def object_of(value: Any, path: str, errors: Errors) -> dict[str, Any] | None:
    """The value as a JSON object, or None with an error."""
    if isinstance(value, dict):
        return value
    errors.add(path, "must be an object")
    return None


def refuse_unknown(
    obj: dict[str, Any], allowed: set[str], path: str, errors: Errors
) -> None:
    """Record an error for each field the schema does not know."""
    for name in obj.keys() - allowed:
        errors.add(join(path, name), "unknown field")


def id_field(obj: dict[str, Any], name: str, path: str, errors: Errors) -> str | None:
    """A required id field."""
    value = obj.get(name)
    if valid_id(value):
        return str(value)
    errors.add(join(path, name), "required id: 1 to 64 of [A-Za-z0-9_.-]")
    return None


def int_in(
    obj: dict[str, Any],
    name: str,
    path: str,
    errors: Errors,
    bounds: tuple[int, int],
    default: int | None = None,
) -> int | None:
    """An integer field within bounds; required unless it has a default."""
    if name not in obj and default is not None:
        return default
    value, (low, high) = obj.get(name), bounds
    if type(value) is float and value.is_integer():
        value = int(value)  # JSON has one kind of number: 2.0 is the integer 2
    if type(value) is not int or not low <= value <= high:
        errors.add(join(path, name), f"required integer from {low} to {high}")
        return None
    return value


def list_of(
    obj: dict[str, Any], name: str, path: str, errors: Errors, most: int | None = None
) -> list[Any]:
    """A required non-empty list field, at most ``most`` items long."""
    value = obj.get(name)
    if not isinstance(value, list) or not value:
        errors.add(join(path, name), "required non-empty list")
        return []
    if most is not None and len(value) > most:
        errors.add(join(path, name), f"at most {most} items")
        return []
    return value


def join(path: str, name: str) -> str:
    """The path of a field inside an object."""
    return f"{path}.{name}" if path else name
