"""
The fake exchange's order book of one symbol, with Binance's update ids: pure, no I/O.

Every change consumes update ids. A depth diff event covers the ids since the previous event
(``U`` = previous ``u`` + 1, ``pu`` = previous ``u``), so a client that sees every event finds
an unbroken ``pu`` chain. The id after the last event's ``u`` is always taken (by the next
update, still open), and a snapshot's ``lastUpdateId`` is the last id taken, so it falls inside
the next event's ``[U, u]``, as the procedure of reference §7.3 expects (first applied event:
``U <= lastUpdateId <= u``; events with ``u < lastUpdateId`` dropped). A "gap" is an event the
book applied but nobody received: the next published event's ``pu`` points at it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Union

__all__ = ["Book", "Level", "to_levels"]

Level = tuple[Decimal, Decimal]
LevelInput = Iterable[tuple[Union[str, int, float, Decimal], Union[str, int, float, Decimal]]]


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a numeric string, got {value!r}")
    try:
        number = Decimal(str(value))
    except Exception:
        raise ValueError(f"{what} must be a number or a numeric string, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def to_levels(levels: LevelInput, side: str) -> list[Level]:
    """
    ``[(price, qty), ...]`` as Decimals. ``ValueError`` (naming ``side``) unless each item is
    a pair with a price > 0 and a quantity >= 0 (0 removes the level).
    """
    out: list[Level] = []
    for item in levels:
        try:
            price_in, qty_in = item
        except (TypeError, ValueError):
            raise ValueError(
                f"{side} items must be (price, quantity) pairs, got {item!r}"
            ) from None
        price = _decimal(price_in, f"{side} price")
        qty = _decimal(qty_in, f"{side} quantity")
        if price <= 0:
            raise ValueError(f"{side} price must be > 0, got {price_in!r}")
        if qty < 0:
            raise ValueError(f"{side} quantity must be >= 0 (0 removes the level), got {qty_in!r}")
        out.append((price, qty))
    return out


class Book:
    """
    The levels of one symbol and its update ids.

    ``last_update_id`` is the last id taken (a snapshot's ``lastUpdateId``, at least
    ``last_event_u + 1``); ``last_event_u`` is the ``u`` of the last depth event (published or
    lost).
    """

    __slots__ = ("asks", "bids", "last_event_u", "last_update_id", "price_places", "qty_places")

    def __init__(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        update_id: int,
        price_places: int = 2,
        qty_places: int = 3,
    ) -> None:
        self.bids: dict[Decimal, Decimal] = {p: q for p, q in bids if q > 0}
        self.asks: dict[Decimal, Decimal] = {p: q for p, q in asks if q > 0}
        self.last_update_id = update_id
        self.last_event_u = update_id - 1
        self.price_places = price_places
        self.qty_places = qty_places

    def text(self, value: Decimal, places: int) -> str:
        """``value`` with ``places`` decimals, plain notation."""
        quantized = value.quantize(Decimal(1).scaleb(-places))
        if quantized == 0:
            quantized = quantized.copy_abs()
        return f"{quantized:f}"

    def wire(self, levels: Iterable[Level]) -> list[list[str]]:
        """Levels as Binance sends them: ``[["price", "qty"], ...]``."""
        return [[self.text(p, self.price_places), self.text(q, self.qty_places)] for p, q in levels]

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> tuple[int, int, int]:
        """
        Apply absolute quantities (0 removes; removing an absent level is fine) as one event;
        returns its ``(U, u, pu)``. It spans the ids taken since the last event plus one per
        level changed beyond the first; the id after ``u`` is taken for the next update.
        """
        changes = 0
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                changes += 1
                if qty > 0:
                    side[price] = qty
                else:
                    side.pop(price, None)
        first = self.last_event_u + 1
        pu = self.last_event_u
        last = self.last_update_id + max(1, changes) - 1
        self.last_event_u = last
        self.last_update_id = last + 1
        return first, last, pu

    def next_id(self) -> int:
        """Consume and return one update id outside a depth event (e.g. a book ticker's ``u``)."""
        self.last_update_id += 1
        return self.last_update_id

    def top(self, limit: int) -> tuple[list[Level], list[Level]]:
        """The best ``limit`` bids (highest first) and asks (lowest first)."""
        bids = sorted(self.bids.items(), key=lambda level: level[0], reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda level: level[0])[:limit]
        return bids, asks

    def best(self) -> tuple[Level, Level]:
        """``((bid, qty), (ask, qty))``; a missing side is ``(0, 0)``."""
        bid = max(self.bids.items(), key=lambda level: level[0], default=(Decimal(0), Decimal(0)))
        ask = min(self.asks.items(), key=lambda level: level[0], default=(Decimal(0), Decimal(0)))
        return bid, ask

    def snapshot(self, limit: int, now: int) -> dict[str, Any]:
        """The depth answer: ``{lastUpdateId, E, T, bids, asks}`` with ``limit`` levels a side."""
        bids, asks = self.top(limit)
        return {
            "lastUpdateId": self.last_update_id,
            "E": now,
            "T": now,
            "bids": self.wire(bids),
            "asks": self.wire(asks),
        }
