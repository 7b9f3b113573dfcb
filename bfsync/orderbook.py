"""
A local order book kept by Binance's diff-depth procedure: pure, no socket, thread or clock.

``BookState`` is the state machine of reference §7.3; ``OrderBook`` (``bfsync.livebook``) wraps
it with a lock, a snapshot worker and counters. Feed it parsed diffs (``parse_depth_update``)
and snapshots (``parse_snapshot``); each call returns a ``BookOutcome`` saying what happened.

Theory of operation (``U``/``u``/``pu`` are a diff's first, final and previous-final update ids,
``L`` the snapshot's ``lastUpdateId``)::

    phase       input                       outcome          next phase
    ---------   -------------------------   --------------   ------------------------------
    BUFFERING   diff                        BUFFERED         BUFFERING (held for the snapshot;
                                                             a diff whose pu breaks the chain
                                                             of held diffs discards those)
    BUFFERING   diff with u <= last held u  DROPPED          BUFFERING (duplicate / late)
    BUFFERING   snapshot                    (replay held diffs as below, in order)
    LOADED      diff with u < L             DROPPED          LOADED
    LOADED      diff with U <= L <= u       APPLIED          SYNCED
    LOADED      diff with U > L             STALE_SNAPSHOT   BUFFERING (diff held; fetch again)
    SYNCED      diff with u <= last u       DROPPED          SYNCED    (duplicate / late)
    SYNCED      diff with pu == last u      APPLIED          SYNCED
    SYNCED      diff with pu != last u      GAP              BUFFERING (diff held; fetch again)
    any         a diff leaves bid >= ask    CROSSED          BUFFERING (fetch again)
    any         snapshot that is crossed    CROSSED          BUFFERING (held diffs kept)
    any         reset()                     -                BUFFERING (book and buffer clear)
    any         the 11th diff in a row      GAP (SYNCED),    BUFFERING, holding only it (the
                that would be DROPPED       STALE_SNAPSHOT   ids went backwards: a restarted
                                            (LOADED) or      sequence must not freeze the
                                            BUFFERED         book)

A snapshot with no held diff bridging it leaves the book LOADED: it holds the snapshot but is
not yet *synced*; the first diff with ``U <= L <= u`` makes it so (step 5 of the procedure).
Leaving SYNCED or LOADED for BUFFERING always clears the levels, so stale levels are never
read. Quantities are absolute, a zero quantity removes the level, and removing a level the book
does not hold is normal. After each update the levels beyond ``depth`` (the worst) are trimmed.
Every level the book lists then has its true quantity; but a level that was deeper than the
snapshot reached is unknown to the book, so after the levels above it are emptied it can be
missing near the deep end. Keep more depth than you read (the default keeps 1000).

Prices and quantities are ``Decimal`` (exact). Each side is a dict ``price -> qty`` plus a
sorted list of its prices kept with ``bisect``, so an update costs O(log n) comparisons and a
short memmove, and reading the best ``n`` levels costs O(n).
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Optional

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "MAX_DEPTH",
    "MAX_OLD_RUN",
    "SNAPSHOT_LIMITS",
    "BookOutcome",
    "BookPhase",
    "BookState",
    "DepthDiff",
    "DepthSnapshot",
    "parse_depth_update",
    "parse_snapshot",
    "snapshot_limit_for",
]

#: Diffs in a row that may be dropped as older than the book; the next one starts over (the
#: exchange's update ids went backwards). Duplicates come one or two at a time.
MAX_OLD_RUN = 10
#: The ``limit`` values ``GET /fapi/v1/depth`` (and ws-fapi ``depth``) accept.
SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
#: The deepest snapshot Binance serves, so the deepest book that can be kept.
MAX_DEPTH = 1000
#: Diffs held while no snapshot is loaded; beyond it the oldest are dropped (a snapshot that
#: predates what is left then comes back STALE_SNAPSHOT and is fetched again).
DEFAULT_MAX_BUFFER = 5000

Level = tuple[Decimal, Decimal]

_ZERO = Decimal(0)
_EXACT = (str, int)


class BookPhase(enum.Enum):
    """Where a ``BookState`` is in the procedure."""

    BUFFERING = "buffering"  # no snapshot loaded: diffs are held, a snapshot is needed
    LOADED = "loaded"  # snapshot loaded, waiting for the diff that bridges it
    SYNCED = "synced"  # snapshot bridged, every diff since chained by ``pu``


class BookOutcome(enum.Enum):
    """What one call to ``BookState.on_diff`` / ``on_snapshot`` did."""

    BUFFERED = "buffered"  # diff held until a snapshot is loaded
    DROPPED = "dropped"  # diff older than the book (duplicate, late, or before the snapshot)
    LOADED = "loaded"  # snapshot loaded; no diff bridges it yet
    APPLIED = "applied"  # diff (or snapshot plus held diffs) applied: the book is synced
    GAP = "gap"  # a diff's pu broke the chain: book cleared, fetch a snapshot again
    STALE_SNAPSHOT = "stale_snapshot"  # the snapshot predates the held diffs: fetch again
    CROSSED = "crossed"  # best bid >= best ask after applying: book cleared, fetch again


#: Outcomes after which the book is out of sync and needs a new snapshot.
RESYNC_OUTCOMES = frozenset({BookOutcome.GAP, BookOutcome.STALE_SNAPSHOT, BookOutcome.CROSSED})


class DepthDiff(NamedTuple):
    """One ``depthUpdate`` event, parsed: update ids and absolute ``(price, qty)`` levels."""

    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu
    bids: Sequence[Level]
    asks: Sequence[Level]


class DepthSnapshot(NamedTuple):
    """A depth snapshot (``GET /fapi/v1/depth`` or ws-fapi ``depth``), parsed."""

    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]


def snapshot_limit_for(depth: int) -> int:
    """
    The smallest snapshot ``limit`` Binance accepts that covers ``depth`` levels.

    Raises:
        ValueError: ``depth`` is not an int from 1 to 1000.
    """
    _check_depth(depth)
    return next(limit for limit in SNAPSHOT_LIMITS if limit >= depth)


def parse_depth_update(payload: Mapping[str, Any]) -> DepthDiff:
    """
    Parse a ``depthUpdate`` payload (or its combined-mode ``{"stream", "data"}`` envelope).

    Raises:
        ValueError: a field is missing or malformed (the message names it).
    """
    data = payload.get("data", payload) if "stream" in payload else payload
    if not isinstance(data, Mapping):
        raise ValueError("depth update: 'data' must be an object")
    return DepthDiff(
        _update_id(data, "U"),
        _update_id(data, "u"),
        _update_id(data, "pu"),
        _levels(data, "b"),
        _levels(data, "a"),
    )


def parse_snapshot(payload: Mapping[str, Any]) -> DepthSnapshot:
    """
    Parse a depth snapshot: ``{"lastUpdateId", "bids", "asks", ...}`` (REST or ws-fapi result).

    Raises:
        ValueError: a field is missing or malformed (the message names it).
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"depth snapshot must be an object, got {type(payload).__name__}")
    return DepthSnapshot(
        _update_id(payload, "lastUpdateId"), _levels(payload, "bids"), _levels(payload, "asks")
    )


def _update_id(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValueError(f"depth: {key!r} must be an integer update id, got {value!r}")
    return value


def _levels(data: Mapping[str, Any], key: str) -> list[Level]:
    raw = data.get(key)
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"depth: {key!r} must be a list of [price, qty], got {raw!r:.80}")
    levels = []
    try:
        for price, qty in raw:
            # Binance sends strings; a float would not be exact (and a bool is no number).
            if type(price) not in _EXACT or type(qty) not in _EXACT:
                raise ValueError
            p, q = Decimal(price), Decimal(qty)
            # NaN raises in a comparison; the order keeps the common case to two compares.
            if not (p > _ZERO and q >= _ZERO and p.is_finite() and q.is_finite()):
                raise ValueError
            levels.append((p, q))
    except (TypeError, ValueError, InvalidOperation):
        raise ValueError(
            f"depth: {key!r} must hold [price, qty] pairs of decimal strings, price > 0 and "
            f"qty >= 0, got {raw!r:.80}"
        ) from None
    return levels


def _check_depth(depth: Any) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be an int from 1 to {MAX_DEPTH}, got {depth!r}")


class _Side:
    """One side of the book: ``price -> qty`` plus the prices in ascending order."""

    __slots__ = ("_bids", "_prices", "_qty")

    def __init__(self, bids: bool) -> None:
        self._bids = bids  # best first means highest first
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []

    def __len__(self) -> int:
        return len(self._prices)

    def clear(self) -> None:
        self._qty.clear()
        self._prices.clear()

    def load(self, levels: Iterable[Level]) -> None:
        self._qty = {price: qty for price, qty in levels if qty}
        self._prices = sorted(self._qty)

    def update(self, levels: Iterable[Level]) -> None:
        qty_of, prices = self._qty, self._prices
        for price, qty in levels:
            if qty:
                if price not in qty_of:
                    insort(prices, price)
                qty_of[price] = qty
            elif qty_of.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]

    def trim(self, depth: int) -> None:
        excess = len(self._prices) - depth
        if excess <= 0:
            return
        prices, qty_of = self._prices, self._qty
        if self._bids:  # the worst bids are the lowest, at the front
            dropped, self._prices = prices[:excess], prices[excess:]
        else:
            dropped, self._prices = prices[depth:], prices[:depth]
        for price in dropped:
            del qty_of[price]

    def best(self) -> Optional[Decimal]:
        if not self._prices:
            return None
        return self._prices[-1] if self._bids else self._prices[0]

    def levels(self, n: Optional[int]) -> list[Level]:
        prices, qty_of = self._prices, self._qty
        if self._bids:
            if n is None or n >= len(prices):
                chosen = prices[::-1]
            else:
                chosen = prices[: -n - 1 : -1] if n > 0 else []
        else:
            chosen = prices if n is None else prices[: max(n, 0)]
        return [(price, qty_of[price]) for price in chosen]


class BookState:
    """
    The local book's state machine (see the module docstring for the table).

    Args:
        depth: levels kept per side (1 to 1000); worse levels are trimmed after each update.
        max_buffer: diffs held while waiting for a snapshot; the oldest go beyond it.

    Raises:
        ValueError: a bad ``depth`` or ``max_buffer``.

    Not thread-safe: ``bfsync.livebook.OrderBook`` serialises access.
    """

    def __init__(self, depth: int = MAX_DEPTH, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        _check_depth(depth)
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError(f"max_buffer must be an int >= 1, got {max_buffer!r}")
        self.depth = depth
        self.max_buffer = max_buffer
        self._bids = _Side(bids=True)
        self._asks = _Side(bids=False)
        self._buffer: deque[DepthDiff] = deque()
        self._phase = BookPhase.BUFFERING
        self._last_id = -1  # meaningful in LOADED and SYNCED only
        self._old_run = 0  # diffs in a row dropped as older than the book
        #: Held diffs discarded because the buffer was full (the oldest go first).
        self.buffer_overflows = 0

    # Reading

    @property
    def phase(self) -> BookPhase:
        """BUFFERING, LOADED or SYNCED."""
        return self._phase

    @property
    def synced(self) -> bool:
        """True when the levels equal the exchange's book as of ``last_update_id``."""
        return self._phase is BookPhase.SYNCED

    @property
    def needs_snapshot(self) -> bool:
        """True while no snapshot is loaded (the owner should fetch one)."""
        return self._phase is BookPhase.BUFFERING

    @property
    def last_update_id(self) -> Optional[int]:
        """The snapshot's ``lastUpdateId``, then each applied diff's ``u``; None when BUFFERING."""
        return None if self._phase is BookPhase.BUFFERING else self._last_id

    @property
    def buffered(self) -> int:
        """How many diffs are held for the next snapshot."""
        return len(self._buffer)

    def bids(self, n: Optional[int] = None) -> list[Level]:
        """The best ``n`` bids (all when None), highest price first, whatever the phase."""
        return self._bids.levels(n)

    def asks(self, n: Optional[int] = None) -> list[Level]:
        """The best ``n`` asks (all when None), lowest price first, whatever the phase."""
        return self._asks.levels(n)

    def best_bid(self) -> Optional[Decimal]:
        """The highest bid price, or None."""
        return self._bids.best()

    def best_ask(self) -> Optional[Decimal]:
        """The lowest ask price, or None."""
        return self._asks.best()

    # Transitions

    def on_diff(self, diff: DepthDiff) -> BookOutcome:
        """Take one diff, in arrival order; the outcome says what happened (module table)."""
        outcome = self._take(diff)
        if outcome is not BookOutcome.DROPPED:
            self._old_run = 0
            return outcome
        self._old_run += 1
        if self._old_run <= MAX_OLD_RUN:
            return outcome
        # Too many diffs older than the book in a row: the exchange's ids went backwards (a
        # restarted sequence), and dropping them all would freeze the book. Start over here.
        self._old_run = 0
        if self._phase is BookPhase.BUFFERING:
            self._buffer.clear()
            self._buffer.append(diff)
            return BookOutcome.BUFFERED
        if self._phase is BookPhase.SYNCED:
            return self._out_of_sync(BookOutcome.GAP, diff)
        return self._out_of_sync(BookOutcome.STALE_SNAPSHOT, diff)

    def _take(self, diff: DepthDiff) -> BookOutcome:
        phase = self._phase
        if phase is BookPhase.SYNCED:
            last = self._last_id
            if diff.final_update_id <= last:
                return BookOutcome.DROPPED
            if diff.prev_final_update_id != last:
                return self._out_of_sync(BookOutcome.GAP, diff)
            return self._apply(diff)
        if phase is BookPhase.LOADED:
            return self._bridge(diff)
        return self._hold(diff)

    def on_snapshot(self, snapshot: DepthSnapshot) -> BookOutcome:
        """
        Load a snapshot and replay the held diffs on it.

        Returns:
            APPLIED (synced), LOADED (no held diff bridges it yet), STALE_SNAPSHOT (every held
            diff starts after it), GAP (the held diffs break their chain after it) or CROSSED.
            In a phase other than BUFFERING the snapshot replaces the book the same way.
        """
        held = list(self._buffer)
        self._buffer.clear()
        self._bids.load(snapshot.bids)
        self._asks.load(snapshot.asks)
        self._trim()
        if self._crossed():
            self._clear_levels()
            self._buffer.extend(held)
            return BookOutcome.CROSSED
        self._phase = BookPhase.LOADED
        self._last_id = snapshot.last_update_id
        outcome = BookOutcome.LOADED
        self._old_run = 0
        for index, diff in enumerate(held):
            outcome = self._take(diff)
            if outcome in RESYNC_OUTCOMES:
                # The diff that failed is held already; keep every later one behind it.
                self._buffer.extend(held[index + 1 :])
                return outcome
        return BookOutcome.APPLIED if self._phase is BookPhase.SYNCED else BookOutcome.LOADED

    def reset(self) -> None:
        """Forget everything (levels and held diffs): back to BUFFERING."""
        self._old_run = 0
        self._clear_levels()
        self._buffer.clear()

    # Private methods

    def _hold(self, diff: DepthDiff) -> BookOutcome:
        buffer = self._buffer
        if buffer:
            last = buffer[-1]
            if diff.final_update_id <= last.final_update_id:
                return BookOutcome.DROPPED
            if diff.prev_final_update_id != last.final_update_id:
                # No snapshot can bridge a chain broken here to what comes next.
                buffer.clear()
        buffer.append(diff)
        if len(buffer) > self.max_buffer:
            buffer.popleft()
            self.buffer_overflows += 1
        return BookOutcome.BUFFERED

    def _bridge(self, diff: DepthDiff) -> BookOutcome:
        last = self._last_id
        if diff.final_update_id < last:
            return BookOutcome.DROPPED
        if diff.first_update_id > last:
            return self._out_of_sync(BookOutcome.STALE_SNAPSHOT, diff)
        return self._apply(diff)

    def _apply(self, diff: DepthDiff) -> BookOutcome:
        self._bids.update(diff.bids)
        self._asks.update(diff.asks)
        self._trim()
        if self._crossed():
            return self._out_of_sync(BookOutcome.CROSSED, diff)
        self._phase = BookPhase.SYNCED
        self._last_id = diff.final_update_id
        return BookOutcome.APPLIED

    def _out_of_sync(self, outcome: BookOutcome, diff: DepthDiff) -> BookOutcome:
        self._clear_levels()
        self._buffer.clear()
        self._buffer.append(diff)
        return outcome

    def _clear_levels(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._phase = BookPhase.BUFFERING

    def _trim(self) -> None:
        self._bids.trim(self.depth)
        self._asks.trim(self.depth)

    def _crossed(self) -> bool:
        bid, ask = self._bids.best(), self._asks.best()
        return bid is not None and ask is not None and bid >= ask
