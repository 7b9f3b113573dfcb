"""
The delivery lane: from an I/O thread to user code, in batches, never stalling the socket.

Theory of operation. The I/O thread decodes every frame one read brought and hands the whole
list to ``DeliveryLane.put(batch)``: one lock and one notify per batch, never per event (handing
events over one by one through a ``queue.Queue`` halves a raw loop's throughput). ``put`` first
records each event in ``latest`` (so ``latest(stream)`` is current however slow the consumer),
then appends the batch to a bounded deque: when it is full the oldest events go, and are
counted in ``dropped``. ``put`` never blocks on the consumer.

Then one of two consumers:

- **handler mode** (``message_handler`` given): a daemon thread ``bfsync-deliver-N`` takes the
  whole deque at once and calls the handler once per event, in arrival order. An exception in
  the handler is logged (without the event: user-stream events can carry a listenKey) and
  counted in ``handler_errors``; delivery goes on. A handler that blocks delays only this lane:
  events then wait (at most ``queue_size`` of them) or are dropped oldest-first.
- **pull mode** (no handler): no thread; ``events(timeout)`` pops from the deque in the caller's
  thread.

Out-of-band signals travel in the same deque, in order with the events: ``signal(kind, **f)``
delivers ``{"e": "bfsync.<kind>", "E": <epoch ms>, **f}`` (in combined mode wrapped as
``{"stream": "bfsync.<kind>", "data": {...}}``, like every other event). So a consumer reading
``event["e"]`` sees them where they happened. The lane emits one itself: after events were
dropped for a slow consumer, the next thing it receives is
``{"e": "bfsync.dropped", "E": ms, "count": <dropped since the last notice>, "total": <all>}``.
Owners add theirs (documented where they are sent), e.g. ``bfsync.gap`` for a stream that lost
events, ``bfsync.state`` for a connection's state, ``bfsync.stale`` for a silent stream,
``bfsync.book`` for an order book going out of or back into sync.

``close()`` is idempotent and callable from any thread, including from inside the handler: it
wakes every waiter, ends ``events()``, discards what is still queued, and waits (bounded) for
the delivery thread, except when called on that thread itself.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

__all__ = ["DEFAULT_QUEUE_SIZE", "DeliveryLane"]

log = logging.getLogger("bfsync.delivery")

#: Events a lane holds for a slow consumer before it drops the oldest.
DEFAULT_QUEUE_SIZE = 10_000

_SHAPES = ("envelopes", "pairs", "payloads")
_lane_numbers = itertools.count(1)
_LOGGED_ERRORS = 10  # the first handler errors are logged in full; after them one in 1000


class DeliveryLane:
    """
    A bounded, batched hand-off from one producer thread to a handler thread or ``events()``.

    Args:
        message_handler: called once per event on the lane's own thread; None for pull mode.
        queue_size: events held for a slow consumer (>= 1); beyond it the oldest are dropped.
        shape: what ``put`` is given. ``"envelopes"``: combined-mode ``{"stream", "data"}``
            dicts as decoded; ``"pairs"``: ``(stream, payload)`` tuples. For both, ``latest``
            is keyed by stream name and holds the payload, and consumers get the payload, or
            ``{"stream", "data"}`` when ``combined`` is true. ``"payloads"``: plain payloads
            (a user stream), keyed in ``latest`` by their ``latest_key`` field.
        combined: deliver ``{"stream", "data"}`` envelopes rather than payloads (not for
            ``"payloads"``); may be changed at any time, it applies from the next batch.
        latest_key: see ``shape``.
        name: the delivery thread's name (``bfsync-deliver-N`` by default).

    Raises:
        ValueError: ``queue_size`` is not an int >= 1, ``shape`` is unknown, or
            ``message_handler`` is not callable.
    """

    def __init__(
        self,
        message_handler: Optional[Callable[[Any], object]] = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        shape: str = "envelopes",
        combined: bool = False,
        latest_key: str = "e",
        name: Optional[str] = None,
    ) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        if message_handler is not None and not callable(message_handler):
            raise ValueError(f"message_handler must be callable or None, got {message_handler!r}")
        self.combined = combined
        self._handler = message_handler
        self._size = queue_size
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {', '.join(_SHAPES)}, got {shape!r}")
        self._shape = shape
        self._latest_key = latest_key
        self._latest: dict[Any, Any] = {}
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Any] = deque(maxlen=queue_size)
        self._closed = False
        self._received = 0
        self._delivered = 0
        self._dropped = 0
        self._unreported = 0
        self._malformed = 0
        self._handler_errors = 0
        self._thread: Optional[threading.Thread] = None
        if message_handler is not None:
            self._thread = threading.Thread(
                target=self._run,
                args=(message_handler,),
                name=name or f"bfsync-deliver-{next(_lane_numbers)}",
                daemon=True,
            )
            self._thread.start()

    def __repr__(self) -> str:
        mode = "handler" if self._handler is not None else "pull"
        state = "closed" if self._closed else "open"
        return f"<DeliveryLane {mode} {state} pending={len(self._queue)} dropped={self._dropped}>"

    # Producer side (the I/O thread)

    def put(self, batch: Sequence[Any]) -> None:
        """
        Hand over every event one read decoded, in arrival order; never blocks on the consumer.

        Updates ``latest`` first, then queues the batch (dropping the oldest beyond
        ``queue_size``). An item of the wrong shape is counted in ``malformed`` and skipped.
        Ignored once the lane is closed.
        """
        if not batch or self._closed:
            return
        latest = self._latest
        shape = self._shape
        try:
            if shape == "envelopes":
                for envelope in batch:
                    latest[envelope["stream"]] = envelope["data"]
                items = batch if self.combined else [envelope["data"] for envelope in batch]
            elif shape == "pairs":
                for stream, payload in batch:
                    latest[stream] = payload
                if self.combined:
                    items = [{"stream": stream, "data": payload} for stream, payload in batch]
                else:
                    items = [payload for _, payload in batch]
            else:
                key = self._latest_key
                for payload in batch:
                    latest[payload.get(key)] = payload
                items = batch
        except (KeyError, TypeError, AttributeError, ValueError):
            items = self._sort_out(batch)
        self._enqueue(items)

    def signal(self, kind: str, **fields: Any) -> dict[str, Any]:
        """
        Queue ``{"e": "bfsync.<kind>", "E": <epoch ms>, **fields}`` in order with the events.

        Callable from any thread; ignored (but still returned) once the lane is closed.

        Returns:
            the notice as queued (without the combined-mode envelope).
        """
        notice = {"e": f"bfsync.{kind}", "E": int(time.time() * 1000), **fields}
        self._enqueue([self._wrap(notice)])
        return notice

    # Consumer side

    def latest(self, key: Any) -> Optional[Any]:
        """The last payload received for ``key`` (a stream name or an event type), or None."""
        return self._latest.get(key)

    def events(self, timeout: Optional[float] = None) -> Iterator[Any]:
        """
        Yield events in arrival order until the lane is closed, or ``timeout`` seconds pass
        with no event (None: no limit; 0: only what is queued now).

        Raises:
            RuntimeError: the lane has a ``message_handler`` (its events go there).
            ValueError: a negative ``timeout``.
        """
        if self._handler is not None:
            raise RuntimeError("events() is for a service without a message_handler")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")
        return self._pull(timeout)

    def close(self, timeout: float = 1.0) -> None:
        """
        Stop delivering: ends ``events()``, discards what is queued, stops the thread.

        Idempotent, from any thread. Waits at most ``timeout`` seconds for a handler call in
        progress (not at all when called from the handler itself); the thread ends as soon as
        that call returns.
        """
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # Counters

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def pending(self) -> int:
        """Events waiting for the consumer."""
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Events dropped oldest-first because the consumer fell ``queue_size`` behind."""
        return self._dropped

    @property
    def handler_errors(self) -> int:
        """Exceptions the ``message_handler`` raised (each logged or counted, none fatal)."""
        return self._handler_errors

    def stats(self) -> dict[str, int]:
        """Counters: received, delivered, dropped, pending, malformed, handler_errors."""
        return {
            "received": self._received,
            "delivered": self._delivered,
            "dropped": self._dropped,
            "pending": len(self._queue),
            "malformed": self._malformed,
            "handler_errors": self._handler_errors,
        }

    # Private methods

    def _wrap(self, notice: dict[str, Any]) -> Any:
        if self.combined and self._shape != "payloads":
            return {"stream": notice["e"], "data": notice}
        return notice

    def _sort_out(self, batch: Sequence[Any]) -> list[Any]:
        """The slow path of ``put``: keep the well-formed items, count the others."""
        latest, items, shape = self._latest, [], self._shape
        for item in batch:
            try:
                if shape == "payloads":
                    latest[item.get(self._latest_key)] = item
                    items.append(item)
                    continue
                if shape == "envelopes":
                    stream, payload = item["stream"], item["data"]
                else:
                    stream, payload = item
                latest[stream] = payload
                items.append({"stream": stream, "data": payload} if self.combined else payload)
            except (KeyError, TypeError, AttributeError, ValueError):
                self._malformed += 1
        return items

    def _enqueue(self, items: Sequence[Any]) -> None:
        if not items:
            return
        with self._cond:
            if self._closed:
                return
            queue = self._queue
            self._received += len(items)
            overflow = len(queue) + len(items) - self._size
            if overflow > 0:
                self._dropped += overflow
                self._unreported += overflow
            queue.extend(items)
            self._cond.notify()

    def _dropped_notice(self, count: int) -> Any:
        notice = {
            "e": "bfsync.dropped",
            "E": int(time.time() * 1000),
            "count": count,
            "total": self._dropped,
        }
        return self._wrap(notice)

    def _pull(self, timeout: Optional[float]) -> Iterator[Any]:
        cond = self._cond
        while True:
            with cond:
                queue = self._queue
                if not queue:
                    if self._closed or timeout == 0:
                        return
                    deadline = None if timeout is None else time.monotonic() + timeout
                    while not queue and not self._closed:
                        if deadline is None:
                            cond.wait()
                        else:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0:
                                return
                            cond.wait(remaining)
                    if self._closed:
                        return
                    queue = self._queue
                if self._unreported:
                    item = self._dropped_notice(self._unreported)
                    self._unreported = 0
                else:
                    item = queue.popleft()
                    self._delivered += 1
            yield item

    def _run(self, handler: Callable[[Any], object]) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._queue and not self._closed:
                    cond.wait()
                if self._closed:
                    return
                items = self._queue
                self._queue = deque(maxlen=self._size)
                unreported, self._unreported = self._unreported, 0
            if unreported:
                try:
                    handler(self._dropped_notice(unreported))
                except Exception:
                    self._handler_error()
            delivered = 0
            for item in items:
                if self._closed:
                    break
                try:
                    handler(item)
                except Exception:
                    self._handler_error()
                delivered += 1
            self._delivered += delivered
            del items  # do not keep a handled batch (up to queue_size events) alive while idle

    def _handler_error(self) -> None:
        self._handler_errors += 1
        count = self._handler_errors
        if count <= _LOGGED_ERRORS or count % 1000 == 0:
            log.exception("message_handler raised (%d errors so far); delivery goes on", count)
