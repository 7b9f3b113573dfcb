"""
A time-to-live cache with single flight, for the functions that cells call.

A recalculation runs every volatile cell again, often many at once on xlwings' thread pool,
and Excel recalculates on every edit. ``TtlCache.get(key, ttl, fetch)`` turns such a storm
into one request per key and ``ttl``: a fresh value is returned as it is; when none is fresh,
the first caller (the *leader*) runs ``fetch`` while every other caller of the same key waits
for that one result (they are *coalesced*), bounded by ``wait`` seconds.

The clock is passed in, so the expiry rules are tested without sleeping. ``put`` stores a
value that arrived by other means (the seam for values from market streams: a stream handler
puts the latest price, cells read it like any other cached value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any, Callable, Generic, Optional, TypeVar

__all__ = ["Flight", "TtlCache"]

T = TypeVar("T")


class Flight(Generic[T]):
    """One fetch in progress: the leader settles it, followers wait on it."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Optional[T] = None
        self._error: Optional[BaseException] = None

    def settle(self, value: Optional[T], error: Optional[BaseException]) -> None:
        self._value = value
        self._error = error
        self._done.set()

    def result(self, timeout: float) -> T:
        """The leader's value, or its exception raised here; ``TimeoutError`` after ``timeout``."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no result within {timeout:g} s")
        if self._error is not None:
            raise self._error.with_traceback(None)
        return self._value  # type: ignore[return-value]


class _Entry:
    __slots__ = ("at", "error", "value")

    def __init__(self, value: Any, error: Optional[BaseException], at: float) -> None:
        self.value = value
        self.error = error
        self.at = at


class TtlCache:
    """
    Values by key, each fresh for the ``ttl`` the reader asks for; thread-safe.

    Args:
        clock: seconds from a monotonic clock (``time.monotonic`` by default).
        max_entries: above this many keys, entries older than ``max_age`` are dropped.
        max_age: see ``max_entries``.

    Counters (read-only, for tests and diagnostics): ``fetches`` (how many times ``fetch``
    ran), ``hits`` (answers from a fresh entry) and ``joined`` (callers that waited for a
    leader's fetch).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
        max_age: float = 300.0,
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._flights: dict[Hashable, Flight[Any]] = {}
        self.fetches = 0
        self.hits = 0
        self.joined = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        key: Hashable,
        ttl: float,
        fetch: Callable[[], T],
        wait: float,
        keep_error: Callable[[BaseException], bool] = lambda exc: False,
    ) -> T:
        """
        The value of ``key`` if it is younger than ``ttl`` seconds, else ``fetch()``'s.

        ``fetch`` runs in the calling thread, never under the cache's lock, and for one key
        in one thread at a time: callers that come while it runs wait at most ``wait``
        seconds for its result (then ``TimeoutError``) and get its value or its exception.
        An exception for which ``keep_error(exc)`` is true is cached like a value (a refused
        symbol is not asked again on every recalculation); others are not.

        ``ttl <= 0`` never answers from the cache, but still coalesces concurrent callers.
        """
        leader = False
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is not None and now - entry.at < ttl:
                self.hits += 1
                if entry.error is not None:
                    # A fresh traceback: raising one object again and again would chain them.
                    raise entry.error.with_traceback(None)
                return entry.value  # type: ignore[no-any-return]
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = Flight()
                self.fetches += 1
                leader = True
            else:
                self.joined += 1
        if not leader:
            return flight.result(wait)  # type: ignore[no-any-return]
        try:
            value = fetch()
        except BaseException as exc:
            with self._lock:
                del self._flights[key]
                if keep_error(exc):
                    self._store(key, _Entry(None, exc, self._clock()))
            flight.settle(None, exc)
            raise
        with self._lock:
            del self._flights[key]
            self._store(key, _Entry(value, None, self._clock()))
        flight.settle(value, None)
        return value

    def put(self, key: Hashable, value: Any, at: Optional[float] = None) -> None:
        """Store ``value`` for ``key`` as of ``at`` (the clock's now by default)."""
        with self._lock:
            self._store(key, _Entry(value, None, self._clock() if at is None else at))

    def age(self, key: Hashable) -> Optional[float]:
        """Seconds since ``key``'s value was stored, or ``None`` when there is none."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else self._clock() - entry.at

    def discard(self, predicate: Callable[[Hashable], bool]) -> None:
        """Forget the values of every key for which ``predicate(key)`` is true."""
        with self._lock:
            for key in [k for k in self._entries if predicate(k)]:
                del self._entries[key]

    def clear(self) -> None:
        """Forget every value (fetches in progress still settle their waiters)."""
        with self._lock:
            self._entries.clear()

    def _store(self, key: Hashable, entry: _Entry) -> None:
        self._entries[key] = entry
        if len(self._entries) > self._max_entries:
            oldest = entry.at - self._max_age
            for k in [k for k, e in self._entries.items() if e.at < oldest]:
                del self._entries[k]
