"""
Closed services and the server clock, against FakeExchange: a done-callback added after
close() leaves no thread behind; an absurd serverTime does not move the clock offset.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import pytest

from bfsync import WebSocketService
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .conftest import client_threads

MakeService = Callable[..., WebSocketService]


def wait_threads_gone(timeout: float) -> list[str]:
    """Poll until no bfsync client thread is alive; what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while client_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return client_threads()


def test_done_callback_after_close_leaves_no_thread(make_service: MakeService) -> None:
    """Four closed services, a callback added to a done future of each: all run, no thread."""
    ran: list[str] = []
    all_ran = threading.Event()

    def callback(future: Any) -> None:
        ran.append(threading.current_thread().name)
        if len(ran) == 4:
            all_ran.set()

    futures = []
    for _ in range(4):
        ws = make_service()
        future = ws.get_ticker_price(symbol="BTCUSDT", wait_for_response=False)
        future.result(scaled(5))
        ws.close()
        futures.append(future)
    for future in futures:
        future.add_done_callback(callback)

    assert all_ran.wait(scaled(5))
    assert ["bfsync-dispatch"] * 4 == ran
    assert [] == wait_threads_gone(scaled(5))


def session_status(server_time: int) -> dict[str, Any]:
    return {
        "apiKey": None,
        "authorizedSince": None,
        "connectedSince": 0,
        "returnRateLimits": True,
        "serverTime": server_time,
    }


def test_absurd_server_time_leaves_the_offset_alone(
    fx: FakeExchange, credentials: dict[str, tuple[str, str]]
) -> None:
    """A session.status with serverTime 5 does not throw the offset (and timestamps) off."""
    fx.script("session.status", result=session_status(5), times=None)
    api_key, secret = credentials["HMAC"]
    with WebSocketService(api_key, secret, config={"ws_url": fx.url}) as ws:
        offset = ws.clock_offset_ms  # connect() measured the clock
        fx.clear_scripts()
        balance = ws.get_account_balance()  # signed: its timestamp must be in the window

        assert 0.0 == offset
        assert 200 == balance["status"]
        assert 1 == len(fx.requests_for("v2/account.balance"))  # no -1021 and re-send


def test_a_server_clock_jump_is_taken_once_confirmed(
    fx: FakeExchange, credentials: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """The server clock moves 2 minutes: one measurement is held, the next one confirms it."""
    api_key, secret = credentials["HMAC"]
    config = {"ws_url": fx.url, "clock_sync_interval": 0.2}
    caplog.set_level(logging.WARNING, logger="bfsync.clock")
    with WebSocketService(api_key, secret, config=config) as ws:
        fx.clock_offset_ms = 120_000
        fx.wait_for(lambda: abs(ws.clock_offset_ms - 120_000) < 1_000, timeout=scaled(10))

        assert 200 == ws.get_account_balance()["status"]
    messages = [r.getMessage() for r in caplog.records if r.name == "bfsync.clock"]
    assert any("held until another one confirms it" in m for m in messages)
    assert any("clock jumped" in m for m in messages)
