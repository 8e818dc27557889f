"""The audit process flags an oversell and a paid hold left unresolved."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from commands.model import (
    Event,
    HoldPlaced,
    RecordPaymentResult,
    SectionCreated,
    SectionKind,
    TicketsSold,
)
from infra.audit import AuditCollector, LogAudit, fold_record
from schemas.codec import command_headers, encode_commands, encode_events, event_headers

EVENTS = "ticketing.events"
COMMANDS = "ticketing.commands"
DEADLINE_SECONDS = 60.0
NOW_MS = 1_000_000_000


def _log(audit: LogAudit, *events: Event) -> None:
    """Append each event as its own record of the event topic, as the agent does."""
    for event in events:
        fold_record(audit, EVENTS, EVENTS, encode_events([event]), event_headers())


def _paid(audit: LogAudit, hold_id: str, at_ms: int) -> None:
    result = RecordPaymentResult(f"p-{hold_id}", at_ms, "s", "ga", hold_id, "e", True)
    fold_record(audit, COMMANDS, EVENTS, encode_commands([result]), command_headers())


def _created(capacity: int) -> SectionCreated:
    return SectionCreated(
        "c", 0, "s", "ga", SectionKind.GENERAL_ADMISSION, capacity, 60
    )


def _placed(hold: str, quantity: int) -> HoldPlaced:
    return HoldPlaced(hold, 1, hold, "s", "ga", "b", (), quantity, 10**12)


def _sold(hold: str) -> TicketsSold:
    return TicketsSold(f"p-{hold}", 2, hold, hold, "s", "ga", "b", (), 1, ("t",))


def _scrape(audit: LogAudit) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(AuditCollector(audit, clock=lambda: NOW_MS / 1000))
    return registry


def test_audit_reports_an_oversell_when_the_log_sells_past_capacity() -> None:
    audit = LogAudit(DEADLINE_SECONDS)

    _log(audit, _created(2), _placed("h1", 1), _placed("h2", 1), _placed("h3", 1))

    registry = _scrape(audit)
    labels = {"show": "s"}
    assert registry.get_sample_value("ticketing_audit_oversold_places", labels) == 1
    section = {"show": "s", "section": "ga"}
    assert registry.get_sample_value("ticketing_audit_capacity_places", section) == 2
    assert registry.get_sample_value("ticketing_audit_held_places", section) == 3


def test_audit_reports_no_oversell_when_the_log_stays_within_capacity() -> None:
    audit = LogAudit(DEADLINE_SECONDS)

    _log(audit, _created(2), _placed("h1", 1), _placed("h2", 1), _sold("h1"))

    registry = _scrape(audit)
    labels = {"show": "s"}
    assert registry.get_sample_value("ticketing_audit_oversold_places", labels) == 0
    section = {"show": "s", "section": "ga"}
    assert registry.get_sample_value("ticketing_audit_sold_places", section) == 1


def test_audit_reports_a_paid_hold_when_no_tickets_came_by_the_deadline() -> None:
    audit = LogAudit(DEADLINE_SECONDS)
    long_ago_ms = NOW_MS - int(DEADLINE_SECONDS * 1000) - 1
    _log(audit, _created(5), _placed("h1", 1), _placed("h2", 1), _placed("h3", 1))
    _paid(audit, "h1", long_ago_ms)
    _paid(audit, "h2", long_ago_ms)
    _paid(audit, "h3", NOW_MS - 1000)

    _log(audit, _sold("h1"))

    registry = _scrape(audit)
    labels = {"show": "s"}
    assert registry.get_sample_value("ticketing_audit_paid_holds", labels) == 3
    assert registry.get_sample_value("ticketing_audit_sold_holds", labels) == 1
    assert (
        registry.get_sample_value("ticketing_audit_paid_unresolved_holds", labels) == 1
    )


def test_audit_counts_a_record_that_does_not_decode() -> None:
    audit = LogAudit(DEADLINE_SECONDS)

    fold_record(audit, EVENTS, EVENTS, b"\x00garbage", event_headers())

    assert (audit.records, audit.undecodable_records) == (1, 1)
