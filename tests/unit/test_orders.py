"""Order preparation: validation rules, exact numbers and the algo-order mapping (pure calls)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import attrs
import pytest

from bfsync.exceptions import OrderValidationError
from bfsync.orders import (
    CONDITIONAL_TYPES,
    ORDER_TYPES,
    PLACE_METHODS,
    PreparedOrder,
    format_decimal,
    format_params,
    prepare_order,
)

GENERATED_ID = "bfs-generated-1"

# The smallest valid keyword set of each kind.
MINIMAL: dict[str, dict[str, Any]] = {
    "LIMIT": {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "timeInForce": "GTC",
        "quantity": 0.01,
        "price": 50000.0,
    },
    "MARKET": {"symbol": "BTCUSDT", "side": "BUY", "quantity": 0.01},
    "STOP": {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "quantity": 0.01,
        "price": 50100.0,
        "stopPrice": 50000.0,
    },
    "TAKE_PROFIT": {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": 0.01,
        "price": 60100.0,
        "stopPrice": 60000.0,
    },
    "STOP_MARKET": {"symbol": "BTCUSDT", "side": "SELL", "quantity": 0.01, "stopPrice": 40000},
    "TAKE_PROFIT_MARKET": {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": 0.01,
        "stopPrice": 60000,
    },
    "TRAILING_STOP_MARKET": {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": 0.01,
        "callbackRate": 1,
    },
}

# The params each minimal order is sent with, and the method.
EXPECTED_WIRE: dict[str, tuple[str, dict[str, Any]]] = {
    "LIMIT": (
        "order.place",
        {
            "type": "LIMIT",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "50000.0",
            "newClientOrderId": GENERATED_ID,
        },
    ),
    "MARKET": (
        "order.place",
        {
            "type": "MARKET",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "quantity": "0.01",
            "newClientOrderId": GENERATED_ID,
        },
    ),
    "STOP": (
        "algoOrder.place",
        {
            "algoType": "CONDITIONAL",
            "type": "STOP",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "quantity": "0.01",
            "price": "50100.0",
            "triggerPrice": "50000.0",
            "clientAlgoId": GENERATED_ID,
        },
    ),
    "TAKE_PROFIT": (
        "algoOrder.place",
        {
            "algoType": "CONDITIONAL",
            "type": "TAKE_PROFIT",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "price": "60100.0",
            "triggerPrice": "60000.0",
            "clientAlgoId": GENERATED_ID,
        },
    ),
    "STOP_MARKET": (
        "algoOrder.place",
        {
            "algoType": "CONDITIONAL",
            "type": "STOP_MARKET",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "triggerPrice": "40000",
            "clientAlgoId": GENERATED_ID,
        },
    ),
    "TAKE_PROFIT_MARKET": (
        "algoOrder.place",
        {
            "algoType": "CONDITIONAL",
            "type": "TAKE_PROFIT_MARKET",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "triggerPrice": "60000",
            "clientAlgoId": GENERATED_ID,
        },
    ),
    "TRAILING_STOP_MARKET": (
        "algoOrder.place",
        {
            "algoType": "CONDITIONAL",
            "type": "TRAILING_STOP_MARKET",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "callbackRate": "1",
            "clientAlgoId": GENERATED_ID,
        },
    ),
}

# The documented table (README): which keywords each kind takes.
COMMON = {
    "symbol",
    "side",
    "positionSide",
    "newClientOrderId",
    "reduceOnly",
    "newOrderRespType",
    "selfTradePreventionMode",
    "recvWindow",
}
CONDITIONAL_COMMON = COMMON | {"timeInForce", "goodTillDate", "workingType"}
ALLOWED: dict[str, set[str]] = {
    "LIMIT": COMMON | {"timeInForce", "quantity", "price", "priceMatch", "goodTillDate"},
    "MARKET": COMMON | {"quantity"},
    "STOP": CONDITIONAL_COMMON | {"quantity", "price", "priceMatch", "stopPrice", "priceProtect"},
    "TAKE_PROFIT": CONDITIONAL_COMMON
    | {"quantity", "price", "priceMatch", "stopPrice", "priceProtect"},
    "STOP_MARKET": CONDITIONAL_COMMON | {"quantity", "stopPrice", "closePosition", "priceProtect"},
    "TAKE_PROFIT_MARKET": CONDITIONAL_COMMON
    | {"quantity", "stopPrice", "closePosition", "priceProtect"},
    "TRAILING_STOP_MARKET": CONDITIONAL_COMMON | {"quantity", "callbackRate", "activationPrice"},
}
REQUIRED: dict[str, list[str]] = {
    "LIMIT": ["symbol", "side", "timeInForce", "quantity"],
    "MARKET": ["symbol", "side", "quantity"],
    "STOP": ["symbol", "side", "quantity", "stopPrice"],
    "TAKE_PROFIT": ["symbol", "side", "quantity", "stopPrice"],
    "STOP_MARKET": ["symbol", "side", "stopPrice"],
    "TAKE_PROFIT_MARKET": ["symbol", "side", "stopPrice"],
    "TRAILING_STOP_MARKET": ["symbol", "side", "callbackRate", "quantity"],
}
# A valid value for every known keyword, with what else it needs to be valid.
SAMPLES: dict[str, dict[str, Any]] = {
    "symbol": {"symbol": "ETHUSDT"},
    "side": {"side": "SELL"},
    "positionSide": {"positionSide": "BOTH"},
    "newClientOrderId": {"newClientOrderId": "my-id-1"},
    "reduceOnly": {"reduceOnly": True},
    "newOrderRespType": {"newOrderRespType": "RESULT"},
    "selfTradePreventionMode": {"selfTradePreventionMode": "EXPIRE_TAKER"},
    "recvWindow": {"recvWindow": 5000},
    "timeInForce": {"timeInForce": "IOC"},
    "goodTillDate": {"goodTillDate": 1_900_000_000_000, "timeInForce": "GTD"},
    "workingType": {"workingType": "MARK_PRICE"},
    "quantity": {"quantity": "0.5"},
    "price": {"price": 1.5, "priceMatch": None},
    "priceMatch": {"priceMatch": "OPPONENT", "price": None},
    "stopPrice": {"stopPrice": 2.5},
    "priceProtect": {"priceProtect": "TRUE"},
    "closePosition": {"closePosition": False},
    "callbackRate": {"callbackRate": 0.5},
    "activationPrice": {"activationPrice": 3.5},
}
KNOWN = sorted(SAMPLES)
KIND_OF_PARAM = {
    param: next(kind for kind in ORDER_TYPES if param in ALLOWED[kind]) for param in KNOWN
}
WIRE_NAME = {
    "stopPrice": "triggerPrice",
    "activationPrice": "activatePrice",
    "newClientOrderId": "clientAlgoId",
}


def prepare(kind: str, kwargs: dict[str, Any], *, validate: bool = True) -> PreparedOrder:
    return prepare_order(kind, kwargs, validate=validate, new_client_order_id=lambda: GENERATED_ID)


def with_(kind: str, **changes: Any) -> dict[str, Any]:
    """The minimal keywords of ``kind`` with ``changes`` (a None value removes a keyword)."""
    kwargs = {**MINIMAL[kind], **changes}
    return {key: value for key, value in kwargs.items() if value is not None}


def refusal(kind: str, kwargs: dict[str, Any], *, validate: bool = True) -> str:
    with pytest.raises(OrderValidationError) as info:
        prepare(kind, kwargs, validate=validate)
    return str(info.value)


def wire(kind: str, name: str) -> str:
    """The wire name of a documented keyword for ``kind``."""
    return WIRE_NAME.get(name, name) if kind in CONDITIONAL_TYPES else name


# ---------------------------------------------------------------------------------------------
# Constants and the mapping of each kind


def test_order_types() -> None:
    """The seven kinds, the five conditional ones among them."""
    assert (
        "LIMIT",
        "MARKET",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
    ) == ORDER_TYPES
    assert set(ORDER_TYPES) - {"LIMIT", "MARKET"} == CONDITIONAL_TYPES


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("kind", ORDER_TYPES)
def test_minimal_order_mapping(kind: str, validate: bool) -> None:
    """Each kind goes to its method with its type and wire names, with or without validation."""
    method, params = EXPECTED_WIRE[kind]

    order = prepare(kind, MINIMAL[kind], validate=validate)

    assert PreparedOrder(method, params, GENERATED_ID) == order


def test_prepared_order_is_frozen() -> None:
    """A PreparedOrder cannot be changed after it is made."""
    order = prepare("MARKET", MINIMAL["MARKET"])

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        order.method = "x"  # type: ignore[misc]


def test_unknown_order_type() -> None:
    """An order type outside ORDER_TYPES is a ValueError naming it."""
    with pytest.raises(ValueError, match="'STOP_LOSS'"):
        prepare("STOP_LOSS", MINIMAL["MARKET"])


# ---------------------------------------------------------------------------------------------
# format_decimal / format_params

DECIMAL_TEXT = [
    (0.00001, "0.00001"),
    (1e-8, "0.00000001"),
    (50000.0, "50000.0"),
    (0.1, "0.1"),
    (1e20, "100000000000000000000"),
    (123.456, "123.456"),
    (Decimal("1E+2"), "100"),
    (Decimal("1.50E-3"), "0.00150"),
    (Decimal("0.00010"), "0.00010"),
    (1, "1"),
    (25000, "25000"),
    ("0.10", "0.10"),
    (" 2.5 ", "2.5"),
    ("1e-5", "0.00001"),
    ("+3", "3"),
    (".5", "0.5"),
    (-1.5, "-1.5"),
]


@pytest.mark.parametrize(("value", "expected"), DECIMAL_TEXT)
def test_format_decimal(value: Any, expected: str) -> None:
    """Numbers become their exact plain decimal text, never exponent notation."""
    assert expected == format_decimal(value)


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        Decimal("NaN"),
        Decimal("Infinity"),
        True,
        "abc",
        "",
        "1_000",
        "nan",
        "1e5000",
        None,
        [1],
    ],
)
def test_format_decimal_refuses(value: Any) -> None:
    """Non-numbers, booleans and non-finite values are refused, naming the parameter."""
    with pytest.raises(OrderValidationError, match=r"^price must be a finite decimal number"):
        format_decimal(value, "price")


def test_format_params() -> None:
    """None is dropped, floats/Decimals become plain text, bools true/false, ints/strs kept."""
    params = {
        "symbol": "BTCUSDT",
        "limit": 5,
        "skip": None,
        "qty": 1e-5,
        "dec": Decimal("2E+1"),
        "flag": True,
        "off": False,
    }

    assert {
        "symbol": "BTCUSDT",
        "limit": 5,
        "qty": "0.00001",
        "dec": "20",
        "flag": "true",
        "off": "false",
    } == format_params(params)


# ---------------------------------------------------------------------------------------------
# Numbers on the wire

DECIMAL_NAMES = ["quantity", "price", "stopPrice"]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", DECIMAL_NAMES)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.00001, "0.00001"),
        (1e-8, "0.00000001"),
        (50000.0, "50000.0"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.0100"), "0.0100"),
        (7, "7"),
        ("0.10", "0.10"),
    ],
)
def test_decimal_params_are_exact(name: str, value: Any, expected: str, validate: bool) -> None:
    """DECIMAL params go out as plain decimal text, with or without validation."""
    order = prepare("STOP", with_("STOP", **{name: value}), validate=validate)

    assert expected == order.params[wire("STOP", name)]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("callbackRate", 0.5, "0.5"),
        ("callbackRate", 10, "10"),
        ("activationPrice", 1e-7, "0.0000001"),
    ],
)
def test_trailing_decimal_params_are_exact(
    name: str, value: Any, expected: str, validate: bool
) -> None:
    """callbackRate and activationPrice are sent as plain decimal text too."""
    kind = "TRAILING_STOP_MARKET"

    order = prepare(kind, with_(kind, **{name: value}), validate=validate)

    assert expected == order.params[wire(kind, name)]


@pytest.mark.parametrize("name", ["quantity", "price", "stopPrice"])
@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        0,
        0.0,
        "0",
        -1,
        "-0.5",
        True,
        False,
        "abc",
        "",
        "nan",
        "Infinity",
        Decimal("NaN"),
        Decimal("-3"),
        [1],
    ],
)
def test_decimal_params_must_be_finite_positive(name: str, value: Any) -> None:
    """NaN, infinities, zero, negatives, bools and non-numeric text are refused by name."""
    message = refusal("STOP", with_("STOP", **{name: value}))

    assert f"{name} must be a finite number > 0, got {value!r}" == message


@pytest.mark.parametrize(("value", "expected"), [(" 5 ", "5"), ("1E-3", "0.001"), ("+2", "2")])
def test_decimal_text_is_normalised_only_when_needed(value: str, expected: str) -> None:
    """Numeric text is sent stripped as written, exponent notation made plain."""
    order = prepare("MARKET", with_("MARKET", quantity=value))

    assert expected == order.params["quantity"]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(0.1, True), (10, True), ("5", True), (0.09, False), (10.01, False), (11, False)],
)
def test_callback_rate_range(value: Any, accepted: bool) -> None:
    """callbackRate must be within [0.1, 10] percent."""
    kwargs = with_("TRAILING_STOP_MARKET", callbackRate=value)

    if accepted:
        assert "callbackRate" in prepare("TRAILING_STOP_MARKET", kwargs).params
    else:
        message = refusal("TRAILING_STOP_MARKET", kwargs)
        assert f"callbackRate must be between 0.1 and 10 (percent), got {value!r}" == message


# ---------------------------------------------------------------------------------------------
# Booleans and ints

BOOL_CASES = [
    ("reduceOnly", "MARKET"),
    ("priceProtect", "STOP_MARKET"),
    ("closePosition", "STOP_MARKET"),
]


@pytest.mark.parametrize(("name", "kind"), BOOL_CASES)
@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), ("TRUE", "true"), ("False", "false"), (" true ", "true")],
)
def test_booleans_accepted(name: str, kind: str, value: Any, expected: str) -> None:
    """Booleans, or 'true'/'false' in any case, are sent as 'true'/'false'."""
    kwargs = with_(kind, **{name: value})
    if name == "closePosition" and expected == "true":
        kwargs.pop("quantity")

    assert expected == prepare(kind, kwargs).params[name]


@pytest.mark.parametrize(("name", "kind"), BOOL_CASES)
@pytest.mark.parametrize("value", ["yes", 1, 0, "1", 1.0])
def test_booleans_refused(name: str, kind: str, value: Any) -> None:
    """Anything but a bool or 'true'/'false' is refused by name."""
    message = refusal(kind, with_(kind, **{name: value}))

    assert message.startswith(f"{name} must be true or false")


@pytest.mark.parametrize(("value", "expected"), [(True, "true"), (False, "false"), ("yes", "yes")])
def test_booleans_without_validation(value: Any, expected: str) -> None:
    """Without validation bools are formatted and other values passed on."""
    order = prepare("MARKET", with_("MARKET", reduceOnly=value), validate=False)

    assert expected == order.params["reduceOnly"]


INT_CASES = [
    ("recvWindow", "milliseconds", {}),
    ("goodTillDate", "milliseconds since the epoch", {"timeInForce": "GTD"}),
]


@pytest.mark.parametrize(("name", "what", "extra"), INT_CASES)
@pytest.mark.parametrize(
    ("value", "expected"), [(5000, 5000), ("5000", 5000), (" 42 ", 42), (5000.0, 5000)]
)
def test_int_params_accepted(
    name: str, what: str, extra: dict[str, Any], value: Any, expected: int
) -> None:
    """recvWindow and goodTillDate are sent as ints (digit text and whole floats converted)."""
    actual = prepare("LIMIT", with_("LIMIT", **extra, **{name: value})).params[name]

    assert expected == actual
    assert type(actual) is int


@pytest.mark.parametrize(("name", "what", "extra"), INT_CASES)
@pytest.mark.parametrize("value", [0, -1, True, 5000.5, math.nan, "abc", "5e3", "-5", "١٢"])
def test_int_params_refused(name: str, what: str, extra: dict[str, Any], value: Any) -> None:
    """Zero, negatives, bools, fractions and non-digit text are refused by name."""
    message = refusal("LIMIT", with_("LIMIT", **extra, **{name: value}))

    assert f"{name} must be a positive integer ({what}), got {value!r}" == message


def test_int_params_kept_without_validation() -> None:
    """Without validation recvWindow stays an int."""
    order = prepare("MARKET", with_("MARKET", recvWindow=6000), validate=False)

    assert 6000 == order.params["recvWindow"]


# ---------------------------------------------------------------------------------------------
# Enums and strings

ENUMS: dict[str, list[str]] = {
    "side": ["BUY", "SELL"],
    "positionSide": ["BOTH", "LONG", "SHORT"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD", "RPI"],
    "workingType": ["MARK_PRICE", "CONTRACT_PRICE"],
    "newOrderRespType": ["ACK", "RESULT"],
    "selfTradePreventionMode": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    "priceMatch": [
        "NONE",
        "OPPONENT",
        "OPPONENT_5",
        "OPPONENT_10",
        "OPPONENT_20",
        "QUEUE",
        "QUEUE_5",
        "QUEUE_10",
        "QUEUE_20",
    ],
}
ENUM_ACCEPTED = [(name, value) for name, values in ENUMS.items() for value in values]
ENUM_KIND = {"workingType": "STOP", "priceMatch": "LIMIT", "timeInForce": "LIMIT"}


def enum_kwargs(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    kind = ENUM_KIND.get(name, "LIMIT")
    extra: dict[str, Any] = {name: value}
    if name == "priceMatch":
        extra["price"] = None if value != "NONE" else 1.0
    if value == "GTD":
        extra["goodTillDate"] = 1_900_000_000_000
    return kind, with_(kind, **extra)


@pytest.mark.parametrize(("name", "value"), ENUM_ACCEPTED)
def test_enum_values_accepted(name: str, value: str) -> None:
    """Every documented value of every enum is accepted and sent as is."""
    kind, kwargs = enum_kwargs(name, value)

    assert value == prepare(kind, kwargs).params[name]


@pytest.mark.parametrize("name", sorted(ENUMS))
@pytest.mark.parametrize("mangle", [str.lower, lambda v: v + "X", lambda v: " " + v, lambda v: 1])
def test_enum_values_refused(name: str, mangle: Any) -> None:
    """Enums are exact and case-sensitive; the message lists the allowed values."""
    bad = mangle(ENUMS[name][-1])
    kind, kwargs = enum_kwargs(name, bad)

    message = refusal(kind, kwargs)

    assert f"{name} must be one of {', '.join(ENUMS[name])}, got {bad!r}" == message


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("BTCUSDT", True), ("测试USDT", True), ("", False), ("  ", False), (123, False)],
)
def test_symbol(value: Any, accepted: bool) -> None:
    """symbol must be a non-empty string."""
    kwargs = with_("MARKET", symbol=value)

    if accepted:
        assert value == prepare("MARKET", kwargs).params["symbol"]
    else:
        assert f"symbol must be a non-empty string, got {value!r}" == refusal("MARKET", kwargs)


# ---------------------------------------------------------------------------------------------
# Which keywords each kind takes


@pytest.mark.parametrize("kind", ORDER_TYPES)
@pytest.mark.parametrize("name", KNOWN)
def test_keywords_taken_by_kind(kind: str, name: str) -> None:
    """A keyword of the kind's row is accepted; any other known keyword is refused by name."""
    if name in ALLOWED[kind]:
        order = prepare(kind, with_(kind, **SAMPLES[name]))

        assert wire(kind, name) in order.params
    else:
        message = refusal(kind, {name: SAMPLES[name][name], **MINIMAL[kind]})

        assert message.startswith(f"{name} is not a parameter of {kind} orders")


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind in ORDER_TYPES for name in REQUIRED[kind]]
)
def test_required_keywords(kind: str, name: str) -> None:
    """Leaving out a required keyword is refused, naming it and the kind."""
    kwargs = with_(kind, **{name: None})

    assert f"{name} is required for {kind} orders" == refusal(kind, kwargs)


@pytest.mark.parametrize(
    ("kind", "key", "suggestion"),
    [
        ("LIMIT", "quantty", "quantity"),
        ("MARKET", "Quantity", "quantity"),
        ("LIMIT", "timeinforce", "timeInForce"),
        ("STOP", "stopprice", "stopPrice"),
        ("STOP", "triggerprice", "triggerPrice"),
        ("TRAILING_STOP_MARKET", "callbackrate", "callbackRate"),
        ("MARKET", "newClientOrderID", "newClientOrderId"),
    ],
)
def test_misspelt_keyword_suggests(kind: str, key: str, suggestion: str) -> None:
    """A misspelt keyword is refused by name with the nearest known one."""
    message = refusal(kind, with_(kind, **{key: "1"}))

    assert f"unknown parameter {key!r} for {kind} orders; did you mean {suggestion!r}?" == message


def test_unknown_keyword_without_suggestion() -> None:
    """A keyword like no known one is refused by name, with no guess."""
    message = refusal("MARKET", with_("MARKET", zzz=1))

    assert "unknown parameter 'zzz' for MARKET orders" == message


@pytest.mark.parametrize("name", ["type", "algoType", "timestamp", "apiKey", "signature"])
def test_keywords_set_by_bfsync_refused(name: str) -> None:
    """type, algoType, timestamp, apiKey and signature are bfsync's to set."""
    message = refusal("STOP", with_("STOP", **{name: "x"}))

    assert message.startswith(f"{name} is set by bfsync")


@pytest.mark.parametrize("name", ["type", "algoType", "timestamp", "apiKey", "signature"])
def test_keywords_set_by_bfsync_dropped_without_validation(name: str) -> None:
    """Without validation the caller's type/algoType/timestamp/... are dropped, not sent."""
    order = prepare("STOP", with_("STOP", **{name: "x"}), validate=False)

    assert EXPECTED_WIRE["STOP"][1] == order.params


# ---------------------------------------------------------------------------------------------
# "One of" groups and rules between keywords


@pytest.mark.parametrize("kind", ["LIMIT", "STOP", "TAKE_PROFIT"])
@pytest.mark.parametrize(
    ("price", "match", "problem"),
    [
        (1.5, None, None),
        (None, "QUEUE", None),
        (1.5, "NONE", None),
        (None, None, "price or priceMatch is required for {kind} orders"),
        (
            None,
            "NONE",
            "price or priceMatch is required for {kind} orders (priceMatch=NONE does not count)",
        ),
        (
            1.5,
            "OPPONENT",
            "price cannot be sent together with priceMatch=OPPONENT "
            "({kind} orders take one of them)",
        ),
    ],
)
def test_price_or_price_match(kind: str, price: Any, match: Any, problem: Any) -> None:
    """LIMIT/STOP/TAKE_PROFIT need price or a priceMatch other than NONE, never both."""
    kwargs = with_(kind, price=price, priceMatch=match)

    if problem is None:
        order = prepare(kind, kwargs)
        assert "price" in order.params or "priceMatch" in order.params
    else:
        assert problem.format(kind=kind) == refusal(kind, kwargs)


@pytest.mark.parametrize("kind", ["STOP_MARKET", "TAKE_PROFIT_MARKET"])
@pytest.mark.parametrize(
    ("quantity", "close", "problem"),
    [
        (0.5, None, None),
        (None, True, None),
        (None, "true", None),
        (0.5, False, None),
        (None, None, "quantity or closePosition=true is required for {kind} orders"),
        (
            None,
            False,
            "quantity or closePosition=true is required for {kind} orders "
            "(closePosition=false does not count)",
        ),
        (
            0.5,
            True,
            "quantity cannot be sent together with closePosition=true "
            "({kind} orders take one of them)",
        ),
    ],
)
def test_quantity_or_close_position(kind: str, quantity: Any, close: Any, problem: Any) -> None:
    """STOP_MARKET/TAKE_PROFIT_MARKET need quantity unless closePosition is true, never both."""
    kwargs = with_(kind, quantity=quantity, closePosition=close)

    if problem is None:
        order = prepare(kind, kwargs)
        assert ("quantity" in order.params) != (order.params.get("closePosition") == "true")
    else:
        assert problem.format(kind=kind) == refusal(kind, kwargs)


@pytest.mark.parametrize("kind", ["LIMIT", "STOP", "STOP_MARKET", "TRAILING_STOP_MARKET"])
@pytest.mark.parametrize(
    ("tif", "gtd", "problem"),
    [
        ("GTD", 1_900_000_000_000, None),
        ("GTC", None, None),
        ("GTD", None, "goodTillDate is required when timeInForce is 'GTD' ({kind} orders)"),
        (
            "GTC",
            1_900_000_000_000,
            "goodTillDate is only taken with timeInForce='GTD', got timeInForce='GTC'",
        ),
    ],
)
def test_good_till_date(kind: str, tif: str, gtd: Any, problem: Any) -> None:
    """goodTillDate goes with timeInForce GTD, and GTD needs it."""
    kwargs = with_(kind, timeInForce=tif, goodTillDate=gtd)

    if problem is None:
        assert tif == prepare(kind, kwargs).params["timeInForce"]
    else:
        assert problem.format(kind=kind) == refusal(kind, kwargs)


def test_good_till_date_needs_time_in_force() -> None:
    """On a conditional order without timeInForce (GTC by default), goodTillDate is refused."""
    kwargs = with_("STOP", goodTillDate=1_900_000_000_000)

    assert "goodTillDate is only taken with timeInForce='GTD', got none" == refusal("STOP", kwargs)


@pytest.mark.parametrize(
    ("reduce_only", "accepted"), [(True, False), ("TRUE", False), (False, True), (None, True)]
)
def test_close_position_with_reduce_only(reduce_only: Any, accepted: bool) -> None:
    """closePosition=true cannot go with reduceOnly=true."""
    kwargs = with_("STOP_MARKET", quantity=None, closePosition=True, reduceOnly=reduce_only)

    if accepted:
        assert "true" == prepare("STOP_MARKET", kwargs).params["closePosition"]
    else:
        message = refusal("STOP_MARKET", kwargs)
        assert "reduceOnly=true cannot be sent together with closePosition=true" == message


@pytest.mark.parametrize(
    ("side", "position_side", "accepted"),
    [
        ("BUY", "SHORT", True),
        ("SELL", "LONG", True),
        ("BUY", "BOTH", True),
        ("BUY", "LONG", False),
        ("SELL", "SHORT", False),
    ],
)
def test_close_position_in_hedge_mode(side: str, position_side: str, accepted: bool) -> None:
    """In hedge mode closePosition=true must trade against the position it closes."""
    kwargs = with_(
        "TAKE_PROFIT_MARKET",
        quantity=None,
        closePosition=True,
        side=side,
        positionSide=position_side,
    )

    if accepted:
        assert position_side == prepare("TAKE_PROFIT_MARKET", kwargs).params["positionSide"]
    else:
        message = refusal("TAKE_PROFIT_MARKET", kwargs)
        assert message.startswith(
            f"closePosition=true cannot be sent with side={side!r} and "
            f"positionSide={position_side!r}"
        )


@pytest.mark.parametrize(
    ("position_side", "accepted"), [("BOTH", True), (None, True), ("LONG", False), ("SHORT", False)]
)
def test_reduce_only_not_in_hedge_mode(position_side: Any, accepted: bool) -> None:
    """reduceOnly is refused with positionSide LONG/SHORT (hedge mode)."""
    kwargs = with_("MARKET", reduceOnly=True, positionSide=position_side)

    if accepted:
        assert "true" == prepare("MARKET", kwargs).params["reduceOnly"]
    else:
        message = refusal("MARKET", kwargs)
        assert message.startswith(f"reduceOnly cannot be sent with positionSide={position_side!r}")


# ---------------------------------------------------------------------------------------------
# None, aliases, both spellings


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("kind", ORDER_TYPES)
def test_none_counts_as_not_given(kind: str, validate: bool) -> None:
    """Keywords given as None (empty Excel cells) are left out, whatever the kind."""
    nones = dict.fromkeys(KNOWN)
    kwargs = {**nones, "triggerPrice": None, "activatePrice": None, "clientAlgoId": None}
    kwargs.update(MINIMAL[kind])

    order = prepare(kind, kwargs, validate=validate)

    assert EXPECTED_WIRE[kind][1] == order.params


ALIAS_CASES = [
    ("STOP", "triggerPrice", "stopPrice", 49000.5, "49000.5"),
    ("STOP_MARKET", "triggerPrice", "stopPrice", 39000, "39000"),
    ("TAKE_PROFIT_MARKET", "triggerPrice", "stopPrice", "61000", "61000"),
    ("TRAILING_STOP_MARKET", "activatePrice", "activationPrice", 1e-5, "0.00001"),
    ("TRAILING_STOP_MARKET", "clientAlgoId", "newClientOrderId", "mine-1", "mine-1"),
    ("TAKE_PROFIT", "clientAlgoId", "newClientOrderId", "mine-2", "mine-2"),
]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(("kind", "alias", "documented", "value", "expected"), ALIAS_CASES)
def test_binance_names_are_aliases(
    kind: str, alias: str, documented: str, value: Any, expected: str, validate: bool
) -> None:
    """triggerPrice/activatePrice/clientAlgoId are taken for the documented names."""
    by_alias = prepare(kind, with_(kind, **{documented: None, alias: value}), validate=validate)
    by_name = prepare(kind, with_(kind, **{documented: value}), validate=validate)

    assert expected == by_alias.params[alias]
    assert by_name == by_alias
    assert documented not in by_alias.params


@pytest.mark.parametrize("validate", [True, False])
def test_client_algo_id_alias_on_limit(validate: bool) -> None:
    """clientAlgoId is taken for newClientOrderId on plain orders too."""
    order = prepare("LIMIT", with_("LIMIT", clientAlgoId="mine-3"), validate=validate)

    assert ("mine-3", "mine-3") == (order.params["newClientOrderId"], order.client_order_id)
    assert "clientAlgoId" not in order.params


@pytest.mark.parametrize(
    ("kind", "alias"), [("MARKET", "triggerPrice"), ("LIMIT", "activatePrice")]
)
def test_alias_refused_where_documented_name_is(kind: str, alias: str) -> None:
    """An alias is refused wherever its documented name is, under the caller's spelling."""
    message = refusal(kind, with_(kind, **{alias: 1}))

    assert message.startswith(f"{alias} is not a parameter of {kind} orders")


def test_messages_use_the_callers_spelling() -> None:
    """A bad value given under an alias is reported under that alias."""
    message = refusal("STOP", with_("STOP", stopPrice=None, triggerPrice=-1))

    assert "triggerPrice must be a finite number > 0, got -1" == message


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    ("kind", "documented", "alias"),
    [
        ("STOP", "stopPrice", "triggerPrice"),
        ("TRAILING_STOP_MARKET", "activationPrice", "activatePrice"),
        ("MARKET", "newClientOrderId", "clientAlgoId"),
        ("LIMIT", "stopPrice", "triggerPrice"),
    ],
)
def test_both_spellings_refused(kind: str, documented: str, alias: str, validate: bool) -> None:
    """Giving both spellings of one parameter is an error even without validation."""
    kwargs = with_(kind, **{documented: "1", alias: "1"})

    message = refusal(kind, kwargs, validate=validate)

    assert f"{documented} and {alias} name the same parameter; give only one of them" == message


def test_both_spellings_with_one_none() -> None:
    """A None spelling counts as not given, so the other one is used."""
    order = prepare("STOP", with_("STOP", stopPrice=None, triggerPrice=5))

    assert "5" == order.params["triggerPrice"]


# ---------------------------------------------------------------------------------------------
# Client order ids


@pytest.mark.parametrize("kind", ORDER_TYPES)
def test_client_order_id_generated(kind: str) -> None:
    """Without a caller's id, one is generated (once) and sent in the kind's field."""
    calls: list[int] = []

    def generate() -> str:
        calls.append(1)
        return "gen-xyz"

    order = prepare_order(kind, MINIMAL[kind], validate=True, new_client_order_id=generate)
    field = "clientAlgoId" if kind in CONDITIONAL_TYPES else "newClientOrderId"

    assert ("gen-xyz", "gen-xyz", [1]) == (order.params[field], order.client_order_id, calls)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("kind", ORDER_TYPES)
def test_client_order_id_given(kind: str, validate: bool) -> None:
    """A caller's newClientOrderId is used as is and no id is generated."""

    def generate() -> str:
        raise AssertionError("must not be called")

    kwargs = with_(kind, newClientOrderId="A.b:c/d_e-9")
    order = prepare_order(kind, kwargs, validate=validate, new_client_order_id=generate)
    field = "clientAlgoId" if kind in CONDITIONAL_TYPES else "newClientOrderId"

    assert ("A.b:c/d_e-9", "A.b:c/d_e-9") == (order.params[field], order.client_order_id)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("x", True),
        ("a" * 36, True),
        ("a" * 37, False),
        ("", False),
        ("has space", False),
        ("é", False),
        ("id\n", False),
        (123, False),
    ],
)
def test_client_order_id_pattern(value: Any, accepted: bool) -> None:
    """With validation a caller's id must match ^[.A-Z:/a-z0-9_-]{1,36}$."""
    kwargs = with_("MARKET", newClientOrderId=value)

    if accepted:
        assert value == prepare("MARKET", kwargs).client_order_id
    else:
        assert refusal("MARKET", kwargs).startswith("newClientOrderId must be 1 to 36 characters")


def test_no_id_generated_for_a_refused_order() -> None:
    """The id generator is not called when the order is refused."""

    def generate() -> str:
        raise AssertionError("must not be called")

    with pytest.raises(OrderValidationError):
        prepare_order("MARKET", {"symbol": "X"}, validate=True, new_client_order_id=generate)


# ---------------------------------------------------------------------------------------------
# Without validation


def test_without_validation_nothing_is_refused() -> None:
    """Missing, misspelt, foreign and bad keywords all pass through, formatted."""
    kwargs = {
        "symbol": "btcusdt",
        "side": "buy",
        "quantty": 0.00001,
        "stopPrice": math.nan,
        "callbackRate": 50,
        "extraFlag": True,
        "extraInt": 3,
        "extraDecimal": Decimal("1E-7"),
    }

    order = prepare("LIMIT", kwargs, validate=False)

    assert {
        "type": "LIMIT",
        "symbol": "btcusdt",
        "side": "buy",
        "quantty": "0.00001",
        "stopPrice": "nan",
        "callbackRate": "50",
        "extraFlag": "true",
        "extraInt": 3,
        "extraDecimal": "0.0000001",
        "newClientOrderId": GENERATED_ID,
    } == order.params


def test_without_validation_conditional_mapping_applies() -> None:
    """Without validation conditional kinds still go to algoOrder.place with Binance's names."""
    kwargs = {"symbol": "X", "stopPrice": 1e-5, "activationPrice": 2.0, "newClientOrderId": "c1"}

    order = prepare("TRAILING_STOP_MARKET", kwargs, validate=False)

    assert (
        PreparedOrder(
            "algoOrder.place",
            {
                "algoType": "CONDITIONAL",
                "type": "TRAILING_STOP_MARKET",
                "symbol": "X",
                "triggerPrice": "0.00001",
                "activatePrice": "2.0",
                "clientAlgoId": "c1",
            },
            "c1",
        )
        == order
    )


def test_place_methods_name_a_service_method_for_every_order_type() -> None:
    """PLACE_METHODS maps each order type to a placing method the service has."""
    from bfsync.service import WebSocketService

    assert list(ORDER_TYPES) == list(PLACE_METHODS)
    missing = [m for m in PLACE_METHODS.values() if not callable(getattr(WebSocketService, m, 0))]
    assert [] == missing
