"""Seat maps and orders from the projections: bodies, ETags and staleness.

::

    GET /v1/shows/{show_id}/sections/{section_id}/seats   seat map, cached
    GET /v1/orders/{order_id}                             one order of the buyer
    GET /v1/buyers/me/orders                              every order of the buyer

A seat map is public and hot, so it goes through a short-TTL cache with request
coalescing (``gateway.coalescing``), with a weak ETag over the seats and
``as_of`` (never the lag) and 304 answers. Orders are personal: never cached,
``Cache-Control: private, no-store``, and another buyer's order is "not found".
Every answer says how stale it may be: ``projection_lag_seconds`` in the body
and the ``Projection-Lag-Seconds`` header (on 304 too). While the read model is
down, a seat map read before is served from the cache with ``Age`` and
``Projection-Stale: true`` (``staleness_headers``); orders, never cached, answer
503 ``unavailable``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from commands.stripes import base_section_id
from gateway.admission import admitted_buyer
from gateway.availability import etag_matches
from gateway.coalescing import CoalescingCache, Served
from gateway.fields import valid_id
from gateway.http import body_response, json_response, rfc3339_ms
from gateway.problems import HttpProblem
from projections.orders import OrderView
from projections.seats import SeatStatus
from projections.side_readers import OrdersView, SeatMapView

SEAT_MAP_MAX_AGE_SECONDS: Final = 1
LAG_HEADER: Final = "Projection-Lag-Seconds"
STALE_HEADER: Final = "Projection-Stale"


class ReadSideSource(Protocol):
    """Seat maps and orders from the projections (``LiveReadModels``)."""

    async def seat_map(self, show_id: str, section_id: str) -> SeatMapView: ...

    async def order(self, order_id: str) -> tuple[OrderView | None, float | None]: ...

    async def orders_of(self, buyer_id: str) -> OrdersView: ...


class BuyerIdentity(Protocol):
    """Who makes a request: the buyer id, or None if the request does not say."""

    def buyer_of(self, request: web.Request) -> str | None: ...


class AdmissionBuyerIdentity:
    """The buyer of the request's admission token, bound to its device.

    A Buyer-Id header alone names nobody: anyone could name any buyer.
    TODO(limit): orders are readable only while the visitor holds an unexpired
    admission token (minutes); reading them later needs buyer accounts and
    sign-in, which this backend does not have yet.
    """

    def buyer_of(self, request: web.Request) -> str | None:
        return admitted_buyer(request)


@dataclass(frozen=True, slots=True)
class RenderedSeatMap:
    """A seat map answer: its body, weak ETag and lag."""

    body: bytes
    etag: str
    lag_seconds: float | None


def render_seat_map(
    show_id: str, section_id: str, view: SeatMapView
) -> RenderedSeatMap:
    """The public seat map: each known seat's status (no hold or order ids)."""
    seats = [
        {"seat_id": seat.seat_id, "status": seat.status.value}
        for seat in sorted(view.seats, key=lambda seat: seat.seat_id)
        if seat.status is not SeatStatus.WITHDRAWN
    ]
    as_of = None if view.as_of_ms is None else rfc3339_ms(view.as_of_ms)
    identity = {
        "show_id": show_id,
        "section_id": section_id,
        "seats": seats,
        "as_of": as_of,
    }
    tag = hashlib.blake2b(orjson.dumps(identity), digest_size=12).hexdigest()
    lag = view.lag_seconds
    body = orjson.dumps({**identity, "projection_lag_seconds": _rounded(lag)})
    return RenderedSeatMap(body, f'W/"{tag}"', lag)


class SeatMapCache:
    """Rendered seat maps by (show, section), cached briefly and coalesced."""

    def __init__(self, source: ReadSideSource, ttl_seconds: float) -> None:
        self._source = source
        self.cache: CoalescingCache[tuple[str, str], RenderedSeatMap] = CoalescingCache(
            self._load, ttl_seconds
        )

    async def get(self, show_id: str, section_id: str) -> RenderedSeatMap:
        """The rendered seat map of a section."""
        return await self.cache.get((show_id, section_id))

    async def serve(self, show_id: str, section_id: str) -> Served[RenderedSeatMap]:
        """The rendered seat map and, if served stale, its age in seconds."""
        return await self.cache.serve((show_id, section_id))

    async def _load(self, key: tuple[str, str]) -> RenderedSeatMap:
        show_id, section_id = key
        view = await self._source.seat_map(show_id, section_id)
        return render_seat_map(show_id, section_id, view)


SEAT_MAPS: Final = web.AppKey("seat_maps", SeatMapCache)
READ_SIDE: Final = web.AppKey("read_side", ReadSideSource)
IDENTITY: Final = web.AppKey("buyer_identity", BuyerIdentity)


def add_read_routes(
    app: web.Application,
    source: ReadSideSource,
    ttl_seconds: float,
    identity: BuyerIdentity | None = None,
) -> None:
    """Register the seat map and order routes on the gateway app."""
    app[SEAT_MAPS] = SeatMapCache(source, ttl_seconds)
    app[READ_SIDE] = source
    app[IDENTITY] = identity or AdmissionBuyerIdentity()
    app.router.add_get("/v1/shows/{show_id}/sections/{section_id}/seats", get_seat_map)
    app.router.add_get("/v1/orders/{order_id}", get_order)
    app.router.add_get("/v1/buyers/me/orders", get_my_orders)


async def get_seat_map(request: web.Request) -> web.StreamResponse:
    """GET a section's seat map, with a weak ETag and 304."""
    show_id = request.match_info["show_id"]
    section_id = request.match_info["section_id"]
    if not valid_id(show_id) or not valid_id(section_id):
        raise HttpProblem("show-not-found", "no show or section has this id")
    served = await request.app[SEAT_MAPS].serve(show_id, section_id)
    seat_map = served.value

    headers = {
        "ETag": seat_map.etag,
        "Cache-Control": f"max-age={SEAT_MAP_MAX_AGE_SECONDS}",
        **staleness_headers(seat_map.lag_seconds, served.stale_seconds),
    }
    if etag_matches(request.headers.get("If-None-Match"), seat_map.etag):
        return web.Response(status=304, headers=headers)
    return body_response(seat_map.body, headers=headers)


async def get_order(request: web.Request) -> web.Response:
    """GET one order of the buyer who asks; another buyer's is not found."""
    buyer = _buyer(request)
    order_id = request.match_info["order_id"]
    if not valid_id(order_id):
        raise HttpProblem("order-not-found", "no order has this id")
    order, lag = await request.app[READ_SIDE].order(order_id)
    if order is None or order.buyer_id != buyer:
        raise HttpProblem(
            "order-not-found",
            "no order of yours has this id (yet)",
            headers=_lag_header(lag),
        )
    body = {**order_body(order), "projection_lag_seconds": _rounded(lag)}
    return json_response(body, headers=_private(lag))


async def get_my_orders(request: web.Request) -> web.Response:
    """GET every order of the buyer who asks, ordered by order id."""
    buyer = _buyer(request)
    view = await request.app[READ_SIDE].orders_of(buyer)
    body = {
        "orders": [order_body(o) for o in sorted(view.orders, key=_order_id)],
        "projection_lag_seconds": _rounded(view.lag_seconds),
    }
    return json_response(body, headers=_private(view.lag_seconds))


def order_body(order: OrderView) -> dict[str, Any]:
    """The public view of an order."""
    return {
        "order_id": order.order_id,
        "hold_id": order.hold_id,
        "show_id": order.show_id,
        "section_id": base_section_id(order.section_id),
        "seat_ids": list(order.seat_ids),
        "quantity": order.quantity,
        "ticket_ids": list(order.ticket_ids),
        "sold_at": rfc3339_ms(order.sold_at_ms),
    }


def _buyer(request: web.Request) -> str:
    """The buyer making the request, or a 401 problem."""
    buyer = request.app[IDENTITY].buyer_of(request)
    if buyer is None:
        raise HttpProblem(
            "unauthenticated", "send the Admission-Token and Device-Id headers"
        )
    return buyer


def _order_id(order: OrderView) -> str:
    return order.order_id


def _rounded(lag: float | None) -> float | None:
    return None if lag is None else round(lag, 3)


def _lag_header(lag: float | None) -> dict[str, str]:
    return {} if lag is None else {LAG_HEADER: f"{lag:.3f}"}


def staleness_headers(
    lag_seconds: float | None, stale_seconds: float | None
) -> dict[str, str]:
    """How stale a cached read-model answer is, for its headers.

    Fresh: the lag header alone. Served stale because the read model is down:
    ``Age`` (whole seconds since it was read), ``Projection-Stale: true``, and a
    lag header that adds that age to the lag the answer had when it was read.
    """
    if stale_seconds is None:
        return _lag_header(lag_seconds)
    headers = {"Age": str(int(stale_seconds)), STALE_HEADER: "true"}
    return {**headers, **_lag_header((lag_seconds or 0.0) + stale_seconds)}


def _private(lag: float | None) -> dict[str, str]:
    return {"Cache-Control": "private, no-store", **_lag_header(lag)}


__all__: Sequence[str] = ["add_read_routes", "render_seat_map", "order_body"]
