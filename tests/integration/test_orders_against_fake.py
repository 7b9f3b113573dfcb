"""
Random keyword sets through order preparation and on to FakeExchange (hypothesis).

The property: with validation on, a call either raises ``OrderValidationError`` in the
caller's thread, or sends a request the exchange does not call malformed. The exchange may
still refuse it for market reasons (an unknown symbol: without exchange filters loaded bfsync
does not know the symbols; filters, notional, price band, an immediate trigger, a missing
position), never for its form (a missing or unknown parameter, a bad enum, a bad
combination, a conditional type on order.place, too many decimals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bfsync import WebSocketService
from bfsync.exceptions import OrderValidationError, RequestError
from bfsync.testing import FakeExchange

# What the exchange answers when the request itself is malformed.
FORM_CODES = {-1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111, -1115, -1116, -1117}
FORM_CODES |= {-1128, -1130, -1136, -4015, -4120, -4137, -5037, -5038, -5039}


def mostly(valid: list[Any], bad: list[Any]) -> tuple[list[Any], list[Any]]:
    """Values drawn from ``valid`` most of the time, else from ``bad``."""
    return valid, bad


VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "symbol": mostly(["BTCUSDT", "ETHUSDT"], ["", "NOPE", None]),
    "side": mostly(["BUY", "SELL"], ["buy", None]),
    "quantity": mostly(["0.003", "0.01", 0.004, "1e-2"], ["0", "-1", "x", float("nan")]),
    "price": mostly(["45000", "55000", 49000.0, "3100"], ["0", "abc", float("inf")]),
    "stopPrice": mostly(["45000", "55000", "2900", 56000.0], ["0", "-5"]),
    "triggerPrice": mostly(["45000", "55000"], ["0"]),
    "activationPrice": mostly(["45000", "55000"], ["-1"]),
    "callbackRate": mostly(["1", "0.5", 2.5], ["0.05", "11"]),
    "timeInForce": mostly(["GTC", "IOC", "FOK", "GTX"], ["DAY", "GTD"]),
    "priceMatch": mostly(["NONE", "QUEUE", "OPPONENT"], ["BAD"]),
    "positionSide": mostly(["BOTH"], ["LONG", "MIDDLE"]),
    "reduceOnly": mostly([False, "false"], ["maybe", True]),
    "closePosition": mostly([True, "true"], ["TRUE?"]),
    "workingType": mostly(["MARK_PRICE", "CONTRACT_PRICE"], ["LAST"]),
    "priceProtect": mostly([True, "false"], [1]),
    "newOrderRespType": mostly(["ACK", "RESULT"], ["FULL"]),
    "selfTradePreventionMode": mostly(["NONE", "EXPIRE_MAKER"], ["X"]),
    "recvWindow": mostly([5000, "6000", 7000.0], [0, -1]),
    "goodTillDate": mostly([4102444800000], ["soon"]),
    "quantty": (["1"], ["1"]),
}
COMMON = ["positionSide", "reduceOnly", "newOrderRespType", "selfTradePreventionMode", "recvWindow"]
# call -> (keywords it needs, keywords it may take)
CALLS: dict[str, tuple[list[str], list[str]]] = {
    "place_limit_order": (
        ["symbol", "side", "quantity", "price", "timeInForce"],
        [*COMMON, "priceMatch", "goodTillDate"],
    ),
    "place_market_order": (["symbol", "side", "quantity"], COMMON),
    "place_stop_order": (
        ["symbol", "side", "quantity", "price", "stopPrice"],
        [*COMMON, "timeInForce", "workingType", "priceProtect", "priceMatch"],
    ),
    "place_take_profit_order": (
        ["symbol", "side", "quantity", "price", "stopPrice"],
        [*COMMON, "timeInForce", "workingType", "priceProtect"],
    ),
    "place_stop_market_order": (
        ["symbol", "side", "stopPrice", "quantity"],
        [*COMMON, "closePosition", "workingType", "priceProtect"],
    ),
    "place_take_profit_market_order": (
        ["symbol", "side", "triggerPrice"],
        [*COMMON, "quantity", "closePosition", "workingType", "priceProtect"],
    ),
    "place_trailing_stop_market_order": (
        ["symbol", "side", "quantity", "callbackRate"],
        [*COMMON, "activationPrice", "workingType"],
    ),
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A call and its keywords: the needed ones mostly valid, some optional, rarely a stray."""
    name = draw(st.sampled_from(sorted(CALLS)))
    needed, optional = CALLS[name]
    names = [n for n in needed if draw(st.integers(0, 99)) < 95]
    names += draw(st.lists(st.sampled_from(optional), max_size=2, unique=True))
    if draw(st.integers(0, 99)) < 10:
        names.append(draw(st.sampled_from(sorted(VALUES))))
    kwargs = {}
    for n in names:
        valid, bad = VALUES[n]
        kwargs[n] = draw(st.sampled_from(valid if draw(st.integers(0, 99)) < 95 else bad))
    return name, kwargs


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[FakeExchange, WebSocketService]]:
    with FakeExchange() as fx:
        fx.enforce_rate_limits = False
        fx.set_balance("USDT", "100000000")
        api_key, secret = fx.add_hmac_key()
        with WebSocketService(api_key, secret, True, {"ws_url": fx.url}) as ws:
            yield fx, ws


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=calls())
def test_validated_orders_are_well_formed_for_the_exchange(
    service: tuple[FakeExchange, WebSocketService], drawn: tuple[str, dict[str, Any]]
) -> None:
    """OrderValidationError here, or a request the exchange does not find malformed."""
    _, ws = service
    call, kwargs = drawn
    try:
        reply = getattr(ws, call)(**kwargs)
    except OrderValidationError:
        return
    except RequestError as exc:
        assert exc.code not in FORM_CODES, f"{call}({kwargs}) was sent malformed: {exc}"
        return
    assert 200 == reply["status"]
