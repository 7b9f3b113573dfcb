"""
Reliability against FakeExchange's faults: reconnection, backoff, queueing, re-logon,
liveness, rotation, unknown order outcomes, rate limits, garbage frames and shutdown.

Every wait is bounded and generous (a loaded 2-core machine is slow, never early).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable

import pytest

from bfsync import State, WebSocketService
from bfsync.exceptions import (
    ConnectionError,
    ConnectionLostError,
    LoginRejectedError,
    OrderConnectionLostError,
    OrderStatusUnknownError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)
from bfsync.testing import FakeExchange

from .conftest import Credentials, client_threads

MakeService = Callable[..., WebSocketService]

# Small config values: the faults play out in well under a second.
FAST: dict[str, Any] = {"request_timeout": 3, "reconnect_delay": 0.05, "max_reconnect_delay": 0.2}
MARKET_ORDER: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01"}
BAN_MSG = "Way too many requests; IP banned until {}."


def now_ms() -> int:
    return int(time.time() * 1000)


def record_states(ws: WebSocketService) -> list[str]:
    """Collect every state the service reports from now on (on the dispatcher thread)."""
    states: list[str] = []
    ws.on_state_change = lambda state: states.append(state.value)
    return states


def wait_threads_gone(timeout: float = 5.0) -> list[str]:
    """Poll until no bfsync client thread is alive; return what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while client_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return client_threads()


def run_python(code: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a leak there cannot spill into other tests)."""
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Reconnection and backoff


@pytest.mark.parametrize("close_frame", [True, False], ids=["close-frame", "tcp-abort"])
def test_reconnects_at_once_after_a_drop(
    make_service: MakeService, fx: FakeExchange, close_frame: bool
) -> None:
    """After a drop the first reconnection attempt is immediate and the next call succeeds."""
    ws = make_service(request_timeout=3, reconnect_delay=2, max_reconnect_delay=2)
    ws.get_ticker_price("BTCUSDT")

    start = time.monotonic()
    fx.drop_connections(close_frame=close_frame)
    fx.wait_for(lambda: ws.reconnects == 1 and ws.state == State.CONNECTED, timeout=5)

    assert time.monotonic() - start < 1.5  # reconnect_delay is 2 s (jitter >= 1.6 s): not waited
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert 2 == fx.total_connections
    assert [0, 1] == [r["connection"] for r in fx.requests_for("ticker.price")]


def test_reconnects_after_refused_handshakes(make_service: MakeService, fx: FakeExchange) -> None:
    """With 3 handshakes refused the service backs off, then reconnects on the 4th."""
    ws = make_service(**FAST, max_reconnect_attempts=5)
    states = record_states(ws)

    fx.refuse_handshakes(3)
    fx.drop_connections()
    fx.wait_for(lambda: ws.state == State.CONNECTED and states[-1:] == ["connected"], timeout=10)

    assert 3 == fx.handshakes_refused
    assert ["reconnecting", "connected"] == states
    assert 1 == ws.reconnects
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_reconnect_delay_is_waited_after_the_first_failed_attempt(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """README: the first attempt is immediate, then reconnect_delay passes before the next."""
    ws = make_service(request_timeout=3, reconnect_delay=1.0, max_reconnect_delay=1.0)

    fx.refuse_handshakes(1)
    start = time.monotonic()
    fx.drop_connections()
    fx.wait_for(lambda: ws.reconnects == 1, timeout=10)

    assert 1 == fx.handshakes_refused
    assert time.monotonic() - start >= 0.7  # 1 s with at most 20 % jitter, minus slack


def test_fails_after_max_reconnect_attempts_then_connect_again(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """Refusals past max_reconnect_attempts fail the service; calls raise at once; connect()."""
    ws = make_service(**FAST, max_reconnect_attempts=3)

    fx.refuse_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: ws.state == State.FAILED, timeout=10)

    start = time.monotonic()
    with pytest.raises(ConnectionError, match="503") as info:
        ws.get_ticker_price("BTCUSDT")
    with pytest.raises(ConnectionError, match="503"):
        ws.get_depth("BTCUSDT", wait_for_response=False)
    assert time.monotonic() - start < 1.0
    assert not isinstance(info.value, ConnectionLostError)
    assert "connect()" in str(info.value)

    fx.accept_handshakes()
    ws.connect()
    assert State.CONNECTED == ws.state
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_max_reconnect_attempts_is_the_number_of_handshakes_tried(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """README: after max_reconnect_attempts (3) failed attempts the service fails: 3 tried."""
    ws = make_service(**FAST, max_reconnect_attempts=3)

    fx.refuse_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: ws.state == State.FAILED, timeout=10)

    assert 3 == fx.handshakes_refused


def test_close_during_backoff_is_prompt(make_service: MakeService, fx: FakeExchange) -> None:
    """close() while the service waits between attempts returns at once, leaving no thread."""
    ws = make_service(request_timeout=3, reconnect_delay=5, max_reconnect_delay=5)
    fx.refuse_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1, timeout=5)

    start = time.monotonic()
    ws.close()

    assert time.monotonic() - start < 3.0
    assert State.CLOSED == ws.state
    assert [] == wait_threads_gone()


# Requests while disconnected


def test_requests_queued_while_reconnecting_are_sent_once_the_link_is_back(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """Calls made while reconnecting wait in the outbox and go out on the new link only."""
    ws = make_service(request_timeout=5, reconnect_delay=1.0, max_reconnect_delay=1.0)
    fx.refuse_handshakes(2)
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1 and ws.state == State.RECONNECTING, timeout=5)

    futures = [ws.get_depth("BTCUSDT", limit=5, wait_for_response=False) for _ in range(5)]
    futures.append(ws.get_account_balance(wait_for_response=False))

    for future in futures:
        assert 200 == future.result(timeout=10)["status"]
    assert 2 == fx.handshakes_refused
    sent = [r for r in fx.requests if r["method"] in ("depth", "v2/account.balance")]
    assert [1] * 6 == [r["connection"] for r in sent]


def test_queued_request_times_out_without_reaching_the_server(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """A request queued while no link is up fails with RequestTimeoutError at its deadline."""
    ws = make_service(request_timeout=0.5, reconnect_delay=5, max_reconnect_delay=5)
    fx.refuse_handshakes()
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1 and ws.state == State.RECONNECTING, timeout=5)

    start = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="never reached the server"):
        ws.get_depth("BTCUSDT")

    assert time.monotonic() - start < 3.0
    assert [] == fx.requests_for("depth")


# Re-logon


def test_relogon_precedes_queued_signed_requests(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """After a drop session.logon goes first on the new link, then the queued signed calls."""
    ws = make_service("Ed25519", request_timeout=5, reconnect_delay=1.0, max_reconnect_delay=1.0)
    ws.login()
    fx.refuse_handshakes(2)
    fx.drop_connections()
    fx.wait_for(lambda: fx.handshakes_refused >= 1 and ws.state == State.RECONNECTING, timeout=5)

    futures = [ws.get_account_balance(wait_for_response=False) for _ in range(3)]

    for future in futures:
        assert 200 == future.result(timeout=10)["status"]
    fx.wait_for(lambda: ws.state == State.LOGGED_IN, timeout=5)
    on_new = [
        r["method"]
        for r in fx.requests
        if r["connection"] == 1 and r["method"] != "session.status"  # a clock measurement
    ]
    assert ["session.logon"] + ["v2/account.balance"] * 3 == on_new
    ws.get_account_balance()
    last = fx.requests_for("v2/account.balance")[-1]
    assert 1 == last["connection"]
    assert "timestamp" in last["params"] and "signature" not in last["params"]


def test_refused_relogon_falls_back_to_signed_requests(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """If the re-logon is refused, signed calls still work, each carrying its signature."""
    ws = make_service("Ed25519", **FAST)
    ws.login()
    fx.script(
        "session.logon", error={"code": -1022, "msg": "Signature for this request is not valid."}
    )

    fx.drop_connections()
    transport = ws._transport
    assert transport is not None
    fx.wait_for(lambda: transport.last_logon_error is not None, timeout=5)
    reply = ws.get_account_balance()

    assert 200 == reply["status"]
    params = fx.requests_for("v2/account.balance")[-1]["params"]
    assert "signature" in params and "apiKey" in params
    assert State.CONNECTED == ws.state
    error = transport.last_logon_error
    assert isinstance(error, LoginRejectedError)
    assert -1022 == error.code


# Liveness


def test_silent_server_is_detected_by_ping(make_service: MakeService, fx: FakeExchange) -> None:
    """A stalled (half-open) link fails a pending call long before request_timeout."""
    ws = make_service(request_timeout=5, reconnect_delay=0.05, ping_interval=0.3)
    ws.get_ticker_price("BTCUSDT")

    assert 1 == fx.stall()
    start = time.monotonic()
    with pytest.raises(ConnectionLostError):
        ws.get_depth("BTCUSDT")

    assert time.monotonic() - start < 3.0
    fx.unstall()
    fx.wait_for(lambda: ws.reconnects >= 1 and ws.state == State.CONNECTED, timeout=5)
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_close_while_the_server_is_silent_is_prompt(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """close() does not wait for a stalled server to answer its close frame."""
    ws = make_service(request_timeout=5)
    fx.withhold("depth")
    future = ws.get_depth("BTCUSDT", wait_for_response=False)
    fx.wait_for_requests(1, method="depth")
    fx.stall()

    start = time.monotonic()
    ws.close()

    assert time.monotonic() - start < 3.0
    with pytest.raises(ConnectionLostError):
        future.result(timeout=1)
    assert [] == wait_threads_gone()


# Rotation and server-side age limits


def call_for(seconds: float, threads: int, call: Callable[[], Any]) -> tuple[int, list[Exception]]:
    """Run ``call`` in a loop from ``threads`` threads for ``seconds``; (calls, errors)."""
    errors: list[Exception] = []
    counts = [0] * threads
    end = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < end:
            try:
                call()
            except Exception as exc:
                errors.append(exc)
            counts[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 15)
    assert not any(w.is_alive() for w in workers)
    return sum(counts), errors


def test_rotation_under_load_loses_nothing(make_service: MakeService, fx: FakeExchange) -> None:
    """Connections older than max_connection_age are replaced while 2 threads keep calling."""
    fx.enforce_rate_limits = False  # thousands of calls a minute
    ws = make_service(request_timeout=3, max_connection_age=0.5)

    calls, errors = call_for(2.0, 2, lambda: ws.get_depth("BTCUSDT", limit=5))

    assert [] == errors
    assert calls > 10
    assert ws.rotations >= 2
    assert fx.total_connections >= 3
    assert 0 == ws.reconnects


def test_rotation_logs_on_again_and_uses_the_session(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """After a rotation session.logon goes first; calls after it carry only a timestamp."""
    fx.enforce_rate_limits = False  # thousands of calls a minute
    ws = make_service("Ed25519", request_timeout=3, max_connection_age=0.5)
    ws.login()

    _calls, errors = call_for(1.6, 1, ws.get_account_balance)

    assert [] == errors
    assert ws.rotations >= 1
    requests = fx.requests
    rotated = sorted({r["connection"] for r in requests} - {0})
    assert rotated
    for index in rotated:
        on_link = [
            r for r in requests if r["connection"] == index and r["method"] != "session.status"
        ]
        assert "session.logon" == on_link[0]["method"]
    session_only = [
        r
        for r in requests
        if r["connection"] > 0
        and r["method"] == "v2/account.balance"
        and "signature" not in r["params"]
    ]
    assert session_only
    assert all("timestamp" in r["params"] and "apiKey" not in r["params"] for r in session_only)


def test_refused_logon_after_rotation_shows_in_state(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """If logging on again after a rotation fails, state says connected, not logged_in."""
    ws = make_service("Ed25519", request_timeout=3, max_connection_age=0.5)
    ws.login()
    fx.script("session.logon", error={"code": -1022, "msg": "bad"}, times=None)

    fx.wait_for(lambda: ws.rotations >= 1 and ws.last_logon_error is not None, timeout=5)

    assert "connected" == ws.state
    assert 200 == ws.get_account_balance()["status"]  # signed one by one instead


def test_rotation_survives_refused_handshakes(make_service: MakeService, fx: FakeExchange) -> None:
    """A rotation whose handshake is refused keeps the old link and tries again later."""
    fx.enforce_rate_limits = False  # thousands of calls a minute
    ws = make_service(request_timeout=3, reconnect_delay=0.1, max_connection_age=0.3)
    fx.refuse_handshakes()

    _calls, errors = call_for(1.0, 1, lambda: ws.get_ticker_price("BTCUSDT"))

    assert [] == errors
    assert fx.handshakes_refused >= 1
    assert 0 == ws.rotations and 0 == ws.reconnects
    fx.accept_handshakes()
    fx.wait_for(lambda: ws.get_ticker_price("BTCUSDT") and ws.rotations >= 1, timeout=5)
    assert 0 == ws.reconnects


def test_idle_connection_is_rotated_on_time(make_service: MakeService, fx: FakeExchange) -> None:
    """max_connection_age is honoured without traffic (not only at the next ping)."""
    ws = make_service(request_timeout=3, max_connection_age=0.5, ping_interval=60)

    fx.wait_for(lambda: ws.rotations >= 1, timeout=5)

    assert fx.total_connections >= 2


@pytest.mark.parametrize("retry_reads", [False, True])
def test_server_closing_old_connections_only_costs_in_flight_calls(
    make_service: MakeService, fx: FakeExchange, retry_reads: bool
) -> None:
    """The server closing links at an age: the service reconnects; only in-flight calls fail."""
    fx.enforce_rate_limits = False  # thousands of calls a minute
    ws = make_service(**FAST, retry_reads=retry_reads)
    fx.close_at_age(0.4)

    calls, errors = call_for(2.0, 1, lambda: ws.get_depth("BTCUSDT", limit=5))

    fx.clear_faults()
    assert calls > 10
    assert fx.connections_aged_out >= 2
    assert ws.reconnects >= 2
    assert all(isinstance(e, ConnectionLostError) for e in errors), errors
    # One caller: at most the one call in flight at each close is lost; with retries none.
    assert len(errors) <= (0 if retry_reads else fx.connections_aged_out)


# Outcome of in-flight requests at a drop


def test_in_flight_order_is_unknown_and_never_resent(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """An order in flight at a drop: OrderConnectionLostError with its id; not sent again."""
    ws = make_service(**FAST)
    fx.withhold("order.place", times=1)
    future = ws.place_market_order(wait_for_response=False, **MARKET_ORDER)
    fx.wait_for_requests(1, method="order.place")

    fx.drop_connections(close_frame=False)

    with pytest.raises(OrderConnectionLostError) as info:
        future.result(timeout=5)
    exc = info.value
    assert isinstance(exc, RequestError)
    assert isinstance(exc, ConnectionError)
    assert isinstance(exc, OrderStatusUnknownError)
    sent = fx.requests_for("order.place")[0]["params"]["newClientOrderId"]
    assert sent == exc.client_order_id
    fx.wait_for(lambda: ws.reconnects == 1, timeout=5)
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert 1 == len(fx.requests_for("order.place"))


def test_retry_reads_resends_an_in_flight_read_but_not_an_order(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """retry_reads=True: a read in flight at a drop goes again on the new link; an order not."""
    ws = make_service(**FAST, retry_reads=True)
    fx.withhold("depth", times=1)
    fx.withhold("order.place", times=1)
    read = ws.get_depth("BTCUSDT", limit=5, wait_for_response=False)
    order = ws.place_market_order(wait_for_response=False, **MARKET_ORDER)
    fx.wait_for_requests(2)

    fx.drop_connections()

    assert 200 == read.result(timeout=5)["status"]
    with pytest.raises(OrderConnectionLostError):
        order.result(timeout=5)
    assert [0, 1] == [r["connection"] for r in fx.requests_for("depth")]
    assert 1 == len(fx.requests_for("order.place"))


def test_retry_reads_resends_only_once(make_service: MakeService, fx: FakeExchange) -> None:
    """A read retried once and lost again fails with ConnectionLostError."""
    ws = make_service(**FAST, retry_reads=True)
    fx.withhold("depth", times=2)
    read = ws.get_depth("BTCUSDT", limit=5, wait_for_response=False)
    fx.wait_for_requests(1, method="depth")
    fx.drop_connections()
    fx.wait_for_requests(2, method="depth")

    fx.drop_connections()

    with pytest.raises(ConnectionLostError):
        read.result(timeout=5)
    fx.wait_for(lambda: ws.state == State.CONNECTED, timeout=5)
    assert 2 == len(fx.requests_for("depth"))


# Rate limits


def test_429_is_rate_limit_error(make_service: MakeService, fx: FakeExchange) -> None:
    """Status 429 raises RateLimitError with Binance's code; the next call is sent."""
    ws = make_service(**FAST)
    fx.script(
        "depth", error={"code": -1003, "msg": "Too many requests; please slow down."}, status=429
    )

    with pytest.raises(RateLimitError) as info:
        ws.get_depth("BTCUSDT")

    assert (-1003, 429) == (info.value.code, info.value.status)
    assert isinstance(info.value, RequestError)
    assert 200 == ws.get_depth("BTCUSDT")["status"]


def test_418_ban_refuses_calls_until_it_ends(make_service: MakeService, fx: FakeExchange) -> None:
    """A 418 bans the IP: later calls raise RateLimitError at once, unsent, until the ban ends."""
    ws = make_service(**FAST)
    banned_until = now_ms() + 2000
    fx.script("depth", error={"code": -1003, "msg": BAN_MSG.format(banned_until)}, status=418)

    with pytest.raises(RateLimitError) as info:
        ws.get_depth("BTCUSDT")
    assert info.value.retry_after is not None
    assert abs(info.value.retry_after - 2.0) < 1.0
    seen = len(fx.requests)

    start = time.monotonic()
    with pytest.raises(RateLimitError) as later:
        ws.get_ticker_price("BTCUSDT")
    with pytest.raises(RateLimitError):
        ws.get_ticker_price("BTCUSDT", wait_for_response=False)
    assert time.monotonic() - start < 1.0
    assert later.value.retry_after is not None and 0 < later.value.retry_after <= 2.0
    assert seen == len(fx.requests)

    time.sleep(max(0.0, (banned_until - now_ms()) / 1000) + 0.3)
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert seen + 1 == len(fx.requests)


def test_418_ban_that_already_ended_bans_nothing(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """A 418 whose 'banned until' time has passed gives retry_after 0 and no ban."""
    ws = make_service(**FAST)
    fx.script("depth", error={"code": -1003, "msg": BAN_MSG.format(now_ms() - 1000)}, status=418)

    with pytest.raises(RateLimitError) as info:
        ws.get_depth("BTCUSDT")

    assert 0 == info.value.retry_after
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]


def test_unreadable_ban_time_still_settles_the_call(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """A 418 whose ban time is absurdly large still fails the call with RateLimitError."""
    ws = make_service(**FAST)
    fx.script("depth", error={"code": -1003, "msg": BAN_MSG.format("1" + "0" * 400)}, status=418)

    future = ws.get_depth("BTCUSDT", wait_for_response=False)

    with pytest.raises(RateLimitError):
        future.result(timeout=5)
    assert ws.state in (State.CONNECTED, State.LOGGED_IN)


# Frames the service must ignore


def test_duplicate_replies_are_ignored(make_service: MakeService, fx: FakeExchange) -> None:
    """Every reply sent twice: each call still gets its own reply, the link is kept."""
    ws = make_service(**FAST)
    fx.duplicate_replies()

    futures = {
        symbol: ws.get_ticker_price(symbol, wait_for_response=False)
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    depth = ws.get_depth("BTCUSDT", limit=5)
    balance = ws.get_account_balance()
    order = ws.place_market_order(**MARKET_ORDER)

    for symbol, future in futures.items():
        assert symbol == future.result(timeout=5)["result"]["symbol"]
    assert 5 == len(depth["result"]["bids"])
    assert isinstance(balance["result"], list)
    assert "BTCUSDT" == order["result"]["symbol"]
    assert fx.replies_duplicated >= 5
    assert 0 == ws.reconnects and State.CONNECTED == ws.state
    assert 1 == len(fx.requests_for("order.place"))


@pytest.mark.parametrize("kind", ["invalid_json", "binary", "unknown_id", "oversized"])
def test_garbage_frames_are_ignored(make_service: MakeService, fx: FakeExchange, kind: str) -> None:
    """An unsolicited bad frame is dropped; the I/O thread lives and the link is kept."""
    ws = make_service(**FAST)
    pending = ws.get_depth("BTCUSDT", limit=5, wait_for_response=False)

    assert 1 == fx.send_garbage(kind)

    assert 5 == len(pending.result(timeout=5)["result"]["bids"])
    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert 200 == ws.get_ticker_price("ETHUSDT")["status"]
    assert State.CONNECTED == ws.state
    assert 0 == ws.reconnects
    assert any(name.startswith("bfsync-io") for name in client_threads())


def test_deeply_nested_frame_is_ignored(make_service: MakeService, fx: FakeExchange) -> None:
    """A frame nested too deeply for json is dropped like any frame that is not an object."""
    ws = make_service(**FAST)

    fx.push("[" * 100_000 + "]" * 100_000)

    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert State.CONNECTED == ws.state
    assert 0 == ws.reconnects


def test_boolean_id_does_not_match_request_one(make_service: MakeService, fx: FakeExchange) -> None:
    """A reply with "id": true is not the reply to request 1 (true == 1 in Python)."""
    ws = make_service(**FAST, sync_clock=False)
    fx.withhold("depth", times=1)
    first = ws.get_depth("BTCUSDT", wait_for_response=False)  # the first request: id 1
    fx.wait_for_requests(1, method="depth")
    assert 1 == fx.requests[0]["id"]

    fx.push('{"id":true,"status":200,"result":{"bogus":true}}')
    ws.get_ticker_price("BTCUSDT")

    assert not first.done()


# Observability


def test_state_changes_over_a_drop_and_reconnect(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """on_state_change sees reconnecting, connected, closed, on the dispatcher thread."""
    ws = make_service(**FAST)
    seen: list[tuple[str, str]] = []
    ws.on_state_change = lambda state: seen.append((state.value, threading.current_thread().name))

    fx.refuse_handshakes(1)
    fx.drop_connections()
    fx.wait_for(lambda: ws.reconnects == 1, timeout=5)
    ws.close()
    fx.wait_for(lambda: seen[-1:] and seen[-1][0] == "closed", timeout=5)

    assert ["reconnecting", "connected", "closed"] == [state for state, _ in seen]
    assert {"bfsync-dispatch"} == {name for _, name in seen}


def test_counters_advance(make_service: MakeService, fx: FakeExchange) -> None:
    """reconnects, pending and last_message_time follow what happens."""
    ws = make_service(**FAST)
    ws.get_ticker_price("BTCUSDT")
    first = ws.last_message_time
    assert first is not None
    time.sleep(0.05)
    ws.get_ticker_price("BTCUSDT")
    second = ws.last_message_time
    assert second is not None and second > first

    fx.withhold("depth")
    futures = [ws.get_depth("BTCUSDT", wait_for_response=False) for _ in range(3)]
    fx.wait_for_requests(3, method="depth")
    assert 3 == ws.pending

    fx.drop_connections()
    for future in futures:
        with pytest.raises(ConnectionLostError):
            future.result(timeout=5)
    fx.wait_for(lambda: ws.reconnects == 1, timeout=5)
    assert 0 == ws.pending
    fx.drop_connections(close_frame=False)
    fx.wait_for(lambda: ws.reconnects == 2, timeout=5)
    assert 2 == ws.reconnects


# Shutdown


def test_close_from_a_state_change_callback(make_service: MakeService, fx: FakeExchange) -> None:
    """close() called by on_state_change (on the dispatcher thread) stops everything."""
    ws = make_service(**FAST)
    closed = threading.Event()

    def on_state(state: State) -> None:
        if state is State.RECONNECTING:
            ws.close()
            closed.set()

    ws.on_state_change = on_state
    fx.refuse_handshakes()
    fx.drop_connections()

    assert closed.wait(5)
    assert State.CLOSED == ws.state
    assert [] == wait_threads_gone()
    with pytest.raises(ConnectionError):
        ws.get_ticker_price("BTCUSDT")


def test_close_twice_settles_everything(make_service: MakeService, fx: FakeExchange) -> None:
    """close() twice: pending futures fail, no thread is left, calls raise ConnectionError."""
    ws = make_service(**FAST)
    fx.withhold("depth")
    future = ws.get_depth("BTCUSDT", wait_for_response=False)
    fx.wait_for_requests(1, method="depth")

    ws.close()
    ws.close()

    with pytest.raises(ConnectionLostError):
        future.result(timeout=1)
    assert [] == wait_threads_gone()
    with pytest.raises(ConnectionError):
        ws.get_ticker_price("BTCUSDT")


def test_dropped_service_stops_its_io_thread(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """A service dropped without close() stops its I/O thread once garbage-collected."""
    api_key, secret = credentials["HMAC"]
    ws = WebSocketService(api_key, secret, config={"ws_url": fx.url, **FAST})
    ws.connect()
    ws.get_ticker_price("BTCUSDT")
    assert client_threads()

    del ws
    gc.collect()

    assert [] == wait_threads_gone()


def test_dropped_service_stops_its_dispatcher_thread(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """README: a service dropped without close() leaves no bfsync thread once collected."""
    api_key, secret = credentials["HMAC"]
    result = run_python(
        f"""
        import gc, threading, time
        from bfsync import WebSocketService
        ws = WebSocketService({api_key!r}, {secret!r}, config={{"ws_url": {fx.url!r}}})
        ws.connect()
        future = ws.get_ticker_price("BTCUSDT", wait_for_response=False)
        done = threading.Event()
        future.add_done_callback(lambda f: done.set())  # starts bfsync-dispatch
        assert done.wait(5)
        del ws, future
        gc.collect()
        deadline = time.monotonic() + 5
        names = ["?"]
        while names and time.monotonic() < deadline:
            names = [t.name for t in threading.enumerate() if t.name.startswith("bfsync")]
            time.sleep(0.05)
        print(names)
        """,
        timeout=30,
    )

    assert 0 == result.returncode, result.stderr
    assert "[]" == result.stdout.strip()


def test_interpreter_exits_without_close(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """A script that never calls close() (a call pending, callbacks used) exits in time, code 0."""
    api_key, secret = credentials["HMAC"]
    fx.withhold("depth")
    start = time.monotonic()
    result = run_python(
        f"""
        from bfsync import WebSocketService
        ws = WebSocketService({api_key!r}, {secret!r}, config={{"ws_url": {fx.url!r}}})
        ws.on_state_change = lambda state: None
        ws.connect()
        assert ws.get_ticker_price("BTCUSDT")["status"] == 200
        future = ws.get_depth("BTCUSDT", wait_for_response=False)
        future.add_done_callback(lambda f: None)
        print("done")
        """,
        timeout=10,
    )

    assert 0 == result.returncode, result.stderr
    assert "done" == result.stdout.strip()
    assert time.monotonic() - start < 10
    assert 1 == len(fx.requests_for("depth"))


# FakeExchange's faults themselves (seen from a plain client)


def test_fake_stall_stops_pongs_and_replies_until_unstall(fx: FakeExchange) -> None:
    """stall(): no pong, no reply, the TCP link stays open; unstall() answers what waited."""
    import websocket

    client = websocket.create_connection(fx.url, timeout=5)
    try:
        fx.wait_for(lambda: fx.connection_count == 1)
        assert 1 == fx.stall()
        client.ping(b"hello")
        client.send('{"id":1,"method":"ticker.price","params":{"symbol":"BTCUSDT"}}')
        client.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            client.recv_data_frame(True)
        assert 1 == fx.stalled_connections and 1 == fx.connection_count
        assert [] == fx.requests

        assert 1 == fx.unstall()
        client.settimeout(5)
        opcode, frame = client.recv_data_frame(True)
        assert (websocket.ABNF.OPCODE_PONG, b"hello") == (opcode, frame.data)
        assert '"id":1' in client.recv()
        assert 0 == fx.stalled_connections
    finally:
        client.close(timeout=1)


def test_fake_timed_stall_ends_by_itself(fx: FakeExchange) -> None:
    """stall(seconds) ends after that long."""
    import websocket

    client = websocket.create_connection(fx.url, timeout=5)
    try:
        fx.wait_for(lambda: fx.connection_count == 1)
        fx.stall(0.3)
        client.send('{"id":7,"method":"ticker.price","params":{"symbol":"BTCUSDT"}}')
        assert '"id":7' in client.recv()
        assert 0 == fx.stalled_connections
    finally:
        client.close(timeout=1)


def test_fake_refuse_handshakes_counts_and_status(fx: FakeExchange) -> None:
    """refuse_handshakes(2, 429): two handshakes get HTTP 429, the third is accepted."""
    import websocket

    fx.refuse_handshakes(2, status=429)
    for _ in range(2):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(fx.url, timeout=5)
        assert 429 == info.value.status_code
    client = websocket.create_connection(fx.url, timeout=5)
    client.close(timeout=1)

    assert 2 == fx.handshakes_refused
    with pytest.raises(ValueError):
        fx.refuse_handshakes(0)
    with pytest.raises(ValueError):
        fx.refuse_handshakes(status=200)


def test_fake_close_at_age_sends_a_close_frame(fx: FakeExchange) -> None:
    """close_at_age(): a close frame with code 1000 once the connection is that old."""
    import websocket

    fx.close_at_age(0.2)
    client = websocket.create_connection(fx.url, timeout=5)
    try:
        opcode, frame = client.recv_data_frame(True)
        assert websocket.ABNF.OPCODE_CLOSE == opcode
        assert 1000 == int.from_bytes(frame.data[:2], "big")
        assert 1 == fx.connections_aged_out
    finally:
        client.shutdown()


def test_fake_duplicate_replies_times_and_method(fx: FakeExchange) -> None:
    """duplicate_replies(method, times) doubles only that many replies to that method."""
    import websocket

    fx.duplicate_replies("ticker.price", times=1)
    client = websocket.create_connection(fx.url, timeout=5)
    try:
        client.send('{"id":1,"method":"ticker.book","params":{"symbol":"BTCUSDT"}}')
        client.send('{"id":2,"method":"ticker.price","params":{"symbol":"BTCUSDT"}}')
        client.send('{"id":3,"method":"ticker.price","params":{"symbol":"BTCUSDT"}}')
        ids = [int(client.recv().split('"id":')[1].split(",")[0]) for _ in range(4)]
        assert [1, 2, 2, 3] == ids
        assert 1 == fx.replies_duplicated
    finally:
        client.close(timeout=1)


def test_fake_send_garbage_kinds(fx: FakeExchange) -> None:
    """send_garbage() frames reach a plain client; an unknown kind is a ValueError."""
    import websocket

    client = websocket.create_connection(fx.url, timeout=5)
    try:
        fx.wait_for(lambda: fx.connection_count == 1)
        for kind in ("invalid_json", "binary", "unknown_id", "oversized"):
            assert 1 == fx.send_garbage(kind)
        frames = [client.recv_data() for _ in range(4)]
        assert websocket.ABNF.OPCODE_BINARY == frames[1][0]
        assert len(frames[3][1]) > 1_500_000
        with pytest.raises(ValueError, match="oversized"):
            fx.send_garbage("null_id_401x")
    finally:
        client.close(timeout=1)


def test_fake_clear_faults_and_bounded_stop_while_stalled() -> None:
    """clear_faults() undoes every fault; stop() with a stalled client is bounded and idempotent."""
    import websocket

    fx = FakeExchange().start()
    client = websocket.create_connection(fx.url, timeout=5)
    try:
        fx.wait_for(lambda: fx.connection_count == 1)
        fx.stall()
        fx.refuse_handshakes()
        fx.close_at_age(30)
        fx.duplicate_replies()
        fx.clear_faults()
        client.send('{"id":1,"method":"ticker.price","params":{"symbol":"BTCUSDT"}}')
        client.settimeout(5)
        assert '"id":1' in client.recv()
        client.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            client.recv()  # not duplicated
        websocket.create_connection(fx.url, timeout=5).close(timeout=1)

        fx.stall()
        start = time.monotonic()
        fx.stop()
        fx.stop()
        assert time.monotonic() - start < 5.0
        assert not fx.running
        assert 0 == fx.stall() and 0 == fx.unstall() and 0 == fx.send_garbage("binary")
    finally:
        fx.stop()
        client.shutdown()
