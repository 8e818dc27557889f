"""Table-driven mapping between the core's frozen dataclasses and Avro records.

Each command and event dataclass maps to the Avro record of the same name
(``ticketing.<ClassName>``) field by field: tuples become arrays, nested
dataclasses become records, enums are written as their value (they are ``str``).
A mapping plan is built once per class from its type hints, so the hot path does
no introspection and no deep copies.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

NAMESPACE: Final = "ticketing"

T = TypeVar("T")
Converter = Callable[[Any], Any]


def avro_name(cls: type) -> str:
    """The Avro full name of a dataclass's record."""
    return f"{NAMESPACE}.{cls.__name__}"


class RecordMapping(Generic[T]):
    """How one dataclass becomes an Avro record and back."""

    def __init__(self, cls: type[T]) -> None:
        self.cls = cls
        self.name = avro_name(cls)
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        self._writers = [(n, _writer(hints[n])) for n in names]
        self._readers = [(n, _reader(hints[n])) for n in names]

    def to_avro(self, item: T) -> dict[str, Any]:
        """The Avro record of ``item``."""
        return {
            name: getattr(item, name) if write is None else write(getattr(item, name))
            for name, write in self._writers
        }

    def from_avro(self, record: dict[str, Any]) -> T:
        """The dataclass that ``record`` describes."""
        return self.cls(
            *[
                record[name] if read is None else read(record[name])
                for name, read in self._readers
            ]
        )


def _writer(hint: Any) -> Converter | None:
    """How a field's value is written, or ``None`` when it is written as it is."""
    if typing.get_origin(hint) is tuple:
        item = _writer(typing.get_args(hint)[0])
        return None if item is None else (lambda values: [item(v) for v in values])
    if dataclasses.is_dataclass(hint):
        return RecordMapping(hint).to_avro  # type: ignore[arg-type]
    return None


def _reader(hint: Any) -> Converter | None:
    """How a field's value is read back, or ``None`` when it is used as it is."""
    if typing.get_origin(hint) is tuple:
        item = _reader(typing.get_args(hint)[0])
        if item is None:
            return tuple
        return lambda values: tuple([item(v) for v in values])
    if dataclasses.is_dataclass(hint):
        return RecordMapping(hint).from_avro  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    return None


def union_mappings(union: Any) -> dict[type, RecordMapping[Any]]:
    """A mapping for every member of a union of dataclasses."""
    return {cls: RecordMapping(cls) for cls in typing.get_args(union)}
