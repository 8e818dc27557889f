"""The on-sale exits non-zero for any unsound sale, not only an oversold one."""

from __future__ import annotations

import socket

import pytest

from infra.onsale import (
    BuyerResult,
    SaleResult,
    refuse_if_gateway_port_taken,
    sale_problems,
)
from infra.processes import ProcessFailed
from infra.settings import Settings
from projections.ledger import ShowLedger


def _sale(outcomes: list[str], ledger: ShowLedger) -> SaleResult:
    return SaleResult(
        show_id="s",
        places=10,
        contested_seats=0,
        results=[BuyerResult(outcome, 0.01) for outcome in outcomes],
        elapsed_seconds=1.0,
        ledger=ledger,
        read_model_lag_seconds=0.0,
    )


def test_sale_is_sound_when_every_buyer_got_an_outcome_and_nothing_oversold() -> None:
    ledger = ShowLedger(holds_placed=1)

    problems = sale_problems(_sale(["held", "sold-out"], ledger))

    assert problems == []


def test_sale_is_unsound_when_buyers_were_left_without_an_outcome() -> None:
    ledger = ShowLedger(holds_placed=1)

    problems = sale_problems(_sale(["held", "pending", "error"], ledger))

    assert problems == ["2 buyers got no outcome"]


def test_sale_is_unsound_when_holds_were_refused_for_a_known_section() -> None:
    ledger = ShowLedger(holds_placed=1)
    ledger.rejected_by_reason["unknown_section"] = 3

    problems = sale_problems(_sale(["held"], ledger))

    assert problems == ["3 holds refused for a section the show has"]


def test_sale_is_unsound_when_places_were_oversold() -> None:
    ledger = ShowLedger(holds_placed=2, oversold=1)

    problems = sale_problems(_sale(["held", "held"], ledger))

    assert problems == ["1 places oversold"]


def test_onsale_refuses_to_start_when_the_gateway_port_is_taken() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings = Settings(gateway_port=listener.getsockname()[1])

        with pytest.raises(ProcessFailed, match="TICKETING_GATEWAY_PORT"):
            refuse_if_gateway_port_taken(settings)
