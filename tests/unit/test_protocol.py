"""Frames: encoding requests, decoding replies, translating errors."""

from __future__ import annotations

import json

import pytest

from bfsync.exceptions import (
    AuthenticationError,
    LoginRejectedError,
    OrderAuthenticationLostError,
    OrderServerError,
    OrderStatusUnknownError,
    RateLimitError,
    RequestError,
)
from bfsync.protocol import (
    METHODS,
    SIGNED,
    decode_frame,
    encode_request,
    error_for,
    retry_after,
    revoked_error,
)


def test_encode_request_is_compact_json() -> None:
    """A request frame is compact JSON with id, method and params; text is kept as UTF-8."""
    text = encode_request(7, "depth", {"symbol": "测试USDT"})

    assert '{"id":7,"method":"depth","params":{"symbol":"测试USDT"}}' == text


@pytest.mark.parametrize("data", ["not json", "[1,2]", "3", b"\xff"])
def test_decode_frame_rejects_non_objects(data: str | bytes) -> None:
    """Anything but a JSON object is a ValueError."""
    with pytest.raises(ValueError):
        decode_frame(data)


def test_decode_frame_reads_bytes() -> None:
    """Bytes are decoded as UTF-8 JSON."""
    assert {"id": 1} == decode_frame(b'{"id":1}')


def test_error_for_carries_code_msg_status_response() -> None:
    """A 400 becomes RequestError with the frame's details."""
    frame = {"id": 3, "status": 400, "error": {"code": -1102, "msg": "Mandatory parameter"}}

    exc = error_for(frame, "order.place")

    assert type(exc) is RequestError
    assert (-1102, "Mandatory parameter", 400, frame) == (
        exc.code,
        exc.msg,
        exc.status,
        exc.response,
    )
    assert "-1102" in str(exc) and "order.place" in str(exc)


def test_error_for_logon_is_an_authentication_error() -> None:
    """A refused session.logon is both AuthenticationError and RequestError."""
    exc = error_for(
        {"id": 1, "status": 400, "error": {"code": -1022, "msg": "sig"}}, "session.logon"
    )

    assert isinstance(exc, LoginRejectedError)
    assert isinstance(exc, AuthenticationError) and isinstance(exc, RequestError)
    assert -1022 == exc.code


@pytest.mark.parametrize("status", [418, 429])
def test_error_for_rate_limits(status: int) -> None:
    """429 and 418 become RateLimitError."""
    frame = {"id": 1, "status": status, "error": {"code": -1003, "msg": "Too many requests"}}

    assert isinstance(error_for(frame, "depth"), RateLimitError)


def test_retry_after_from_ban_message() -> None:
    """A 418's 'banned until' time gives the wait in seconds."""
    frame = {"status": 418, "error": {"code": -1003, "msg": "IP banned until 1700000060000."}}

    assert 60.0 == retry_after(frame, now_ms=1700000000000)


def test_error_without_detail() -> None:
    """A reply with no error object still gives a RequestError."""
    exc = error_for({"id": 1, "status": 500}, "depth")

    assert (None, 500) == (exc.code, exc.status)


def test_method_table_signed_methods() -> None:
    """Orders and account calls are signed; market data is not."""
    assert SIGNED == METHODS["order.place"].security
    assert SIGNED == METHODS["v2/account.balance"].security
    assert SIGNED != METHODS["depth"].security
    assert METHODS["algoOrder.place"].is_order


def test_frames_round_trip() -> None:
    """What encode_request writes, json reads back."""
    assert {"id": 1, "method": "m", "params": {"a": "1"}} == json.loads(
        encode_request(1, "m", {"a": "1"})
    )


@pytest.mark.parametrize(
    "status, code",
    [(500, None), (503, -1001), (502, None), (400, -1006), (408, -1007), (503, -1007)],
)
@pytest.mark.parametrize("method", ["order.place", "algoOrder.place", "order.modify"])
def test_error_for_an_order_whose_outcome_is_unknown(
    method: str, status: int, code: int | None
) -> None:
    """An order answered 5xx or -1006/-1007 is OrderServerError with its client order id."""
    error = {"msg": "Internal error"} if code is None else {"code": code, "msg": "Timeout"}
    frame = {"id": 4, "status": status, "error": error}

    exc = error_for(frame, method, client_order_id="bfs-42")

    assert isinstance(exc, OrderServerError)
    assert isinstance(exc, OrderStatusUnknownError)
    assert ("bfs-42", status, code) == (exc.client_order_id, exc.status, exc.code)
    assert "bfs-42" in str(exc) and "may or may not" in str(exc)


@pytest.mark.parametrize(
    "method, status, code",
    [
        ("depth", 503, None),  # not an order: nothing may have been placed
        ("order.cancel", 500, None),
        ("order.status", 400, -1007),
        ("order.place", 400, -2019),  # a definite refusal
        ("order.place", 401, -2015),
    ],
)
def test_error_for_definite_failures_stay_request_errors(
    method: str, status: int, code: int | None
) -> None:
    """Reads, cancels and definite refusals of orders are plain RequestErrors."""
    frame = {"id": 4, "status": status, "error": {"code": code, "msg": "x"}}

    assert RequestError is type(error_for(frame, method, client_order_id="bfs-1"))


REVOKED = {"id": None, "status": 401, "error": {"code": -2015, "msg": "Invalid API-key."}}


@pytest.mark.parametrize("method", ["order.place", "algoOrder.place", "order.modify"])
def test_revoked_key_with_an_order_in_flight_is_an_unknown_outcome(method: str) -> None:
    """A revoked key (401, id null) fails an order with OrderAuthenticationLostError."""
    exc = revoked_error(REVOKED, method, client_order_id="bfs-7")

    assert isinstance(exc, OrderAuthenticationLostError)
    assert isinstance(exc, OrderStatusUnknownError) and isinstance(exc, AuthenticationError)
    assert ("bfs-7", 401, -2015) == (exc.client_order_id, exc.status, exc.code)
    assert "bfs-7" in str(exc)


def test_revoked_key_with_a_read_in_flight_is_an_authentication_error() -> None:
    """Any other request gets a plain AuthenticationError."""
    exc = revoked_error(REVOKED, "v2/account.balance")

    assert AuthenticationError is type(exc)
    assert "revoked" in str(exc) and "-2015" in str(exc)
