"""
The streams that cells ask for, on one shared ``MarketService``: leases, arrivals, a worker.

Theory of operation
-------------------
Excel says nothing when a cell is deleted, so a subscription is held by a *lease*: every
cell call that reads a stream renews that stream's lease (``ask``); a stream subscribed on
the first ask (one ``SUBSCRIBE`` for every cell asking the same stream, however many threads
ask at once) is unsubscribed once no cell has asked for it for ``unsubscribe_after`` seconds.
The count behind the reference counting is thus "cells that asked lately", the only count
Excel lets a function know.

Cells never wait for the network here. ``ask`` records the lease and, when the stream is not
subscribed on the current connection (*generation*) of the service, wakes the one worker
thread (``bfsync-excel-live-<name>``). The worker subscribes every stream waiting in one call
(``MarketService`` sends one message per route), and unsubscribes idle ones, each call
bounded by the service's ``request_timeout``. A failure (a refusal, a timeout) is remembered
and shown in the cell; the stream is tried again after ``retry_after`` seconds, or at once
when the service connected anew meanwhile.

The service's ``message_handler`` (``on_event``, on the service's delivery thread, in
arrival order) records when each stream's last event arrived, on this process's monotonic
clock: the age of a value is the time since it arrived here, not the exchange's event time
(clocks differ). A gap notice (a lost connection) forgets the arrival of the streams it
names, so a value from before a gap is never shown as current: its cells wait for the next
event. ``reset(generation)`` forgets everything held when the service connected anew (a new
connection holds no subscriptions).

``Leases`` is the pure part (no thread, no clock of its own) and is tested by plain calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable, Optional

__all__ = ["Leases", "LiveStreams"]

log = logging.getLogger("bfsync.excel")

#: ``current()``: the usable service and its generation, or ``None``.
Current = Callable[[], Optional[tuple[Any, int]]]
#: ``timings()``: ``(unsubscribe_after, retry_after)`` in seconds, read at each use.
Timings = Callable[[], tuple[float, float]]

_JOIN = 8.0  # longest wait for the worker at close (its calls end when the service closes)
_PAUSE = 1.0  # between two looks at a service that is not usable (a lease ran out meanwhile)


class Leases:
    """
    Which streams are wanted, which are held on which generation, which failed: pure.

    ``now`` is given by the caller (seconds, monotonic).
    """

    def __init__(self) -> None:
        self.asked: dict[str, float] = {}  # stream -> last ask
        self.held: dict[str, int] = {}  # stream -> generation whose connection acked it
        self.refused: dict[str, tuple[str, float]] = {}  # stream -> (why, when)

    def ask(self, stream: str, now: float, generation: int) -> bool:
        """Renew ``stream``'s lease; true when it is not held on ``generation`` (work to do)."""
        self.asked[stream] = now
        return self.held.get(stream) != generation

    def to_subscribe(self, now: float, generation: int, retry_after: float) -> list[str]:
        """Streams asked for, not held on ``generation``, not refused within ``retry_after``."""
        return sorted(
            stream
            for stream in self.asked
            if self.held.get(stream) != generation
            and not (stream in self.refused and now - self.refused[stream][1] < retry_after)
        )

    def idle(self, now: float, unsubscribe_after: float) -> list[str]:
        """Streams held whose lease ran out: no ask for ``unsubscribe_after`` seconds."""
        return sorted(
            s for s in self.held if now - self.asked.get(s, -float("inf")) >= unsubscribe_after
        )

    def next_idle(self, unsubscribe_after: float) -> float:
        """When the next held stream's lease runs out (``inf``: none is held)."""
        times = [self.asked.get(s, -float("inf")) for s in self.held]
        return min(times) + unsubscribe_after if times else float("inf")

    def subscribed(self, streams: Iterable[str], generation: int) -> None:
        for stream in streams:
            self.held[stream] = generation
            self.refused.pop(stream, None)

    def failed(self, streams: Iterable[str], why: str, now: float) -> None:
        for stream in streams:
            self.refused[stream] = (why, now)

    def release(self, streams: Iterable[str]) -> None:
        """Forget ``streams`` entirely (unsubscribed for idleness)."""
        for stream in streams:
            self.asked.pop(stream, None)
            self.held.pop(stream, None)
            self.refused.pop(stream, None)

    def reset(self) -> None:
        """A new connection: nothing is held any more (leases stay; they are asked again)."""
        self.held.clear()
        self.refused.clear()


class LiveStreams:
    """
    The live streams of one shared ``MarketService``; thread-safe (see the module docstring).

    Args:
        name: the shared service's name (for the worker's thread name and logs).
        current: the usable service and its generation, or ``None``; never connects.
        timings: ``(unsubscribe_after, retry_after)`` in seconds.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        name: str,
        current: Current,
        timings: Timings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._current = current
        self._timings = timings
        self._clock = clock
        self._cond = threading.Condition()
        self._leases = Leases()
        self._arrived: dict[str, float] = {}
        self._gapped: set[str] = set()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._wake = False
        self.subscribe_calls = 0
        self.unsubscribe_calls = 0

    # Cells (any thread)

    def ask(self, stream: str, generation: int) -> None:
        """A cell reads ``stream``: renew its lease; have it subscribed if it is not."""
        with self._cond:
            if self._leases.ask(stream, self._clock(), generation):
                self._wake = True
                self._start()
                self._cond.notify_all()

    def age(self, stream: str) -> Optional[float]:
        """Seconds since ``stream``'s last event arrived, or ``None`` (none since a gap)."""
        with self._cond:
            arrived = self._arrived.get(stream)
            return None if arrived is None else max(0.0, self._clock() - arrived)

    def gapped(self, stream: str) -> bool:
        """True when a lost connection interrupted ``stream`` and no event came since."""
        with self._cond:
            return stream in self._gapped

    def refused(self, stream: str) -> Optional[str]:
        """Why subscribing ``stream`` failed last, or ``None``."""
        with self._cond:
            found = self._leases.refused.get(stream)
            return None if found is None else found[0]

    def held(self) -> dict[str, int]:
        """The streams held, with the generation that holds them (a copy)."""
        with self._cond:
            return dict(self._leases.held)

    # The service's handler (its delivery thread)

    def on_event(self, event: Any) -> None:
        """Record an arrival, or forget the arrivals a gap notice names. Never raises."""
        if not isinstance(event, dict):
            return  # not an envelope: an event before combined mode was set, nothing held
        stream, data = event.get("stream"), event.get("data")
        if not isinstance(stream, str):
            return
        with self._cond:
            if stream == "bfsync.gap" and isinstance(data, dict):
                for name in data.get("streams") or ():
                    if isinstance(name, str) and self._arrived.pop(name, None) is not None:
                        self._gapped.add(name)
            elif not stream.startswith("bfsync."):
                self._arrived[stream] = self._clock()
                self._gapped.discard(stream)

    # Lifecycle

    def reset(self) -> None:
        """The service connected anew: nothing is held, no value is current."""
        with self._cond:
            self._leases.reset()
            self._arrived.clear()
            self._gapped.clear()
            self._wake = True
            self._cond.notify_all()

    def poke(self) -> None:
        """Have the worker read the timings again (they changed)."""
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        """Ask the worker to end (it ends once its current call returns)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout: float = _JOIN) -> None:
        """Wait for the worker to end (at most ``timeout``); forget every lease."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            if self._thread is thread:
                self._thread = None
            self._stopping = False
            self._leases = Leases()
            self._arrived.clear()
            self._gapped.clear()

    # Private methods

    def _start(self) -> None:
        """Start the worker if none runs and no close is under way (under ``_cond``)."""
        if self._stopping or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(
            target=self._run, name=f"bfsync-excel-live-{self.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._wake:
                    unsubscribe_after, _ = self._timings()
                    wait = self._leases.next_idle(unsubscribe_after) - self._clock()
                    if wait <= 0:
                        break
                    self._cond.wait(min(wait, 60.0))
                if self._stopping:
                    return
                self._wake = False
            try:
                done = self._work()
            except Exception:  # pragma: no cover - _work catches what the service raises
                log.exception("live streams of %r: the worker failed a round", self.name)
                done = False
            if not done:  # no usable service: look again after a pause, or when a cell asks
                with self._cond:
                    if not self._stopping and not self._wake:
                        self._cond.wait(_PAUSE)

    def _work(self) -> bool:
        """
        One round: unsubscribe idle streams, subscribe wanted ones (worker thread). False
        when the service is not usable now (nothing was done).
        """
        current = self._current()
        if current is None:
            return False
        service, generation = current
        unsubscribe_after, retry_after = self._timings()
        with self._cond:
            now = self._clock()
            expired = self._leases.idle(now, unsubscribe_after)
            idle = [s for s in expired if self._leases.held.get(s) == generation]
            self._leases.release(expired)
            for stream in expired:
                self._arrived.pop(stream, None)
                self._gapped.discard(stream)
        if idle:
            self.unsubscribe_calls += 1
            try:
                service.unsubscribe(idle)
            except Exception as exc:
                log.warning("live streams of %r: unsubscribing %s failed: %s", self.name, idle, exc)
        with self._cond:
            wanted = self._leases.to_subscribe(self._clock(), generation, retry_after)
        if not wanted:
            return True
        self.subscribe_calls += 1
        try:
            service.subscribe(wanted)
        except Exception as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("live streams of %r: subscribing %s failed: %s", self.name, wanted, why)
            still = self._current()
            if still is not None and still[1] == generation:  # else: connected anew, try again
                with self._cond:
                    self._leases.failed(wanted, why, self._clock())
            return True
        with self._cond:
            self._leases.subscribed(wanted, generation)
        return True
