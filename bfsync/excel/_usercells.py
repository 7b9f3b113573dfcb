"""
Order cells: the latest known state of an order and the last fill, from the shared user
data stream (``user_stream(name)``), never an old value shown as current.

The first call starts the shared user stream (``place_order`` starts it too, before it sends
the order, so that its events are seen from the first). A cell shows a row of values, or a
marker instead:

- ``#BF! waiting for order <id>``: no event of that order came (yet) on this stream;
- ``#BF! gap: ...``: the connection was lost (or the listenKey replaced, or the stream made
  anew) after the order's last event and its status is not final: events may have been
  missed. The order's next event ends the marker; a final status (FILLED, CANCELED, ...)
  is shown whatever gaps came after it, since it cannot change. A ``bfsync.snapshot`` lists
  positions and balances, not orders, so it does not end the marker;
- ``#BF! gap: ... the user stream is reconnecting``: it lost its connection just now and
  reconnects by itself; a final status is still shown;
- ``#BF! not connected: ...``: the user stream is not running now (it comes back by itself,
  see ``user_stream``).

``last_fill`` follows the same rule: after a gap, a later fill may have been missed, so the
marker stays until the next fill.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

from ..exceptions import ConnectionError
from ..transport import State
from ._cells import _cell, _field, _name, _num, _symbol
from ._livecells import NotLiveError
from ._shared import registry, user_stream
from ._user import Record

__all__ = ["FILL_COLUMNS", "ORDER_STATE_COLUMNS", "last_fill", "order_state"]

ORDER_STATE_COLUMNS = ("status", "filledQty", "avgPrice", "symbol", "side", "type", "age")
FILL_COLUMNS = ("symbol", "side", "price", "qty", "clientOrderId", "status", "age")


def order_state(client_order_id: Any, field: Any = None, name: Any = "default") -> Any:
    """
    The latest known state of the order or algo order ``client_order_id`` (as returned by
    ``place_order``), from the shared user stream.

    Without ``field``: a header row ``status, filledQty, avgPrice, symbol, side, type, age``
    and one row: ``status`` is ``X`` of the last ORDER_TRADE_UPDATE (``NEW``,
    ``PARTIALLY_FILLED``, ``FILLED``, ...) or the algo status of the last ALGO_UPDATE
    (``NEW``, ``TRIGGERED``, ``FINISHED``, ...); ``filledQty`` and ``avgPrice`` the
    cumulative filled quantity and average price (``z``/``ap``; ``aq``/``ap`` for algo
    orders); ``age`` the seconds since that event arrived. With ``field`` (one of those):
    that value alone. Markers instead: see the module docstring. Never waits for the
    network beyond starting the user stream the first time.
    """
    return _cell(_order_state, client_order_id, field, name)


def last_fill(symbol: Any = None, field: Any = None, name: Any = "default") -> Any:
    """
    The last fill (ORDER_TRADE_UPDATE with execution type ``TRADE``) of ``symbol``, or of
    any symbol when empty, seen by the shared user stream.

    Without ``field``: a header row ``symbol, side, price, qty, clientOrderId, status, age``
    and one row (``price``/``qty`` of that fill, ``status`` of its order after it, ``age``
    in seconds); with ``field``: that value. ``#BF! no fill yet`` before the first;
    ``#BF! gap: ...`` when a later fill may have been missed (until the next fill).
    """
    return _cell(_last_fill, symbol, field, name)


# Private functions


def _order_state(client_order_id: Any, field: Any, name: Any) -> Any:
    ident = _client_id(client_order_id)
    column = _field(field, ORDER_STATE_COLUMNS, {"filled": "filledQty", "price": "avgPrice"})
    svc = _name(name)
    record, down = _record(svc, lambda view: view.order(ident), f"waiting for order {ident}")
    order = record.event.get("o") or {}
    algo = record.event.get("e") == "ALGO_UPDATE"
    row = [
        order.get("X"),
        _num(order.get("aq" if algo else "z")),
        _num(order.get("ap")),
        order.get("s"),
        order.get("S"),
        order.get("o"),
        _age(record),
    ]
    if not record.final:
        if down is not None:
            raise NotLiveError(f"gap: {row[0]} may be out of date, {down}")
        if not _view(svc).current(record):
            raise NotLiveError(f"gap: {row[0]} may be out of date, {_gap_text(svc)}")
    if column is not None:
        return row[ORDER_STATE_COLUMNS.index(column)]
    return [list(ORDER_STATE_COLUMNS), row]


def _last_fill(symbol: Any, field: Any, name: Any) -> Any:
    wanted: Optional[str] = None if symbol is None or symbol == "" else _symbol(symbol)
    column = _field(field, FILL_COLUMNS, {})
    svc = _name(name)
    record, down = _record(svc, lambda view: view.fill(wanted), "no fill yet")
    if down is not None:
        raise NotLiveError(f"gap: a later fill may be missing, {down}")
    if not _view(svc).current(record):
        raise NotLiveError(f"gap: a later fill may be missing, {_gap_text(svc)}")
    order = record.event.get("o") or {}
    row = [
        order.get("s"),
        order.get("S"),
        _num(order.get("L")),
        _num(order.get("l")),
        order.get("c"),
        order.get("X"),
        _age(record),
    ]
    if column is not None:
        return row[FILL_COLUMNS.index(column)]
    return [list(FILL_COLUMNS), row]


def _record(name: str, find: Any, missing: str) -> tuple[Record, Optional[str]]:
    """
    The record ``find(view)`` and, when the stream is reconnecting by itself now, a text
    saying so (the gap event comes once it is back); else raises: ``NotLiveError`` (no
    record), ``ConnectionError`` (the stream is not running and not reconnecting).
    """
    down: Optional[str] = None
    try:
        user_stream(name)
    except ConnectionError:
        link = registry().user_entry(name).service
        if link is None or link.state is not State.RECONNECTING:
            raise
        down = "the user stream is reconnecting"
    record: Optional[Record] = find(_view(name))
    if record is None:
        if down is not None:
            raise NotLiveError(f"{missing} ({down})")
        gap = _view(name).last_gap()
        raise NotLiveError(missing + (f" ({_gap_text(name)})" if gap is not None else ""))
    return record, down


def _view(name: str) -> Any:
    view = registry().user_entry(name).view
    assert view is not None
    return view


def _gap_text(name: str) -> str:
    gap = _view(name).last_gap()
    if gap is None:  # pragma: no cover - only called after a gap
        return "events may be missing"
    reason, ago = gap
    return f"events may be missing since {ago:.0f} s ago ({reason})"


def _age(record: Record) -> float:
    return round(max(0.0, time.monotonic() - record.arrived), 3)


def _client_id(value: Any) -> str:
    """A client order id from a cell: text as it is (ids are case-sensitive), or a whole number."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    ):
        return str(int(value))
    raise ValueError(f"client_order_id must be text, got {value!r}")
