"""
Symbol filters from ``GET /fapi/v1/exchangeInfo``: checking an order before it is sent, and
rounding prices and quantities onto a symbol's grid.

Everything here is pure except :func:`fetch_exchange_info` (one REST call) and
:class:`FilterCache` (which calls a loader, usually that function, once an hour).

- :class:`SymbolFilters`: the filters of one symbol, as Decimals.
- :class:`ExchangeFilters`: an immutable snapshot of every symbol, with
  :meth:`~ExchangeFilters.check_order` (raises :class:`~bfsync.exceptions.OrderValidationError`
  naming the filter, the value and the nearest valid values) and the rounding helpers
  :meth:`~ExchangeFilters.round_price` / :meth:`~ExchangeFilters.round_quantity`.
- :func:`fetch_exchange_info`: the REST call, with bfsync's exceptions only.
- :class:`FilterCache`: a thread-safe snapshot that loads once and refreshes when stale.

What :meth:`ExchangeFilters.check_order` checks, in this order (Binance's rules, reference
§5.4; the first broken rule is reported):

1. the symbol is known and its ``status`` is ``TRADING``;
2. PRICE_FILTER on each of ``price``, ``stopPrice``, ``triggerPrice``, ``activationPrice`` and
   ``activatePrice`` that is present: ``>= minPrice``, ``<= maxPrice``,
   ``(p - minPrice) % tickSize == 0`` (a field of ``0`` disables its rule);
3. LOT_SIZE on ``quantity`` (MARKET_LOT_SIZE for MARKET orders only; the conditional market
   kinds STOP_MARKET, TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET are checked against
   LOT_SIZE, which is the wider of the two ranges on Binance);
4. MIN_NOTIONAL: ``quantity x reference price >= notional``, skipped when ``reduceOnly`` or
   ``closePosition`` is ``"true"`` or there is no quantity. The reference price is:

   ============================  ===================================================
   LIMIT                         ``price``; else ``last_price`` (priceMatch); else skip
   STOP, TAKE_PROFIT             ``price``; else the trigger price (priceMatch)
   MARKET                        ``last_price``; else skip
   STOP_MARKET,                  the trigger price (``triggerPrice``/``stopPrice``)
   TAKE_PROFIT_MARKET
   TRAILING_STOP_MARKET          ``activatePrice``; else ``last_price``; else skip
   ============================  ===================================================

Not checked: PERCENT_PRICE (needs the mark price and the side), MAX_NUM_ORDERS (needs the
open orders) and precision as such (a value on the tick/step grid has no extra decimals).

All arithmetic is exact: values are compared as integers on a common decimal exponent, never
through floats nor a rounding ``decimal`` context.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Optional

import attrs

from ._numbers import NotANumber, decimal_of
from ._resthttp import get_public
from .exceptions import (
    OrderValidationError,
)
from .orders import ORDER_TYPES

if TYPE_CHECKING:
    import requests

__all__ = [
    "SymbolFilters",
    "ExchangeFilters",
    "fetch_exchange_info",
    "FilterCache",
    "EXCHANGE_INFO_PATH",
]

log = logging.getLogger("bfsync.filters")

EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"

_ZERO = Decimal(0)
_TRADING = "TRADING"
_PRICE_PARAMS: tuple[str, ...] = (
    "price",
    "stopPrice",
    "triggerPrice",
    "activationPrice",
    "activatePrice",
)
_TRIGGER_PARAMS: tuple[str, ...] = ("triggerPrice", "stopPrice")
_ACTIVATION_PARAMS: tuple[str, ...] = ("activatePrice", "activationPrice")

# ---------------------------------------------------------------------------------------------
# Exact decimal helpers: a finite Decimal is coefficient x 10**exponent with an int coefficient.


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': NaN or infinity
        raise ValueError(f"not a finite decimal: {value!r}")
    return exponent


def _pow10(power: int) -> int:
    """``10**power`` for ``power >= 0``, typed as an int."""
    return int(10**power)


def _coefficient(value: Decimal, exponent: int) -> int:
    """
    The int ``n`` with ``value == n * 10**exponent`` exactly.

    Raises:
        ValueError: ``value`` has a nonzero digit below ``10**exponent``.
    """
    own = _exponent(value)
    sign, digits, _ = value.as_tuple()
    number = int("".join(map(str, digits)) or "0")
    if own >= exponent:
        number *= _pow10(own - exponent)
    else:
        number, rest = divmod(number, _pow10(exponent - own))
        if rest:
            raise ValueError(f"{value} is not a multiple of 1E{exponent}")
    return -number if sign else number


def _decimal_of(number: int, exponent: int) -> Decimal:
    """``number * 10**exponent`` as a Decimal with exactly that exponent (no rounding)."""
    return Decimal(f"{number}E{exponent}")


def _with_exponent(value: Decimal, exponent: int) -> Decimal:
    """``value`` written with ``exponent`` when that is exact, else ``value`` unchanged."""
    try:
        return _decimal_of(_coefficient(value, exponent), exponent)
    except ValueError:
        return value


def _normalized_exponent(value: Decimal) -> int:
    """The exponent of ``value`` without trailing zeros (0 for zero)."""
    own = _exponent(value)
    number = _coefficient(value, own)
    if number == 0:
        return 0
    while number % 10 == 0:
        number //= 10
        own += 1
    return own


def _text(value: Decimal) -> str:
    """Plain decimal text, never an exponent."""
    return format(value, "f")


def _to_decimal(value: Any, name: str) -> Decimal:
    """A finite Decimal from any real number or numeric text (see ``_numbers``); never a bool."""
    try:
        number: Optional[Decimal] = decimal_of(value)
    except NotANumber:
        number = None
    if number is None or not number.is_finite():
        raise OrderValidationError(f"{name} must be a finite decimal number, got {value!r}")
    return number


def _flag(params: Mapping[str, Any], name: str) -> bool:
    """Whether a boolean wire param is true (``"true"`` in any case, or ``True``)."""
    value = params.get(name)
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


# ---------------------------------------------------------------------------------------------
# One range filter: PRICE_FILTER, LOT_SIZE or MARKET_LOT_SIZE


@attrs.frozen
class _Range:
    """``min <= v <= max`` and ``(v - min) % step == 0``; a bound or step of 0 is disabled."""

    filter_type: str
    min_name: str
    max_name: str
    step_name: str
    minimum: Decimal
    maximum: Decimal
    step: Decimal

    @property
    def grid_exponent(self) -> int:
        """The exponent every point of the grid ``min + k*step`` can be written with."""
        return min(_exponent(self.step), _normalized_exponent(self.minimum))

    def _point(self, index: int) -> Decimal:
        """The grid point ``min + index*step``, written on the grid exponent."""
        grid = self.grid_exponent
        return _decimal_of(
            _coefficient(self.minimum, grid) + index * _coefficient(self.step, grid), grid
        )

    def _index(self, value: Decimal) -> int:
        """The index of the largest grid point ``<= value`` (negative below the minimum)."""
        common = min(_exponent(value), self.grid_exponent)
        base = _coefficient(self.minimum, common)
        return (_coefficient(value, common) - base) // _coefficient(self.step, common)

    def _floor(self, value: Decimal) -> Decimal:
        """The largest ``min + k*step <= value`` (k any int), written on the grid exponent."""
        return self._point(self._index(value))

    def _on_grid(self, value: Decimal) -> bool:
        common = min(_exponent(value), _exponent(self.minimum), _exponent(self.step))
        offset = _coefficient(value, common) - _coefficient(self.minimum, common)
        return offset % _coefficient(self.step, common) == 0

    def _show(self, value: Decimal) -> Decimal:
        """A valid bound written on the grid exponent (``556.8`` -> ``556.80``)."""
        return _with_exponent(value, self.grid_exponent) if self.step else value

    def highest(self) -> Decimal:
        """The largest valid value (``maximum`` is enabled)."""
        return self._floor(self.maximum) if self.step else self.maximum

    def check(self, symbol: str, name: str, raw: Any, value: Decimal) -> None:
        """Raise OrderValidationError when ``value`` (the param ``name``, sent as ``raw``) fails."""
        shown = raw if isinstance(raw, str) else _text(value)
        if value <= 0:
            raise OrderValidationError(f"{name} must be > 0, got {shown}")
        if self.minimum and value < self.minimum:
            raise OrderValidationError(
                f"{name} {shown} breaks {self.filter_type} {self.min_name} "
                f"{_text(self.minimum)} for {symbol}; nearest valid: "
                f"{_text(self._show(self.minimum))}"
            )
        if self.maximum and value > self.maximum:
            raise OrderValidationError(
                f"{name} {shown} breaks {self.filter_type} {self.max_name} "
                f"{_text(self.maximum)} for {symbol}; nearest valid: {_text(self.highest())}"
            )
        if self.step and not self._on_grid(value):
            index = self._index(value)
            lower, upper = self._point(index), self._point(index + 1)
            candidates = [
                candidate
                for candidate in (lower, upper)
                if candidate > 0 and not (self.maximum and candidate > self.maximum)
            ]
            nearest = " or ".join(_text(candidate) for candidate in candidates) or "none"
            raise OrderValidationError(
                f"{name} {shown} breaks {self.filter_type} {self.step_name} "
                f"{_text(self.step)} for {symbol}; nearest valid: {nearest}"
            )

    def round_down(self, symbol: str, name: str, value: Decimal) -> Decimal:
        """
        Down onto the grid, and down to the maximum above it.

        Raises:
            OrderValidationError: ``value`` is below the minimum (or not > 0): rounding it
                onto the grid would mean rounding it *up*, which a caller never expects.
        """
        shown = _text(value)
        if value <= 0:
            raise OrderValidationError(f"{name} must be > 0, got {shown}")
        if self.minimum and value < self.minimum:
            raise OrderValidationError(
                f"{name} {shown} is below {self.filter_type} {self.min_name} "
                f"{_text(self.minimum)} for {symbol}; rounding down cannot reach a valid "
                f"value (the smallest is {_text(self._show(self.minimum))})"
            )
        result = self._floor(value) if self.step else value
        if result <= 0:
            raise OrderValidationError(
                f"{name} {shown} is below {self.filter_type} {self.step_name} "
                f"{_text(self.step)} for {symbol}; rounding down gives 0"
            )
        if self.maximum and result > self.maximum:
            result = self.highest()
        return result

    def smallest_at_least(self, target: Fraction) -> Decimal:
        """The smallest valid value ``>= target`` (ignoring the maximum)."""
        if not self.step:
            exponent = min(_exponent(self.minimum), -8)
            number = -((-target * _pow10(-exponent)) // 1)  # ceiling
            return max(self.minimum, _decimal_of(int(number), exponent))
        steps = -((Fraction(self.minimum) - target) // Fraction(self.step))  # ceiling
        return self._point(max(int(steps), 0))


# ---------------------------------------------------------------------------------------------
# Snapshots


def _filter_decimal(symbol: str, entry: Mapping[str, Any], key: str) -> Decimal:
    raw = entry.get(key, "0")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ValueError(
            f"exchangeInfo: {symbol} {entry.get('filterType')} {key} must be a decimal >= 0, "
            f"got {raw!r}"
        )
    return value


@attrs.frozen
class SymbolFilters:
    """
    The filters of one symbol, from one entry of exchangeInfo's ``symbols``.

    A missing PRICE_FILTER or LOT_SIZE reads as zeros (no rule); a missing MARKET_LOT_SIZE
    repeats LOT_SIZE; a missing MIN_NOTIONAL gives ``min_notional=None``.
    """

    symbol: str
    status: str
    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    market_step_size: Decimal
    min_notional: Optional[Decimal]

    @classmethod
    def from_symbol_info(cls, info: Mapping[str, Any]) -> SymbolFilters:
        """
        Read one exchangeInfo symbol entry.

        Raises:
            ValueError: the entry has no ``symbol``/``status``, or a filter value is not a
                decimal >= 0.
        """
        symbol, status = info.get("symbol"), info.get("status")
        if not isinstance(symbol, str) or not isinstance(status, str):
            raise ValueError(
                f"exchangeInfo: a symbol entry needs 'symbol' and 'status' strings, "
                f"got symbol={symbol!r} status={status!r}"
            )
        by_type: dict[str, Mapping[str, Any]] = {}
        for entry in info.get("filters") or ():
            if isinstance(entry, Mapping) and isinstance(entry.get("filterType"), str):
                by_type[entry["filterType"]] = entry

        def read(filter_type: str, *keys: str) -> tuple[Decimal, ...]:
            entry = by_type.get(filter_type, {"filterType": filter_type})
            return tuple(_filter_decimal(symbol, entry, key) for key in keys)

        min_price, max_price, tick_size = read("PRICE_FILTER", "minPrice", "maxPrice", "tickSize")
        lot_keys = ("minQty", "maxQty", "stepSize")
        min_qty, max_qty, step_size = read("LOT_SIZE", *lot_keys)
        if "MARKET_LOT_SIZE" in by_type:
            market = read("MARKET_LOT_SIZE", *lot_keys)
        else:
            market = (min_qty, max_qty, step_size)
        min_notional: Optional[Decimal] = None
        if "MIN_NOTIONAL" in by_type:
            entry = by_type["MIN_NOTIONAL"]
            key = "notional" if "notional" in entry else "minNotional"  # futures / spot name
            min_notional = _filter_decimal(symbol, entry, key)
        return cls(
            symbol=symbol,
            status=status,
            min_price=min_price,
            max_price=max_price,
            tick_size=tick_size,
            min_qty=min_qty,
            max_qty=max_qty,
            step_size=step_size,
            market_min_qty=market[0],
            market_max_qty=market[1],
            market_step_size=market[2],
            min_notional=min_notional,
        )

    @property
    def trading(self) -> bool:
        """Whether the symbol takes orders (``status == "TRADING"``)."""
        return self.status == _TRADING

    def _price_range(self) -> _Range:
        return _Range(
            "PRICE_FILTER",
            "minPrice",
            "maxPrice",
            "tickSize",
            self.min_price,
            self.max_price,
            self.tick_size,
        )

    def _lot_range(self, market: bool) -> _Range:
        if market:
            return _Range(
                "MARKET_LOT_SIZE",
                "minQty",
                "maxQty",
                "stepSize",
                self.market_min_qty,
                self.market_max_qty,
                self.market_step_size,
            )
        return _Range(
            "LOT_SIZE", "minQty", "maxQty", "stepSize", self.min_qty, self.max_qty, self.step_size
        )


class ExchangeFilters:
    """
    An immutable snapshot of every symbol's filters.

    Attributes:
        fetched_at: when the data was fetched, on the clock of whoever built the snapshot
            (:class:`FilterCache` uses its own clock, ``time.monotonic`` by default).
    """

    __slots__ = ("_fetched_at", "_symbols")

    def __init__(self, symbols: Mapping[str, SymbolFilters], fetched_at: float) -> None:
        self._symbols: Mapping[str, SymbolFilters] = MappingProxyType(dict(symbols))
        self._fetched_at = fetched_at

    @classmethod
    def from_exchange_info(cls, data: Mapping[str, Any], fetched_at: float) -> ExchangeFilters:
        """
        Read a whole exchangeInfo response.

        Raises:
            ValueError: ``data`` has no ``symbols`` list, or an entry is malformed (see
                :meth:`SymbolFilters.from_symbol_info`).
        """
        entries = data.get("symbols")
        if not isinstance(entries, list):
            raise ValueError("exchangeInfo: no 'symbols' list in the response")
        symbols: dict[str, SymbolFilters] = {}
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ValueError(f"exchangeInfo: a symbol entry must be an object, got {entry!r}")
            filters = SymbolFilters.from_symbol_info(entry)
            symbols[filters.symbol] = filters
        return cls(symbols, fetched_at)

    @property
    def fetched_at(self) -> float:
        """When the data was fetched (see the class docstring)."""
        return self._fetched_at

    @property
    def symbols(self) -> Mapping[str, SymbolFilters]:
        """Every symbol, read-only."""
        return self._symbols

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def __len__(self) -> int:
        return len(self._symbols)

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def __repr__(self) -> str:
        return f"ExchangeFilters({len(self._symbols)} symbols, fetched_at={self.fetched_at!r})"

    def get(self, symbol: str) -> SymbolFilters:
        """
        One symbol's filters.

        Raises:
            OrderValidationError: ``unknown symbol 'X'`` (with the nearest known name when one
                is close).
        """
        try:
            return self._symbols[symbol]
        except (KeyError, TypeError):
            pass
        upper = symbol.strip().upper() if isinstance(symbol, str) else None
        if upper is not None and upper in self._symbols:
            close = [upper]  # symbols are upper case: "btcusdt" is "BTCUSDT"
        else:
            close = difflib.get_close_matches(str(symbol), list(self._symbols), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise OrderValidationError(f"unknown symbol {symbol!r}{hint}")

    def check_order(
        self,
        order_type: str,
        params: Mapping[str, Any],
        last_price: Optional[Decimal] = None,
    ) -> None:
        """
        Check an order's wire params against its symbol's filters (see the module docstring).

        Args:
            order_type: the kind: LIMIT, MARKET, STOP, STOP_MARKET, TAKE_PROFIT,
                TAKE_PROFIT_MARKET or TRAILING_STOP_MARKET.
            params: :attr:`bfsync.orders.PreparedOrder.params` (wire names and values).
            last_price: the latest (or mark) price, used for MIN_NOTIONAL where the order has
                no price of its own; without it those orders skip MIN_NOTIONAL.

        Raises:
            OrderValidationError: the first broken rule; the message names the filter, the
                value and the nearest valid values.
        """
        if order_type not in ORDER_TYPES:
            raise OrderValidationError(
                f"unknown order type {order_type!r}; expected one of {', '.join(ORDER_TYPES)}"
            )
        if "symbol" not in params:
            raise OrderValidationError("symbol is required")
        symbol = params["symbol"]
        info = self.get(symbol)
        if not info.trading:
            raise OrderValidationError(
                f"{symbol} is not trading: its status is {info.status}, not {_TRADING}"
            )

        prices: dict[str, Decimal] = {}
        price_range = info._price_range()
        for name in _PRICE_PARAMS:
            if params.get(name) is not None:
                prices[name] = _to_decimal(params[name], name)
                price_range.check(symbol, name, params[name], prices[name])

        if params.get("quantity") is None:
            return  # closePosition=true: nothing to size, no notional
        quantity = _to_decimal(params["quantity"], "quantity")
        lot_range = info._lot_range(market=order_type == "MARKET")
        lot_range.check(symbol, "quantity", params["quantity"], quantity)

        if info.min_notional is None or not info.min_notional:
            return
        if _flag(params, "reduceOnly") or _flag(params, "closePosition"):
            return
        reference = _reference_price(order_type, prices, last_price)
        if reference is None:
            return
        price_name, price = reference
        notional = _exact_product(quantity, price)
        if notional >= info.min_notional:
            return
        needed = lot_range.smallest_at_least(Fraction(info.min_notional) / Fraction(price))
        raise OrderValidationError(
            f"notional {_text(notional)} (quantity {_text(quantity)} x {price_name} "
            f"{_text(price)}) breaks MIN_NOTIONAL notional {_text(info.min_notional)} for "
            f"{symbol}; nearest valid: quantity {_text(needed)} at that price "
            f"(or reduceOnly=true)"
        )

    def round_price(self, symbol: str, price: Any) -> Decimal:
        """
        ``price`` down to the tick (toward minPrice); above maxPrice, the highest valid price.

        ``price`` may be any real number (numpy scalars, ``Decimal``, ``Fraction``) or numeric
        text. The result is written with the tick's exponent: ``"50000.10"`` for tick
        ``"0.10"``. It never rounds up.

        Raises:
            OrderValidationError: unknown symbol; ``price`` is not a finite number; or it is
                below minPrice (rounding down cannot reach a valid price; the message says
                the smallest one).
        """
        info = self.get(symbol)
        return info._price_range().round_down(symbol, "price", _to_decimal(price, "price"))

    def round_quantity(self, symbol: str, qty: Any, market: bool = False) -> Decimal:
        """
        ``qty`` down to the step; above maxQty, the highest valid quantity.

        ``market=True`` uses MARKET_LOT_SIZE (what :meth:`check_order` applies to MARKET
        orders). ``qty`` may be any real number or numeric text. The result is written with
        the step's exponent. It never rounds up: ``round_quantity("BTCUSDT", 0.00001)``
        raises rather than return ``0.001``, an order 100 times larger than asked for.

        Raises:
            OrderValidationError: unknown symbol; ``qty`` is not a finite number; or it is
                below minQty (the message says the smallest valid quantity).
        """
        info = self.get(symbol)
        lot_range = info._lot_range(market)
        return lot_range.round_down(symbol, "quantity", _to_decimal(qty, "quantity"))


def _first(prices: Mapping[str, Decimal], names: tuple[str, ...]) -> Optional[tuple[str, Decimal]]:
    for name in names:
        if name in prices:
            return name, prices[name]
    return None


def _reference_price(
    order_type: str, prices: Mapping[str, Decimal], last_price: Optional[Decimal]
) -> Optional[tuple[str, Decimal]]:
    """The (name, price) MIN_NOTIONAL is computed with, or None to skip the check."""
    last: Optional[tuple[str, Decimal]] = None
    if last_price is not None:
        last = ("last price", _to_decimal(last_price, "last_price"))
        if last[1] <= 0:
            raise OrderValidationError(f"last_price must be > 0, got {last_price!r}")
    if order_type == "MARKET":
        return last
    if order_type in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        return _first(prices, _TRIGGER_PARAMS)
    if order_type == "TRAILING_STOP_MARKET":
        return _first(prices, _ACTIVATION_PARAMS) or last
    if order_type in ("STOP", "TAKE_PROFIT"):
        return _first(prices, ("price", *_TRIGGER_PARAMS))
    return _first(prices, ("price",)) or last  # LIMIT


def _exact_product(left: Decimal, right: Decimal) -> Decimal:
    exponent_left, exponent_right = _exponent(left), _exponent(right)
    return _decimal_of(
        _coefficient(left, exponent_left) * _coefficient(right, exponent_right),
        exponent_left + exponent_right,
    )


# ---------------------------------------------------------------------------------------------
# REST


def fetch_exchange_info(
    rest_url: str, timeout: float, session: Optional[requests.Session] = None
) -> dict[str, Any]:
    """
    ``GET {rest_url}/fapi/v1/exchangeInfo`` and return the decoded JSON object.

    Args:
        rest_url: ``https://fapi.binance.com`` or the testnet's; a trailing ``/`` is ignored.
        timeout: seconds, passed to ``requests`` (connect and read).
        session: a ``requests.Session`` to reuse; ``requests.get`` when None.

    Raises:
        RateLimitError: HTTP 429 or 418 (``retry_after`` from the ``Retry-After`` header).
        RequestError: any other HTTP status but 200 (``status``; ``code``/``msg`` when the body
            is Binance's ``{"code", "msg"}``), or a 200 whose body is not a JSON object.
        RequestTimeoutError: no answer within ``timeout`` once connected.
        ConnectionError: the request could not be sent or the answer was cut (network
            failure, DNS, refused, connect timeout, bad URL, ...).
    """
    url = rest_url.rstrip("/") + EXCHANGE_INFO_PATH
    return get_public(url, timeout=timeout, session=session)


# ---------------------------------------------------------------------------------------------
# Cache


class FilterCache:
    """
    A thread-safe :class:`ExchangeFilters` snapshot: loaded on first use, refreshed when stale.

    - The first :meth:`get` loads (other threads wait for it); a failure is raised.
    - Once ``refresh_interval`` seconds have passed, the next :meth:`get` refreshes. Only one
      thread refreshes; the others keep getting the current snapshot meanwhile. A failed
      refresh is logged (warning) and the old snapshot kept; the next attempt comes
      ``retry_interval`` seconds later (at most ``refresh_interval``).

    Args:
        loader: returns an exchangeInfo response, e.g.
            ``lambda: fetch_exchange_info(url, timeout)``.
        refresh_interval: seconds a snapshot is fresh.
        clock: seconds, monotonic (tests inject a fake one).
        retry_interval: seconds between attempts after a failed refresh.
    """

    def __init__(
        self,
        loader: Callable[[], Mapping[str, Any]],
        refresh_interval: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        retry_interval: float = 60.0,
    ) -> None:
        if not refresh_interval > 0 or not retry_interval > 0:
            raise ValueError("refresh_interval and retry_interval must be > 0")
        self._loader = loader
        self._refresh_interval = refresh_interval
        self._retry_interval = min(retry_interval, refresh_interval)
        self._clock = clock
        self._load_lock = threading.Lock()  # held by the one thread that loads
        self._snapshot: Optional[ExchangeFilters] = None
        self._next_attempt = 0.0

    @property
    def loaded(self) -> bool:
        """Whether a snapshot is held."""
        return self._snapshot is not None

    def get(self) -> ExchangeFilters:
        """
        The current snapshot, loading it first or refreshing it when stale.

        Raises:
            Exception: whatever the loader (or parsing) raised, on the first load only.
        """
        snapshot = self._snapshot
        if snapshot is not None and self._clock() < self._next_attempt:
            return snapshot
        if snapshot is None:
            with self._load_lock:
                current = self._snapshot
                if current is not None:  # another thread loaded it while this one waited
                    return current
                return self._load_locked()
        if not self._load_lock.acquire(blocking=False):
            return snapshot  # another thread is refreshing
        try:
            if self._clock() < self._next_attempt:  # refreshed while this one looked
                current = self._snapshot
                return snapshot if current is None else current
            try:
                return self._load_locked()
            except Exception as exc:
                self._next_attempt = self._clock() + self._retry_interval
                log.warning(
                    "refreshing the exchangeInfo filters failed, keeping the snapshot "
                    "fetched at %s: %s: %s",
                    snapshot.fetched_at,
                    type(exc).__name__,
                    exc,
                )
                return snapshot
        finally:
            self._load_lock.release()

    def load(self) -> ExchangeFilters:
        """
        Load a new snapshot now, whatever the age of the current one.

        Raises:
            Exception: whatever the loader (or parsing) raised; the current snapshot is kept.
        """
        with self._load_lock:
            return self._load_locked()

    def _load_locked(self) -> ExchangeFilters:
        data = self._loader()
        fetched_at = self._clock()
        snapshot = ExchangeFilters.from_exchange_info(data, fetched_at)
        self._next_attempt = fetched_at + self._refresh_interval
        self._snapshot = snapshot
        log.info("exchangeInfo filters loaded: %d symbols", len(snapshot))
        return snapshot
