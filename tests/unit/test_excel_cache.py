"""bfsync.excel's TTL cache: expiry on an injected clock, single flight, kept errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from bfsync.excel._cache import TtlCache
from tests.timing import scaled


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` (scaled) passed."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def counting(value: Any = 1) -> tuple[list[int], Any]:
    calls: list[int] = []

    def fetch() -> Any:
        calls.append(1)
        return value

    return calls, fetch


def test_a_fresh_value_is_returned_without_fetching() -> None:
    """Within ttl the second get returns the stored value and fetch does not run again."""
    clock = Clock()
    cache = TtlCache(clock)
    calls, fetch = counting("v")

    first = cache.get("k", 1.0, fetch, wait=1.0)
    clock.now += 0.99
    second = cache.get("k", 1.0, fetch, wait=1.0)

    assert ("v", "v") == (first, second)
    assert 1 == len(calls)
    assert (1, 1) == (cache.fetches, cache.hits)


def test_an_expired_value_is_fetched_again() -> None:
    """At ttl seconds after it was stored, a value is stale and fetch runs again."""
    clock = Clock()
    cache = TtlCache(clock)
    calls, fetch = counting()

    cache.get("k", 1.0, fetch, wait=1.0)
    clock.now += 1.0
    cache.get("k", 1.0, fetch, wait=1.0)

    assert 2 == len(calls)


def test_ttl_is_the_readers_and_zero_always_fetches() -> None:
    """One stored value is fresh for a reader with a long ttl, stale for one with ttl 0."""
    clock = Clock()
    cache = TtlCache(clock)
    calls, fetch = counting()

    cache.get("k", 10.0, fetch, wait=1.0)
    clock.now += 5
    cache.get("k", 10.0, fetch, wait=1.0)
    cache.get("k", 0.0, fetch, wait=1.0)

    assert 2 == len(calls)


def test_keys_are_separate() -> None:
    """Different keys are fetched separately."""
    cache = TtlCache(Clock())

    assert (1, 2) == (
        cache.get(("a",), 1.0, lambda: 1, wait=1.0),
        cache.get(("b",), 1.0, lambda: 2, wait=1.0),
    )


def test_an_error_is_not_kept_unless_asked() -> None:
    """A failing fetch raises to its caller; the next get fetches again."""
    cache = TtlCache(Clock())
    calls: list[int] = []

    def fetch() -> int:
        calls.append(1)
        raise OSError("down")

    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            cache.get("k", 1.0, fetch, wait=1.0)

    assert 2 == len(calls)


def test_a_kept_error_is_raised_again_within_ttl() -> None:
    """An error keep_error accepts is cached: raised again without fetching, until ttl."""
    clock = Clock()
    cache = TtlCache(clock)
    calls: list[int] = []

    def fetch() -> int:
        calls.append(1)
        raise ValueError("bad symbol")

    for _ in range(3):
        with pytest.raises(ValueError, match="bad symbol"):
            cache.get("k", 1.0, fetch, wait=1.0, keep_error=lambda exc: True)
    clock.now += 1.0
    with pytest.raises(ValueError):
        cache.get("k", 1.0, fetch, wait=1.0, keep_error=lambda exc: True)

    assert 2 == len(calls)


def test_a_kept_error_does_not_grow_its_traceback() -> None:
    """Raising the cached error many times does not chain a traceback per raise."""
    cache = TtlCache(Clock())

    def fetch() -> int:
        raise ValueError("x")

    depths = []
    for _ in range(50):
        try:
            cache.get("k", 10.0, fetch, wait=1.0, keep_error=lambda exc: True)
        except ValueError as exc:
            depth, tb = 0, exc.__traceback__
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)

    assert depths[1] == depths[-1]


def test_put_stores_a_value_that_readers_get() -> None:
    """put() (the seam for stream values) is read like a fetched value, with its age."""
    clock = Clock()
    cache = TtlCache(clock)
    cache.put("k", 42, at=clock.now - 0.25)

    assert 42 == cache.get("k", 1.0, lambda: 0, wait=1.0)
    assert 0.25 == cache.age("k")
    assert 0 == cache.fetches
    assert cache.age("missing") is None


def test_discard_and_clear_forget_values() -> None:
    """discard(predicate) forgets matching keys, clear() every key."""
    cache = TtlCache(Clock())
    for key in (("a", 1), ("a", 2), ("b", 1)):
        cache.put(key, 0)

    cache.discard(lambda key: key[0] == "a")
    assert 1 == len(cache)
    cache.clear()
    assert 0 == len(cache)


def test_old_entries_are_dropped_beyond_max_entries() -> None:
    """Over max_entries, entries older than max_age go; recent ones stay."""
    clock = Clock()
    cache = TtlCache(clock, max_entries=3, max_age=10.0)
    for i in range(3):
        cache.put(i, i)
    clock.now += 11
    cache.put("new", 1)

    assert 1 == len(cache)


def test_concurrent_callers_share_one_fetch() -> None:
    """16 threads asking one key while its fetch runs: fetch runs once, all get its value."""
    cache = TtlCache()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def fetch() -> str:
        calls.append(1)
        started.set()
        assert release.wait(scaled(5))
        return "shared"

    with ThreadPoolExecutor(16) as pool:
        leader = pool.submit(cache.get, "k", 0.0, fetch, scaled(5))
        assert started.wait(scaled(5))
        followers = [pool.submit(cache.get, "k", 0.0, fetch, scaled(5)) for _ in range(15)]
        assert wait_until(lambda: cache.joined == 15)
        release.set()
        results = [f.result(scaled(5)) for f in [leader, *followers]]

    assert ["shared"] * 16 == results
    assert 1 == len(calls)
    assert 15 == cache.joined


def test_followers_get_the_leaders_error() -> None:
    """When the shared fetch fails, every waiting caller gets that error."""
    cache = TtlCache()
    started = threading.Event()
    release = threading.Event()

    def fetch() -> str:
        started.set()
        assert release.wait(scaled(5))
        raise OSError("link lost")

    with ThreadPoolExecutor(4) as pool:
        leader = pool.submit(cache.get, "k", 0.0, fetch, scaled(5))
        assert started.wait(scaled(5))
        followers = [pool.submit(cache.get, "k", 0.0, fetch, scaled(5)) for _ in range(3)]
        assert wait_until(lambda: cache.joined == 3)
        release.set()
        errors = [type(f.exception(scaled(5))) for f in [leader, *followers]]

    assert [OSError] * 4 == errors


def test_a_follower_waits_at_most_its_bound() -> None:
    """A follower gives up with TimeoutError after `wait` seconds; the leader is unaffected."""
    cache = TtlCache()
    started = threading.Event()
    release = threading.Event()

    def fetch() -> str:
        started.set()
        assert release.wait(scaled(5))
        return "late"

    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(cache.get, "k", 0.0, fetch, scaled(5))
        assert started.wait(scaled(5))
        with pytest.raises(TimeoutError):
            cache.get("k", 0.0, fetch, wait=0.05)
        release.set()
        assert "late" == leader.result(scaled(5))
