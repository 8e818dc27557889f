"""Serving the app so that every error, even aiohttp's own, is problem+json.

aiohttp answers a request it cannot parse (a malformed request line, a header line
above ``max_field_size``) in its connection handler, before any middleware, in
plain text. ``ProblemRequestHandler`` renders those answers as problem+json;
``ProblemAppRunner`` makes the server build its connections with it, and puts the
app's ``SHORTCUT`` route, if any, ahead of its router. Header limits
are raised (``HANDLER_ARGS``) so that our own validation, not the parser, answers
a merely long header such as a 10 kB Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_protocol import RequestHandler

from commands.errors import InfrastructureError
from gateway.deps import SHORTCUT, Shortcut
from gateway.problems import HttpProblem, problem_response

logger = logging.getLogger(__name__)

MAX_HEADER_LINE_BYTES: Final = 16 * 1024
HANDLER_ARGS: Final[dict[str, Any]] = {
    "max_line_size": MAX_HEADER_LINE_BYTES,
    "max_field_size": MAX_HEADER_LINE_BYTES,
}
"""Connection settings: request line and each header up to 16 KiB (aiohttp: 8 KiB)."""


class ProblemRequestHandler(RequestHandler):
    """A connection handler that answers its own errors as problem+json."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The problem for a request aiohttp could not parse or serve."""
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was sent already; cannot send another")
        name = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
        if status >= 500:
            logger.error("request failed in the server", exc_info=exc)
            problem = HttpProblem("internal-error", "an unexpected error occurred")
        else:
            # The parser's message may quote a header (a token, a key): not logged.
            logger.debug("unparseable request", extra={"error": name})
            problem = HttpProblem("bad-request", f"the request is not valid ({name})")
        response = problem_response(problem, None)
        response.force_close()
        return response


class ProblemServer(web.Server):
    """A low-level server whose connections use ``ProblemRequestHandler``."""

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An ``AppRunner`` that serves the app through a ``ProblemServer``."""

    async def _make_server(self) -> web.Server:
        # Relies on aiohttp internals (Server._kwargs); a test serves a raw request.
        server = await super()._make_server()
        handler = server.request_handler
        shortcut = self.app.get(SHORTCUT)
        if shortcut is not None:
            handler = _shortcut_first(shortcut, handler)
        return ProblemServer(
            handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **server._kwargs,
        )


RequestHandlerFunc = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _shortcut_first(
    shortcut: Shortcut, routed: RequestHandlerFunc
) -> RequestHandlerFunc:
    """A request handler that tries the shortcut, then the app's router."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        # The app's request factory makes a web.Request, not routed yet.
        answer = shortcut(cast(web.Request, request))
        if answer is None:
            return await routed(request)
        return await answer

    return handle


class ProblemTestServer(TestServer):
    """aiohttp's ``TestServer`` on a ``ProblemAppRunner``, for tests."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return ProblemAppRunner(self.app, **kwargs)


class PortUnavailable(InfrastructureError):
    """The address to serve on cannot be bound (taken, or not this host's)."""


async def serve_until_signalled(
    app: web.Application, host: str, port: int, backlog: int = 128
) -> None:
    """Serve the app on host:port until SIGINT or SIGTERM, then clean up.

    ``backlog`` is the listen queue: a spike of new connections beyond it is
    dropped by the kernel and retried by clients after 1, 2, 4... s (the kernel
    caps it at ``net.core.somaxconn``).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = ProblemAppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, backlog=backlog).start()
        except OSError as exc:  # taken, or not an address of this host
            raise PortUnavailable(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        logger.info("gateway serving", extra={"host": host, "port": port})
        await stop.wait()
    finally:
        await runner.cleanup()
