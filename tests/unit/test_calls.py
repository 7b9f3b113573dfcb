"""Params of the order-management calls: the CALLS table, both ways."""

from __future__ import annotations

from typing import Any

import pytest

from bfsync.calls import CALLS, prepare_call
from bfsync.exceptions import OrderValidationError

GOOD: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "order.modify",
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": 0.002, "price": 50000.5, "orderId": 7},
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.002", "price": "50000.5", "orderId": 7},
    ),
    (
        "order.modify",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "1",
            "priceMatch": "QUEUE",
            "origClientOrderId": "abc",
        },
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "1",
            "priceMatch": "QUEUE",
            "origClientOrderId": "abc",
        },
    ),
    ("order.cancel", {"symbol": "BTCUSDT", "orderId": "12"}, {"symbol": "BTCUSDT", "orderId": 12}),
    (
        "order.status",
        {"symbol": "BTCUSDT", "origClientOrderId": "x-1", "recvWindow": 5000.0},
        {"symbol": "BTCUSDT", "origClientOrderId": "x-1", "recvWindow": 5000},
    ),
    ("algoOrder.cancel", {"algoId": 3, "clientAlgoId": None}, {"algoId": 3}),
    ("algoOrder.cancel", {"clientAlgoId": "bfs-1"}, {"clientAlgoId": "bfs-1"}),
]

BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "order.modify",
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "price": "1"},
        "orderId or origClientOrderId is required",
    ),
    (
        "order.modify",
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "orderId": 1},
        "price or priceMatch is required",
    ),
    (
        "order.modify",
        {"symbol": "BTCUSDT", "side": "BUY", "price": "1", "orderId": 1},
        "quantity is required",
    ),
    (
        "order.modify",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "quantity": "1",
            "orderId": 1,
            "price": "1",
            "priceMatch": "QUEUE",
        },
        "price and priceMatch",
    ),
    (
        "order.modify",
        {"symbol": "BTCUSDT", "side": "UP", "quantity": "1", "orderId": 1, "price": "1"},
        "side must be one of BUY, SELL",
    ),
    ("order.cancel", {"symbol": "BTCUSDT"}, "orderId or origClientOrderId"),
    ("order.cancel", {"orderId": 1}, "symbol is required"),
    ("order.cancel", {"symbol": "BTCUSDT", "orderId": 0}, "orderId must be a positive integer"),
    ("order.cancel", {"symbol": "BTCUSDT", "orderid": 1}, "did you mean 'orderId'"),
    ("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "has space"}, "origClientOrderId"),
    (
        "order.status",
        {"symbol": "BTCUSDT", "orderId": 1, "price": "1"},
        "unknown parameter 'price'",
    ),
    ("algoOrder.cancel", {}, "algoId or clientAlgoId is required"),
    ("algoOrder.cancel", {"algoId": -1}, "algoId must be a positive integer"),
]


@pytest.mark.parametrize(("method", "kwargs", "expected"), GOOD)
def test_accepted_calls(method: str, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    """Valid keywords become exact wire params."""
    assert expected == prepare_call(method, kwargs, validate=True)


@pytest.mark.parametrize(("method", "kwargs", "message"), BAD)
def test_refused_calls_name_the_rule(method: str, kwargs: dict[str, Any], message: str) -> None:
    """Invalid keywords are refused with a message naming the parameter and rule."""
    with pytest.raises(OrderValidationError, match=message):
        prepare_call(method, kwargs, validate=True)


@pytest.mark.parametrize(("method", "kwargs", "message"), BAD)
def test_without_validation_nothing_is_refused(
    method: str, kwargs: dict[str, Any], message: str
) -> None:
    """Without validation the keywords pass, formatted."""
    assert {k: v for k, v in kwargs.items() if v is not None} == prepare_call(
        method, kwargs, validate=False
    )


def test_every_call_has_a_rule() -> None:
    """The table covers the four order-management methods."""
    assert {"order.modify", "order.cancel", "order.status", "algoOrder.cancel"} == set(CALLS)
