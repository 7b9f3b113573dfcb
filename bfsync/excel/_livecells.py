"""
Live cell functions: the latest value of a market stream, with its age, never an old number.

A live function reads the shared ``MarketService`` of its name (``market(name)``): the value
is the stream's latest payload (``latest(stream)``), its age the time since that payload
arrived in this process. The first call for a stream subscribes it (in the background: the
cell does not wait) and shows ``#BF! waiting for <stream>`` until its first event; later
calls show the value, or a marker instead of a number:

- ``#BF! stale N s``: the last event is older than ``max_age`` seconds (or the service
  reports the stream stale, when ``stale_after`` is in its config);
- ``#BF! disconnected: ...``: the market service is not connected now (it comes back by
  itself, see ``market``);
- ``#BF! waiting for <stream> (reconnected)``: the connection was lost since the last event,
  so the value may have changed unseen; the next event shows it again.

Cells keep a stream subscribed by asking for it: one no cell asked for in
``unsubscribe_after`` seconds (``set_options``) is unsubscribed (``_live``).
"""

from __future__ import annotations

import math
from typing import Any

from .._streamnames import names_for
from ..exceptions import BinanceWebSocketError, ConnectionError
from ._cells import _cell, _field, _name, _num, _symbol
from ._shared import market, registry

__all__ = ["LIVE_BOOK_COLUMNS", "NotLiveError", "live_book", "live_price"]

LIVE_BOOK_COLUMNS = ("bidPrice", "bidQty", "askPrice", "askQty", "age")
_BOOK_FIELDS = {"bidPrice": "b", "bidQty": "B", "askPrice": "a", "askQty": "A"}


class NotLiveError(BinanceWebSocketError):
    """No current value to show: waiting, stale or disconnected (the message says which)."""


def live_price(
    symbol: Any, with_age: Any = False, max_age: Any = None, name: Any = "default"
) -> Any:
    """
    The mark price of ``symbol`` from the stream ``<symbol>@markPrice@1s`` (one event a
    second, so its age says whether the feed is alive), as a number; with ``with_age``
    true, one row ``[price, age_seconds]``.

    ``max_age``: seconds after which the value is shown as ``#BF! stale N s`` (default:
    ``set_options(max_age=...)``, 10). Never waits for the network beyond connecting the
    shared market service the first time.
    """
    return _cell(_live_price, symbol, with_age, max_age, name)


def live_book(symbol: Any, field: Any = None, max_age: Any = None, name: Any = "default") -> Any:
    """
    The best bid and ask of ``symbol`` from the stream ``<symbol>@bookTicker``.

    Without ``field``: a header row ``bidPrice, bidQty, askPrice, askQty, age`` and one row
    of numbers (``age`` in seconds). With ``field`` (one of those, or ``bid`` / ``ask``):
    that number alone. A book ticker is sent when the best levels change: a quiet symbol
    may need a larger ``max_age`` (default ``set_options(max_age=...)``, 10 s).
    """
    return _cell(_live_book, symbol, field, max_age, name)


# Private functions


def _live_price(symbol: Any, with_age: Any, max_age: Any, name: Any) -> Any:
    (stream,) = names_for("mark_price", symbols=[_symbol(symbol)], update_speed="1000ms")
    show_age = _flag(with_age, "with_age")
    payload, age = _latest(stream, _max_age(max_age), _name(name))
    value = _num(payload.get("p"))
    return [[value, age]] if show_age else value


def _live_book(symbol: Any, field: Any, max_age: Any, name: Any) -> Any:
    (stream,) = names_for("book_ticker", symbols=[_symbol(symbol)])
    column = _field(field, LIVE_BOOK_COLUMNS, {"bid": "bidPrice", "ask": "askPrice"})
    payload, age = _latest(stream, _max_age(max_age), _name(name))
    row = [_num(payload.get(key)) for key in _BOOK_FIELDS.values()] + [age]
    if column is not None:
        return row[LIVE_BOOK_COLUMNS.index(column)]
    return [list(LIVE_BOOK_COLUMNS), row]


def _latest(stream: str, limit: float, name: str) -> tuple[dict[str, Any], float]:
    """``stream``'s latest payload and its age, or ``NotLiveError`` saying why not."""
    entry = registry().market_entry(name)
    live = entry.live
    assert live is not None
    live.ask(stream, entry.generation)  # the lease, even while disconnected
    try:
        market(name)
    except ConnectionError as exc:
        raise NotLiveError(f"disconnected: {exc}") from None
    current = entry.usable()
    if current is None:
        service = entry.service
        state = service.state if service is not None else "closed"
        raise NotLiveError(f"disconnected: {state}")
    service, generation = current
    live.ask(stream, generation)
    refused = live.refused(stream)
    if refused is not None:
        raise NotLiveError(f"{stream} not subscribed: {refused}")
    age = live.age(stream)
    payload = service.latest(stream)
    if age is None or not isinstance(payload, dict):
        again = " (reconnected)" if live.gapped(stream) else ""
        raise NotLiveError(f"waiting for {stream}{again}")
    if age > limit or stream in service.stale_streams:  # stale_streams: config stale_after
        raise NotLiveError(f"stale {age:.1f} s" if age < 10 else f"stale {age:.0f} s")
    return payload, round(age, 3)


def _max_age(value: Any) -> float:
    if value is None:
        return registry().max_age
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"max_age must be a number of seconds > 0, got {value!r}")
    return float(value)


def _flag(value: Any, label: str) -> bool:
    """A yes/no from a cell: TRUE/FALSE, 1/0, or empty (no)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{label} must be TRUE or FALSE, got {value!r}")
