"""bfsync.excel's live cells against FakeExchange: one market service, leases, markers."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import bfsync.excel as bx
from bfsync.excel import _live, _livecells, _shared
from bfsync.market import MarketService
from bfsync.testing import FakeExchange
from bfsync.transport import State
from tests.timing import scaled

from .test_excel import bfsync_threads, reset, urls, wait_until

SYMBOL = "BTCUSDT"
PRICE = "btcusdt@markPrice@1s"
BOOK = "btcusdt@bookTicker"


@pytest.fixture
def live(fx: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeExchange]:
    """The default names configured for the fake, without keys (streams need none)."""
    monkeypatch.delenv(bx.API_KEY_ENV, raising=False)
    monkeypatch.delenv(bx.PRIVATE_KEY_ENV, raising=False)
    reset()
    bx.configure(config=urls(fx))
    yield fx
    reset()
    assert [] == bfsync_threads()


def price_shows(fx: FakeExchange, mark: str, **kwargs: Any) -> bool:
    """Publish ``mark`` until live_price shows it (bounded); true when it did."""

    def shown() -> bool:
        fx.publish_mark_price(SYMBOL, mark_price=mark)
        return float(mark) == bx.live_price(SYMBOL, **kwargs)

    return wait_until(shown)


def market_subscriptions(fx: FakeExchange) -> list[list[str]]:
    """The subscriptions of each open /market connection."""
    return fx.stream_subscriptions("market")


class TestSharing:
    """One market service and one subscription per stream, however many cells ask."""

    def test_sixteen_threads_one_service_one_connection_per_route(self, live: FakeExchange) -> None:
        """16 threads asking price and book at once: one service, 2 connections, 2 SUBSCRIBEs."""
        barrier = threading.Barrier(16)

        def cell(_: int) -> tuple[Any, Any, int]:
            barrier.wait(scaled(5))
            return bx.live_price(SYMBOL), bx.live_book(SYMBOL), id(bx.market())

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(cell, range(16)))

        assert {f"#BF! waiting for {PRICE}"} == {r[0] for r in results}
        assert {f"#BF! waiting for {BOOK}"} == {r[1] for r in results}
        assert 1 == len({r[2] for r in results})
        assert wait_until(lambda: [[PRICE]] == market_subscriptions(live))
        assert wait_until(lambda: [[BOOK]] == live.stream_subscriptions("public"))
        stats = live.stream_stats
        assert (2, 2) == (stats["connections_total"], stats["subscribe_requests"])
        assert 1 == _shared.registry().markets["default"].generation

    def test_values_follow_publishes(self, live: FakeExchange) -> None:
        """Each published mark price and book ticker shows in the cell, with a small age."""
        assert price_shows(live, "50100.5")
        assert price_shows(live, "50200.25")
        [[value, age]] = bx.live_price(SYMBOL, True)
        assert 50200.25 == value
        assert 0 <= age < scaled(5)

        def book_shows() -> bool:
            live.publish_book_ticker(SYMBOL, bid="49999.9", bid_qty="2", ask="50000.1", ask_qty="3")
            return isinstance(bx.live_book(SYMBOL), list)

        assert wait_until(book_shows)
        header, row = bx.live_book(SYMBOL)
        assert list(bx.LIVE_BOOK_COLUMNS) == header
        assert [49999.9, 2.0, 50000.1, 3.0] == row[:4]
        assert 49999.9 == bx.live_book(SYMBOL, "bid")
        assert 3.0 == bx.live_book(SYMBOL, "askQty")
        assert 0 <= bx.live_book(SYMBOL, "age") < scaled(5)

    def test_the_market_service_is_what_market_returns(self, live: FakeExchange) -> None:
        """market() is the service the cells read; a second name is a second service."""
        bx.live_price(SYMBOL)
        service = bx.market()

        assert isinstance(service, MarketService)
        assert service is bx.market("default")
        bx.configure(config=urls(live), name="other")
        assert service is not bx.market("other")
        assert 2 == live.stream_stats["connections_total"]


class TestMarkers:
    """A marker instead of an old number."""

    def test_stale_after_silence_then_fresh_again(self, live: FakeExchange) -> None:
        """A silenced feed turns the cell into '#BF! stale N s'; the next event ends it."""
        limit = scaled(0.5)
        assert price_shows(live, "50100.5", max_age=limit)

        live.silence_streams(scaled(30), route="market")
        live.publish_mark_price(SYMBOL, mark_price="50999")  # never arrives
        stale = lambda: str(bx.live_price(SYMBOL, max_age=limit)).startswith("#BF! stale")  # noqa: E731
        assert wait_until(stale)
        assert 50100.5 == bx.live_price(SYMBOL)  # the default max_age (10 s) is not reached

        live.unsilence_streams()
        assert price_shows(live, "50300", max_age=limit)

    def test_the_option_max_age_applies_to_every_cell(self, live: FakeExchange) -> None:
        """set_options(max_age) is the threshold of cells that give none."""
        assert price_shows(live, "50100.5")

        bx.set_options(max_age=scaled(0.2))

        assert wait_until(lambda: str(bx.live_price(SYMBOL)).startswith("#BF! stale"))

    def test_disconnected_then_back_after_a_dropped_route(self, live: FakeExchange) -> None:
        """The /market route dropped and refused: '#BF! disconnected'; back: values again."""
        bx.configure(config=urls(live, reconnect_delay=scaled(0.5)))
        assert price_shows(live, "50100.5")
        service = bx.market()

        live.refuse_handshakes()
        assert 1 == live.drop_stream_connections("market")
        assert wait_until(lambda: service.state is State.RECONNECTING)
        down = bx.live_price(SYMBOL)
        assert down.startswith("#BF! disconnected: reconnecting"), down

        live.accept_handshakes()
        assert price_shows(live, "50200")
        assert service is bx.market()
        assert [[PRICE]] == market_subscriptions(live)

    def test_a_long_reconnection_is_cut_short_and_resubscribed(self, live: FakeExchange) -> None:
        """In a long backoff: after reconnect_interval a cell connects anew and resubscribes."""
        bx.configure(config=urls(live, reconnect_delay=600))
        bx.set_options(reconnect_interval=scaled(0.3))
        assert price_shows(live, "50100.5")
        service = bx.market()

        live.refuse_handshakes()
        live.drop_stream_connections("market")
        assert wait_until(lambda: live.handshakes_refused == 1)  # the next attempt: minutes away
        assert bx.live_price(SYMBOL).startswith("#BF! disconnected: reconnecting")

        live.accept_handshakes()
        time.sleep(scaled(0.3))
        assert price_shows(live, "50200")
        assert service is bx.market()
        assert 2 == _shared.registry().markets["default"].generation
        assert [[PRICE]] == market_subscriptions(live)

    def test_a_value_from_before_a_gap_is_not_shown(self, live: FakeExchange) -> None:
        """After a reconnection the cell waits for the next event instead of the old one."""
        assert price_shows(live, "50100.5")
        service = bx.market()

        live.drop_stream_connections("market")
        assert wait_until(lambda: service.reconnects == 1 and service.state is State.CONNECTED)
        assert wait_until(lambda: [[PRICE]] == market_subscriptions(live))

        assert f"#BF! waiting for {PRICE} (reconnected)" == bx.live_price(SYMBOL)
        assert price_shows(live, "50200")

    def test_a_failed_service_is_connected_anew_and_resubscribed(self, live: FakeExchange) -> None:
        """A market service that gave up is connected again by the next cell, streams too."""
        bx.configure(config=urls(live, max_reconnect_attempts=1))
        bx.set_options(reconnect_interval=scaled(0.3))
        assert price_shows(live, "50100.5")
        service = bx.market()

        live.refuse_handshakes()
        live.drop_stream_connections()
        assert wait_until(lambda: service.state is State.FAILED)
        assert bx.live_price(SYMBOL).startswith("#BF! disconnected: ")

        live.accept_handshakes()
        assert price_shows(live, "50200")
        assert service is bx.market()
        assert 2 == _shared.registry().markets["default"].generation

    def test_an_unreachable_stream_server_is_a_disconnected_marker(
        self, live: FakeExchange
    ) -> None:
        """No stream server at all: the first cell says so, and the next attempt waits."""
        live.refuse_handshakes()
        bx.set_options(reconnect_interval=scaled(60))

        first = bx.live_price(SYMBOL)
        second = bx.live_price(SYMBOL)

        assert first.startswith("#BF! disconnected: cannot connect to "), first
        assert "next attempt in" in second

    def test_a_refused_subscription_is_shown(self, live: FakeExchange) -> None:
        """The server refuses a SUBSCRIBE (stream limit): the cell shows the refusal."""
        live.set_stream_limits(streams_per_connection=1)
        assert price_shows(live, "50100.5")

        text = ""

        def refused() -> bool:
            nonlocal text
            text = bx.live_price("ETHUSDT")
            return "not subscribed" in text

        assert wait_until(refused)
        assert text.startswith("#BF! ethusdt@markPrice@1s not subscribed: "), text

    def test_raise_mode_raises_not_live(self, live: FakeExchange) -> None:
        """With errors='raise' a marker is a NotLiveError carrying the same text."""
        bx.set_options(errors="raise")

        with pytest.raises(bx.NotLiveError, match=f"waiting for {PRICE}"):
            bx.live_price(SYMBOL)


class TestLeases:
    """Streams stay subscribed while cells ask for them, and only then."""

    def test_a_stream_no_cell_asks_for_is_unsubscribed(self, live: FakeExchange) -> None:
        """Asked within unsubscribe_after: kept; not asked: unsubscribed; asked again: back."""
        after = scaled(0.5)
        bx.set_options(unsubscribe_after=after)
        assert price_shows(live, "50100.5")

        deadline = time.monotonic() + 2 * after
        while time.monotonic() < deadline:  # a cell recalculated every 50 ms keeps it
            bx.live_price(SYMBOL)
            time.sleep(0.05)
        assert [[PRICE]] == market_subscriptions(live)

        assert wait_until(lambda: [[]] == market_subscriptions(live))
        assert _shared.registry().markets["default"].live is not None
        assert f"#BF! waiting for {PRICE}" == bx.live_price(SYMBOL)
        assert wait_until(lambda: [[PRICE]] == market_subscriptions(live))
        assert price_shows(live, "50200")

    def test_a_user_subscription_on_the_shared_service_is_left_alone(
        self, live: FakeExchange
    ) -> None:
        """market() is usable directly; the cells' leases only touch the cells' streams."""
        bx.set_options(unsubscribe_after=scaled(0.3))
        bx.market().subscribe(["btcusdt@aggTrade"])
        assert price_shows(live, "50100.5")

        assert wait_until(lambda: [["btcusdt@aggTrade"]] == market_subscriptions(live))


class TestLifecycle:
    """Reloads keep everything; close leaves nothing."""

    def test_reloading_keeps_the_market_service(self, live: FakeExchange) -> None:
        """importlib.reload of bfsync.excel's modules: same service, no new connection."""
        assert price_shows(live, "50100.5")
        service = bx.market()
        threads = bfsync_threads()

        for module in (_live, _shared, _livecells):
            importlib.reload(module)
        reloaded = importlib.reload(bx)

        assert service is reloaded.market()
        assert 50100.5 == reloaded.live_price(SYMBOL)
        assert 1 == live.stream_stats["connections_total"]
        assert 1 == live.stream_stats["subscribe_requests"]
        assert threads == bfsync_threads()

    def test_no_thread_is_left_after_close(self, live: FakeExchange) -> None:
        """close() stops the market service and the live worker; the next cell starts anew."""
        assert price_shows(live, "50100.5")
        assert any(name.startswith("bfsync-excel-live") for name in bfsync_threads())

        bx.close()

        assert [] == bfsync_threads()
        assert f"#BF! waiting for {PRICE}" == bx.live_price(SYMBOL)
        assert price_shows(live, "50200")

    def test_configure_with_new_settings_closes_the_market_service(
        self, live: FakeExchange
    ) -> None:
        """Different settings for a name replace its market service; the same ones keep it."""
        assert price_shows(live, "50100.5")
        service = bx.market()

        bx.configure(config=urls(live))
        assert service is bx.market()

        bx.configure(config=urls(live, request_timeout=scaled(4)))
        assert service.state is State.CLOSED
        assert service is not bx.market()
        assert price_shows(live, "50200")


def test_the_market_service_is_closed_at_exit(fx: FakeExchange) -> None:
    """A process that used live cells closes its market service and live thread at exit."""
    script = textwrap.dedent(
        f"""
        import atexit, threading, time

        def after():  # registered first, so it runs after bfsync.excel's own handler
            from bfsync.excel import _shared
            entry = _shared.registry().markets["default"]
            alive = [t.name for t in threading.enumerate() if t.name.startswith("bfsync-")]
            print("service", entry.service, "threads", alive)

        atexit.register(after)

        import bfsync.excel as bx

        bx.configure(config={urls(fx)!r})
        print("price", bx.live_price("BTCUSDT"))
        deadline = time.monotonic() + 10
        while not bx.market().subscriptions and time.monotonic() < deadline:
            time.sleep(0.01)
        print("held", bx.market().subscriptions)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(60)
    )

    assert "" == done.stderr
    assert [
        f"price #BF! waiting for {PRICE}",
        f"held ['{PRICE}']",
        "service None threads []",
    ] == done.stdout.split("\n")[:3]
