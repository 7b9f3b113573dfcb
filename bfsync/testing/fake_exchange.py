"""
``FakeExchange``: a local, offline Binance USD-M Futures WebSocket API ("ws-fapi") server.

It runs a real WebSocket server (the ``websockets`` package, on its own asyncio event loop in
a daemon thread) on ``127.0.0.1`` and an ephemeral port, speaks the ws-fapi frame protocol,
checks signatures and timestamps like Binance, and answers from a small deterministic market
(BTCUSDT at 50000, ETHUSDT at 3000) and account (10000 USDT). Tests can script replies, delay
or withhold them, drop connections and skew the server clock::

    from bfsync.testing import FakeExchange

    with FakeExchange() as fx:
        api_key, secret = fx.add_hmac_key()
        ...  # point your client at fx.url
        fx.script("order.place", error={"code": -2019, "msg": "Margin is insufficient."})
        fx.delay("depth", 0.5)
        fx.wait_for_requests(1, method="order.place")

See ``docs/fake_exchange.md`` for the methods served, the error codes and what is simplified.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ._engine import Exchange, Position, Session, SymbolSpec, make_key

__all__ = ["FakeExchange"]

T = TypeVar("T")
_LOG = logging.getLogger("bfsync.testing")
JsonDict = dict[str, Any]

_ALNUM = string.ascii_letters + string.digits
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 1.0
_TICK = 0.02


def _random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class _Connection:
    """One client connection: its socket, its session and its in-flight reply tasks."""

    __slots__ = ("session", "tasks", "ws")

    def __init__(self, ws: ServerConnection, session: Session) -> None:
        self.ws = ws
        self.session = session
        self.tasks: set[asyncio.Task[None]] = set()


class FakeExchange:
    """
    A local ws-fapi server for tests: ``with FakeExchange() as fx: ... fx.url ...``.

    Every public method and property may be called from any thread. Attributes:

    - ``clock_offset_ms``: skew of the server clock in ms (timestamp checks, ``serverTime``,
      ``E``/``T``/``time`` fields). Default 0.
    - ``ping_interval``: when set (seconds), the server pings each connection that often.

    Args:
        host: the interface to listen on.
        port: the port; 0 (default) picks a free one. After ``stop()``, ``start()`` binds the
            same port again, so clients can reconnect to an unchanged ``url``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock_offset_ms: int = 0
        self.ping_interval: Optional[float] = None
        self._host = host
        self._port = port  # the port to bind: as given, then the one bound first
        self._bound_port: Optional[int] = None
        self._cond = threading.Condition(threading.RLock())
        self._exchange = Exchange()
        self._requests: list[JsonDict] = []
        self._connections: dict[int, _Connection] = {}
        self._next_connection = 0
        self._pings_sent = 0
        self._pongs_received = 0
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._start_error: Optional[BaseException] = None
        self._background: set[asyncio.Task[Any]] = set()

    # ---- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self.running else "stopped"
        return f"FakeExchange({where}, keys={len(self._exchange.keys)})"

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> FakeExchange:
        """
        Start the server; returns (``self``) once the port is bound. A no-op when running.

        Raises:
            RuntimeError: the server could not start (e.g. the port is taken).
        """
        with self._cond:
            if self.running:
                return self
            ready = threading.Event()
            self._start_error = None
            thread = threading.Thread(
                target=self._run, args=(ready,), name="bfsync-FakeExchange", daemon=True
            )
            self._thread = thread
            thread.start()
        if not ready.wait(_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"FakeExchange did not start within {_START_TIMEOUT:g} s")
        if self._start_error is not None:
            thread.join(_STOP_TIMEOUT)
            with self._cond:
                self._thread = None
            raise RuntimeError(
                f"FakeExchange could not start on {self._host}:{self._port}: {self._start_error}"
            ) from self._start_error
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """
        Close every connection (close frame 1001, TCP abort after 1 s without an answer), stop
        the server and join its thread within ``timeout`` seconds. Idempotent; any thread.

        Raises:
            RuntimeError: the thread is still alive after ``timeout`` (not expected).
        """
        with self._cond:
            thread, loop, event = self._thread, self._loop, self._stop_event
            self._thread = None
        if thread is None:
            return
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)
        if thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"FakeExchange thread did not stop within {timeout:g} s")

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:
            if ready.is_set():
                _LOG.exception("FakeExchange server thread failed")
            else:
                self._start_error = exc
        finally:
            with self._cond:
                if self._thread in (None, threading.current_thread()):
                    # Not restarted meanwhile by a start() after a timed-out stop().
                    self._loop = None
                    self._stop_event = None
                    self._connections.clear()
                self._cond.notify_all()
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        stop_event = asyncio.Event()
        server = await serve(
            self._handler,
            self._host,
            self._port,
            ping_interval=None,
            ping_timeout=None,
            close_timeout=_CLOSE_TIMEOUT,
            compression=None,
        )
        with self._cond:
            self._port = self._bound_port = server.sockets[0].getsockname()[1]
            self._loop = asyncio.get_running_loop()
            self._stop_event = stop_event
        ready.set()
        try:
            await stop_event.wait()
        finally:
            await self._close_server(server)

    async def _close_server(self, server: Server) -> None:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), _CLOSE_TIMEOUT + 1.5)
        except asyncio.TimeoutError:
            for connection in self._snapshot():
                connection.ws.transport.abort()
        for task in list(self._background):
            task.cancel()

    # ---- properties -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after ``start()``; still the same after ``stop()``)."""
        if self._bound_port is None:
            raise RuntimeError("FakeExchange is not started: use start() or `with`")
        return self._bound_port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/ws-fapi/v1`` (any path is accepted)."""
        return f"ws://{self._host}:{self.port}/ws-fapi/v1"

    @property
    def connection_count(self) -> int:
        """Client connections currently open (not closing or closed)."""
        return sum(1 for c in self._snapshot() if c.ws.state is State.OPEN)

    @property
    def total_connections(self) -> int:
        """Connections accepted since construction (also the next connection's index)."""
        with self._cond:
            return self._next_connection

    @property
    def pings_sent(self) -> int:
        """WebSocket pings sent (see ``ping_interval``)."""
        with self._cond:
            return self._pings_sent

    @property
    def pongs_received(self) -> int:
        """Pongs received in answer to the server's pings."""
        with self._cond:
            return self._pongs_received

    def _snapshot(self) -> list[_Connection]:
        with self._cond:
            return list(self._connections.values())

    def _now_ms(self) -> int:
        return int(time.time() * 1000) + int(self.clock_offset_ms)

    def server_time(self) -> int:
        """The server's clock in ms (wall clock + ``clock_offset_ms``)."""
        return self._now_ms()

    # ---- keys -------------------------------------------------------------------------------

    def register_key(self, api_key: str, kind: str, key: Any) -> None:
        """
        Accept ``api_key``. ``kind`` is ``"HMAC"`` (``key`` = the secret str), ``"RSA"`` or
        ``"Ed25519"`` (``key`` = a public or private key object, or its PEM as bytes/str).
        Registering an existing ``api_key`` again replaces it.
        """
        if not isinstance(api_key, str) or not (api_key.isascii() and api_key.isalnum()):
            raise ValueError("api_key must be a non-empty string of ASCII letters and digits")
        entry = make_key(kind, key)
        with self._cond:
            self._exchange.keys[api_key] = entry

    def add_hmac_key(
        self, api_key: Optional[str] = None, secret: Optional[str] = None
    ) -> tuple[str, str]:
        """Register an HMAC key (64 random characters each by default); ``(api_key, secret)``."""
        api_key = api_key if api_key is not None else _random_alnum(64)
        secret = secret if secret is not None else _random_alnum(64)
        self.register_key(api_key, "HMAC", secret)
        return api_key, secret

    def add_ed25519_key(
        self,
        directory: Union[str, os.PathLike[str]],
        password: Optional[str] = None,
        api_key: Optional[str] = None,
    ) -> tuple[str, str]:
        """
        Generate an Ed25519 key, write its private key as PKCS#8 PEM (encrypted with
        ``password`` when given) to a new file in ``directory``, register the public key;
        ``(api_key, path)``.
        """
        private = ed25519.Ed25519PrivateKey.generate()
        return self._add_private_key(
            "Ed25519", private, directory, password, api_key, serialization.PrivateFormat.PKCS8
        )

    def add_rsa_key(
        self,
        directory: Union[str, os.PathLike[str]],
        password: Optional[str] = None,
        traditional: bool = False,
        api_key: Optional[str] = None,
        key_size: int = 2048,
    ) -> tuple[str, str]:
        """
        Generate an RSA key (2048 bits), write it as PKCS#8 PEM (``traditional=True``: the
        ``BEGIN RSA PRIVATE KEY`` format), encrypted with ``password`` when given, to a new
        file in ``directory``; register the public key; ``(api_key, path)``.
        """
        private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        fmt = (
            serialization.PrivateFormat.TraditionalOpenSSL
            if traditional
            else serialization.PrivateFormat.PKCS8
        )
        return self._add_private_key("RSA", private, directory, password, api_key, fmt)

    def _add_private_key(
        self,
        kind: str,
        private: Union[ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey],
        directory: Union[str, os.PathLike[str]],
        password: Optional[str],
        api_key: Optional[str],
        fmt: serialization.PrivateFormat,
    ) -> tuple[str, str]:
        api_key = api_key if api_key is not None else _random_alnum(64)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password is not None
            else serialization.NoEncryption()
        )
        pem = private.private_bytes(serialization.Encoding.PEM, fmt, encryption)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"fake-{kind.lower()}-{api_key[:8]}-{secrets.token_hex(4)}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self.register_key(api_key, kind, private.public_key())
        return api_key, str(path)

    # ---- market and account state ------------------------------------------------------------

    def set_price(self, symbol: str, price: Union[str, int, float]) -> None:
        """Move ``symbol``'s price (its book, mark price and fills follow). No order triggers."""
        with self._cond:
            spec = self._exchange.symbols.get(symbol)
            if spec is None:
                raise KeyError(f"unknown symbol {symbol!r}")
            spec.price = Decimal(str(price))

    def add_symbol(
        self,
        symbol: str,
        price: Union[str, int, float],
        tick_size: str = "0.01",
        step_size: str = "0.001",
        min_qty: Optional[str] = None,
        max_qty: str = "100000",
        min_notional: str = "5",
    ) -> None:
        """Add (or replace) a tradable symbol with its price and filters."""
        spec = SymbolSpec(
            symbol,
            Decimal(str(price)),
            Decimal(tick_size),
            Decimal(step_size),
            Decimal(min_qty if min_qty is not None else step_size),
            Decimal(max_qty),
            Decimal(min_notional),
        )
        with self._cond:
            self._exchange.symbols[symbol] = spec

    def set_balance(self, asset: str, amount: Union[str, int, float]) -> None:
        """Set the wallet balance of ``asset`` (USDT is the margin asset)."""
        with self._cond:
            self._exchange.balances[asset] = Decimal(str(amount))
            self._exchange.balance_times[asset] = self._now_ms()

    def set_position(
        self,
        symbol: str,
        amount: Union[str, int, float],
        entry_price: Optional[Union[str, int, float]] = None,
    ) -> None:
        """Set the one-way position of ``symbol`` (negative = short; entry defaults to price)."""
        with self._cond:
            spec = self._exchange.symbols.get(symbol)
            if spec is None:
                raise KeyError(f"unknown symbol {symbol!r}")
            entry = Decimal(str(entry_price)) if entry_price is not None else spec.price
            qty = Decimal(str(amount))
            self._exchange.positions[symbol] = Position(
                qty, entry if qty else Decimal(0), self._now_ms()
            )

    @property
    def orders(self) -> dict[int, JsonDict]:
        """A copy of every order placed, by ``orderId`` (status as now, with ``time``)."""
        with self._cond:
            return copy.deepcopy(self._exchange.orders)

    @property
    def algo_orders(self) -> dict[int, JsonDict]:
        """A copy of every algo order placed, by ``algoId``."""
        with self._cond:
            return copy.deepcopy(self._exchange.algo_orders)

    # ---- scripting ----------------------------------------------------------------------------

    def script(
        self,
        method: str,
        result: Any = None,
        error: Optional[Mapping[str, Any]] = None,
        status: Optional[int] = None,
        times: Optional[int] = 1,
    ) -> None:
        """
        Answer the next ``times`` requests of ``method`` (``None``: all) with ``result`` (status
        200) or ``error`` (``{"code": .., "msg": ..}``, status 400), or ``status`` when given.
        A scripted request is not checked or executed; ``method`` may be any name. Scripts for
        one method queue up and are used in order.
        """
        with self._cond:
            self._exchange.add_script(method, result, error, status, times)

    def delay(self, method: str, seconds: float, times: Optional[int] = None) -> None:
        """Send the replies to ``method`` after ``seconds``; other replies are not held up."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        with self._cond:
            self._exchange.add_rule(self._exchange.delays, method, float(seconds), times)

    def withhold(self, method: str, times: Optional[int] = None) -> None:
        """Never answer ``method`` (the request is still recorded and executed)."""
        with self._cond:
            self._exchange.add_rule(self._exchange.withholds, method, True, times)

    def clear_scripts(self) -> None:
        """Forget every ``script``, ``delay`` and ``withhold`` not yet used up."""
        with self._cond:
            self._exchange.clear_scripts()

    # ---- recorded requests ----------------------------------------------------------------------

    @property
    def requests(self) -> list[JsonDict]:
        """
        A copy of the requests received, oldest first: ``{"id", "method", "params",
        "received_at" (time.time()), "connection" (0-based index)}``. Frames that are not
        JSON objects are answered but not recorded.
        """
        with self._cond:
            return copy.deepcopy(self._requests)

    def requests_for(self, method: str) -> list[JsonDict]:
        """The recorded requests of ``method``."""
        with self._cond:
            return copy.deepcopy([r for r in self._requests if r["method"] == method])

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._cond:
            self._requests.clear()

    def wait_for_requests(
        self, n: int, method: Optional[str] = None, timeout: float = 5.0
    ) -> list[JsonDict]:
        """
        Wait until at least ``n`` requests (of ``method``, when given) were received; return
        them all (copies).

        Raises:
            TimeoutError: fewer came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._requests if method is None or r["method"] == method]
                if len(found) >= n:
                    return copy.deepcopy(found)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    what = f"{method!r} requests" if method is not None else "requests"
                    raise TimeoutError(f"waited {timeout:g} s for {n} {what}, {len(found)} came")
                self._cond.wait(remaining)

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """
        Poll ``predicate()`` until it returns a true value, and return that value, e.g.
        ``fx.wait_for(lambda: fx.connection_count == 1)``.

        Raises:
            TimeoutError: it was still false after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition still false after {timeout:g} s")
            time.sleep(interval)

    # ---- connections ---------------------------------------------------------------------------

    def drop_connections(self, close_frame: bool = True, code: int = 1001, reason: str = "") -> int:
        """
        Close every client connection now: with a close frame (``code``, ``reason``), or, when
        ``close_frame`` is false, by aborting the TCP connection without one. Returns how many
        connections were dropped; they are no longer counted in ``connection_count`` on return.
        """
        loop = self._loop
        if loop is None:
            return 0
        if threading.current_thread() is self._thread:
            raise RuntimeError("drop_connections() cannot be called from the server thread")
        future = asyncio.run_coroutine_threadsafe(self._drop(close_frame, code, reason), loop)
        return future.result(_STOP_TIMEOUT)

    async def _drop(self, close_frame: bool, code: int, reason: str) -> int:
        connections = [c for c in self._snapshot() if c.ws.state is State.OPEN]
        for connection in connections:
            if close_frame:
                self._spawn(connection.ws.close(code, reason))
            else:
                connection.ws.transport.abort()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline and any(c.ws.state is State.OPEN for c in connections):
            await asyncio.sleep(0.001)
        return len(connections)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- the connection handler -----------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        return_rate_limits = True
        if ws.request is not None:
            query = parse_qs(urlsplit(ws.request.path).query)
            values = query.get("returnRateLimits")
            if values and values[-1].lower() == "false":
                return_rate_limits = False
        with self._cond:
            index = self._next_connection
            self._next_connection += 1
            session = self._exchange.open_session(index, self._now_ms(), return_rate_limits)
            connection = _Connection(ws, session)
            self._connections[index] = connection
            self._cond.notify_all()
        pinger = asyncio.ensure_future(self._pinger(ws))
        try:
            async for message in ws:
                self._on_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            for task in list(connection.tasks):
                task.cancel()
            with self._cond:
                self._connections.pop(index, None)
                self._cond.notify_all()

    def _on_message(self, connection: _Connection, message: Union[str, bytes]) -> None:
        received_at = time.time()
        with self._cond:
            outcome = self._exchange.process(connection.session, message, self._now_ms())
            if outcome.record is not None:
                record = dict(outcome.record)
                record["received_at"] = received_at
                record["connection"] = connection.session.index
                self._requests.append(copy.deepcopy(record))
            self._cond.notify_all()
        if outcome.reply is None:
            return
        text = _dumps(outcome.reply)
        task = asyncio.ensure_future(self._reply(connection.ws, text, outcome.delay))
        connection.tasks.add(task)
        task.add_done_callback(connection.tasks.discard)

    @staticmethod
    async def _reply(ws: ServerConnection, text: str, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(text)

    async def _pinger(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while ws.state is State.OPEN:
            interval = self.ping_interval
            now = loop.time()
            if interval is None or interval <= 0:
                last = now
                await asyncio.sleep(_TICK)
                continue
            if now - last < interval:
                await asyncio.sleep(min(interval - (now - last), _TICK))
                continue
            last = now
            try:
                waiter = await ws.ping()
            except ConnectionClosed:
                return
            with self._cond:
                self._pings_sent += 1
            asyncio.ensure_future(waiter).add_done_callback(self._on_pong)

    def _on_pong(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        with self._cond:
            self._pongs_received += 1


def _dumps(frame: JsonDict) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
