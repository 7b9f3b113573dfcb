"""
The process-wide deadline watcher: a future handed to a caller settles by its deadline even
when the I/O thread that owns it is stuck.

The I/O thread expires requests itself, to the millisecond, whenever its loop turns. This
watcher is the guard for when it does not (a bug, a signer that hangs, a stopped process):
one daemon thread, ``bfsync-deadline``, for every service in the process, started with the
first future and ended as soon as no watched future is left unsettled. It sleeps until the
earliest deadline (waking at most every ``_QUANTUM`` seconds while deadlines are due in
bursts), then calls each due request's ``expire`` callback, which settles the future
race-safely (``Transport.expire``): if the I/O thread settled it meanwhile, nothing happens.

Blocking calls do not use it: the caller's own thread waits exactly until the deadline and
then settles the future itself (``service.py``).

Settled futures are dropped from the heap lazily, and all at once whenever the heap has
doubled since the last sweep, so memory follows the futures in flight, not the rate.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Optional

__all__ = ["watch", "sweep", "watched"]

log = logging.getLogger("bfsync.deadlines")

_QUANTUM = 0.02  # the watcher wakes at most this often; deadlines may be met this late
_MIN_SWEEP = 1024

Expire = Callable[[Any], None]
_Entry = tuple[float, int, Future[Any], Any, Expire]

_cond = threading.Condition(threading.Lock())
_heap: list[_Entry] = []
_seq = itertools.count()
_sweep_at = _MIN_SWEEP
_thread: Optional[threading.Thread] = None
_live = 0  # watched futures not yet settled


def _after_fork_in_child() -> None:
    """A forked child has no watcher thread and none of the parent's futures to watch."""
    global _cond, _thread, _sweep_at, _live
    _cond = threading.Condition(threading.Lock())
    _heap.clear()
    _thread = None
    _live = 0
    _sweep_at = _MIN_SWEEP


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def watch(deadline: float, future: Future[Any], request: Any, expire: Expire) -> None:
    """Call ``expire(request)`` at ``deadline`` (``time.monotonic()``) unless ``future`` is done."""
    global _thread, _live
    with _cond:
        if len(_heap) >= _sweep_at:
            _sweep_locked()
        earliest = _heap[0][0] if _heap else None
        heapq.heappush(_heap, (deadline, next(_seq), future, request, expire))
        _live += 1
        if _thread is None:
            _thread = threading.Thread(target=_run, name="bfsync-deadline", daemon=True)
            _thread.start()
        elif earliest is None or deadline < earliest:
            _cond.notify()
    # The base class's method: the callback runs at once in the settling thread (for a
    # DispatchedFuture, not on its dispatcher). Outside the lock: a done future calls it now.
    Future.add_done_callback(future, _settled)


def _settled(future: Future[Any]) -> None:
    """A watched future settled; with none left, the thread ends now, not at a deadline."""
    global _live
    with _cond:
        _live -= 1
        if _live <= 0:
            _live = 0
            _heap.clear()
            _cond.notify()


def sweep(join: float = 0.0) -> None:
    """
    Drop settled futures now (a service calls this when it closes); the thread ends when
    nothing is left. ``join``: wait that long for it to end.
    """
    with _cond:
        _sweep_locked()
        thread = _thread
        _cond.notify()
    if join and thread is not None and not _heap and thread is not threading.current_thread():
        thread.join(join)


def watched() -> int:
    """How many entries the watcher holds (settled ones included until the next sweep)."""
    with _cond:
        return len(_heap)


def _sweep_locked() -> None:
    global _sweep_at
    live = [entry for entry in _heap if not entry[2].done()]
    heapq.heapify(live)
    _heap[:] = live
    _sweep_at = max(_MIN_SWEEP, 2 * len(live))


def _run() -> None:
    global _thread
    while True:
        due: list[_Entry] = []
        with _cond:
            while _heap and _heap[0][2].done():
                heapq.heappop(_heap)
            if not _heap:
                _thread = None
                return
            now = time.monotonic()
            wait = _heap[0][0] - now
            if wait > 0:
                _cond.wait(max(wait, _QUANTUM))
                continue
            while _heap and _heap[0][0] <= now:
                due.append(heapq.heappop(_heap))
        for _deadline, _n, future, request, expire in due:
            if future.done():
                continue
            try:
                expire(request)
            except Exception:  # never let one service's bug stop the others' deadlines
                log.exception("expiring a request failed")
