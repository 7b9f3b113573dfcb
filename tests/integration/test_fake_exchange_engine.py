"""
FakeExchange engine (issue 4): order.status / cancel / modify, algoOrder.cancel,
userDataStream.*, exchangeInfo filters, rate-limit enforcement, key revocation, clock skew.

Driven over a real socket with websocket-client and hand-signed frames.
"""

from __future__ import annotations

import json
import time
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

import pytest

from bfsync.signing import HmacSigner, Signer, load_signer
from bfsync.testing import FakeExchange

from .rawclient import LIMIT_BUY, Client, error_of, signed

Key = tuple[str, Signer]
Reply = dict[str, Any]

REVOKED_FRAME = {
    "id": None,
    "status": 401,
    "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
}
ORDER_IDS_MISSING = "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!"
STOP_MARKET = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "quantity": "0.010",
    "triggerPrice": "49000",
}


def fixture_info() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (files("bfsync") / "testing" / "exchange_info.json").read_text(encoding="utf-8")
    )
    return data


def fixture_filter(symbol: str, filter_type: str) -> dict[str, Any]:
    entry = next(s for s in fixture_info()["symbols"] if s["symbol"] == symbol)
    found: dict[str, Any] = next(f for f in entry["filters"] if f["filterType"] == filter_type)
    return found


@pytest.fixture
def key(fx: FakeExchange) -> Key:
    api_key, secret = fx.add_hmac_key()
    return api_key, HmacSigner(secret)


@pytest.fixture
def ed_key(fx: FakeExchange, tmp_path: Path) -> Key:
    api_key, path = fx.add_ed25519_key(tmp_path)
    return api_key, load_signer(path)


def result_of(reply: Reply) -> Any:
    assert 200 == reply["status"], reply
    return reply["result"]


def place(client: Client, fx: FakeExchange, key: Key, **change: Any) -> dict[str, Any]:
    params = {k: v for k, v in {**LIMIT_BUY, **change}.items() if v is not None}
    placed: dict[str, Any] = result_of(client.call("order.place", signed(fx, key, params)))
    return placed


def counts(reply: Reply) -> list[tuple[str, str, int, int, int]]:
    return [
        (r["rateLimitType"], r["interval"], r["intervalNum"], r["limit"], r["count"])
        for r in reply["rateLimits"]
    ]


# ---- exchangeInfo fixture ---------------------------------------------------------------------


def test_exchange_info_serves_the_fixture(fx: FakeExchange) -> None:
    """exchange_info() is the fixture with serverTime now."""
    info = fx.exchange_info()
    expected = fixture_info()
    assert expected["symbols"] == info["symbols"]
    assert expected["rateLimits"] == info["rateLimits"]
    assert abs(info["serverTime"] - fx.server_time()) < 2000
    info["symbols"].clear()
    assert len(expected["symbols"]) == len(fx.exchange_info()["symbols"])


def test_exchange_info_follows_limits_and_added_symbols(fx: FakeExchange) -> None:
    """Configured rate limits and add_symbol symbols show in exchange_info()."""
    fx.set_rate_limits(request_weight=100, orders_10s=7, orders_1m=70)
    fx.add_symbol("XRPUSDT", "0.5", tick_size="0.0001", step_size="0.1", min_notional="5")
    info = fx.exchange_info()
    limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
    assert {
        ("REQUEST_WEIGHT", "MINUTE"): 100,
        ("ORDERS", "SECOND"): 7,
        ("ORDERS", "MINUTE"): 70,
    } == limits
    xrp = info["symbols"][-1]
    assert ("XRPUSDT", "TRADING", 4, 1) == (
        xrp["symbol"],
        xrp["status"],
        xrp["pricePrecision"],
        xrp["quantityPrecision"],
    )
    by_type = {f["filterType"]: f for f in xrp["filters"]}
    assert "0.0001" == by_type["PRICE_FILTER"]["tickSize"]
    assert ("0.1", "0.1") == (by_type["LOT_SIZE"]["minQty"], by_type["LOT_SIZE"]["stepSize"])
    assert "5" == by_type["MIN_NOTIONAL"]["notional"]


def test_fixture_prices_and_listing(client: Client) -> None:
    """BTCUSDT 50000, ETHUSDT 3000; a non-TRADING symbol answers by name but is not listed."""
    every = result_of(client.call("ticker.price"))
    assert [("BTCUSDT", "50000.00"), ("ETHUSDT", "3000.00")] == [
        (t["symbol"], t["price"]) for t in every
    ]
    old = result_of(client.call("ticker.price", {"symbol": "OLDUSDT"}))
    assert "0.1000" == old["price"]
    assert 2 == len(result_of(client.call("ticker.book")))
    book = result_of(client.call("depth", {"symbol": "BTCUSDT", "limit": 5}))
    assert ["49999.90", "50000.10"] == [book["bids"][0][0], book["asks"][0][0]]


def test_add_symbol_still_works(fx: FakeExchange, client: Client, key: Key) -> None:
    """A symbol added with add_symbol takes orders with its own filters."""
    fx.add_symbol("XRPUSDT", "0.5", tick_size="0.0001", step_size="1", min_notional="5")
    ok = place(client, fx, key, symbol="XRPUSDT", price="0.4999", quantity="20")
    assert "NEW" == ok["status"]
    params = dict(LIMIT_BUY, symbol="XRPUSDT", price="0.49995", quantity="20")
    assert (400, -1111) == error_of(client.call("order.place", signed(fx, key, params)))


# ---- filters, both ways --------------------------------------------------------------------------


def test_fixture_filter_values_are_used() -> None:
    """The cases below rely on these BTCUSDT / ETHUSDT fixture values."""
    assert {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764"} == {
        k: v for k, v in fixture_filter("BTCUSDT", "PRICE_FILTER").items() if k != "tickSize"
    }
    assert "0.10" == fixture_filter("BTCUSDT", "PRICE_FILTER")["tickSize"]
    assert ("0.001", "1000") == tuple(
        fixture_filter("BTCUSDT", "LOT_SIZE")[k] for k in ("minQty", "maxQty")
    )
    assert "120" == fixture_filter("BTCUSDT", "MARKET_LOT_SIZE")["maxQty"]
    assert "100" == fixture_filter("BTCUSDT", "MIN_NOTIONAL")["notional"]
    assert "20" == fixture_filter("ETHUSDT", "MIN_NOTIONAL")["notional"]


PRICE_CASES = [
    # (change, expected code or None for accepted)
    ({"price": "556.70", "quantity": "0.200"}, -4013),
    ({"price": "556.80", "quantity": "0.200"}, None),
    ({"price": "49000.05"}, -1111),
    ({"price": "49000.1"}, None),
    ({"quantity": "0.0101"}, -1111),
    ({"quantity": "0.011"}, None),
    ({"quantity": "1000.001"}, -4005),
    ({"quantity": "1000"}, None),
    ({"quantity": "0.001", "price": "49000.0"}, -4164),
    ({"quantity": "0.002", "price": "50000.0"}, None),
    ({"symbol": "ETHUSDT", "quantity": "0.006", "price": "3000.00"}, -4164),
    ({"symbol": "ETHUSDT", "quantity": "0.007", "price": "2999.00"}, None),
    ({"symbol": "ETHUSDT", "price": "39.85", "quantity": "1.000"}, -4013),
    ({"symbol": "ETHUSDT", "price": "39.86", "quantity": "1.000"}, None),
    ({"symbol": "OLDUSDT", "price": "0.1000", "quantity": "100"}, -4140),
]


@pytest.mark.parametrize(("change", "code"), PRICE_CASES)
def test_limit_filters_from_fixture(
    fx: FakeExchange, client: Client, key: Key, change: dict[str, Any], code: Optional[int]
) -> None:
    """LIMIT orders meet the fixture's PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL and status."""
    params = {**LIMIT_BUY, **change}
    reply = client.call("order.place", signed(fx, key, params))
    if code is None:
        assert "NEW" == result_of(reply)["status"]
    else:
        assert (400, code) == error_of(reply)


def test_max_price_both_ways(fx: FakeExchange, client: Client, key: Key) -> None:
    """maxPrice 4529764: one tick above is -4002, the bound itself is accepted."""
    fx.set_price("BTCUSDT", "4529764")
    sell = {"side": "SELL", "quantity": "0.001"}
    above = dict(LIMIT_BUY, price="4529764.1", **sell)
    assert (400, -4002) == error_of(client.call("order.place", signed(fx, key, above)))
    at = dict(LIMIT_BUY, price="4529764.0", **sell)
    assert "NEW" == result_of(client.call("order.place", signed(fx, key, at)))["status"]


def test_market_lot_size_both_ways(fx: FakeExchange, client: Client, key: Key) -> None:
    """MARKET orders use MARKET_LOT_SIZE (max 120) and the mark price for MIN_NOTIONAL."""
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
    cases = [("120.001", (400, -4005)), ("0.001", (400, -4164))]
    for qty, expected in cases:
        params = dict(market, quantity=qty)
        assert expected == error_of(client.call("order.place", signed(fx, key, params)))
    for qty in ("120", "0.002"):
        params = dict(market, quantity=qty)
        assert 200 == client.call("order.place", signed(fx, key, params))["status"]


def test_notional_skipped_when_reduce_only(fx: FakeExchange, client: Client, key: Key) -> None:
    """A reduce-only order below MIN_NOTIONAL is accepted."""
    fx.set_position("BTCUSDT", "-0.001")
    order = place(client, fx, key, quantity="0.001", reduceOnly="true")
    assert (True, "NEW") == (order["reduceOnly"], order["status"])


def test_tick_and_step_codes_with_coarse_grid(fx: FakeExchange, client: Client, key: Key) -> None:
    """-4014 / -4023 / -4004 need a grid the fixture lacks (0.5 tick, 0.005 step, min 0.010)."""
    fx.add_symbol(
        "GRIDUSDT", "100", tick_size="0.5", step_size="0.005", min_qty="0.010", min_notional="0"
    )
    base = dict(LIMIT_BUY, symbol="GRIDUSDT", price="99.5", quantity="0.015")
    cases = [
        ({"price": "99.3"}, (400, -4014)),
        ({"quantity": "0.017"}, (400, -4023)),
        ({"quantity": "0.005"}, (400, -4004)),
    ]
    for change, expected in cases:
        params = {**base, **change}
        assert expected == error_of(client.call("order.place", signed(fx, key, params)))
    assert "NEW" == result_of(client.call("order.place", signed(fx, key, base)))["status"]


def test_algo_order_filters(fx: FakeExchange, client: Client, key: Key) -> None:
    """algoOrder.place: MIN_NOTIONAL on the trigger price, -4140 on a non-TRADING symbol."""
    small = dict(STOP_MARKET, quantity="0.002")  # 0.002 x 49000 = 98 < 100
    assert (400, -4164) == error_of(client.call("algoOrder.place", signed(fx, key, small)))
    enough = dict(STOP_MARKET, quantity="0.003")
    assert 200 == client.call("algoOrder.place", signed(fx, key, enough))["status"]
    old = dict(STOP_MARKET, symbol="OLDUSDT", quantity="1000", triggerPrice="0.0500")
    reply = client.call("algoOrder.place", signed(fx, key, old))
    assert (400, -4140) == error_of(reply)
    assert "Invalid symbol status for opening position." == reply["error"]["msg"]


# ---- order.status ------------------------------------------------------------------------------


def test_order_status_by_either_id(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.status finds an order by orderId or origClientOrderId, with time and avgPrice."""
    placed = place(client, fx, key, newClientOrderId="status-1")
    by_id = result_of(
        client.call(
            "order.status", signed(fx, key, {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
        )
    )
    by_client = result_of(
        client.call(
            "order.status",
            signed(fx, key, {"symbol": "BTCUSDT", "origClientOrderId": "status-1"}),
        )
    )
    assert by_id == by_client
    assert (placed["orderId"], "NEW", "0.00") == (
        by_id["orderId"],
        by_id["status"],
        by_id["avgPrice"],
    )
    assert isinstance(by_id["time"], int)
    assert fx.order(placed["orderId"]) == by_id


def test_order_status_shows_fill(fx: FakeExchange, client: Client, key: Key) -> None:
    """A MARKET order placed with an ACK reply shows FILLED with avgPrice in order.status."""
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    ack = result_of(client.call("order.place", signed(fx, key, params)))
    status = result_of(
        client.call(
            "order.status", signed(fx, key, {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
        )
    )
    assert ("FILLED", "50000.00", "0.002") == (
        status["status"],
        status["avgPrice"],
        status["executedQty"],
    )


def test_order_status_errors(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.status: no id -1102, unknown id or other symbol -2013 'Order does not exist.'."""
    placed = place(client, fx, key)
    neither = client.call("order.status", signed(fx, key, {"symbol": "BTCUSDT"}))
    assert (400, -1102) == error_of(neither)
    assert ORDER_IDS_MISSING == neither["error"]["msg"]
    for params in (
        {"symbol": "BTCUSDT", "orderId": 1},
        {"symbol": "BTCUSDT", "origClientOrderId": "nope"},
        {"symbol": "ETHUSDT", "orderId": placed["orderId"]},
    ):
        reply = client.call("order.status", signed(fx, key, params))
        assert (400, -2013) == error_of(reply)
        assert "Order does not exist." == reply["error"]["msg"]
    unsigned = client.call("order.status", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    assert (400, -1102) == error_of(unsigned)


def test_order_lookup_helper(fx: FakeExchange) -> None:
    """fx.order() raises KeyError for an unknown order id."""
    with pytest.raises(KeyError):
        fx.order(123)


# ---- order.cancel ------------------------------------------------------------------------------


def test_order_cancel(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.cancel returns the order CANCELED; a second cancel is -2011 'Unknown order sent.'."""
    placed = place(client, fx, key, newClientOrderId="cancel-1")
    params = {"symbol": "BTCUSDT", "origClientOrderId": "cancel-1"}
    canceled = result_of(client.call("order.cancel", signed(fx, key, params)))
    assert ("CANCELED", placed["orderId"]) == (canceled["status"], canceled["orderId"])
    assert "time" not in canceled
    assert "CANCELED" == fx.order(placed["orderId"])["status"]
    again = client.call("order.cancel", signed(fx, key, params))
    assert (400, -2011) == error_of(again)
    assert "Unknown order sent." == again["error"]["msg"]


def test_order_cancel_errors(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.cancel: unknown or filled order -2011, no id -1102, weight 1 and no ORDERS."""
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    filled = result_of(client.call("order.place", signed(fx, key, market)))
    for order_id in (filled["orderId"], 99):
        params = {"symbol": "BTCUSDT", "orderId": order_id}
        assert (400, -2011) == error_of(client.call("order.cancel", signed(fx, key, params)))
    neither = client.call("order.cancel", signed(fx, key, {"symbol": "BTCUSDT"}))
    assert (400, -1102) == error_of(neither)
    assert ["REQUEST_WEIGHT"] == [r["rateLimitType"] for r in neither["rateLimits"]]


# ---- order.modify ------------------------------------------------------------------------------


def modify(client: Client, fx: FakeExchange, key: Key, order_id: int, **change: Any) -> Reply:
    params = {"symbol": "BTCUSDT", "side": "BUY", "orderId": order_id, "quantity": "0.010"}
    params.update(change)
    return client.call("order.modify", signed(fx, key, {k: v for k, v in params.items() if v}))


def test_order_modify_changes_price_and_qty(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.modify updates price and quantity, keeps the order NEW, counts ORDERS."""
    placed = place(client, fx, key)
    reply = modify(client, fx, key, placed["orderId"], price="48000.0", quantity="0.020")
    result = result_of(reply)
    assert ("48000.00", "0.020", "NEW", placed["orderId"]) == (
        result["price"],
        result["origQty"],
        result["status"],
        result["orderId"],
    )
    assert "time" not in result and isinstance(result["modifyId"], int)  # numbered by the fake
    stored = fx.order(placed["orderId"])
    assert ("48000.00", "0.020") == (stored["price"], stored["origQty"])
    assert [("ORDERS", 10, 2), ("ORDERS", 1, 2)] == [
        (r["rateLimitType"], r["intervalNum"], r["count"]) for r in reply["rateLimits"][1:]
    ]


def test_order_modify_by_client_id_echoes_modify_id(
    fx: FakeExchange, client: Client, key: Key
) -> None:
    """order.modify finds the order by origClientOrderId and echoes a modifyId sent."""
    place(client, fx, key, newClientOrderId="mod-1")
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "origClientOrderId": "mod-1",
        "quantity": "0.010",
        "price": "48500.0",
        "modifyId": "m-7",
    }
    result = result_of(client.call("order.modify", signed(fx, key, params)))
    assert ("mod-1", "48500.00", "m-7") == (
        result["clientOrderId"],
        result["price"],
        result["modifyId"],
    )


def test_order_modify_price_match(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.modify with priceMatch QUEUE moves a BUY to the best bid."""
    placed = place(client, fx, key)
    result = result_of(modify(client, fx, key, placed["orderId"], priceMatch="QUEUE"))
    assert ("49999.90", "QUEUE") == (result["price"], result["priceMatch"])


def test_order_modify_through_the_book(fx: FakeExchange, client: Client, key: Key) -> None:
    """A modify that crosses fills a GTC order and cancels a GTX (post-only) one."""
    gtc = place(client, fx, key)
    filled = result_of(modify(client, fx, key, gtc["orderId"], price="50010.0"))
    assert ("FILLED", "50000.00", "0.010") == (
        filled["status"],
        filled["avgPrice"],
        filled["executedQty"],
    )
    gtx = place(client, fx, key, timeInForce="GTX")
    canceled = result_of(modify(client, fx, key, gtx["orderId"], price="50010.0"))
    assert "CANCELED" == canceled["status"]


MODIFY_ERRORS = [
    ({"price": "49000.0"}, -5027),
    ({"price": "49000.0", "quantity": "0.0101"}, -1111),
    ({"price": "556.70"}, -4013),
    ({"price": "4529764.1"}, -4002),
    ({"price": "49000.05"}, -1111),
    ({"price": "60000.0"}, -4016),
    ({"price": "49000.0", "quantity": "1000.001"}, -4005),
    ({"price": "49000.0", "quantity": "0.001"}, -5029),
    ({"price": "49000.0", "priceMatch": "QUEUE"}, -1128),
    ({"price": None}, -1102),
    ({"price": "49000.0", "side": "SELL"}, -1130),
    ({"price": "49000.0", "orderId": 1}, -2013),
    ({"price": "49000.0", "symbol": "OLDUSDT"}, -5024),
    ({"price": "49000.0", "quantity": None}, -1102),
]


@pytest.mark.parametrize(("change", "code"), MODIFY_ERRORS)
def test_order_modify_errors(
    fx: FakeExchange, client: Client, key: Key, change: dict[str, Any], code: int
) -> None:
    """order.modify refuses no-op (-5027), filter breaks, bad params; the order is unchanged."""
    placed = place(client, fx, key)
    change = dict(change)
    order_id = change.pop("orderId", placed["orderId"])
    reply = modify(client, fx, key, order_id, **change)
    assert (400, code) == error_of(reply)
    assert ("49000.00", "0.010") == (
        fx.order(placed["orderId"])["price"],
        fx.order(placed["orderId"])["origQty"],
    )


def test_order_modify_same_values_written_differently(
    fx: FakeExchange, client: Client, key: Key
) -> None:
    """'49000.00' / '0.0100' equal the order's '49000.0' / '0.010': -5027 'No need to modify'."""
    placed = place(client, fx, key)
    reply = modify(client, fx, key, placed["orderId"], price="49000.00", quantity="0.0100")
    assert (400, -5027) == error_of(reply)
    assert "No need to modify the order." == reply["error"]["msg"]


def test_order_modify_limit_only_and_open_only(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.modify: a MARKET order is -5025; a canceled LIMIT order is -2013."""
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    filled = result_of(client.call("order.place", signed(fx, key, market)))
    reply = modify(client, fx, key, filled["orderId"], price="49000.0")
    assert (400, -5025) == error_of(reply)
    assert "Only limit order is supported." == reply["error"]["msg"]
    placed = place(client, fx, key)
    cancel = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    result_of(client.call("order.cancel", signed(fx, key, cancel)))
    assert (400, -2013) == error_of(modify(client, fx, key, placed["orderId"], price="48000.0"))


# ---- algoOrder.cancel ----------------------------------------------------------------------------


def test_algo_order_cancel(fx: FakeExchange, client: Client, key: Key) -> None:
    """algoOrder.cancel by algoId or clientAlgoId answers code "200" and marks it CANCELED."""
    first = result_of(client.call("algoOrder.place", signed(fx, key, STOP_MARKET)))
    second_params = dict(STOP_MARKET, clientAlgoId="algo-x")
    second = result_of(client.call("algoOrder.place", signed(fx, key, second_params)))
    by_id = result_of(client.call("algoOrder.cancel", signed(fx, key, {"algoId": first["algoId"]})))
    assert {
        "algoId": first["algoId"],
        "clientAlgoId": first["clientAlgoId"],
        "code": "200",
        "msg": "success",
    } == by_id
    by_client = result_of(
        client.call("algoOrder.cancel", signed(fx, key, {"clientAlgoId": "algo-x"}))
    )
    assert (second["algoId"], "algo-x") == (by_client["algoId"], by_client["clientAlgoId"])
    assert ["CANCELED", "CANCELED"] == [
        fx.algo_order(a["algoId"])["algoStatus"] for a in (first, second)
    ]


def test_algo_order_cancel_errors(fx: FakeExchange, client: Client, key: Key) -> None:
    """algoOrder.cancel: unknown or already canceled -2011 (400); neither id -1102."""
    placed = result_of(client.call("algoOrder.place", signed(fx, key, STOP_MARKET)))
    cancel = {"algoId": placed["algoId"]}
    result_of(client.call("algoOrder.cancel", signed(fx, key, cancel)))
    for params in (cancel, {"algoId": 5}, {"clientAlgoId": "nope"}):
        reply = client.call("algoOrder.cancel", signed(fx, key, params))
        assert (400, -2011) == error_of(reply)
        assert "Unknown order sent." == reply["error"]["msg"]
    neither = client.call("algoOrder.cancel", signed(fx, key))
    assert (400, -1102) == error_of(neither)


# ---- userDataStream.* --------------------------------------------------------------------------


def test_user_data_stream_lifecycle(fx: FakeExchange, client: Client, key: Key) -> None:
    """start (apiKey only) gives a 64-char key, again the same; ping keeps it; stop ends it."""
    api_key = {"apiKey": key[0]}
    first = result_of(client.call("userDataStream.start", api_key))
    listen_key = first["listenKey"]
    assert (64, True) == (len(listen_key), listen_key.isascii() and listen_key.isalnum())
    assert first == result_of(client.call("userDataStream.start", api_key))
    assert first == result_of(client.call("userDataStream.ping", api_key))
    assert {key[0]: listen_key} == fx.listen_keys
    assert {} == result_of(client.call("userDataStream.stop", api_key))
    assert {} == fx.listen_keys
    gone = client.call("userDataStream.ping", api_key)
    assert (400, -1125) == error_of(gone)
    assert "This listenKey does not exist." == gone["error"]["msg"]
    fresh = result_of(client.call("userDataStream.start", api_key))["listenKey"]
    assert listen_key != fresh


def test_user_data_stream_security(fx: FakeExchange, connect: Any, key: Key, ed_key: Key) -> None:
    """USER_STREAM needs apiKey (no signature) unless logged on; bad keys -2014 / -2015."""
    plain = connect()
    assert (400, -1102) == error_of(plain.call("userDataStream.start", {}))
    assert (400, -2014) == error_of(plain.call("userDataStream.start", {"apiKey": "bad-key"}))
    assert (400, -2015) == error_of(plain.call("userDataStream.start", {"apiKey": "A" * 64}))
    logged = connect()
    result_of(logged.call("session.logon", signed(fx, ed_key)))
    started = result_of(logged.call("userDataStream.start"))
    assert {ed_key[0]: started["listenKey"]} == fx.listen_keys
    assert ["REQUEST_WEIGHT"] == [
        r["rateLimitType"] for r in logged.call("userDataStream.ping")["rateLimits"]
    ]


def test_listen_key_expires_after_an_hour(fx: FakeExchange, client: Client, key: Key) -> None:
    """Without a ping for 60 minutes (server clock), the listenKey is gone: ping -1125."""
    result_of(client.call("userDataStream.start", {"apiKey": key[0]}))
    fx.clock_offset_ms = 61 * 60 * 1000
    assert {} == fx.listen_keys
    assert (400, -1125) == error_of(client.call("userDataStream.ping", {"apiKey": key[0]}))


# ---- session.status and clock skew -------------------------------------------------------------


def test_session_status_server_time_has_offset(fx: FakeExchange, client: Client) -> None:
    """session.status's serverTime includes clock_offset_ms."""
    fx.clock_offset_ms = 3_600_000
    local = int(time.time() * 1000)
    result = result_of(client.call("session.status"))
    assert {"apiKey", "authorizedSince", "connectedSince", "returnRateLimits", "serverTime"} == set(
        result
    )
    assert 3_599_000 < result["serverTime"] - local < 3_602_000


def test_logon_server_time_and_window_follow_skew(
    fx: FakeExchange, client: Client, ed_key: Key
) -> None:
    """With a skewed clock, logon's serverTime is skewed and -1021 follows the server clock."""
    fx.clock_offset_ms = -120_000
    local = int(time.time() * 1000)
    ahead = client.call("session.logon", signed(fx, ed_key, timestamp=local))
    assert (400, -1021) == error_of(ahead)
    assert (
        "Timestamp for this request was 1000ms ahead of the server's time."
        == (ahead["error"]["msg"])
    )
    logon = result_of(client.call("session.logon", signed(fx, ed_key)))
    assert -121_000 < logon["serverTime"] - local < -118_000
    assert logon["serverTime"] >= logon["authorizedSince"]
    fx.clock_offset_ms = 120_000
    behind = client.call("v2/account.balance", {"timestamp": local})
    assert (400, -1021) == error_of(behind)
    assert "Timestamp for this request is outside of the recvWindow." == behind["error"]["msg"]
    assert 200 == client.call("v2/account.balance", {"timestamp": fx.server_time()})["status"]


# ---- rate limits -------------------------------------------------------------------------------


def test_rate_limit_counts(fx: FakeExchange, client: Client, key: Key) -> None:
    """rateLimits count the handshake (5), each weight, and ORDERS for place/modify only."""
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 2400, 7)] == counts(client.call("session.status"))
    placed = client.call("order.place", signed(fx, key, LIMIT_BUY))
    assert [
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400, 7),
        ("ORDERS", "SECOND", 10, 300, 1),
        ("ORDERS", "MINUTE", 1, 1200, 1),
    ] == counts(placed)
    status = {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"]}
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 2400, 8)] == counts(
        client.call("order.status", signed(fx, key, status))
    )
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 2400, 13)] == counts(
        client.call("v2/account.balance", signed(fx, key))
    )


def test_request_weight_429(fx: FakeExchange, client: Client, connect: Any) -> None:
    """Over REQUEST_WEIGHT: 429 -1003 with Binance's message; not counted; per connection."""
    fx.set_rate_limits(request_weight=20)
    for _ in range(7):
        assert 200 == client.call("session.status")["status"]  # 5 + 7 x 2 = 19
    before = time.time() * 1000
    refused = client.call("session.status")
    assert (429, -1003) == error_of(refused)
    assert (
        "Too many requests; current limit of IP(127.0.0.1) is 20 requests per minute. "
        "Please use the websocket for live updates to avoid polling the API."
    ) == refused["error"]["msg"]
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 20, 19)] == counts(refused)
    assert before < refused["retryAfter"] <= fx.server_time() + 60_000
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 20, 20)] == counts(
        client.call("ticker.price", {"symbol": "BTCUSDT"})
    )
    assert 200 == connect().call("session.status")["status"]


def test_window_slides_with_the_server_clock(fx: FakeExchange, client: Client) -> None:
    """After a minute of server time the REQUEST_WEIGHT window is empty again."""
    fx.set_rate_limits(request_weight=10)
    client.call("session.status")
    assert (429, -1003) == error_of(client.call("depth", {"symbol": "BTCUSDT"}))
    fx.clock_offset_ms = 61_000
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 10, 10)] == counts(
        client.call("depth", {"symbol": "BTCUSDT"})
    )


def test_enforcement_can_be_switched_off(fx: FakeExchange, client: Client) -> None:
    """With enforce_rate_limits False, requests pass and the count goes over the limit."""
    assert fx.enforce_rate_limits is True
    fx.set_rate_limits(request_weight=10)
    fx.enforce_rate_limits = False
    for _ in range(3):
        reply = client.call("session.status")
    assert [("REQUEST_WEIGHT", "MINUTE", 1, 10, 11)] == counts(reply)
    assert fx.enforce_rate_limits is False


def test_orders_10s_429(fx: FakeExchange, client: Client, key: Key) -> None:
    """Over ORDERS per 10 s: 429 -1015 'Too many new orders; ... per 10 SECOND.'."""
    fx.set_rate_limits(orders_10s=3)
    for _ in range(3):
        place(client, fx, key)
    refused = client.call("order.place", signed(fx, key, LIMIT_BUY))
    assert (429, -1015) == error_of(refused)
    assert (
        "Too many new orders; current limit is 3 orders per 10 SECOND." == (refused["error"]["msg"])
    )
    assert [("ORDERS", "SECOND", 10, 3, 3), ("ORDERS", "MINUTE", 1, 1200, 3)] == counts(refused)[1:]
    assert 3 == len(fx.orders)


def test_orders_1m_429_counts_modify(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.modify counts ORDERS too; over the minute limit: '... per MINUTE.'."""
    fx.set_rate_limits(orders_1m=2)
    placed = place(client, fx, key)
    result_of(modify(client, fx, key, placed["orderId"], price="48000.0"))
    refused = modify(client, fx, key, placed["orderId"], price="47000.0")
    assert (429, -1015) == error_of(refused)
    assert "Too many new orders; current limit is 2 orders per MINUTE." == refused["error"]["msg"]
    assert "48000.00" == fx.order(placed["orderId"])["price"]


def test_orders_counted_per_api_key(fx: FakeExchange, connect: Any, key: Key) -> None:
    """ORDERS are per API key across connections; another key has its own count."""
    fx.set_rate_limits(orders_10s=2)
    first, second = connect(), connect()
    place(first, fx, key)
    place(second, fx, key)
    assert (429, -1015) == error_of(first.call("order.place", signed(fx, key, LIMIT_BUY)))
    other_key, secret = fx.add_hmac_key()
    assert "NEW" == place(first, fx, (other_key, HmacSigner(secret)))["status"]


def test_set_rate_limits_checks_values(fx: FakeExchange) -> None:
    """set_rate_limits refuses values that are not positive ints."""
    for bad in ({"request_weight": 0}, {"orders_10s": -1}, {"orders_1m": True}):
        with pytest.raises(ValueError):
            fx.set_rate_limits(**bad)


# ---- revoke_key ----------------------------------------------------------------------------------


def test_revoke_logged_on_key(fx: FakeExchange, client: Client, ed_key: Key) -> None:
    """A logged-on session's next request gets the id-null 401, then is logged out."""
    result_of(client.call("session.logon", signed(fx, ed_key)))
    fx.revoke_key(ed_key[0])
    assert REVOKED_FRAME == client.call("v2/account.balance", {"timestamp": fx.server_time()})
    assert None is result_of(client.call("session.status"))["apiKey"]
    later = client.call("v2/account.balance", signed(fx, ed_key))
    assert (400, -2015) == error_of(later)
    assert 4 == later["id"]
    assert (400, -1102) == error_of(client.call("v2/account.balance", {"timestamp": 1}))


def test_revoke_any_request_on_logged_on_session(
    fx: FakeExchange, client: Client, ed_key: Key
) -> None:
    """Even a public request on a session logged on with the key gets the 401 first."""
    result_of(client.call("session.logon", signed(fx, ed_key)))
    fx.revoke_key(ed_key[0])
    assert REVOKED_FRAME == client.call("session.status")
    assert 200 == client.call("session.status")["status"]


def test_revoke_signed_key(fx: FakeExchange, connect: Any, key: Key) -> None:
    """A connection that signed with the key gets the 401 once; a new connection gets -2015."""
    user = connect()
    result_of(user.call("v2/account.balance", signed(fx, key)))
    fx.revoke_key(key[0])
    assert 200 == user.call("depth", {"symbol": "BTCUSDT", "limit": 5})["status"]
    assert REVOKED_FRAME == user.call("order.place", signed(fx, key, LIMIT_BUY))
    assert {} == fx.orders
    assert (400, -2015) == error_of(user.call("order.place", signed(fx, key, LIMIT_BUY)))
    assert (400, -2015) == error_of(connect().call("v2/account.balance", signed(fx, key)))


def test_revoke_drops_listen_key_and_can_be_undone(fx: FakeExchange, client: Client) -> None:
    """revoke_key drops the key's listenKey; registering the key again makes it valid."""
    api_key, secret = fx.add_hmac_key()
    key = (api_key, HmacSigner(secret))
    result_of(client.call("userDataStream.start", {"apiKey": api_key}))
    fx.revoke_key(api_key)
    assert {} == fx.listen_keys
    assert REVOKED_FRAME == client.call("userDataStream.ping", {"apiKey": api_key})
    with pytest.raises(KeyError):
        fx.revoke_key(api_key)
    fx.add_hmac_key(api_key, secret)
    assert 200 == client.call("v2/account.balance", signed(fx, key))["status"]
