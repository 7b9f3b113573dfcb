"""The REST calls against FakeExchange over real HTTP on 127.0.0.1, in both forms."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any, Callable

import pytest
import requests

from bfsync import WebSocketService
from bfsync.exceptions import (
    ConnectionError,
    OrderNotFoundError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    OrderValidationError,
    RateLimitError,
    RequestError,
)
from bfsync.signing import HmacSigner
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .conftest import KEY_KINDS, Credentials

WAIT = scaled(10)
Service = Callable[..., WebSocketService]


def _place(ws: WebSocketService) -> dict[str, Any]:
    """A resting LIMIT order and a STOP_MARKET algo order on BTCUSDT; their results."""
    order = ws.place_limit_order(
        symbol="BTCUSDT", side="BUY", quantity="0.01", price="40000", timeInForce="GTC"
    )["result"]
    algo = ws.place_stop_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.01", stopPrice="45000"
    )["result"]
    return {"order": order, "algo": algo}


def _ids(items: list[dict[str, Any]], key: str) -> list[Any]:
    return [item[key] for item in items]


# (call, check): the call takes (ws, placed) and returns what the method returned; the check
# takes (result, placed, fx) and asserts.
CASES: dict[str, tuple[Callable[..., Any], Callable[..., None]]] = {
    "get_open_orders(symbol)": (
        lambda ws, p, w: ws.get_open_orders("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_in(p["order"]["orderId"], _ids(r, "orderId")),
    ),
    "get_open_orders()": (
        lambda ws, p, w: ws.get_open_orders(wait_for_response=w),
        lambda r, p, fx: _check_in(p["order"]["clientOrderId"], _ids(r, "clientOrderId")),
    ),
    "get_open_algo_orders": (
        lambda ws, p, w: ws.get_open_algo_orders("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_in(p["algo"]["algoId"], _ids(r, "algoId")),
    ),
    "get_algo_order(clientAlgoId)": (
        lambda ws, p, w: ws.get_algo_order(
            clientAlgoId=p["algo"]["clientAlgoId"], wait_for_response=w
        ),
        lambda r, p, fx: _check_eq(p["algo"]["algoId"], r["algoId"]),
    ),
    "get_algo_order(algoId)": (
        lambda ws, p, w: ws.get_algo_order(p["algo"]["algoId"], wait_for_response=w),
        lambda r, p, fx: _check_eq("NEW", r["algoStatus"]),
    ),
    "cancel_all_open_orders": (
        lambda ws, p, w: ws.cancel_all_open_orders("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_eq("CANCELED", fx.order(p["order"]["orderId"])["status"]),
    ),
    "cancel_all_algo_orders": (
        lambda ws, p, w: ws.cancel_all_algo_orders("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_eq("CANCELED", fx.algo_order(p["algo"]["algoId"])["algoStatus"]),
    ),
    "change_leverage": (
        lambda ws, p, w: ws.change_leverage("BTCUSDT", 10, wait_for_response=w),
        lambda r, p, fx: _check_eq({"leverage": 10, "symbol": "BTCUSDT"}, _pick(r, "leverage")),
    ),
    "change_margin_type": (
        lambda ws, p, w: ws.change_margin_type("ETHUSDT", "ISOLATED", wait_for_response=w),
        lambda r, p, fx: _check_eq(200, r["code"]),
    ),
    "get_position_mode": (
        lambda ws, p, w: ws.get_position_mode(wait_for_response=w),
        lambda r, p, fx: _check_eq({"dualSidePosition": False}, r),
    ),
    "get_multi_assets_mode": (
        lambda ws, p, w: ws.get_multi_assets_mode(wait_for_response=w),
        lambda r, p, fx: _check_eq({"multiAssetsMargin": False}, r),
    ),
    "change_multi_assets_mode": (
        lambda ws, p, w: ws.change_multi_assets_mode(True, wait_for_response=w),
        lambda r, p, fx: _check_eq(200, r["code"]),
    ),
    "get_klines": (
        lambda ws, p, w: ws.get_klines("BTCUSDT", "1h", limit=3, wait_for_response=w),
        lambda r, p, fx: _check_eq([3600000 - 1] * 3, [k[6] - k[0] for k in r]),
    ),
    "get_continuous_klines": (
        lambda ws, p, w: ws.get_continuous_klines(
            "BTCUSDT", "PERPETUAL", "1d", limit=2, wait_for_response=w
        ),
        lambda r, p, fx: _check_eq(2, len(r)),
    ),
    "get_mark_price(symbol)": (
        lambda ws, p, w: ws.get_mark_price("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_eq("50000.00000000", r["markPrice"]),
    ),
    "get_mark_price()": (
        lambda ws, p, w: ws.get_mark_price(wait_for_response=w),
        lambda r, p, fx: _check_in("ETHUSDT", _ids(r, "symbol")),
    ),
    "get_funding_rate_history": (
        lambda ws, p, w: ws.get_funding_rate_history(
            symbol="BTCUSDT", limit=5, wait_for_response=w
        ),
        lambda r, p, fx: _check_eq(5, len(r)),
    ),
    "get_account_trades": (
        lambda ws, p, w: ws.get_account_trades("BTCUSDT", limit=10, wait_for_response=w),
        lambda r, p, fx: _check_eq(["0.010"], [t["qty"] for t in r]),
    ),
    "get_income_history": (
        lambda ws, p, w: ws.get_income_history(incomeType="FUNDING_FEE", wait_for_response=w),
        lambda r, p, fx: _check_eq([], r),
    ),
    "get_commission_rate": (
        lambda ws, p, w: ws.get_commission_rate("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_eq("BTCUSDT", r["symbol"]),
    ),
    "get_leverage_brackets(symbol)": (
        lambda ws, p, w: ws.get_leverage_brackets("BTCUSDT", wait_for_response=w),
        lambda r, p, fx: _check_eq(1, r["brackets"][0]["bracket"]),
    ),
    "get_leverage_brackets()": (
        lambda ws, p, w: ws.get_leverage_brackets(wait_for_response=w),
        lambda r, p, fx: _check_in("BTCUSDT", _ids(r, "symbol")),
    ),
    "get_server_time": (
        lambda ws, p, w: ws.get_server_time(wait_for_response=w),
        lambda r, p, fx: _check_eq(True, abs(r["serverTime"] - fx.server_time()) < 60000),
    ),
}


def _check_eq(expected: Any, actual: Any) -> None:
    assert expected == actual


def _check_in(item: Any, items: list[Any]) -> None:
    assert item in items


def _pick(result: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: result[key] for key in (*keys, "symbol")}


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "future"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_call(fx: FakeExchange, make_service: Service, case: str, blocking: bool) -> None:
    """Each REST call works against the fake, blocking and as a Future, with a frame-like reply."""
    ws = make_service(validation=True)
    placed = _place(ws)
    ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="0.01")  # one trade
    call, check = CASES[case]

    reply = call(ws, placed, blocking)
    if not blocking:
        assert isinstance(reply, concurrent.futures.Future)
        reply = reply.result(WAIT)

    assert 200 == reply["status"]
    assert "REQUEST_WEIGHT" == reply["rateLimits"][0]["rateLimitType"]
    check(reply["result"], placed, fx)


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "future"])
def test_change_position_mode(fx: FakeExchange, make_service: Service, blocking: bool) -> None:
    """Hedge mode on (no orders or positions), then reported by get_position_mode."""
    ws = make_service()
    reply = ws.change_position_mode(True, wait_for_response=blocking)
    if not blocking:
        reply = reply.result(WAIT)

    assert {"code": 200, "msg": "success"} == reply["result"]
    assert {"dualSidePosition": True} == ws.get_position_mode()["result"]


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_signed_with_every_key_kind(fx: FakeExchange, make_service: Service, kind: str) -> None:
    """HMAC, RSA and Ed25519 keys sign REST calls the way the fake (and Binance) checks them."""
    ws = make_service(kind)

    assert [] == ws.get_open_orders("BTCUSDT")["result"]
    assert 200 == ws.change_leverage("BTCUSDT", 5)["status"]


def test_skewed_server_clock_uses_the_measured_offset(
    fx: FakeExchange, make_service: Service
) -> None:
    """A server clock 3 s ahead: signed REST calls carry the offset measured at connect()."""
    fx.clock_offset_ms = 3000
    ws = make_service()

    assert 200 == ws.get_open_orders()["status"]


def test_recv_window_from_config_is_sent(fx: FakeExchange, make_service: Service) -> None:
    """config recv_window goes out as recvWindow on signed REST calls."""
    ws = make_service(recv_window=7000)
    ws.get_open_orders("BTCUSDT")

    [request] = fx.requests_for("GET /fapi/v1/openOrders")
    assert "7000" == request["params"]["recvWindow"]


def test_exchange_errors_reach_the_caller(fx: FakeExchange, make_service: Service) -> None:
    """A refusal keeps Binance's code and status (no need to change margin type: -4046)."""
    ws = make_service()

    with pytest.raises(RequestError) as caught:
        ws.change_margin_type("BTCUSDT", "CROSSED")

    assert (-4046, 400) == (caught.value.code, caught.value.status)


def test_validation_raises_before_sending(fx: FakeExchange, make_service: Service) -> None:
    """With validation a bad leverage raises in the caller's thread; nothing is sent."""
    ws = make_service(validation=True)

    with pytest.raises(OrderValidationError, match="leverage"):
        ws.change_leverage("BTCUSDT", 0)

    assert [] == fx.requests_for("POST /fapi/v1/leverage")


def test_future_callbacks_run_on_the_dispatcher(fx: FakeExchange, make_service: Service) -> None:
    """A REST future's done-callback runs on bfsync's dispatcher; the call on bfsync-rest-N."""
    ws = make_service()
    seen: list[str] = []
    done = threading.Event()

    def callback(future: concurrent.futures.Future[Any]) -> None:
        seen.append(threading.current_thread().name)
        done.set()

    future = ws.get_server_time(wait_for_response=False)
    future.add_done_callback(callback)

    assert done.wait(WAIT)
    assert ["bfsync-dispatch"] == seen
    assert any(t.name.startswith("bfsync-rest-") for t in threading.enumerate())


def test_rate_limited_by_the_server(fx: FakeExchange, make_service: Service) -> None:
    """Over the fake's weight limit: 429 as RateLimitError with a positive retry_after."""
    fx.set_rate_limits(request_weight=50)
    ws = make_service()
    ws.get_open_orders()  # weight 40

    with pytest.raises(RateLimitError) as caught:
        ws.get_open_orders()

    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert 429 == caught.value.status


def test_5xx_on_a_state_change_is_an_unknown_outcome(
    fx: FakeExchange, make_service: Service
) -> None:
    """A scripted 503 on change_leverage: OrderStatusUnknownError naming the call."""
    fx.script("POST /fapi/v1/leverage", error={"code": -1000, "msg": "Unknown error."}, status=503)
    ws = make_service()

    with pytest.raises(OrderStatusUnknownError) as caught:
        ws.change_leverage("BTCUSDT", 3)

    assert ("POST /fapi/v1/leverage", 503) == (caught.value.method, caught.value.status)


def test_withheld_cancel_all_times_out_as_unknown(fx: FakeExchange, make_service: Service) -> None:
    """No answer to cancel-all: OrderTimeoutError (outcome unknown); the fake did cancel."""
    ws = make_service(request_timeout=scaled(1))
    placed = _place(ws)
    fx.withhold("DELETE /fapi/v1/allOpenOrders", times=1)

    with pytest.raises(OrderTimeoutError) as caught:
        ws.cancel_all_open_orders("BTCUSDT")

    assert "DELETE /fapi/v1/allOpenOrders" == caught.value.method
    assert "CANCELED" == fx.order(placed["order"]["orderId"])["status"]
    assert 1 == len(fx.requests_for("DELETE /fapi/v1/allOpenOrders"))  # never sent again


# ---- resolve_unknown --------------------------------------------------------------------------


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "future"])
def test_resolve_a_withheld_algo_order(
    fx: FakeExchange, make_service: Service, blocking: bool
) -> None:
    """algoOrder.place gets no reply; resolve_unknown finds it with the REST algo query."""
    ws = make_service(request_timeout=scaled(1))
    fx.withhold("algoOrder.place", times=1)
    with pytest.raises(OrderTimeoutError) as caught:
        ws.place_stop_market_order(
            symbol="BTCUSDT", side="SELL", quantity="0.01", stopPrice="45000"
        )
    client_id = caught.value.client_order_id

    reply = ws.resolve_unknown(caught.value, wait_for_response=blocking)
    if not blocking:
        reply = reply.result(WAIT)

    assert (client_id, "NEW") == (reply["result"]["clientAlgoId"], reply["result"]["algoStatus"])
    assert 1 == len(fx.requests_for("algoOrder.place"))
    assert 1 == len(fx.requests_for("GET /fapi/v1/algoOrder"))


def test_resolve_a_withheld_plain_order(fx: FakeExchange, make_service: Service) -> None:
    """order.place gets no reply; resolve_unknown finds it with order.status (symbol noted)."""
    ws = make_service(request_timeout=scaled(1))
    fx.withhold("order.place", times=1)
    with pytest.raises(OrderTimeoutError) as caught:
        ws.place_limit_order(
            symbol="ETHUSDT", side="BUY", quantity="0.1", price="2900", timeInForce="GTC"
        )

    reply = ws.resolve_unknown(caught.value)

    assert caught.value.client_order_id == reply["result"]["clientOrderId"]
    assert "ETHUSDT" == fx.requests_for("order.status")[0]["params"]["symbol"]


@pytest.mark.parametrize(
    ("method", "symbol"), [("algoOrder.place", None), ("order.place", "BTCUSDT")]
)
def test_resolve_an_order_never_placed(
    fx: FakeExchange, make_service: Service, method: str, symbol: Any
) -> None:
    """An order the exchange never got: OrderNotFoundError with its client id."""
    ws = make_service()
    lost = OrderTimeoutError("lost", client_order_id="bfs-never-placed", method=method)

    with pytest.raises(OrderNotFoundError) as caught:
        ws.resolve_unknown(lost, symbol=symbol)

    assert ("bfs-never-placed", -2013) == (caught.value.client_order_id, caught.value.code)


@pytest.mark.parametrize(
    ("exc", "match"),
    [
        (RequestError("plain"), "must be an OrderStatusUnknownError"),
        (OrderTimeoutError("no id", method="order.place"), "no client_order_id"),
        (OrderTimeoutError("x", client_order_id="bfs-x", method="order.place"), "symbol"),
    ],
)
def test_resolve_unknown_refuses_what_it_cannot_look_up(
    fx: FakeExchange, make_service: Service, exc: BaseException, match: str
) -> None:
    """Not an unknown outcome, no client id, or no symbol: ValueError saying which."""
    ws = make_service()

    with pytest.raises(ValueError, match=match):
        ws.resolve_unknown(exc)


# ---- lifecycle and URLs -----------------------------------------------------------------------


def test_calls_need_a_connected_service(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """Before connect() and after close(), REST calls raise ConnectionError; after it, work."""
    api_key, secret = credentials["HMAC"]
    ws = WebSocketService(api_key, secret, config={"ws_url": fx.url, "rest_url": fx.rest_url})
    with pytest.raises(ConnectionError):
        ws.get_server_time()
    try:
        ws.connect()
        assert 200 == ws.get_server_time()["status"]
        ws.close()
        with pytest.raises(ConnectionError):
            ws.get_server_time(wait_for_response=False)
        ws.connect()
        assert 200 == ws.get_server_time()["status"]
    finally:
        ws.close()


def test_close_settles_rest_futures(fx: FakeExchange, make_service: Service) -> None:
    """A REST future still waiting when the service closes fails with ConnectionError."""
    ws = make_service(request_timeout=scaled(30))
    fx.withhold("GET /fapi/v1/openOrders", times=1)
    future = ws.get_open_orders(wait_for_response=False)
    fx.wait_for_requests(1, method="GET /fapi/v1/openOrders", timeout=WAIT)

    ws.close()

    with pytest.raises(ConnectionError):
        future.result(WAIT)


def test_local_ws_url_without_rest_url_is_refused(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """ws_url on the fake but rest_url left at Binance's: REST use raises, naming rest_url."""
    api_key, secret = credentials["HMAC"]
    ws = WebSocketService(api_key, secret, config={"ws_url": fx.url})
    try:
        ws.connect()
        with pytest.raises(ConnectionError, match="rest_url"):
            ws.get_open_orders()
        with pytest.raises(ConnectionError, match="rest_url"):
            ws.load_exchange_info()
    finally:
        ws.close()


def test_validate_filters_from_the_fake(fx: FakeExchange, make_service: Service) -> None:
    """validate_filters loads exchangeInfo from fx.rest_url; an off-tick price is refused."""
    ws = make_service(validation=True, validate_filters=True)

    with pytest.raises(OrderValidationError, match=r"PRICE_FILTER|tick"):
        ws.place_limit_order(
            symbol="BTCUSDT", side="BUY", quantity="0.01", price="40000.001", timeInForce="GTC"
        )
    # Without the filters (fetched at connect() from fx.rest_url) the price would pass.


# ---- the fake's REST side, spoken to directly ---------------------------------------------------


def _signed(secret: str, query: str) -> str:
    return f"{query}&signature={HmacSigner(secret).sign(query)}"


def test_fake_checks_signature_key_and_timestamp(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """Bad signature -1022, unknown key -2015, stale timestamp -1021, as Binance answers."""
    api_key, secret = credentials["HMAC"]
    url = fx.rest_url + "/fapi/v1/openOrders"
    now = fx.server_time()
    good = _signed(secret, f"symbol=BTCUSDT&timestamp={now}")
    bad = _signed("x" * 64, f"symbol=BTCUSDT&timestamp={now}")
    stale = _signed(secret, f"symbol=BTCUSDT&timestamp={now - 60000}")
    headers = {"X-MBX-APIKEY": api_key}

    answers = [
        requests.get(f"{url}?{good}", headers=headers, timeout=WAIT),
        requests.get(f"{url}?{bad}", headers=headers, timeout=WAIT),
        requests.get(f"{url}?{good}", headers={"X-MBX-APIKEY": "Z" * 64}, timeout=WAIT),
        requests.get(f"{url}?{stale}", headers=headers, timeout=WAIT),
    ]

    assert [200, -1022, -2015, -1021] == [
        a.status_code if a.status_code == 200 else a.json()["code"] for a in answers
    ]


def test_fake_signs_over_query_and_body(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """POST with params split between query and body: totalParams is their concatenation."""
    api_key, secret = credentials["HMAC"]
    query = "symbol=BTCUSDT"
    body = f"leverage=7&timestamp={fx.server_time()}"
    signature = HmacSigner(secret).sign(query + body)

    answer = requests.post(
        f"{fx.rest_url}/fapi/v1/leverage?{query}",
        data=f"{body}&signature={signature}",
        headers={"X-MBX-APIKEY": api_key, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=WAIT,
    )

    assert (200, 7) == (answer.status_code, answer.json()["leverage"])


def test_fake_serves_market_data_and_listen_keys(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """exchangeInfo, depth, time, 404 and the listenKey endpoints share the fake's engine."""
    api_key, _ = credentials["HMAC"]
    base = fx.rest_url
    info = requests.get(f"{base}/fapi/v1/exchangeInfo", timeout=WAIT).json()
    depth = requests.get(f"{base}/fapi/v1/depth?symbol=BTCUSDT&limit=5", timeout=WAIT)
    missing = requests.get(f"{base}/fapi/v1/nothing", timeout=WAIT)
    started = requests.post(
        f"{base}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}, timeout=WAIT
    ).json()

    assert "BTCUSDT" in [s["symbol"] for s in info["symbols"]]
    # exchangeInfo weighs 1, depth with limit 5 weighs 2: 3 used in this minute.
    assert (5, "3") == (len(depth.json()["bids"]), depth.headers["X-MBX-USED-WEIGHT-1M"])
    assert 404 == missing.status_code
    assert {api_key: started["listenKey"]} == fx.listen_keys


def test_no_secret_in_logs(
    fx: FakeExchange,
    make_service: Service,
    credentials: dict[str, Credentials],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG logs of bfsync, requests and urllib3 show no signature and no secret."""
    caplog.set_level(logging.DEBUG)
    ws = make_service()
    ws.get_open_orders("BTCUSDT")
    ws.change_leverage("BTCUSDT", 4)

    signatures = [r["params"]["signature"] for r in fx.requests if r["connection"] == "rest"]
    assert 2 == len(signatures)
    assert "/fapi/v1/openOrders" in caplog.text  # urllib3 did log the request line
    for secret in [*signatures, credentials["HMAC"][1]]:
        assert secret not in caplog.text


def test_rest_works_while_the_websocket_is_down(fx: FakeExchange, make_service: Service) -> None:
    """With the WebSocket link lost and handshakes refused, cancel-all still goes over REST."""
    ws = make_service(max_reconnect_attempts=1, reconnect_delay=scaled(0.2))
    placed = _place(ws)
    fx.refuse_handshakes()
    fx.drop_connections()

    reply = ws.cancel_all_open_orders("BTCUSDT")

    assert 200 == reply["result"]["code"]
    assert "CANCELED" == fx.order(placed["order"]["orderId"])["status"]
