"""Every real number a notebook user passes (numpy, Decimal, Fraction) goes on the wire exactly."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from bfsync.calls import prepare_call
from bfsync.exceptions import OrderValidationError
from bfsync.filters import ExchangeFilters
from bfsync.orders import format_decimal, format_params, prepare_order
from bfsync.protocol import encode_request
from tests.unit.test_filters import load_fixture

EXACT = [
    (np.float64(0.002), "0.002"),
    (np.float64(1e-5), "0.00001"),
    (np.float64(50000.0), "50000.0"),
    (np.int64(50000), "50000"),
    (np.int32(7), "7"),
    (np.uint8(3), "3"),
    (np.float32(0.1), "0.1"),
    (np.float32(1e-5), "0.00001"),
    (np.float32(123456789.0), "123456790"),
    (np.float16(0.5), "0.5"),
    (np.longdouble("0.25"), "0.25"),
    (Fraction(3, 8), "0.375"),
    (Fraction(50000), "50000"),
    (Decimal("0.0010"), "0.0010"),
    (0.1 + 0.2, "0.30000000000000004"),
]


def prepare(kind: str, kwargs: dict[str, Any], validate: bool) -> dict[str, Any]:
    order = prepare_order(kind, kwargs, validate=validate, new_client_order_id=lambda: "c1")
    return order.params


@pytest.mark.parametrize(("value", "expected"), EXACT)
def test_format_decimal_reads_every_real_type(value: Any, expected: str) -> None:
    """numpy scalars, Fractions and Decimals become their exact plain text."""
    assert expected == format_decimal(value, "quantity")


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(("value", "expected"), EXACT)
def test_order_numbers_of_every_type_are_sent_exactly(
    value: Any, expected: str, validate: bool
) -> None:
    """quantity, price and stopPrice of any real type are plain decimal text, validated or not."""
    kwargs = {"symbol": "BTCUSDT", "side": "BUY", "quantity": value, "price": value}
    params = prepare("STOP", {**kwargs, "stopPrice": value}, validate)

    assert (expected, expected, expected) == (
        params["quantity"],
        params["price"],
        params["triggerPrice"],
    )
    json.loads(encode_request(1, "algoOrder.place", params))  # serialisable as it stands


@pytest.mark.parametrize("validate", [True, False])
def test_issue_examples_are_taken(validate: bool) -> None:
    """np.float64 quantity and np.int64 price (the issue's examples) make a valid LIMIT order."""
    kwargs = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "quantity": np.float64(0.002),
        "price": np.int64(50000),
        "timeInForce": "GTC",
        "recvWindow": np.int64(5000),
        "reduceOnly": np.False_,
    }

    params = prepare("LIMIT", kwargs, validate)

    assert ("0.002", "50000", 5000, "false") == (
        params["quantity"],
        params["price"],
        params["recvWindow"],
        params["reduceOnly"],
    )
    assert int is type(params["recvWindow"])


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("value", [Fraction(1, 3), object()])
def test_unformattable_is_an_order_validation_error(validate: bool, value: Any) -> None:
    """A value with no exact wire form is an OrderValidationError naming the parameter."""
    kwargs = {"symbol": "BTCUSDT", "side": "BUY", "quantity": value}

    with pytest.raises(OrderValidationError, match=r"^quantity "):
        prepare("MARKET", kwargs, validate)


@pytest.mark.parametrize(
    "value", [np.float64(math.nan), np.float32(math.inf), np.True_, Decimal("sNaN"), "1/3"]
)
def test_validation_refuses_non_finite_numpy_values_by_name(value: Any) -> None:
    """With validation, NaN/inf numpy values and numpy bools are refused like Python's."""
    kwargs = {"symbol": "BTCUSDT", "side": "BUY", "quantity": value}

    with pytest.raises(OrderValidationError, match=r"^quantity must be a finite number > 0"):
        prepare("MARKET", kwargs, True)


def test_format_params_makes_numpy_values_json() -> None:
    """Non-order params: numpy ints become ints, whole floats of INT params ints, bools text."""
    params = {
        "symbol": "BTCUSDT",
        "limit": np.int64(5),
        "orderId": 12.0,
        "startTime": 1.7e12,
        "price": np.float32(0.1),
        "flag": np.True_,
    }

    wire = format_params(params)

    assert {
        "symbol": "BTCUSDT",
        "limit": 5,
        "orderId": 12,
        "startTime": 1700000000000,
        "price": "0.1",
        "flag": "true",
    } == wire
    assert [int, int] == [type(wire["limit"]), type(wire["orderId"])]


@pytest.mark.parametrize("value", [[1], {"a": 1}, object(), Fraction(2, 3)])
def test_format_params_refuses_what_cannot_be_sent(value: Any) -> None:
    """A value JSON cannot carry (or no exact decimal) is refused in the caller's thread, named."""
    with pytest.raises(OrderValidationError, match=r"^limit "):
        format_params({"limit": value})


@pytest.mark.parametrize("validate", [True, False])
def test_calls_take_numpy_ids_and_numbers(validate: bool) -> None:
    """order.modify and order.cancel take numpy ints and floats, sent as JSON ints and text."""
    modify = prepare_call(
        "order.modify",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "orderId": np.int64(42),
            "quantity": np.float64(0.003),
            "price": np.int64(49000),
        },
        validate=validate,
    )
    cancel = prepare_call("order.cancel", {"symbol": "X", "orderId": np.int64(7)}, validate=True)

    assert (42, "0.003", "49000", 7) == (
        modify["orderId"],
        modify["quantity"],
        modify["price"],
        cancel["orderId"],
    )
    json.loads(encode_request(1, "order.modify", modify))


def test_more_digits_than_the_tick_are_sent_as_written_without_filters() -> None:
    """Excel's 0.1+0.2 goes out with every digit of its repr; the exchange's -1111 refuses it."""
    params = prepare(
        "LIMIT",
        {"symbol": "X", "side": "BUY", "quantity": 0.1 + 0.2, "price": 1, "timeInForce": "GTC"},
        True,
    )

    assert "0.30000000000000004" == params["quantity"]


def test_more_digits_than_the_step_meet_the_filter_message_with_filters() -> None:
    """With filters, 0.1+0.2 meets the LOT_SIZE step rule, with the nearest valid values."""
    filters = ExchangeFilters.from_exchange_info(load_fixture(), 0.0)
    params = prepare(
        "LIMIT",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "quantity": 0.1 + 0.2,
            "price": np.float64(50000.0),
            "timeInForce": "GTC",
        },
        True,
    )

    with pytest.raises(OrderValidationError) as info:
        filters.check_order("LIMIT", params)

    assert (
        "quantity 0.30000000000000004 breaks LOT_SIZE stepSize 0.001 for BTCUSDT; "
        "nearest valid: 0.300 or 0.301"
    ) == str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float64(0.0109), "0.010"), (np.float32(0.0109), "0.010"), (Fraction(21, 1000), "0.021")],
)
def test_rounding_helpers_take_numpy_and_fractions(value: Any, expected: str) -> None:
    """round_quantity reads numpy scalars and Fractions exactly."""
    filters = ExchangeFilters.from_exchange_info(load_fixture(), 0.0)

    assert expected == str(filters.round_quantity("BTCUSDT", value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float32(50000.0), "50000"), (np.float32(2.5), "2.5"), (np.float16(100), "100")],
)
def test_numpy_floats_lose_only_trailing_zeros(value: Any, expected: str) -> None:
    """A non-Python float is read at its own precision; numpy's "x.0" gives no extra zero."""
    assert expected == format_decimal(value)
