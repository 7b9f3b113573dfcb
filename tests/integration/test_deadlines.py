"""
Every deadline holds whatever the I/O thread is doing (issue 9, item 1): a server that stops
reading, a reconnection into a handshake that never answers, a rotation whose new connection
hangs, and an I/O thread that is stuck altogether.

The bounds are "the deadline, plus a scaled margin for a loaded machine": they check that a
promise holds, not that anything is fast.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Optional

import pytest

from bfsync import State, WebSocketService
from bfsync.exceptions import RequestTimeoutError
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .conftest import client_threads

MakeService = Callable[..., WebSocketService]

TIMEOUT = scaled(2.0)  # request_timeout of these tests
MARGIN = scaled(0.75)  # how late a deadline may be met on a loaded machine
BIG = "X" * 1_000_000  # a parameter big enough to fill socket buffers in a few requests


def settle_time(future: Future[Any], start: float) -> float:
    """Seconds from ``start`` until ``future`` settled (waits at most 30 s)."""
    future.exception(timeout=30)
    return time.monotonic() - start


def timed(call: Callable[[], Any]) -> tuple[float, Optional[BaseException]]:
    """Run ``call``; (seconds it took, what it raised)."""
    start = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_server_that_stops_reading(make_service: MakeService, fx: FakeExchange) -> None:
    """With a stalled server and full buffers, calls and futures fail by their deadline."""
    ws = make_service(request_timeout=TIMEOUT, reconnect_delay=0.05)
    fx.stall()
    start = time.monotonic()
    futures = [ws.get_ticker_price(BIG, wait_for_response=False) for _ in range(24)]

    took, error = timed(lambda: ws.get_ticker_price("BTCUSDT"))

    assert isinstance(error, RequestTimeoutError)
    assert took <= TIMEOUT + MARGIN
    worst = max(settle_time(f, start) for f in futures)
    assert worst <= TIMEOUT + MARGIN
    fx.unstall()


def test_reconnection_into_a_hung_handshake(make_service: MakeService, fx: FakeExchange) -> None:
    """A handshake that never answers holds no call or future past its deadline."""
    ws = make_service(request_timeout=TIMEOUT, connection_timeout=10, reconnect_delay=0.05)
    fx.hang_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_hung >= 1, timeout=5)
    start = time.monotonic()
    future = ws.get_depth("BTCUSDT", wait_for_response=False)

    took, error = timed(lambda: ws.get_ticker_price("BTCUSDT"))

    assert isinstance(error, RequestTimeoutError)
    assert "never reached the server" in str(error)
    assert took <= TIMEOUT + MARGIN
    assert settle_time(future, start) <= TIMEOUT + MARGIN
    assert isinstance(future.exception(), RequestTimeoutError)
    assert State.RECONNECTING == ws.state


def test_close_during_a_hung_handshake_is_prompt(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """close() aborts a hanging handshake and leaves no thread behind."""
    ws = make_service(connection_timeout=30, reconnect_delay=0.05)
    fx.hang_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_hung >= 1, timeout=5)

    took, error = timed(ws.close)

    assert error is None
    assert took <= scaled(2.0)
    assert [] == client_threads()


def test_rotation_into_a_hung_handshake_costs_nothing(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """While the new connection of a rotation hangs, the old one serves every call."""
    ws = make_service(request_timeout=TIMEOUT, connection_timeout=3, max_connection_age=0.3)
    fx.hang_handshakes()
    errors: list[BaseException] = []
    worst = 0.0
    end = time.monotonic() + scaled(3.0)
    calls = 0
    while time.monotonic() < end:
        took, error = timed(lambda: ws.get_ticker_price("BTCUSDT"))
        worst = max(worst, took)
        calls += 1
        if error is not None:
            errors.append(error)
        time.sleep(0.05)  # below the fake's 2400 requests a minute

    assert [] == errors
    assert calls > 1
    assert worst <= TIMEOUT
    assert fx.handshakes_hung >= 1
    fx.accept_handshakes()
    fx.wait_for(lambda: ws.rotations >= 1, timeout=scaled(10))
    assert ws.get_ticker_price("BTCUSDT")["status"] == 200


def test_deadlines_hold_when_the_io_thread_is_stuck(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """An I/O thread stuck in a callback holds neither a blocking call nor a future."""
    ws = make_service(request_timeout=TIMEOUT)
    release = threading.Event()
    stuck = threading.Event()

    def block(counters: Any) -> None:
        stuck.set()
        release.wait(30)

    transport = ws._transport
    assert transport is not None
    transport.on_rate_limits = block  # runs on the I/O thread with each reply's rateLimits
    try:
        ws.get_ticker_price("BTCUSDT", wait_for_response=False)
        assert stuck.wait(5)
        start = time.monotonic()
        future = ws.get_depth("BTCUSDT", wait_for_response=False)

        took, error = timed(lambda: ws.get_ticker_price("BTCUSDT"))

        assert isinstance(error, RequestTimeoutError)
        assert took <= TIMEOUT + MARGIN
        assert settle_time(future, start) <= TIMEOUT + MARGIN
        assert isinstance(future.exception(), RequestTimeoutError)
    finally:
        release.set()


def test_a_late_reply_after_the_callers_own_timeout_is_ignored(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """When the caller times a request out itself, the reply that comes later changes nothing."""
    ws = make_service(request_timeout=TIMEOUT)
    release = threading.Event()

    def block(counters: Any) -> None:
        release.wait(30)

    transport = ws._transport
    assert transport is not None
    transport.on_rate_limits = block
    ws.get_ticker_price("BTCUSDT", wait_for_response=False)
    future = ws.get_depth("BTCUSDT", wait_for_response=False)
    with pytest.raises(RequestTimeoutError):
        future.result(timeout=TIMEOUT + MARGIN)
    transport.on_rate_limits = None
    release.set()
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert isinstance(future.exception(), RequestTimeoutError)


def test_no_wake_up_is_lost_under_concurrent_callers(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """Eight threads calling back to back: every call is sent and answered (no lost wake-up)."""
    ws = make_service(request_timeout=scaled(10))
    fx.set_rate_limits(request_weight=10**9)
    errors: list[BaseException] = []

    def loop() -> None:
        for _ in range(150):
            try:
                ws.get_ticker_price("BTCUSDT")
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=loop) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(scaled(60))

    assert not any(worker.is_alive() for worker in workers)
    assert [] == errors
