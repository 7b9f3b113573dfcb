"""
What the order cells read: the latest event of each order and each symbol's last fill, with
how many gaps came since, fed by the shared user data stream's ``message_handler``.

Theory of operation
-------------------
``UserView.on_event`` runs on the stream's delivery thread, in arrival order. It keeps, per
client order id (``o.c`` of ORDER_TRADE_UPDATE, ``o.caid`` of ALGO_UPDATE; the last
``max_ids`` ids), the latest event, when it arrived (monotonic) and the number of gaps
counted so far; and the same for the last fill (ORDER_TRADE_UPDATE with ``x`` ``TRADE``) of
each symbol and of any symbol. A ``bfsync.gap`` event, and a stream made anew (its events
before are lost), count one gap. A record is *current* when no gap came after it, or when
its status is final (a final status cannot change). A ``bfsync.snapshot`` lists positions
and balances, not orders or fills, so it does not make an order's record current: only the
order's next event does.

The view belongs to the shared entry, not to one stream: it outlives a stream made anew, so
an order seen before a restart is still shown (as not current, until its next event).
Pure but for its lock: the clock is given.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

from .._userdata import ALGO_FINAL, ORDER_FINAL, order_key

__all__ = ["Record", "UserView"]

GAP = "bfsync.gap"


class Record:
    """One kept event: the event, when it arrived, the gap count then."""

    __slots__ = ("arrived", "event", "gaps")

    def __init__(self, event: dict[str, Any], arrived: float, gaps: int) -> None:
        self.event = event
        self.arrived = arrived
        self.gaps = gaps

    @property
    def final(self) -> bool:
        """The order's status is final (it cannot change any more)."""
        order = self.event.get("o") or {}
        finals = ORDER_FINAL if self.event.get("e") == "ORDER_TRADE_UPDATE" else ALGO_FINAL
        return order.get("X") in finals


class UserView:
    """The orders and fills of one shared user stream; thread-safe (see the module docstring)."""

    def __init__(self, max_ids: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_ids = max_ids
        self._clock = clock
        self._lock = threading.Lock()
        self._orders: OrderedDict[str, Record] = OrderedDict()
        self._fills: dict[str, Record] = {}  # symbol (and "" for any) -> last fill
        self.gaps = 0
        self._last_gap: Optional[tuple[str, float]] = None  # (reason, when)

    def on_event(self, event: Any) -> None:
        """The stream's handler: record an order event, a fill or a gap. Never raises."""
        if not isinstance(event, dict):
            return
        with self._lock:
            now = self._clock()
            if event.get("e") == GAP:
                self._gap(str(event.get("reason") or "events may be missing"), now)
                return
            key = order_key(event)
            if key is None:
                return
            record = Record(event, now, self.gaps)
            self._orders[key[0]] = record
            self._orders.move_to_end(key[0])
            if len(self._orders) > self.max_ids:
                self._orders.popitem(last=False)
            order = event.get("o") or {}
            if event.get("e") == "ORDER_TRADE_UPDATE" and order.get("x") == "TRADE":
                self._fills[""] = record
                if isinstance(order.get("s"), str):
                    self._fills[order["s"]] = record

    def restarted(self) -> None:
        """A new stream was made: whatever happened in between is unknown (one gap)."""
        with self._lock:
            self._gap("the user stream was started anew", self._clock())

    def order(self, client_id: str) -> Optional[Record]:
        """The latest record of ``client_id``, or ``None``."""
        with self._lock:
            return self._orders.get(client_id)

    def fill(self, symbol: Optional[str]) -> Optional[Record]:
        """The last fill of ``symbol`` (of any symbol when ``None``), or ``None``."""
        with self._lock:
            return self._fills.get(symbol or "")

    def current(self, record: Record) -> bool:
        """No gap came after ``record``."""
        with self._lock:
            return record.gaps == self.gaps

    def last_gap(self) -> Optional[tuple[str, float]]:
        """``(reason, seconds ago)`` of the last gap, or ``None``."""
        with self._lock:
            if self._last_gap is None:
                return None
            reason, when = self._last_gap
            return reason, max(0.0, self._clock() - when)

    def _gap(self, reason: str, now: float) -> None:
        self.gaps += 1
        self._last_gap = (" ".join(reason.split())[:80], now)
