"""The rest of ws-fapi against FakeExchange: more calls, filters, server clock, rate limits."""

from __future__ import annotations

import concurrent.futures
import time
from decimal import Decimal
from typing import Any, Callable

import pytest
import responses

from bfsync import WebSocketService
from bfsync.exceptions import OrderValidationError, RateLimitError, RequestError
from bfsync.testing import FakeExchange

MakeService = Callable[..., WebSocketService]
REST = "http://rest.invalid"


def _both(call: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
    """The reply of a blocking call and of the same call as a Future."""
    blocking = call(**kwargs)
    later = call(wait_for_response=False, **kwargs).result(timeout=5)
    return [blocking, later]


def test_order_status_modify_cancel(make_service: MakeService) -> None:
    """get_order_status, modify_order and cancel_order act on a placed order, in both forms."""
    ws = make_service(validation=True)
    placed = ws.place_limit_order(
        symbol="BTCUSDT", side="BUY", quantity="0.003", price="40000", timeInForce="GTC"
    )["result"]
    order_id, client_id = placed["orderId"], placed["clientOrderId"]

    status = _both(ws.get_order_status, symbol="BTCUSDT", origClientOrderId=client_id)
    modified = ws.modify_order(
        symbol="BTCUSDT", side="BUY", quantity="0.004", price="40000.1", orderId=order_id
    )
    modified_again = ws.modify_order(
        wait_for_response=False,
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.005",
        price="40000.2",
        origClientOrderId=client_id,
    ).result(timeout=5)
    cancelled = ws.cancel_order(symbol="BTCUSDT", orderId=order_id)

    assert ["NEW", "NEW"] == [r["result"]["status"] for r in status]
    assert "0.004" == modified["result"]["origQty"]
    assert "40000.20" == modified_again["result"]["price"]
    assert "CANCELED" == cancelled["result"]["status"]
    with pytest.raises(RequestError) as info:
        ws.cancel_order(wait_for_response=False, symbol="BTCUSDT", orderId=order_id).result(5)
    assert -2011 == info.value.code


def test_cancel_algo_order(make_service: MakeService) -> None:
    """cancel_algo_order cancels a conditional order by algoId or clientAlgoId."""
    ws = make_service(validation=True)
    first = ws.place_stop_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.003", stopPrice="45000"
    )["result"]
    second = ws.place_stop_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.003", stopPrice="44000"
    )["result"]

    by_id = ws.cancel_algo_order(algoId=first["algoId"])
    by_client_id = ws.cancel_algo_order(
        wait_for_response=False, clientAlgoId=second["clientAlgoId"]
    ).result(timeout=5)

    assert ("200", "200") == (by_id["result"]["code"], by_client_id["result"]["code"])


def test_session_status_and_user_data_stream(make_service: MakeService) -> None:
    """session.status and the three userDataStream calls, in both forms."""
    ws = make_service()

    sessions = _both(ws.get_session_status)
    started = _both(ws.start_user_data_stream)
    pinged = _both(ws.ping_user_data_stream)
    stopped = _both(ws.stop_user_data_stream)

    assert all("serverTime" in r["result"] for r in sessions)
    keys = {r["result"]["listenKey"] for r in started + pinged}
    assert 1 == len(keys)
    assert [{}, {}] == [r["result"] for r in stopped]


def test_user_data_stream_sends_api_key_only(make_service: MakeService, fx: FakeExchange) -> None:
    """userDataStream requests carry the API key, no timestamp or signature."""
    ws = make_service()

    ws.start_user_data_stream()

    params = fx.requests_for("userDataStream.start")[0]["params"]
    assert ["apiKey"] == sorted(params)


def test_validation_of_new_calls_before_sending(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """With validation, a bad cancel is refused in the caller's thread, nothing sent."""
    ws = make_service(validation=True)

    with pytest.raises(OrderValidationError, match="orderId or origClientOrderId"):
        ws.cancel_order(symbol="BTCUSDT")
    assert [] == fx.requests


# Exchange filters


@pytest.fixture
def filtered(make_service: MakeService, fx: FakeExchange) -> Any:
    """A validating service with the exchange's filters loaded over REST (mocked)."""
    with responses.RequestsMock() as rest:
        rest.get(f"{REST}/fapi/v1/exchangeInfo", json=fx.exchange_info())
        ws = make_service(validation=True, rest_url=REST, validate_filters=True)
        fx.clear_requests()
        yield ws


# (kind, keywords that break a filter, filter named, the keyword to round, round with)
BREAKING: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("LIMIT", {"price": "50000.05", "quantity": "0.003"}, "PRICE_FILTER", "price", "price"),
    ("LIMIT", {"price": "50000", "quantity": "0.0035"}, "LOT_SIZE", "quantity", "quantity"),
    ("LIMIT", {"price": "50000", "quantity": "5000"}, "LOT_SIZE", "quantity", "quantity"),
    ("MARKET", {"quantity": "150"}, "MARKET_LOT_SIZE", "quantity", "market"),
    (
        "STOP_MARKET",
        {"stopPrice": "45000.07", "quantity": "0.003"},
        "PRICE_FILTER",
        "stopPrice",
        "price",
    ),
]


@pytest.mark.parametrize(("kind", "kwargs", "name", "key", "how"), BREAKING)
def test_filter_breach_refused_then_rounded_order_accepted(
    filtered: WebSocketService,
    fx: FakeExchange,
    kind: str,
    kwargs: dict[str, Any],
    name: str,
    key: str,
    how: str,
) -> None:
    """An order breaking a filter is refused before sending; rounded, the exchange takes it."""
    ws = filtered
    place = {
        "LIMIT": ws.place_limit_order,
        "MARKET": ws.place_market_order,
        "STOP_MARKET": ws.place_stop_market_order,
    }[kind]
    extra = {"timeInForce": "GTC"} if kind == "LIMIT" else {}

    with pytest.raises(OrderValidationError, match=name) as info:
        place(symbol="BTCUSDT", side="BUY" if kind != "STOP_MARKET" else "SELL", **kwargs, **extra)
    assert str(kwargs[key]) in str(info.value)
    assert [] == fx.requests

    if how == "price":
        rounded = ws.round_price("BTCUSDT", kwargs[key])
    else:
        rounded = ws.round_quantity("BTCUSDT", kwargs[key], market=how == "market")
    reply = place(
        symbol="BTCUSDT",
        side="BUY" if kind != "STOP_MARKET" else "SELL",
        **{**kwargs, key: rounded},
        **extra,
    )
    assert 200 == reply["status"]


def test_min_notional_refused_unless_reduce_only(filtered: WebSocketService) -> None:
    """MIN_NOTIONAL is checked before sending, except for reduce-only orders."""
    with pytest.raises(OrderValidationError, match="MIN_NOTIONAL"):
        filtered.place_limit_order(
            symbol="BTCUSDT", side="BUY", quantity="0.001", price="50000", timeInForce="GTC"
        )


def test_symbol_must_be_trading(filtered: WebSocketService) -> None:
    """An order on a symbol that is not TRADING is refused before sending."""
    with pytest.raises(OrderValidationError, match="OLDUSDT"):
        filtered.place_market_order(symbol="OLDUSDT", side="BUY", quantity="1")


def test_price_below_min_price_is_refused_and_not_rounded_up(
    filtered: WebSocketService, fx: FakeExchange
) -> None:
    """Below minPrice the order is refused, and round_price refuses too (never rounds up)."""
    with pytest.raises(OrderValidationError, match="PRICE_FILTER minPrice"):
        filtered.place_limit_order(
            symbol="BTCUSDT", side="BUY", price="100", quantity="0.3", timeInForce="GTC"
        )
    with pytest.raises(OrderValidationError, match="below PRICE_FILTER minPrice"):
        filtered.round_price("BTCUSDT", "100")
    assert [] == fx.requests


def test_rounding_helpers(filtered: WebSocketService) -> None:
    """round_price and round_quantity round down to the tick and step, as Decimals."""
    assert Decimal("50000.00") == filtered.round_price("BTCUSDT", 50000.09)
    assert Decimal("0.003") == filtered.round_quantity("BTCUSDT", "0.0039")


# The server's clock


@pytest.mark.parametrize("skew_ms", [3000, -3000])
def test_skewed_server_clock_causes_no_1021(fx: FakeExchange, skew_ms: int) -> None:
    """A server clock 3 s ahead or behind: bfsync measures it; no call sees -1021."""
    fx.clock_offset_ms = skew_ms
    api_key, secret = fx.add_hmac_key()

    with WebSocketService(api_key, secret, config={"ws_url": fx.url}) as ws:
        replies = [ws.get_account_balance() for _ in range(5)]
        offset = ws.clock_offset_ms

    assert [200] * 5 == [r["status"] for r in replies]
    assert abs(offset - skew_ms) < 500


def test_clock_jump_after_connect_is_resent_once(fx: FakeExchange) -> None:
    """A -1021 after the server's clock moved: bfsync measures again and re-sends, once."""
    api_key, secret = fx.add_hmac_key()
    with WebSocketService(api_key, secret, config={"ws_url": fx.url}) as ws:
        fx.clock_offset_ms = 6000  # more than recvWindow (5000) behind the server
        fx.delay("session.status", 0.05)  # a slower measurement than the first must still win
        fx.clear_requests()

        reply = ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.003")

    assert 200 == reply["status"]
    methods = [r["method"] for r in fx.requests]
    assert ["order.place", "session.status", "order.place"] == methods


def test_without_clock_sync_a_skew_is_rejected(fx: FakeExchange) -> None:
    """With sync_clock off, the same skew gives the caller -1021 (the test above is real)."""
    fx.clock_offset_ms = -3000
    api_key, secret = fx.add_hmac_key()

    ws = WebSocketService(api_key, secret, config={"ws_url": fx.url, "sync_clock": False})
    with ws, pytest.raises(RequestError) as info:
        ws.get_account_balance()

    assert -1021 == info.value.code


# Rate limits


def _resting_buys(ws: WebSocketService, count: int) -> list[concurrent.futures.Future[Any]]:
    """``count`` resting LIMIT buys sent at once, as futures."""
    return [
        ws.place_limit_order(
            wait_for_response=False,
            symbol="BTCUSDT",
            side="BUY",
            quantity="0.003",
            price="40000",
            timeInForce="GTC",
        )
        for _ in range(count)
    ]


def test_rate_limits_kept(make_service: MakeService) -> None:
    """ws.rate_limits holds the latest reply's counters."""
    ws = make_service()

    ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.003")

    kinds = {item["rateLimitType"] for item in ws.rate_limits}
    assert {"REQUEST_WEIGHT", "ORDERS"} == kinds


def test_burst_over_orders_budget_with_throttle_gets_no_429(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """310 orders at once with rate_limit='wait': the throttle holds the last few, no 429."""
    ws = make_service(rate_limit="wait", request_timeout=30)
    fx.set_balance("USDT", "100000000")
    start = time.monotonic()

    futures = _resting_buys(ws, 310)
    _, not_done = concurrent.futures.wait(futures, timeout=40)

    assert not not_done
    assert [] == [f.exception() for f in futures if f.exception() is not None]
    assert time.monotonic() - start >= 9  # the last ten waited for the 10 s window


def test_burst_without_throttle_gets_429(make_service: MakeService, fx: FakeExchange) -> None:
    """The same burst without the throttle meets the exchange's 429 (the test above is real)."""
    ws = make_service()
    fx.set_rate_limits(orders_10s=20)

    futures = _resting_buys(ws, 25)
    errors = [f.exception(timeout=10) for f in futures]

    assert any(isinstance(e, RateLimitError) and e.status == 429 for e in errors)


def test_throttle_raise_mode(make_service: MakeService) -> None:
    """rate_limit='raise' refuses the 301st order in 10 s at once, in the caller's thread."""
    ws = make_service(rate_limit="raise")
    _resting_buys(ws, 300)

    with pytest.raises(RateLimitError, match="ORDERS") as info:
        ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.003")

    assert info.value.retry_after is not None and info.value.retry_after > 0
