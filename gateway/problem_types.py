"""The catalogue of problem types: slug, status, title and description of each.

A problem's ``type`` is ``/problems/<slug>``; ``REJECTION_SLUGS`` maps each refusal
of the core to its type, so a new ``RejectionReason`` needs a line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from commands.model import RejectionReason


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its slug, HTTP status, title and a longer description."""

    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        """The stable ``type`` URI of the problem."""
        return f"/problems/{self.slug}"


_TYPES: Final = (
    ProblemType("malformed-json", 400, "Malformed JSON", "The body is not JSON."),
    ProblemType(
        "missing-idempotency-key",
        400,
        "Missing idempotency key",
        "Send an Idempotency-Key header of 1 to 128 printable ASCII characters.",
    ),
    ProblemType(
        "invalid-idempotency-key",
        400,
        "Invalid idempotency key",
        "The Idempotency-Key header must be 1 to 128 printable ASCII characters.",
    ),
    ProblemType(
        "invalid-request",
        422,
        "Invalid request",
        "Fields are missing, of the wrong type or out of range; see errors.",
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        "Idempotency key reused",
        "This idempotency key was already used for a different request.",
    ),
    ProblemType("sold-out", 409, "Sold out", "Not enough places are left."),
    ProblemType("seat-unavailable", 409, "Seat unavailable", "A seat is held or sold."),
    ProblemType("unknown-seat", 409, "Unknown seat", "A seat is not in the section."),
    ProblemType(
        "unknown-section", 409, "Unknown section", "The section is not in the show."
    ),
    ProblemType(
        "buyer-limit-reached",
        409,
        "Buyer limit reached",
        "The buyer would hold more tickets than the show allows per buyer.",
    ),
    ProblemType(
        "section-exists", 409, "Section exists", "A section of the show exists."
    ),
    ProblemType("unknown-hold", 409, "Unknown hold", "No such hold in this section."),
    ProblemType("not-hold-owner", 409, "Not your hold", "The hold is another buyer's."),
    ProblemType(
        "hold-ended", 409, "Hold ended", "The hold expired, was released or sold."
    ),
    ProblemType(
        "payment-pending",
        409,
        "Payment pending",
        "The hold is checked out and awaits its payment.",
    ),
    ProblemType("sale-closed", 409, "Sale closed", "The section takes no new holds."),
    ProblemType(
        "seat-in-use", 409, "Seat in use", "A seat to withdraw is held or sold."
    ),
    ProblemType("seat-exists", 409, "Seat exists", "A seat to add is already there."),
    ProblemType(
        "insufficient-free",
        409,
        "Not enough free places",
        "Fewer places are free than the request withdraws.",
    ),
    ProblemType(
        "request-in-flight",
        409,
        "Request in flight",
        "A request with this idempotency key is still being decided; retry later.",
    ),
    ProblemType(
        "show-exists",
        409,
        "Show exists",
        "The show already has sections; nothing was created or sent.",
    ),
    ProblemType("unknown-show", 409, "Unknown show", "The show is not on sale."),
    ProblemType("show-not-found", 404, "Show not found", "No such show is on sale."),
    ProblemType(
        "hold-not-found",
        404,
        "Hold not found",
        "No hold has this id, or its outcome is not known anywhere yet.",
    ),
    ProblemType(
        "invalid-webhook",
        400,
        "Invalid webhook",
        "The webhook is not signed with the provider's secret, its signed time is "
        "outside the tolerance, or its body does not parse; nothing was applied.",
    ),
    ProblemType(
        "order-not-found",
        404,
        "Order not found",
        "The buyer has no order with this id, or it is not projected yet.",
    ),
    ProblemType(
        "unauthenticated",
        401,
        "Unauthenticated",
        "The request carries no admission token of a visitor on this device.",
    ),
    ProblemType("not-found", 404, "Not found", "No resource at this address."),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The resource does not answer this method; see the Allow header.",
    ),
    ProblemType(
        "payload-too-large", 413, "Payload too large", "The body is too large."
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "Send the body as application/json (UTF-8, charset optional).",
    ),
    ProblemType(
        "bad-request",
        400,
        "Bad request",
        "The request is not valid HTTP, or its request line or a header is too long.",
    ),
    ProblemType(
        "unavailable",
        503,
        "Service unavailable",
        "The command log or a read model is unavailable. A command that was not "
        "acknowledged may still be decided: retry after Retry-After with the same "
        "Idempotency-Key, which answers its first outcome.",
    ),
    ProblemType(
        "missing-device-id",
        400,
        "Missing device id",
        "Send a Device-Id header: 1 to 64 of [A-Za-z0-9_.-], stable per device.",
    ),
    ProblemType(
        "waiting-room-not-found",
        404,
        "No waiting room",
        "The show has no waiting room; it is not on sale through this gateway.",
    ),
    ProblemType(
        "proof-of-work-failed",
        403,
        "Proof of work failed",
        "The challenge is unknown, expired or not yours, or the solution is wrong; "
        "ask for a new challenge.",
    ),
    ProblemType(
        "invalid-queue-ticket",
        401,
        "Invalid queue ticket",
        "Send the Queue-Ticket header the join answered, unchanged and unexpired.",
    ),
    ProblemType(
        "device-limit-reached",
        403,
        "Device limit reached",
        "This device was already admitted as the most buyers a device may be in "
        "this show; buy with one of those accounts.",
    ),
    ProblemType(
        "not-admitted",
        403,
        "Not admitted yet",
        "The waiting room has not reached this queue ticket; poll its status.",
    ),
    ProblemType(
        "admission-required",
        401,
        "Admission required",
        "Holds and checkouts need the Admission-Token header the waiting room gave.",
    ),
    ProblemType(
        "invalid-admission-token",
        401,
        "Invalid admission token",
        "The admission token is malformed or its signature does not verify.",
    ),
    ProblemType(
        "admission-expired",
        401,
        "Admission expired",
        "The admission token has expired; ask the waiting room for a new one.",
    ),
    ProblemType(
        "admission-for-another-show",
        403,
        "Admission for another show",
        "The admission token was given for another show.",
    ),
    ProblemType(
        "admission-not-yours",
        403,
        "Admission not yours",
        "The admission token belongs to another buyer or device.",
    ),
    ProblemType(
        "admission-quota-exhausted",
        403,
        "Admission quota used up",
        "This admission token has placed all the holds it allows.",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many requests",
        "Too many requests from this address, device or buyer, or for the sale as "
        "a whole; retry after Retry-After.",
    ),
    ProblemType(
        "overloaded",
        503,
        "Overloaded",
        "The write path is behind; nothing was sent. Retry after Retry-After.",
    ),
    ProblemType(
        "internal-error", 500, "Internal error", "An unexpected error; retry later."
    ),
)
PROBLEM_TYPES: Final[Mapping[str, ProblemType]] = {t.slug: t for t in _TYPES}

REJECTION_SLUGS: Final[Mapping[RejectionReason, str]] = {
    reason: reason.value.replace("_", "-") for reason in RejectionReason
}
"""The problem type of each refusal of the core: its code with dashes."""
