"""FakeExchange driven over a real socket with websocket-client and hand-signed frames."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import websocket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bfsync.signing import (
    Ed25519Signer,
    HmacSigner,
    Signer,
    load_signer,
    param_text,
)
from bfsync.testing import FakeExchange

from .rawclient import LIMIT_BUY, Client, error_of, signed

pytest_plugins = ["bfsync.testing.pytest_plugin"]

MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
CONDITIONAL = ["STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]

# Vector (A) of the reference (Binance's spot WS-API HMAC example) and vector (E) (RFC 8032 key).
VECTOR_A_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
VECTOR_A_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
VECTOR_A_SIG = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
VECTOR_E_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
VECTOR_E_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"
VECTOR_E_LOGON_SIG = (
    "NBJq5sX1RkU7ta3XDctruMgnrhyBcouMvvPIxxQSCUbVWxhp3ai6W7a0Iip/3nOwmJxkVIv6n20cekYCOa5qAg=="
)


@pytest.fixture
def hmac_key(fx: FakeExchange) -> tuple[str, HmacSigner]:
    api_key, secret = fx.add_hmac_key()
    return api_key, HmacSigner(secret)


# ---- connection basics ------------------------------------------------------------------------


def test_url_port_and_connection_count(fx: FakeExchange) -> None:
    """url names 127.0.0.1, the bound port and /ws-fapi/v1; connections are counted."""
    assert fx.port > 0
    assert fx.url == f"ws://127.0.0.1:{fx.port}/ws-fapi/v1"
    assert fx.connection_count == 0
    c = Client(fx.url)
    try:
        fx.wait_for(lambda: fx.connection_count == 1)
        assert fx.total_connections == 1
    finally:
        c.close()
    fx.wait_for(lambda: fx.connection_count == 0)


def test_any_path_is_accepted(fx: FakeExchange, connect: Any) -> None:
    """A connection to another path is served the same way."""
    c = connect(f"ws://127.0.0.1:{fx.port}/other")
    assert c.call("session.status")["status"] == 200


def test_ids_are_echoed(client: Client) -> None:
    """Integer, string and null ids come back unchanged."""
    for rid in (7, "abc-123", None):
        client.send("session.status", rid=rid)
        assert client.recv()["id"] == rid


def test_invalid_id_type_answers_id_null(client: Client) -> None:
    """A float id gets an id-null 400 error, and the connection stays open."""
    client.send("session.status", rid=1.5)
    reply = client.recv()
    assert reply["id"] is None and error_of(reply) == (400, -1000)
    assert client.call("session.status")["status"] == 200


def test_malformed_json_answers_and_keeps_connection(client: Client) -> None:
    """Malformed JSON gets id null, status 400, code -1000; the connection stays usable."""
    client.ws.send("{not json")
    reply = client.recv()
    assert reply["id"] is None and error_of(reply) == (400, -1000)
    assert client.call("session.status")["status"] == 200


def test_binary_frame_answered_with_error(client: Client) -> None:
    """A binary frame gets an id-null 400 error."""
    client.ws.send_binary(b'{"id":1,"method":"session.status"}')
    reply = client.recv()
    assert reply["id"] is None and reply["status"] == 400


def test_unknown_method(client: Client) -> None:
    """An unknown method gets 400, -1000 and a message naming it."""
    reply = client.call("no.such.method", {})
    assert error_of(reply) == (400, -1000)
    assert "no.such.method" in reply["error"]["msg"]


# ---- public methods ---------------------------------------------------------------------------


def test_session_status_before_logon(fx: FakeExchange, client: Client) -> None:
    """session.status gives the session object with null apiKey before logon."""
    result = client.call("session.status")["result"]
    assert set(result) == {
        "apiKey",
        "authorizedSince",
        "connectedSince",
        "returnRateLimits",
        "serverTime",
    }
    assert result["apiKey"] is None and result["authorizedSince"] is None
    assert result["returnRateLimits"] is True
    assert abs(result["serverTime"] - fx.server_time()) < 2000


def test_depth_shape(client: Client) -> None:
    """depth returns limit levels (capped at 20) of string pairs around the price."""
    result = client.call("depth", {"symbol": "BTCUSDT", "limit": 5})["result"]
    assert set(result) == {"lastUpdateId", "E", "T", "bids", "asks"}
    assert len(result["bids"]) == len(result["asks"]) == 5
    assert result["bids"][0] == ["49999.90", "0.250"]
    assert result["asks"][0][0] == "50000.10"
    bids = [float(p) for p, _ in result["bids"]]
    asks = [float(p) for p, _ in result["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    full = client.call("depth", {"symbol": "ETHUSDT"})["result"]
    assert len(full["bids"]) == len(full["asks"]) == 20
    assert full["bids"][0][0] == "2999.99"


def test_depth_errors(client: Client) -> None:
    """depth: missing symbol -1102, unknown symbol -1121, bad limit -1130."""
    reply = client.call("depth", {})
    assert error_of(reply) == (400, -1102)
    assert reply["error"]["msg"] == MANDATORY.format("symbol")
    assert error_of(client.call("depth", {"symbol": "NOPEUSDT"})) == (400, -1121)
    assert error_of(client.call("depth", {"symbol": "BTCUSDT", "limit": 7})) == (400, -1130)


def test_ticker_price(client: Client) -> None:
    """ticker.price gives one object for a symbol, a list for all."""
    one = client.call("ticker.price", {"symbol": "BTCUSDT"})["result"]
    assert set(one) == {"symbol", "price", "time"} and one["price"] == "50000.00"
    every = client.call("ticker.price")["result"]
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT"]


def test_ticker_book(client: Client) -> None:
    """ticker.book gives the best levels, for one symbol or all."""
    one = client.call("ticker.book", {"symbol": "ETHUSDT"})["result"]
    assert set(one) == {
        "lastUpdateId",
        "symbol",
        "bidPrice",
        "bidQty",
        "askPrice",
        "askQty",
        "time",
    }
    assert (one["bidPrice"], one["askPrice"]) == ("2999.99", "3000.01")
    assert len(client.call("ticker.book", {})["result"]) == 2


def test_set_price_moves_market(fx: FakeExchange, client: Client) -> None:
    """set_price changes the ticker and the book."""
    fx.set_price("BTCUSDT", "60000")
    assert client.call("ticker.price", {"symbol": "BTCUSDT"})["result"]["price"] == "60000.00"
    book = client.call("depth", {"symbol": "BTCUSDT", "limit": 5})["result"]
    assert book["bids"][0][0] == "59999.90"


# ---- signatures and keys ------------------------------------------------------------------------


def _key_of_kind(fx: FakeExchange, kind: str, tmp_path: Path) -> tuple[str, Signer]:
    if kind == "HMAC":
        api_key, secret = fx.add_hmac_key()
        return api_key, HmacSigner(secret)
    if kind == "Ed25519":
        api_key, path = fx.add_ed25519_key(tmp_path)
        return api_key, load_signer(path)
    if kind == "Ed25519-encrypted":
        api_key, path = fx.add_ed25519_key(tmp_path, password="pw")
        return api_key, load_signer(path, "pw")
    if kind == "RSA":
        api_key, path = fx.add_rsa_key(tmp_path)
        return api_key, load_signer(path)
    api_key, path = fx.add_rsa_key(tmp_path, password="pw", traditional=True)
    assert "BEGIN RSA PRIVATE KEY" in Path(path).read_text()
    return api_key, load_signer(path, "pw")


KINDS = ["HMAC", "Ed25519", "Ed25519-encrypted", "RSA", "RSA-traditional-encrypted"]


@pytest.mark.parametrize("kind", KINDS)
def test_signature_accepted(fx: FakeExchange, client: Client, tmp_path: Path, kind: str) -> None:
    """A correctly signed request is accepted for every key kind and file format."""
    key = _key_of_kind(fx, kind, tmp_path)
    reply = client.call("v2/account.balance", signed(fx, key))
    assert reply["status"] == 200, reply


@pytest.mark.parametrize("kind", KINDS)
def test_signature_rejected(fx: FakeExchange, client: Client, tmp_path: Path, kind: str) -> None:
    """A request signed with another key of the same kind gets -1022."""
    api_key, _ = _key_of_kind(fx, kind, tmp_path)
    _, other = _key_of_kind(fx, kind, tmp_path / "other")
    reply = client.call("v2/account.balance", signed(fx, (api_key, other)))
    assert error_of(reply) == (400, -1022)


def test_tampered_params_rejected(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """Changing a param after signing breaks the signature."""
    params = signed(fx, hmac_key, dict(LIMIT_BUY))
    params["quantity"] = "0.020"
    assert error_of(client.call("order.place", params)) == (400, -1022)


def test_hmac_signature_case_insensitive(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """An upper-case HMAC hex signature is accepted."""
    params = signed(fx, hmac_key)
    params["signature"] = params["signature"].upper()
    assert client.call("v2/account.balance", params)["status"] == 200


def test_percent_encoded_signature_accepted(
    fx: FakeExchange, client: Client, hmac_key: Any
) -> None:
    """A signature over the percent-encoded payload (official SDK style) is also accepted."""
    api_key, signer = hmac_key
    params = dict(LIMIT_BUY, newClientOrderId="a:b/c", apiKey=api_key, timestamp=fx.server_time())
    payload = "&".join(f"{k}={quote(param_text(params[k]), safe='')}" for k in sorted(params))
    params["signature"] = signer.sign(payload)
    reply = client.call("order.place", params)
    assert reply["status"] == 200 and reply["result"]["clientOrderId"] == "a:b/c"


def test_official_hmac_vector(fx: FakeExchange, client: Client) -> None:
    """Binance's published WS-API HMAC example (vector A) verifies, with the clock set to it."""
    fx.add_hmac_key(VECTOR_A_KEY, VECTOR_A_SECRET)
    timestamp = 1645423376532
    fx.clock_offset_ms = timestamp + 50 - int(time.time() * 1000)
    params = {
        "apiKey": VECTOR_A_KEY,
        "price": "52000.00",
        "quantity": "0.01000000",
        "recvWindow": 100,
        "side": "SELL",
        "symbol": "BTCUSDT",
        "timeInForce": "GTC",
        "timestamp": timestamp,
        "type": "LIMIT",
        "signature": VECTOR_A_SIG,
    }
    reply = client.call("order.place", params)
    assert reply["status"] == 200, reply
    assert reply["result"]["price"] == "52000.00"


def test_unknown_api_key(fx: FakeExchange, client: Client) -> None:
    """An unregistered API key gets -2015."""
    params = signed(fx, ("A" * 64, HmacSigner("x")))
    reply = client.call("v2/account.balance", params)
    assert error_of(reply) == (400, -2015)


def test_malformed_api_key(fx: FakeExchange, client: Client) -> None:
    """An API key that is not alphanumeric gets -2014."""
    params = signed(fx, ("bad-key!", HmacSigner("x")))
    assert error_of(client.call("v2/account.balance", params)) == (400, -2014)


@pytest.mark.parametrize("missing", ["apiKey", "timestamp", "signature"])
def test_missing_auth_param(fx: FakeExchange, client: Client, hmac_key: Any, missing: str) -> None:
    """A signed method without apiKey, timestamp or signature gets -1102 naming it."""
    params = signed(fx, hmac_key)
    del params[missing]
    reply = client.call("v2/account.balance", params)
    assert error_of(reply) == (400, -1102)
    assert reply["error"]["msg"] == MANDATORY.format(missing)


def test_timestamp_window(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """Old and future timestamps get -1021; recvWindow widens the window."""
    now = fx.server_time()
    old = client.call("v2/account.balance", signed(fx, hmac_key, timestamp=now - 6000))
    assert error_of(old) == (400, -1021)
    assert "recvWindow" in old["error"]["msg"]
    ahead = client.call("v2/account.balance", signed(fx, hmac_key, timestamp=now + 1500))
    assert error_of(ahead) == (400, -1021)
    assert "ahead" in ahead["error"]["msg"]
    wide = signed(fx, hmac_key, {"recvWindow": 10000}, timestamp=now - 6000)
    assert client.call("v2/account.balance", wide)["status"] == 200
    near = client.call("v2/account.balance", signed(fx, hmac_key, timestamp=now + 500))
    assert near["status"] == 200


def test_clock_offset(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """clock_offset_ms skews serverTime and the timestamp check."""
    local = int(time.time() * 1000)
    fx.clock_offset_ms = 60000
    server = client.call("session.status")["result"]["serverTime"]
    assert 59000 < server - local < 62000
    reply = client.call("v2/account.balance", signed(fx, hmac_key, timestamp=local))
    assert error_of(reply) == (400, -1021)


def test_register_key_forms(fx: FakeExchange, client: Client) -> None:
    """register_key takes PEM bytes and key objects, and refuses bad kinds and keys."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fx.register_key("pemKey1", "Ed25519", pem)
    fx.register_key("objKey1", "ed25519", private)
    for api_key in ("pemKey1", "objKey1"):
        reply = client.call("v2/account.balance", signed(fx, (api_key, Ed25519Signer(private))))
        assert reply["status"] == 200
    with pytest.raises(ValueError):
        fx.register_key("k1", "DSA", "secret")
    with pytest.raises(TypeError):
        fx.register_key("k1", "RSA", private)
    with pytest.raises(ValueError):
        fx.register_key("not alnum", "HMAC", "secret")
    assert "secret" not in repr(fx)


# ---- session.logon ------------------------------------------------------------------------------


def test_logon_then_timestamp_only(fx: FakeExchange, client: Client, tmp_path: Path) -> None:
    """After an Ed25519 logon, requests with only a timestamp are accepted until logout."""
    api_key, path = fx.add_ed25519_key(tmp_path)
    key = (api_key, load_signer(path))
    logon = client.call("session.logon", signed(fx, key))
    assert logon["status"] == 200, logon
    assert logon["result"]["apiKey"] == api_key
    assert logon["result"]["authorizedSince"] is not None
    assert client.call("session.status")["result"]["apiKey"] == api_key

    reply = client.call("order.place", dict(LIMIT_BUY, timestamp=fx.server_time()))
    assert reply["status"] == 200, reply
    no_ts = client.call("v2/account.balance", {})
    assert error_of(no_ts) == (400, -1102)
    old = client.call("v2/account.balance", {"timestamp": fx.server_time() - 10000})
    assert error_of(old) == (400, -1021)

    logout = client.call("session.logout")["result"]
    assert logout["apiKey"] is None and logout["authorizedSince"] is None
    after = client.call("v2/account.balance", {"timestamp": fx.server_time()})
    assert error_of(after) == (400, -1102)
    assert after["error"]["msg"] == MANDATORY.format("apiKey")


def test_logon_is_per_connection(fx: FakeExchange, connect: Any, tmp_path: Path) -> None:
    """A logon on one connection does not authorize another."""
    api_key, path = fx.add_ed25519_key(tmp_path)
    first, second = connect(), connect()
    assert first.call("session.logon", signed(fx, (api_key, load_signer(path))))["status"] == 200
    reply = second.call("v2/account.balance", {"timestamp": fx.server_time()})
    assert error_of(reply) == (400, -1102)


def test_logon_vector_e(fx: FakeExchange, client: Client) -> None:
    """The reference's derived Ed25519 logon vector (E) verifies."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR_E_SEED))
    fx.register_key(VECTOR_E_KEY, "Ed25519", private.public_key())
    timestamp = 1649729878532
    fx.clock_offset_ms = timestamp + 50 - int(time.time() * 1000)
    params = {"apiKey": VECTOR_E_KEY, "timestamp": timestamp, "signature": VECTOR_E_LOGON_SIG}
    reply = client.call("session.logon", params)
    assert reply["status"] == 200, reply


@pytest.mark.parametrize("kind", ["HMAC", "RSA"])
def test_logon_needs_ed25519(fx: FakeExchange, client: Client, tmp_path: Path, kind: str) -> None:
    """session.logon with a correctly signed HMAC or RSA key gets -1022."""
    key = _key_of_kind(fx, kind, tmp_path)
    assert error_of(client.call("session.logon", signed(fx, key))) == (400, -1022)
    assert client.call("session.status")["result"]["apiKey"] is None


# ---- order.place ---------------------------------------------------------------------------------

ORDER_FIELDS = {
    "orderId",
    "symbol",
    "status",
    "clientOrderId",
    "price",
    "avgPrice",
    "origQty",
    "executedQty",
    "cumQty",
    "cumQuote",
    "timeInForce",
    "type",
    "reduceOnly",
    "closePosition",
    "side",
    "positionSide",
    "stopPrice",
    "workingType",
    "priceProtect",
    "origType",
    "priceMatch",
    "selfTradePreventionMode",
    "goodTillDate",
    "updateTime",
}


def test_limit_order_shape(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """A resting LIMIT order: NEW, price and quantity by the symbol's precision, ids growing."""
    first = client.call("order.place", signed(fx, hmac_key, dict(LIMIT_BUY)))["result"]
    assert set(first) == ORDER_FIELDS
    assert first["status"] == "NEW"
    assert (first["price"], first["origQty"]) == ("49000.00", "0.010")
    assert first["executedQty"] == "0.000" and first["avgPrice"] == "0.00"
    assert first["reduceOnly"] is False and first["positionSide"] == "BOTH"
    assert first["clientOrderId"]
    second = client.call(
        "order.place", signed(fx, hmac_key, dict(LIMIT_BUY, newClientOrderId="mine-1"))
    )["result"]
    assert second["orderId"] == first["orderId"] + 1
    assert second["clientOrderId"] == "mine-1"
    stored = fx.orders[second["orderId"]]
    assert stored["status"] == "NEW" and "time" in stored


def test_market_order_ack_and_result(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """MARKET answers NEW with ACK (the default), FILLED at the price with RESULT."""
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    ack = client.call("order.place", signed(fx, hmac_key, dict(market)))["result"]
    assert ack["status"] == "NEW" and ack["executedQty"] == "0.000"
    assert fx.orders[ack["orderId"]]["status"] == "FILLED"
    result = client.call(
        "order.place", signed(fx, hmac_key, dict(market, newOrderRespType="RESULT"))
    )["result"]
    assert result["status"] == "FILLED"
    assert (result["avgPrice"], result["executedQty"]) == ("50000.00", "0.010")
    positions = client.call("v2/account.position", signed(fx, hmac_key))["result"]
    assert [(p["symbol"], p["positionAmt"]) for p in positions] == [("BTCUSDT", "0.020")]


def test_crossing_limit_fills_and_ioc_expires(
    fx: FakeExchange, client: Client, hmac_key: Any
) -> None:
    """A LIMIT through the book fills; an IOC that does not cross expires."""
    cross = dict(LIMIT_BUY, price="50010.0", newOrderRespType="RESULT")
    assert client.call("order.place", signed(fx, hmac_key, cross))["result"]["status"] == "FILLED"
    ioc = dict(LIMIT_BUY, timeInForce="IOC", newOrderRespType="RESULT")
    assert client.call("order.place", signed(fx, hmac_key, ioc))["result"]["status"] == "EXPIRED"


@pytest.mark.parametrize("order_type", CONDITIONAL)
def test_conditional_type_on_order_place(
    fx: FakeExchange, client: Client, hmac_key: Any, order_type: str
) -> None:
    """Every conditional type sent to order.place gets -4120 with Binance's message."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": order_type,
        "quantity": "0.010",
        "stopPrice": "49000",
        "price": "49000",
        "callbackRate": "1",
    }
    reply = client.call("order.place", signed(fx, hmac_key, params))
    assert error_of(reply) == (400, -4120)
    assert reply["error"]["msg"] == (
        "Order type not supported for this endpoint. "
        "Please use the Algo Order API endpoints instead."
    )


ORDER_ERRORS = [
    ({"side": None}, -1102),
    ({"symbol": None}, -1102),
    ({"type": None}, -1102),
    ({"side": "HOLD"}, -1117),
    ({"type": "FANCY"}, -1116),
    ({"timeInForce": "NOW"}, -1115),
    ({"symbol": "NOPEUSDT"}, -1121),
    ({"price": None}, -1102),
    ({"quantity": None}, -1102),
    ({"timeInForce": None}, -1102),
    ({"quantity": "abc"}, -1102),
    ({"quantity": "0"}, -4003),
    ({"quantity": "0.0101"}, -1111),
    ({"price": "49000.05"}, -1111),
    ({"price": "0.0"}, -4013),
    ({"quantity": "0.0001"}, -1111),
    ({"price": "60000.0"}, -4016),
    ({"quantity": "0.001", "price": "1000.0"}, -4164),
    ({"reduceOnly": "true"}, -2022),
    ({"reduceOnly": "maybe"}, -4062),
    ({"positionSide": "LONG"}, -4061),
    ({"newClientOrderId": "bad id!"}, -4015),
    ({"timeInForce": "GTX", "price": "50010.0"}, -5022),
    ({"timeInForce": "FOK"}, -5021),
    ({"timeInForce": "GTD"}, -1102),
    ({"timeInForce": "GTD", "goodTillDate": 1}, -5040),
    ({"newOrderRespType": "FULL"}, -1136),
    ({"selfTradePreventionMode": "NEVER"}, -5039),
    ({"priceMatch": "OPPONENT"}, -1128),
]


@pytest.mark.parametrize(("change", "code"), ORDER_ERRORS)
def test_order_place_errors(
    fx: FakeExchange, client: Client, hmac_key: Any, change: dict[str, Any], code: int
) -> None:
    """order.place refuses bad params with Binance's code."""
    params = {k: v for k, v in {**LIMIT_BUY, **change}.items() if v is not None}
    reply = client.call("order.place", signed(fx, hmac_key, params))
    assert error_of(reply) == (400, code), reply


def test_order_place_mandatory_message(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """A missing quantity gets Binance's -1102 message."""
    params = {k: v for k, v in LIMIT_BUY.items() if k != "quantity"}
    reply = client.call("order.place", signed(fx, hmac_key, params))
    assert reply["error"]["msg"] == MANDATORY.format("quantity")


def test_duplicate_client_order_id(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """A newClientOrderId already used by an open order gets -4116."""
    params = dict(LIMIT_BUY, newClientOrderId="dup")
    assert client.call("order.place", signed(fx, hmac_key, params))["status"] == 200
    assert error_of(client.call("order.place", signed(fx, hmac_key, params))) == (400, -4116)


def test_reduce_only_with_position(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """reduceOnly is accepted against an opposite position and reduces it."""
    fx.set_position("BTCUSDT", "0.010")
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "MARKET",
        "quantity": "0.010",
        "reduceOnly": "true",
        "newOrderRespType": "RESULT",
    }
    reply = client.call("order.place", signed(fx, hmac_key, params))
    assert reply["result"]["status"] == "FILLED" and reply["result"]["reduceOnly"] is True
    assert client.call("v2/account.position", signed(fx, hmac_key))["result"] == []


def test_price_match(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """priceMatch QUEUE places a BUY at the best bid."""
    params = {k: v for k, v in LIMIT_BUY.items() if k != "price"}
    params["priceMatch"] = "QUEUE"
    reply = client.call("order.place", signed(fx, hmac_key, params))
    assert reply["result"]["price"] == "49999.90" and reply["result"]["priceMatch"] == "QUEUE"


# ---- algoOrder.place -----------------------------------------------------------------------------

ALGO_FIELDS = {
    "algoId",
    "clientAlgoId",
    "algoType",
    "orderType",
    "symbol",
    "side",
    "positionSide",
    "timeInForce",
    "quantity",
    "algoStatus",
    "triggerPrice",
    "price",
    "icebergQuantity",
    "selfTradePreventionMode",
    "workingType",
    "priceMatch",
    "closePosition",
    "priceProtect",
    "reduceOnly",
    "createTime",
    "updateTime",
    "triggerTime",
    "goodTillDate",
}

ALGO_ORDERS = [
    {"type": "STOP", "side": "BUY", "quantity": "0.010", "triggerPrice": "51000", "price": "51100"},
    {"type": "STOP_MARKET", "side": "SELL", "quantity": "0.010", "triggerPrice": "49000"},
    {
        "type": "TAKE_PROFIT",
        "side": "SELL",
        "quantity": "0.010",
        "triggerPrice": "52000",
        "price": "51900",
    },
    {
        "type": "TAKE_PROFIT_MARKET",
        "side": "SELL",
        "closePosition": "true",
        "triggerPrice": "52000",
    },
    {
        "type": "TRAILING_STOP_MARKET",
        "side": "SELL",
        "quantity": "0.010",
        "callbackRate": "1",
        "activatePrice": "51000",
    },
]


@pytest.mark.parametrize("order", ALGO_ORDERS, ids=lambda o: o["type"])
def test_algo_order_place(fx: FakeExchange, client: Client, hmac_key: Any, order: Any) -> None:
    """Each conditional type is accepted by algoOrder.place and returns the algo object."""
    params = dict(order, algoType="CONDITIONAL", symbol="BTCUSDT", clientAlgoId="algo-1")
    reply = client.call("algoOrder.place", signed(fx, hmac_key, params))
    assert reply["status"] == 200, reply
    result = reply["result"]
    assert ALGO_FIELDS <= set(result)
    assert (result["algoStatus"], result["orderType"], result["clientAlgoId"]) == (
        "NEW",
        order["type"],
        "algo-1",
    )
    assert result["algoType"] == "CONDITIONAL" and result["icebergQuantity"] is None
    if "triggerPrice" in order:  # written with BTCUSDT's pricePrecision, 2
        assert result["triggerPrice"] == order["triggerPrice"] + ".00"
    assert result["closePosition"] is ("closePosition" in order)
    assert fx.algo_orders[result["algoId"]]["algoStatus"] == "NEW"


def test_algo_ids_increment(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """algoId increments and a clientAlgoId is generated when not sent."""
    params = dict(ALGO_ORDERS[1], algoType="CONDITIONAL", symbol="BTCUSDT")
    first = client.call("algoOrder.place", signed(fx, hmac_key, params))["result"]
    second = client.call("algoOrder.place", signed(fx, hmac_key, params))["result"]
    assert second["algoId"] == first["algoId"] + 1
    assert first["clientAlgoId"] != second["clientAlgoId"]


ALGO_ERRORS = [
    ({"algoType": None}, -1102),
    ({"algoType": "VP"}, -1130),
    ({"type": "LIMIT"}, -1116),
    ({"side": "UP"}, -1117),
    ({"symbol": "NOPEUSDT"}, -1121),
    ({"triggerPrice": None}, -1102),
    ({"quantity": None}, -1102),
    ({"triggerPrice": "51000"}, -2021),
    ({"closePosition": "true"}, -4137),
    ({"triggerPrice": "49000.05"}, -1111),
]


@pytest.mark.parametrize(("change", "code"), ALGO_ERRORS)
def test_algo_order_errors(
    fx: FakeExchange, client: Client, hmac_key: Any, change: dict[str, Any], code: int
) -> None:
    """algoOrder.place refuses bad params with Binance's code."""
    base = dict(ALGO_ORDERS[1], algoType="CONDITIONAL", symbol="BTCUSDT")
    params = {k: v for k, v in {**base, **change}.items() if v is not None}
    reply = client.call("algoOrder.place", signed(fx, hmac_key, params))
    assert error_of(reply) == (400, code), reply


# ---- account -------------------------------------------------------------------------------------

BALANCE_FIELDS = {
    "accountAlias",
    "asset",
    "balance",
    "crossWalletBalance",
    "crossUnPnl",
    "availableBalance",
    "maxWithdrawAmount",
    "marginAvailable",
    "updateTime",
}


@pytest.mark.parametrize("method", ["v2/account.balance", "account.balance"])
def test_account_balance(fx: FakeExchange, client: Client, hmac_key: Any, method: str) -> None:
    """The balance list has USDT 10000 in Binance's shape."""
    result = client.call(method, signed(fx, hmac_key))["result"]
    assert len(result) == 1 and set(result[0]) == BALANCE_FIELDS
    assert (result[0]["asset"], result[0]["balance"]) == ("USDT", "10000.00000000")


def test_account_status_v2(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """v2/account.status has the totals, assets and (active) positions."""
    result = client.call("v2/account.status", signed(fx, hmac_key))["result"]
    assert {
        "totalInitialMargin",
        "totalMaintMargin",
        "totalWalletBalance",
        "totalUnrealizedProfit",
        "totalMarginBalance",
        "totalPositionInitialMargin",
        "totalOpenOrderInitialMargin",
        "totalCrossWalletBalance",
        "totalCrossUnPnl",
        "availableBalance",
        "maxWithdrawAmount",
        "assets",
        "positions",
    } == set(result)
    assert result["totalWalletBalance"] == "10000.00000000"
    assert result["assets"][0]["asset"] == "USDT" and result["positions"] == []


def test_account_status_v1(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """account.status (v1) adds the account flags and lists every symbol's position."""
    result = client.call("account.status", signed(fx, hmac_key))["result"]
    assert result["canTrade"] is True and "feeTier" in result
    assert [p["symbol"] for p in result["positions"]] == ["BTCUSDT", "ETHUSDT"]
    assert result["positions"][0]["positionAmt"] == "0.000"


def test_account_positions(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """v2 lists only active positions; v1 lists every symbol; symbol filters."""
    assert client.call("v2/account.position", signed(fx, hmac_key))["result"] == []
    fx.set_position("ETHUSDT", "-1.5", "3100")
    v2 = client.call("v2/account.position", signed(fx, hmac_key))["result"]
    assert [(p["symbol"], p["positionAmt"], p["unRealizedProfit"]) for p in v2] == [
        ("ETHUSDT", "-1.500", "150.00000000")
    ]
    assert v2[0]["positionSide"] == "BOTH" and "marginAsset" in v2[0]
    v1 = client.call("account.position", signed(fx, hmac_key, {"symbol": "BTCUSDT"}))["result"]
    assert [(p["symbol"], p["positionAmt"]) for p in v1] == [("BTCUSDT", "0.000")]
    assert v1[0]["marginType"] == "cross"


# ---- rate limits -------------------------------------------------------------------------------


def test_rate_limits_counted(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """REQUEST_WEIGHT grows by each method's weight; order.place adds the ORDERS counters."""
    first = client.call("session.status")["rateLimits"]
    assert [(r["rateLimitType"], r["interval"], r["intervalNum"]) for r in first] == [
        ("REQUEST_WEIGHT", "MINUTE", 1)
    ]
    depth = client.call("depth", {"symbol": "BTCUSDT", "limit": 1000})["rateLimits"]
    assert depth[0]["count"] == first[0]["count"] + 20
    order = client.call("order.place", signed(fx, hmac_key, dict(LIMIT_BUY)))["rateLimits"]
    assert [(r["rateLimitType"], r["intervalNum"], r["count"]) for r in order[1:]] == [
        ("ORDERS", 10, 1),
        ("ORDERS", 1, 1),
    ]
    assert order[1]["interval"] == "SECOND" and order[1]["limit"] == 300


def test_rate_limits_hidden_by_query(fx: FakeExchange, connect: Any) -> None:
    """?returnRateLimits=false hides them unless a request asks with returnRateLimits true."""
    c = connect(fx.url + "?returnRateLimits=false")
    status = c.call("session.status")
    assert "rateLimits" not in status and status["result"]["returnRateLimits"] is False
    assert "rateLimits" not in c.call("depth", {"symbol": "NOPE"})
    assert "rateLimits" in c.call("session.status", {"returnRateLimits": True})


def test_rate_limits_hidden_by_param(client: Client) -> None:
    """A request with returnRateLimits false gets none on a default connection."""
    assert "rateLimits" not in client.call("ticker.price", {"returnRateLimits": "false"})


# ---- scripts, delays, withholding ---------------------------------------------------------------


def test_script_result_times(fx: FakeExchange, client: Client) -> None:
    """A scripted result answers the next `times` requests, then normal replies resume."""
    fx.script("ticker.price", result={"symbol": "X", "price": "1", "time": 0}, times=2)
    assert client.call("ticker.price", {"symbol": "BTCUSDT"})["result"]["symbol"] == "X"
    assert client.call("ticker.price", {"symbol": "BTCUSDT"})["result"]["symbol"] == "X"
    assert client.call("ticker.price", {"symbol": "BTCUSDT"})["result"]["symbol"] == "BTCUSDT"


def test_script_error_and_status(fx: FakeExchange, client: Client) -> None:
    """A scripted error defaults to status 400; status= overrides it; rateLimits still come."""
    fx.script("depth", error={"code": -1003, "msg": "Too many requests."}, status=429)
    fx.script("depth", error={"code": -1007, "msg": "Timeout."})
    first = client.call("depth", {"symbol": "BTCUSDT"})
    assert error_of(first) == (429, -1003) and "rateLimits" in first
    assert error_of(client.call("depth", {"symbol": "BTCUSDT"})) == (400, -1007)
    assert client.call("depth", {"symbol": "BTCUSDT"})["status"] == 200


def test_script_forever_any_method_and_clear(fx: FakeExchange, client: Client) -> None:
    """times=None scripts forever, for any method name, until clear_scripts()."""
    fx.script("order.history", result={"orderId": 1, "status": "FILLED"}, times=None)
    for _ in range(3):
        assert client.call("order.history", {})["result"]["status"] == "FILLED"
    fx.clear_scripts()
    assert error_of(client.call("order.history", {})) == (400, -1000)


def test_script_argument_checks(fx: FakeExchange) -> None:
    """script needs exactly one of result and error, and a positive times."""
    with pytest.raises(ValueError):
        fx.script("depth")
    with pytest.raises(ValueError):
        fx.script("depth", result={}, error={"code": 1, "msg": ""})
    with pytest.raises(ValueError):
        fx.script("depth", result={}, times=0)
    with pytest.raises(ValueError):
        fx.delay("depth", -1)


def test_delay_gives_out_of_order_replies(fx: FakeExchange, client: Client) -> None:
    """A delayed reply does not hold up the replies to later requests."""
    fx.delay("depth", 0.6, times=1)
    started = time.monotonic()
    slow = client.send("depth", {"symbol": "BTCUSDT", "limit": 5})
    fast = client.send("ticker.price", {"symbol": "BTCUSDT"})
    assert client.recv()["id"] == fast
    assert time.monotonic() - started < 0.5
    assert client.recv()["id"] == slow
    assert time.monotonic() - started >= 0.55
    assert client.call("depth", {"symbol": "BTCUSDT"})["status"] == 200


def test_withhold(fx: FakeExchange, client: Client, hmac_key: Any) -> None:
    """A withheld request is recorded and executed but never answered."""
    fx.withhold("order.place", times=1)
    client.send("order.place", signed(fx, hmac_key, dict(LIMIT_BUY)))
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv(timeout=0.3)
    assert len(fx.requests_for("order.place")) == 1
    assert [o["status"] for o in fx.orders.values()] == ["NEW"]
    reply = client.call("order.place", signed(fx, hmac_key, dict(LIMIT_BUY)))
    assert reply["status"] == 200


# ---- recorded requests --------------------------------------------------------------------------


def test_requests_recorded(fx: FakeExchange, connect: Any) -> None:
    """Each decoded request is recorded with received_at and its connection index."""
    first, second = connect(), connect()
    before = time.time()
    first.call("session.status")
    second.call("depth", {"symbol": "BTCUSDT"})
    records = fx.wait_for_requests(2)
    assert [(r["method"], r["connection"]) for r in records] == [
        ("session.status", 0),
        ("depth", 1),
    ]
    assert records[1]["params"] == {"symbol": "BTCUSDT"} and records[1]["id"] == 1
    assert before - 1 <= records[0]["received_at"] <= time.time()
    assert [r["method"] for r in fx.requests_for("depth")] == ["depth"]
    records[0]["method"] = "changed"
    assert fx.requests[0]["method"] == "session.status"


def test_wait_for_requests(fx: FakeExchange, client: Client) -> None:
    """wait_for_requests returns once enough came and raises TimeoutError otherwise."""

    def later() -> None:
        time.sleep(0.1)
        client.send("ticker.price", {})

    sender = threading.Thread(target=later)
    sender.start()
    try:
        assert len(fx.wait_for_requests(1, method="ticker.price", timeout=5)) == 1
    finally:
        sender.join(5)
    client.recv()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        fx.wait_for_requests(1, method="depth", timeout=0.1)
    assert time.monotonic() - started < 1


# ---- dropping connections, pings ----------------------------------------------------------------


def test_drop_connections_with_close_frame(fx: FakeExchange, client: Client) -> None:
    """drop_connections() sends a close frame (1001) and the count drops to 0."""
    fx.wait_for(lambda: fx.connection_count == 1)
    assert fx.drop_connections() == 1
    assert fx.connection_count == 0
    opcode, frame = client.ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1001


def test_drop_connections_abort(fx: FakeExchange, client: Client) -> None:
    """drop_connections(close_frame=False) cuts the TCP connection without a close frame."""
    fx.wait_for(lambda: fx.connection_count == 1)
    assert fx.drop_connections(close_frame=False) == 1
    assert fx.connection_count == 0
    client.ws.settimeout(5)
    with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
        client.ws.recv_data_frame(True)


def test_reconnect_after_drop(fx: FakeExchange, connect: Any) -> None:
    """A client can connect again after a drop; the new connection gets the next index."""
    connect().call("session.status")
    fx.drop_connections()
    again = connect()
    again.call("session.status")
    assert fx.requests[-1]["connection"] == 1
    assert fx.connection_count == 1


def test_server_pings(fx: FakeExchange, client: Client) -> None:
    """With ping_interval set, the server pings and counts the pongs."""
    fx.ping_interval = 0.05
    opcode, _ = client.ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_PING
    fx.wait_for(lambda: fx.pongs_received >= 1)
    assert fx.pings_sent >= 1
    fx.ping_interval = None


# ---- lifecycle -----------------------------------------------------------------------------------


def _fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bfsync-FakeExchange")]


def test_stop_leaves_no_thread() -> None:
    """stop() joins the server thread, even with a client that never reads; it is idempotent."""
    before = len(_fake_threads())
    fx = FakeExchange().start()
    assert len(_fake_threads()) == before + 2  # the WebSocket server and the REST server
    c = Client(fx.url)
    try:
        c.call("session.status")
        fx.delay("depth", 30)
        c.send("depth", {"symbol": "BTCUSDT"})
        fx.wait_for_requests(1, method="depth")
        started = time.monotonic()
        fx.stop()
        assert time.monotonic() - started < 4
        assert len(_fake_threads()) == before
        fx.stop()
        c.ws.settimeout(2)
        opcode, frame = c.ws.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1001
    finally:
        c.close()
    assert not fx.running


def test_restart_same_port() -> None:
    """After stop(), start() binds the same port again and keeps keys and state."""
    fx = FakeExchange()
    with fx:
        url = fx.url
        fx.add_hmac_key("keepme", "s")
    with fx:
        assert fx.url == url
        c = Client(url)
        try:
            params = signed(fx, ("keepme", HmacSigner("s")))
            assert c.call("v2/account.balance", params)["status"] == 200
        finally:
            c.close()
    assert not _fake_threads()


def test_stop_from_another_thread() -> None:
    """stop() may be called from any thread."""
    fx = FakeExchange().start()
    stopper = threading.Thread(target=fx.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive() and not fx.running


def test_start_fails_on_taken_port() -> None:
    """start() raises RuntimeError when the port is taken, leaving no thread behind."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        fx = FakeExchange(port=blocker.getsockname()[1])
        with pytest.raises(RuntimeError):
            fx.start()
    assert not fx.running and not _fake_threads()


def test_url_needs_start() -> None:
    """url before start() raises RuntimeError."""
    with pytest.raises(RuntimeError):
        _ = FakeExchange().url


def test_pytest_plugin_fixture(fake_exchange: FakeExchange) -> None:
    """The plugin's fake_exchange fixture yields a started server."""
    assert fake_exchange.running
    c = Client(fake_exchange.url)
    try:
        assert c.call("session.status")["status"] == 200
    finally:
        c.close()


def test_missing_websockets_message() -> None:
    """Without websockets, importing bfsync.testing says how to install the extra."""
    code = (
        "import sys; sys.modules['websockets'] = None\n"
        "try:\n    import bfsync.testing\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(  # noqa: S603 - a fixed command
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        check=False,
    )
    assert "pip install 'bfsync[testing]'" in out.stdout


def test_key_files_written_private(fx: FakeExchange, tmp_path: Path) -> None:
    """Generated key files are PKCS#8 PEM, mode 0600, encrypted when a password is given."""
    _, plain = fx.add_ed25519_key(tmp_path)
    _, locked = fx.add_rsa_key(tmp_path, password="pw")
    assert Path(plain).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(locked).read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    if os.name == "posix":
        assert Path(plain).stat().st_mode & 0o777 == 0o600
