"""REST faults easier to script with `responses`: 5xx, 429/418, timeouts, connection errors.

The WebSocket side runs against FakeExchange; only the REST URL is served by `responses`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError

from bfsync import WebSocketService
from bfsync.exceptions import (
    ConnectionError,
    ConnectionLostError,
    OrderConnectionLostError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)

REST = "https://fapi.example.test"
OPEN_ORDERS = f"{REST}/fapi/v1/openOrders"
CANCEL_ALL = f"{REST}/fapi/v1/allOpenOrders"
Service = Callable[..., WebSocketService]


@pytest.fixture
def mocked(make_service: Service) -> Iterator[Callable[..., WebSocketService]]:
    """A connected service whose rest_url is served by `responses` (all requests mocked)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:

        def make(**config: Any) -> WebSocketService:
            return make_service(rest_url=REST, **config)

        make.mock = mock  # type: ignore[attr-defined]
        yield make


def _mock(make: Any) -> responses.RequestsMock:
    return make.mock  # type: ignore[no-any-return]


def test_5xx_on_cancel_all_is_an_unknown_outcome(mocked: Any) -> None:
    """HTTP 500 on a state change: OrderStatusUnknownError; sent once only."""
    ws = mocked()
    _mock(mocked).add(responses.DELETE, CANCEL_ALL, body="Internal error", status=500)

    with pytest.raises(OrderStatusUnknownError) as caught:
        ws.cancel_all_open_orders("BTCUSDT")

    assert (500, "DELETE /fapi/v1/allOpenOrders") == (caught.value.status, caught.value.method)
    assert 1 == len(_mock(mocked).calls)


def test_minus_1007_on_a_state_change_is_unknown(mocked: Any) -> None:
    """-1007 (backend timeout) on change_leverage: OrderStatusUnknownError with the code."""
    ws = mocked()
    body = {"code": -1007, "msg": "Timeout waiting for response from backend server."}
    _mock(mocked).add(responses.POST, f"{REST}/fapi/v1/leverage", json=body, status=408)

    with pytest.raises(OrderStatusUnknownError) as caught:
        ws.change_leverage("BTCUSDT", 5)

    assert -1007 == caught.value.code


def test_5xx_on_a_read_is_a_plain_error(mocked: Any) -> None:
    """HTTP 503 on a read: a plain RequestError with the status."""
    ws = mocked()
    _mock(mocked).add(responses.GET, OPEN_ORDERS, body="Service Unavailable", status=503)

    with pytest.raises(RequestError) as caught:
        ws.get_open_orders()

    assert not isinstance(caught.value, OrderStatusUnknownError)
    assert 503 == caught.value.status


def test_429_with_retry_after(mocked: Any) -> None:
    """429 raises RateLimitError; retry_after comes from the Retry-After header."""
    ws = mocked()
    _mock(mocked).add(
        responses.GET,
        OPEN_ORDERS,
        json={"code": -1003, "msg": "Too many requests."},
        status=429,
        headers={"Retry-After": "12"},
    )

    with pytest.raises(RateLimitError) as caught:
        ws.get_open_orders(wait_for_response=False).result(10)

    assert (12.0, -1003) == (caught.value.retry_after, caught.value.code)


def test_418_ban(mocked: Any) -> None:
    """418 raises RateLimitError with status 418 and the Retry-After wait."""
    ws = mocked()
    _mock(mocked).add(
        responses.GET,
        OPEN_ORDERS,
        json={"code": -1003, "msg": "Way too many requests; IP banned."},
        status=418,
        headers={"Retry-After": "120"},
    )

    with pytest.raises(RateLimitError) as caught:
        ws.get_open_orders()

    assert (418, 120.0) == (caught.value.status, caught.value.retry_after)


def test_read_timeout_on_a_state_change_is_unknown(mocked: Any) -> None:
    """No answer after sending cancel-all: OrderTimeoutError; never sent again."""
    ws = mocked()
    _mock(mocked).add(responses.DELETE, CANCEL_ALL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(OrderTimeoutError):
        ws.cancel_all_open_orders("BTCUSDT")

    assert 1 == len(_mock(mocked).calls)


def test_read_timeout_on_a_read(mocked: Any) -> None:
    """No answer to a read: RequestTimeoutError, not an unknown outcome."""
    ws = mocked()
    _mock(mocked).add(responses.GET, OPEN_ORDERS, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(RequestTimeoutError) as caught:
        ws.get_open_orders()

    assert not isinstance(caught.value, OrderStatusUnknownError)


def test_connect_timeout_sent_nothing(mocked: Any) -> None:
    """A connect timeout on a state change: ConnectionError (nothing was sent), not unknown."""
    ws = mocked()
    _mock(mocked).add(responses.DELETE, CANCEL_ALL, body=requests.ConnectTimeout("connect"))

    with pytest.raises(ConnectionError) as caught:
        ws.cancel_all_open_orders("BTCUSDT")

    assert not isinstance(caught.value, OrderStatusUnknownError)


def test_refused_connection_sent_nothing(mocked: Any) -> None:
    """A refused connection on a state change: ConnectionError, not an unknown outcome."""
    ws = mocked()
    refused = requests.ConnectionError(NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    _mock(mocked).add(responses.DELETE, CANCEL_ALL, body=refused)

    with pytest.raises(ConnectionError) as caught:
        ws.cancel_all_open_orders("BTCUSDT")

    assert not isinstance(caught.value, OrderStatusUnknownError)


def test_a_read_is_sent_again_once_after_a_connection_error(mocked: Any) -> None:
    """A read cut by a connection error is sent once more, and its answer returned."""
    ws = mocked()
    mock = _mock(mocked)
    mock.add(responses.GET, OPEN_ORDERS, body=requests.ConnectionError("reset by peer"))
    mock.add(responses.GET, OPEN_ORDERS, json=[])

    assert [] == ws.get_open_orders()["result"]
    assert 2 == len(mock.calls)
    first, second = (parse_qs(urlsplit(call.request.url or "").query) for call in mock.calls)
    # Stamped and signed anew, not the first attempt's query with a second signature added
    # (the signatures may still be equal when both attempts fall in the same millisecond).
    assert 1 == len(second["signature"])
    assert 1 == len(second["timestamp"])
    assert int(first["timestamp"][0]) <= int(second["timestamp"][0])


def test_a_read_gives_up_after_two_connection_errors(mocked: Any) -> None:
    """Two connection errors in a row: ConnectionLostError, after exactly two attempts."""
    ws = mocked()
    mock = _mock(mocked)
    for _ in range(3):
        mock.add(responses.GET, OPEN_ORDERS, body=requests.ConnectionError("reset"))

    with pytest.raises(ConnectionLostError):
        ws.get_open_orders()

    assert 2 == len(mock.calls)


def test_a_state_change_is_never_sent_again(mocked: Any) -> None:
    """A connection error after sending cancel-all: OrderConnectionLostError, one attempt."""
    ws = mocked()
    mock = _mock(mocked)
    mock.add(responses.DELETE, CANCEL_ALL, body=requests.ConnectionError("reset by peer"))
    mock.add(responses.DELETE, CANCEL_ALL, json={"code": 200, "msg": "done"})

    with pytest.raises(OrderConnectionLostError) as caught:
        ws.cancel_all_open_orders("BTCUSDT")

    assert "DELETE /fapi/v1/allOpenOrders" == caught.value.method
    assert 1 == len(mock.calls)


def test_used_weight_is_folded_into_the_throttle(mocked: Any) -> None:
    """A reply saying 2400 weight used this minute: the next call is held client-side."""
    ws = mocked(rate_limit="raise")
    _mock(mocked).add(responses.GET, OPEN_ORDERS, json=[], headers={"X-MBX-USED-WEIGHT-1M": "2400"})
    ws.get_open_orders("BTCUSDT")

    with pytest.raises(RateLimitError, match="client-side"):
        ws.get_open_orders("BTCUSDT")

    assert 1 == len(_mock(mocked).calls)


def test_api_key_header_and_form_body(mocked: Any) -> None:
    """Signed POSTs send X-MBX-APIKEY and the params as a form body; GETs in the query."""
    ws = mocked()
    mock = _mock(mocked)
    mock.add(responses.POST, f"{REST}/fapi/v1/leverage", json={"leverage": 5})
    mock.add(responses.GET, f"{REST}/fapi/v1/premiumIndex", json=[])
    ws.change_leverage("BTCUSDT", 5)
    ws.get_mark_price()

    post, get = (call.request for call in mock.calls)
    body = post.body.decode() if isinstance(post.body, bytes) else str(post.body)
    assert body.startswith("symbol=BTCUSDT&leverage=5&timestamp=")
    assert "X-MBX-APIKEY" in post.headers
    assert "X-MBX-APIKEY" not in get.headers  # a public call carries no key


def test_no_signature_in_connection_error_messages(mocked: Any) -> None:
    """A connection error whose text holds the URL: the signature is hidden in the message."""
    ws = mocked()
    mock = _mock(mocked)
    cut = requests.ConnectionError(f"Max retries exceeded with url: {OPEN_ORDERS}?signature=abc123")
    mock.add(responses.GET, OPEN_ORDERS, body=cut)
    mock.add(responses.GET, OPEN_ORDERS, body=cut)

    with pytest.raises(ConnectionLostError) as caught:
        ws.get_open_orders()

    assert "abc123" not in str(caught.value)
    assert "signature=<hidden>" in str(caught.value)
