"""UserDataStream against FakeExchange's private route and ws-fapi (real sockets on 127.0.0.1)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from bfsync import BinanceClient, State, WebSocketService
from bfsync.exceptions import (
    AuthenticationError,
    ConnectionError,
    ListenKeyError,
    OrderEndedError,
    OrderWaitTimeoutError,
    RequestTimeoutError,
)
from bfsync.testing import FakeExchange
from bfsync.userstream import GAP, SNAPSHOT, UserDataStream
from tests.timing import scaled

from .conftest import Credentials

USER_THREADS = ("bfsync-io", "bfsync-dispatch", "bfsync-user", "bfsync-connect")


def user_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(USER_THREADS)]


def wait_for(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait (bounded, scaled) until ``condition()`` is true; fail the test otherwise."""
    end = time.monotonic() + scaled(seconds)
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {scaled(seconds)} s")
        time.sleep(0.01)


def take(stream: UserDataStream, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
    """The next ``count`` events of a pull-mode stream (fails the test if fewer come in time)."""
    got: list[dict[str, Any]] = []
    end = time.monotonic() + scaled(seconds)
    while len(got) < count and time.monotonic() < end:
        got.extend(stream.events(timeout=0.05))
    assert len(got) >= count, f"only {len(got)} of {count} events: {[e['e'] for e in got]}"
    return got


def until_event(stream: UserDataStream, kind: str, seconds: float = 5.0) -> list[dict[str, Any]]:
    """Events up to and including the first of type ``kind``."""
    got: list[dict[str, Any]] = []
    end = time.monotonic() + scaled(seconds)
    while time.monotonic() < end:
        for event in stream.events(timeout=0.05):
            got.append(event)
            if event["e"] == kind:
                return got
    raise AssertionError(f"no {kind} within {scaled(seconds)} s: {[e['e'] for e in got]}")


@pytest.fixture
def api_key(credentials: dict[str, Credentials]) -> str:
    return credentials["HMAC"][0]


@pytest.fixture
def make_stream(
    fx: FakeExchange, api_key: str, make_service: Callable[..., WebSocketService]
) -> Iterator[Callable[..., UserDataStream]]:
    """Started user streams of the HMAC key; all closed after the test, leaving no thread."""
    # (make_service is a parameter so that services are closed after the streams.)
    streams: list[UserDataStream] = []

    def make(handler: Any = None, **config: Any) -> UserDataStream:
        settings = {
            "ws_url": fx.url,
            "stream_url": fx.stream_url,
            "request_timeout": scaled(5),
            "connection_timeout": scaled(5),
            "reconnect_delay": 0.05,
            **config,
        }
        stream = BinanceClient().user_stream(api_key, handler, settings)
        streams.append(stream)
        return stream

    yield make
    for stream in streams:
        started = time.monotonic()
        stream.close()
        assert time.monotonic() - started < scaled(8)
    # Delivery threads here; make_service's teardown (after this one) checks the others.
    wait_for(lambda: [t for t in user_threads() if t.startswith("bfsync-user")] == [], 3)


@pytest.fixture
def ws(make_service: Callable[..., WebSocketService]) -> WebSocketService:
    return make_service("HMAC")


def buy(ws: WebSocketService, client_id: str, **kw: Any) -> dict[str, Any]:
    """A BTCUSDT market buy that fills at once."""
    return ws.place_market_order(  # type: ignore[no-any-return]
        symbol="BTCUSDT", side="BUY", quantity="0.010", newClientOrderId=client_id, **kw
    )


def test_start_delivers_events_in_order_with_latest(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """A fill arrives as NEW, TRADE_LITE, TRADE, ACCOUNT_UPDATE; latest() keeps each type."""
    us = make_stream()
    assert (State.CONNECTED, True) == (us.state, us.is_connected)
    assert us.listen_key == next(iter(fx.listen_keys.values()))

    buy(ws, "fill-1")
    events = take(us, 4)

    assert ["ORDER_TRADE_UPDATE", "TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"] == [
        e["e"] for e in events
    ]
    assert ["NEW", "FILLED"] == [events[0]["o"]["X"], events[2]["o"]["X"]]
    assert events[3] == us.latest("ACCOUNT_UPDATE")
    assert us.latest("MARGIN_CALL") is None


def test_the_private_url_names_every_event_in_the_query_form(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream]
) -> None:
    """The default URL is the query form with the explicit event list (one per config)."""
    us = make_stream(events=["ORDER_TRADE_UPDATE", "listenKeyExpired"])
    key = us.listen_key
    assert key is not None

    subscriptions = fx.stream_subscriptions("private")

    assert [[f"{key}@ORDER_TRADE_UPDATE", f"{key}@listenKeyExpired"]] == subscriptions
    assert key not in repr(us)


def test_the_path_form_is_selectable(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """private_url_form="path" connects to /private/ws/<key>; events still arrive."""
    us = make_stream(private_url_form="path")
    assert [[us.listen_key]] == fx.stream_subscriptions("private")

    buy(ws, "path-1")

    assert "FILLED" == us.wait_for_order("path-1", timeout=scaled(5))["o"]["X"]


def test_a_handler_gets_every_event_on_its_own_thread(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """With a message_handler, events go to it in order on a bfsync-user thread."""
    seen: list[tuple[str, str]] = []
    us = make_stream(lambda event: seen.append((event["e"], threading.current_thread().name)))

    buy(ws, "h-1")
    wait_for(lambda: len(seen) == 4)

    assert {f"bfsync-user-{us.number}"} == {name for _, name in seen}
    assert "ACCOUNT_UPDATE" == seen[-1][0]
    with pytest.raises(RuntimeError):
        next(us.events(timeout=0))


def test_the_key_is_pinged_every_keepalive_interval(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream]
) -> None:
    """userDataStream.ping goes out every keepalive_interval; the key stays the same."""
    us = make_stream(keepalive_interval=0.2)
    key = us.listen_key

    fx.wait_for_requests(3, method="userDataStream.ping", timeout=scaled(5))

    assert (key, State.CONNECTED, 0) == (us.listen_key, us.state, us.gaps)


def test_an_expired_key_is_replaced_with_a_gap_signal(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """listenKeyExpired: a new key, a new connection, a gap event; events flow again."""
    states: list[State] = []
    us = make_stream()
    us.on_state_change = states.append
    old = us.listen_key
    assert old is not None

    fx.expire_listen_key(old)
    events = until_event(us, GAP)
    wait_for(lambda: us.state is State.CONNECTED and fx.stream_stats["connections"] == 1)
    buy(ws, "after-expiry")

    expired, gap = events[0], events[-1]
    assert ("listenKeyExpired", old[:4]) == (expired["e"], expired["listenKey"][:4])
    assert old not in str(expired)
    assert (True, "listenKeyExpired") == (gap["listen_key_changed"], gap["reason"])
    assert gap["since"] <= gap["E"]
    assert us.listen_key not in (None, old)
    assert "FILLED" == us.wait_for_order("after-expiry", timeout=scaled(5))["o"]["X"]
    wait_for(lambda: states[-1:] == [State.CONNECTED])
    assert [State.RECONNECTING, State.CONNECTED] == states


def test_a_lost_connection_reconnects_and_signals_the_gap(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """A dropped private connection: reconnected, then bfsync.gap, then events again."""
    us = make_stream()
    key = us.listen_key

    fx.drop_stream_connections("private")
    gap = until_event(us, GAP)[-1]
    buy(ws, "after-drop")

    assert (False, 1, key) == (gap["listen_key_changed"], us.reconnects, us.listen_key)
    assert gap["reason"].startswith("connection lost")
    assert gap == us.latest(GAP)
    assert "ORDER_TRADE_UPDATE" == take(us, 1)[0]["e"]


def test_a_key_refused_at_reconnection_is_replaced(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream]
) -> None:
    """The exchange was down while the key expired: the refused handshake gets a new key."""
    us = make_stream(reconnect_delay=0.3, max_reconnect_attempts=10)
    old = us.listen_key

    fx.stop()
    fx.clock_offset_ms = 61 * 60 * 1000  # the key's 60 minutes are over
    fx.start()
    gap = until_event(us, GAP, 15)[-1]

    assert us.listen_key not in (None, old)
    assert gap["listen_key_changed"]
    wait_for(lambda: us.state is State.CONNECTED)


def test_connections_are_rotated_without_loss_or_duplicates(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """max_connection_age rotates the connection; each event arrives exactly once, no gap."""
    us = make_stream(max_connection_age=0.4)
    ids = [f"rot-{n}" for n in range(24)]
    for client_id in ids:
        buy(ws, client_id)
        time.sleep(0.05)
    wait_for(lambda: us.rotations >= 2)

    fills = [
        e["o"]["c"]
        for e in take(us, len(ids) * 4, 10)
        if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED"
    ]

    assert ids == fills
    assert [] == list(us.events(timeout=0.3))  # nothing twice
    assert 0 == us.gaps


def test_a_silent_connection_is_replaced_and_reported(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """stale_after: a connection that delivers nothing is stale, replaced, and a gap is sent."""
    states: list[State] = []
    us = make_stream(stale_after=0.5)
    us.on_state_change = states.append
    fx.silence_streams(60, route="private")
    buy(ws, "unheard")

    gap = until_event(us, GAP)[-1]
    wait_for(lambda: us.state is State.CONNECTED)
    buy(ws, "heard")

    assert gap["reason"].startswith("no event for 0.5 s")
    assert State.STALE in states
    assert "FILLED" == us.wait_for_order("heard", timeout=scaled(5))["o"]["X"]
    assert [] == us.order_events("unheard")


def test_a_failed_replacement_of_a_silent_connection_is_retried(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """The handshake replacing a silent connection is refused once: it is tried again."""
    us = make_stream(stale_after=0.5)
    fx.silence_streams(60, route="private")
    fx.refuse_handshakes(1)

    gap = until_event(us, GAP)[-1]
    wait_for(lambda: us.state is State.CONNECTED)
    buy(ws, "heard")

    assert 1 == fx.handshakes_refused
    assert gap["reason"].startswith("no event")
    assert "FILLED" == us.wait_for_order("heard", timeout=scaled(5))["o"]["X"]


def test_wait_for_order_sees_a_fill_from_before_the_call(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """An order that filled before wait_for_order is found in the history."""
    us = make_stream()
    buy(ws, "early")
    wait_for(lambda: len(us.order_events("early")) == 2)

    event = us.wait_for_order("early", timeout=0)

    assert ("ORDER_TRADE_UPDATE", "FILLED", "early") == (
        event["e"],
        event["o"]["X"],
        event["o"]["c"],
    )
    assert "NEW" == us.wait_for_order("early", statuses="NEW", timeout=0)["o"]["X"]


def test_wait_for_order_waits_for_a_resting_order_to_fill(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """A resting limit order filled by a price move while the caller waits."""
    us = make_stream()
    ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.010",
        price="49000",
        timeInForce="GTC",
        newClientOrderId="dip",
    )
    timer = threading.Timer(0.2, fx.move_price, ("BTCUSDT", "48900"))
    timer.start()
    try:
        event = us.wait_for_order("dip", timeout=scaled(5))
    finally:
        timer.join()

    assert ("FILLED", "49000.0") == (event["o"]["X"], event["o"]["L"][:7])


def test_wait_for_order_follows_an_algo_order_through_its_trigger(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """A stop order: ALGO_UPDATE NEW, TRIGGERED (with its order id), FINISHED, by clientAlgoId."""
    us = make_stream()
    reply = ws.place_stop_market_order(
        symbol="BTCUSDT", side="BUY", quantity="0.010", stopPrice="51000", newClientOrderId="stop-1"
    )
    assert "NEW" == us.wait_for_order("stop-1", ("NEW",), timeout=scaled(5))["o"]["X"]

    fx.trigger_algo_order(reply["result"]["algoId"])
    triggered = us.wait_for_order("stop-1", ("TRIGGERED",), timeout=scaled(5))
    finished = us.wait_for_order("stop-1", ("FINISHED",), timeout=scaled(5))

    assert ("ALGO_UPDATE", "ALGO_UPDATE") == (triggered["e"], finished["e"])
    assert triggered["o"]["ai"] != ""
    assert "stop-1" == finished["o"]["caid"]


def test_wait_for_order_raises_when_the_order_ends_otherwise(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """A cancelled order ends a wait for FILLED at once with OrderEndedError."""
    us = make_stream()
    ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.010",
        price="49000",
        timeInForce="GTC",
        newClientOrderId="gone",
    )
    ws.cancel_order(symbol="BTCUSDT", origClientOrderId="gone")

    with pytest.raises(OrderEndedError) as caught:
        us.wait_for_order("gone", timeout=scaled(5))

    assert ("gone", "CANCELED") == (caught.value.client_order_id, caught.value.event["o"]["X"])


def test_wait_for_order_times_out_with_the_last_event(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """No awaited status in time: OrderWaitTimeoutError, a RequestTimeoutError, naming the last."""
    us = make_stream()
    ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.010",
        price="49000",
        timeInForce="GTC",
        newClientOrderId="resting",
    )
    wait_for(lambda: us.order_events("resting"))

    with pytest.raises(OrderWaitTimeoutError) as caught:
        us.wait_for_order("resting", timeout=0.1)

    assert isinstance(caught.value, RequestTimeoutError)
    assert caught.value.last_event is not None
    assert ("resting", "NEW", 0) == (
        caught.value.client_order_id,
        caught.value.last_event["o"]["X"],
        caught.value.gaps,
    )


@pytest.mark.parametrize(
    ("statuses", "timeout"), [(("DONE",), 1.0), ((), 1.0), (("FILLED",), -1), (("FILLED",), "1")]
)
def test_wait_for_order_refuses_bad_arguments(
    make_stream: Callable[..., UserDataStream], statuses: Any, timeout: Any
) -> None:
    """An unknown status, no status or a bad timeout is a ValueError naming the parameter."""
    us = make_stream()

    with pytest.raises(ValueError, match=r"statuses|timeout"):
        us.wait_for_order("x", statuses, timeout)


def test_a_bad_api_key_is_refused_at_start(fx: FakeExchange) -> None:
    """An unknown API key: ListenKeyError with code -2015, raised by user_stream; no thread left."""
    config = {"ws_url": fx.url, "stream_url": fx.stream_url, "connection_timeout": scaled(5)}

    with pytest.raises(ListenKeyError) as caught:
        BinanceClient().user_stream("NoSuchKey123", config=config)

    assert -2015 == caught.value.code
    wait_for(lambda: user_threads() == [], 3)


def test_a_revoked_key_fails_the_stream(
    fx: FakeExchange, api_key: str, make_stream: Callable[..., UserDataStream]
) -> None:
    """Revoking the API key: the key cannot be renewed, so the stream fails, waiters wake."""
    states: list[State] = []
    us = make_stream()
    us.on_state_change = states.append
    waiter: list[BaseException] = []

    def wait() -> None:
        try:
            us.wait_for_order("never", timeout=scaled(10))
        except BaseException as exc:
            waiter.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    fx.revoke_key(api_key)
    thread.join(scaled(10))

    assert State.FAILED == us.state
    assert isinstance(us.failure, ListenKeyError)
    # -2015 as a reply, or the 401 with id null that revokes the session's key.
    assert us.failure.code == -2015 or isinstance(us.failure.__cause__, AuthenticationError)
    assert [ConnectionError] == [type(e) for e in waiter]
    assert [] == list(us.events(timeout=1))  # ended, not waiting
    wait_for(lambda: states[-1:] == [State.FAILED])


def test_a_failed_ping_asks_for_the_key_again(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream]
) -> None:
    """A ping refused by a server error: the key is asked again (same key), state recovers."""
    states: list[State] = []
    us = make_stream(keepalive_interval=0.2)
    us.on_state_change = states.append
    key = us.listen_key
    fx.script("userDataStream.ping", error={"code": -1001, "msg": "Internal error."})

    fx.wait_for_requests(2, method="userDataStream.start", timeout=scaled(5))
    wait_for(lambda: states[-1:] == [State.CONNECTED])

    assert [State.RECONNECTING, State.CONNECTED] == states
    assert (key, 0) == (us.listen_key, us.gaps)


def test_a_ping_answered_1125_reconnects_with_a_gap(
    fx: FakeExchange, make_stream: Callable[..., UserDataStream]
) -> None:
    """A ping answered -1125 (key gone): a new key is asked, a new connection, a gap signal."""
    us = make_stream(keepalive_interval=0.2)
    fx.script("userDataStream.ping", error={"code": -1125, "msg": "This listenKey does not exist."})

    gap = until_event(us, GAP)[-1]

    assert gap["reason"].startswith("keepalive failed")
    assert us.rotations >= 1


def test_a_service_stream_reconciles_with_snapshots(fx: FakeExchange, ws: WebSocketService) -> None:
    """reconcile=True: a snapshot after start and after each gap; closing the service ends it."""
    fx.set_position("BTCUSDT", "0.5", "50000")
    us = ws.user_stream(config={"stream_url": fx.stream_url, "reconcile": True})
    try:
        first = take(us, 1)[0]
        fx.drop_stream_connections("private")
        after = until_event(us, SNAPSHOT)
    finally:
        ws.close()

    assert (SNAPSHOT, "start") == (first["e"], first["reason"])
    assert ["BTCUSDT"] == [p["symbol"] for p in first["positions"]]
    assert "USDT" in [b["asset"] for b in first["balances"]]
    assert [GAP, SNAPSHOT] == [e["e"] for e in after[-2:]]
    assert after[-1]["reason"].startswith("connection lost")
    wait_for(lambda: us.state is State.CLOSED)
    us.close()
    wait_for(lambda: user_threads() == [], 3)


def test_a_service_stream_uses_the_service_key_and_thread(
    fx: FakeExchange, ws: WebSocketService
) -> None:
    """ws.user_stream: the key comes over the service's connection; no new I/O thread."""
    before = {t.name for t in threading.enumerate() if t.name.startswith("bfsync-io")}
    with ws.user_stream(config={"stream_url": fx.stream_url}) as us:
        after = {t.name for t in threading.enumerate() if t.name.startswith("bfsync-io")}
        buy(ws, "svc-1")
        event = us.wait_for_order("svc-1", timeout=scaled(5))

    assert before == after
    assert "FILLED" == event["o"]["X"]
    assert [0] == [r["connection"] for r in fx.requests_for("userDataStream.start")]
    assert State.CLOSED == us.state


def test_reconcile_needs_a_service(fx: FakeExchange, api_key: str) -> None:
    """reconcile=True on a stream of a bare API key is refused in the caller's thread."""
    with pytest.raises(ValueError, match="reconcile"):
        UserDataStream(api_key, config={"reconcile": True})


def test_close_is_idempotent_and_restart_works(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """close() twice, then start() again: a running stream with fresh history."""
    us = make_stream()
    us.close()
    us.close()
    assert (State.CLOSED, False) == (us.state, us.is_connected)
    with pytest.raises(ConnectionError):
        us.wait_for_order("x", timeout=1)

    us.start()
    buy(ws, "again")

    assert "FILLED" == us.wait_for_order("again", timeout=scaled(5))["o"]["X"]


def test_the_listen_key_never_reaches_logs_reprs_or_errors(
    fx: FakeExchange,
    make_stream: Callable[..., UserDataStream],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through start, pings, expiry, a refused reconnection and failure: no full key shown."""
    caplog.set_level(logging.DEBUG, logger="bfsync")
    us = make_stream(keepalive_interval=0.2)
    keys = {us.listen_key}
    fx.wait_for_requests(1, method="userDataStream.ping", timeout=scaled(5))
    fx.expire_listen_key(us.listen_key or "")
    until_event(us, GAP)
    keys.add(us.listen_key)
    texts = [repr(us), str(us.latest("listenKeyExpired"))]
    fx.script("userDataStream.start", error={"code": -2015, "msg": "Invalid API-key."}, times=None)
    fx.expire_listen_key(us.listen_key or "")
    wait_for(lambda: us.state is State.FAILED)
    texts += [repr(us), str(us.failure), repr(us.failure)]
    texts += [r.getMessage() for r in caplog.records]

    assert len(keys) == 2 and None not in keys
    assert [] == [t for t in texts for k in keys if k and k in t]


def test_a_testnet_service_streams_from_the_testnet_host(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """BinanceClient(testnet=True).websocket_service gives its user streams the testnet host."""
    client = BinanceClient(testnet=True)
    api_key, secret = credentials["HMAC"]
    config = {"ws_url": fx.url, "rest_url": fx.rest_url, "connection_timeout": scaled(5)}
    with client.websocket_service(api_key, secret, config=config) as ws:
        stream = UserDataStream(None, service=ws)  # built, not started (no testnet here)

    assert client.stream_url == stream.config.stream_url


def test_close_from_inside_the_handler(
    make_stream: Callable[..., UserDataStream], ws: WebSocketService
) -> None:
    """The handler may close its own stream: it returns, and every thread ends."""
    closed = threading.Event()
    holder: list[UserDataStream] = []

    def handler(event: dict[str, Any]) -> None:
        holder[0].close()
        closed.set()

    us = make_stream(handler)
    holder.append(us)
    buy(ws, "close-me")

    assert closed.wait(scaled(5))
    assert State.CLOSED == us.state
    wait_for(lambda: not [t for t in user_threads() if t.startswith("bfsync-user")])


def test_a_failed_snapshot_is_delivered_with_its_error_then_the_held_events(
    fx: FakeExchange, make_service: Callable[..., WebSocketService]
) -> None:
    """reconcile: positions get no reply; the snapshot says so, held events follow it."""
    ws = make_service("HMAC", request_timeout=scaled(1))
    fx.withhold("v2/account.position", times=1)
    with ws.user_stream(config={"stream_url": fx.stream_url, "reconcile": True}) as us:
        buy(ws, "held")
        events = take(us, 5, 10)

    snapshot = events[0]
    assert (SNAPSHOT, "start", None, None) == (
        snapshot["e"],
        snapshot["reason"],
        snapshot["positions"],
        snapshot["balances"],
    )
    assert "v2/account.position" in snapshot["error"]
    assert ["ORDER_TRADE_UPDATE", "TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"] == [
        e["e"] for e in events[1:5]
    ]
