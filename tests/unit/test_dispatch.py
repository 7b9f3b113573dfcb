"""The dispatcher: callbacks in order on its thread, and no thread left after close()."""

from __future__ import annotations

import threading
import time

from bfsync._dispatch import Dispatcher
from tests.timing import scaled


def dispatcher_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def wait_gone(name: str, timeout: float) -> list[threading.Thread]:
    """Poll until no thread of that name is alive; what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while dispatcher_threads(name) and time.monotonic() < deadline:
        time.sleep(0.01)
    return dispatcher_threads(name)


def test_callbacks_run_in_order_on_the_dispatcher_thread() -> None:
    """Posted callbacks run one by one, in order, on the named thread; close() ends it."""
    dispatcher = Dispatcher("test-dispatch-order")
    seen: list[tuple[int, str]] = []
    done = threading.Event()
    for i in range(50):
        dispatcher.post(lambda i=i: seen.append((i, threading.current_thread().name)))
    dispatcher.post(done.set)

    assert done.wait(scaled(5))
    dispatcher.close(scaled(5))

    assert [(i, "test-dispatch-order") for i in range(50)] == seen
    assert [] == dispatcher_threads("test-dispatch-order")


def test_post_after_close_runs_and_leaves_no_thread() -> None:
    """A callback posted after close() runs, on a thread that then ends by itself."""
    dispatcher = Dispatcher("test-dispatch-late")
    dispatcher.post(lambda: None)
    dispatcher.close(scaled(5))
    ran = threading.Event()
    names: list[str] = []

    for _ in range(4):  # e.g. add_done_callback on done futures of closed services
        dispatcher.post(lambda: names.append(threading.current_thread().name))
    dispatcher.post(ran.set)

    assert ran.wait(scaled(5))
    assert [] == wait_gone("test-dispatch-late", scaled(5))
    assert ["test-dispatch-late"] * 4 == names


def test_close_without_any_post_and_twice() -> None:
    """close() of a dispatcher that never ran anything, and a second close(), are no-ops."""
    dispatcher = Dispatcher("test-dispatch-idle")
    dispatcher.close(1.0)
    dispatcher.close(1.0)

    assert [] == dispatcher_threads("test-dispatch-idle")


def test_late_posts_keep_their_order_across_threads() -> None:
    """Posts racing close() from several threads all run, each thread's in its order."""
    dispatcher = Dispatcher("test-dispatch-race")
    seen: dict[int, list[int]] = {n: [] for n in range(4)}
    start = threading.Barrier(5)

    def poster(n: int) -> None:
        start.wait()
        for i in range(200):
            dispatcher.post(seen[n].append, i)

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    dispatcher.close(scaled(5))
    for thread in threads:
        thread.join(scaled(10))
    flushed = threading.Event()
    dispatcher.post(flushed.set)

    assert flushed.wait(scaled(5))
    assert {n: list(range(200)) for n in range(4)} == seen
    assert [] == wait_gone("test-dispatch-race", scaled(5))
