"""
``FakeExchange``: a local, offline Binance USD-M Futures WebSocket API ("ws-fapi") server.

It runs a real WebSocket server (the ``websockets`` package, on its own asyncio event loop in
a daemon thread) on ``127.0.0.1`` and an ephemeral port, speaks the ws-fapi frame protocol,
checks signatures and timestamps like Binance, and answers from a small deterministic market
(BTCUSDT at 50000, ETHUSDT at 3000) and account (10000 USDT). Tests can script replies, delay
or withhold them, drop connections, skew the server clock and inject faults (a stalled peer,
refused or hung handshakes, connections closed at an age, duplicate replies, garbage frames)::

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
import concurrent.futures
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
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.protocol import State

from ._engine import Exchange, Position, Session, SymbolSpec, make_key
from ._rest import RestServer
from ._streams import parse_path
from ._streamserver import StreamsMixin

__all__ = ["FakeExchange"]

T = TypeVar("T")
_LOG = logging.getLogger("bfsync.testing")
JsonDict = dict[str, Any]

_ALNUM = string.ascii_letters + string.digits
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 1.0
_TICK = 0.02
_GARBAGE_KINDS = ("invalid_json", "binary", "unknown_id", "oversized")
_OVERSIZED_BYTES = 1536 * 1024  # 1.5 MiB: far above any reply, below bfsync's 16 MiB limit


def _random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class _Connection:
    """
    One client connection: its socket, its session, its in-flight reply tasks and its stall.

    Only the server thread touches it, except for the read-only ``stalled`` and ``opened_at``.
    """

    __slots__ = ("discarded", "opened_at", "paused_reading", "released", "session", "tasks", "ws")

    def __init__(self, ws: ServerConnection, session: Session, opened_at: float) -> None:
        self.ws = ws
        self.session = session
        self.tasks: set[asyncio.Task[None]] = set()
        self.opened_at = opened_at  # the loop's clock
        self.released = asyncio.Event()  # cleared while stalled: nothing is read or sent
        self.released.set()
        self.paused_reading = False  # stall() paused the transport (so unstall resumes it)
        self.discarded = False  # dropped or stopped while stalled: held frames are never handled

    @property
    def stalled(self) -> bool:
        return not self.released.is_set()

    def stall(self) -> None:
        if self.stalled or self.discarded:
            return
        self.released.clear()
        transport = self.ws.transport
        if transport.is_reading():
            transport.pause_reading()  # the TCP connection stays open; the kernel holds data
            self.paused_reading = True

    def release(self, discard: bool = False) -> None:
        """End the stall; ``discard``: and never handle what arrived meanwhile."""
        if discard:
            self.discarded = True
        if not self.stalled:
            return
        if self.paused_reading:
            self.paused_reading = False
            with contextlib.suppress(Exception):  # the transport is closing already
                self.ws.transport.resume_reading()
        self.released.set()

    async def until_released(self) -> bool:
        """Wait out a stall; False when the connection was discarded meanwhile."""
        if self.stalled:
            await self.released.wait()
        return not self.discarded


class FakeExchange(StreamsMixin):
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
        # Faults (see "faults" below); guarded by _cond, read by the server thread.
        self._refusing = False
        self._refuse_remaining: Optional[int] = None  # None: until accept_handshakes()
        self._refuse_status = 503
        self._handshakes_refused = 0
        self._close_age: Optional[float] = None
        self._close_age_code = 1000
        self._connections_aged_out = 0
        self._duplicating = False
        self._duplicate_method: Optional[str] = None
        self._duplicate_remaining: Optional[int] = None
        self._replies_duplicated = 0
        self._stall_timer: Optional[asyncio.TimerHandle] = None
        self._garbage_ids = 900_000_000_000_000
        self._rest = RestServer(self, host)  # the REST side, on the same engine
        self._hanging = False  # hang_handshakes(): accept TCP, never answer the upgrade
        self._hang_remaining: Optional[int] = None
        self._hang_generation = 0  # accept_handshakes() ends the hangs of older generations
        self._handshakes_hung = 0

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
        self._rest.start()
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
        self._rest.stop(timeout)
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
            process_request=self._process_request,
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
        self._cancel_stall_timer()
        for connection in self._snapshot():
            connection.release(discard=True)  # so the close handshake can complete
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
    def rest_url(self) -> str:
        """
        The REST base URL (``http://127.0.0.1:PORT``, its own port), for
        ``config["rest_url"]``; the same after ``stop()``.
        """
        if self._bound_port is None:
            raise RuntimeError("FakeExchange is not started: use start() or `with`")
        return self._rest.url

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

    def fail_after_processing(
        self,
        method: str,
        status: int = 503,
        code: Optional[int] = None,
        times: Optional[int] = 1,
        msg: Optional[str] = None,
    ) -> None:
        """
        Handle the next ``times`` requests of ``method`` (``None``: all) as usual (an order is
        placed) but answer ``{"status": status, "error": {"code": code, "msg": ...}}`` instead of
        the result: Binance's "execution status unknown" (status 5xx, or code -1006 / -1007).
        ``code=None`` leaves ``code`` out of the error. A scripted or withheld request does not
        use it up; a delay applies to it.

        Raises:
            ValueError: ``status`` not in 400-599, ``code`` not an int, bad ``times``.
        """
        with self._cond:
            self._exchange.add_failure(method, status, code, msg, times)

    def clear_scripts(self) -> None:
        """Forget every ``script``, ``delay``, ``withhold`` and ``fail_after_processing`` left."""
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
            connection.release(discard=True)  # a stalled connection is dropped as it is
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

    # ---- faults --------------------------------------------------------------------------------

    def stall(self, seconds: Optional[float] = None) -> int:
        """
        Make every open connection a silent, half-open peer: nothing more is read from it or
        sent on it (no replies, no pongs, no pings), but its TCP connection stays open.
        Connections opened afterwards are served normally. Lasts until ``unstall()`` (or
        ``clear_faults()``), or ``seconds`` when given. Frames that arrive meanwhile wait in
        the kernel and are handled after the stall, unless the connection was dropped first.
        Returns how many connections are stalled.
        """
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0
        ):
            raise ValueError(f"seconds must be a number > 0 or None, got {seconds!r}")

        def run() -> int:
            self._cancel_stall_timer()
            stalled = 0
            for connection in self._snapshot():
                if connection.ws.state is State.OPEN and not connection.discarded:
                    connection.stall()
                    stalled += 1
            if seconds is not None and stalled:
                loop = asyncio.get_running_loop()
                self._stall_timer = loop.call_later(float(seconds), self._release_all)
            return stalled

        return self._in_loop(run, 0)

    def unstall(self) -> int:
        """End a ``stall()``: read, answer and ping again. Returns how many were stalled."""
        return self._in_loop(self._release_all, 0)

    @property
    def stalled_connections(self) -> int:
        """Connections stalled now (see ``stall()``)."""
        return sum(1 for c in self._snapshot() if c.stalled)

    def refuse_handshakes(self, count: Optional[int] = None, status: int = 503) -> None:
        """
        Refuse the next ``count`` WebSocket handshakes (``None``: every one until
        ``accept_handshakes()`` or ``clear_faults()``) with an HTTP ``status`` response
        (default 503 Service Unavailable) instead of switching protocols. Open connections
        are not affected. ``handshakes_refused`` counts the refusals.
        """
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"count must be a positive int or None, got {count!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        HTTPStatus(status)  # ValueError for a code http.HTTPStatus does not know
        with self._cond:
            self._refusing = True
            self._refuse_remaining = count
            self._refuse_status = status

    def accept_handshakes(self) -> None:
        """Stop refusing or hanging handshakes; hung ones are then refused (HTTP 503)."""
        with self._cond:
            self._refusing = False
            self._refuse_remaining = None
            self._hanging = False
            self._hang_remaining = None
            self._hang_generation += 1

    def hang_handshakes(self, count: Optional[int] = None) -> None:
        """
        Accept the TCP connection of the next ``count`` WebSocket handshakes (``None``: every
        one until ``accept_handshakes()`` or ``clear_faults()``) but never answer the HTTP
        upgrade, like a server that hangs. A hung handshake is answered 503 by
        ``accept_handshakes()``, or closed by the server after 10 s. ``handshakes_hung`` counts.
        """
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"count must be a positive int or None, got {count!r}")
        with self._cond:
            self._hanging = True
            self._hang_remaining = count

    @property
    def handshakes_hung(self) -> int:
        """Handshakes left unanswered by ``hang_handshakes()`` since construction."""
        with self._cond:
            return self._handshakes_hung

    async def _hang(self, connection: ServerConnection, generation: int) -> HttpResponse:
        """Hold a handshake until ``accept_handshakes()`` or the server stops."""
        stop = self._stop_event
        while generation == self._hang_generation and not (stop is not None and stop.is_set()):
            await asyncio.sleep(_TICK)
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "FakeExchange hung up.\n")

    @property
    def handshakes_refused(self) -> int:
        """Handshakes refused by ``refuse_handshakes()`` since construction."""
        with self._cond:
            return self._handshakes_refused

    def close_at_age(self, seconds: Optional[float], code: int = 1000) -> None:
        """
        Close every connection, present and future, with a close frame (``code``, 1000 or
        1001) once it is ``seconds`` old, as Binance does after 24 hours. ``None`` stops it.
        A stalled connection is closed when its stall ends. ``connections_aged_out`` counts.
        """
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0
        ):
            raise ValueError(f"seconds must be a number > 0 or None, got {seconds!r}")
        if code not in (1000, 1001):
            raise ValueError(f"code must be 1000 or 1001, got {code!r}")
        with self._cond:
            self._close_age = None if seconds is None else float(seconds)
            self._close_age_code = code

    @property
    def connections_aged_out(self) -> int:
        """Connections closed by ``close_at_age()`` since construction."""
        with self._cond:
            return self._connections_aged_out

    def duplicate_replies(self, method: Optional[str] = None, times: Optional[int] = None) -> None:
        """
        Send each reply (to ``method``, or to every method when ``None``) twice, back to back.
        ``times``: only the next ``times`` replies (``None``: until ``clear_faults()``).
        A withheld request gets no reply, so nothing to duplicate.
        """
        if method is not None and (not isinstance(method, str) or not method):
            raise ValueError("method must be a non-empty str or None")
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValueError(f"times must be a positive int or None, got {times!r}")
        with self._cond:
            self._duplicating = True
            self._duplicate_method = method
            self._duplicate_remaining = times

    @property
    def replies_duplicated(self) -> int:
        """Replies sent twice by ``duplicate_replies()`` since construction."""
        with self._cond:
            return self._replies_duplicated

    def send_garbage(self, kind: str) -> int:
        """
        Push one unsolicited frame to every open connection now; returns how many got it.

        ``kind``: ``"invalid_json"`` (a truncated JSON text), ``"binary"`` (a binary frame),
        ``"unknown_id"`` (a valid reply, status 200, with an id no client sent),
        ``"oversized"`` (a valid reply with an unknown id, 1.5 MiB long).
        """
        data: Union[str, bytes]
        if kind == "invalid_json":
            data = '{"id":1,"status":200,"result":{"symbol":"BTCUSDT","price":"500'
        elif kind == "binary":
            data = b'\x00\xff{"id":1,"status":200,"result":{}}\x80'
        elif kind == "unknown_id":
            data = _dumps({"id": self._garbage_id(), "status": 200, "result": {}})
        elif kind == "oversized":
            padding = "x" * _OVERSIZED_BYTES
            data = _dumps({"id": self._garbage_id(), "status": 200, "result": {"pad": padding}})
        else:
            raise ValueError(f"kind must be one of {', '.join(_GARBAGE_KINDS)}; got {kind!r}")
        return self.push(data)

    def push(self, data: Union[str, bytes], text: bool = False) -> int:
        """
        Send ``data`` as one frame (``str``: text, ``bytes``: binary) to every open connection
        now, unasked; returns how many got it. On return the frame has been handed to each
        socket (a stalled connection gets it when its stall ends). ``text=True`` sends
        ``bytes`` as a text frame as they are, even if they are not valid UTF-8 (websockets 14+).
        """
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"data must be str or bytes, not {type(data).__name__}")
        loop = self._loop
        if loop is None:
            return 0
        if threading.current_thread() is self._thread:
            raise RuntimeError("push() cannot be called from the server thread")
        future = asyncio.run_coroutine_threadsafe(self._push(data, text), loop)
        return future.result(_STOP_TIMEOUT)

    def clear_faults(self) -> None:
        """Undo every fault: ``unstall()``, ``accept_handshakes()``, no age limit, no duplicates."""
        self.unstall()
        self.accept_handshakes()
        self.close_at_age(None)
        with self._cond:
            self._duplicating = False
            self._duplicate_method = None
            self._duplicate_remaining = None

    def _garbage_id(self) -> int:
        with self._cond:
            self._garbage_ids += 1
            return self._garbage_ids

    async def _push(self, data: Union[str, bytes], text: bool = False) -> int:
        targets = [c for c in self._snapshot() if c.ws.state is State.OPEN and not c.discarded]
        for connection in targets:
            if connection.stalled:
                self._track(connection, self._send(connection, data, 0.0, 1))
            else:
                with contextlib.suppress(ConnectionClosed):
                    if text and isinstance(data, bytes):
                        await connection.ws.send(data, text=True)
                    else:
                        await connection.ws.send(data)
        return len(targets)

    def _in_loop(self, fn: Callable[[], T], default: T) -> T:
        """Run ``fn`` on the server thread and return its result; ``default`` when stopped."""
        loop = self._loop
        if loop is None:
            return default
        if threading.current_thread() is self._thread:
            return fn()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: the server stopped
            return default
        deadline = time.monotonic() + _STOP_TIMEOUT
        while True:
            try:
                return done.result(0.05)
            except concurrent.futures.TimeoutError:
                if self._loop is not loop:
                    return default  # stopped before running it
                if time.monotonic() > deadline:
                    raise

    def _release_all(self, discard: bool = False) -> int:
        self._cancel_stall_timer()
        released = 0
        for connection in self._snapshot():
            if connection.stalled:
                released += 1
            connection.release(discard)
        return released

    def _cancel_stall_timer(self) -> None:
        timer, self._stall_timer = self._stall_timer, None
        if timer is not None:
            timer.cancel()

    def _process_request(self, connection: ServerConnection, request: HttpRequest) -> Any:
        """websockets' ``process_request`` hook: refuse or hang the handshake when asked to."""
        with self._cond:
            if self._hanging:
                if self._hang_remaining is not None:
                    self._hang_remaining -= 1
                    if self._hang_remaining <= 0:
                        self._hanging = False
                        self._hang_remaining = None
                self._handshakes_hung += 1
                self._cond.notify_all()
                return self._hang(connection, self._hang_generation)
            if not self._refusing:
                return self._stream_refusal(connection, request)
            if self._refuse_remaining is not None:
                self._refuse_remaining -= 1
                if self._refuse_remaining <= 0:
                    self._refusing = False
                    self._refuse_remaining = None
            self._handshakes_refused += 1
            status = self._refuse_status
            self._cond.notify_all()
        return connection.respond(
            HTTPStatus(status), f"FakeExchange refused the handshake (status {status}).\n"
        )

    def _duplicates(self, method: Any) -> int:
        """How many times to send the next reply to ``method``; call with ``_cond`` held."""
        if not self._duplicating:
            return 1
        if self._duplicate_method is not None and method != self._duplicate_method:
            return 1
        self._replies_duplicated += 1
        if self._duplicate_remaining is not None:
            self._duplicate_remaining -= 1
            if self._duplicate_remaining <= 0:
                self._duplicating = False
                self._duplicate_remaining = None
        return 2

    def _track(self, connection: _Connection, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        connection.tasks.add(task)
        task.add_done_callback(connection.tasks.discard)

    # ---- the connection handler -----------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        stream_path = parse_path(ws.request.path) if ws.request is not None else None
        if stream_path is not None:  # a market or user data stream route (_streamserver.py)
            await self._serve_stream(ws, stream_path)
            return
        return_rate_limits = True
        if ws.request is not None:
            query = parse_qs(urlsplit(ws.request.path).query)
            values = query.get("returnRateLimits")
            if values and values[-1].lower() == "false":
                return_rate_limits = False
        opened_at = asyncio.get_running_loop().time()
        with self._cond:
            index = self._next_connection
            self._next_connection += 1
            session = self._exchange.open_session(index, self._now_ms(), return_rate_limits)
            connection = _Connection(ws, session, opened_at)
            self._connections[index] = connection
            self._cond.notify_all()
        watcher = asyncio.ensure_future(self._watch(connection))
        try:
            async for message in ws:
                if await connection.until_released():
                    self._on_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            watcher.cancel()
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
            copies = 1
            if outcome.reply is not None:
                sent = outcome.record
                copies = self._duplicates(sent.get("method") if sent is not None else None)
            self._cond.notify_all()
        self._stream_after_frame()  # user-data events the request caused (_streamserver.py)
        if outcome.reply is None:
            return
        self._track(
            connection, self._send(connection, _dumps(outcome.reply), outcome.delay, copies)
        )

    @staticmethod
    async def _send(
        connection: _Connection, data: Union[str, bytes], delay: float, copies: int
    ) -> None:
        """Send ``data`` ``copies`` times after ``delay``, once any stall is over."""
        if delay > 0:
            await asyncio.sleep(delay)
        if not await connection.until_released():
            return
        with contextlib.suppress(ConnectionClosed):
            for _ in range(copies):
                await connection.ws.send(data)

    async def _watch(self, connection: _Connection) -> None:
        """Ping every ``ping_interval`` and close at ``close_at_age``; both pause in a stall."""
        ws = connection.ws
        loop = asyncio.get_running_loop()
        last = loop.time()
        while ws.state is State.OPEN:
            interval = self.ping_interval
            now = loop.time()
            if connection.stalled:
                last = now
                await asyncio.sleep(_TICK)
                continue
            age = self._close_age
            if age is not None and now - connection.opened_at >= age:
                with self._cond:
                    self._connections_aged_out += 1
                self._spawn(ws.close(self._close_age_code, "connection reached its maximum age"))
                return
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

    # ------------------------------------------------------------------------------------------
    # Engine controls (added for issue 4)
    # Pass-throughs to the engine (``_engine.Exchange``); see docs/fake_exchange.md.
    # ------------------------------------------------------------------------------------------

    def set_rate_limits(
        self, request_weight: int = 2400, orders_10s: int = 300, orders_1m: int = 1200
    ) -> None:
        """
        Set the limits reported in ``rateLimits`` and enforced (see ``enforce_rate_limits``):
        REQUEST_WEIGHT per minute (per connection), ORDERS per 10 s and per minute (per API
        key). Arguments left out go back to Binance's values. ``ValueError`` unless positive.
        """
        with self._cond:
            self._exchange.set_rate_limits(request_weight, orders_10s, orders_1m)

    @property
    def enforce_rate_limits(self) -> bool:
        """Whether a request over a limit gets 429 (-1003 / -1015). Default ``True``."""
        with self._cond:
            return self._exchange.enforce_rate_limits

    @enforce_rate_limits.setter
    def enforce_rate_limits(self, value: bool) -> None:
        with self._cond:
            self._exchange.enforce_rate_limits = bool(value)

    def revoke_key(self, api_key: str) -> None:
        """
        Revoke ``api_key``: the next request of each connection that was using it (logged on
        with it, or signing with it) gets ``{"id": null, "status": 401, "error": {"code":
        -2015, ...}}`` and that session is logged out; other requests with the key get -2015
        (status 400). ``register_key`` makes it valid again. ``KeyError`` if not registered.
        """
        with self._cond:
            self._exchange.revoke_key(api_key)

    def exchange_info(self) -> JsonDict:
        """
        The ``GET /fapi/v1/exchangeInfo`` answer matching this server (a copy of
        ``bfsync/testing/exchange_info.json`` with ``serverTime`` now, the configured rate
        limits, and an entry per ``add_symbol`` symbol), e.g. to serve with ``responses``.
        """
        with self._cond:
            return self._exchange.exchange_info(self._now_ms())

    def order(self, order_id: int) -> JsonDict:
        """A copy of one order (as in ``orders``). ``KeyError`` if there is no such order."""
        with self._cond:
            return copy.deepcopy(self._exchange.orders[order_id])

    def algo_order(self, algo_id: int) -> JsonDict:
        """A copy of one algo order (as in ``algo_orders``). ``KeyError`` if unknown."""
        with self._cond:
            return copy.deepcopy(self._exchange.algo_orders[algo_id])

    @property
    def listen_keys(self) -> dict[str, str]:
        """The listenKeys alive now (60 min after the last start/ping), as ``{apiKey: key}``."""
        with self._cond:
            return self._exchange.active_listen_keys(self._now_ms())


def _dumps(frame: JsonDict) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
