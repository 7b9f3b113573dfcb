"""
Functions made for cells: plain Python, callable from any thread, testable without Excel.

Every read goes through the process's ``TtlCache``: within ``ttl`` seconds (``set_options``)
the same question is asked of the exchange once, however many cells ask it, and concurrent
identical calls share one request. A read returns a number, a text or a 2-D list whose first
row is a header. An empty cell arrives as ``None`` and counts as not given.

Errors are values by default: a short text starting ``#BF!`` (``#BF! not connected: ...``,
``#BF! -1121 Invalid symbol.``) instead of ``#VALUE!``; ``set_options(errors="raise")``
raises bfsync's exceptions instead. Orders are placed only by ``place_order``, which needs
an explicit confirmation and is never cached or retried.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from typing import Any, Callable, Optional

from ..exceptions import (
    AuthenticationError,
    BinanceWebSocketError,
    ConnectionError,
    OrderStatusUnknownError,
    OrderValidationError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)
from ..orderbook import SNAPSHOT_LIMITS
from ..orders import ORDER_TYPES, PLACE_METHODS
from ._shared import registry, service, user_stream

__all__ = [
    "BOOK_COLUMNS",
    "BALANCE_COLUMNS",
    "DEPTH_COLUMNS",
    "POSITION_COLUMNS",
    "NotConfirmedError",
    "ORDER_COLUMNS",
    "balances",
    "book",
    "depth",
    "error_text",
    "open_orders",
    "place_order",
    "place_order_row",
    "positions",
    "price",
]

log = logging.getLogger("bfsync.excel")

BOOK_COLUMNS = ("bidPrice", "bidQty", "askPrice", "askQty")
DEPTH_COLUMNS = ("bidPrice", "bidQty", "askPrice", "askQty")
POSITION_COLUMNS = (
    "symbol",
    "positionSide",
    "positionAmt",
    "entryPrice",
    "markPrice",
    "unRealizedProfit",
    "liquidationPrice",
    "notional",
    "updateTime",
)
BALANCE_COLUMNS = (
    "asset",
    "balance",
    "crossWalletBalance",
    "crossUnPnl",
    "availableBalance",
    "maxWithdrawAmount",
    "updateTime",
)
ORDER_COLUMNS = (
    "symbol",
    "orderId",
    "clientOrderId",
    "side",
    "type",
    "price",
    "origQty",
    "executedQty",
    "status",
    "timeInForce",
    "stopPrice",
    "reduceOnly",
    "time",
)
_MAX_TEXT = 255
# A follower waits for the leader's fetch: connecting plus one request, at the library's
# longest defaults (30 s each), plus a margin. The leader's own waits are bounded by those.
_FOLLOWER_WAIT = 65.0
_CONFIRMATIONS = ("YES", "TRUE")
_TIME_IN_FORCE_DEFAULT = frozenset({"LIMIT", "STOP", "TAKE_PROFIT"})
# Binance's order keywords, so that a column headed "Stop Price" or "stop_price" finds
# ``stopPrice``; any other header is passed on as written, and validation refuses it by name.
_ORDER_KEYWORDS = (
    "activatePrice",
    "activationPrice",
    "callbackRate",
    "clientAlgoId",
    "closePosition",
    "goodTillDate",
    "newClientOrderId",
    "newOrderRespType",
    "positionSide",
    "priceMatch",
    "priceProtect",
    "recvWindow",
    "reduceOnly",
    "selfTradePreventionMode",
    "stopPrice",
    "timeInForce",
    "triggerPrice",
    "workingType",
)
_ROW_ARGS = {"symbol": "symbol", "side": "side", "type": "order_type", "ordertype": "order_type"}
_ROW_ARGS.update({"quantity": "quantity", "price": "price", "confirm": "confirm"})
_ROW_ARGS.update({k.lower(): k for k in _ORDER_KEYWORDS})
_RESULT_COLUMN = "result"


class NotConfirmedError(ValueError):
    """``place_order`` was called without its confirmation; nothing was sent."""


# Reads


def price(symbol: Any, name: Any = "default") -> Any:
    """The latest price of ``symbol`` (``ticker.price``) as a number."""
    return _cell(_price, symbol, name)


def book(symbol: Any, field: Any = None, name: Any = "default") -> Any:
    """
    The best bid and ask of ``symbol`` (``ticker.book``).

    Without ``field``: a header row ``bidPrice, bidQty, askPrice, askQty`` and one row of
    numbers. With ``field`` (one of those, or ``bid`` / ``ask``): that number alone.
    """
    return _cell(_book, symbol, field, name)


def depth(symbol: Any, limit: Any = 10, name: Any = "default") -> Any:
    """
    The order book of ``symbol`` (``depth``) to ``limit`` levels (5, 10, 20, 50, 100, 500,
    1000) as a table: a header row ``bidPrice, bidQty, askPrice, askQty``, then one row per
    level, best first (a side with fewer levels is padded with empty cells).
    """
    return _cell(_depth, symbol, limit, name)


def positions(symbol: Any = None, name: Any = "default") -> Any:
    """
    Open positions (``v2/account.position``), of ``symbol`` or all, as a table with a header
    row (``POSITION_COLUMNS``); positions of amount 0 are left out.
    """
    return _cell(_positions, symbol, name)


def balances(asset: Any = None, field: Any = "balance", name: Any = "default") -> Any:
    """
    Balances (``v2/account.balance``).

    Without ``asset``: a table with a header row (``BALANCE_COLUMNS``), assets that are all
    zero left out. With ``asset`` (``"USDT"``): the number in its column ``field``
    (``balance`` by default, or ``availableBalance``, ``crossUnPnl``, ...).
    """
    return _cell(_balances, asset, field, name)


def open_orders(symbol: Any = None, name: Any = "default") -> Any:
    """
    Open orders (REST ``GET /fapi/v1/openOrders``), of ``symbol`` or all, as a table with a
    header row (``ORDER_COLUMNS``), oldest first. Conditional (algo) orders are not in it.
    """
    return _cell(_open_orders, symbol, name)


def error_text(exc: BaseException) -> str:
    """
    What a cell shows for ``exc``: ``#BF!`` and a short reason (at most 255 characters).

    Never contains a key or secret (bfsync's messages never hold them).
    """
    if isinstance(exc, OrderStatusUnknownError):
        text = f"outcome unknown, client order id {exc.client_order_id}: {exc}"
    elif isinstance(exc, RateLimitError):
        text = f"rate limited: {exc}"
    elif isinstance(exc, (RequestTimeoutError, TimeoutError)):
        text = f"timeout: {exc}"
    elif isinstance(exc, ConnectionError):
        text = f"not connected: {exc}"
    elif isinstance(exc, AuthenticationError):
        text = f"key: {exc}"
    elif isinstance(exc, RequestError) and exc.code is not None:
        text = f"{exc.code} {exc.msg}"
    elif isinstance(exc, NotConfirmedError):
        text = f"not confirmed: {exc}"
    elif isinstance(exc, (OrderValidationError, ValueError, TypeError)):
        text = f"invalid: {exc}"
    elif isinstance(exc, BinanceWebSocketError):
        text = str(exc)
    else:
        text = f"error: {type(exc).__name__}: {exc}"
    text = "#BF! " + " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


# Orders


def place_order(
    symbol: Any,
    side: Any,
    order_type: Any,
    quantity: Any = None,
    price: Any = None,
    confirm: Any = None,
    name: Any = "default",
    **params: Any,
) -> str:
    """
    Place one order through the shared service ``name``, with validation; never cached.

    Args:
        symbol, side, quantity, price: as Binance names them (text is upper-cased).
        order_type: ``LIMIT``, ``MARKET``, ``STOP``, ``STOP_MARKET``, ``TAKE_PROFIT``,
            ``TAKE_PROFIT_MARKET`` or ``TRAILING_STOP_MARKET``.
        confirm: must be ``True`` or the text ``YES`` (any case); otherwise nothing is sent.
        params: more of Binance's keywords (``stopPrice``, ``reduceOnly``, ...); ``None``
            counts as not given. LIMIT, STOP and TAKE_PROFIT orders get
            ``timeInForce="GTC"`` unless one is given.

    Returns:
        The client order id (``clientAlgoId`` for conditional orders), or, when errors are
        values, the error text: an order whose outcome is unknown says so with its client
        order id, so that it can be looked up before trying again.

    Blocks at most ``request_timeout`` (10 s by default) plus connecting. Never re-sends.
    """
    return str(
        _cell(_place_order, symbol, side, order_type, quantity, price, confirm, name, params)
    )


def place_order_row(header: Sequence[Any], values: Sequence[Any], name: Any = "default") -> str:
    """
    Place the order described by one sheet row, under a header row; returns what
    ``place_order`` returns.

    Headers are matched without regard to case, spaces or underscores: ``symbol``,
    ``side``, ``type``, ``quantity``, ``price``, ``confirm`` and Binance's keywords
    (``Stop Price`` finds ``stopPrice``); a column headed ``result`` and columns without a
    header are not read. Any other header is passed on as written, so validation refuses
    it by name rather than leave, say, a stop price unset.
    """
    try:
        kwargs = _row_kwargs(header, values)
    except ValueError as exc:
        if registry().errors == "raise":
            raise
        return error_text(exc)
    return place_order(name=name, **kwargs)


# Private functions


def _cell(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; in "value" mode an exception becomes its ``error_text``."""
    try:
        return fn(*args)
    except Exception as exc:
        if registry().errors == "raise":
            raise
        if not isinstance(exc, (BinanceWebSocketError, ValueError, TypeError, TimeoutError)):
            log.exception("unexpected error in a cell function")
        return error_text(exc)


def _read(key: Hashable, fetch: Callable[[], Any]) -> Any:
    reg = registry()
    return reg.cache.get(key, reg.ttl, fetch, _FOLLOWER_WAIT, _keep_error)


def _keep_error(exc: BaseException) -> bool:
    """Cache a refusal by the exchange (a bad symbol), not a failure to ask it."""
    return (
        isinstance(exc, RequestError)
        and exc.code is not None
        and not isinstance(exc, (RateLimitError, RequestTimeoutError, ConnectionError))
    )


def _price(symbol: Any, name: Any) -> float:
    sym, svc = _symbol(symbol), _name(name)
    result = _read((svc, "ticker.price", sym), lambda: service(svc).get_ticker_price(sym)["result"])
    return float(result["price"])


def _book(symbol: Any, field: Any, name: Any) -> Any:
    sym, svc = _symbol(symbol), _name(name)
    column = _field(field, BOOK_COLUMNS, {"bid": "bidPrice", "ask": "askPrice"})
    result = _read((svc, "ticker.book", sym), lambda: service(svc).get_ticker_book(sym)["result"])
    if column is not None:
        return _num(result[column])
    return [list(BOOK_COLUMNS), [_num(result[c]) for c in BOOK_COLUMNS]]


def _depth(symbol: Any, limit: Any, name: Any) -> list[list[Any]]:
    sym, svc = _symbol(symbol), _name(name)
    levels = _int(limit, "limit", 10)
    if levels not in SNAPSHOT_LIMITS:
        raise ValueError(
            f"limit must be one of {', '.join(map(str, SNAPSHOT_LIMITS))}, got {levels}"
        )
    result = _read(
        (svc, "depth", sym, levels), lambda: service(svc).get_depth(sym, levels)["result"]
    )
    bids, asks = result.get("bids", []), result.get("asks", [])
    rows: list[list[Any]] = [list(DEPTH_COLUMNS)]
    for i in range(max(len(bids), len(asks))):
        bid = [_num(x) for x in bids[i][:2]] if i < len(bids) else [None, None]
        ask = [_num(x) for x in asks[i][:2]] if i < len(asks) else [None, None]
        rows.append(bid + ask)
    return rows


def _positions(symbol: Any, name: Any) -> list[list[Any]]:
    sym = None if symbol is None else _symbol(symbol)
    svc = _name(name)
    result = _read(
        (svc, "v2/account.position", sym),
        lambda: service(svc).get_position_info(sym)["result"],
    )
    rows: list[list[Any]] = [list(POSITION_COLUMNS)]
    rows.extend(
        [_num(item.get(c)) for c in POSITION_COLUMNS]
        for item in result
        if _num(item.get("positionAmt", 0)) != 0
    )
    return rows


def _open_orders(symbol: Any, name: Any) -> list[list[Any]]:
    sym = None if symbol is None else _symbol(symbol)
    svc = _name(name)
    result = _read((svc, "openOrders", sym), lambda: service(svc).get_open_orders(sym)["result"])
    rows: list[list[Any]] = [list(ORDER_COLUMNS)]
    ordered = sorted(result, key=lambda item: (item.get("time") or 0, item.get("orderId") or 0))
    rows.extend([_num(item.get(c)) for c in ORDER_COLUMNS] for item in ordered)
    return rows


def _balances(asset: Any, field: Any, name: Any) -> Any:
    svc = _name(name)
    wanted = None if asset is None else _text(asset, "asset")
    column = _field("balance" if field is None else field, BALANCE_COLUMNS[1:-1], {})
    result = _read(
        (svc, "v2/account.balance"), lambda: service(svc).get_account_balance()["result"]
    )
    if wanted is None:
        rows: list[list[Any]] = [list(BALANCE_COLUMNS)]
        for item in result:
            row = [_num(item.get(c)) for c in BALANCE_COLUMNS]
            if any(isinstance(v, float) and v != 0 for v in row[1:-1]):
                rows.append(row)
        return rows
    for item in result:
        if item.get("asset") == wanted:
            return _num(item.get(column))
    raise ValueError(f"no balance of asset {wanted!r}")


def _place_order(
    symbol: Any,
    side: Any,
    order_type: Any,
    quantity: Any,
    price: Any,
    confirm: Any,
    name: Any,
    params: dict[str, Any],
) -> str:
    kind = _text(order_type, "order_type")
    if kind not in PLACE_METHODS:
        raise ValueError(f"order_type must be one of {', '.join(ORDER_TYPES)}, got {kind!r}")
    kwargs: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    kwargs.update(symbol=_symbol(symbol), side=_text(side, "side"))
    if quantity is not None:
        kwargs["quantity"] = quantity
    if price is not None:
        kwargs["price"] = price
    if kind in _TIME_IN_FORCE_DEFAULT:
        kwargs.setdefault("timeInForce", "GTC")
    if not _confirmed(confirm):
        raise NotConfirmedError(
            f"confirm must be TRUE or YES to send this order (nothing was sent), got {confirm!r}"
        )
    svc_name = _name(name)
    svc = service(svc_name)
    _follow_orders(svc_name)
    try:
        reply = getattr(svc, PLACE_METHODS[kind])(**kwargs)
    finally:
        # Whatever happened, positions, balances and open orders may have changed.
        registry().cache.discard(lambda key: isinstance(key, tuple) and key[0] == svc_name)
    result = reply["result"]
    return str(result.get("clientOrderId") or result.get("clientAlgoId"))


def _follow_orders(name: str) -> None:
    """
    Start the shared user stream before an order is sent, so ``order_state`` sees it all;
    not while its last attempt failed (the order cells try again, orders do not wait).
    """
    entry = registry().users.get(name)
    if entry is not None and entry.last_error is not None:
        return
    try:
        user_stream(name)
    except BinanceWebSocketError as exc:  # the order is placed anyway; its cell says why
        log.warning("user stream %r not running, order events may be missed: %s", name, exc)


def _row_kwargs(header: Sequence[Any], values: Sequence[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for title, value in zip(header, values):
        if title is None or (isinstance(title, str) and not title.strip()):
            continue
        if not isinstance(title, str):
            raise ValueError(f"a header must be text, got {title!r}")
        key = title.replace(" ", "").replace("_", "").lower()
        if key == _RESULT_COLUMN:
            continue
        arg = _ROW_ARGS.get(key, title.strip())
        if arg in kwargs:
            raise ValueError(f"two columns give {arg!r}")
        kwargs[arg] = value
    for required in ("symbol", "side", "order_type"):
        if required not in kwargs:
            raise ValueError(f"no column {'type' if required == 'order_type' else required!r}")
    return kwargs


def _confirmed(confirm: Any) -> bool:
    if confirm is True:
        return True
    return isinstance(confirm, str) and confirm.strip().upper() in _CONFIRMATIONS


def _symbol(symbol: Any) -> str:
    return _text(symbol, "symbol")


def _text(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{label} must be text, got {value!r}")
    return value.strip().upper()


def _name(name: Any) -> str:
    if name is None:
        return "default"
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be the text name of a service, got {name!r}")
    return name.strip()


def _int(value: Any, label: str, default: int) -> int:
    """An int from a cell: Excel hands every number over as a float."""
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise ValueError(f"{label} must be a whole number, got {value!r}")
    return int(value)


def _field(field: Any, columns: Sequence[str], aliases: dict[str, str]) -> Optional[str]:
    if field is None:
        return None
    if isinstance(field, str):
        wanted = field.strip().replace(" ", "").replace("_", "").lower()
        for column in columns:
            if column.lower() == wanted:
                return column
        if wanted in aliases:
            return aliases[wanted]
    choices = ", ".join([*columns, *aliases])
    raise ValueError(f"field must be one of {choices}, got {field!r}")


def _num(value: Any) -> Any:
    """A decimal text from the exchange as a float (Excel's only number); else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
