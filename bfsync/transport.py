"""
The I/O thread: the only module that imports websocket-client.

Theory of operation
-------------------
One ``Transport`` per service owns one daemon thread (``bfsync-io-N``). Only that thread
touches the socket and the signer. Caller threads never block on it and it never blocks on
them:

- ``submit()`` (any thread) appends a ``Request`` to the outbox, a deque, and wakes the
  I/O thread by writing one byte to a socket pair, unless a wake-up is already on its way.
- The I/O thread waits in ``select`` on the WebSocket and the wake socket, with a timeout
  equal to the nearest deadline. It takes every queued request (dropping those the caller
  cancelled), gives each a fresh id and registers it in ``pending`` *before* sending, stamps
  ``timestamp`` (and ``recvWindow``), signs it unless an Ed25519 session is logged on, and
  writes all of them in one ``sendall``.
- websocket-client does the handshake and writes frames (``ABNF``); replies are read from a
  non-blocking socket in large chunks by ``_wsframes.FrameReader`` (one ``recv``, many
  frames; a half-received frame just waits), matched to ``pending`` by id in any order, and
  settle the caller's future. Pings are answered with pongs here.
- A request not answered by its deadline fails with ``RequestTimeoutError`` (for an order:
  ``OrderTimeoutError``, outcome unknown). A late reply to it is logged and dropped.
- When the link is lost every pending request fails at once with ``ConnectionLostError``
  (orders: ``OrderConnectionLostError``); queued requests that were never sent wait for the
  next connection, each still bounded by its deadline. The thread reconnects (first attempt
  at once, then ``reconnect_delay`` doubling to ``max_reconnect_delay``, with jitter) and logs
  on again if an Ed25519 session was logged on. After ``max_reconnect_attempts`` failures the
  transport is *failed*: everything queued fails and ``submit`` raises ``ConnectionError``.
- ``close()`` from any thread (or from the I/O thread itself, without joining it) sets a
  flag and wakes the thread, which fails what is left and exits; if it does not exit in time
  the socket is shut down under it (websocket-client's own ``close()`` reads frames and would
  race the reader). Every path out of the thread settles every future.

Errors of websocket-client, ``OSError`` and ``ssl`` are turned into bfsync's exceptions here,
at one boundary.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import os
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Optional

from ._wsframes import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, FrameReader, ProtocolError
from .clock import ServerClock
from .config import Config
from .exceptions import (
    AuthenticationError,
    ConnectionError,
    ConnectionLostError,
    OrderConnectionLostError,
    OrderTimeoutError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)
from .protocol import METHODS, NONE, SIGNED, decode_frame, encode_request, error_for
from .signing import Signer, canonical_payload

__all__ = ["Request", "State", "Transport"]

# websocket-client (and ssl), imported with the first Transport: ``import bfsync`` stays cheap.
websocket: Any = None
ABNF: Any = None
# What a non-blocking socket raises when it must wait (plain, or TLS wanting to read or write).
_WOULD_BLOCK: tuple[type[BaseException], ...] = (BlockingIOError,)


def _load_websocket_client() -> None:
    global websocket, ABNF, _WOULD_BLOCK  # lazily imported modules
    if websocket is None:
        import ssl

        import websocket as module

        _WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        ABNF = module.ABNF
        websocket = module


log = logging.getLogger("bfsync.transport")

_thread_numbers = itertools.count(1)
_READ_CHUNK = 1 << 16
_IO_TIMEOUT = 10.0  # bound on a send into a full buffer
_MAX_FRAME = 4 << 20  # replies larger than this are logged and dropped, the link is kept
_MAX_MESSAGE = 64 << 20  # a message larger than this ends the link (close code 1009)
_PONG_TIMEOUT = 10.0  # after our ping, silence this long (at most ping_interval) is a dead link
_DEFAULT_BAN = 120.0  # a 418 that does not say until when: Binance's shortest ban


class State(str, enum.Enum):
    """What the service is doing; the values are plain strings."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOGGED_IN = "logged_in"
    RECONNECTING = "reconnecting"
    STALE = "stale"  # market streams: a subscribed stream is silent (``stale_after``)
    CLOSED = "closed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class Request:
    """One request on its way: built by the caller's thread, owned by the I/O thread after."""

    __slots__ = (
        "client_order_id",
        "deadline",
        "future",
        "id",
        "method",
        "not_before",
        "params",
        "resent",
        "retried",
        "security",
        "sent_at",
        "via_session",
    )

    def __init__(
        self,
        method: str,
        params: dict[str, Any],
        security: str,
        future: Any,
        deadline: float,
        client_order_id: Optional[str] = None,
    ) -> None:
        self.method = method
        self.params = params
        self.security = security
        self.future = future
        self.deadline = deadline
        self.client_order_id = client_order_id
        self.id = 0
        self.via_session = False  # sent without a signature, on a logged-on session
        self.retried = False  # sent again after a lost link (reads only)
        self.resent = False  # sent again after -1021 (timestamp outside recvWindow)
        self.not_before = 0.0  # the rate limiter's hold: time.monotonic() before which it waits
        self.sent_at = 0.0  # wall-clock ms when stamped


class _LinkLost(Exception):
    """Internal: the current connection is gone (``__cause__`` says why)."""


class _Link:
    """
    One WebSocket connection: websocket-client's ``WebSocket`` for the handshake and for
    writing frames (``ABNF``), and bfsync's incremental ``FrameReader`` for reading them.

    The socket is non-blocking: one ``recv`` takes whatever has arrived (many frames at once),
    a half-received frame simply waits in the reader, and no ``poll()`` precedes each call
    as it would with a socket timeout.
    """

    __slots__ = ("opened_at", "reader", "sock", "ws")

    def __init__(self, ws: Any, opened_at: float) -> None:
        self.ws = ws
        self.sock: socket.socket = ws.sock
        self.sock.settimeout(0)
        self.reader = FrameReader(max_message=_MAX_MESSAGE)
        self.opened_at = opened_at

    def sendall(self, data: bytes) -> None:
        """Send everything; waits at most ``_IO_TIMEOUT`` for room in a full send buffer."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except _WOULD_BLOCK:
                if not any(select.select([], [self.sock], [], _IO_TIMEOUT)):
                    raise websocket.WebSocketTimeoutException(
                        f"sending took over {_IO_TIMEOUT:g} s"
                    ) from None

    def read(self) -> list[tuple[int, bytes]]:
        """
        The frames that have arrived, complete; ``[]`` if none is complete yet.

        Raises:
            ProtocolError: the server broke RFC 6455 (its ``events`` were valid before).
            WebSocketConnectionClosedException: the server closed the TCP connection.
        """
        sock = self.sock
        reader = self.reader
        while True:
            try:
                data = sock.recv(_READ_CHUNK)
            except _WOULD_BLOCK:
                break
            if not data:
                raise websocket.WebSocketConnectionClosedException("the server closed the link")
            reader.feed(data)
            if len(data) < _READ_CHUNK and not _tls_pending(sock):
                break
        return reader.events()

    def buffered(self) -> bool:
        """Whether ``ssl`` holds decrypted bytes that ``select`` cannot see."""
        return _tls_pending(self.sock)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # already closed
            self.ws.shutdown()  # shutdown(SHUT_RDWR) then close: wakes a blocked recv


class Transport:
    """
    The I/O thread and its connection. See the module docstring.

    Args:
        config: the service's settings.
        signer: signs requests; used only on the I/O thread.
        api_key: sent as ``apiKey`` on signed requests.
        on_state: called with each new ``State``; must not block (the service posts it to the
            dispatcher thread).
    """

    def __init__(
        self,
        config: Config,
        signer: Signer,
        api_key: str,
        on_state: Callable[[State], None] = lambda state: None,
    ) -> None:
        _load_websocket_client()
        self._config = config
        self._signer = signer
        self._api_key = api_key
        self._on_state = on_state
        url = config.ws_url
        if not config.return_rate_limits:
            url += ("&" if "?" in url else "?") + "returnRateLimits=false"
        self._url = url
        self._outbox: deque[Request] = deque()
        self._pending: dict[int, Request] = {}
        self._ids = itertools.count(1)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_armed = False  # a wake byte is on its way; the I/O thread clears this
        self._link: Optional[_Link] = None
        self._connecting: Any = None  # the WebSocket during a handshake, for _abort_socket
        self._draining: Optional[_Link] = None  # the previous link during a rotation
        self._drain_below = 0  # requests with smaller ids were sent on the draining link
        self._drain_until = 0.0
        self.rotations = 0
        self._logged_on = False  # this connection has an Ed25519 session
        self._want_logon = False  # log on again after a reconnect
        self._closing = False
        self._accepting = False
        self._state = State.CLOSED
        self._failure: Optional[BaseException] = None
        self._opened = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._io_ident: Optional[int] = None
        self.reconnects = 0
        self.last_message_time: Optional[float] = None
        self.last_logon_error: Optional[BaseException] = None
        self._ping_sent: Optional[float] = None
        self._max_age = config.max_connection_age
        self._mask_keys = _MaskKeys()
        self._pong_timeout = min(_PONG_TIMEOUT, config.ping_interval)
        self._banned_until = 0.0  # time.monotonic() before which nothing is sent (418)
        self.clock = ServerClock()
        self.rate_limits: list[dict[str, Any]] = []  # the latest reply's rateLimits
        self.on_rate_limits: Optional[Callable[[list[dict[str, Any]]], None]] = None
        self._after_sync: list[Request] = []  # held until the clock is measured again
        self._distrust_clock = False  # a -1021 came: the next measurement replaces the rest
        self._next_sync = time.monotonic() + config.clock_sync_interval

    # Public methods (any thread)

    @property
    def state(self) -> State:
        return self._state

    @property
    def pending_count(self) -> int:
        """Requests sent and not yet answered, plus those queued."""
        return len(self._pending) + len(self._outbox)

    def open(self) -> None:
        """
        Start the I/O thread and wait until the first connection is up.

        Waits at most ``connection_timeout`` (plus a second). Raises ``ConnectionError``,
        chained from the cause, when the handshake fails; then no thread is left running.
        """
        self._set_state(State.CONNECTING)
        self._accepting = True
        thread = threading.Thread(
            target=self._run, name=f"bfsync-io-{next(_thread_numbers)}", daemon=True
        )
        self._thread = thread
        thread.start()
        if not self._opened.wait(self._config.connection_timeout + 1.0):
            self.close()
            raise ConnectionError(
                f"no connection to {self._config.ws_url} within {self._config.connection_timeout} s"
            )
        if self._failure is not None:
            thread.join(2.0)
            raise ConnectionError(
                f"cannot connect to {self._config.ws_url}: {self._failure}"
            ) from self._failure

    def submit(self, request: Request) -> None:
        """
        Queue a request; its future settles on the I/O thread.

        Raises:
            ConnectionError: the transport is closed or failed.
        """
        if not self._accepting:
            raise self._not_connected()
        if self._banned_until:
            wait = self._banned_until - time.monotonic()
            if wait > 0:
                raise RateLimitError(
                    f"{request.method}: not sent, the server banned this IP (status 418); "
                    f"retry in {wait:.0f} s",
                    retry_after=wait,
                    status=418,
                )
        self._outbox.append(request)
        if not self._wake_armed:
            self._wake_armed = True
            # OSError: the buffer is full (a wake-up is pending anyway), or we are closing.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")
        if not self._accepting:
            # The I/O thread stopped between our check and our append: fail it ourselves.
            try:
                self._outbox.remove(request)
            except ValueError:
                return  # the I/O thread took it and settles it
            raise self._not_connected()

    def close(self, timeout: float = 5.0) -> None:
        """
        Stop the I/O thread; fail what is pending and queued with ``ConnectionLostError``.

        Idempotent, callable from any thread, including the I/O thread itself (then it does
        not wait for it). Waits at most about ``timeout`` seconds, then shuts the socket down
        under the thread and waits one more second.
        """
        self._accepting = False
        self._closing = True
        self._wake()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("I/O thread did not stop within %.1f s; aborting its socket", timeout)
            self._abort_socket()
            thread.join(1.0)

    def in_io_thread(self) -> bool:
        return threading.get_ident() == self._io_ident

    # The I/O thread

    def _run(self) -> None:
        self._io_ident = threading.get_ident()
        cause: Optional[BaseException] = None
        attempts = 0
        try:
            while not self._closing:
                try:
                    self._connect()
                except Exception as exc:
                    cause = exc
                    if not self._opened.is_set():
                        self._failure = exc
                        return
                    attempts += 1
                    if attempts >= self._config.max_reconnect_attempts:
                        log.error("giving up after %d reconnection attempts: %s", attempts, exc)
                        self._failure = exc
                        return
                    log.warning("reconnection attempt %d failed: %s", attempts, exc)
                    self._sleep(self._backoff(attempts))
                    continue
                if self._opened.is_set():
                    self.reconnects += 1
                attempts = 0
                self._set_state(State.CONNECTED)
                self._opened.set()
                if self._want_logon:
                    self._relogon()
                try:
                    self._serve()
                except _LinkLost as lost:
                    cause = lost.__cause__ or lost
                    log.warning("connection lost: %s", cause)
                    self._drop_link(cause)
                    if self._config.max_reconnect_attempts == 0:
                        self._failure = cause
                        return
                    self._set_state(State.RECONNECTING)
        except BaseException as exc:  # pragma: no cover - a bug; still settle every future
            log.exception("I/O thread crashed")
            cause = exc
            self._failure = exc
        finally:
            self._shutdown(cause)

    def _backoff(self, attempt: int) -> float:
        """
        The wait after failed reconnection attempt ``attempt`` (1, 2, ...).

        The first attempt follows the loss at once; then ``reconnect_delay``, doubling up to
        ``max_reconnect_delay``, each within ±20 % so that many clients do not come back at
        the same instant.
        """
        base = min(
            self._config.reconnect_delay * 2 ** (attempt - 1), self._config.max_reconnect_delay
        )
        return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto

    def _sleep(self, seconds: float) -> None:
        """Wait, woken early by close(); queued requests still time out meanwhile."""
        end = time.monotonic() + seconds
        while not self._closing:
            now = time.monotonic()
            if now >= end:
                return
            self._expire_outbox(now)
            nearest = self._outbox[0].deadline if self._outbox else end
            select.select([self._wake_r], [], [], max(0.0, min(end, nearest) - now))
            self._drain_wake()

    def _connect(self) -> None:
        self._link = self._handshake()
        self._logged_on = False
        self._ping_sent = None
        self.last_message_time = time.monotonic()

    def _handshake(self) -> _Link:
        ws: Any = websocket.WebSocket(enable_multithread=False, skip_utf8_validation=True)
        self._connecting = ws
        try:
            ws.connect(self._url, timeout=self._config.connection_timeout)
            if self._closing:
                raise ConnectionError("closed while connecting")
            return _Link(ws, time.monotonic())
        except BaseException:
            with contextlib.suppress(Exception):  # best effort on a failed handshake
                ws.shutdown()
            raise
        finally:
            self._connecting = None

    def _rotate(self, now: float) -> None:
        """
        Replace a link before the server's 24 h limit, losing nothing.

        The new link is opened (and logged on, if a session was) before the old one stops
        taking requests; the old one keeps delivering the replies it owes, then is closed.
        """
        assert self._link is not None
        try:
            new = self._handshake()
        except Exception as exc:
            if self._closing:
                return
            log.warning("could not open a connection to rotate to (%s); retrying later", exc)
            self._link.opened_at = now + self._config.reconnect_delay - self._max_age
            return
        log.info("rotating the connection after %.0f s", now - self._link.opened_at)
        self._draining, self._link = self._link, new
        self._drain_below = next(self._ids)
        self._drain_until = now + self._config.request_timeout + 1.0
        self._logged_on = False
        self._ping_sent = None
        self.rotations += 1
        if self._want_logon:
            self._relogon()

    def _serve_draining(self, ready: list[Any], now: float) -> None:
        """Read what the old link still owes; close it once it owes nothing."""
        old = self._draining
        assert old is not None
        if old.sock in ready or old.buffered():
            try:
                self._receive(old)
            except (OSError, websocket.WebSocketException, ValueError) as exc:
                self._end_drain(exc)
                return
        pending = self._pending
        oldest = next(iter(pending)) if pending else self._drain_below
        if oldest >= self._drain_below or now > self._drain_until:
            self._end_drain(None)

    def _end_drain(self, cause: Optional[BaseException]) -> None:
        old = self._draining
        self._draining = None
        if old is None:
            return
        with contextlib.suppress(Exception):  # best effort: it owes nothing more
            old.ws.send_close()
        old.abort()
        below = self._drain_below
        owed = [r for r in self._pending.values() if r.id < below]
        for request in owed:
            del self._pending[request.id]
        self._fail(owed, cause, "the rotated connection was lost")

    def _serve(self) -> None:
        """Run the link until it is lost (raises ``_LinkLost``) or close() is called."""
        wake = self._wake_r
        pending = self._pending
        outbox = self._outbox
        try:
            while not self._closing:
                link = self._link
                assert link is not None
                sock = link.sock
                if link.buffered():
                    ready: list[Any] = [sock]
                    if outbox:
                        ready.append(wake)
                else:
                    readers = [sock, wake]
                    if self._draining is not None:
                        readers.append(self._draining.sock)
                    ready = select.select(readers, [], [], self._next_timeout())[0]
                if wake in ready:
                    self._drain_wake()
                if outbox:
                    self._wake_armed = False  # before taking: a later submit() wakes us again
                    self._send_queued(link)
                if sock in ready:
                    self._receive(link)
                now = time.monotonic()
                if self._draining is not None:
                    self._serve_draining(ready, now)
                if pending or outbox:
                    self._expire(now)
                self._check_liveness(now)
                if now > self._next_sync and self._config.sync_clock:
                    self._sync_clock()
                if now - link.opened_at > self._max_age and self._draining is None:
                    self._rotate(now)
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            if self._closing:
                return
            raise _LinkLost() from exc

    def _check_liveness(self, now: float) -> None:
        """Ping after ``ping_interval`` of silence; no answer in time means the link is dead."""
        silent_since = self.last_message_time or now
        if self._ping_sent is not None:
            if silent_since >= self._ping_sent:
                self._ping_sent = None  # something arrived after our ping: alive
            elif now - self._ping_sent > self._pong_timeout:
                raise websocket.WebSocketTimeoutException(
                    f"no answer to a ping within {self._pong_timeout:g} s"
                )
        elif now - silent_since > self._config.ping_interval:
            self._ping_sent = now
            assert self._link is not None
            self._link.ws.ping()

    def _next_timeout(self) -> float:
        silent_since = self.last_message_time or time.monotonic()
        deadline: float = (
            self._ping_sent + self._pong_timeout
            if self._ping_sent is not None
            else silent_since + self._config.ping_interval
        )
        if self._pending:
            deadline = min(deadline, self._pending[next(iter(self._pending))].deadline)
        if self._outbox:
            # Queued by this thread (a re-logon, a clock measurement, a re-send): no wake
            # byte came, so do not wait; held by the rate limiter: wait until its time.
            head = self._outbox[0]
            deadline = min(deadline, head.deadline, head.not_before)
        if self._config.sync_clock:
            deadline = min(deadline, self._next_sync)
        link = self._link
        if link is not None and self._draining is None:
            deadline = min(deadline, link.opened_at + self._max_age)
        return max(0.0, deadline - time.monotonic() + 0.001)

    def _drain_wake(self) -> None:
        self._wake_armed = False
        # One read: callers write a byte only when no wake-up is armed, so bytes are few.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._wake_r.recv(4096)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _send_queued(self, link: _Link) -> None:
        frames = []
        outbox = self._outbox
        pending = self._pending
        now = 0.0
        while outbox:
            request = outbox[0]
            if request.not_before:
                now = now or time.monotonic()
                if request.not_before > now:
                    break  # the rate limiter holds it (and, to keep order, those behind it)
            outbox.popleft()
            if not _take(request):
                continue  # cancelled by the caller before it was sent
            request.id = request_id = next(self._ids)
            pending[request_id] = request
            try:
                text = encode_request(request_id, request.method, self._stamp(request))
            except Exception as exc:  # a value json cannot encode: the caller's mistake
                del pending[request_id]
                request.future.set_exception(
                    ValueError(f"{request.method}: params cannot be sent: {exc}")
                )
                continue
            frame = ABNF.create_frame(text, ABNF.OPCODE_TEXT)
            frame.get_mask_key = self._mask_keys
            frames.append(frame.format())
        if frames:
            link.sendall(b"".join(frames) if len(frames) > 1 else frames[0])

    def _stamp(self, request: Request) -> dict[str, Any]:
        security = request.security
        params = request.params
        if security == NONE:
            if request.method == "session.status":
                request.sent_at = time.time() * 1000
            return params
        if security != SIGNED:  # USER_STREAM: the API key only
            params["apiKey"] = self._api_key
            return params
        request.sent_at = now_ms = time.time() * 1000
        params["timestamp"] = self.clock.timestamp(now_ms)
        if self._config.recv_window is not None and "recvWindow" not in params:
            params["recvWindow"] = self._config.recv_window
        if self._logged_on and request.method != "session.logon":
            request.via_session = True
            return params
        params["apiKey"] = self._api_key
        params["signature"] = self._signer.sign(canonical_payload(params))
        return params

    def _receive(self, link: _Link) -> None:
        """Read and dispatch every complete frame that has arrived on ``link``."""
        try:
            events = link.read()
        except ProtocolError as exc:
            self._handle_events(link, exc.events)  # valid replies before the violation
            raise websocket.WebSocketProtocolException(
                f"the server broke the WebSocket protocol: {exc}"
            ) from exc
        if events:
            self._handle_events(link, events)

    def _handle_events(self, link: _Link, events: list[tuple[int, bytes]]) -> None:
        self.last_message_time = time.monotonic()
        for opcode, payload in events:
            if opcode == OP_TEXT:
                self._dispatch(payload)
            elif opcode == OP_PING:
                link.ws.pong(payload)
            elif opcode == OP_CLOSE:
                with contextlib.suppress(Exception):  # answer the close; the link ends anyway
                    link.ws.send_close()
                raise websocket.WebSocketConnectionClosedException(
                    f"the server closed the link{_close_reason(payload)}"
                )
            elif opcode == OP_BINARY:
                log.warning("ignored a binary frame of %d bytes", len(payload))
            # A pong only shows the link is alive: last_message_time above.

    def _dispatch(self, data: bytes) -> None:
        if len(data) > _MAX_FRAME:
            log.warning("ignored a frame of %d bytes (over %d)", len(data), _MAX_FRAME)
            return
        try:
            reply = decode_frame(data)
        except ValueError:
            log.warning("ignored a frame that is not a JSON object: %.200r", data)
            return
        reply_id = reply.get("id")
        # type() and not isinstance(): JSON true must not match request 1.
        request = self._pending.pop(reply_id, None) if type(reply_id) is int else None
        if request is None:
            if reply_id is None and reply.get("status") == 401:
                self._session_revoked(reply)
                return
            log.warning(
                "ignored a reply with unknown id %r (status %r)",
                reply.get("id"),
                reply.get("status"),
            )
            return
        try:
            self._settle(request, reply)
        except Exception as exc:  # a reply of a shape nobody foresaw: settle, never die
            log.exception("could not handle the reply to %s", request.method)
            if not request.future.done():
                request.future.set_exception(
                    RequestError(f"{request.method}: unreadable reply: {exc}", response=reply)
                )

    def _settle(self, request: Request, reply: dict[str, Any]) -> None:
        """Settle ``request``'s future from its reply (and note what the reply teaches)."""
        future = request.future
        rate_limits = reply.get("rateLimits")
        if rate_limits and isinstance(rate_limits, list):
            self.rate_limits = rate_limits
            if self.on_rate_limits is not None:
                self.on_rate_limits(rate_limits)
        if reply.get("status") == 200:
            method = request.method
            if method == "session.status":
                self._clock_measured(reply, request)
            elif method == "session.logon":
                self._logged_on = self._want_logon = True
                self._set_state(State.LOGGED_IN)
            elif method == "session.logout":
                self._logged_on = self._want_logon = False
                self._set_state(State.CONNECTED)
            future.set_result(reply)
        else:
            error = reply.get("error")
            if (
                isinstance(error, dict)
                and error.get("code") == -1021
                and not request.resent
                and self._config.sync_clock
            ):
                # A definite rejection: measure the clock again, then send it once more.
                request.resent = True
                self._after_sync.append(request)
                self._distrust_clock = True
                if len(self._after_sync) == 1:
                    self._sync_clock()
                return
            exc = error_for(reply, request.method, int(time.time() * 1000))
            if reply.get("status") == 418:
                wait = getattr(exc, "retry_after", None)
                self._banned_until = time.monotonic() + (_DEFAULT_BAN if wait is None else wait)
                log.error("the server banned this IP (418): sending nothing for %.0f s", wait or 0)
            future.set_exception(exc)

    def _sync_clock(self) -> None:
        """Queue a ``session.status`` ahead of everything, to measure the server's clock."""
        from concurrent.futures import Future

        future: Future[dict[str, Any]] = Future()
        future.add_done_callback(self._sync_done)
        self._outbox.appendleft(
            Request(
                "session.status", {}, NONE, future, time.monotonic() + self._config.request_timeout
            )
        )
        self._next_sync = time.monotonic() + self._config.clock_sync_interval

    def _sync_done(self, future: Any) -> None:
        if future.exception() is not None:
            log.warning("measuring the server's clock failed: %s", future.exception())
        held, self._after_sync = self._after_sync, []
        for request in reversed(held):
            request.params.pop("signature", None)
            request.params.pop("apiKey", None)
            self._outbox.appendleft(request)

    def _clock_measured(self, reply: dict[str, Any], request: Request) -> None:
        result = reply.get("result")
        server_time = result.get("serverTime") if isinstance(result, dict) else None
        if isinstance(server_time, int) and request.sent_at:
            if self._distrust_clock:  # the server said the estimate is wrong: start over
                self._distrust_clock = False
                self.clock.reset()
            with contextlib.suppress(ValueError):
                self.clock.update(server_time, request.sent_at, time.time() * 1000)

    def _session_revoked(self, reply: dict[str, Any]) -> None:
        """A 401 with ``id: null``: the key was revoked; requests that relied on it fail."""
        log.error("the server revoked the API key (401): the session is logged out")
        self._logged_on = self._want_logon = False
        if self._state is State.LOGGED_IN:
            self._set_state(State.CONNECTED)
        for request_id, request in list(self._pending.items()):
            if request.via_session or request.security == SIGNED:
                del self._pending[request_id]
                request.future.set_exception(
                    AuthenticationError(
                        f"{request.method}: the server revoked the API key (status 401, "
                        f"{reply.get('error')}); the request may not have been processed"
                    )
                )

    def _expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            request_id = next(iter(pending))
            request = pending[request_id]
            if request.deadline > now:
                break
            del pending[request_id]
            timeout = self._config.request_timeout
            if METHODS[request.method].is_order:
                request.future.set_exception(
                    OrderTimeoutError(
                        f"{request.method}: no reply within {timeout} s; the order may or may "
                        f"not have been placed (client order id {request.client_order_id!r})",
                        client_order_id=request.client_order_id,
                    )
                )
            else:
                request.future.set_exception(
                    RequestTimeoutError(f"{request.method}: no reply within {timeout} s")
                )
        self._expire_outbox(now)

    def _expire_outbox(self, now: float) -> None:
        outbox = self._outbox
        while outbox and outbox[0].deadline <= now:
            request = outbox.popleft()
            if _take(request):
                request.future.set_exception(
                    RequestTimeoutError(
                        f"{request.method}: not sent within {self._config.request_timeout} s "
                        "(no connection, or held by the rate limiter); it never reached the server"
                    )
                )

    def _relogon(self) -> None:
        """Queue ``session.logon`` ahead of everything else on a new connection."""
        from concurrent.futures import Future

        future: Future[dict[str, Any]] = Future()
        future.add_done_callback(self._relogon_done)
        request = Request(
            "session.logon",
            {},
            SIGNED,
            future,
            time.monotonic() + self._config.request_timeout,
        )
        self._outbox.appendleft(request)

    def _relogon_done(self, future: Any) -> None:
        exc = future.exception()
        self.last_logon_error = exc
        if exc is not None:
            log.warning("logging on again after reconnecting failed: %s", exc)
            if self._state is State.LOGGED_IN:  # after a rotation it still said so
                self._set_state(State.CONNECTED)

    def _drop_link(self, cause: BaseException) -> None:
        """Fail every request in flight at once; queued requests wait for the next link."""
        self._abort_socket()
        self._link = None
        self._end_drain(cause)
        self._logged_on = False
        if self._config.retry_reads:
            # Reads (never orders) go again once, first in line, on the next connection.
            retry = [
                r for r in self._pending.values() if not r.retried and METHODS[r.method].is_read
            ]
            for request in reversed(retry):
                del self._pending[request.id]
                request.retried = True
                self._outbox.appendleft(request)
        self._fail_all_pending(cause, "the connection was lost")

    def _fail_all_pending(self, cause: Optional[BaseException], why: str) -> None:
        requests = list(self._pending.values())
        self._pending.clear()
        self._fail(requests, cause, why)

    @staticmethod
    def _fail(requests: list[Request], cause: Optional[BaseException], why: str) -> None:
        """Fail requests that were sent: orders with an "outcome unknown" error."""
        for request in requests:
            if METHODS[request.method].is_order:
                exc: Exception = OrderConnectionLostError(
                    f"{request.method}: {why} after the order was sent; it may or may not have "
                    f"been placed (client order id {request.client_order_id!r})",
                    client_order_id=request.client_order_id,
                )
            else:
                exc = ConnectionLostError(f"{request.method}: {why} before the reply came")
            exc.__cause__ = cause
            request.future.set_exception(exc)

    def _shutdown(self, cause: Optional[BaseException]) -> None:
        """Every path out of the I/O thread comes here: settle everything, release the socket."""
        self._accepting = False
        closing = self._closing
        link = self._link
        if link is not None and closing:
            with contextlib.suppress(Exception):  # best effort: the peer may be gone already
                link.ws.send_close()
        self._abort_socket()
        self._link = None
        self._end_drain(None)
        why = "the service was closed" if closing else "the connection was lost"
        self._fail_all_pending(None if closing else cause, why)
        while self._outbox:
            request = self._outbox.popleft()
            if _take(request):
                exc = ConnectionLostError(f"{request.method}: {why} before it was sent")
                exc.__cause__ = cause
                request.future.set_exception(exc)
        self._set_state(State.CLOSED if closing or cause is None else State.FAILED)
        self._opened.set()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _abort_socket(self) -> None:
        """Shut the socket down under the I/O thread (also from close() in another thread)."""
        link = self._link
        if link is not None:
            link.abort()
        connecting = self._connecting
        if connecting is not None:
            with contextlib.suppress(Exception):
                connecting.shutdown()

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            self._on_state(state)

    def _not_connected(self) -> ConnectionError:
        if self._state is State.FAILED and self._failure is not None:
            exc = ConnectionError(
                f"the service failed ({self._failure}); call connect() to start again"
            )
            exc.__cause__ = self._failure
            return exc
        return ConnectionError("the service is not connected; call connect() first")


class _MaskKeys:
    """
    Masking keys for client frames (RFC 6455 §5.3): from ``os.urandom``, 1024 at a time.

    websocket-client calls ``os.urandom(4)`` for every frame: one system call a request.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self, length: int) -> bytes:
        pos = self._pos
        if pos + length > len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + length
        return self._pool[pos : pos + length]


def _take(request: Request) -> bool:
    """Mark a queued request's future running; False if the caller cancelled it first."""
    # A request queued again (read retry, -1021 resend) has an id and is running already.
    return bool(request.id) or bool(request.future.set_running_or_notify_cancel())


def _tls_pending(sock: Any) -> bool:
    """Whether ``ssl`` holds decrypted bytes that ``select`` cannot see."""
    pending = getattr(sock, "pending", None)
    return bool(pending and pending())


def _close_reason(data: bytes) -> str:
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f" (close code {code}{': ' + reason if reason else ''})"
    return ""
