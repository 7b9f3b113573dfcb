"""
bfsync for Excel: shared services and functions made for cells (xlwings optional).

``import bfsync.excel`` needs no xlwings; ``bfsync.excel.xlwings_udfs`` registers the
functions with xlwings as ``=BF_PRICE``, ``=BF_BOOK``, ... (see docs/excel.md).

- ``service(name="default")``: the process's one shared, connected ``WebSocketService`` of
  that name, made once however many threads ask, connected again by itself after a failure
  (rate-limited), kept across reloads of the user's module and of this package, closed at
  exit. Keys come from ``configure`` or the environment (``BINANCE_API_KEY``,
  ``BINANCE_PRIVATE_KEY``: a key file's path or the HMAC secret), never from a cell.
- ``price``, ``book``, ``depth``, ``positions``, ``balances``,
  ``open_orders``: reads through a short-lived
  cache with single flight (a recalculation storm costs one request per question and
  ``ttl``), returning numbers or 2-D lists with a header row, and errors as ``#BF! ...``
  texts unless ``set_options(errors="raise")``.
- ``place_order`` / ``place_order_row``: validated order placement that needs an explicit
  confirmation, for macros only (a cell would place an order on every recalculation).

Every function may be called from any thread, including one that runs an asyncio loop.
"""

from __future__ import annotations

from ._cells import (
    BALANCE_COLUMNS,
    BOOK_COLUMNS,
    DEPTH_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    NotConfirmedError,
    balances,
    book,
    depth,
    error_text,
    open_orders,
    place_order,
    place_order_row,
    positions,
    price,
)
from ._shared import (
    API_KEY_ENV,
    PRIVATE_KEY_ENV,
    close,
    configure,
    get_options,
    service,
    set_options,
    status,
)

__all__ = [
    # shared services
    "configure",
    "service",
    "status",
    "close",
    "set_options",
    "get_options",
    "API_KEY_ENV",
    "PRIVATE_KEY_ENV",
    # functions for cells
    "price",
    "book",
    "depth",
    "positions",
    "balances",
    "open_orders",
    "error_text",
    "BOOK_COLUMNS",
    "DEPTH_COLUMNS",
    "POSITION_COLUMNS",
    "BALANCE_COLUMNS",
    "ORDER_COLUMNS",
    # orders (macros only)
    "NotConfirmedError",
    "place_order",
    "place_order_row",
]
