"""
The stream side of ``FakeExchange``: Binance's market routes (``/public``, ``/market``), the
private (user data) route and the legacy ``/ws`` and ``/stream`` paths, on the fake's port.

``StreamsMixin`` adds the public API (publishing, faults, counters) to ``FakeExchange``;
``_StreamHub`` holds the connections and their subscriptions. Connections are served on the
fake's event loop; the publishing methods may be called from any thread. Frames are written
to the socket directly as complete server (unmasked) text frames, in batches, which keeps
publishing fast enough for benchmarks. See docs/fake_exchange.md, "Streams".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import struct
import threading
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.protocol import State

from . import _triggers
from ._book import Book, LevelInput, to_levels
from ._engine import MSG_NO_LISTEN_KEY, ApiError, Exchange, SymbolSpec, fmt
from ._streams import (
    LEGACY,
    MAX_STREAMS,
    MESSAGE_LIMIT,
    ROUTES,
    StreamPath,
    StreamSession,
    canonical,
    deliverable,
    parse_path,
)

__all__ = ["StreamsMixin"]

JsonDict = dict[str, Any]
Number = Union[str, int, float, Decimal]
_TICK = 0.02  # the hub's housekeeping period (ages, silences, listenKey expiry), seconds
_KLINE_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,  # 30 days: the fake's month
}
USER_EVENTS = (
    "ORDER_TRADE_UPDATE",
    "TRADE_LITE",
    "ACCOUNT_UPDATE",
    "ALGO_UPDATE",
    "MARGIN_CALL",
    "ACCOUNT_CONFIG_UPDATE",
    "STRATEGY_UPDATE",
    "GRID_UPDATE",
    "CONDITIONAL_ORDER_TRIGGER_REJECT",
    "listenKeyExpired",
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _frame(text: str) -> bytes:
    """One complete, unmasked WebSocket text frame (a server frame)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + data
    return struct.pack("!BBQ", 0x81, 127, n) + data


def _wrap(name: str, text: str) -> str:
    return '{"stream":' + _dumps(name) + ',"data":' + text + "}"


class _StreamConn:
    """One stream connection; touched only on the server thread (``keys`` under the lock)."""

    __slots__ = (
        "held",
        "index",
        "keys",
        "last_ping",
        "opened_at",
        "route",
        "session",
        "silenced_until",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, index: int, path: StreamPath, opened_at: float
    ) -> None:
        self.ws = ws
        self.index = index
        self.route = path.route
        self.session = StreamSession(path.route, combined=path.combined)
        self.opened_at = opened_at
        self.last_ping = opened_at
        self.silenced_until = 0.0  # loop time; events are not sent before it
        # private: listenKey -> event types delivered (None: all)
        self.keys: dict[str, Optional[set[str]]] = {}
        self.held: Optional[list[bytes]] = []  # written during the handshake; None: flushed

    def write(self, data: bytes) -> bool:
        """Hand complete frames to the socket; False once the connection is closing."""
        state = self.ws.state
        if state is State.CONNECTING and self.held is not None:
            self.held.append(data)
            return True
        if state is not State.OPEN:
            return False
        self.flush()
        self.ws.transport.write(data)
        return True

    def flush(self) -> None:
        """Send what was written during the handshake (once the connection is open)."""
        held, self.held = self.held, None
        if held and self.ws.state is State.OPEN:
            self.ws.transport.write(b"".join(held))


class _StreamHub:
    """The stream connections, their subscriptions and the stream faults and counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conns: dict[int, _StreamConn] = {}
        self.opening: dict[ServerConnection, _StreamConn] = {}  # handshake accepted, not served
        self.index: dict[str, set[_StreamConn]] = {}  # canonical stream -> receiving conns
        self.next_index = 0
        self.task_loop: Optional[asyncio.AbstractEventLoop] = None
        self.message_limit = MESSAGE_LIMIT
        self.max_streams = MAX_STREAMS
        self.close_age: Optional[float] = None
        self.close_code = 1000
        self.route_silence: dict[str, float] = {}  # route -> loop time it ends (new conns too)
        self.stats = {
            "connections_total": 0,
            "control_messages": 0,
            "subscribe_requests": 0,
            "events_sent": 0,
            "closed_for_rate": 0,
            "aged_out": 0,
            "dropped": 0,
            "user_events_sent": 0,
            "listen_keys_expired": 0,
        }

    def add_to_index(self, conn: _StreamConn, names: Iterable[str]) -> None:
        with self.lock:
            for name in names:
                if deliverable(conn.route, name):
                    self.index.setdefault(name, set()).add(conn)

    def remove_from_index(self, conn: _StreamConn, names: Iterable[str]) -> None:
        with self.lock:
            for name in names:
                receivers = self.index.get(name)
                if receivers is not None:
                    receivers.discard(conn)
                    if not receivers:
                        del self.index[name]

    def receivers(self, name: str) -> int:
        with self.lock:
            return len(self.index.get(name, ()))

    def deliver(self, name: str, texts: Sequence[str]) -> None:
        """Send events of stream ``name`` to its receivers (server thread)."""
        with self.lock:
            targets = list(self.index.get(name, ()))
        if not targets:
            return
        now = asyncio.get_running_loop().time()
        raw: Optional[bytes] = None
        wrapped: Optional[bytes] = None
        sent = 0
        for conn in targets:
            if conn.silenced_until > now:
                continue
            if conn.session.combined:
                if wrapped is None:
                    wrapped = b"".join(_frame(_wrap(name, t)) for t in texts)
                data = wrapped
            else:
                if raw is None:
                    raw = b"".join(_frame(t) for t in texts)
                data = raw
            if conn.write(data):
                sent += len(texts)
        with self.lock:
            self.stats["events_sent"] += sent


class StreamsMixin:
    """Binance's stream routes on ``FakeExchange``; see docs/fake_exchange.md, "Streams"."""

    if TYPE_CHECKING:  # provided by FakeExchange
        _loop: Optional[asyncio.AbstractEventLoop]
        _thread: Optional[threading.Thread]
        _cond: threading.Condition
        _exchange: Exchange
        _host: str
        _pings_sent: int
        ping_interval: Optional[float]

        def _on_pong(self, future: asyncio.Future[Any]) -> None: ...

        @property
        def port(self) -> int: ...

        def _now_ms(self) -> int: ...

        def _spawn(self, coroutine: Any) -> None: ...

    #: The private route accepts the path form ``/private/ws/<listenKey>`` (``False``: such a
    #: connection is accepted and gets nothing, as one client reports for mainnet).
    private_path_form: bool = True
    #: ``True``: a listenKey given without ``events=`` gets no events (one report for
    #: mainnet); ``False`` (default): it gets every event type.
    private_events_required: bool = False

    @property
    def _hub(self) -> _StreamHub:
        hub: Optional[_StreamHub] = self.__dict__.get("_stream_hub")
        if hub is None:
            hub = self.__dict__.setdefault("_stream_hub", _StreamHub())
        return hub

    # ---- URLs, settings, counters -----------------------------------------------------------

    @property
    def stream_url(self) -> str:
        """``ws://127.0.0.1:PORT``: append ``/public/ws/...``, ``/market/stream?streams=...``."""
        return f"ws://{self._host}:{self.port}"

    def set_stream_limits(
        self, messages_per_second: int = MESSAGE_LIMIT, streams_per_connection: int = MAX_STREAMS
    ) -> None:
        """
        The stream limits enforced: incoming messages per second per connection (over it,
        the connection is closed with 1008) and streams per connection (over it, a SUBSCRIBE
        is refused with code 2). Arguments left out go back to Binance's 10 and 1024.
        """
        for name, value in (
            ("messages_per_second", messages_per_second),
            ("streams_per_connection", streams_per_connection),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        hub = self._hub
        with hub.lock:
            hub.message_limit = messages_per_second
            hub.max_streams = streams_per_connection

    @property
    def stream_stats(self) -> dict[str, int]:
        """
        Stream counters since construction: ``connections`` (open now),
        ``connections_total``, ``control_messages`` (frames received), ``subscribe_requests``,
        ``subscriptions`` (streams subscribed now, all connections), ``events_sent`` (market
        events handed to sockets), ``user_events_sent``, ``closed_for_rate``, ``aged_out``,
        ``dropped``, ``listen_keys_expired``.
        """
        hub = self._hub
        with hub.lock:
            stats = dict(hub.stats)
            stats["connections"] = sum(1 for c in hub.conns.values() if c.ws.state is State.OPEN)
            stats["subscriptions"] = sum(len(c.session.subscriptions) for c in hub.conns.values())
        return stats

    @property
    def stream_buffered_bytes(self) -> int:
        """
        Bytes published but not yet taken by the clients' sockets (the largest backlog of
        any stream connection): a benchmark can pace ``publish_many`` on it.
        """
        hub = self._hub
        with hub.lock:
            conns = list(hub.conns.values())
        sizes = [0]
        for conn in conns:
            with contextlib.suppress(Exception):  # closed meanwhile
                sizes.append(conn.ws.transport.get_write_buffer_size())
        return max(sizes)

    def stream_subscriptions(self, route: Optional[str] = None) -> list[list[str]]:
        """The subscriptions of each open stream connection (of ``route``), oldest first."""
        _check_route(route)
        hub = self._hub
        with hub.lock:
            return [
                list(c.session.subscriptions)
                for c in hub.conns.values()
                if route is None or c.route == route
            ]

    # ---- publishing ---------------------------------------------------------------------------

    def publish(self, stream: str, payload: Any) -> int:
        """
        Send ``payload`` (a JSON-able value, or a ``str`` of JSON text sent as is) as one event
        of ``stream`` to every connection subscribed to it on the right route (combined-mode
        connections get ``{"stream", "data"}``). Returns how many connections it goes to.
        Any thread; events of one caller keep their order; a connection gets the event
        after every control frame it sent before the call was answered.
        """
        return self.publish_many(stream, [payload])

    def publish_many(self, stream: str, payloads: Iterable[Any], wait: bool = False) -> int:
        """
        ``publish()`` for many events of one stream at once (one hand-off to the server
        thread, one socket write per connection): the fast path for benchmarks. Returns how
        many connections they go to. ``wait=True``: return once the frames were handed to
        the sockets (within 5 s; then ``stream_buffered_bytes`` shows what the clients have
        not taken yet, to pace a publisher). Not from the server thread with ``wait``.
        """
        if not isinstance(stream, str) or not stream:
            raise ValueError("stream must be a non-empty str")
        name = canonical(stream)
        texts = [p if isinstance(p, str) else _dumps(p) for p in payloads]
        if wait and threading.current_thread() is self._thread:
            raise RuntimeError("publish_many(wait=True) cannot be called from the server thread")
        return self._send_texts(name, texts, wait)

    def _send_texts(self, name: str, texts: list[str], wait: bool = False) -> int:
        hub = self._hub
        count = hub.receivers(name)
        loop = self._loop
        if not count or not texts or loop is None:
            return 0
        done: Optional[threading.Event] = threading.Event() if wait else None

        def run() -> None:
            try:
                hub.deliver(name, texts)
            finally:
                if done is not None:
                    done.set()

        try:
            loop.call_soon_threadsafe(run if wait else partial(hub.deliver, name, texts))
        except RuntimeError:  # the loop closed: stopped
            return 0
        if done is not None:
            done.wait(5.0)
        return count

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self._exchange.symbols.get(symbol)
        if spec is None:
            raise ValueError(f"symbol must be a symbol of the fake, got {symbol!r}")
        return spec

    def _book(self, symbol: str) -> Book:
        self._spec(symbol)
        return self._exchange.live_book(symbol)

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> JsonDict:
        """
        The depth snapshot the fake serves for ``symbol`` now (as ws-fapi ``depth``):
        ``{lastUpdateId, E, T, bids, asks}``. ``ValueError`` for an unknown symbol or a
        ``limit`` not in 5 10 20 50 100 500 1000.
        """
        self._spec(symbol)
        with self._cond:
            try:
                return self._exchange.depth_snapshot(symbol, limit, self._now_ms())
            except ApiError as exc:
                raise ValueError(
                    f"limit must be one of 5 10 20 50 100 500 1000: {exc.msg}"
                ) from None

    def publish_depth(self, symbol: str, bids: LevelInput = (), asks: LevelInput = ()) -> JsonDict:
        """
        Apply ``bids`` / ``asks`` (``(price, qty)`` pairs, absolute quantities, 0 removes) to
        ``symbol``'s live book and publish the diff as a ``depthUpdate`` on ``<s>@depth`` (and
        its ``@100ms`` / ``@250ms`` / ``@500ms`` forms); ``<s>@depth5/10/20`` subscribers get
        the top levels. The ``U/u/pu`` chain continues from the previous event. Returns the
        payload.
        """
        with self._cond:
            book, payload = self._apply_depth(symbol, bids, asks)
            partial: list[tuple[str, str]] = []
            low = symbol.lower()
            for levels in (5, 10, 20):
                names = [
                    f"{low}@depth{levels}{speed}" for speed in ("", "@100ms", "@250ms", "@500ms")
                ]
                wanted = [n for n in names if self._hub.receivers(n)]
                if wanted:
                    top_bids, top_asks = book.top(levels)
                    text = _dumps(dict(payload, b=book.wire(top_bids), a=book.wire(top_asks)))
                    partial.extend((n, text) for n in wanted)
        text = _dumps(payload)
        for speed in ("", "@100ms", "@250ms", "@500ms"):
            self._send_texts(f"{low}@depth{speed}", [text])
        for name, partial_text in partial:
            self._send_texts(name, [partial_text])
        return payload

    def depth_gap(self, symbol: str, bids: LevelInput = (), asks: LevelInput = ()) -> JsonDict:
        """
        Make the next ``publish_depth`` of ``symbol`` break the ``pu`` chain: apply ``bids`` /
        ``asks`` (may be empty) as an event nobody receives (as when a client misses one).
        Snapshots include it, so a client that resyncs is right again. Returns the lost
        payload.
        """
        with self._cond:
            return self._apply_depth(symbol, bids, asks)[1]

    def _apply_depth(
        self, symbol: str, bids: LevelInput, asks: LevelInput
    ) -> tuple[Book, JsonDict]:
        """Apply a diff to ``symbol``'s live book (caller holds the lock): the book, the event."""
        bid_levels, ask_levels = to_levels(bids, "bids"), to_levels(asks, "asks")
        book = self._book(symbol)
        first, last, prev = book.apply(bid_levels, ask_levels)
        now = self._now_ms()
        payload = {
            "e": "depthUpdate",
            "E": now,
            "T": now,
            "s": symbol,
            "U": first,
            "u": last,
            "pu": prev,
            "b": book.wire(bid_levels),
            "a": book.wire(ask_levels),
        }
        return book, payload

    def publish_book_ticker(
        self,
        symbol: str,
        bid: Optional[Number] = None,
        bid_qty: Optional[Number] = None,
        ask: Optional[Number] = None,
        ask_qty: Optional[Number] = None,
    ) -> JsonDict:
        """
        Publish a ``bookTicker`` on ``<s>@bookTicker`` and ``!bookTicker``: the best levels of
        ``symbol``'s live book unless given. ``u`` is a new update id of that book (so it
        increases, and a depth diff that follows covers it). Returns the payload.
        """
        with self._cond:
            spec = self._spec(symbol)
            book = self._exchange.live_book(symbol)
            (best_bid, best_bid_qty), (best_ask, best_ask_qty) = book.best()
            now = self._now_ms()
            pp, qp = spec.price_precision, spec.quantity_precision
            payload = {
                "e": "bookTicker",
                "u": book.next_id(),
                "E": now,
                "T": now,
                "s": symbol,
                "b": _num(bid, best_bid, pp, "bid"),
                "B": _num(bid_qty, best_bid_qty, qp, "bid_qty"),
                "a": _num(ask, best_ask, pp, "ask"),
                "A": _num(ask_qty, best_ask_qty, qp, "ask_qty"),
            }
        text = _dumps(payload)
        self._send_texts(f"{symbol.lower()}@bookTicker", [text])
        self._send_texts("!bookTicker", [text])
        return payload

    def publish_agg_trade(
        self,
        symbol: str,
        price: Optional[Number] = None,
        quantity: Number = "0.001",
        buyer_maker: bool = False,
    ) -> JsonDict:
        """Publish an ``aggTrade`` on ``<s>@aggTrade`` (price: the symbol's). Returns it."""
        with self._cond:
            spec = self._spec(symbol)
            now = self._now_ms()
            trade = next(_AGG_IDS)
            first = next(_TRADE_IDS)
            qty = _num(quantity, Decimal(0), spec.quantity_precision, "quantity")
            payload = {
                "e": "aggTrade",
                "E": now,
                "s": symbol,
                "a": trade,
                "p": _num(price, spec.price, spec.price_precision, "price"),
                "q": qty,
                "nq": qty,
                "f": first,
                "l": first,
                "T": now,
                "m": bool(buyer_maker),
            }
        self._send_texts(f"{symbol.lower()}@aggTrade", [_dumps(payload)])
        return payload

    def publish_mark_price(
        self,
        symbol: str,
        mark_price: Optional[Number] = None,
        index_price: Optional[Number] = None,
        funding_rate: Number = "0.00010000",
        next_funding_time: Optional[int] = None,
    ) -> JsonDict:
        """
        Publish a ``markPriceUpdate`` on ``<s>@markPrice``, ``<s>@markPrice@1s`` and (as a
        one-item list) ``!markPrice@arr`` / ``!markPrice@arr@1s``. Returns the payload.
        """
        with self._cond:
            spec = self._spec(symbol)
            now = self._now_ms()
            mark = _num(mark_price, spec.price, 8, "mark_price")
            payload = {
                "e": "markPriceUpdate",
                "E": now,
                "s": symbol,
                "p": mark,
                "ap": mark,
                "i": _num(index_price, Decimal(mark), 8, "index_price"),
                "P": mark,
                "r": _num(funding_rate, Decimal(0), 8, "funding_rate"),
                "T": next_funding_time
                if next_funding_time is not None
                else (now // 28_800_000 + 1) * 28_800_000,
            }
        text = _dumps(payload)
        low = symbol.lower()
        self._send_texts(f"{low}@markPrice", [text])
        self._send_texts(f"{low}@markPrice@1s", [text])
        self._send_texts("!markPrice@arr", ["[" + text + "]"])
        self._send_texts("!markPrice@arr@1s", ["[" + text + "]"])
        return payload

    def publish_kline(
        self,
        symbol: str,
        interval: str = "1m",
        open: Optional[Number] = None,
        high: Optional[Number] = None,
        low: Optional[Number] = None,
        close: Optional[Number] = None,
        volume: Number = "0",
        closed: bool = False,
        start_time: Optional[int] = None,
    ) -> JsonDict:
        """
        Publish a ``kline`` on ``<s>@kline_<interval>``: prices default to the symbol's,
        ``start_time`` to the start of the current interval. Returns the payload.
        """
        span = _KLINE_MS.get(interval)
        if span is None:
            raise ValueError(f"interval must be one of {' '.join(_KLINE_MS)}, got {interval!r}")
        with self._cond:
            spec = self._spec(symbol)
            now = self._now_ms()
            pp = spec.price_precision
            start = start_time if start_time is not None else now - now % span
            close_text = _num(close, spec.price, pp, "close")
            vol = _num(volume, Decimal(0), spec.quantity_precision, "volume")
            trade = next(_TRADE_IDS)
            payload = {
                "e": "kline",
                "E": now,
                "s": symbol,
                "k": {
                    "t": start,
                    "T": start + span - 1,
                    "s": symbol,
                    "i": interval,
                    "f": trade,
                    "L": trade,
                    "o": _num(open, Decimal(close_text), pp, "open"),
                    "c": close_text,
                    "h": _num(high, Decimal(close_text), pp, "high"),
                    "l": _num(low, Decimal(close_text), pp, "low"),
                    "v": vol,
                    "n": 1,
                    "x": bool(closed),
                    "q": fmt(Decimal(vol) * Decimal(close_text), 8),
                    "V": "0",
                    "Q": "0",
                    "B": "0",
                },
            }
        self._send_texts(f"{symbol.lower()}@kline_{interval}", [_dumps(payload)])
        return payload

    def publish_ticker(self, symbol: str, last_price: Optional[Number] = None) -> JsonDict:
        """
        Publish a ``24hrTicker`` on ``<s>@ticker`` / ``!ticker@arr`` and a ``24hrMiniTicker``
        on ``<s>@miniTicker`` / ``!miniTicker@arr`` for a flat day at ``last_price`` (default:
        the symbol's price). Returns the ticker payload.
        """
        with self._cond:
            spec = self._spec(symbol)
            now = self._now_ms()
            pp = spec.price_precision
            last = _num(last_price, spec.price, pp, "last_price")
            book = self._exchange.live_book(symbol)
            (bid, bid_qty), (ask, ask_qty) = book.best()
            zero = fmt(Decimal(0), pp)
            mini = {
                "e": "24hrMiniTicker",
                "E": now,
                "s": symbol,
                "c": last,
                "o": last,
                "h": last,
                "l": last,
                "v": "0",
                "q": "0",
            }
            ticker = {
                "e": "24hrTicker",
                "E": now,
                "s": symbol,
                "p": zero,
                "P": "0.000",
                "w": last,
                "c": last,
                "Q": "0",
                "o": last,
                "h": last,
                "l": last,
                "v": "0",
                "q": "0",
                "O": now - 86_400_000,
                "C": now,
                "F": 0,
                "L": 0,
                "n": 0,
                "b": fmt(bid, pp),
                "B": fmt(bid_qty, spec.quantity_precision),
                "a": fmt(ask, pp),
                "A": fmt(ask_qty, spec.quantity_precision),
            }
        low = symbol.lower()
        mini_text, ticker_text = _dumps(mini), _dumps(ticker)
        self._send_texts(f"{low}@miniTicker", [mini_text])
        self._send_texts("!miniTicker@arr", ["[" + mini_text + "]"])
        self._send_texts(f"{low}@ticker", [ticker_text])
        self._send_texts("!ticker@arr", ["[" + ticker_text + "]"])
        return ticker

    def publish_force_order(
        self,
        symbol: str,
        side: str = "SELL",
        price: Optional[Number] = None,
        quantity: Number = "0.010",
    ) -> JsonDict:
        """Publish a liquidation (``forceOrder``) on ``<s>@forceOrder`` and ``!forceOrder@arr``."""
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side must be 'BUY' or 'SELL', got {side!r}")
        with self._cond:
            spec = self._spec(symbol)
            now = self._now_ms()
            pp, qp = spec.price_precision, spec.quantity_precision
            price_text = _num(price, spec.price, pp, "price")
            qty = _num(quantity, Decimal(0), qp, "quantity")
            payload = {
                "e": "forceOrder",
                "E": now,
                "o": {
                    "s": symbol,
                    "S": side,
                    "o": "LIMIT",
                    "f": "IOC",
                    "q": qty,
                    "p": price_text,
                    "ap": price_text,
                    "X": "FILLED",
                    "l": qty,
                    "z": qty,
                    "T": now,
                },
            }
        text = _dumps(payload)
        self._send_texts(f"{symbol.lower()}@forceOrder", [text])
        self._send_texts("!forceOrder@arr", [text])
        return payload

    # ---- faults ---------------------------------------------------------------------------------

    def drop_stream_connections(
        self,
        route: Optional[str] = None,
        close_frame: bool = True,
        code: int = 1001,
        reason: str = "",
    ) -> int:
        """
        Close the stream connections (of ``route``: ``"public"``, ``"market"``, ``"private"``
        or ``"legacy"``; ``None``: all) now, with a close frame or (``close_frame=False``) by
        aborting TCP. ws-fapi connections are untouched. Returns how many were dropped.
        """
        _check_route(route)
        loop = self._loop
        if loop is None:
            return 0
        if threading.current_thread() is self._thread:
            raise RuntimeError("drop_stream_connections() cannot be called from the server thread")
        future = asyncio.run_coroutine_threadsafe(
            self._drop_streams(route, close_frame, code, reason), loop
        )
        return future.result(5.0)

    async def _drop_streams(
        self, route: Optional[str], close_frame: bool, code: int, reason: str
    ) -> int:
        hub = self._hub
        with hub.lock:
            targets = [
                c
                for c in hub.conns.values()
                if c.ws.state is State.OPEN and (route is None or c.route == route)
            ]
            hub.stats["dropped"] += len(targets)
        for conn in targets:
            if close_frame:
                self._spawn(conn.ws.close(code, reason))
            else:
                conn.ws.transport.abort()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline and any(c.ws.state is State.OPEN for c in targets):
            await asyncio.sleep(0.001)
        return len(targets)

    def silence_streams(
        self, seconds: float, route: Optional[str] = None, new_connections: bool = False
    ) -> int:
        """
        Send no events (market or user data) to the open stream connections (of ``route``)
        for ``seconds``: they stay open, answer pings and control frames. With
        ``new_connections``, connections opened meanwhile on the route are silent too.
        Returns how many open connections were silenced. ``unsilence_streams()`` ends it.
        """
        _check_route(route)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
        loop = self._loop
        if loop is None:
            return 0
        hub = self._hub
        until = loop.time() + float(seconds)
        with hub.lock:
            targets = [c for c in hub.conns.values() if route is None or c.route == route]
            for conn in targets:
                conn.silenced_until = until
            if new_connections:
                for name in (route,) if route is not None else (*ROUTES, LEGACY):
                    hub.route_silence[name] = until
        return len(targets)

    def unsilence_streams(self) -> None:
        """End every ``silence_streams()``."""
        hub = self._hub
        with hub.lock:
            hub.route_silence.clear()
            for conn in hub.conns.values():
                conn.silenced_until = 0.0

    def close_streams_at_age(self, seconds: Optional[float], code: int = 1000) -> None:
        """
        Close each stream connection, present and future, with a close frame (``code``,
        reason ``connection reached its maximum age``) once it is ``seconds`` old, as
        Binance does after 24 hours. ``None`` stops it. ``stream_stats["aged_out"]`` counts.
        """
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0
        ):
            raise ValueError(f"seconds must be a number > 0 or None, got {seconds!r}")
        if code not in (1000, 1001):
            raise ValueError(f"code must be 1000 or 1001, got {code!r}")
        hub = self._hub
        with hub.lock:
            hub.close_age = None if seconds is None else float(seconds)
            hub.close_code = code

    # ---- the user data stream -----------------------------------------------------------------

    def expire_listen_key(self, listen_key: str) -> bool:
        """
        Expire ``listen_key`` now, as after 60 minutes without a keepalive: private
        connections bound to it get ``listenKeyExpired`` and no more events; pings for it
        get -1125. Returns whether it was alive.
        """
        with self._cond:
            owners = [k for k, (key, _) in self._exchange.listen_keys.items() if key == listen_key]
            for api_key in owners:
                del self._exchange.listen_keys[api_key]
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopped
                loop.call_soon_threadsafe(self._check_listen_keys)
        return bool(owners)

    def move_price(self, symbol: str, price: Number) -> tuple[int, int]:
        """
        Move ``symbol``'s price (as ``set_price``) and let the market react: resting LIMIT
        orders the price crosses fill at their price, and algo orders whose trigger it meets
        trigger (STOP: BUY at or above, SELL at or below the trigger; TAKE_PROFIT the reverse;
        trailing orders at their ``activatePrice``). User-data events follow. Returns
        ``(orders filled, algo orders triggered)``.
        """
        value = Decimal(_num(price, Decimal(0), 12, "price"))
        if value <= 0:
            raise ValueError(f"price must be > 0, got {price!r}")
        with self._cond:
            self._spec(symbol)
            result = _triggers.move_price(self._exchange, symbol, value, self._now_ms())
        self._push_user_events()
        return result

    def trigger_algo_order(self, algo_id: int) -> JsonDict:
        """
        Trigger algo order ``algo_id`` now, whatever the price: ALGO_UPDATE TRIGGERING and
        TRIGGERED, the order it places (MARKET; LIMIT at its price for STOP / TAKE_PROFIT)
        with its ORDER_TRADE_UPDATE events, and FINISHED once that order filled. Returns a
        copy of the placed order. ``KeyError`` if unknown; ``ValueError`` unless it is NEW.
        """
        with self._cond:
            order = _triggers.trigger_algo(self._exchange, algo_id, self._now_ms())
        self._push_user_events()
        return order

    def _push_user_events(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopped
                loop.call_soon_threadsafe(self._stream_after_frame)

    def _live_keys(self) -> set[str]:
        with self._cond:
            return set(self._exchange.active_listen_keys(self._now_ms()).values())

    def _check_listen_keys(self) -> None:
        """Tell private connections whose listenKey expired (server thread)."""
        hub = self._hub
        with hub.lock:
            bound = [c for c in hub.conns.values() if c.keys]
        if not bound:
            return
        live = self._live_keys()
        now = self._now_ms()
        for conn in bound:
            for key in [k for k in conn.keys if k not in live]:
                with hub.lock:
                    conn.keys.pop(key)
                    hub.stats["listen_keys_expired"] += 1
                # Sent whatever events= asked for: a client must learn its key is gone.
                text = _dumps({"e": "listenKeyExpired", "E": str(now), "listenKey": key})
                if conn.session.combined:
                    text = _wrap(key, text)
                conn.write(_frame(text))

    def _stream_after_frame(self) -> None:
        """Push the user-data events the engine produced (server thread)."""
        with self._cond:
            events = self._exchange.user_events
            if not events:
                return
            self._exchange.user_events = []
        hub = self._hub
        with hub.lock:
            targets = [c for c in hub.conns.values() if c.keys]
        if not targets:
            return
        now = asyncio.get_running_loop().time()
        texts = [(e.get("e"), _dumps(e)) for e in events]
        sent = 0
        for conn in targets:
            if conn.silenced_until > now:
                continue
            frames: list[bytes] = []
            with hub.lock:
                keys = list(conn.keys.items())
            for key, wanted in keys:
                for kind, text in texts:
                    if wanted is None or kind in wanted:
                        frames.append(_frame(_wrap(key, text) if conn.session.combined else text))
            if frames and conn.write(b"".join(frames)):
                sent += len(frames)
        with hub.lock:
            hub.stats["user_events_sent"] += sent

    # ---- serving ------------------------------------------------------------------------------

    def _stream_refusal(
        self, connection: ServerConnection, request: HttpRequest
    ) -> Optional[HttpResponse]:
        """The handshake answer for a stream path that cannot be served (else None)."""
        path = parse_path(request.path)
        if path is None:
            route = urlsplit(request.path).path.strip("/").split("/")[0]
            if route in ROUTES:  # /public, /market/v1, ...: neither /ws nor /stream
                return connection.respond(HTTPStatus.NOT_FOUND, "Not a stream path.\n")
            return None
        hub = self._hub
        if len(path.streams) > hub.max_streams:
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                _dumps({"code": 2, "msg": "Invalid request: too many streams"}) + "\n",
            )
        if path.route == "private" and not (path.path_key and not self.private_path_form):
            live = self._live_keys()
            if any(key not in live for key, _ in path.listen_keys):
                return connection.respond(
                    HTTPStatus.BAD_REQUEST, _dumps({"code": -1125, "msg": MSG_NO_LISTEN_KEY}) + "\n"
                )
        conn = self._open_stream(connection, path)
        with hub.lock:
            hub.opening[connection] = conn
        return None

    def _open_stream(self, ws: ServerConnection, path: StreamPath) -> _StreamConn:
        """
        Register a connection and its URL's subscriptions (server thread). Called while its
        handshake is accepted, so an event published once the client is connected reaches
        it (frames written before the handshake completes are held until it does).
        """
        hub = self._hub
        loop = asyncio.get_running_loop()
        if hub.task_loop is not loop:
            hub.task_loop = loop
            self._spawn(self._stream_housekeeping())
        with hub.lock:
            index = hub.next_index
            hub.next_index += 1
            conn = _StreamConn(ws, index, path, loop.time())
            conn.session.max_streams = hub.max_streams
            silence = hub.route_silence.get(path.route, 0.0)
            conn.silenced_until = silence
            hub.conns[index] = conn
            hub.stats["connections_total"] += 1
        if path.route == "private":
            if not (path.path_key and not self.private_path_form):
                for key, events in path.listen_keys:
                    self._bind(conn, key, events)
        else:
            with hub.lock:
                for name in path.streams:
                    conn.session.subscriptions[name] = None
            hub.add_to_index(conn, path.streams)
        return conn

    async def _serve_stream(self, ws: ServerConnection, path: StreamPath) -> None:
        """Serve one stream connection until it closes (server thread)."""
        hub = self._hub
        with hub.lock:
            conn = hub.opening.pop(ws, None)
        if conn is None:
            conn = self._open_stream(ws, path)
        conn.flush()
        index = conn.index
        try:
            async for message in ws:
                await self._on_stream_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            with hub.lock:
                hub.conns.pop(index, None)
                self._forget(conn)

    def _forget(self, conn: _StreamConn) -> None:
        """Take ``conn`` out of the delivery index (hub lock held)."""
        conn.keys.clear()
        for name in conn.session.subscriptions:
            receivers = self._hub.index.get(name)
            if receivers is not None:
                receivers.discard(conn)
                if not receivers:
                    del self._hub.index[name]

    async def _on_stream_message(self, conn: _StreamConn, message: Union[str, bytes]) -> None:
        hub = self._hub
        loop = asyncio.get_running_loop()
        with hub.lock:
            hub.stats["control_messages"] += 1
            limit = hub.message_limit
            conn.session.max_streams = hub.max_streams
        if conn.session.over_rate(loop.time(), limit):
            with hub.lock:
                hub.stats["closed_for_rate"] += 1
            self._spawn(conn.ws.close(1008, "Too many messages"))
            return
        if conn.route == "private":  # listenKeys alive now, read before taking the hub lock
            live = self._live_keys()
            conn.session.check_private = lambda name: (
                None if name.partition("@")[0] in live else (-1125, MSG_NO_LISTEN_KEY)
            )
        with hub.lock:  # the subscriptions are read by other threads (stream_subscriptions)
            before = conn.session.subscribe_requests
            reply, added, removed = conn.session.handle(message)
            hub.stats["subscribe_requests"] += conn.session.subscribe_requests - before
        if conn.route == "private":
            for name in added:
                key, _, event = name.partition("@")
                self._bind(conn, key, event or None, replace=False)
            for name in removed:
                self._unbind(conn, name)
        else:
            hub.add_to_index(conn, added)
            hub.remove_from_index(conn, removed)
        conn.write(_frame(_dumps(reply)))

    def _bind(
        self, conn: _StreamConn, key: str, events: Optional[str], replace: bool = True
    ) -> None:
        """Deliver ``key``'s events (``"E1/E2"``; None: all) to ``conn``."""
        wanted: Optional[set[str]]
        if events is None:
            wanted = set() if self.private_events_required and replace else None
        else:
            wanted = {e for e in events.split("/") if e}
        with self._cond:
            if self._exchange.user_events is None:
                self._exchange.user_events = []
        with self._hub.lock:
            if key in conn.keys and not replace:
                current = conn.keys[key]
                if current is None or wanted is None:
                    conn.keys[key] = None
                else:
                    current.update(wanted)
            else:
                conn.keys[key] = wanted
            names = [key] if wanted is None else [f"{key}@{e}" for e in sorted(wanted)]
            for name in names:
                conn.session.subscriptions.setdefault(name, None)

    def _unbind(self, conn: _StreamConn, name: str) -> None:
        key, _, event = name.partition("@")
        with self._hub.lock:
            current = conn.keys.get(key, set())
            if not event or current is None:
                conn.keys.pop(key, None)
            else:
                current.discard(event)

    async def _stream_ping(self, conn: _StreamConn) -> None:
        if conn.ws.state is not State.OPEN:
            return
        try:
            waiter = await conn.ws.ping()
        except ConnectionClosed:
            return
        with self._cond:
            self._pings_sent += 1
        asyncio.ensure_future(waiter).add_done_callback(self._on_pong)

    async def _stream_housekeeping(self) -> None:
        """Close connections at their age, notice expired listenKeys, push user events."""
        hub = self._hub
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_TICK)
            now = loop.time()
            with hub.lock:
                age = hub.close_age
                code = hub.close_code
                old = [
                    c
                    for c in hub.conns.values()
                    if age is not None and c.ws.state is State.OPEN and now - c.opened_at >= age
                ]
                hub.stats["aged_out"] += len(old)
                for name in [r for r, until in hub.route_silence.items() if until <= now]:
                    del hub.route_silence[name]
                for ws, conn in list(hub.opening.items()):
                    if ws.state is State.CLOSED:  # the handshake failed after all
                        del hub.opening[ws]
                        hub.conns.pop(conn.index, None)
                        self._forget(conn)
            for conn in old:
                self._spawn(conn.ws.close(code, "connection reached its maximum age"))
            interval = self.ping_interval
            if interval is not None and interval > 0:
                with hub.lock:
                    due = [c for c in hub.conns.values() if now - c.last_ping >= interval]
                for conn in due:
                    conn.last_ping = now
                    self._spawn(self._stream_ping(conn))
            try:
                self._check_listen_keys()
                self._stream_after_frame()
            except Exception:  # never let a bug stop the housekeeping
                logging.getLogger("bfsync.testing").exception("stream housekeeping failed")


_AGG_IDS = itertools.count(500000001)
_TRADE_IDS = itertools.count(900000001)


def _check_route(route: Optional[str]) -> None:
    if route is not None and route not in (*ROUTES, LEGACY):
        raise ValueError(
            f"route must be one of public, market, private, legacy or None; got {route!r}"
        )


def _num(value: Optional[Number], default: Decimal, places: int, name: str) -> str:
    """``value`` (or ``default``) as Binance's decimal string with ``places`` decimals."""
    if value is None:
        return fmt(default, places)
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number or a numeric string, got {value!r}")
    try:
        number = Decimal(str(value))
    except Exception:
        raise ValueError(f"{name} must be a number or a numeric string, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return fmt(number, places)
