"""WebSocketService against FakeExchange: every documented call, both forms, all key kinds."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from decimal import Decimal
from typing import Any, Callable

import pytest

from bfsync import BinanceClient, State, WebSocketService
from bfsync.exceptions import (
    AuthenticationError,
    ConnectionError,
    ConnectionLostError,
    LoginRejectedError,
    OrderConnectionLostError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    OrderValidationError,
    RequestError,
    RequestTimeoutError,
)
from bfsync.testing import FakeExchange

from .conftest import KEY_KINDS, Credentials, client_threads

MakeService = Callable[..., WebSocketService]

# (call, kwargs, wire method) for every documented request method.
CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_depth", {"symbol": "BTCUSDT", "limit": 5}, "depth"),
    ("get_ticker_price", {"symbol": "BTCUSDT"}, "ticker.price"),
    ("get_ticker_price", {}, "ticker.price"),
    ("get_ticker_book", {"symbol": "ETHUSDT"}, "ticker.book"),
    ("get_ticker_book", {}, "ticker.book"),
    ("get_position_info", {"symbol": "BTCUSDT"}, "v2/account.position"),
    ("get_position_info", {}, "v2/account.position"),
    ("get_account_balance", {}, "v2/account.balance"),
    ("get_account_status", {}, "v2/account.status"),
    (
        "place_limit_order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "quantity": "0.003",
            "price": "50000",
            "timeInForce": "GTC",
        },
        "order.place",
    ),
    (
        "place_market_order",
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.003"},
        "order.place",
    ),
    (
        "place_stop_order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.003",
            "price": "45000",
            "stopPrice": "46000",
        },
        "algoOrder.place",
    ),
    (
        "place_stop_market_order",
        {"symbol": "BTCUSDT", "side": "SELL", "stopPrice": "46000", "quantity": "0.003"},
        "algoOrder.place",
    ),
    (
        "place_take_profit_order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.003",
            "price": "55000",
            "stopPrice": "54000",
        },
        "algoOrder.place",
    ),
    (
        "place_take_profit_market_order",
        {"symbol": "BTCUSDT", "side": "SELL", "stopPrice": "54000", "quantity": "0.003"},
        "algoOrder.place",
    ),
    (
        "place_trailing_stop_market_order",
        {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.003", "callbackRate": "1.0"},
        "algoOrder.place",
    ),
]
CALL_IDS = [f"{name}-{method}-{len(kw)}" for name, kw, method in CALLS]


@pytest.mark.parametrize("kind", KEY_KINDS)
@pytest.mark.parametrize(("name", "kwargs", "method"), CALLS, ids=CALL_IDS)
def test_every_call_blocking_and_future(
    make_service: MakeService,
    fx: FakeExchange,
    kind: str,
    name: str,
    kwargs: dict[str, Any],
    method: str,
) -> None:
    """Each documented call returns the reply frame, blocking and as a Future, with each key."""
    ws = make_service(kind, validation=True)

    blocking = getattr(ws, name)(**kwargs)
    future = getattr(ws, name)(wait_for_response=False, **kwargs)
    later = future.result(timeout=5)

    assert isinstance(future, concurrent.futures.Future)
    for reply in (blocking, later):
        assert 200 == reply["status"]
        assert "result" in reply
        assert "rateLimits" in reply
    assert [method, method] == [r["method"] for r in fx.requests]


@pytest.mark.parametrize("kind", ["HMAC", "RSA"])
def test_login_needs_ed25519(make_service: MakeService, fx: FakeExchange, kind: str) -> None:
    """login() with an HMAC or RSA key raises AuthenticationError at once, in both forms."""
    ws = make_service(kind)

    with pytest.raises(AuthenticationError, match="Ed25519"):
        ws.login()
    with pytest.raises(AuthenticationError, match="Ed25519"):
        ws.login(wait_for_response=False)
    assert [] == fx.requests


def test_login_then_requests_carry_timestamp_only(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """After session.logon signed requests carry timestamp, no apiKey or signature."""
    ws = make_service("Ed25519")

    reply = ws.login()
    balance = ws.get_account_balance()

    assert 200 == reply["status"] and 200 == balance["status"]
    assert State.LOGGED_IN == ws.state
    params = fx.requests_for("v2/account.balance")[0]["params"]
    assert "timestamp" in params
    assert "signature" not in params and "apiKey" not in params
    assert "signature" in fx.requests_for("session.logon")[0]["params"]


def test_logout_returns_to_signed_requests(make_service: MakeService, fx: FakeExchange) -> None:
    """After logout signed requests carry their own signature again."""
    ws = make_service("Ed25519")
    ws.login()

    reply = ws.logout()
    ws.get_account_status()

    assert 200 == reply["status"]
    assert State.CONNECTED == ws.state
    assert "signature" in fx.requests_for("v2/account.status")[0]["params"]


def test_login_future_form(make_service: MakeService) -> None:
    """login(wait_for_response=False) returns a Future of the logon reply."""
    ws = make_service("Ed25519")

    reply = ws.login(wait_for_response=False).result(timeout=5)

    assert 200 == reply["status"]


def test_refused_logon_is_login_rejected(make_service: MakeService, fx: FakeExchange) -> None:
    """A refused session.logon raises LoginRejectedError carrying Binance's code."""
    ws = make_service("Ed25519")
    fx.script(
        "session.logon", error={"code": -1022, "msg": "Signature for this request is not valid."}
    )

    with pytest.raises(LoginRejectedError) as info:
        ws.login()

    assert isinstance(info.value, AuthenticationError) and isinstance(info.value, RequestError)
    assert -1022 == info.value.code
    assert State.CONNECTED == ws.state


def test_unregistered_key_is_refused_by_the_exchange(fx: FakeExchange) -> None:
    """A signature with an unknown key comes back as RequestError -2015 (real verification)."""
    ws = WebSocketService("unknownKey123", "S" * 64, config={"ws_url": fx.url})
    with ws, pytest.raises(RequestError) as info:
        ws.get_account_balance()

    assert -2015 == info.value.code


def test_wrong_secret_is_refused_by_the_exchange(fx: FakeExchange) -> None:
    """A signature made with the wrong secret comes back as -1022."""
    api_key, _ = fx.add_hmac_key()
    ws = WebSocketService(api_key, "notTheSecret" + "0" * 52, config={"ws_url": fx.url})
    with ws, pytest.raises(RequestError) as info:
        ws.get_account_balance()

    assert -1022 == info.value.code


def test_request_error_attributes(make_service: MakeService, fx: FakeExchange) -> None:
    """status != 200 raises RequestError with code, msg, status and the frame."""
    ws = make_service()
    fx.script("depth", error={"code": -1121, "msg": "Invalid symbol."}, status=400)

    with pytest.raises(RequestError) as info:
        ws.get_depth("BTCUSDT")

    exc = info.value
    assert (-1121, "Invalid symbol.", 400) == (exc.code, exc.msg, exc.status)
    assert exc.response is not None and 400 == exc.response["status"]


def test_future_raises_the_same_exception(make_service: MakeService, fx: FakeExchange) -> None:
    """A Future resolves to the same exception the blocking call raises."""
    ws = make_service()
    fx.script("depth", error={"code": -1121, "msg": "Invalid symbol."})

    future = ws.get_depth("BTCUSDT", wait_for_response=False)

    with pytest.raises(RequestError):
        future.result(timeout=5)


def test_validation_error_raised_before_sending(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """With validation a bad order raises in the caller's thread and nothing is sent."""
    ws = make_service(validation=True)

    with pytest.raises(OrderValidationError, match="timeInForce"):
        ws.place_limit_order(symbol="BTCUSDT", side="BUY", quantity="1", price="50000")
    with pytest.raises(OrderValidationError, match="stopPrice"):
        ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="1", stopPrice="1")
    with pytest.raises(OrderValidationError):
        ws.place_limit_order(
            wait_for_response=False, symbol="BTCUSDT", side="BUY", quantity="-1", price="1"
        )
    assert [] == fx.requests


def test_numbers_and_none_on_the_wire(make_service: MakeService, fx: FakeExchange) -> None:
    """Floats go as plain decimals, booleans as true/false, None keywords are dropped."""
    ws = make_service()
    fx.script("order.place", result={"orderId": 1})  # the fake's step size would refuse 1e-05

    ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity=0.00001,
        price=50000.0,
        timeInForce="GTC",
        reduceOnly=False,
        positionSide=None,
    )

    params = fx.requests[0]["params"]
    assert ("0.00001", "false") == (params["quantity"], params["reduceOnly"])
    assert Decimal(50000) == Decimal(params["price"]) and "e" not in params["price"].lower()
    assert "positionSide" not in params


def test_conditional_orders_use_algo_names(make_service: MakeService, fx: FakeExchange) -> None:
    """Conditional orders go to algoOrder.place with triggerPrice and clientAlgoId."""
    ws = make_service(validation=True)

    reply = ws.place_trailing_stop_market_order(
        symbol="BTCUSDT",
        side="SELL",
        quantity="0.003",
        callbackRate="1",
        activationPrice="51000",
        newClientOrderId="my-trail-1",
    )

    params = fx.requests[0]["params"]
    assert "CONDITIONAL" == params["algoType"]
    assert "TRAILING_STOP_MARKET" == params["type"]
    assert ("51000", "my-trail-1") == (params["activatePrice"], params["clientAlgoId"])
    assert "my-trail-1" == reply["result"]["clientAlgoId"]


def test_generated_client_order_id(make_service: MakeService, fx: FakeExchange) -> None:
    """An order without an id gets one with the configured prefix, echoed by the server."""
    ws = make_service(client_order_id_prefix="xl-")

    reply = ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.003")

    sent = fx.requests[0]["params"]["newClientOrderId"]
    assert sent.startswith("xl-") and len(sent) <= 36
    assert sent == reply["result"]["clientOrderId"]


def test_recv_window_from_config_and_per_call(make_service: MakeService, fx: FakeExchange) -> None:
    """config recv_window is sent on signed requests; a per-call recvWindow wins."""
    ws = make_service(recv_window=3000)

    ws.get_account_balance()
    ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.003", recvWindow=4000)
    ws.get_ticker_price("BTCUSDT")

    windows = [r["params"].get("recvWindow") for r in fx.requests]
    assert [3000, 4000, None] == windows


def test_many_threads_get_their_own_replies(make_service: MakeService, fx: FakeExchange) -> None:
    """Calls from many threads at once each get the reply to their own request."""
    ws = make_service()
    limits = [5, 10, 20, 50] * 10

    def call(limit: int) -> tuple[int, int]:
        reply = ws.get_depth("BTCUSDT", limit=limit)
        return limit, len(reply["result"]["bids"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, limits, timeout=30))

    for limit, bids in results:
        assert min(limit, 20) == bids  # FakeExchange keeps 20 levels a side
    ids = [r["id"] for r in fx.requests]
    assert len(set(ids)) == len(limits)


def test_out_of_order_replies(make_service: MakeService, fx: FakeExchange) -> None:
    """A slow reply does not hold up a fast one; each future gets its own reply."""
    ws = make_service()
    fx.delay("depth", 0.5)

    slow = ws.get_depth("BTCUSDT", wait_for_response=False)
    fast = ws.get_ticker_price("BTCUSDT", wait_for_response=False)

    assert "price" in fast.result(timeout=5)["result"]
    assert not slow.done()
    assert "bids" in slow.result(timeout=5)["result"]


def test_timeout_raises_request_timeout(make_service: MakeService, fx: FakeExchange) -> None:
    """No reply within request_timeout raises RequestTimeoutError, on time."""
    ws = make_service(request_timeout=0.3)
    fx.withhold("depth")

    start = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        ws.get_depth("BTCUSDT")

    assert time.monotonic() - start < 3
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_order_timeout_is_unknown_outcome(make_service: MakeService, fx: FakeExchange) -> None:
    """An order with no reply raises OrderTimeoutError carrying its client order id."""
    ws = make_service(request_timeout=0.3)
    fx.withhold("order.place")

    with pytest.raises(OrderTimeoutError) as info:
        ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="1", newClientOrderId="o-1")

    assert isinstance(info.value, OrderStatusUnknownError)
    assert isinstance(info.value, RequestTimeoutError)
    assert "o-1" == info.value.client_order_id


def test_dropped_link_fails_in_flight_at_once(make_service: MakeService, fx: FakeExchange) -> None:
    """Requests in flight fail at once when the link drops, long before their timeout."""
    ws = make_service(request_timeout=30, max_reconnect_attempts=0)
    fx.withhold("depth")
    fx.withhold("order.place")
    read = ws.get_depth("BTCUSDT", wait_for_response=False)
    order = ws.place_market_order(
        wait_for_response=False, symbol="BTCUSDT", side="BUY", quantity="1"
    )
    fx.wait_for_requests(2, timeout=5)

    start = time.monotonic()
    fx.drop_connections(close_frame=False)

    with pytest.raises(ConnectionLostError):
        read.result(timeout=5)
    with pytest.raises(OrderConnectionLostError) as info:
        order.result(timeout=5)
    assert time.monotonic() - start < 3
    assert isinstance(info.value, RequestError)
    assert (
        info.value.client_order_id
        == fx.requests_for("order.place")[0]["params"]["newClientOrderId"]
    )
    with pytest.raises(ConnectionError):
        ws.get_ticker_price("BTCUSDT")


def test_close_leaves_no_thread_and_is_idempotent(fx: FakeExchange) -> None:
    """close() twice stops every bfsync thread; later calls raise ConnectionError."""
    api_key, secret = fx.add_hmac_key()
    ws = BinanceClient().websocket_service(api_key, secret, config={"ws_url": fx.url})
    ws.get_ticker_price("BTCUSDT", wait_for_response=False).add_done_callback(lambda f: None)
    ws.get_ticker_price("BTCUSDT")

    ws.close()
    ws.close()

    assert [] == client_threads()
    assert State.CLOSED == ws.state
    with pytest.raises(ConnectionError):
        ws.get_ticker_price("BTCUSDT")


def test_close_fails_pending_requests(make_service: MakeService, fx: FakeExchange) -> None:
    """close() settles every pending future with ConnectionLostError."""
    ws = make_service()
    fx.withhold("depth")
    futures = [ws.get_depth("BTCUSDT", wait_for_response=False) for _ in range(5)]
    fx.wait_for_requests(5, timeout=5)

    ws.close()

    for future in futures:
        with pytest.raises(ConnectionLostError):
            future.result(timeout=5)


def test_close_from_another_thread_and_connect_again(make_service: MakeService) -> None:
    """close() works from any thread, and connect() opens the service again."""
    ws = make_service()
    closer = threading.Thread(target=ws.close)
    closer.start()
    closer.join(10)

    assert not closer.is_alive()
    ws.connect()
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_close_from_a_done_callback(make_service: MakeService) -> None:
    """close() from inside a future's callback does not deadlock."""
    ws = make_service()
    closed = threading.Event()

    def on_done(_: concurrent.futures.Future[Any]) -> None:
        ws.close()
        closed.set()

    ws.get_ticker_price("BTCUSDT", wait_for_response=False).add_done_callback(on_done)

    assert closed.wait(10)


def test_callbacks_run_off_the_io_thread(make_service: MakeService) -> None:
    """Done-callbacks run on the dispatcher thread, never on the I/O thread."""
    ws = make_service()
    names: list[str] = []
    done = threading.Event()

    def on_done(_: concurrent.futures.Future[Any]) -> None:
        names.append(threading.current_thread().name)
        done.set()

    ws.get_ticker_price("BTCUSDT", wait_for_response=False).add_done_callback(on_done)

    assert done.wait(5)
    assert ["bfsync-dispatch"] == names


def test_context_manager(fx: FakeExchange, credentials: dict[str, Credentials]) -> None:
    """The service is a context manager that connects and closes."""
    api_key, secret = credentials["HMAC"]

    with WebSocketService(api_key, secret, config={"ws_url": fx.url}) as ws:
        assert 200 == ws.get_ticker_price("BTCUSDT")["status"]

    assert State.CLOSED == ws.state
    assert [] == client_threads()


def test_connect_failure_is_connection_error() -> None:
    """A server that is not there gives ConnectionError from the factory, no thread left."""
    with pytest.raises(ConnectionError):
        BinanceClient().websocket_service(
            "k", "S" * 64, config={"ws_url": "ws://127.0.0.1:9/ws-fapi/v1", "connection_timeout": 2}
        )
    assert [] == client_threads()


def test_state_change_callback(make_service: MakeService) -> None:
    """on_state_change sees the states, on the dispatcher thread."""
    ws = make_service("Ed25519")
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def on_state(state: State) -> None:
        seen.append((state.value, threading.current_thread().name))
        if state is State.CLOSED:
            done.set()

    ws.on_state_change = on_state
    ws.login()
    ws.close()

    assert done.wait(5)
    assert ("logged_in", "bfsync-dispatch") in seen


def test_server_pings_are_answered(fx: FakeExchange, make_service: MakeService) -> None:
    """The I/O thread answers the server's pings with pongs."""
    fx.ping_interval = 0.1
    ws = make_service()

    fx.wait_for(lambda: fx.pongs_received >= 3, timeout=5)

    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
