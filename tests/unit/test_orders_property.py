"""Property tests of order preparation: random keyword sets for every kind."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from bfsync.exceptions import OrderValidationError
from bfsync.orders import CONDITIONAL_TYPES, ORDER_TYPES, PreparedOrder, prepare_order

PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
SIGNED_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")

ALIASES = {
    "triggerPrice": "stopPrice",
    "activatePrice": "activationPrice",
    "clientAlgoId": "newClientOrderId",
}
DECIMAL_NAMES = {"quantity", "price", "stopPrice", "activationPrice", "callbackRate"}
ALGO_WIRE = {documented: alias for alias, documented in ALIASES.items()}

KNOWN = [
    "symbol",
    "side",
    "positionSide",
    "timeInForce",
    "quantity",
    "price",
    "stopPrice",
    "activationPrice",
    "callbackRate",
    "reduceOnly",
    "priceProtect",
    "closePosition",
    "workingType",
    "newOrderRespType",
    "selfTradePreventionMode",
    "priceMatch",
    "newClientOrderId",
    "recvWindow",
    "goodTillDate",
]
NAMES = [*KNOWN, *ALIASES, "quantty", "stopprice", "foo", "type", "timestamp"]
REQUIRED = {
    "LIMIT": {"symbol", "side", "timeInForce", "quantity"},
    "MARKET": {"symbol", "side", "quantity"},
    "STOP": {"symbol", "side", "quantity", "stopPrice"},
    "TAKE_PROFIT": {"symbol", "side", "quantity", "stopPrice"},
    "STOP_MARKET": {"symbol", "side", "stopPrice"},
    "TAKE_PROFIT_MARKET": {"symbol", "side", "stopPrice"},
    "TRAILING_STOP_MARKET": {"symbol", "side", "callbackRate", "quantity"},
}
WORDS = [
    "BUY",
    "SELL",
    "buy",
    "BOTH",
    "LONG",
    "SHORT",
    "GTC",
    "IOC",
    "GTD",
    "GTX",
    "MARK_PRICE",
    "ACK",
    "RESULT",
    "NONE",
    "OPPONENT",
    "QUEUE_5",
    "EXPIRE_TAKER",
    "true",
    "FALSE",
    "yes",
    "BTCUSDT",
    "id-1",
    "0.5",
    "1e-5",
    "abc",
    "",
    "-1",
    "5000",
]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=2_000_000_000_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-9, max_value=1e6),
    st.decimals(allow_nan=True, allow_infinity=True, places=6),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
GOOD = {
    "symbol": st.just("BTCUSDT"),
    "side": st.sampled_from(["BUY", "SELL"]),
    "timeInForce": st.sampled_from(["GTC", "IOC", "FOK"]),
    "quantity": st.floats(min_value=1e-6, max_value=1e4),
    "price": st.floats(min_value=1e-6, max_value=1e6),
    "stopPrice": st.decimals(min_value=Decimal("0.001"), max_value=10**6, places=3),
    "callbackRate": st.sampled_from([0.1, 1, "2.5", Decimal("10")]),
}


@st.composite
def order_kwargs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A kind and keywords: often a valid base, with up to five random keywords on top."""
    kind = draw(st.sampled_from(ORDER_TYPES))
    kwargs: dict[str, Any] = {}
    if draw(st.booleans()):
        for name in sorted(REQUIRED[kind] | ({"price"} & set(GOOD))):
            if name in REQUIRED[kind] or kind in ("LIMIT", "STOP", "TAKE_PROFIT"):
                kwargs[name] = draw(GOOD[name])
    extra = draw(st.sampled_from([0, 1, 2, 5]))
    kwargs.update(draw(st.dictionaries(st.sampled_from(NAMES), values, max_size=extra)))
    return kind, kwargs


def wire_name(kind: str, name: str) -> str:
    return ALGO_WIRE.get(name, name) if kind in CONDITIONAL_TYPES else name


def prepare(kind: str, kwargs: dict[str, Any], validate: bool) -> Any:
    try:
        return prepare_order(kind, kwargs, validate=validate, new_client_order_id=lambda: "gen")
    except OrderValidationError as exc:
        return exc


def is_finite_number(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def both_spellings(kwargs: dict[str, Any]) -> bool:
    return any(
        kwargs.get(alias) is not None and kwargs.get(name) is not None
        for alias, name in ALIASES.items()
    )


@settings(max_examples=200, deadline=None)
@given(order_kwargs())
def test_validated_orders_are_well_formed(case: tuple[str, dict[str, Any]]) -> None:
    """With validation: a refusal naming a keyword, or complete params of str/int values."""
    kind, kwargs = case

    result = prepare(kind, kwargs, validate=True)

    event("refused" if isinstance(result, OrderValidationError) else "accepted")
    if isinstance(result, OrderValidationError):
        message = str(result)
        assert any(name in message for name in [*NAMES, *kwargs]), message
        return
    assert isinstance(result, PreparedOrder)
    params = result.params
    conditional = kind in CONDITIONAL_TYPES
    assert ("algoOrder.place" if conditional else "order.place") == result.method
    assert kind == params["type"]
    assert conditional == (params.get("algoType") == "CONDITIONAL")
    assert {wire_name(kind, name) for name in REQUIRED[kind]} <= set(params)
    if kind in ("LIMIT", "STOP", "TAKE_PROFIT"):
        assert ("price" in params) != (params.get("priceMatch", "NONE") != "NONE")
    if kind in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        assert ("quantity" in params) != (params.get("closePosition") == "true")
    assert result.client_order_id == params[wire_name(kind, "newClientOrderId")]
    for key, value in params.items():
        assert type(value) in (str, int), (key, value)
    for name in DECIMAL_NAMES:
        text = params.get(wire_name(kind, name))
        if text is not None:
            assert PLAIN_DECIMAL.fullmatch(text), (name, text)
            assert Decimal(text) > 0


@settings(max_examples=200, deadline=None)
@given(order_kwargs())
def test_unvalidated_orders_pass_through(case: tuple[str, dict[str, Any]]) -> None:
    """Without validation: refused only for both spellings; numbers still exact text."""
    kind, kwargs = case

    result = prepare(kind, kwargs, validate=False)

    assert both_spellings(kwargs) == isinstance(result, OrderValidationError)
    if isinstance(result, OrderValidationError):
        return
    params = result.params
    assert kind == params["type"]
    assert ("algoOrder.place" if kind in CONDITIONAL_TYPES else "order.place") == result.method
    for value in params.values():
        assert value is not None
        assert not isinstance(value, (bool, float, Decimal))
    for key, value in kwargs.items():
        name = ALIASES.get(key, key)
        if name in DECIMAL_NAMES and is_finite_number(value):
            assert SIGNED_PLAIN_DECIMAL.fullmatch(params[wire_name(kind, name)])
