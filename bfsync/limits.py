"""
Client-side rate limiting and request weights (pure: no sockets, threads started or clock).

Binance counts ``REQUEST_WEIGHT`` (2400 per minute per IP) and ``ORDERS`` (300 per 10 s and
1200 per minute per account) and answers 429, then 418 (a ban), when a count goes over. A
:class:`RateLimiter` keeps this client under those limits *before* sending: every request
reserves its weight and order count, and is told how long to wait first. The clock is the
caller's: every method takes ``now``, in seconds of a monotonic clock.

Theory of operation
-------------------

One :class:`Budget` is ``limit`` units per ``window`` seconds. The limiter keeps, per budget,
the reservations it granted, oldest first, as two parallel lists: the recorded time and the
*cumulative* amount up to and including that entry. A head index marks the first entry still
in play; the lists are compacted when the head passes half their length, so memory stays
bounded by what the window holds.

- An entry recorded at ``r`` counts at time ``t`` while ``r + window > t`` (the same sum is
  used everywhere, so float rounding cannot make an entry count in one place and not another).
  Entries with ``r + window <= now`` are evicted.
- A request of ``amount`` fits at ``t`` when everything still counting at ``t``, plus
  ``amount``, is at most ``limit``. Everything held counts, future reservations included, which
  errs on the safe side. If it does not fit now, the earliest time is when enough of the oldest
  entries have left: the first entry whose cumulative amount reaches
  ``last_cumulative + amount - limit``, plus ``window``. A cursor remembers where that entry
  was, so finding it is O(1) amortised: the target only moves forward while requests are
  granted, and moves back at most by the amount of a request refused in ``"raise"`` mode.
- A request is granted at the latest of those times over the budgets it uses (weight on the
  ``REQUEST_WEIGHT`` budgets, its order count on the ``ORDERS`` budgets; a zero amount uses
  nothing) and is recorded in each of them at that time. If a budget already holds a later
  reservation (an order queued behind the ``ORDERS`` budget, say), the new entry is recorded at
  that later time instead, which keeps each budget's list sorted and only makes the entry stay
  longer. So a request that fits is never queued behind one that waits for another budget.
- Any window of ``window`` seconds then holds at most ``limit``: when the last entry of a
  window was granted, every earlier entry of that window still counted.

``reserve()`` is O(1) amortised. ``now`` is taken as ``max(now, latest now seen)``, so threads
whose clock readings reach the lock out of order cannot undo an eviction.

The sliding windows are stricter than the server's (Binance counts in fixed windows, aligned
to the interval). Network jitter can still move a request into the next server window; a
budget with a slightly longer ``window`` (``Budget("ORDERS", 300, 10.5)``) leaves a margin.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .exceptions import RateLimitError
from .protocol import METHODS

__all__ = [
    "DEFAULT_BUDGETS",
    "ORDERS",
    "REQUEST_WEIGHT",
    "Budget",
    "RateLimiter",
    "weight_of",
]

ORDERS = "ORDERS"
REQUEST_WEIGHT = "REQUEST_WEIGHT"

#: How much longer than a counter's window a budget may be and still take in its counts.
_WINDOW_MARGIN = 1.0

#: Seconds in one unit of a ``rateLimits`` item's ``interval``.
_INTERVAL_SECONDS: dict[str, int] = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


@attrs.frozen
class Budget:
    """
    ``limit`` units of ``kind`` per sliding ``window`` of seconds.

    Attributes:
        kind: ``"ORDERS"`` (counts orders placed or modified) or ``"REQUEST_WEIGHT"``.
        limit: units allowed in any window, > 0.
        window: the window's length in seconds, > 0.
    """

    kind: str = attrs.field(validator=attrs.validators.in_((ORDERS, REQUEST_WEIGHT)))
    limit: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)])
    window: float = attrs.field(converter=float, validator=attrs.validators.gt(0.0))

    def __str__(self) -> str:
        """The budget as error messages name it: ``ORDERS 300 per 10 s``."""
        return f"{self.kind} {self.limit} per {self.window:g} s"


#: Binance's documented limits (§1.2): ORDERS 300 / 10 s and 1200 / min, REQUEST_WEIGHT 2400 / min.
DEFAULT_BUDGETS: tuple[Budget, ...] = (
    Budget(ORDERS, 300, 10.0),
    Budget(ORDERS, 1200, 60.0),
    Budget(REQUEST_WEIGHT, 2400, 60.0),
)


class _Window:
    """The reservations of one budget: see the module docstring. Not locked: the owner locks."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.times: list[float] = []  # recorded time of each entry, non-decreasing
        self.cums: list[int] = []  # cumulative amount up to and including each entry
        self.head = 0  # index of the first entry not evicted
        self.base = 0  # cumulative amount of everything evicted
        self.last = 0  # cumulative amount of everything recorded
        self.cursor = 0  # where the last search ended (a hint, clamped to head)

    def __len__(self) -> int:
        """Entries held (not yet evicted)."""
        return len(self.times) - self.head

    @property
    def total(self) -> int:
        """The amount held: everything not evicted, future reservations included."""
        return self.last - self.base

    def evict(self, now: float) -> None:
        """Drop entries that no longer count at ``now``; compact the lists when half is dead."""
        times, window, head = self.times, self.budget.window, self.head
        end = len(times)
        while head < end and times[head] + window <= now:
            head += 1
        if head == self.head:
            return
        self.base = self.cums[head - 1]
        if head * 2 >= end:  # moves at most as many items as were evicted: O(1) amortised
            del times[:head]
            del self.cums[:head]
            self.cursor = max(0, self.cursor - head)
            head = 0
        self.head = head

    def earliest(self, amount: int, now: float) -> float:
        """The earliest time >= ``now`` at which ``amount`` more fits (``amount <= limit``)."""
        limit = self.budget.limit
        if self.total + amount <= limit:
            return now
        target = self.last + amount - limit  # the first entry whose cums[i] >= target must go
        cums = self.cums
        i = max(self.cursor, self.head)
        while cums[i] < target:
            i += 1
        while i > self.head and cums[i - 1] >= target:
            i -= 1
        self.cursor = i
        return max(now, self.times[i] + self.budget.window)

    def add(self, at: float, amount: int) -> None:
        """Record ``amount`` at ``at``, or at the latest recorded time if that is later."""
        if self.times and self.times[-1] > at:
            at = self.times[-1]
        self.last += amount
        self.times.append(at)
        self.cums.append(self.last)


class RateLimiter:
    """
    Client-side throttle: sliding windows over what this client sent.

    Thread-safe (one ``threading.Lock``): callers on many threads reserve before queueing
    their request. Every method takes ``now``, seconds of a monotonic clock, from the caller.

    Args:
        budgets: the limits to keep; :data:`DEFAULT_BUDGETS` by default.
        mode: ``"wait"``: :meth:`reserve` returns how long to wait. ``"raise"``: it raises
            :class:`~bfsync.exceptions.RateLimitError` instead of asking for a wait.

    Raises:
        ValueError: an unknown ``mode``.
    """

    def __init__(self, budgets: Sequence[Budget] = DEFAULT_BUDGETS, mode: str = "wait") -> None:
        if mode not in ("wait", "raise"):
            raise ValueError(f"mode must be 'wait' or 'raise', not {mode!r}")
        self.mode = mode
        self.budgets: tuple[Budget, ...] = tuple(budgets)
        self._windows = [_Window(budget) for budget in self.budgets]
        self._lock = threading.Lock()
        self._now = float("-inf")  # the latest ``now`` seen, so time never runs backwards
        self._latest: dict[str, dict[str, Any]] = {}

    # Public methods

    def reserve(self, weight: int, orders: int, now: float) -> float:
        """
        Reserve capacity for one request and say when it may be sent.

        The reservation is made for ``now + delay``, so callers that reserve one after the
        other queue up in order and never overshoot a budget together.

        Args:
            weight: the request's ``REQUEST_WEIGHT`` (:func:`weight_of`).
            orders: the ``ORDERS`` it counts: 1 for ``order.place`` / ``order.modify``, else 0.
            now: the current time, seconds of a monotonic clock.

        Returns:
            Seconds to wait before sending: ``0.0`` when the request fits now.

        Raises:
            RateLimitError: mode ``"raise"`` and the request does not fit now. Nothing is
                reserved; ``retry_after`` is the wait, the message names the budget.
            ValueError: a negative amount, or one larger than a budget's whole limit (it
                could never be sent).
        """
        if weight < 0 or orders < 0:
            raise ValueError(f"weight and orders must be >= 0, not {weight} and {orders}")
        with self._lock:
            current = self._advance(now)
            grant, binding = current, None
            uses: list[tuple[_Window, int]] = []
            for window in self._windows:
                amount = weight if window.budget.kind == REQUEST_WEIGHT else orders
                if amount == 0:
                    continue
                if amount > window.budget.limit:
                    raise ValueError(f"a request of {amount} can never fit {window.budget}")
                window.evict(current)
                uses.append((window, amount))
                at = window.earliest(amount, current)
                if at > grant:
                    grant, binding = at, window.budget
            delay = max(0.0, grant - now)
            if binding is not None and self.mode == "raise":
                raise RateLimitError(
                    f"client-side rate limit: {binding} used up; retry in {delay:.3f} s",
                    retry_after=delay,
                )
            for window, amount in uses:
                window.add(grant, amount)
            return delay

    def observe(self, rate_limits: Sequence[Mapping[str, Any]], now: float) -> None:
        """
        Take in a reply's ``rateLimits``: remember them, and account for other users.

        ``latest`` keeps the last item seen for each counter (``rateLimitType``, ``interval``,
        ``intervalNum``): a reply that reports only ``REQUEST_WEIGHT`` leaves the ``ORDERS``
        counters of an earlier order reply in place.

        Each item whose type and window (``intervalNum`` x ``interval``) match a budget is
        compared with what that budget holds (everything this client reserved in the window,
        sent or not, and earlier padding). When the server's ``count`` is higher, other clients
        share the IP or account: the difference is recorded in the budget as one entry at
        ``now`` (or at its latest reservation, if later), which counts for a full window. So
        reservations back off as if this client had sent it, before the server answers 429,
        and the next reply is not counted twice, since the padding is part of what the budget
        holds. It is a lower bound of the others' use (the server's fixed window can hold less
        than our sliding one); the server's ``limit`` is not adopted. Items that do not match a
        budget (an ``HOUR`` counter, say) or are malformed are only remembered.

        Args:
            rate_limits: the reply's ``rateLimits`` list; an empty list changes nothing.
            now: when the reply arrived, seconds of the same monotonic clock.
        """
        with self._lock:
            current = self._advance(now)
            for item in rate_limits:
                if not isinstance(item, Mapping):
                    continue
                kind = item.get("rateLimitType")
                interval = item.get("interval")
                number = item.get("intervalNum")
                self._latest[repr((kind, interval, number))] = dict(item)  # repr: hashable
                count = item.get("count")
                unit = _INTERVAL_SECONDS.get(interval) if isinstance(interval, str) else None
                if unit is None or not isinstance(number, int) or not isinstance(count, int):
                    continue
                if isinstance(number, bool) or isinstance(count, bool):
                    continue
                seconds = unit * number
                for window in self._windows:
                    budget = window.budget
                    # A budget widened by a safety margin (60.5 s for 60 s) is still that window.
                    margin = budget.window - seconds
                    if budget.kind != kind or not -1e-9 <= margin <= _WINDOW_MARGIN:
                        continue
                    window.evict(current)
                    excess = count - window.total
                    if excess > 0:
                        window.add(current, excess)

    @property
    def latest(self) -> list[dict[str, Any]]:
        """The last ``rateLimits`` item seen per counter, in first-seen order (copies)."""
        with self._lock:
            return [dict(item) for item in self._latest.values()]

    # Private methods

    def _advance(self, now: float) -> float:
        """``now``, or the latest time already seen if that is later (the lock is held)."""
        if now > self._now:
            self._now = now
        return self._now


#: depth ``limit`` -> weight (§3); other limits fall in the next band up.
_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10))


def weight_of(method: str, params: Mapping[str, Any]) -> int:
    """
    The ``REQUEST_WEIGHT`` of a request, per §3 of the reference.

    ``depth`` weighs by ``limit``: 5/10/20/50 -> 2, 100 -> 5, 500 (the default) -> 10,
    1000 -> 20 (a limit between bands weighs as the next band up; one that is not a number
    weighs as the default). ``ticker.price`` weighs 1 with a ``symbol`` and 2 without;
    ``ticker.book`` 2 and 5. Other methods weigh what :data:`~bfsync.protocol.METHODS` says;
    an unknown method weighs 1.

    Args:
        method: the wire method, ``"depth"``, ``"order.place"``, ...
        params: the request's params.

    Returns:
        The weight, >= 0.
    """
    if method == "depth":
        limit = params.get("limit")
        if limit is None or limit == "":
            return 10
        try:
            number = int(limit)
        except (TypeError, ValueError):
            return 10
        for top, weight in _DEPTH_WEIGHTS:
            if number <= top:
                return weight
        return 20
    if method in ("ticker.price", "ticker.book"):
        symbol = params.get("symbol")
        has_symbol = symbol is not None and symbol != ""
        if method == "ticker.price":
            return 1 if has_symbol else 2
        return 2 if has_symbol else 5
    info = METHODS.get(method)
    return 1 if info is None else info.weight
