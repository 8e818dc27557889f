"""The error tree of the service: every exception we raise on purpose is one of these.

::

    TicketingError                      root; catch this at process boundaries
    ├── RefusalError                    a business refusal; ``code`` is a stable string
    │   └── SeatingPlanError            a pretix plan does not import, with the ``path``
    │                                   of its first bad field (commands.seating_plan;
    │                                   code ``"invalid_seating_plan"``)
    └── InfrastructureError             the world around the core misbehaved
        └── CodecError                  a record could not be (de)serialised;
            │                           ``reason`` is a stable code, ``raw`` the bytes
            ├── UnknownSchemaError      header missing or fingerprint unknown
            │                           (reason ``"unknown_schema"``)
            └── CorruptRecordError      bytes that do not decode, trailing bytes,
                                        unknown enum symbol or union branch, empty
                                        batch, no value (reason ``"corrupt_record"``)

Refusals are expected outcomes the caller reports to a user; infrastructure errors are
failures the caller logs, counts and routes (e.g. a poison record to a dead-letter
topic, keeping ``raw``).
"""

from __future__ import annotations

from typing import ClassVar


class TicketingError(Exception):
    """Root of every error the service raises on purpose."""


class RefusalError(TicketingError):
    """A business refusal, identified by a stable ``code``."""

    code: ClassVar[str] = "refused"


class InfrastructureError(TicketingError):
    """A failure of the infrastructure around the core (log, store, codec)."""


class CodecError(InfrastructureError):
    """A record could not be encoded or decoded; keeps the original bytes."""

    reason: ClassVar[str] = "codec_error"

    def __init__(self, message: str, *, raw: bytes | None) -> None:
        super().__init__(message)
        self.raw: bytes | None = raw


class UnknownSchemaError(CodecError):
    """The schema header is missing or carries a fingerprint we do not know."""

    reason: ClassVar[str] = "unknown_schema"


class CorruptRecordError(CodecError):
    """The record's bytes do not decode to a valid, non-empty batch."""

    reason: ClassVar[str] = "corrupt_record"
