"""
``MarketService``: Binance's market streams, for synchronous code.

Theory of operation
-------------------
- **Routing.** Each stream name goes to the route Binance serves it on (``/public``:
  bookTicker and depth; ``/market``: everything else; ``bfsync._streamnames``), over one
  connection per route, more when a route passes 1024 streams (a *shard* each). Every
  connection uses combined mode on the wire (``<stream_url>/<route>/stream``), so every event
  names its stream.
- **One I/O thread** (``bfsync-io-N``, ``bfsync._iothread``) serves all the shards'
  connections; each shard is a *channel* whose pure bookkeeping is ``bfsync._streams.Shard``.
  It only reads, decodes and hands events off. Control messages (SUBSCRIBE, ...) are queued,
  coalesced and paced under 10 a second per connection.
- **Subscribe calls** (any thread) check their arguments in the caller's thread (``ValueError``
  naming the argument), queue the control and wait for the server's ack, at most
  ``request_timeout``: they return the ack frame, or raise ``RequestTimeoutError``,
  ``ConnectionError`` (``ConnectionLostError`` when the link went while waiting) or
  ``RequestError`` with Binance's ``code``.
- **Delivery.** ``latest(stream)`` is set on arrival, on the I/O thread. Events then go, in
  batches, to a bounded queue (``queue_size``; when full the oldest is dropped and counted in
  ``dropped``). A ``message_handler`` runs on its own thread (``bfsync-market-N``), never the
  I/O thread, in arrival order; an exception in it is logged and counted
  (``handler_errors``). Without one, ``events(timeout)`` yields from the queue.
- **Healing.** A lost connection reconnects (first attempt at once, then ``reconnect_delay``
  doubling) and resubscribes everything it held, paced. A silent connection is pinged and
  replaced. Before ``max_connection_age`` a connection is rotated: the new one is opened and
  subscribed while the old one still delivers, and the old one is closed once the new one has
  caught up, so nothing is missed or delivered twice (``bfsync._streams.Handover``).
- **Gaps are never silent.** When a connection is lost, an event ``{"e": "bfsync.gap", "E":
  ms, "reason": ..., "streams": [...]}`` (stream name ``"bfsync.gap"``) is delivered in the
  lane, in order with the payloads: whatever those streams sent meanwhile is lost.
- **Stale streams.** With ``stale_after`` set, a subscribed stream that delivers nothing for
  that many seconds makes ``state`` ``"stale"`` (``on_state_change`` is called) and is listed
  in ``stale_streams``; an event ``{"e": "bfsync.stale", "E": ms, "streams": [...]}`` is
  delivered each time that list changes. ``state`` returns to ``"connected"`` when every
  stream speaks again.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, Callable, Optional, overload

from ._delivery import DeliveryLane
from ._dispatch import Dispatcher
from ._iothread import ChannelBase, IOThread, LinkView, Outgoing
from ._policy import LinkPolicy
from ._streamnames import MARKET, canonical, canonical_all, names_for, route
from ._streams import Control, Handover, Shard, Silence, plan
from .config import Config
from .exceptions import (
    ConnectionError,
    ConnectionLostError,
    RequestError,
    RequestTimeoutError,
)
from .livebook import OrderBook, SnapshotFetcher, rest_snapshot_fetcher
from .transport import State

if TYPE_CHECKING:
    from .types import ArrayStream

__all__ = ["GAP", "STALE", "MarketService"]

log = logging.getLogger("bfsync.market")

GAP = "bfsync.gap"
STALE = "bfsync.stale"
_numbers = itertools.count(1)
Handler = Callable[[dict[str, Any]], object]


def _unless_collected(default: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A channel method that returns ``default`` once its service was garbage-collected
    (between the collection and its finalizer closing the I/O thread)."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(*args: Any) -> Any:
            try:
                return method(*args)
            except ReferenceError:
                return default

        return guarded

    return decorate


class _ShardChannel(ChannelBase):
    """One market connection (route + shard) as a channel of the I/O thread."""

    def __init__(self, service: MarketService, shard: Shard, url: str) -> None:
        self.name = f"market{shard.route}#{shard.number}"
        # A proxy: a service dropped without close() can be collected, and its finalizer
        # stops the threads (the I/O thread holds the channels, not the service).
        self.service: MarketService = weakref.proxy(service)
        self.shard = shard
        self._url = url
        self.current = 0  # the current link's number
        self.handover = Handover()
        self.opened = threading.Event()
        self.failure: Optional[BaseException] = None
        self.ever_opened = False
        self.batch: list[tuple[str, Any]] = []
        self.unknown = 0  # events of streams not held (late, after an unsubscribe)
        self.malformed = 0  # messages ignored: not JSON objects, no stream, unknown reply ids

    # The channel contract (I/O thread)

    def url(self) -> str:
        return self._url

    @_unless_collected(None)
    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        service = self.service
        with service._lock:
            if rotation:
                self.handover.start()
                service.rotations += 1
            elif self.ever_opened:
                service.reconnects += 1
                self.batch.extend(self.handover.finish())
            self.current = link.number
            self.shard.opened(link.number, now)
            service._silence.reset(now)
            self.ever_opened = True
        self.opened.set()
        service._update_state()

    @_unless_collected(None)
    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.malformed += 1
            log.warning("%s: ignored a message that is not JSON: %.200r", self.name, data)
            return
        if not isinstance(message, dict):
            self.malformed += 1
            log.warning("%s: ignored a message that is not an object: %.200r", self.name, data)
            return
        stream = message.get("stream")
        if stream is not None and "data" in message:
            self._event(stream, message["data"], link.number, now)
        elif "id" in message:
            with self.service._lock:
                ours = self.shard.acked(message)
                if ours:
                    self.service._ack_seen(self, now)
            if not ours:
                self.malformed += 1
                log.warning("%s: ignored a reply with unknown id %r", self.name, message["id"])
        else:
            self.malformed += 1
            log.warning("%s: ignored a message without a stream: %.200r", self.name, data)

    def _event(self, stream: Any, payload: Any, link: int, now: float) -> None:
        service = self.service
        shard = self.shard
        if not isinstance(stream, str) or not shard.serves(stream):
            self.unknown += 1
            return
        admitted = self.handover.admit(stream, payload, link != self.current)
        if not admitted:
            return
        silence = service._silence
        recovered = False
        for name, _ in admitted:
            recovered |= silence.hear(name, now)
        book = service._books.get(stream)
        if book is not None:
            for _, item in admitted:
                try:
                    book.feed(item)
                except Exception:  # pragma: no cover - feed counts bad diffs itself
                    log.exception("%s: the order book of %s failed on a diff", self.name, stream)
        if stream not in service._book_only:
            self.batch.extend(admitted)
        if recovered:
            service._check_stale(now)

    @_unless_collected(())
    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        self.flush()
        if link.number != self.current:
            return ()
        with self.service._lock:
            controls = self.shard.take(now)
        return [json.dumps(c.frame(), separators=(",", ":")) for c in controls]

    def flush(self) -> None:
        batch = self.batch
        if batch:
            self.batch = []
            self.service._lane_put(batch)

    @_unless_collected(math.inf)
    def next_deadline(self) -> float:
        with self.service._lock:
            deadline = self.shard.next_deadline(time.monotonic())
        return min(deadline, self.service._silence.next_deadline())

    @_unless_collected(None)
    def on_tick(self, now: float) -> None:
        self.flush()
        with self.service._lock:
            self.shard.expire(now)
        self.service._check_stale(now)

    @_unless_collected(None)
    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        self.flush()
        service = self.service
        with service._lock:
            held = sorted(self.shard.active)
            self.shard.lost(link.number)
            released = self.handover.finish() if self.handover.rotating else []
            current = link.number == self.current
            if current:
                self.current = 0
        if released:
            service._lane_put(released)
        if current:
            log.warning("%s: connection lost (%s); reconnecting", self.name, cause)
            if held:
                service._gap(held, f"connection lost: {cause}")
            service._update_state()

    @_unless_collected(None)
    def on_connect_failed(self, cause: BaseException, attempt: int, now: float) -> None:
        log.warning("%s: connection attempt %d failed: %s", self.name, attempt, cause)
        with self.service._lock:
            self.shard.expire(now)

    @_unless_collected(True)
    def can_retire(self, old: LinkView, now: float) -> bool:
        with self.service._lock:
            if self.shard.owes(old.number) or not self.shard.resubscribed():
                return False
            if not self.handover.caught_up():
                return False
            released = self.handover.finish()
        if released:
            self.batch.extend(released)
        self.flush()
        return True

    def on_closed(self, cause: Optional[BaseException]) -> None:
        self.failure = cause
        try:
            self._closed(cause)
        except ReferenceError:  # the service was collected: its finalizer closes everything
            self.opened.set()

    def _closed(self, cause: Optional[BaseException]) -> None:
        self.flush()
        service = self.service
        why = "the service was closed" if cause is None else f"the connection failed: {cause}"
        with service._lock:
            held = sorted(self.shard.active)
            self.shard.close(why)
        self.opened.set()
        service._channel_closed(self, cause, held)


class MarketService:
    """
    Binance's market streams, for synchronous code. See the module docstring.

    Build it with ``BinanceClient().market_service(message_handler, config)`` (connected), or
    ``MarketService(message_handler, config)`` then ``connect()``.

    Args:
        message_handler: called with each event (a payload dict, or a ``{"stream", "data"}``
            envelope after ``set_property("combined", True)``) on a bfsync thread; ``None``
            to read events with ``events()`` instead.
        config: the service's settings (``stream_url``, ``queue_size``, ``stale_after``,
            ``request_timeout``, ``connection_timeout``, ``ping_interval``, reconnection and
            ``max_connection_age`` keys); unknown keys raise ``ValueError``.
    """

    def __init__(
        self,
        message_handler: Optional[Handler] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if message_handler is not None and not callable(message_handler):
            raise ValueError("message_handler must be a callable or None")
        self.config = Config.from_dict(config)
        self.message_handler = message_handler
        self.on_state_change: Optional[Callable[[State], object]] = None
        self.reconnects = 0
        self.rotations = 0
        self.gaps = 0
        self._lock = threading.RLock()
        self._connect_lock = threading.Lock()
        self._io: Optional[IOThread] = None
        self._channels: dict[int, _ShardChannel] = {}
        self._lane = DeliveryLane(None, queue_size=self.config.queue_size, shape="pairs")
        self._lane.close()
        self._books: dict[str, OrderBook] = {}
        self._book_only: set[str] = set()  # depth streams held for a book, not for the user
        self._malformed_gone = 0  # ``malformed`` of channels no longer served
        self._silence = Silence(self.config.stale_after)
        self._state = State.CLOSED
        self._failure: Optional[BaseException] = None
        self._dispatcher = Dispatcher("bfsync-dispatch")
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None

    def __repr__(self) -> str:
        return (
            f"<MarketService {self.state.value} {self.config.stream_url} "
            f"streams={len(self.subscriptions)}>"
        )

    def __enter__(self) -> MarketService:
        if self.state in (State.CLOSED, State.FAILED):
            self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Lifecycle

    @property
    def state(self) -> State:
        """``connecting``, ``connected``, ``reconnecting``, ``stale``, ``closed`` or ``failed``."""
        return self._state

    @property
    def dropped(self) -> int:
        """Events dropped (oldest first) because the queue was full."""
        return self._lane.dropped

    @property
    def handler_errors(self) -> int:
        """How many times ``message_handler`` raised."""
        return self._lane.handler_errors

    @property
    def malformed(self) -> int:
        """Messages ignored since ``connect()``: not JSON objects, or replies nobody awaited."""
        with self._lock:
            return sum(c.malformed for c in self._channels.values()) + self._malformed_gone

    @property
    def stale_streams(self) -> frozenset[str]:
        """Subscribed streams silent for ``stale_after`` seconds (empty when off)."""
        return self._silence.stale

    def connect(self) -> None:
        """
        Start the service and open the ``/market`` connection; a no-op when running.

        Blocks at most ``connection_timeout`` seconds (plus one). Subscriptions made before
        a ``close()`` are not restored.

        Raises:
            ConnectionError: the stream server could not be reached.
        """
        with self._connect_lock:
            if self._io is not None and self._state not in (State.CLOSED, State.FAILED):
                return
            self._teardown()
            self._io = IOThread("bfsync-io")
            self._lane = DeliveryLane(
                self.message_handler,
                queue_size=self.config.queue_size,
                shape="pairs",
                name=f"bfsync-market-{next(_numbers)}",
            )
            self._channels = {}
            self._books = {}
            self._book_only = set()
            self._malformed_gone = 0
            self._silence = Silence(self.config.stale_after)
            self._failure = None
            self._set_state(State.CONNECTING)
            self._finalizer = weakref.finalize(self, _stop, self._io, self._lane, self._books)
            with self._lock:
                channel = self._add_shard(MARKET, 1)
            limit = self.config.connection_timeout + 1.0
            if not channel.opened.wait(limit) or channel.failure is not None:
                cause = channel.failure
                self._teardown()
                self._set_state(State.CLOSED)
                raise ConnectionError(
                    f"cannot connect to {self.config.stream_url}{MARKET}: "
                    f"{cause or f'no connection within {limit:g} s'}"
                ) from cause

    def close(self) -> None:
        """
        Stop everything; idempotent, from any thread (also from the handler). Waiting
        subscribe calls fail with ``ConnectionError``; ``events()`` ends. Bounded: returns
        within about eight seconds even if the server does not answer.
        """
        with self._connect_lock:
            self._teardown()
        if self._state is not State.FAILED:
            self._set_state(State.CLOSED)
        self._dispatcher.close(1.0)

    def _teardown(self) -> None:
        io, self._io = self._io, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if io is not None:
            io.close()
        self._lane.close()
        _close_books(self._books)

    # Subscriptions

    def subscribe(self, streams: Sequence[str]) -> dict[str, Any]:
        """
        Subscribe to stream names (e.g. ``["btcusdt@bookTicker", "ethusdt@kline_1m"]``);
        returns the server's ack frame once every connection concerned has acked.

        Streams already subscribed are skipped (no message; the ack is then
        ``{"result": None, "id": None}``).

        Raises:
            ValueError: an unknown stream name (with a suggestion), in this thread.
            RequestError: the server refused (``code`` is Binance's);
                ``RequestTimeoutError`` when no ack came within ``request_timeout``.
            ConnectionError: the service is closed, or the connection was lost.
        """
        return self._subscribe(canonical_all(streams))

    def unsubscribe(self, streams: Sequence[str]) -> dict[str, Any]:
        """Unsubscribe stream names; returns the ack (raises as ``subscribe``)."""
        return self._unsubscribe(canonical_all(streams))

    def list_subscriptions(self) -> list[str]:
        """The streams the server says it sends, over every connection (asks each one)."""
        self._check_open()
        with self._lock:
            shards = [c.shard for c in self._channels.values()]
        results: list[str] = []
        futures = [self._send(shard, "LIST_SUBSCRIPTIONS", []) for shard in shards]
        for future in futures:
            reply = self._wait(future)
            result = reply.get("result")
            if isinstance(result, list):
                results.extend(str(name) for name in result)
        return results

    @property
    def subscriptions(self) -> list[str]:
        """The streams held, as bfsync knows them (no message sent), sorted."""
        with self._lock:
            return sorted(s for c in self._channels.values() for s in c.shard.active)

    def set_property(self, name: str, value: Any) -> dict[str, Any]:
        """
        ``combined``: ``True`` delivers ``{"stream", "data"}`` envelopes, ``False`` (the
        default) payloads; bfsync keeps combined mode on the wire either way, so this is
        applied locally. Any other property goes to the server (which refuses unknown ones
        with code 0).

        Raises:
            ValueError: ``combined`` given a value that is not a bool.
        """
        self._check_open()
        if name == "combined":
            if not isinstance(value, bool):
                raise ValueError(
                    f"set_property('combined', value): value must be a bool, not {value!r}"
                )
            self._lane.combined = value
            return {"result": None, "id": None}
        return self._wait(self._send(self._first_shard(), "SET_PROPERTY", [name, value]))

    def get_property(self, name: str) -> Any:
        """The value of a property (``combined``: what ``set_property`` set)."""
        self._check_open()
        if name == "combined":
            return self._lane.combined
        return self._wait(self._send(self._first_shard(), "GET_PROPERTY", [name])).get("result")

    # Delivery

    def events(self, timeout: Optional[float] = None) -> Iterator[dict[str, Any]]:
        """
        Yield events until the service is closed, or until ``timeout`` seconds pass with no
        event (``None``: wait for ever). For use without a ``message_handler``.

        Raises:
            RuntimeError: a ``message_handler`` takes the events.
        """
        return self._lane.events(timeout)

    @overload
    def latest(self, stream: ArrayStream) -> Optional[list[dict[str, Any]]]: ...  # type: ignore[overload-overlap]
    @overload
    def latest(self, stream: str) -> Optional[dict[str, Any]]: ...
    def latest(self, stream: str) -> Optional[Any]:
        """
        The last payload of ``stream`` (e.g. ``"btcusdt@bookTicker"``), or ``None``.

        A payload is Binance's JSON object, except on the ``!...@arr`` streams, whose payloads
        are lists of them: typed so when the name is written out, a ``dict`` otherwise.
        """
        return self._lane.latest(canonical(stream, "stream"))

    def order_book(
        self,
        symbol: str,
        depth: int = 1000,
        *,
        update_speed: int = 100,
        fetch_snapshot: Optional[SnapshotFetcher] = None,
    ) -> OrderBook:
        """
        A local order book of ``symbol``, kept in sync from ``<s>@depth@<update_speed>ms``
        diffs and snapshots (reference §7.3; see ``docs/order_book.md``).

        The diffs feed the book on arrival, before (and whatever) the event queue: a slow
        consumer never puts the book out of sync. They reach ``events()`` or the handler only
        if the caller subscribed that stream too. Snapshots come from ``fetch_snapshot``
        (``(symbol, limit) -> dict``), by default REST ``GET {rest_url}/fapi/v1/depth``
        (no key needed; bounded by ``request_timeout``), on the book's own thread. After a
        reconnection the book resyncs by itself. A second call for the same symbol and speed
        returns the same book. The stream stays subscribed until the service is closed.

        Returns once the server has acked the depth subscription (the book syncs after:
        ``wait_synced(timeout)``).

        Raises:
            ValueError: a bad ``symbol``, ``depth`` or ``update_speed``, in this thread.
            RequestError, ConnectionError: as ``subscribe``.
        """
        self._check_open()
        (stream,) = names_for("diff_book_depth", symbols=[symbol], update_speed=update_speed)
        with self._lock:
            book = self._books.get(stream)
            if book is not None and not book.closed:
                return book
        fetcher = fetch_snapshot or rest_snapshot_fetcher(
            self.config.rest_url, timeout=float(self.config.request_timeout)
        )
        lane = self._lane
        book = OrderBook(
            symbol, fetcher, depth=depth, on_notice=lambda **fields: lane.signal("book", **fields)
        )
        with self._lock:
            if not any(c.shard.serves(stream) for c in self._channels.values()):
                self._book_only.add(stream)
            self._books[stream] = book
        try:
            self._subscribe([stream], for_user=False)
        except BaseException:
            with self._lock:
                if self._books.get(stream) is book:
                    del self._books[stream]
            book.close()
            raise
        return book

    # The twenty pairs of binance-futures-async

    def subscribe_aggregate_trade(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Aggregate trades (``<s>@aggTrade``)."""
        return self._subscribe(names_for("aggregate_trade", symbols=symbols))

    def unsubscribe_aggregate_trade(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("aggregate_trade", symbols=symbols))

    def subscribe_mark_price(
        self, symbols: Sequence[str], update_speed: str = "3000ms"
    ) -> dict[str, Any]:
        """Mark price (``<s>@markPrice``; ``update_speed`` "3000ms" or "1000ms")."""
        return self._subscribe(names_for("mark_price", symbols=symbols, update_speed=update_speed))

    def unsubscribe_mark_price(
        self, symbols: Sequence[str], update_speed: str = "3000ms"
    ) -> dict[str, Any]:
        return self._unsubscribe(
            names_for("mark_price", symbols=symbols, update_speed=update_speed)
        )

    def subscribe_all_mark_price(self, update_speed: str = "3000ms") -> dict[str, Any]:
        """Mark price of every symbol (``!markPrice@arr``)."""
        return self._subscribe(names_for("all_mark_price", update_speed=update_speed))

    def unsubscribe_all_mark_price(self, update_speed: str = "3000ms") -> dict[str, Any]:
        return self._unsubscribe(names_for("all_mark_price", update_speed=update_speed))

    def subscribe_kline(self, symbols: Sequence[str], intervals: Sequence[str]) -> dict[str, Any]:
        """Klines (``<s>@kline_<interval>``) for every symbol and interval."""
        return self._subscribe(names_for("kline", symbols=symbols, intervals=intervals))

    def unsubscribe_kline(self, symbols: Sequence[str], intervals: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("kline", symbols=symbols, intervals=intervals))

    def subscribe_continuous_kline(
        self, pairs: Sequence[str], contract_types: Sequence[str], intervals: Sequence[str]
    ) -> dict[str, Any]:
        """Continuous-contract klines (``<pair>_<contractType>@continuousKline_<i>``)."""
        return self._subscribe(
            names_for(
                "continuous_kline", pairs=pairs, contract_types=contract_types, intervals=intervals
            )
        )

    def unsubscribe_continuous_kline(
        self, pairs: Sequence[str], contract_types: Sequence[str], intervals: Sequence[str]
    ) -> dict[str, Any]:
        return self._unsubscribe(
            names_for(
                "continuous_kline", pairs=pairs, contract_types=contract_types, intervals=intervals
            )
        )

    def subscribe_mini_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Mini tickers (``<s>@miniTicker``)."""
        return self._subscribe(names_for("mini_ticker", symbols=symbols))

    def unsubscribe_mini_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("mini_ticker", symbols=symbols))

    def subscribe_all_market_tickers(self) -> dict[str, Any]:
        """Tickers of every symbol (``!ticker@arr``)."""
        return self._subscribe(names_for("all_market_tickers"))

    def unsubscribe_all_market_tickers(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("all_market_tickers"))

    def subscribe_symbol_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        """24 h tickers (``<s>@ticker``)."""
        return self._subscribe(names_for("symbol_ticker", symbols=symbols))

    def unsubscribe_symbol_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("symbol_ticker", symbols=symbols))

    def subscribe_all_market_mini_tickers(self) -> dict[str, Any]:
        """Mini tickers of every symbol (``!miniTicker@arr``)."""
        return self._subscribe(names_for("all_market_mini_tickers"))

    def unsubscribe_all_market_mini_tickers(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("all_market_mini_tickers"))

    def subscribe_book_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Best bid and ask (``<s>@bookTicker``, route ``/public``)."""
        return self._subscribe(names_for("book_ticker", symbols=symbols))

    def unsubscribe_book_ticker(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("book_ticker", symbols=symbols))

    def subscribe_all_book_tickers(self) -> dict[str, Any]:
        """Best bid and ask of every symbol (``!bookTicker``, route ``/public``)."""
        return self._subscribe(names_for("all_book_tickers"))

    def unsubscribe_all_book_tickers(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("all_book_tickers"))

    def subscribe_liquidation_order(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Liquidation orders (``<s>@forceOrder``)."""
        return self._subscribe(names_for("liquidation_order", symbols=symbols))

    def unsubscribe_liquidation_order(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("liquidation_order", symbols=symbols))

    def subscribe_all_liquidation_orders(self) -> dict[str, Any]:
        """Liquidation orders of every symbol (``!forceOrder@arr``)."""
        return self._subscribe(names_for("all_liquidation_orders"))

    def unsubscribe_all_liquidation_orders(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("all_liquidation_orders"))

    def subscribe_partial_book_depth(
        self, symbols: Sequence[str], levels: int, update_speed: int = 250
    ) -> dict[str, Any]:
        """Top ``levels`` (5, 10, 20) of the book (``<s>@depth<levels>``; 250/500/100 ms)."""
        return self._subscribe(
            names_for(
                "partial_book_depth", symbols=symbols, levels=levels, update_speed=update_speed
            )
        )

    def unsubscribe_partial_book_depth(
        self, symbols: Sequence[str], levels: int, update_speed: int = 250
    ) -> dict[str, Any]:
        return self._unsubscribe(
            names_for(
                "partial_book_depth", symbols=symbols, levels=levels, update_speed=update_speed
            )
        )

    def subscribe_diff_book_depth(
        self, symbols: Sequence[str], update_speed: int = 250
    ) -> dict[str, Any]:
        """Book diffs (``<s>@depth``; 250/500/100 ms), as a local book needs."""
        return self._subscribe(
            names_for("diff_book_depth", symbols=symbols, update_speed=update_speed)
        )

    def unsubscribe_diff_book_depth(
        self, symbols: Sequence[str], update_speed: int = 250
    ) -> dict[str, Any]:
        return self._unsubscribe(
            names_for("diff_book_depth", symbols=symbols, update_speed=update_speed)
        )

    def subscribe_composite_index(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Composite index symbols (``<s>@compositeIndex``)."""
        return self._subscribe(names_for("composite_index", symbols=symbols))

    def unsubscribe_composite_index(self, symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("composite_index", symbols=symbols))

    def subscribe_contract_info(self) -> dict[str, Any]:
        """Contract listings and changes (``!contractInfo``)."""
        return self._subscribe(names_for("contract_info"))

    def unsubscribe_contract_info(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("contract_info"))

    def subscribe_asset_index_array(self) -> dict[str, Any]:
        """Multi-assets index of every asset (``!assetIndex@arr``)."""
        return self._subscribe(names_for("asset_index_array"))

    def unsubscribe_asset_index_array(self) -> dict[str, Any]:
        return self._unsubscribe(names_for("asset_index_array"))

    def subscribe_asset_index(self, asset_symbols: Sequence[str]) -> dict[str, Any]:
        """Multi-assets index of some assets (``<asset>@assetIndex``)."""
        return self._subscribe(names_for("asset_index", asset_symbols=asset_symbols))

    def unsubscribe_asset_index(self, asset_symbols: Sequence[str]) -> dict[str, Any]:
        return self._unsubscribe(names_for("asset_index", asset_symbols=asset_symbols))

    # Private methods (caller threads)

    def _check_open(self) -> None:
        if self._io is None or self._state in (State.CLOSED, State.FAILED):
            if self._state is State.FAILED and self._failure is not None:
                raise ConnectionError(
                    f"the market service failed ({self._failure}); call connect() to start again"
                ) from self._failure
            raise ConnectionError("the market service is not connected; call connect() first")

    def _add_shard(self, where: str, number: int) -> _ShardChannel:
        """Create and serve a new shard (under ``_lock``)."""
        io = self._io
        assert io is not None
        shard = Shard(where, number, time.monotonic(), float(self.config.request_timeout))
        channel = _ShardChannel(self, shard, f"{self.config.stream_url}{where}/stream")
        self._channels[number] = channel
        io.add(channel, LinkPolicy.from_config(self.config))
        return channel

    def _first_shard(self) -> Shard:
        with self._lock:
            return self._channels[min(self._channels)].shard

    def _send(self, shard: Shard, method: str, params: list[Any]) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        deadline = time.monotonic() + self.config.request_timeout
        with self._lock:
            shard.submit(Control(method, params, deadline, [_settler(future)]))
        io = self._io
        if io is not None:
            io.wake()
        return future

    def _wait(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        done, _ = futures_wait([future], self.config.request_timeout + 2.0)
        if not done:  # pragma: no cover - the I/O thread expires it first
            raise RequestTimeoutError(f"no ack within {self.config.request_timeout} s")
        return future.result()

    def _subscribe(self, names: list[str], for_user: bool = True) -> dict[str, Any]:
        self._check_open()
        futures = []
        deadline = time.monotonic() + self.config.request_timeout
        with self._lock:
            if for_user:
                self._book_only.difference_update(names)
            shards = [c.shard for c in self._channels.values()]
            assignment, _ = plan(shards, route, names)
            for number in sorted(assignment):
                channel = self._channels.get(number)
                if channel is None:
                    where = route(assignment[number][0])
                    channel = self._add_shard(where, number)
                future: Future[dict[str, Any]] = Future()
                channel.shard.submit(
                    Control("SUBSCRIBE", list(assignment[number]), deadline, [_settler(future)])
                )
                futures.append(future)
        if not futures:
            return {"result": None, "id": None}
        io = self._io
        if io is not None:
            io.wake()
        replies = [self._wait_all(futures)]
        return replies[0]

    def _wait_all(self, futures: list[Future[dict[str, Any]]]) -> dict[str, Any]:
        first: Optional[dict[str, Any]] = None
        error: Optional[BaseException] = None
        for future in futures:
            try:
                reply = self._wait(future)
            except Exception as exc:
                error = error or exc
                continue
            first = first or reply
        if error is not None:
            raise error
        assert first is not None
        return first

    def _unsubscribe(self, names: list[str]) -> dict[str, Any]:
        self._check_open()
        futures = []
        deadline = time.monotonic() + self.config.request_timeout
        with self._lock:
            kept = [n for n in names if n in self._books and not self._books[n].closed]
            self._book_only.update(kept)  # an order book still reads them: keep them held
            names = [n for n in names if n not in kept]
            for channel in self._channels.values():
                shard = channel.shard
                mine = [n for n in names if shard.serves(n)]
                if mine:
                    future: Future[dict[str, Any]] = Future()
                    shard.submit(Control("UNSUBSCRIBE", mine, deadline, [_settler(future)]))
                    futures.append(future)
        if not futures:
            return {"result": None, "id": None}
        io = self._io
        if io is not None:
            io.wake()
        return self._wait_all(futures)

    # Private methods (I/O thread)

    def _lane_put(self, batch: list[tuple[str, Any]]) -> None:
        self._lane.put(batch)

    def _ack_seen(self, channel: _ShardChannel, now: float) -> None:
        """A control was acked: watch the streams now held, forget the others (``_lock``)."""
        active = channel.shard.active
        silence = self._silence
        for stream in active:
            silence.watch(stream, now)
        held = set().union(*(c.shard.active for c in self._channels.values()))
        for stream in [s for s in silence.heard if s not in held]:
            silence.unwatch(stream)
        for stream in {ident[0] for ident in channel.handover.last} - active:
            channel.handover.forget(stream)
        if silence.stale - held:
            self._check_stale(now)

    def _gap(self, streams: list[str], reason: str) -> None:
        self.gaps += 1
        self._lane.signal("gap", streams=streams, reason=reason)
        for stream in streams:
            book = self._books.get(stream)
            if book is not None:
                with contextlib.suppress(Exception):
                    book.invalidate("reconnected")

    def _check_stale(self, now: float) -> None:
        changed = self._silence.check(now)
        if changed is None:
            return
        self._lane.signal("stale", streams=sorted(changed))
        self._update_state()

    def _channel_closed(
        self, channel: _ShardChannel, cause: Optional[BaseException], held: list[str]
    ) -> None:
        with self._lock:
            if self._channels.get(channel.shard.number) is channel:
                del self._channels[channel.shard.number]
                self._malformed_gone += channel.malformed
        if cause is not None and channel.ever_opened and self._io is not None:
            self._failure = cause
            log.error("%s failed: %s", channel.name, cause)
            self._gap(held, f"connection failed: {cause}")
            self._set_state(State.FAILED)
            io = self._io
            if io is not None:
                io.close()
            self._lane.close()

    def _update_state(self) -> None:
        if self._state in (State.CLOSED, State.FAILED) or self._io is None:
            return
        with self._lock:
            channels = list(self._channels.values())
        if any(c.current == 0 for c in channels):
            opened = any(c.ever_opened for c in channels)
            state = State.RECONNECTING if opened else State.CONNECTING
        elif self._silence.stale:
            state = State.STALE
        else:
            state = State.CONNECTED
        self._set_state(state)

    def _set_state(self, state: State) -> None:
        if state is self._state:
            return
        self._state = state
        callback = self.on_state_change
        if callback is not None:
            self._dispatcher.post(callback, state)


def _settler(future: Future[dict[str, Any]]) -> Callable[[Any, Any], None]:
    """A ``Control`` waiter that settles ``future`` with the ack or a bfsync exception."""

    def settle(reply: Any, error: Any) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(reply)
            return
        kind, message, code = error
        exc: Exception
        if kind == "error":
            exc = RequestError(message, code=code, msg=message, response=reply)
        elif kind == "timeout":
            exc = RequestTimeoutError(message)
        elif kind == "lost":
            exc = ConnectionLostError(message)
        else:
            exc = ConnectionError(message)
        future.set_exception(exc)

    return settle


def _stop(io: IOThread, lane: DeliveryLane, books: dict[str, OrderBook]) -> None:
    """A service dropped without close(): stop its threads."""
    io.close()
    lane.close()
    _close_books(books)


def _close_books(books: dict[str, OrderBook]) -> None:
    """Close every book, waiting one second in all for fetches in progress (they end then)."""
    deadline = time.monotonic() + 1.0
    for book in list(books.values()):
        with contextlib.suppress(Exception):
            book.close(max(0.0, deadline - time.monotonic()))
