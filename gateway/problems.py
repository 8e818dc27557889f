"""RFC 9457 problem details: every error the gateway answers is one of these.

A problem's ``type`` is a stable relative URI, ``/problems/<slug>``, that resolves to
a short description served by ``describe_problem`` (the catalogue is in
``gateway.problem_types``). Handlers raise ``HttpProblem``;
``problem_middleware`` renders it, and also turns aiohttp's own 404, 405 and 413 and
our infrastructure errors (503 with Retry-After) into problems.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from commands.errors import InfrastructureError
from commands.model import RejectionReason
from gateway.breaker import CircuitOpen
from gateway.problem_types import PROBLEM_TYPES, REJECTION_SLUGS, ProblemType

__all__ = [
    "PROBLEM_TYPES",
    "REJECTION_SLUGS",
    "FieldError",
    "HttpProblem",
    "ProblemType",
    "describe_problem",
    "problem_middleware",
    "problem_response",
    "rejection_problem",
]

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
UNAVAILABLE_RETRY_AFTER_SECONDS: Final = 1


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


class RefusalLog:
    """Logs refused requests per problem type, at most once per interval each.

    A spike refuses thousands of requests a second (rate limits, bad tokens); a line
    each would cost more than the refusals. The first refusal of a type is logged
    at once, the rest of its interval as a count with the next line. Lines carry
    the type, status and route, never the request's ids, tokens or body.
    """

    def __init__(
        self,
        interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, slug: str, status: int, route: str) -> bool:
        """Count one refusal; True when it was logged (with the suppressed count)."""
        now = self._clock()
        last = self._last_logged.get(slug)
        if last is not None and now - last < self.interval_seconds:
            self._suppressed[slug] = self._suppressed.get(slug, 0) + 1
            return False
        self._last_logged[slug] = now
        logger.info(
            "request refused",
            extra={
                "problem": slug,
                "status": status,
                "route": route,
                "refused_since_last_line": self._suppressed.pop(slug, 0),
            },
        )
        return True


REFUSALS: Final = RefusalLog()
"""The gateway's refusal log (one per process)."""


def _route_of(request: web.Request) -> str:
    """The route template of a request (no ids), or ``unmatched``.

    Requests served ahead of the router (the queue poll shortcut) have no match
    yet: they are named by their method only.
    """
    try:
        match: web.UrlMappingMatchInfo | None = request.match_info
    except AssertionError:  # aiohttp asserts a resolved route
        match = None
    resource = match.route.resource if match is not None else None
    if resource is None:
        return f"{request.method} unmatched"
    return f"{request.method} {resource.canonical}"


PROBLEM_TYPE: Final = web.ResponseKey("problem_type", str)
"""The slug of the problem a response answers (read by ``gateway.metrics``)."""


def rejection_problem(reason: RejectionReason, detail: str) -> HttpProblem:
    """The problem that answers a refusal of the core."""
    return HttpProblem(REJECTION_SLUGS[reason], detail)


def problem_response(problem: HttpProblem, instance: str | None) -> web.Response:
    """Render a problem as ``application/problem+json`` (``instance``: the path)."""
    kind = problem.problem_type
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": problem.detail,
    }
    if instance is not None:
        body["instance"] = instance
    if problem.errors:
        body["errors"] = [
            {"field": e.field, "message": e.message} for e in problem.errors
        ]
    body.update(problem.extensions)
    response = web.Response(
        status=kind.status,
        body=orjson.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )
    response[PROBLEM_TYPE] = kind.slug  # the reason label of shed requests
    return response


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
        return _refused(request, problem)
    except web.HTTPException as exc:
        translated = _from_http_exception(exc)
        if translated is None:
            raise
        return _refused(request, translated)
    except InfrastructureError as exc:
        seconds = UNAVAILABLE_RETRY_AFTER_SECONDS
        if isinstance(exc, CircuitOpen):
            seconds = exc.retry_after_seconds
        retry = {"Retry-After": str(seconds)}
        down = HttpProblem("unavailable", "a backing service is down", headers=retry)
        return _refused(request, down)
    except Exception:
        logger.exception("unhandled error", extra={"route": _route_of(request)})
        failed = HttpProblem("internal-error", "an unexpected error occurred")
        return problem_response(failed, request.path)


def _refused(request: web.Request, problem: HttpProblem) -> web.Response:
    kind = problem.problem_type
    REFUSALS.note(kind.slug, kind.status, _route_of(request))
    return problem_response(problem, request.path)


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
