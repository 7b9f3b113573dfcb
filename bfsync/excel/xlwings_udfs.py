"""
bfsync's Excel functions for xlwings: ``=BF_PRICE``, ``=BF_BOOK``, ``=BF_DEPTH``,
``=BF_POSITIONS``, ``=BF_BALANCE``, ``=BF_ORDERS``, ``=BF_STATUS``, and the macro
``BF_PLACE_ORDER`` (needs ``pip install 'bfsync[excel]'``).

Point xlwings' "UDF Modules" at ``bfsync.excel.xlwings_udfs``, or at a module of your own
that does ``from bfsync.excel.xlwings_udfs import *`` and calls ``bfsync.excel.configure``
(see docs/excel.md). Each function is a thin wrapper over ``bfsync.excel``'s plain ones: the
shared service, the cache and the errors-as-values live there, so "Import Python UDFs"
(which reloads your module) keeps the connection.

The functions are volatile (they run again on every recalculation; the cache makes that
cheap) and synchronous: with the cache, a call costs microseconds, or one request of at most
``request_timeout`` (10 s by default). Tables are returned as 2-D lists, which spill in
Excel with dynamic arrays. No function placed in a cell can place an order: only the macro
can, and it reads and writes cells on the thread Excel called it on (UDFs never touch
cells).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar, cast

try:
    import xlwings as xw
except ImportError as exc:
    raise ImportError(
        "bfsync.excel.xlwings_udfs needs xlwings: pip install 'bfsync[excel]'"
    ) from exc

from . import _cells, _shared

__all__ = [
    "BF_BALANCE",
    "BF_BOOK",
    "BF_DEPTH",
    "BF_ORDERS",
    "BF_PLACE_ORDER",
    "BF_POSITIONS",
    "BF_PRICE",
    "BF_STATUS",
    "place_order_from_selection",
]

#: How many columns of the header row the macro reads.
MAX_COLUMNS = 60

_CATEGORY = "bfsync"
_NAME_DOC = 'the shared service ("default" when empty)'


_F = TypeVar("_F", bound=Callable[..., Any])


def _xw(kind: str, *args: Any, **options: Any) -> Callable[[_F], _F]:
    """xlwings' decorator ``kind`` (``func``, ``arg``), typed whether or not xlwings is."""
    return cast("Callable[[_F], _F]", getattr(xw, kind)(*args, **options))


def _as_macro(fn: _F) -> _F:
    """``xw.sub`` where it exists (Windows: "Import Python UDFs" makes a VBA Sub of it)."""
    sub = getattr(xw, "sub", None)
    return cast("_F", sub(fn)) if sub is not None else fn


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "symbol", doc="a symbol, e.g. BTCUSDT")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_PRICE(symbol: Any, name: Any = "default") -> Any:
    """The latest price of a symbol (Binance USD-M Futures)."""
    return _cells.price(symbol, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "symbol", doc="a symbol, e.g. BTCUSDT")
@_xw("arg", "field", doc="bidPrice, bidQty, askPrice, askQty (bid, ask); empty: the table")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_BOOK(symbol: Any, field: Any = None, name: Any = "default") -> Any:
    """The best bid and ask of a symbol: a table, or one field."""
    return _cells.book(symbol, field, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "symbol", doc="a symbol, e.g. BTCUSDT")
@_xw("arg", "limit", doc="levels: 5, 10, 20, 50, 100, 500 or 1000 (default 10)")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_DEPTH(symbol: Any, limit: Any = 10, name: Any = "default") -> Any:
    """The order book of a symbol: bidPrice, bidQty, askPrice, askQty per level."""
    return _cells.depth(symbol, limit, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "symbol", doc="a symbol; empty: every open position")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_POSITIONS(symbol: Any = None, name: Any = "default") -> Any:
    """Open positions, a table with a header row."""
    return _cells.positions(symbol, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "asset", doc="an asset, e.g. USDT; empty: the table of every asset")
@_xw("arg", "field", doc="balance (default), availableBalance, crossUnPnl, ...")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_BALANCE(asset: Any = None, field: Any = None, name: Any = "default") -> Any:
    """Balances: one number of an asset, or a table of every asset."""
    return _cells.balances(asset, field, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "symbol", doc="a symbol; empty: every open order")
@_xw("arg", "name", doc=_NAME_DOC)
def BF_ORDERS(symbol: Any = None, name: Any = "default") -> Any:
    """Open orders, a table with a header row."""
    return _cells.open_orders(symbol, name)


@_xw("func", category=_CATEGORY, volatile=True)
@_xw("arg", "name", doc=_NAME_DOC)
def BF_STATUS(name: Any = "default") -> Any:
    """The shared service's state (connected, reconnecting, failed: why, ...)."""
    return _cells._cell(_shared.status, "default" if name is None else name)


def place_order_from_selection(
    book: Any, header_row: int = 1, name: Optional[str] = "default"
) -> str:
    """
    Place the order described on the row of ``book``'s selection; write the outcome there.

    The active sheet's row ``header_row`` names the columns (see
    ``bfsync.excel.place_order_row``: symbol, side, type, quantity, price, confirm, ...).
    The outcome (the client order id, or the ``#BF!`` error text) goes into the column
    headed ``result``, or the first column after the header when there is none. Reads
    and writes cells, so it must run as a macro (on the thread Excel called), never from a
    cell function. Returns the outcome.
    """
    sheet = book.sheets.active
    row = int(book.app.selection.row)
    header = _trimmed(sheet.range((header_row, 1), (header_row, MAX_COLUMNS)).value)
    titles = [str(t).replace(" ", "").replace("_", "").lower() for t in header]
    column = titles.index("result") + 1 if "result" in titles else len(header) + 1
    if row <= header_row:
        outcome = f"#BF! select a cell in an order row, below the header in row {header_row}"
    else:
        values = sheet.range((row, 1), (row, len(header))).value
        values = values if isinstance(values, list) else [values]
        outcome = _cells.place_order_row(header, values, name)
    sheet.range((row, column)).value = outcome
    return outcome


@_as_macro
def BF_PLACE_ORDER() -> None:
    """Place the order described on the selected row (header in row 1); write the result."""
    place_order_from_selection(xw.Book.caller())


def _trimmed(values: Any) -> list[Any]:
    row = values if isinstance(values, list) else [values]
    while row and (row[-1] is None or row[-1] == ""):
        row = row[:-1]
    return list(row)
