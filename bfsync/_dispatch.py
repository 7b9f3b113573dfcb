"""
The dispatcher thread: where user callbacks run, so that none ever runs on the I/O thread.

A ``Dispatcher`` is a queue and one daemon thread, started on the first ``post``. Futures
handed to callers are ``DispatchedFuture``s, whose done-callbacks are posted to it instead of
running in whichever thread settled the future.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, TypeVar

__all__ = ["DispatchedFuture", "Dispatcher"]

log = logging.getLogger("bfsync.dispatch")

_STOP = object()
_T = TypeVar("_T")


class Dispatcher:
    """Runs callbacks one at a time, in order, on its own thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; an exception it raises is logged, never propagated."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                log.exception("callback %r raised", fn)

    def close(self, timeout: float) -> None:
        """Stop after what is queued; wait at most ``timeout`` (never from its own thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout)


class DispatchedFuture(Future[_T]):
    """A ``concurrent.futures.Future`` whose done-callbacks run on the dispatcher thread."""

    _dispatcher: Dispatcher

    def add_done_callback(self, fn: Callable[[Future[_T]], object]) -> None:
        dispatcher = self._dispatcher
        super().add_done_callback(lambda future: dispatcher.post(fn, future))
