"""MarketService against FakeExchange's stream routes (real sockets on 127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from bfsync import BinanceClient, State
from bfsync.exceptions import ConnectionError, RequestError
from bfsync.market import GAP, STALE, MarketService
from bfsync.testing import FakeExchange
from tests.timing import scaled
from tests.unit.test_streamnames import PAIRS

MARKET_THREADS = ("bfsync-io", "bfsync-dispatch", "bfsync-market", "bfsync-connect", "bfsync-book")


def market_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(MARKET_THREADS)]


def wait_for(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait (bounded, scaled) until ``condition()`` is true; fail the test otherwise."""
    end = time.monotonic() + scaled(seconds)
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {scaled(seconds)} s")
        time.sleep(0.01)


@pytest.fixture
def fx() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        yield exchange


@pytest.fixture
def make_market(fx: FakeExchange) -> Iterator[Callable[..., MarketService]]:
    """Connected market services on the fake; all closed after the test, leaving no thread."""
    services: list[MarketService] = []

    def make(handler: Any = None, **config: Any) -> MarketService:
        settings = {
            "stream_url": fx.stream_url,
            "rest_url": fx.rest_url,
            "request_timeout": scaled(5),
            "connection_timeout": scaled(5),
            "reconnect_delay": 0.05,
            **config,
        }
        service = BinanceClient().market_service(handler, settings)
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()
    wait_for(lambda: market_threads() == [], 3)


def test_every_pair_subscribes_and_unsubscribes_on_its_route(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """The twenty pairs send Binance's names to the right route, then remove them."""
    ms = make_market()
    by_route: dict[str, set[str]] = {"/public": set(), "/market": set()}
    for _, _, names, where in PAIRS:
        by_route[where].update(names)
    with ThreadPoolExecutor(len(PAIRS)) as pool:
        acks = list(
            pool.map(lambda p: getattr(ms, f"subscribe_{p[0]}")(**p[1]), PAIRS)  # type: ignore[no-any-return]
        )
    assert all(ack["result"] is None for ack in acks)
    assert [sorted(by_route["/public"])] == [sorted(s) for s in fx.stream_subscriptions("public")]
    assert [sorted(by_route["/market"])] == [sorted(s) for s in fx.stream_subscriptions("market")]
    assert sorted(by_route["/public"] | by_route["/market"]) == sorted(ms.list_subscriptions())
    with ThreadPoolExecutor(len(PAIRS)) as pool:
        list(pool.map(lambda p: getattr(ms, f"unsubscribe_{p[0]}")(**p[1]), PAIRS))
    assert [[], []] == fx.stream_subscriptions()
    assert [] == ms.list_subscriptions()


def test_events_carry_payloads_and_latest_is_current(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """events() yields payloads in order; latest() holds the last one of each stream."""
    ms = make_market()
    ms.subscribe(["BTCUSDT@bookTicker", "btcusdt@aggTrade"])
    sent = [fx.publish_agg_trade("BTCUSDT") for _ in range(5)]
    ticker = fx.publish_book_ticker("BTCUSDT")
    wait_for(lambda: ms.latest("btcusdt@bookTicker") == ticker)
    got = list(ms.events(timeout=scaled(0.5)))
    assert sent == [e for e in got if e["e"] == "aggTrade"]
    assert sent[-1] == ms.latest("BTCUSDT@aggTrade")
    assert None is ms.latest("ethusdt@aggTrade")


def test_combined_property_delivers_envelopes(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """set_property('combined', True) delivers {stream, data}; other properties go to the server."""
    ms = make_market()
    assert False is ms.get_property("combined")
    ms.set_property("combined", True)
    assert True is ms.get_property("combined")
    ms.subscribe_book_ticker(["BTCUSDT"])
    payload = fx.publish_book_ticker("BTCUSDT")
    assert [{"stream": "btcusdt@bookTicker", "data": payload}] == list(ms.events(timeout=scaled(1)))
    with pytest.raises(ValueError, match="bool"):
        ms.set_property("combined", "yes")
    with pytest.raises(RequestError) as info:
        ms.set_property("colour", "blue")
    assert 0 == info.value.code


def test_a_refused_subscription_raises_with_binances_code(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """The server's error reply raises RequestError with its code; nothing is held."""
    fx.set_stream_limits(streams_per_connection=1)
    ms = make_market()
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    with pytest.raises(RequestError) as info:
        ms.subscribe_aggregate_trade(["ETHUSDT"])
    assert 2 == info.value.code
    assert ["btcusdt@aggTrade"] == ms.list_subscriptions()


def test_a_burst_of_subscribe_calls_stays_under_the_message_limit(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """50 subscribe calls from 8 threads: all acked, no connection closed for its rate."""
    ms = make_market()
    symbols = [f"SYM{i}USDT" for i in range(50)]
    with ThreadPoolExecutor(8) as pool:
        acks = list(pool.map(lambda s: ms.subscribe_aggregate_trade([s]), symbols))
    assert 50 == len(acks)
    assert 0 == fx.stream_stats["closed_for_rate"]
    assert sorted(f"{s.lower()}@aggTrade" for s in symbols) == sorted(
        fx.stream_subscriptions("market")[0]
    )


def test_one_message_at_a_time_is_paced_too(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """Calls that cannot be merged (alternating kinds) are paced under the limit."""
    ms = make_market()

    def call(i: int) -> object:
        if i % 2:
            return ms.subscribe_aggregate_trade([f"S{i}USDT"])
        return ms.list_subscriptions()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(30)))
    assert fx.stream_stats["control_messages"] >= 15  # LIST_SUBSCRIPTIONS are never merged
    assert 0 == fx.stream_stats["closed_for_rate"]


def test_more_than_1024_streams_open_a_second_connection(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """1100 streams of one route take two connections, 1024 and 76."""
    ms = make_market()
    names = [f"s{i}usdt@bookTicker" for i in range(1100)]
    ms.subscribe(names)
    assert [76, 1024] == sorted(len(s) for s in fx.stream_subscriptions("public"))
    assert 1100 == len(ms.list_subscriptions())


def test_a_dropped_route_reconnects_resubscribes_and_reports_the_gap(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """After the server drops /public: a gap event, a new connection, the same streams."""
    ms = make_market()
    states: list[State] = []
    ms.on_state_change = states.append
    ms.subscribe_book_ticker(["BTCUSDT", "ETHUSDT"])
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    assert 1 == fx.drop_stream_connections("public")
    wait_for(lambda: ms.reconnects == 1 and fx.stream_subscriptions("public") != [])
    wait_for(lambda: len(fx.stream_subscriptions("public")[0]) == 2)
    payload = fx.publish_book_ticker("ETHUSDT")
    events = list(ms.events(timeout=scaled(1)))
    gaps = [e for e in events if e.get("e") == GAP]
    assert 1 == len(gaps)
    assert ["btcusdt@bookTicker", "ethusdt@bookTicker"] == gaps[0]["streams"]
    assert payload == events[-1]
    assert State.CONNECTED == ms.state
    wait_for(lambda: [State.RECONNECTING, State.CONNECTED] == states)
    assert [["btcusdt@aggTrade"]] == fx.stream_subscriptions("market")
    assert 1 == ms.gaps


def test_rotation_loses_nothing_and_delivers_nothing_twice(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """With a short max_connection_age, a steady trade stream arrives whole, once, in order."""
    ms = make_market(max_connection_age=scaled(0.6))
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            fx.publish_agg_trade("BTCUSDT")
            time.sleep(0.005)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        wait_for(lambda: ms.rotations >= 2, 10)
    finally:
        stop.set()
        publisher.join()
    last = fx.publish_agg_trade("BTCUSDT")
    ids: list[int] = []
    for event in ms.events(timeout=scaled(1)):
        assert GAP != event.get("e")
        ids.append(event["a"])
        if event["a"] == last["a"]:
            break
    assert list(range(ids[0], ids[0] + len(ids))) == ids
    assert 0 == ms.reconnects


def test_a_silent_stream_is_reported_stale_and_then_fresh(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """stale_after: a silent stream makes the state 'stale', with an event; speaking clears it."""
    states: list[State] = []
    ms = make_market(stale_after=scaled(0.3))
    ms.on_state_change = states.append
    ms.subscribe_aggregate_trade(["BTCUSDT", "ETHUSDT"])
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            fx.publish_agg_trade("BTCUSDT")
            time.sleep(0.02)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        wait_for(lambda: ms.state == State.STALE)
        assert frozenset({"ethusdt@aggTrade"}) == ms.stale_streams
        stale = [e for e in ms.events(timeout=0) if e["e"] == STALE]
        assert [["ethusdt@aggTrade"]] == [e["streams"] for e in stale]
        fx.publish_agg_trade("ETHUSDT")
        wait_for(lambda: ms.state == State.CONNECTED)
    finally:
        stop.set()
        publisher.join()
    assert frozenset() == ms.stale_streams
    wait_for(lambda: states[-2:] == [State.STALE, State.CONNECTED])


def test_handler_exceptions_are_counted_and_delivery_goes_on(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """A handler that raises on some events still gets every event, and errors are counted."""
    seen: list[int] = []

    def handler(event: dict[str, Any]) -> None:
        seen.append(event["a"])
        if event["a"] % 2:
            raise RuntimeError("boom")

    ms = make_market(handler)
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    sent = [fx.publish_agg_trade("BTCUSDT")["a"] for _ in range(10)]
    wait_for(lambda: len(seen) == 10)
    assert sent == seen
    assert sum(a % 2 for a in sent) == ms.handler_errors
    with pytest.raises(RuntimeError, match="message_handler"):
        next(ms.events())


def test_a_slow_consumer_loses_the_oldest_and_latest_stays_current(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """queue_size bounds the queue: the oldest are dropped and counted; latest() is current."""
    ms = make_market(queue_size=10)
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    sent = [fx.publish_agg_trade("BTCUSDT") for _ in range(100)]
    wait_for(lambda: ms.latest("btcusdt@aggTrade") == sent[-1])
    got = list(ms.events(timeout=scaled(0.3)))
    assert "bfsync.dropped" == got[0]["e"]
    assert (90, 90) == (got[0]["count"], got[0]["total"])
    assert sent[-10:] == got[1:]
    assert 90 == ms.dropped


def test_events_ends_after_close(make_market: Callable[..., MarketService]) -> None:
    """An events() loop in another thread ends when the service is closed."""
    ms = make_market()
    done = threading.Event()

    def consume() -> None:
        for _ in ms.events():
            pass
        done.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    ms.close()
    consumer.join(scaled(3))
    assert done.is_set()
    assert State.CLOSED == ms.state


def test_close_from_the_handler(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """The handler may close the service; it ends cleanly and leaves no thread."""
    holder: list[MarketService] = []

    def handler(event: dict[str, Any]) -> None:
        holder[0].close()

    ms = make_market(handler)
    holder.append(ms)
    ms.subscribe_aggregate_trade(["BTCUSDT"])
    fx.publish_agg_trade("BTCUSDT")
    wait_for(lambda: ms.state == State.CLOSED)
    wait_for(lambda: market_threads() == [])
    ms.close()  # idempotent


def test_bad_input_and_calls_after_close_raise_in_the_callers_thread(
    make_market: Callable[..., MarketService],
) -> None:
    """Bad names or arguments raise ValueError; after close() calls raise ConnectionError."""
    ms = make_market()
    with pytest.raises(ValueError, match="did you mean 'btcusdt@bookTicker'"):
        ms.subscribe(["btcusdt@bookticker"])
    with pytest.raises(ValueError, match="intervals"):
        ms.subscribe_kline(["BTCUSDT"], ["7m"])
    with pytest.raises(ValueError, match="symbols"):
        ms.subscribe_book_ticker(["BTC USDT"])
    ms.close()
    with pytest.raises(ConnectionError):
        ms.subscribe_book_ticker(["BTCUSDT"])
    with pytest.raises(ConnectionError):
        ms.list_subscriptions()


def test_connecting_to_nothing_raises_connection_error() -> None:
    """No server at stream_url: market_service() raises ConnectionError and leaves no thread."""
    with pytest.raises(ConnectionError):
        BinanceClient().market_service(
            None, {"stream_url": "ws://127.0.0.1:9", "connection_timeout": scaled(2)}
        )
    wait_for(lambda: market_threads() == [], 3)


def test_the_context_manager_closes(make_market: Callable[..., MarketService]) -> None:
    """`with` closes the service."""
    with make_market() as ms:
        assert State.CONNECTED == ms.state
    assert State.CLOSED == ms.state


# The local order book


@pytest.fixture
def ws_depth(fx: FakeExchange) -> Iterator[Callable[[str, int], dict[str, Any]]]:
    """A snapshot fetcher over a real ws-fapi socket (``depth``), for the book's worker."""
    from tests.integration.rawclient import Client

    client = Client(fx.url)
    lock = threading.Lock()

    def fetch(symbol: str, limit: int) -> dict[str, Any]:
        with lock:
            reply = client.call("depth", {"symbol": symbol, "limit": limit})
        assert 200 == reply["status"]
        result: dict[str, Any] = reply["result"]
        return result

    yield fetch
    client.close()


class Ticker:
    """Publishes depth diffs of BTCUSDT and remembers the last one."""

    def __init__(self, fx: FakeExchange) -> None:
        self.fx = fx
        self.count = 0
        self.last: dict[str, Any] = {}

    def publish(self, bids: Any = (), asks: Any = ()) -> None:
        self.last = self.fx.publish_depth("BTCUSDT", bids=bids, asks=asks)

    def until(self, done: Callable[[], bool], seconds: float = 5.0) -> None:
        """Publish diffs (alternating a bid quantity) until ``done()``; bounded."""
        end = time.monotonic() + scaled(seconds)
        while not done():
            if time.monotonic() > end:
                raise AssertionError(f"not done within {scaled(seconds)} s")
            self.count += 1
            self.publish(bids=[("49999.00", f"{1 + self.count % 5}")])
            time.sleep(0.01)

    def matches(self, book: Any, n: int = 20) -> bool:
        """The book has applied the last diff and its top n levels equal the fake's book."""
        from decimal import Decimal

        snap = self.fx.depth_snapshot("BTCUSDT", 20)  # (taking one moves the fake's ids on)
        update_id, bids, asks = book.levels(n)
        want_bids = [(Decimal(p), Decimal(q)) for p, q in snap["bids"][:n]]
        want_asks = [(Decimal(p), Decimal(q)) for p, q in snap["asks"][:n]]
        return bool(update_id == self.last["u"] and want_bids == bids and want_asks == asks)


def test_the_order_book_syncs_and_matches_the_fakes_book(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """order_book() subscribes the diffs, syncs from a REST snapshot, equals the fake's book."""
    ms = make_market()
    book = ms.order_book("BTCUSDT", depth=100)  # snapshots: GET {rest_url}/fapi/v1/depth
    assert book is ms.order_book("BTCUSDT", depth=100)
    assert [["btcusdt@depth@100ms"]] == fx.stream_subscriptions("public")
    ticker = Ticker(fx)
    ticker.until(lambda: book.synced)
    ticker.publish(bids=[("49999.90", "0")], asks=[("50000.05", "3")])
    wait_for(lambda: ticker.matches(book))
    events = list(ms.events(timeout=scaled(0.3)))
    assert [] == [e for e in events if e.get("e") == "depthUpdate"]  # not the caller's stream
    assert ["synced"] == [e["status"] for e in events if e.get("e") == "bfsync.book"]
    assert 1 == book.stats()["snapshots"]


def test_the_order_book_over_a_ws_fapi_snapshot(
    fx: FakeExchange,
    make_market: Callable[..., MarketService],
    ws_depth: Callable[[str, int], dict[str, Any]],
) -> None:
    """fetch_snapshot replaces REST, here with ws-fapi depth over a real socket."""
    ms = make_market()
    book = ms.order_book("BTCUSDT", depth=20, fetch_snapshot=ws_depth)
    ticker = Ticker(fx)
    ticker.until(lambda: book.synced)
    ticker.publish(asks=[("50000.10", "4")])
    wait_for(lambda: ticker.matches(book))


def test_the_order_book_resyncs_after_a_gap_in_the_diffs(
    fx: FakeExchange,
    make_market: Callable[..., MarketService],
    ws_depth: Callable[[str, int], dict[str, Any]],
) -> None:
    """A lost diff breaks the pu chain: the book goes out of sync, then resyncs by itself."""
    ms = make_market()
    book = ms.order_book("BTCUSDT", depth=100, fetch_snapshot=ws_depth)
    ticker = Ticker(fx)
    ticker.until(lambda: book.synced)
    fx.depth_gap("BTCUSDT", bids=[("49998.00", "7")])
    ticker.until(lambda: book.gaps >= 1)
    ticker.until(lambda: book.synced)
    ticker.publish(asks=[("50000.20", "0")])
    wait_for(lambda: ticker.matches(book))


def test_the_order_book_resyncs_after_a_reconnection(
    fx: FakeExchange,
    make_market: Callable[..., MarketService],
    ws_depth: Callable[[str, int], dict[str, Any]],
) -> None:
    """Diffs lost while the route was down: the gap invalidates the book; it resyncs."""
    ms = make_market()
    ms.subscribe_diff_book_depth(["BTCUSDT"], update_speed=100)
    book = ms.order_book("BTCUSDT", depth=100, fetch_snapshot=ws_depth)
    ticker = Ticker(fx)
    ticker.until(lambda: book.synced)
    fx.drop_stream_connections("public")
    fx.depth_gap("BTCUSDT", asks=[("50000.10", "9")])  # published while nobody listens
    wait_for(lambda: ms.reconnects == 1)
    ticker.until(lambda: book.synced and ticker.matches(book))
    kinds = [e.get("e") for e in ms.events(timeout=scaled(0.3))]
    assert GAP in kinds
    assert "depthUpdate" in kinds  # the caller subscribed that stream too


def test_unsubscribing_a_books_stream_keeps_the_book_fed(
    fx: FakeExchange,
    make_market: Callable[..., MarketService],
    ws_depth: Callable[[str, int], dict[str, Any]],
) -> None:
    """The caller's unsubscribe of a stream a book reads stops delivery, not the book."""
    ms = make_market()
    ms.subscribe(["btcusdt@depth@100ms"])
    book = ms.order_book("BTCUSDT", depth=100, fetch_snapshot=ws_depth)
    ms.unsubscribe(["btcusdt@depth@100ms"])
    assert [["btcusdt@depth@100ms"]] == fx.stream_subscriptions("public")
    list(ms.events(timeout=0))
    Ticker(fx).until(lambda: book.synced)
    assert [] == [e for e in ms.events(timeout=scaled(0.2)) if e.get("e") == "depthUpdate"]


def test_order_book_arguments_are_checked_in_the_callers_thread(
    make_market: Callable[..., MarketService],
) -> None:
    """A bad symbol, depth or speed raises ValueError before anything is sent."""
    ms = make_market()
    with pytest.raises(ValueError, match="symbols"):
        ms.order_book("BTC USDT")
    with pytest.raises(ValueError, match="update_speed"):
        ms.order_book("BTCUSDT", update_speed=42)
    with pytest.raises(ValueError, match="depth"):
        ms.order_book("BTCUSDT", depth=0)
    assert [] == ms.list_subscriptions()


def test_a_service_dropped_without_close_stops_its_threads(fx: FakeExchange) -> None:
    """Garbage collection of a running service closes it: no thread is left."""
    import gc

    ms = BinanceClient().market_service(None, {"stream_url": fx.stream_url})
    ms.subscribe_book_ticker(["BTCUSDT"])
    ms.order_book("BTCUSDT", fetch_snapshot=lambda symbol, limit: fx.depth_snapshot(symbol, limit))
    del ms
    gc.collect()
    wait_for(lambda: market_threads() == [], 5)


def test_server_pings_are_answered() -> None:
    """A stream server that pings gets its pongs (the connection stays up)."""
    with FakeExchange() as fx:
        fx.ping_interval = 0.1
        ms = BinanceClient().market_service(None, {"stream_url": fx.stream_url})
        try:
            ms.subscribe_book_ticker(["BTCUSDT"])
            wait_for(lambda: fx.pongs_received >= 3)
            assert 0 == ms.reconnects
        finally:
            ms.close()


def test_bad_frames_are_counted_and_the_connection_survives(
    fx: FakeExchange, make_market: Callable[..., MarketService]
) -> None:
    """Text that is not JSON, or an event of an unknown shape, is ignored and counted."""
    ms = make_market()
    ms.subscribe_book_ticker(["BTCUSDT"])
    fx.publish("btcusdt@bookTicker", "{not json")
    ticker = fx.publish_book_ticker("BTCUSDT")
    wait_for(lambda: ms.latest("btcusdt@bookTicker") == ticker)
    assert 1 == ms.malformed
    assert 0 == ms.reconnects
    assert [ticker] == list(ms.events(timeout=scaled(0.3)))
