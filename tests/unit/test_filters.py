"""Symbol filters: parsing exchangeInfo, check_order, the rounding helpers and FilterCache."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any, Optional

import pytest

from bfsync.exceptions import OrderValidationError
from bfsync.filters import ExchangeFilters, FilterCache, SymbolFilters
from bfsync.orders import prepare_order

# bfsync.testing's __init__ needs `websockets`; reading the file through the parent package
# does not import it.
FIXTURE = files("bfsync") / "testing" / "exchange_info.json"


def load_fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def exchange_info() -> dict[str, Any]:
    return load_fixture()


@pytest.fixture
def filters(exchange_info: dict[str, Any]) -> ExchangeFilters:
    return ExchangeFilters.from_exchange_info(exchange_info, fetched_at=12.5)


def limit(price: str, quantity: str, symbol: str = "BTCUSDT", **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": "BUY", "price": price, "quantity": quantity, **extra}


def refusal(
    filters: ExchangeFilters,
    order_type: str,
    params: Mapping[str, Any],
    last_price: Optional[Decimal] = None,
) -> str:
    with pytest.raises(OrderValidationError) as caught:
        filters.check_order(order_type, params, last_price)
    return str(caught.value)


# ---------------------------------------------------------------------------------------------
# Parsing


def test_symbol_filters_read_from_the_fixture(filters: ExchangeFilters) -> None:
    """Every BTCUSDT field is read from the fixture as an exact Decimal."""
    expected = SymbolFilters(
        symbol="BTCUSDT",
        status="TRADING",
        min_price=Decimal("556.80"),
        max_price=Decimal("4529764"),
        tick_size=Decimal("0.10"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("1000"),
        step_size=Decimal("0.001"),
        market_min_qty=Decimal("0.001"),
        market_max_qty=Decimal("120"),
        market_step_size=Decimal("0.001"),
        min_notional=Decimal("100"),
    )

    assert expected == filters.get("BTCUSDT")


def test_snapshot_holds_every_symbol_and_its_fetch_time(filters: ExchangeFilters) -> None:
    """The snapshot knows the three fixture symbols, their statuses and fetched_at."""
    statuses = {name: filters.get(name).status for name in filters}

    assert {"BTCUSDT": "TRADING", "ETHUSDT": "TRADING", "OLDUSDT": "SETTLING"} == statuses
    assert (3, 12.5, True) == (len(filters), filters.fetched_at, "ETHUSDT" in filters)


def test_market_lot_size_falls_back_to_lot_size(exchange_info: dict[str, Any]) -> None:
    """Without MARKET_LOT_SIZE the market fields repeat LOT_SIZE; no MIN_NOTIONAL is None."""
    info = exchange_info["symbols"][0]
    info["filters"] = [
        f for f in info["filters"] if f["filterType"] not in ("MARKET_LOT_SIZE", "MIN_NOTIONAL")
    ]

    parsed = SymbolFilters.from_symbol_info(info)

    expected = (Decimal("0.001"), Decimal("1000"), Decimal("0.001"), None)
    actual = (
        parsed.market_min_qty,
        parsed.market_max_qty,
        parsed.market_step_size,
        parsed.min_notional,
    )
    assert expected == actual


def test_missing_price_filter_reads_as_disabled_rules(exchange_info: dict[str, Any]) -> None:
    """Without PRICE_FILTER every price rule is 0 (disabled) and any positive price passes."""
    info = exchange_info["symbols"][0]
    info["filters"] = [f for f in info["filters"] if f["filterType"] != "PRICE_FILTER"]
    snapshot = ExchangeFilters({"BTCUSDT": SymbolFilters.from_symbol_info(info)}, 0.0)

    snapshot.check_order("LIMIT", limit("123456789.123456", "0.010"))

    assert (Decimal(0), Decimal(0), Decimal(0)) == (
        snapshot.get("BTCUSDT").min_price,
        snapshot.get("BTCUSDT").max_price,
        snapshot.get("BTCUSDT").tick_size,
    )


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "no 'symbols' list"),
        ({"symbols": [{"symbol": "BTCUSDT"}]}, "'symbol' and 'status'"),
        (
            {
                "symbols": [
                    {
                        "symbol": "BTCUSDT",
                        "status": "TRADING",
                        "filters": [{"filterType": "PRICE_FILTER", "tickSize": "abc"}],
                    }
                ]
            },
            "tickSize must be a decimal >= 0, got 'abc'",
        ),
    ],
)
def test_malformed_exchange_info_is_a_value_error(data: dict[str, Any], fragment: str) -> None:
    """A response without symbols, an entry without status or a bad filter value is refused."""
    with pytest.raises(ValueError) as caught:
        ExchangeFilters.from_exchange_info(data, 0.0)

    assert fragment in str(caught.value)


def test_snapshot_is_immutable(exchange_info: dict[str, Any]) -> None:
    """The snapshot copies its mapping and exposes it read-only."""
    source = {"BTCUSDT": SymbolFilters.from_symbol_info(exchange_info["symbols"][0])}
    snapshot = ExchangeFilters(source, 0.0)
    source.clear()

    with pytest.raises(TypeError):
        snapshot.symbols["X"] = snapshot.get("BTCUSDT")  # type: ignore[index]
    assert ["BTCUSDT"] == list(snapshot.symbols)


# ---------------------------------------------------------------------------------------------
# Symbol and status


def test_unknown_symbol_is_refused_with_a_hint(filters: ExchangeFilters) -> None:
    """get() and check_order() refuse an unknown symbol by name, with the nearest known one."""
    with pytest.raises(OrderValidationError) as caught:
        filters.get("BTCUSDX")

    assert "unknown symbol 'BTCUSDX'; did you mean 'BTCUSDT'?" == str(caught.value)
    assert "unknown symbol 'XRPEUR'" == refusal(filters, "LIMIT", limit("1", "1", "XRPEUR"))


def test_non_trading_symbol_is_refused(filters: ExchangeFilters) -> None:
    """An order on a SETTLING symbol is refused, naming the status."""
    message = refusal(filters, "LIMIT", limit("1.0000", "100", "OLDUSDT"))

    assert "OLDUSDT is not trading: its status is SETTLING, not TRADING" == message


def test_unknown_order_type_is_refused(filters: ExchangeFilters) -> None:
    """check_order only takes the seven order kinds."""
    message = refusal(filters, "LIMIT_MAKER", limit("50000.00", "0.010"))

    assert message.startswith("unknown order type 'LIMIT_MAKER'")


@pytest.mark.parametrize(("name", "value"), [("price", "abc"), ("quantity", "NaN")])
def test_non_numeric_values_are_refused(filters: ExchangeFilters, name: str, value: str) -> None:
    """A price or quantity that is no finite number is refused by name."""
    params = limit("50000.00", "0.010")
    params[name] = value

    message = refusal(filters, "LIMIT", params)

    assert f"{name} must be a finite decimal number, got {value!r}" == message


def test_zero_price_is_refused(filters: ExchangeFilters) -> None:
    """A price of 0 (only possible without order validation) is refused."""
    assert "price must be > 0, got 0" == refusal(filters, "LIMIT", limit("0", "0.010"))


# ---------------------------------------------------------------------------------------------
# PRICE_FILTER


def test_price_on_the_tick_is_accepted(filters: ExchangeFilters) -> None:
    """50000.10 is on BTCUSDT's 0.10 grid from minPrice 556.80; the call returns None."""
    filters.check_order("LIMIT", limit("50000.10", "0.010"))


def test_price_off_the_tick_is_refused(filters: ExchangeFilters) -> None:
    """50000.05 breaks tickSize 0.10; the message gives the two grid prices around it."""
    message = refusal(filters, "LIMIT", limit("50000.05", "0.010"))

    expected = (
        "price 50000.05 breaks PRICE_FILTER tickSize 0.10 for BTCUSDT; "
        "nearest valid: 50000.00 or 50000.10"
    )
    assert expected == message


def test_eth_tick_is_finer(filters: ExchangeFilters) -> None:
    """ETHUSDT takes 3000.01 (tick 0.01) and refuses 3000.015."""
    filters.check_order("LIMIT", limit("3000.01", "0.010", "ETHUSDT"))

    message = refusal(filters, "LIMIT", limit("3000.015", "0.010", "ETHUSDT"))

    expected = (
        "price 3000.015 breaks PRICE_FILTER tickSize 0.01 for ETHUSDT; "
        "nearest valid: 3000.01 or 3000.02"
    )
    assert expected == message


def test_min_price_is_accepted_and_below_it_refused(filters: ExchangeFilters) -> None:
    """minPrice 556.80 itself passes; 556.70 is refused with 556.80 as the nearest valid."""
    filters.check_order("LIMIT", limit("556.80", "0.200"))

    message = refusal(filters, "LIMIT", limit("556.70", "0.200"))

    assert (
        "price 556.70 breaks PRICE_FILTER minPrice 556.80 for BTCUSDT; nearest valid: 556.80"
        == message
    )


def test_max_price_is_accepted_and_above_it_refused(filters: ExchangeFilters) -> None:
    """maxPrice 4529764 itself passes; 4529764.10 is refused with the highest valid price."""
    filters.check_order("LIMIT", limit("4529764", "0.001"))

    message = refusal(filters, "LIMIT", limit("4529764.10", "0.001"))

    assert (
        "price 4529764.10 breaks PRICE_FILTER maxPrice 4529764 for BTCUSDT; "
        "nearest valid: 4529764.00" == message
    )


@pytest.mark.parametrize(
    ("order_type", "name", "extra"),
    [
        ("STOP_MARKET", "triggerPrice", {}),
        ("TAKE_PROFIT_MARKET", "stopPrice", {}),
        ("STOP", "triggerPrice", {"price": "50000.00"}),
        ("TRAILING_STOP_MARKET", "activatePrice", {"callbackRate": "1"}),
    ],
)
def test_trigger_and_activation_prices_are_checked(
    filters: ExchangeFilters, order_type: str, name: str, extra: dict[str, Any]
) -> None:
    """triggerPrice / stopPrice / activatePrice pass on the tick and are refused off it."""
    base = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.010", **extra}
    filters.check_order(order_type, {**base, name: "49000.10"})

    message = refusal(filters, order_type, {**base, name: "49000.01"})

    expected = (
        f"{name} 49000.01 breaks PRICE_FILTER tickSize 0.10 for BTCUSDT; "
        "nearest valid: 49000.00 or 49000.10"
    )
    assert expected == message


def test_trigger_price_below_min_price_is_refused(filters: ExchangeFilters) -> None:
    """A trigger price under minPrice is refused like a price."""
    params = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.200", "triggerPrice": "500"}

    message = refusal(filters, "STOP_MARKET", params)

    assert (
        "triggerPrice 500 breaks PRICE_FILTER minPrice 556.80 for BTCUSDT; nearest valid: 556.80"
        == message
    )


# ---------------------------------------------------------------------------------------------
# LOT_SIZE and MARKET_LOT_SIZE


def test_quantity_on_the_step_is_accepted(filters: ExchangeFilters) -> None:
    """0.011 is on the 0.001 step."""
    filters.check_order("LIMIT", limit("50000.00", "0.011"))


def test_quantity_off_the_step_is_refused(filters: ExchangeFilters) -> None:
    """0.0105 breaks stepSize 0.001; the message gives 0.010 and 0.011."""
    message = refusal(filters, "LIMIT", limit("50000.00", "0.0105"))

    expected = (
        "quantity 0.0105 breaks LOT_SIZE stepSize 0.001 for BTCUSDT; nearest valid: 0.010 or 0.011"
    )
    assert expected == message


def test_min_quantity_is_accepted_and_below_it_refused(filters: ExchangeFilters) -> None:
    """minQty 0.001 passes (notional exactly 100); 0.0005 is refused with 0.001."""
    filters.check_order("LIMIT", limit("100000.00", "0.001"))

    message = refusal(filters, "LIMIT", limit("100000.00", "0.0005"))

    assert (
        "quantity 0.0005 breaks LOT_SIZE minQty 0.001 for BTCUSDT; nearest valid: 0.001" == message
    )


def test_max_quantity_is_accepted_and_above_it_refused(filters: ExchangeFilters) -> None:
    """maxQty 1000 passes; 1000.001 is refused with 1000.000."""
    filters.check_order("LIMIT", limit("50000.00", "1000"))

    message = refusal(filters, "LIMIT", limit("50000.00", "1000.001"))

    assert (
        "quantity 1000.001 breaks LOT_SIZE maxQty 1000 for BTCUSDT; nearest valid: 1000.000"
        == message
    )


def test_market_orders_use_market_lot_size(filters: ExchangeFilters) -> None:
    """MARKET takes 120 and refuses 121 by MARKET_LOT_SIZE; LIMIT takes 121 (LOT_SIZE)."""
    filters.check_order("MARKET", {"symbol": "BTCUSDT", "side": "BUY", "quantity": "120"})
    filters.check_order("LIMIT", limit("50000.00", "121"))

    message = refusal(filters, "MARKET", {"symbol": "BTCUSDT", "side": "BUY", "quantity": "121"})

    assert (
        "quantity 121 breaks MARKET_LOT_SIZE maxQty 120 for BTCUSDT; nearest valid: 120.000"
        == message
    )


def test_conditional_market_kinds_use_lot_size(filters: ExchangeFilters) -> None:
    """STOP_MARKET is sized by LOT_SIZE (documented choice), so 500 passes."""
    params = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "500", "triggerPrice": "49000.0"}

    filters.check_order("STOP_MARKET", params)


# ---------------------------------------------------------------------------------------------
# MIN_NOTIONAL


def test_notional_at_the_minimum_is_accepted(filters: ExchangeFilters) -> None:
    """0.002 x 50000.00 = 100 meets notional 100."""
    filters.check_order("LIMIT", limit("50000.00", "0.002"))


def test_notional_below_the_minimum_is_refused(filters: ExchangeFilters) -> None:
    """0.001 x 50000.00 = 50 is refused, with the smallest quantity that would pass."""
    message = refusal(filters, "LIMIT", limit("50000.00", "0.001"))

    expected = (
        "notional 50.00000 (quantity 0.001 x price 50000.00) breaks MIN_NOTIONAL notional 100 "
        "for BTCUSDT; nearest valid: quantity 0.002 at that price (or reduceOnly=true)"
    )
    assert expected == message


def test_nearest_notional_quantity_rounds_up_to_the_step(filters: ExchangeFilters) -> None:
    """At 30000.00 notional 100 needs 0.00333..., so 0.004 is proposed."""
    message = refusal(filters, "LIMIT", limit("30000.00", "0.003"))

    assert message.endswith("nearest valid: quantity 0.004 at that price (or reduceOnly=true)")


@pytest.mark.parametrize(
    ("flag", "exempt"),
    [("true", True), ("TRUE", True), (True, True), ("false", False)],
)
def test_reduce_only_is_exempt_from_min_notional(
    filters: ExchangeFilters, flag: Any, exempt: bool
) -> None:
    """reduceOnly=true skips MIN_NOTIONAL; reduceOnly=false does not."""
    params = limit("50000.00", "0.001", reduceOnly=flag)

    if exempt:
        filters.check_order("LIMIT", params)
    else:
        assert "breaks MIN_NOTIONAL" in refusal(filters, "LIMIT", params)


def test_close_position_has_no_quantity_checks(filters: ExchangeFilters) -> None:
    """closePosition=true without a quantity passes LOT_SIZE and MIN_NOTIONAL."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "triggerPrice": "49000.00",
        "closePosition": "true",
    }

    filters.check_order("STOP_MARKET", params)


def test_market_notional_uses_last_price_when_given(filters: ExchangeFilters) -> None:
    """MARKET 0.001 passes without last_price (skipped) and is refused at 50000."""
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"}
    filters.check_order("MARKET", params)
    filters.check_order("MARKET", params, last_price=Decimal("100000"))

    message = refusal(filters, "MARKET", params, last_price=Decimal("50000"))

    assert message.startswith(
        "notional 50.000 (quantity 0.001 x last price 50000) breaks MIN_NOTIONAL notional 100"
    )


def test_stop_market_notional_uses_the_trigger_price(filters: ExchangeFilters) -> None:
    """STOP_MARKET 0.001 at trigger 50000.00 is refused; at 100000.00 it passes."""
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "triggerPrice": "50000.00"}
    filters.check_order("STOP_MARKET", {**params, "triggerPrice": "100000.00"})

    message = refusal(filters, "STOP_MARKET", params)

    assert "(quantity 0.001 x triggerPrice 50000.00) breaks MIN_NOTIONAL" in message


def test_trailing_notional_uses_activate_price_then_last_price(filters: ExchangeFilters) -> None:
    """TRAILING_STOP_MARKET: activatePrice first, else last_price, else no check."""
    params = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.001", "callbackRate": "1"}
    filters.check_order("TRAILING_STOP_MARKET", params)

    with_activation = refusal(
        filters, "TRAILING_STOP_MARKET", {**params, "activatePrice": "50000.00"}
    )
    with_last = refusal(filters, "TRAILING_STOP_MARKET", params, last_price=Decimal("50000"))

    assert "x activatePrice 50000.00) breaks MIN_NOTIONAL" in with_activation
    assert "x last price 50000) breaks MIN_NOTIONAL" in with_last


def test_limit_with_price_match_uses_last_price(filters: ExchangeFilters) -> None:
    """A LIMIT order with priceMatch (no price) is checked at last_price, or not at all."""
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "priceMatch": "QUEUE"}
    filters.check_order("LIMIT", params)

    assert "x last price 50000) breaks MIN_NOTIONAL" in refusal(
        filters, "LIMIT", params, last_price=Decimal("50000")
    )


# ---------------------------------------------------------------------------------------------
# Rounding helpers


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (Decimal("50000.19"), "50000.10"),
        ("50000.19", "50000.10"),
        (50000.19, "50000.10"),
        (50000, "50000.00"),
        ("50000.1", "50000.10"),
        ("4529764.05", "4529764.00"),
        ("99999999", "4529764.00"),
    ],
)
def test_round_price(filters: ExchangeFilters, price: Any, expected: str) -> None:
    """Down to the tick, down to maxPrice, written with the tick's exponent."""
    assert expected == str(filters.round_price("BTCUSDT", price))


@pytest.mark.parametrize(
    ("qty", "market", "expected"),
    [
        (Decimal("0.0109"), False, "0.010"),
        ("0.0109", False, "0.010"),
        (0.0109, False, "0.010"),
        (2, False, "2.000"),
        ("5000", False, "1000.000"),
        ("5000", True, "120.000"),
        ("119.9999", True, "119.999"),
    ],
)
def test_round_quantity(filters: ExchangeFilters, qty: Any, market: bool, expected: str) -> None:
    """Down to the step, down to maxQty (MARKET_LOT_SIZE with market=True)."""
    assert expected == str(filters.round_quantity("BTCUSDT", qty, market=market))


@pytest.mark.parametrize(
    ("qty", "market", "message"),
    [
        (
            0.00001,
            False,
            "quantity 0.00001 is below LOT_SIZE minQty 0.001 for BTCUSDT; rounding down cannot "
            "reach a valid value (the smallest is 0.001)",
        ),
        ("0.0004", True, "quantity 0.0004 is below MARKET_LOT_SIZE minQty 0.001 for BTCUSDT"),
        (0, False, "quantity must be > 0, got 0"),
        ("-1", False, "quantity must be > 0, got -1"),
    ],
)
def test_round_quantity_never_rounds_up(
    filters: ExchangeFilters, qty: Any, market: bool, message: str
) -> None:
    """Below minQty (or not > 0) rounding down is refused, never silently rounded up."""
    with pytest.raises(OrderValidationError) as info:
        filters.round_quantity("BTCUSDT", qty, market=market)

    assert str(info.value).startswith(message)


@pytest.mark.parametrize("price", ["556.79", "1", 0.5])
def test_round_price_never_rounds_up(filters: ExchangeFilters, price: Any) -> None:
    """Below minPrice rounding down is refused, naming the filter and the smallest price."""
    with pytest.raises(OrderValidationError, match=r"below PRICE_FILTER minPrice 556\.8.*556\.80"):
        filters.round_price("BTCUSDT", price)


@pytest.mark.parametrize("symbol", ["btcusdt", " BtcUsdt"])
def test_lowercase_symbol_gets_the_uppercase_hint(filters: ExchangeFilters, symbol: str) -> None:
    """A symbol in the wrong case is refused with the exchange's spelling as the hint."""
    with pytest.raises(OrderValidationError) as info:
        filters.round_quantity(symbol, "1")

    assert f"unknown symbol {symbol!r}; did you mean 'BTCUSDT'?" == str(info.value)


def test_rounding_returns_decimals_on_the_eth_grid(filters: ExchangeFilters) -> None:
    """ETHUSDT rounds to 0.01 and 0.001 and returns Decimals."""
    price = filters.round_price("ETHUSDT", "3000.019")
    qty = filters.round_quantity("ETHUSDT", "1.23456")

    assert (Decimal("3000.01"), "3000.01", Decimal("1.234")) == (price, str(price), qty)


@pytest.mark.parametrize("value", [True, "abc", float("nan"), None])
def test_rounding_refuses_non_numbers(filters: ExchangeFilters, value: Any) -> None:
    """A bool, text, NaN or None is refused, not rounded."""
    with pytest.raises(OrderValidationError):
        filters.round_price("BTCUSDT", value)


def test_rounding_an_unknown_symbol_is_refused(filters: ExchangeFilters) -> None:
    """The helpers refuse an unknown symbol like get()."""
    with pytest.raises(OrderValidationError, match="unknown symbol 'NOPE'"):
        filters.round_quantity("NOPE", "1")


def test_rounded_order_passes_check_order(filters: ExchangeFilters) -> None:
    """A STOP order off the grid is refused; rounded with the helpers, it passes."""
    kwargs: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "quantity": 0.01234,
        "price": 50000.057,
        "stopPrice": 49999.99,
    }
    prepared = prepare_order("STOP", kwargs, validate=True, new_client_order_id=lambda: "c1")
    assert "breaks PRICE_FILTER tickSize 0.10" in refusal(filters, "STOP", prepared.params)

    rounded = {
        **kwargs,
        "quantity": filters.round_quantity("BTCUSDT", kwargs["quantity"]),
        "price": filters.round_price("BTCUSDT", kwargs["price"]),
        "stopPrice": filters.round_price("BTCUSDT", kwargs["stopPrice"]),
    }
    prepared = prepare_order("STOP", rounded, validate=True, new_client_order_id=lambda: "c1")
    filters.check_order("STOP", prepared.params)

    expected = {"quantity": "0.012", "price": "50000.00", "triggerPrice": "49999.90"}
    assert expected == {name: prepared.params[name] for name in expected}


# ---------------------------------------------------------------------------------------------
# FilterCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    """Returns the fixture (a fresh copy each time), or raises while `fail` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: Optional[Exception] = None
        self.data = load_fixture()

    def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return copy.deepcopy(self.data)


def test_cache_loads_once() -> None:
    """The first get() loads; later ones return the same snapshot without loading."""
    loader, clock = CountingLoader(), FakeClock()
    cache = FilterCache(loader, refresh_interval=3600.0, clock=clock)
    assert not cache.loaded

    first = cache.get()
    clock.now += 3599.0
    second = cache.get()

    assert (1, True, True, 1000.0) == (
        loader.calls,
        cache.loaded,
        first is second,
        first.fetched_at,
    )


def test_cache_refreshes_after_the_interval() -> None:
    """Once refresh_interval has passed, get() loads a new snapshot."""
    loader, clock = CountingLoader(), FakeClock()
    cache = FilterCache(loader, refresh_interval=3600.0, clock=clock)
    first = cache.get()
    loader.data["symbols"][0]["status"] = "CLOSE"

    clock.now += 3600.0
    second = cache.get()

    assert (2, False, "CLOSE", 4600.0) == (
        loader.calls,
        first is second,
        second.get("BTCUSDT").status,
        second.fetched_at,
    )


def test_cache_keeps_the_old_snapshot_when_a_refresh_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed refresh logs a warning, keeps the snapshot and retries after retry_interval."""
    loader, clock = CountingLoader(), FakeClock()
    cache = FilterCache(loader, refresh_interval=3600.0, clock=clock, retry_interval=60.0)
    first = cache.get()
    loader.fail = RuntimeError("exchangeInfo unreachable")
    clock.now += 3600.0

    with caplog.at_level(logging.WARNING, logger="bfsync.filters"):
        kept = cache.get()
    clock.now += 59.0
    still_kept = cache.get()
    calls_before_retry = loader.calls
    loader.fail = None
    clock.now += 1.0
    refreshed = cache.get()

    assert (True, True, 2, 3) == (
        kept is first,
        still_kept is first,
        calls_before_retry,
        loader.calls,
    )
    assert refreshed is not first
    assert ["WARNING"] == [record.levelname for record in caplog.records]
    assert "exchangeInfo unreachable" in caplog.records[0].getMessage()


def test_cache_raises_when_the_first_load_fails() -> None:
    """Without a snapshot a failed load is raised; the next get() tries again."""
    loader = CountingLoader()
    loader.fail = RuntimeError("down")
    cache = FilterCache(loader, clock=FakeClock())

    with pytest.raises(RuntimeError, match="down"):
        cache.get()
    loaded_after_failure = cache.loaded
    loader.fail = None
    cache.get()

    assert (False, True, 2) == (loaded_after_failure, cache.loaded, loader.calls)


def test_cache_raises_when_the_data_is_malformed() -> None:
    """A loader answer without symbols fails the first load with ValueError."""
    cache = FilterCache(lambda: {"timezone": "UTC"}, clock=FakeClock())

    with pytest.raises(ValueError, match="no 'symbols' list"):
        cache.get()


def test_cache_load_forces_a_reload() -> None:
    """load() loads now even when the snapshot is fresh; get() then returns the new one."""
    loader, clock = CountingLoader(), FakeClock()
    cache = FilterCache(loader, clock=clock)
    first = cache.get()

    forced = cache.load()

    assert (2, False, True) == (loader.calls, forced is first, cache.get() is forced)


def test_cache_rejects_non_positive_intervals() -> None:
    """refresh_interval and retry_interval must be > 0."""
    with pytest.raises(ValueError):
        FilterCache(CountingLoader(), refresh_interval=0)


def test_cache_get_from_many_threads_loads_once() -> None:
    """Eight threads calling get() at once share one load and one snapshot."""
    started = threading.Barrier(8)
    release = threading.Event()
    loader = CountingLoader()

    def slow_loader() -> Mapping[str, Any]:
        release.wait(5.0)
        return loader()

    cache = FilterCache(slow_loader)
    results: list[ExchangeFilters] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            started.wait(5.0)
            snapshot = cache.get()
            with lock:
                results.append(snapshot)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10.0)

    assert ([], 8, 1, 1) == (errors, len(results), len({id(r) for r in results}), loader.calls)


def test_cache_serves_the_old_snapshot_while_another_thread_refreshes() -> None:
    """During a slow refresh other callers get the current snapshot at once."""
    clock = FakeClock()
    loader = CountingLoader()
    entered, release = threading.Event(), threading.Event()
    slow = {"on": False}

    def maybe_slow_loader() -> Mapping[str, Any]:
        if slow["on"]:
            entered.set()
            release.wait(5.0)
        return loader()

    cache = FilterCache(maybe_slow_loader, refresh_interval=10.0, clock=clock)
    first = cache.get()
    slow["on"] = True
    clock.now += 10.0
    refresher = threading.Thread(target=cache.get)
    refresher.start()
    assert entered.wait(5.0)

    during = cache.get()
    release.set()
    refresher.join(5.0)

    assert (True, 2, False) == (during is first, loader.calls, cache.get() is first)
