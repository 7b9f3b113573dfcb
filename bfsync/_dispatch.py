"""
The dispatcher thread: where user callbacks run, so that none ever runs on the I/O thread.

A ``Dispatcher`` is a queue and one daemon thread, started on the first ``post``. Futures
handed to callers are ``DispatchedFuture``s, whose done-callbacks are posted to it instead of
running in whichever thread settled the future.

After ``close()`` the dispatcher still runs what is posted (a done-callback added to a future
of a closed service, a service connected again), but on a thread that ends as soon as the
queue is empty, so that a closed service never leaves a thread behind.
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
        self._thread: Optional[threading.Thread] = None  # cleared by the thread as it ends
        self._lock = threading.Lock()
        self._closed = False  # after close(): threads end once the queue is empty

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; an exception it raises is logged, never propagated."""
        if self._thread is not None and not self._closed:
            self._queue.put((fn, args))  # the usual path: no lock
            if not self._closed:
                return  # the thread ends only after close(): it will take this
            with self._lock:  # close() came meanwhile: the thread may be gone already
                self._start_locked()
            return
        with self._lock:
            self._queue.put((fn, args))
            self._start_locked()

    def _start_locked(self) -> None:
        """Start a thread unless one runs; call with the lock held."""
        if self._thread is None and not self._queue.empty():
            self._thread = threading.Thread(
                target=self._run, args=(self._closed,), name=self._name, daemon=True
            )
            self._thread.start()

    def _run(self, drain: bool) -> None:
        while not drain:
            item = self._queue.get()
            if item is _STOP:
                break
            self._call(item)
        while True:  # closed: run what is left, then end
            with self._lock:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
            if item is not _STOP:
                self._call(item)

    @staticmethod
    def _call(item: Any) -> None:
        fn, args = item
        try:
            fn(*args)
        except Exception:
            log.exception("callback %r raised", fn)

    def close(self, timeout: float) -> None:
        """
        Let the thread end once what is queued has run; wait at most ``timeout`` for it
        (never from its own thread). Idempotent; callbacks posted later still run, on a
        thread that ends when they are done.
        """
        with self._lock:
            self._closed = True
            thread = self._thread
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
