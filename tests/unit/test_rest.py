"""The pure REST part: call table, query strings, signing, answers to exceptions, URL rule."""

from __future__ import annotations

import base64
import json
from typing import Any, Optional
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bfsync._restcalls import check_params
from bfsync.config import Config
from bfsync.exceptions import (
    ConnectionError,
    OrderStatusUnknownError,
    OrderValidationError,
    RateLimitError,
    RequestError,
)
from bfsync.rest import (
    CALLS,
    decode_response,
    encode_params,
    rate_limits_from_headers,
    rest_base_url,
    signed_payload,
    weight_of_call,
)
from bfsync.signing import Ed25519Signer, HmacSigner

# Reference §4.4 (C): the official futures REST HMAC example (unsorted query string).
VECTOR_C_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
VECTOR_C_PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
VECTOR_C_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
NOW_MS = 1_767_229_170_000
ED25519_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def test_signing_matches_reference_vector_c() -> None:
    """Params in the caller's order, recvWindow and timestamp, HMAC hex: Binance's vector C."""
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": 1,
        "price": 9000,
        "timeInForce": "GTC",
        "recvWindow": 5000,
    }

    text = signed_payload(params, 1591702613943, None, HmacSigner(VECTOR_C_SECRET).sign)

    assert f"{VECTOR_C_PAYLOAD}&signature={VECTOR_C_SIGNATURE}" == text


def test_configured_recv_window_goes_before_timestamp() -> None:
    """recv_window from the config is added (a recvWindow keyword wins) before timestamp."""
    sign = HmacSigner(VECTOR_C_SECRET).sign
    configured = signed_payload({"symbol": "BTCUSDT"}, 5, 6000, sign)
    given = signed_payload({"symbol": "BTCUSDT", "recvWindow": 100}, 5, 6000, sign)

    assert configured.startswith("symbol=BTCUSDT&recvWindow=6000&timestamp=5&signature=")
    assert given.startswith("symbol=BTCUSDT&recvWindow=100&timestamp=5&signature=")


def test_base64_signature_is_percent_encoded_and_signs_the_text_sent() -> None:
    """An Ed25519 signature (base64) is percent-encoded; it verifies over the text before it."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(ED25519_SEED)
    text = signed_payload({"symbol": "BTCUSDT"}, 1649729878532, None, Ed25519Signer(key).sign)
    payload, _, encoded = text.partition("&signature=")
    raw = base64.b64decode(unquote(encoded))
    key.public_key().verify(raw, payload.encode())  # raises if it does not verify
    assert "+" not in encoded and "/" not in encoded and "=" not in encoded


def test_encode_keeps_order_and_percent_encodes() -> None:
    """Order as given, None dropped, booleans as true/false, reserved characters encoded."""
    text = encode_params({"b": "x y", "a": None, "c": True, "id": "a:b/c", "s": "测试USDT"})

    assert "b=x%20y&c=true&id=a%3Ab%2Fc&s=%E6%B5%8B%E8%AF%95USDT" == text


@pytest.mark.parametrize(
    ("name", "params", "weight"),
    [
        ("get_open_orders", {"symbol": "BTCUSDT"}, 1),
        ("get_open_orders", {}, 40),
        ("get_open_algo_orders", {}, 40),
        ("get_mark_price", {}, 10),
        ("get_klines", {}, 5),
        ("get_klines", {"limit": 99}, 1),
        ("get_klines", {"limit": 100}, 2),
        ("get_klines", {"limit": 1000}, 5),
        ("get_klines", {"limit": 1500}, 10),
        ("get_income_history", {}, 30),
        ("get_commission_rate", {"symbol": "BTCUSDT"}, 20),
    ],
)
def test_weights(name: str, params: dict[str, Any], weight: int) -> None:
    """Weights follow the documentation: by symbol, by limit, or fixed."""
    assert weight == weight_of_call(CALLS[name], params)


def test_only_reads_are_marked_safe_to_resend() -> None:
    """Every GET is a read; nothing that changes state is."""
    for name, call in CALLS.items():
        assert (call.verb == "GET") == call.is_read, name


def test_used_weight_headers_become_rate_limit_items() -> None:
    """X-MBX-USED-WEIGHT-1M and X-MBX-ORDER-COUNT-10S read as rateLimits; junk is skipped."""
    headers = {
        "X-MBX-USED-WEIGHT-1M": "42",
        "x-mbx-order-count-10s": "3",
        "X-MBX-USED-WEIGHT-1H": "abc",
        "Content-Type": "application/json",
    }

    expected = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "count": 42},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "count": 3},
    ]
    assert expected == rate_limits_from_headers(headers)


def _decode(
    name: str, status: int, body: Any, headers: Optional[dict[str, str]] = None
) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return decode_response(CALLS[name], status, headers or {}, text, NOW_MS, "cid-1", "BTCUSDT")


def test_success_is_a_frame_like_dict() -> None:
    """A 200 answer is {"status", "result", "rateLimits"}."""
    reply = _decode("get_open_orders", 200, [], {"X-MBX-USED-WEIGHT-1M": "1"})

    assert 200 == reply["status"]
    assert [] == reply["result"]
    assert 1 == reply["rateLimits"][0]["count"]


def test_binance_error_body_is_a_request_error() -> None:
    """A 400 with {"code", "msg"} raises RequestError with code, msg, status and response."""
    with pytest.raises(RequestError) as caught:
        _decode("change_leverage", 400, {"code": -4028, "msg": "Leverage 200 is not valid"})

    exc = caught.value
    assert (-4028, "Leverage 200 is not valid", 400) == (exc.code, exc.msg, exc.status)
    assert not isinstance(exc, OrderStatusUnknownError)
    assert exc.response is not None and -4028 == exc.response["error"]["code"]


def test_429_takes_retry_after_from_the_header() -> None:
    """429 raises RateLimitError; retry_after is the Retry-After header's seconds."""
    with pytest.raises(RateLimitError) as caught:
        _decode("get_open_orders", 429, {"code": -1003, "msg": "Too many."}, {"Retry-After": "7"})

    assert (7.0, 429, -1003) == (caught.value.retry_after, caught.value.status, caught.value.code)


def test_418_takes_retry_after_from_the_ban_time() -> None:
    """418 "banned until <ms>" gives the seconds left from now."""
    msg = "Way too many requests; IP banned until 1767229200000."
    with pytest.raises(RateLimitError) as caught:
        _decode("get_open_orders", 418, {"code": -1003, "msg": msg})

    assert 30.0 == caught.value.retry_after


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, "Internal Server Error"),
        (503, {"code": -1000, "msg": "Unknown error."}),
        (400, {"code": -1006, "msg": "An unexpected response was received."}),
        (408, {"code": -1007, "msg": "Timeout waiting for response from backend server."}),
    ],
)
def test_unknown_outcome_of_a_state_change(status: int, body: Any) -> None:
    """5xx, -1006 and -1007 on a call that changes state: OrderStatusUnknownError."""
    with pytest.raises(OrderStatusUnknownError) as caught:
        _decode("cancel_all_open_orders", status, body)

    exc = caught.value
    assert ("cid-1", "DELETE /fapi/v1/allOpenOrders", "BTCUSDT", status) == (
        exc.client_order_id,
        exc.method,
        exc.symbol,
        exc.status,
    )


def test_5xx_on_a_read_is_a_plain_request_error() -> None:
    """A read that failed changed nothing: a plain RequestError."""
    with pytest.raises(RequestError) as caught:
        _decode("get_open_orders", 502, "Bad Gateway")

    assert not isinstance(caught.value, OrderStatusUnknownError)
    assert 502 == caught.value.status


def test_overloaded_503_refuses() -> None:
    """503 with -1008 (system overloaded) is a refusal, not an unknown outcome."""
    with pytest.raises(RequestError) as caught:
        _decode("change_leverage", 503, {"code": -1008, "msg": "Server is overloaded."})

    assert not isinstance(caught.value, OrderStatusUnknownError)


def test_200_that_is_not_json_is_an_error() -> None:
    """A 200 with an HTML body raises RequestError, never a half-read reply."""
    with pytest.raises(RequestError):
        _decode("get_open_orders", 200, "<html>")


@pytest.mark.parametrize(
    ("ws_url", "rest_url", "allowed"),
    [
        ("wss://ws-fapi.binance.com/ws-fapi/v1", "https://fapi.binance.com", True),
        ("wss://testnet.binancefuture.com/ws-fapi/v1", "https://demo-fapi.binance.com", True),
        ("ws://127.0.0.1:5000/ws-fapi/v1", "http://127.0.0.1:5001", True),
        ("ws://127.0.0.1:5000/ws-fapi/v1", "https://fapi.binance.com", False),
        ("ws://127.0.0.1:5000/ws-fapi/v1", "https://demo-fapi.binance.com/", False),
    ],
)
def test_a_local_ws_url_needs_a_rest_url(ws_url: str, rest_url: str, allowed: bool) -> None:
    """With ws_url not Binance's, a REST URL still Binance's is refused, naming rest_url."""
    config = Config.from_dict({"ws_url": ws_url, "rest_url": rest_url})
    if allowed:
        assert rest_url.rstrip("/") == rest_base_url(config)
        return
    with pytest.raises(ConnectionError, match="rest_url"):
        rest_base_url(config)


@pytest.mark.parametrize(
    ("name", "params", "rule"),
    [
        ("change_leverage", {"symbol": "BTCUSDT", "leverage": 200}, "leverage must be from 1"),
        ("change_leverage", {"symbol": "BTCUSDT", "leverage": "five"}, "leverage must be a whole"),
        ("change_leverage", {"symbol": "BTCUSDT", "leverage": 2.5}, "leverage must be a whole"),
        ("change_leverage", {"symbol": "BTCUSDT", "leverage": True}, "leverage must be a whole"),
        ("change_margin_type", {"symbol": "BTCUSDT", "marginType": "CROSS"}, "marginType"),
        ("get_klines", {"symbol": "BTCUSDT", "interval": "2m"}, "interval must be one of"),
        ("get_klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}, "limit"),
        ("get_klines", {"symbol": "BTCUSDT", "interval": "1m", "limt": 5}, "did you mean 'limit'"),
        ("get_algo_order", {}, "algoId or clientAlgoId"),
        ("cancel_all_open_orders", {"symbol": None}, "symbol is required"),
        ("change_position_mode", {"dualSidePosition": "yes"}, "dualSidePosition"),
    ],
)
def test_validation_names_the_parameter(name: str, params: dict[str, Any], rule: str) -> None:
    """Bad keywords raise OrderValidationError naming the parameter and the rule."""
    with pytest.raises(OrderValidationError, match=rule):
        check_params(name, params)


def test_whole_numbers_of_any_type_are_taken_as_ints() -> None:
    """numpy ints and Excel's whole floats are sent as JSON ints, as on ws-fapi (issue 10)."""
    import numpy as np

    for value in (np.int64(5), np.int32(5), 5.0, np.float64(5.0), "5"):
        checked = check_params("change_leverage", {"symbol": "BTCUSDT", "leverage": value})

        assert 5 == checked["leverage"]
        assert int is type(checked["leverage"])


def test_validation_passes_good_params_in_wire_form() -> None:
    """Good params pass; flags given as text become booleans."""
    assert {"dualSidePosition": True} == check_params(
        "change_position_mode", {"dualSidePosition": "TRUE"}
    )
