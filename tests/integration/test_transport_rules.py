"""
The ws-fapi session's rules at the edges (issue 9, items 2, 4, 6 and 7): deadlines in any
order, signed requests held behind a re-logon, undecodable replies, cancelled futures,
forked processes and interpreter exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import pytest

from bfsync import State, WebSocketService
from bfsync.exceptions import (
    OrderStatusUnknownError,
    RequestError,
    RequestTimeoutError,
)
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .conftest import Credentials

MakeService = Callable[..., WebSocketService]
MARGIN = scaled(0.75)


def settle_time(future: Future[Any], start: float) -> float:
    """Seconds from ``start`` until ``future`` settled (waits at most 30 s)."""
    future.exception(timeout=30)
    return time.monotonic() - start


def test_deadlines_hold_in_any_order(make_service: MakeService, fx: FakeExchange) -> None:
    """Requests queued during a reconnection expire on time behind a later-deadline re-logon."""
    timeout = scaled(3.0)
    ws = make_service("Ed25519", request_timeout=timeout, reconnect_delay=scaled(1.0))
    ws.login()
    fx.withhold("session.logon")
    fx.withhold("depth")
    fx.refuse_handshakes(1)
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1, timeout=5)
    start = time.monotonic()
    futures = [ws.get_depth("BTCUSDT", wait_for_response=False) for _ in range(3)]

    worst = max(settle_time(f, start) for f in futures)

    assert worst <= timeout + MARGIN
    assert all(isinstance(f.exception(), RequestTimeoutError) for f in futures)


def test_signed_requests_wait_for_the_relogon(make_service: MakeService, fx: FakeExchange) -> None:
    """After a reconnection, signed calls go out only once the re-logon is answered."""
    ws = make_service("Ed25519", request_timeout=scaled(5), reconnect_delay=scaled(0.5))
    ws.login()
    fx.delay("session.logon", scaled(0.5))
    fx.refuse_handshakes(1)
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1 and ws.state == State.RECONNECTING, timeout=5)

    futures = [ws.get_account_balance(wait_for_response=False) for _ in range(3)]

    for future in futures:
        assert 200 == future.result(timeout=scaled(10))["status"]
    sent = fx.requests_for("v2/account.balance")
    assert [1, 1, 1] == [r["connection"] for r in sent]
    assert [False] * 3 == ["signature" in r["params"] for r in sent]


def test_unsigned_requests_do_not_wait_for_the_relogon(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """Market data is not held behind a slow re-logon."""
    ws = make_service("Ed25519", request_timeout=scaled(5), reconnect_delay=scaled(0.5))
    ws.login()
    fx.withhold("session.logon")
    fx.drop_connections()
    fx.wait_for(lambda: ws.reconnects == 1, timeout=5)

    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_undecodable_reply_fails_its_request_at_once(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """A reply with a valid id that is not valid UTF-8 fails that request, not at its timeout."""
    ws = make_service(request_timeout=scaled(10))
    fx.withhold("depth", times=1)
    fx.withhold("order.place", times=1)
    depth = ws.get_depth("BTCUSDT", wait_for_response=False)
    order = ws.place_market_order(
        symbol="BTCUSDT", side="BUY", quantity="0.01", wait_for_response=False
    )
    sent = fx.wait_for_requests(2)
    ids = {r["method"]: r["id"] for r in sent}

    start = time.monotonic()
    for method in ("depth", "order.place"):
        fx.push(b'{"id":%d,"status":200,"result":{"x":"\xff\xfe"}}' % ids[method], text=True)

    with pytest.raises(RequestError, match="not valid UTF-8"):
        depth.result(timeout=5)
    error = order.exception(timeout=5)
    assert isinstance(error, OrderStatusUnknownError)
    assert error.client_order_id is not None
    assert time.monotonic() - start < scaled(5)
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_cancelled_future_is_never_sent(make_service: MakeService, fx: FakeExchange) -> None:
    """A future cancelled (through asyncio.wrap_future) before it is sent drops the request."""
    ws = make_service(request_timeout=scaled(3), reconnect_delay=scaled(0.5))
    fx.refuse_handshakes(1)
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1 and ws.state == State.RECONNECTING, timeout=5)
    future = ws.get_depth("BTCUSDT", wait_for_response=False)

    async def cancel() -> bool:
        wrapped = asyncio.wrap_future(future)
        wrapped.cancel()
        await asyncio.sleep(0)
        return wrapped.cancelled()

    assert asyncio.run(cancel())
    assert future.cancelled()
    fx.wait_for(lambda: ws.state == State.CONNECTED, timeout=10)
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert [] == fx.requests_for("depth")
    assert 0 == ws.pending


def run_python(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter."""
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")
def test_forked_child_fails_fast_and_says_why(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """After os.fork() the child's calls raise ConnectionError at once; connect() heals it."""
    api_key, secret = credentials["HMAC"]
    result = run_python(
        f"""
        import os, sys, time
        from bfsync import WebSocketService
        from bfsync.exceptions import ConnectionError
        ws = WebSocketService({api_key!r}, {secret!r}, config={{"ws_url": {fx.url!r}}})
        ws.connect()
        pid = os.fork()
        if pid == 0:
            start = time.monotonic()
            try:
                ws.get_ticker_price("BTCUSDT")
                code = 3
            except ConnectionError as exc:
                code = 0 if "os.fork()" in str(exc) and time.monotonic() - start < 1 else 4
            try:
                ws.connect()
                code = code or (0 if ws.get_ticker_price("BTCUSDT")["status"] == 200 else 5)
                ws.close()
            except Exception as exc:
                print(repr(exc))
                code = code or 6
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert ws.get_ticker_price("BTCUSDT")["status"] == 200  # the parent is unharmed
        ws.close()
        print(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode")
              else status >> 8)
        """,
        timeout=scaled(30),
    )

    assert 0 == result.returncode, result.stderr
    assert "0" == result.stdout.strip().splitlines()[-1]


def test_interpreter_exit_is_prompt_with_a_stuck_io_thread(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """A script whose I/O thread is stuck, never closed, still exits promptly."""
    api_key, secret = credentials["HMAC"]
    result = run_python(
        f"""
        import threading, time
        from bfsync import WebSocketService
        ws = WebSocketService({api_key!r}, {secret!r}, config={{"ws_url": {fx.url!r}}})
        ws.connect()
        stuck = threading.Event()
        ws._transport.on_rate_limits = lambda counters: (stuck.set(), time.sleep(60))
        ws.get_ticker_price("BTCUSDT", wait_for_response=False)
        stuck.wait(5)
        print(time.monotonic())
        """,
        timeout=scaled(30),
    )
    end = time.monotonic()

    assert 0 == result.returncode, result.stderr
    assert end - float(result.stdout.strip()) < scaled(1.5)


def test_debug_log_shows_the_io_and_never_a_secret(
    make_service: MakeService,
    fx: FakeExchange,
    credentials: dict[str, Credentials],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG lines name each request and its round trip, connections and states; no secret."""
    with caplog.at_level(logging.DEBUG, logger="bfsync"):
        ws = make_service("Ed25519", reconnect_delay=0.05)
        ws.login()
        ws.get_account_balance()
        fx.drop_connections()
        fx.wait_for(lambda: ws.reconnects == 1 and ws.state == State.LOGGED_IN, timeout=5)
        ws.get_ticker_price("BTCUSDT")
        ws.close()

    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    text = "\n".join(message for _, _, message in lines)
    assert re.search(r"v2/account\.balance id=\d+: status 200 in [\d.]+ ms", text)
    assert re.search(r"session\.logon id=\d+ sent on link \d+", text)
    assert ("bfsync.rpc", "INFO", "state: logged_in") in lines
    assert any(name == "bfsync.io" and "reconnected" in message for name, _, message in lines)
    api_key, key_path = credentials["Ed25519"]
    key_text = Path(key_path).read_text()
    for secret in (api_key, key_text.strip().splitlines()[1]):
        assert secret not in text
    assert "signature" not in text
