"""The process-wide deadline watcher (``_deadlines.py``): futures settle by their deadline."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

from bfsync import _deadlines
from tests.timing import scaled


def watcher_alive() -> bool:
    """Whether the bfsync-deadline thread runs."""
    return any(t.name == "bfsync-deadline" for t in threading.enumerate())


def wait_until(condition: Any, timeout: float) -> bool:
    """Poll ``condition`` for at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def test_an_unsettled_future_is_expired_at_its_deadline() -> None:
    """The expire callback runs at the deadline; the thread then ends."""
    future: Future[Any] = Future()
    seen: list[Any] = []

    def expire(request: Any) -> None:
        seen.append(request)
        future.set_exception(TimeoutError("late"))

    start = time.monotonic()
    _deadlines.watch(start + 0.1, future, "request", expire)

    assert isinstance(future.exception(timeout=scaled(5)), TimeoutError)
    assert time.monotonic() - start >= 0.1
    assert ["request"] == seen
    assert wait_until(lambda: not watcher_alive(), scaled(2))


def test_a_settled_future_ends_the_thread_at_once() -> None:
    """With every watched future settled, the thread ends without waiting for a deadline."""
    future: Future[Any] = Future()
    _deadlines.watch(time.monotonic() + 3600, future, None, lambda request: None)
    assert watcher_alive()

    future.set_result(1)

    assert wait_until(lambda: not watcher_alive(), scaled(2))
    assert 0 == _deadlines.watched()


def test_a_done_future_is_never_expired() -> None:
    """A future settled before its deadline is left alone."""
    calls: list[Any] = []
    future: Future[Any] = Future()
    future.set_result(1)

    _deadlines.watch(time.monotonic(), future, None, calls.append)
    time.sleep(0.1)

    assert [] == calls
    assert wait_until(lambda: not watcher_alive(), scaled(2))


def test_settled_entries_are_swept_as_the_heap_grows() -> None:
    """Memory follows the futures in flight: settled ones are dropped when the heap doubles."""
    keep: Future[Any] = Future()
    _deadlines.watch(time.monotonic() + 3600, keep, None, lambda request: None)
    for _ in range(5000):
        future: Future[Any] = Future()
        _deadlines.watch(time.monotonic() + 3600, future, None, lambda request: None)
        future.set_result(None)

    assert _deadlines.watched() <= 2048
    keep.set_result(None)
    assert wait_until(lambda: not watcher_alive(), scaled(2))
