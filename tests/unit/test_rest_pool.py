"""The REST thread pool: lazy threads named bfsync-rest-N, idle exit, bounded stop."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from bfsync import _resthttp
from tests.timing import scaled


def _pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("test-rest-")]


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_threads_start_lazily_and_end_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread before the first task; idle threads end; a later task starts a new one."""
    monkeypatch.setattr(_resthttp, "IDLE_SECONDS", 0.05)
    pool = _resthttp._Pool(2, "test-rest")
    assert [] == _pool_threads()
    ran = threading.Event()

    pool.submit(ran.set)

    assert ran.wait(scaled(5))
    assert _wait_until(lambda: not _pool_threads(), scaled(5))
    again = threading.Event()
    pool.submit(again.set)
    assert again.wait(scaled(5))
    pool.stop()
    pool.join(scaled(5))
    assert [] == _pool_threads()


def test_at_most_size_threads_run_and_every_task_runs() -> None:
    """Twenty tasks on a pool of three: three threads at most, every task done."""
    pool = _resthttp._Pool(3, "test-rest")
    done: list[int] = []
    lock = threading.Lock()
    gate = threading.Event()

    def task(i: int) -> None:
        gate.wait(scaled(5))
        with lock:
            done.append(i)

    for i in range(20):
        pool.submit(lambda i=i: task(i))  # type: ignore[misc]
    assert 3 >= len(_pool_threads())
    gate.set()

    assert _wait_until(lambda: len(done) == 20, scaled(10))
    assert sorted(done) == list(range(20))
    pool.stop()
    pool.join(scaled(5))
    assert [] == _pool_threads()


def test_stop_drops_tasks_not_started() -> None:
    """stop() drops queued tasks; the running one finishes; join() is bounded."""
    pool = _resthttp._Pool(1, "test-rest")
    started = threading.Event()
    release = threading.Event()
    ran_late = threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(scaled(5))

    pool.submit(blocker)
    assert started.wait(scaled(5))
    pool.submit(ran_late.set)

    pool.stop()
    release.set()
    pool.join(scaled(5))

    assert not ran_late.is_set()
    assert [] == _pool_threads()
