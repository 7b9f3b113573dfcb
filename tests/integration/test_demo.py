"""`python -m bfsync demo`: valid orders for the exchange's real filters, all cancelled after."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Callable

import pytest

from bfsync import WebSocketService
from bfsync._demo import main, run_example
from bfsync.exceptions import RequestError
from bfsync.filters import ExchangeFilters
from bfsync.testing import FakeExchange

MakeService = Callable[..., WebSocketService]


def filters_of(fx: FakeExchange) -> ExchangeFilters:
    return ExchangeFilters.from_exchange_info(fx.exchange_info(), time.monotonic())


@pytest.mark.parametrize("price", ["50000", "93217.3"])
def test_demo_orders_meet_the_real_minimum_notional_and_are_cancelled(
    make_service: MakeService, fx: FakeExchange, price: str
) -> None:
    """At the real 100 USDT minimum, every order is accepted, on the grid, then cancelled."""
    fx.set_price("BTCUSDT", price)
    ws = make_service("Ed25519", validation=True)

    run_example(ws, filters_of(fx))

    orders = list(fx.orders.values())
    algo = list(fx.algo_orders.values())
    assert (1, 2) == (len(orders), len(algo))
    assert ["CANCELED"] == [order["status"] for order in orders]
    assert ["CANCELED", "CANCELED"] == [order["algoStatus"] for order in algo]
    notionals = [Decimal(orders[0]["origQty"]) * Decimal(orders[0]["price"])]
    notionals += [Decimal(o["quantity"]) * Decimal(o["triggerPrice"]) for o in algo]
    assert all(notional >= 100 for notional in notionals), notionals


def test_demo_cancels_what_it_placed_when_a_step_fails(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """A refused take-profit still leaves nothing open: the limit and the stop are cancelled."""
    ws = make_service("HMAC", validation=True)
    fx.script("algoOrder.place", error={"code": -2019, "msg": "Margin is insufficient."})
    fx.script("algoOrder.place", error={"code": -2019, "msg": "Margin is insufficient."})

    with pytest.raises(RequestError, match="-2019"):
        run_example(ws, filters_of(fx))

    assert ["CANCELED"] == [order["status"] for order in fx.orders.values()]
    assert [] == [o for o in fx.algo_orders.values() if o["algoStatus"] != "CANCELED"]


def test_demo_command_succeeds_against_the_embedded_exchange(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m bfsync demo` exits 0 and says every step succeeded, nothing weakened."""
    status = main([])

    out = capsys.readouterr().out
    assert 0 == status, out
    assert "every step of the complete usage example succeeded" in out
    assert "lowered" not in out
