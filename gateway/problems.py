"""RFC 9457 problem details: every error the gateway answers is one of these.

A problem's ``type`` is a stable relative URI, ``/problems/<slug>``, that resolves to
a short description served by ``describe_problem``. Handlers raise ``HttpProblem``;
``problem_middleware`` renders it, and also turns aiohttp's own 404, 405 and 413 and
our infrastructure errors (503 with Retry-After) into problems.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from commands.errors import InfrastructureError
from commands.model import RejectionReason

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
UNAVAILABLE_RETRY_AFTER_SECONDS: Final = 1


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
    ProblemType("show-not-found", 404, "Show not found", "No such show is on sale."),
    ProblemType(
        "hold-not-found",
        404,
        "Hold not found",
        "This gateway saw no outcome for the hold recently.",
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
        "unavailable",
        503,
        "Service unavailable",
        "The command log or a read model is unavailable; retry after Retry-After.",
    ),
    ProblemType(
        "internal-error", 500, "Internal error", "An unexpected error; retry later."
    ),
)
PROBLEM_TYPES: Final[Mapping[str, ProblemType]] = {t.slug: t for t in _TYPES}

REJECTION_SLUGS: Final[Mapping[RejectionReason, str]] = {
    RejectionReason.SOLD_OUT: "sold-out",
    RejectionReason.SEAT_UNAVAILABLE: "seat-unavailable",
    RejectionReason.UNKNOWN_SEAT: "unknown-seat",
    RejectionReason.UNKNOWN_SECTION: "unknown-section",
    RejectionReason.INVALID_REQUEST: "invalid-request",
    RejectionReason.BUYER_LIMIT_REACHED: "buyer-limit-reached",
    RejectionReason.SECTION_EXISTS: "section-exists",
    RejectionReason.UNKNOWN_HOLD: "unknown-hold",
    RejectionReason.NOT_HOLD_OWNER: "not-hold-owner",
    RejectionReason.HOLD_ENDED: "hold-ended",
    RejectionReason.PAYMENT_PENDING: "payment-pending",
    RejectionReason.SALE_CLOSED: "sale-closed",
    RejectionReason.SEAT_IN_USE: "seat-in-use",
    RejectionReason.SEAT_EXISTS: "seat-exists",
    RejectionReason.INSUFFICIENT_FREE: "insufficient-free",
}

_HTTP_SLUGS: Final[Mapping[int, str]] = {
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request: its path (``sections[2].capacity``) and why."""

    field: str
    message: str


class HttpProblem(Exception):
    """A problem to answer; raised by handlers, rendered by the middleware."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem_type = PROBLEM_TYPES[slug]
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})


def rejection_problem(reason: RejectionReason, detail: str) -> HttpProblem:
    """The problem that answers a refusal of the core."""
    return HttpProblem(REJECTION_SLUGS[reason], detail)


def problem_response(problem: HttpProblem, instance: str) -> web.Response:
    """Render a problem as ``application/problem+json``."""
    kind = problem.problem_type
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.errors:
        body["errors"] = [
            {"field": e.field, "message": e.message} for e in problem.errors
        ]
    body.update(problem.extensions)
    return web.Response(
        status=kind.status,
        body=orjson.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _from_http_exception(exc: web.HTTPException) -> HttpProblem | None:
    """The problem for one of aiohttp's own errors, or None to let it through."""
    slug = _HTTP_SLUGS.get(exc.status)
    if slug is None:
        return None
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    return HttpProblem(slug, exc.reason, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Answer every error as problem+json, translating aiohttp's and ours once."""
    try:
        return await handler(request)
    except HttpProblem as problem:
        return problem_response(problem, request.path)
    except web.HTTPException as exc:
        translated = _from_http_exception(exc)
        if translated is None:
            raise
        return problem_response(translated, request.path)
    except InfrastructureError:
        retry = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
        down = HttpProblem("unavailable", "a backing service is down", headers=retry)
        return problem_response(down, request.path)
    except Exception:
        logger.exception("unhandled error", extra={"path": request.path})
        failed = HttpProblem("internal-error", "an unexpected error occurred")
        return problem_response(failed, request.path)


async def describe_problem(request: web.Request) -> web.Response:
    """GET /problems/{slug}: a short human-readable page about a problem type."""
    kind = PROBLEM_TYPES.get(request.match_info["slug"])
    if kind is None:
        raise HttpProblem("not-found", "no such problem type")
    title, text = html.escape(kind.title), html.escape(kind.description)
    page = (
        f"<!doctype html><title>{title}</title><h1>{title}</h1>"
        f"<p>HTTP {kind.status}. {text}</p>"
    )
    return web.Response(text=page, content_type="text/html")
