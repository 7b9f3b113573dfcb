"""
Orders whose outcome is unknown because Binance failed on its side (status 5xx, -1006/-1007):
FakeExchange places the order and still answers the failure; bfsync raises
OrderServerError, an OrderStatusUnknownError, and the order can be looked up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Optional

import pytest

from bfsync import WebSocketService
from bfsync.exceptions import (
    AuthenticationError,
    OrderAuthenticationLostError,
    OrderServerError,
    OrderStatusUnknownError,
    RequestError,
)
from bfsync.signing import HmacSigner
from bfsync.testing import FakeExchange

from .rawclient import LIMIT_BUY, Client, signed

MakeService = Callable[..., WebSocketService]
LIMIT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "quantity": "0.010",
    "price": "49000.0",
    "timeInForce": "GTC",
}
FAILURES = [(503, None), (500, -1006), (400, -1007)]


@pytest.fixture
def hmac_key(fx: FakeExchange) -> tuple[str, HmacSigner]:
    api_key, secret = fx.add_hmac_key()
    return api_key, HmacSigner(secret)


def placed_client_id(fx: FakeExchange) -> str:
    """The newClientOrderId of the one order.place the fake received."""
    (request,) = fx.requests_for("order.place")
    client_id: str = request["params"]["newClientOrderId"]
    return client_id


@pytest.mark.parametrize("status, code", FAILURES)
def test_fake_places_the_order_and_answers_the_failure(
    fx: FakeExchange, client: Client, hmac_key: Any, status: int, code: Optional[int]
) -> None:
    """fail_after_processing: the order exists, the reply is the failure, once."""
    fx.fail_after_processing("order.place", status=status, code=code)
    params = dict(LIMIT_BUY, newClientOrderId="unknown-1")

    reply = client.call("order.place", signed(fx, hmac_key, params))
    again = client.call("order.place", signed(fx, hmac_key, dict(LIMIT_BUY)))

    assert status == reply["status"] and "result" not in reply
    assert code == reply["error"].get("code") and reply["error"]["msg"]
    assert "rateLimits" in reply
    assert ["unknown-1"] == [
        o["clientOrderId"] for o in fx.orders.values() if o["clientOrderId"] == "unknown-1"
    ]
    assert 200 == again["status"]


def test_fake_failure_rules_are_checked_and_cleared(fx: FakeExchange, client: Client) -> None:
    """Bad arguments are refused; clear_scripts() forgets the rule; scripts take precedence."""
    with pytest.raises(ValueError, match="status"):
        fx.fail_after_processing("order.place", status=200)
    with pytest.raises(ValueError, match="code"):
        fx.fail_after_processing("order.place", code="-1007")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        fx.fail_after_processing("order.place", times=0)
    fx.fail_after_processing("depth", times=None)
    assert 503 == client.call("depth", {"symbol": "BTCUSDT"})["status"]
    fx.script("depth", result={"scripted": True})
    assert {"scripted": True} == client.call("depth", {"symbol": "BTCUSDT"})["result"]
    fx.clear_scripts()
    assert 200 == client.call("depth", {"symbol": "BTCUSDT"})["status"]


@pytest.mark.parametrize("status, code", FAILURES)
def test_service_raises_order_server_error_and_the_order_exists(
    fx: FakeExchange, make_service: MakeService, status: int, code: Optional[int]
) -> None:
    """place_limit_order answered 5xx / -1006 / -1007: OrderServerError, the order is there."""
    ws = make_service()
    fx.fail_after_processing("order.place", status=status, code=code)

    with pytest.raises(OrderStatusUnknownError) as caught:
        ws.place_limit_order(**LIMIT)

    exc = caught.value
    assert isinstance(exc, OrderServerError) and isinstance(exc, RequestError)
    assert (status, code) == (exc.status, exc.code)
    found = ws.get_order_status(symbol="BTCUSDT", origClientOrderId=placed_client_id(fx))
    assert ("NEW", Decimal("49000")) == (
        found["result"]["status"],
        Decimal(found["result"]["price"]),
    )


def test_service_future_fails_with_order_server_error(
    fx: FakeExchange, make_service: MakeService
) -> None:
    """wait_for_response=False: the future fails with OrderServerError (no plain error)."""
    ws = make_service()
    fx.fail_after_processing("order.place", status=502)

    future = ws.place_limit_order(wait_for_response=False, **LIMIT)

    assert isinstance(future.exception(timeout=10), OrderServerError)


def test_order_server_error_carries_the_client_order_id(
    fx: FakeExchange, make_service: MakeService
) -> None:
    """The OrderServerError names the client order id the order was sent with."""
    ws = make_service()
    fx.fail_after_processing("order.place", status=503)

    with pytest.raises(OrderServerError) as caught:
        ws.place_limit_order(**LIMIT)

    assert placed_client_id(fx) == caught.value.client_order_id


def test_order_in_flight_when_the_key_is_revoked(
    fx: FakeExchange, make_service: MakeService, credentials: dict[str, tuple[str, str]]
) -> None:
    """An order pending when the key is revoked fails with OrderAuthenticationLostError."""
    ws = make_service()
    fx.delay("order.place", 1.0)  # placed at once, answered a second later
    future = ws.place_limit_order(wait_for_response=False, **LIMIT)
    fx.wait_for_requests(1, method="order.place")
    fx.revoke_key(credentials["HMAC"][0])
    with pytest.raises(AuthenticationError):
        ws.get_account_balance()  # the next request gets the id-null 401

    exc = future.exception(timeout=10)

    assert isinstance(exc, OrderAuthenticationLostError)
    assert placed_client_id(fx) == exc.client_order_id
