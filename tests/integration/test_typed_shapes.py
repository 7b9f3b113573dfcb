"""The REST calls' replies, as FakeExchange sends them, have the shapes bfsync.types declares."""

from __future__ import annotations

import sys
import typing
from typing import Any, Callable, Literal, Union

import pytest

from bfsync import WebSocketService
from bfsync.exceptions import OrderStatusUnknownError
from bfsync.testing import FakeExchange
from bfsync.types import (
    AccountTrade,
    AlgoOrder,
    CodeMessage,
    CommissionRate,
    FundingRate,
    Income,
    Kline,
    Leverage,
    LeverageBrackets,
    MarkPrice,
    MultiAssetsMode,
    Order,
    PositionMode,
    RateLimit,
    ServerTime,
)

if sys.version_info >= (3, 11):
    from typing import get_type_hints, is_typeddict
else:  # bfsync.types' TypedDicts (NotRequired) come from typing_extensions there
    from typing_extensions import get_type_hints, is_typeddict

Service = Callable[..., WebSocketService]


def mismatches(value: Any, expected: Any, path: str = "result") -> list[str]:
    """Where ``value`` (decoded JSON) differs from the type ``expected``; [] when it conforms.

    Extra keys are allowed (Binance adds fields); a tuple type takes a JSON list (``Kline``).
    """
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return []
    if origin is Union:
        if any(not mismatches(value, arg, path) for arg in args):
            return []
        return [f"{path}: {value!r} is none of {expected}"]
    if origin is Literal:
        return [] if value in args else [f"{path}: {value!r} not in {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: not a list: {value!r}"]
        return [
            m for i, item in enumerate(value) for m in mismatches(item, args[0], f"{path}[{i}]")
        ]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            return [f"{path}: not {len(args)} items: {value!r}"]
        return [
            m for i, (v, t) in enumerate(zip(value, args)) for m in mismatches(v, t, f"{path}[{i}]")
        ]
    if is_typeddict(expected):
        if not isinstance(value, dict):
            return [f"{path}: not an object: {value!r}"]
        hints = get_type_hints(expected)
        missing = sorted(expected.__required_keys__ - value.keys())
        found = [f"{path}: no {key!r}" for key in missing]
        for key in hints.keys() & value.keys():
            found += mismatches(value[key], hints[key], f"{path}.{key}")
        return found
    if expected is type(None):
        return [] if value is None else [f"{path}: {value!r} is not None"]
    if expected is float:  # JSON numbers: an int is a float here, a bool is not
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    return [] if ok else [f"{path}: {value!r} is not {expected.__name__}"]


def check_frame(frame: Any, result: Any) -> None:
    """``frame`` is a REST ReplyFrame whose ``result`` is a ``result``."""
    assert [] == mismatches(frame["status"], int, "status")
    assert [] == mismatches(frame["rateLimits"], list[RateLimit], "rateLimits")
    assert [] == mismatches(frame["result"], result)


def test_the_checker_reports_what_differs() -> None:
    """The checker itself: a missing key, a wrong type and a bad candle are reported."""
    good = {"symbol": "X", "makerCommissionRate": "0.1", "takerCommissionRate": "0.2"}
    candle = [1, "1", "2", "0.5", "1.5", "10", 2, "15", 3, "4", "6", "0"]

    assert [] == mismatches(good, CommissionRate)
    no_symbol = {key: value for key, value in good.items() if key != "symbol"}
    assert ["result: no 'symbol'"] == mismatches(no_symbol, CommissionRate)
    assert ["result.makerCommissionRate: 0.1 is not str"] == mismatches(
        {**good, "makerCommissionRate": 0.1}, CommissionRate
    )
    assert [] == mismatches([candle], list[Kline])
    assert ["result[0][4]: 1.5 is not str"] == mismatches(
        [[*candle[:4], 1.5, *candle[5:]]], list[Kline]
    )


def test_rest_replies_have_the_declared_shapes(fx: FakeExchange, make_service: Service) -> None:
    """Every REST call's reply from the fake matches its TypedDict (required keys, types)."""
    ws = make_service()
    check_frame(ws.change_margin_type("BTCUSDT", "ISOLATED"), CodeMessage)
    check_frame(ws.change_position_mode(True), CodeMessage)
    check_frame(ws.get_position_mode(), PositionMode)
    check_frame(ws.change_position_mode(False), CodeMessage)
    check_frame(ws.change_multi_assets_mode(True), CodeMessage)
    check_frame(ws.get_multi_assets_mode(), MultiAssetsMode)
    check_frame(ws.change_leverage("BTCUSDT", 5), Leverage)

    ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.01")
    ws.place_limit_order(
        symbol="BTCUSDT", side="BUY", quantity="0.01", price="40000", timeInForce="GTC"
    )
    algo = ws.place_stop_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.01", stopPrice="45000"
    )["result"]
    check_frame(ws.get_open_orders("BTCUSDT"), list[Order])
    check_frame(ws.get_open_algo_orders(), list[AlgoOrder])
    check_frame(ws.get_algo_order(clientAlgoId=algo["clientAlgoId"]), AlgoOrder)
    check_frame(ws.get_account_trades("BTCUSDT", limit=5), list[AccountTrade])
    check_frame(ws.get_income_history(), list[Income])
    check_frame(ws.get_commission_rate("BTCUSDT"), CommissionRate)
    check_frame(ws.get_leverage_brackets("BTCUSDT"), LeverageBrackets)
    check_frame(ws.get_leverage_brackets(), list[LeverageBrackets])
    check_frame(ws.get_klines("BTCUSDT", "1m", limit=3), list[Kline])
    check_frame(ws.get_continuous_klines("BTCUSDT", "PERPETUAL", "1h", limit=2), list[Kline])
    check_frame(ws.get_mark_price("BTCUSDT"), MarkPrice)
    check_frame(ws.get_mark_price(), list[MarkPrice])
    check_frame(ws.get_funding_rate_history(symbol="BTCUSDT", limit=3), list[FundingRate])
    check_frame(ws.get_server_time(), ServerTime)
    check_frame(ws.cancel_all_open_orders("BTCUSDT"), CodeMessage)
    check_frame(ws.cancel_all_algo_orders("BTCUSDT"), CodeMessage)

    assert 0 < len(ws.get_account_trades("BTCUSDT")["result"])  # the trade list was checked


@pytest.mark.parametrize("kind", ["plain", "conditional"])
def test_resolve_unknown_returns_the_declared_order(
    make_service: Service, fx: FakeExchange, kind: str
) -> None:
    """resolve_unknown gives an Order for a plain order, an AlgoOrder for a conditional one."""
    ws = make_service(request_timeout=1)
    method = "order.place" if kind == "plain" else "algoOrder.place"
    fx.withhold(method, times=1)
    with pytest.raises(OrderStatusUnknownError) as lost:
        if kind == "plain":
            ws.place_limit_order(
                symbol="BTCUSDT", side="BUY", quantity="0.01", price="40000", timeInForce="GTC"
            )
        else:
            ws.place_stop_market_order(
                symbol="BTCUSDT", side="SELL", quantity="0.01", stopPrice="45000"
            )

    reply = ws.resolve_unknown(lost.value)

    result = reply["result"]
    assert ("algoId" in result) == (kind == "conditional")
    assert [] == mismatches(result, AlgoOrder if kind == "conditional" else Order)
