"""The error tree of the service: every exception we raise on purpose is one of these.

::

    TicketingError                      root; catch this at process boundaries
    ├── RefusalError                    a business refusal; ``code`` is a stable string
    │   ├── SeatingPlanError            a pretix plan does not import, with the ``path``
    │   │                               of its first bad field (commands.seating_plan;
    │   │                               code ``"invalid_seating_plan"``)
    │   └── WebhookRefused              a webhook is not signed by the provider, is
    │                                   too old, or does not parse; ``reason`` says
    │                                   which (code ``"invalid_webhook"``)
    └── InfrastructureError             the world around the core misbehaved
        ├── CodecError                  a record could not be (de)serialised;
        │   │                           ``reason`` is a stable code, ``raw`` the bytes
        │   ├── UnknownSchemaError      header missing or fingerprint unknown
        │   │                           (reason ``"unknown_schema"``)
        │   └── CorruptRecordError      bytes that do not decode, trailing bytes,
        │                               unknown enum symbol or union branch, empty
        │                               batch, no value (reason ``"corrupt_record"``)
        └── ProviderError               a call to a payment provider failed
            ├── ProviderUnavailable     timeout, refused connection, 5xx or 429:
            │   │                       the same call may succeed later
            │   └── ProviderCircuitOpen the provider's breaker refuses calls for
            │                           ``retry_after_seconds``; nothing was sent
            └── ProviderRejected        the provider refused the request (4xx):
                                        sending it again changes nothing

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


class WebhookRefused(RefusalError):
    """A webhook that is not the provider's, is replayed too late, or is unreadable."""

    code: ClassVar[str] = "invalid_webhook"

    def __init__(self, reason: str) -> None:
        super().__init__(f"webhook refused: {reason}")
        self.reason = reason


class ProviderError(InfrastructureError):
    """A call to a payment provider failed."""


class ProviderUnavailable(ProviderError):
    """The provider did not answer in time or answered 5xx/429; retry later."""


class ProviderCircuitOpen(ProviderUnavailable):
    """The provider failed lately; no call is made for ``retry_after_seconds``."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"provider breaker open; retry in {retry_after_seconds:.1f} s")
        self.retry_after_seconds = retry_after_seconds


class ProviderRejected(ProviderError):
    """The provider refused the request itself (4xx); sending it again is useless."""
