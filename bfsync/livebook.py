"""
The live local order book: ``BookState`` behind a lock, with a worker that fetches snapshots.

``ms.order_book(symbol, depth=1000)`` returns an ``OrderBook``. Its owner (the market service)
subscribes ``<symbol>@depth@100ms`` and calls ``feed(payload)`` with every depth event, in
arrival order. ``feed`` does no I/O and never waits for a fetch: it parses the diff and updates
a few dicts and lists under the book's lock, which is only ever held that briefly (a read
copies at most ``depth`` levels; loading a snapshot is parsed outside it). So the owner may call
it on its I/O thread, on arrival, before any user queue: a slow consumer then never puts the
book out of sync. Snapshots are fetched by the book's own worker thread,
``bfsync-book-<SYMBOL>``, through the injected ``fetch_snapshot(symbol, limit) -> dict``:

- The first fetch waits for the first diff, so the snapshot is never older than the stream.
- While a fetch runs, ``feed`` keeps buffering diffs (none is ever dropped for the fetch: that
  is the known endless-resync bug); the snapshot is then bridged to them (reference §7.3).
- A gap in the ``pu`` chain, a crossed book, or a snapshot older than the buffered diffs sends
  the book back to buffering and wakes the worker: it resyncs by itself.
- A fetch that fails (or a snapshot that cannot be used) is logged, counted and retried after
  ``retry_delay`` seconds, doubling up to ``max_retry_delay``; two fetches never start less than
  ``retry_delay`` apart, so a flapping stream cannot hammer the REST weight limit.

Snapshots come over REST by default (``rest_snapshot_fetcher(rest_url)``: ``GET
{rest_url}/fapi/v1/depth?symbol=..&limit=..``, weight 20 at limit 1000, with a bounded
timeout): it needs no key and no extra WebSocket, and runs on the worker without touching any
I/O thread. A ws-fapi ``depth`` call works the same way when a ``WebSocketService`` is at hand::

    OrderBook("BTCUSDT", lambda symbol, limit: ws.get_depth(symbol, limit))

State changes can be reported in line with the stream through ``on_notice``, which is called
with keyword arguments, in the order the changes happened, outside the book's lock (from the
feeding thread or the worker, one call at a time):
``symbol`` and ``status`` (``"synced"`` with ``lastUpdateId``; ``"out_of_sync"`` with
``reason``: ``"gap"``, ``"crossed"``, ``"stale_snapshot"``, ``"malformed"`` or the reason given to
``invalidate()``; ``"snapshot_failed"`` with ``error`` and ``retry_in`` seconds). A market
service passes ``lambda **f: lane.signal("book", **f)``, which delivers
``{"e": "bfsync.book", "E": ms, "symbol": ..., "status": ..., ...}`` to the user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ._resthttp import get_public
from .exceptions import (
    OrderBookOutOfSyncError,
)
from .orderbook import (
    DEFAULT_MAX_BUFFER,
    MAX_DEPTH,
    RESYNC_OUTCOMES,
    BookOutcome,
    BookPhase,
    BookState,
    parse_depth_update,
    parse_snapshot,
    snapshot_limit_for,
)

if TYPE_CHECKING:
    import requests

__all__ = ["DEPTH_PATH", "OrderBook", "fetch_depth_snapshot", "rest_snapshot_fetcher"]

log = logging.getLogger("bfsync.orderbook")

DEPTH_PATH = "/fapi/v1/depth"

Level = tuple[Decimal, Decimal]
SnapshotFetcher = Callable[[str, int], Mapping[str, Any]]

_REASONS = {
    BookOutcome.GAP: "gap",
    BookOutcome.CROSSED: "crossed",
    BookOutcome.STALE_SNAPSHOT: "stale_snapshot",
}


class OrderBook:
    """
    A local order book for one symbol, kept in sync from depth diffs and snapshots.

    Thread-safe: ``feed`` from the delivery side, reads from any thread.

    Args:
        symbol: e.g. ``"BTCUSDT"`` (upper-cased for the snapshot request).
        fetch_snapshot: ``(symbol, limit) -> {"lastUpdateId", "bids", "asks", ...}``; run on
            the book's worker thread only. It should bound its own time (the REST fetcher
            does): ``close()`` cannot interrupt it.
        depth: levels kept per side, 1 to 1000. The snapshot ``limit`` is the smallest value
            Binance accepts that covers it (5, 10, 20, 50, 100, 500 or 1000).
        max_buffer: diffs held while a snapshot is fetched (oldest dropped beyond it).
        retry_delay: seconds before the first retry of a failed or unusable snapshot, and
            the least time between two fetches.
        max_retry_delay: the longest wait between retries (the delay doubles up to it).
        on_notice: called with keyword arguments on each change of sync (module docstring).

    Raises:
        ValueError: a bad argument (the message names it).
    """

    def __init__(
        self,
        symbol: str,
        fetch_snapshot: SnapshotFetcher,
        *,
        depth: int = MAX_DEPTH,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        on_notice: Optional[Callable[..., object]] = None,
    ) -> None:
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        if not callable(fetch_snapshot):
            raise ValueError("fetch_snapshot must be a callable (symbol, limit) -> dict")
        for name, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        self._state = BookState(depth, max_buffer)  # validates depth and max_buffer
        self.symbol = symbol.strip().upper()
        self.depth = depth
        self.snapshot_limit = snapshot_limit_for(depth)
        self._fetch = fetch_snapshot
        self._retry_delay = float(retry_delay)
        self._max_retry_delay = float(max_retry_delay)
        self._on_notice = on_notice
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._reason = "waiting for the first depth event"
        self._counters = dict.fromkeys(
            (
                "events",
                "dropped",
                "malformed",
                "gaps",
                "crossed",
                "stale_snapshots",
                "resyncs",
                "snapshots",
                "snapshot_failures",
            ),
            0,
        )
        self._last_error: Optional[BaseException] = None
        self._notices: deque[dict[str, Any]] = deque()
        self._notice_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"bfsync-book-{self.symbol}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self.symbol} {self._state.phase.value} "
            f"last_update_id={self._state.last_update_id} depth={self.depth}>"
        )

    # Reading (any thread)

    @property
    def synced(self) -> bool:
        """True while the levels are the exchange's as of ``last_update_id``."""
        return self._state.synced and not self._closed

    @property
    def phase(self) -> BookPhase:
        """BUFFERING (waiting for a snapshot), LOADED (waiting for its bridge) or SYNCED."""
        return self._state.phase

    @property
    def last_update_id(self) -> Optional[int]:
        """The ``u`` of the last diff applied (or the snapshot's id); None while resyncing."""
        return self._state.last_update_id

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def gaps(self) -> int:
        """Diffs whose ``pu`` did not follow the last applied ``u`` (each caused a resync)."""
        return self._counters["gaps"]

    @property
    def resyncs(self) -> int:
        """Times a synced or loaded book was thrown away and rebuilt from a new snapshot."""
        return self._counters["resyncs"]

    @property
    def last_error(self) -> Optional[BaseException]:
        """The last snapshot fetch's exception, or None (cleared once synced again)."""
        return self._last_error

    def stats(self) -> dict[str, int]:
        """Counters: events, dropped (old or duplicate diffs), malformed, gaps, crossed,
        stale_snapshots, resyncs, snapshots, snapshot_failures, buffered, buffer_overflows."""
        with self._cond:
            return {
                **self._counters,
                "buffered": self._state.buffered,
                "buffer_overflows": self._state.buffer_overflows,
            }

    def bids(self, n: Optional[int] = None) -> list[Level]:
        """
        The best ``n`` bids (all held when None), highest price first, as ``(price, qty)``.

        Raises:
            OrderBookOutOfSyncError: the book is not in sync (or closed).
            ValueError: ``n`` is not None or an int >= 0.
        """
        _check_n(n)
        with self._cond:
            self._require_synced()
            return self._state.bids(n)

    def asks(self, n: Optional[int] = None) -> list[Level]:
        """
        The best ``n`` asks (all held when None), lowest price first, as ``(price, qty)``.

        Raises:
            OrderBookOutOfSyncError: the book is not in sync (or closed).
            ValueError: ``n`` is not None or an int >= 0.
        """
        _check_n(n)
        with self._cond:
            self._require_synced()
            return self._state.asks(n)

    def levels(self, n: Optional[int] = None) -> tuple[int, list[Level], list[Level]]:
        """
        ``(last_update_id, bids(n), asks(n))`` read at one instant (one lock).

        Raises:
            OrderBookOutOfSyncError: the book is not in sync (or closed).
            ValueError: ``n`` is not None or an int >= 0.
        """
        _check_n(n)
        with self._cond:
            self._require_synced()
            return self._state.last_update_id or 0, self._state.bids(n), self._state.asks(n)

    def wait_synced(self, timeout: Optional[float] = None) -> bool:
        """
        Wait until the book is in sync: True when it is, False after ``timeout`` seconds
        (None: no limit) or once the book is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._state.synced and not self._closed:
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            return not self._closed

    # Feeding (the owner's delivery side)

    def feed(self, payload: Mapping[str, Any]) -> BookOutcome:
        """
        Take one ``depthUpdate`` event (payload or combined envelope), in arrival order.

        Never blocks on I/O. A malformed event is counted, logged, and puts the book out of
        sync (an update may be lost). Returns what the book did with it (``DROPPED`` once
        closed or for a malformed event).
        """
        try:
            diff = parse_depth_update(payload)
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("order book %s: malformed depth event (%s); resyncing", self.symbol, exc)
            with self._cond:
                self._counters["malformed"] += 1
            self.invalidate("malformed")
            return BookOutcome.DROPPED
        with self._cond:
            if self._closed:
                return BookOutcome.DROPPED
            was_synced = self._state.synced
            was_loaded = self._state.phase is not BookPhase.BUFFERING
            outcome = self._state.on_diff(diff)
            self._counters["events"] += 1
            if outcome is BookOutcome.DROPPED:
                self._counters["dropped"] += 1
            elif outcome in RESYNC_OUTCOMES:
                self._left_sync(outcome, was_synced, was_loaded)
                self._cond.notify_all()
            elif outcome is BookOutcome.BUFFERED:
                if self._state.buffered == 1:
                    self._cond.notify_all()  # the worker may fetch now
            elif not was_synced:  # APPLIED: the bridge has come
                self._now_synced()
        if self._notices:
            self._flush_notices()
        return outcome

    def invalidate(self, reason: str = "invalidated") -> None:
        """
        Throw the book away and resync (e.g. the owner's stream was interrupted): levels and
        buffered diffs are cleared; the worker fetches a snapshot once diffs arrive again.
        """
        with self._cond:
            if self._closed:
                return
            was_loaded = self._state.phase is not BookPhase.BUFFERING
            was_synced = self._state.synced
            self._state.reset()
            self._reason = reason
            if was_loaded:
                self._counters["resyncs"] += 1
            if was_synced:
                self._notice({"status": "out_of_sync", "reason": reason})
            self._cond.notify_all()
        self._flush_notices()

    def close(self, timeout: float = 1.0) -> None:
        """
        Stop the worker and make every read raise. Idempotent, from any thread; waits at
        most ``timeout`` seconds for a fetch in progress (it then ends on its own).
        """
        with self._cond:
            self._closed = True
            self._reason = "closed"
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # Private methods

    def _require_synced(self) -> None:
        if self._closed:
            raise OrderBookOutOfSyncError(f"order book {self.symbol} is closed", symbol=self.symbol)
        if not self._state.synced:
            raise OrderBookOutOfSyncError(
                f"order book {self.symbol} is not in sync ({self._reason}); "
                "wait_synced(timeout) waits for it",
                symbol=self.symbol,
            )

    def _left_sync(self, outcome: BookOutcome, was_synced: bool, was_loaded: bool) -> None:
        """Lock held: count a RESYNC outcome, and queue a notice if sync was lost."""
        reason = _REASONS[outcome]
        self._reason = f"resyncing after {reason.replace('_', ' ')}"
        key = {"gap": "gaps", "crossed": "crossed", "stale_snapshot": "stale_snapshots"}[reason]
        self._counters[key] += 1
        if was_loaded:
            self._counters["resyncs"] += 1
        if outcome is BookOutcome.GAP:
            log.info("order book %s: gap in the depth stream; resyncing", self.symbol)
        elif outcome is BookOutcome.CROSSED:
            log.warning("order book %s: crossed (bid >= ask); resyncing", self.symbol)
        if was_synced:
            self._notice({"status": "out_of_sync", "reason": reason})

    def _now_synced(self) -> None:
        """Lock held: the book has just become synced."""
        self._reason = "synced"
        self._last_error = None
        self._notice({"status": "synced", "lastUpdateId": self._state.last_update_id})
        self._cond.notify_all()

    def _notice(self, fields: dict[str, Any]) -> None:
        """Lock held: queue a notice; ``_flush_notices`` sends it once the lock is released."""
        if self._on_notice is not None:
            self._notices.append(fields)

    def _flush_notices(self) -> None:
        """
        Send the queued notices in the order they were queued, without the book's lock.

        Whichever thread gets ``_notice_lock`` sends everything queued; a thread that does not
        get it leaves its notice to the holder, which releases the lock only while holding the
        book's lock with the queue empty, so no notice is left behind and none waits for a
        slow callback on another thread.
        """
        callback = self._on_notice
        while callback is not None and self._notice_lock.acquire(blocking=False):
            while True:
                with self._cond:
                    if not self._notices:
                        self._notice_lock.release()
                        return
                    fields = self._notices.popleft()
                try:
                    callback(symbol=self.symbol, **fields)
                except Exception:
                    log.exception("order book %s: on_notice raised", self.symbol)

    def _run(self) -> None:
        """The worker: fetch a snapshot whenever one is needed and diffs are buffered."""
        cond, state = self._cond, self._state
        failures = 0
        not_before = 0.0  # monotonic time before which no fetch starts
        while True:
            with cond:
                while not self._closed:
                    if state.needs_snapshot and state.buffered:
                        wait = not_before - time.monotonic()
                        if wait <= 0:
                            break
                        cond.wait(wait)
                    else:
                        cond.wait()
                if self._closed:
                    return
            started = time.monotonic()
            not_before = started + self._retry_delay
            try:
                snapshot = parse_snapshot(self._fetch(self.symbol, self.snapshot_limit))
            except Exception as exc:
                failures += 1
                delay = self._backoff(failures)
                not_before = time.monotonic() + delay
                with cond:
                    self._counters["snapshot_failures"] += 1
                    self._last_error = exc
                    self._notice(
                        {
                            "status": "snapshot_failed",
                            "error": f"{type(exc).__name__}: {exc}",
                            "retry_in": delay,
                        }
                    )
                log.warning(
                    "order book %s: snapshot failed (%s: %s); retrying in %.1f s",
                    self.symbol,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._flush_notices()
                continue
            with cond:
                if self._closed:
                    return
                self._counters["snapshots"] += 1
                outcome = state.on_snapshot(snapshot)
                if outcome is BookOutcome.APPLIED:
                    failures = 0
                    self._now_synced()
                elif outcome is BookOutcome.LOADED:
                    failures = 0
                    self._reason = "snapshot loaded, waiting for the depth event that bridges it"
                else:
                    failures += 1
                    not_before = max(not_before, time.monotonic() + self._backoff(failures))
                    self._left_sync(outcome, was_synced=False, was_loaded=False)
                cond.notify_all()
            self._flush_notices()

    def _backoff(self, failures: int) -> float:
        return min(self._max_retry_delay, self._retry_delay * 2.0 ** max(failures - 1, 0))


def _check_n(n: Any) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None or an int >= 0, got {n!r}")


# ---------------------------------------------------------------------------------------------
# REST snapshots


def fetch_depth_snapshot(
    rest_url: str,
    symbol: str,
    limit: int = MAX_DEPTH,
    *,
    timeout: float = 10.0,
    session: Optional[requests.Session] = None,
) -> dict[str, Any]:
    """
    ``GET {rest_url}/fapi/v1/depth?symbol=<SYMBOL>&limit=<limit>``: the decoded JSON object.

    Args:
        rest_url: ``https://fapi.binance.com`` or the testnet's; a trailing ``/`` is ignored.
        symbol: upper-cased before sending.
        limit: 5, 10, 20, 50, 100, 500 or 1000 (weight 2, 2, 2, 5, 5, 10, 20).
        timeout: seconds, for connecting and for reading (``requests``' timeout).
        session: a ``requests.Session`` to reuse; ``requests.get`` when None.

    Raises:
        RateLimitError: HTTP 429 or 418 (``retry_after`` from the ``Retry-After`` header).
        RequestError: another HTTP status but 200 (``code``/``msg`` from Binance's body), or
            a body that is not a JSON object.
        RequestTimeoutError: no answer within ``timeout``.
        ConnectionError: the request could not be sent or the answer was cut.
    """
    url = rest_url.rstrip("/") + DEPTH_PATH
    params: dict[str, Union[str, int]] = {"symbol": symbol.upper(), "limit": limit}
    return get_public(url, params, timeout=timeout, session=session)


def rest_snapshot_fetcher(
    rest_url: str, *, timeout: float = 10.0, session: Optional[requests.Session] = None
) -> SnapshotFetcher:
    """
    A ``fetch_snapshot`` for ``OrderBook`` that calls ``fetch_depth_snapshot(rest_url, ...)``.

    Raises:
        ValueError: ``rest_url`` is not an http(s) URL or ``timeout`` is not > 0.
    """
    if not isinstance(rest_url, str) or not rest_url.startswith(("http://", "https://")):
        raise ValueError(f"rest_url must be an http:// or https:// URL, got {rest_url!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number > 0, got {timeout!r}")

    def fetch(symbol: str, limit: int) -> dict[str, Any]:
        return fetch_depth_snapshot(rest_url, symbol, limit, timeout=timeout, session=session)

    return fetch
