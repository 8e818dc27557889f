"""The outcome book: futures by command id and a bounded LRU of recent outcomes."""

from __future__ import annotations

import asyncio

from commands.model import HoldExpired, HoldPlaced, HoldRejected, RejectionReason
from gateway.book import OutcomeBook, has_hold_verdict


def placed(command_id: str) -> HoldPlaced:
    """A HoldPlaced for a command."""
    return HoldPlaced(command_id, 1, command_id, "s", "a", "b", (), 2, 600_001)


def expired(command_id: str) -> HoldExpired:
    """A HoldExpired caused by a command."""
    return HoldExpired(command_id, 1, "old", "s", "a", (), 1)


async def test_expected_future_resolves_when_its_outcome_arrives() -> None:
    book = OutcomeBook()
    future = book.expect("c1")

    book.settle({"c1": [placed("c1")], "other": [placed("other")]})

    assert await asyncio.wait_for(future, 1) == [placed("c1")]


async def test_future_waits_for_the_verdict_when_only_an_expiry_arrived() -> None:
    book = OutcomeBook()
    future = book.expect("c1")

    book.settle({"c1": [expired("c1")]})
    waiting = not future.done()
    book.settle({"c1": [placed("c1")]})

    assert waiting
    assert future.result() == [expired("c1"), placed("c1")]


async def test_expect_is_resolved_at_once_when_the_outcome_is_known() -> None:
    book = OutcomeBook()
    rejected = HoldRejected("c1", 1, "s", "a", "b", RejectionReason.SOLD_OUT, "0 left")
    book.settle({"c1": [rejected]})

    future = book.expect("c1")

    assert future.done() and future.result() == [rejected]


async def test_forgotten_future_is_not_resolved_when_its_outcome_arrives() -> None:
    book = OutcomeBook()
    forgotten, kept = book.expect("c1"), book.expect("c1")

    book.forget("c1", forgotten)
    book.settle({"c1": [placed("c1")]})

    assert not forgotten.done()
    assert kept.result() == [placed("c1")]


async def test_least_recent_outcome_is_evicted_when_the_book_is_full() -> None:
    book = OutcomeBook(capacity=2)
    book.settle({"c1": [placed("c1")], "c2": [placed("c2")]})
    book.outcome("c1")

    book.settle({"c3": [placed("c3")]})

    assert book.outcome("c2") is None
    assert book.outcome("c1") == [placed("c1")]
    assert book.outcome("c3") == [placed("c3")]


def test_hold_verdict_is_missing_when_only_expiries_are_known() -> None:
    assert not has_hold_verdict([expired("c1")])
    assert has_hold_verdict([expired("c1"), placed("c1")])
