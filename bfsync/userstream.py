"""
``UserDataStream``: Binance's user data stream (fills, orders, positions, balances), managed.

Theory of operation
-------------------
- **Two channels, one I/O thread.** The listenKey comes from ws-fapi ``userDataStream.start``
  (API key only). ``BinanceClient().user_stream(api_key)`` opens its own API-key-only ws-fapi
  session (``bfsync._rpc.RpcSession``) for that, on the stream's own I/O thread;
  ``ws.user_stream()`` sends it over the service's connection and serves the private
  connection on the service's I/O thread (closing the service closes its user streams).
  The private connection is one more channel (:class:`_PrivateChannel`); its ``url()`` is
  that of the newest listenKey (``bfsync._userdata.private_url``).
- **The key is managed.** ``userDataStream.ping`` every ``keepalive_interval`` seconds. After
  ``listenKeyExpired``, a ping that fails, or a handshake refused for the key (HTTP 400 /
  -1125), bfsync asks ``userDataStream.start`` again (retried with ``reconnect_delay``
  doubling, at most ``max_reconnect_attempts`` times in a row); a new key gets a new
  connection (a rotation: the old one is read until the new one is open). Refusals of the
  API key itself (-2014, -2015, -1002, status 401) fail the stream at once. Meanwhile
  ``state`` is ``"reconnecting"``. The key never appears in full in logs, reprs or errors
  (``bfsync._userdata.mask``); the ``listenKeyExpired`` event is delivered with it masked.
- **Connections** are pinged when silent, reconnected when lost (first attempt at once, then
  backoff), and rotated before ``max_connection_age``: during a rotation both connections
  carry the same events for a moment and each is delivered once (``_userdata.Overlap``).
  With ``stale_after`` set, a connection that delivered no event for that long is replaced
  (``state`` ``"stale"`` meanwhile): Binance sends nothing on an idle account, so bfsync
  cannot tell a quiet account from a silently dead feed, and treats the silence as a gap.
- **Gaps are never silent.** Once events flow again after a lost connection, a new key or a
  replaced silent connection, ``{"e": "bfsync.gap", "E": ms, "since": ms, "reason": str,
  "listen_key_changed": bool}`` is delivered, in order with the events: events between
  ``since`` and ``E`` may be missing; reconcile. With ``reconcile=True`` (streams of a
  ``WebSocketService``), bfsync reconciles for you: it fetches positions and balances over
  ws-fapi and delivers ``{"e": "bfsync.snapshot", "E": ms, "reason": str, "positions":
  [...], "balances": [...]}`` (``v2/account.position`` and ``v2/account.balance`` results;
  ``"error": str`` and ``None`` lists if the fetch failed) right after the gap, and after
  the start; events that arrive meanwhile are held and delivered after the snapshot.
- **Delivery** is the market streams' lane (``bfsync._delivery``): a ``message_handler`` runs
  on its own thread (``bfsync-user-N``), else ``events(timeout)`` reads a bounded queue
  (``queue_size``; the oldest are dropped, ``bfsync.dropped`` says so). ``latest(e)`` is the
  last event of type ``e``. ``on_state_change`` runs on a dispatcher thread.
- **Order tracking.** Every ORDER_TRADE_UPDATE and ALGO_UPDATE is kept on arrival, per
  client id (``o.c`` / ``o.caid``; the last ``order_history`` ids), so
  ``wait_for_order`` sees events that came before the call.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, cast

import attrs

from ._delivery import DeliveryLane
from ._dispatch import Dispatcher
from ._iothread import ChannelBase, IOThread, LinkView, Outgoing
from ._policy import LinkPolicy, backoff
from ._userdata import (
    OrderHistory,
    Overlap,
    check_statuses,
    key_refused,
    mask,
    match,
    private_url,
)
from .config import Config
from .exceptions import (
    AuthenticationError,
    ConnectionError,
    ListenKeyError,
    OrderEndedError,
    OrderWaitTimeoutError,
    RequestError,
    RequestTimeoutError,
)
from .protocol import USER_STREAM
from .transport import Request, State

if TYPE_CHECKING:
    from ._rpc import RpcSession
    from .service import WebSocketService

__all__ = ["GAP", "SNAPSHOT", "UserDataStream"]

log = logging.getLogger("bfsync.userstream")

GAP = "bfsync.gap"
SNAPSHOT = "bfsync.snapshot"
_START = "userDataStream.start"
_PING = "userDataStream.ping"
_OVERLAP = 2.0  # seconds both links of a rotation are read (and de-duplicated)
_FATAL_CODES = frozenset({-2014, -2015, -1002})  # the API key itself is refused
_numbers = itertools.count(1)
Handler = Callable[[dict[str, Any]], object]


class _KeySource(Protocol):
    """Where listenKeys come from (and, for a service's stream, snapshots)."""

    def request(self, method: str) -> Future[Any]: ...

    def snapshot(self) -> Optional[tuple[Future[Any], Future[Any]]]: ...


class _OwnKeys:
    """An API-key-only ws-fapi session of the stream's own, on its I/O thread."""

    def __init__(self, io: IOThread, session: RpcSession, timeout: float) -> None:
        self.io = io
        self.session = session
        self.timeout = timeout

    def request(self, method: str) -> Future[Any]:
        future: Future[Any] = Future()
        session = self.session
        request = Request(method, {}, USER_STREAM, future, time.monotonic() + self.timeout)
        if session.accepting:
            session.inbox.append(request)
            self.io.wake()
            if session.accepting:
                return future
            with contextlib.suppress(ValueError):
                session.inbox.remove(request)
                future.set_exception(ConnectionError(f"{method}: the ws-fapi session is closed"))
            return future
        future.set_exception(ConnectionError(f"{method}: the ws-fapi session is closed"))
        return future

    def snapshot(self) -> Optional[tuple[Future[Any], Future[Any]]]:
        return None


class _ServiceKeys:
    """A ``WebSocketService``'s connection: listenKeys and snapshots."""

    def __init__(self, service: WebSocketService) -> None:
        self.service = service

    def request(self, method: str) -> Future[Any]:
        try:
            if method == _START:
                return cast("Future[Any]", self.service.start_user_data_stream(False))
            return cast("Future[Any]", self.service.ping_user_data_stream(False))
        except Exception as exc:  # closed service, ban: a failed request like any other
            future: Future[Any] = Future()
            future.set_exception(exc)
            return future

    def snapshot(self) -> Optional[tuple[Future[Any], Future[Any]]]:
        futures: list[Future[Any]] = []
        for call in (self.service.get_position_info, self.service.get_account_balance):
            try:
                futures.append(cast("Future[Any]", call(wait_for_response=False)))
            except Exception as exc:
                future: Future[Any] = Future()
                future.set_exception(exc)
                futures.append(future)
        return futures[0], futures[1]


class _ApiKeyOnly:
    """The signer of an API-key-only session: USER_STREAM requests are never signed."""

    key_type = "none"

    def sign(self, payload: str) -> str:
        raise AuthenticationError("this session has an API key only; it cannot sign")


def _fatal(exc: BaseException) -> bool:
    """Whether a refused start/ping means the API key itself is bad or revoked."""
    if isinstance(exc, AuthenticationError):
        return True
    return isinstance(exc, RequestError) and (exc.code in _FATAL_CODES or exc.status == 401)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class _PrivateChannel(ChannelBase):
    """
    The private connection as a channel of the I/O thread, and the listenKey's lifecycle.
    Every method runs on the I/O thread; caller threads only read its fields.
    """

    def __init__(self, stream: UserDataStream, io: IOThread, keys: _KeySource, key: str) -> None:
        config = stream.config
        self.name = f"userstream#{stream.number}"
        self.stream = stream
        self.io = io
        self.keys = keys
        self.config = config
        self.key: Optional[str] = key
        self.key_at = time.monotonic()
        self.current: Optional[LinkView] = None
        self.opened = threading.Event()
        self.ever_opened = False
        self.failure: Optional[BaseException] = None
        self.closed = False
        self.batch: list[dict[str, Any]] = []
        self.inbox: deque[Callable[[float], None]] = deque()
        self.overlap = Overlap()
        # The listenKey's lifecycle
        self.url_key: Optional[str] = None  # the key of the handshake in progress
        self.link_key: Optional[str] = None  # the key the current link was opened with
        self.ping_inflight = False
        self.renewing = False  # a userDataStream.start is in flight
        self.renew_wanted = False
        self.renew_at = math.inf
        self.renew_attempts = 0
        self.need_new_link = False  # the current link's key is gone
        # Gaps and reconciliation
        self.break_since: Optional[int] = None
        self.break_reason = ""
        self.key_changed = False
        self.hold: Optional[list[dict[str, Any]]] = None
        self.hold_until = math.inf
        self.hold_reason = ""
        self.snapshot_seq = 0
        self.last_event = time.monotonic()
        self.stale = False
        self.rotate_at = math.inf  # retry a failed rotation (stale link, old key) then

    # The channel contract (I/O thread)

    def url(self) -> str:
        key = self.key or ""
        self.url_key = key
        if self.current is not None:  # a rotation: the new link is bound before it is open
            self.overlap.arm()
        config = self.config
        return private_url(config.stream_url, key, config.events, config.private_url_form)

    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        stream = self.stream
        self._run_inbox(now)
        self.flush()
        if rotation:
            stream.rotations += 1
            self.overlap.start(now + _OVERLAP)
        elif self.ever_opened:
            stream.reconnects += 1
        self.current = link
        self.link_key = self.url_key
        self.rotate_at = math.inf
        self.last_event = now
        self.stale = False
        first = not self.ever_opened
        self.ever_opened = True
        if self.link_key != self.key and self.key is not None:
            self.io.rotate(self)  # a new key came during the handshake: use it
        elif not self.need_new_link:
            if self.break_since is not None:
                self._emit_gap(now)
            elif first and self.config.reconcile:
                self._reconcile("start", now)
        self.opened.set()
        stream._update_state()

    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        if not self.overlap.admit(data, now):
            return
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("%s: ignored a message that is not JSON (%d bytes)", self.name, len(data))
            return
        if isinstance(event, dict) and "data" in event and "stream" in event:
            event = event["data"]  # a combined-mode envelope
        if not isinstance(event, dict) or "e" not in event:
            if not (isinstance(event, dict) and "id" in event):
                log.warning("%s: ignored a message that is not an event", self.name)
            return
        if link is self.current:
            self.last_event = now
            if self.stale:
                self.stale = False
                self.stream._update_state()
        kind = event.get("e")
        if kind == "listenKeyExpired":
            expired = event.get("listenKey")
            event = {**event, "listenKey": mask(expired if isinstance(expired, str) else None)}
            if expired == self.key and link is self.current:
                log.warning("%s: the server expired listenKey %s", self.name, mask(self.key))
                self._renew(now, "listenKeyExpired", new_link=True)
        else:
            self.stream._record(event)
        if self.hold is not None:
            self.hold.append(event)
        else:
            self.batch.append(event)

    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        self._run_inbox(now)
        self.flush()
        return ()

    def flush(self) -> None:
        batch = self.batch
        if batch:
            self.batch = []
            self.stream._lane.put(batch)

    def next_deadline(self) -> float:
        if self.inbox:
            return 0.0
        until = math.inf
        if self.renew_wanted and not self.renewing:
            until = self.renew_at
        elif not self.renewing and not self.ping_inflight and self.key is not None:
            until = self.key_at + self.config.keepalive_interval
        if self.overlap.active:
            until = min(until, self.overlap.until)
        if self.hold is not None:
            until = min(until, self.hold_until)
        until = min(until, self.rotate_at)
        stale_after = self.config.stale_after
        if stale_after is not None and self.current is not None and not self.stale:
            until = min(until, self.last_event + stale_after)
        return until

    def on_tick(self, now: float) -> None:
        self._run_inbox(now)
        if self.renew_wanted and not self.renewing and now >= self.renew_at:
            self.renew_wanted = False
            self.renewing = True
            self._ask(_START)
        elif (
            not self.renewing
            and not self.renew_wanted
            and not self.ping_inflight
            and self.key is not None
            and now >= self.key_at + self.config.keepalive_interval
        ):
            self.ping_inflight = True
            self._ask(_PING)
        if now >= self.rotate_at:
            self.rotate_at = math.inf
            if self.current is not None:
                self.io.rotate(self)
        if self.hold is not None and now >= self.hold_until:
            self._snapshot_done(self.snapshot_seq, None, self.hold_reason)
        stale_after = self.config.stale_after
        if (
            stale_after is not None
            and self.current is not None
            and not self.stale
            and now >= self.last_event + stale_after
        ):
            log.warning("%s: no event for %g s; replacing the connection", self.name, stale_after)
            self.stale = True
            self._break(f"no event for {stale_after:g} s")
            self.io.rotate(self)
            self.stream._update_state()
        self.flush()

    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        self.flush()
        if link is not self.current:
            return  # a rotation's old link: the new one is open
        self.current = None
        self.overlap.stop()
        self._break(f"connection lost: {cause}")
        self.stream._update_state()

    def on_connect_failed(self, cause: BaseException, attempt: int, now: float) -> None:
        if attempt == 0 and not self.overlap.active:
            self.overlap.stop()  # the rotation's handshake failed: nothing to de-duplicate
        if key_refused(cause) and self.url_key == self.key:
            log.warning("%s: the server refused listenKey %s", self.name, mask(self.key))
            self._renew(now, "the server refused the listenKey", new_link=True)
        elif attempt == 0 and (self.stale or self.link_key != self.key):
            # A rotation we asked for failed (the I/O thread does not retry those): again
            # after reconnect_delay.
            self.rotate_at = now + self.config.reconnect_delay

    def can_retire(self, old: LinkView, now: float) -> bool:
        if self.overlap.active and now < self.overlap.until:
            return False
        self.overlap.stop()
        return True

    def on_closed(self, cause: Optional[BaseException]) -> None:
        self.closed = True
        if self.hold is not None:
            self.batch.extend(self.hold)
            self.hold = None
        self.flush()
        self.failure = cause
        self.current = None
        self.opened.set()
        self.stream._channel_closed(self, cause)

    # The listenKey (I/O thread)

    def post(self, op: Callable[[float], None]) -> None:
        """From any thread: run ``op(now)`` on the I/O thread."""
        self.inbox.append(op)
        self.io.wake()

    def _run_inbox(self, now: float) -> None:
        inbox = self.inbox
        while inbox and not self.closed:
            inbox.popleft()(now)

    def _ask(self, method: str) -> None:
        future = self.keys.request(method)
        future.add_done_callback(lambda f: self.post(lambda now: self._key_reply(method, f, now)))

    def _renew(self, now: float, reason: str, new_link: bool) -> None:
        if new_link:
            self.need_new_link = True
            self._break(reason)
        if not self.renewing and not self.renew_wanted:
            self.renew_wanted = True
            self.renew_at = now
        self.stream._update_state()

    def _key_reply(self, method: str, future: Future[Any], now: float) -> None:
        exc = future.exception()
        result: Any = None
        if exc is None:
            reply = future.result()
            result = reply.get("result") if isinstance(reply, dict) else None
            key = result.get("listenKey") if isinstance(result, dict) else None
            if not isinstance(key, str) or not key:
                exc = ListenKeyError(f"{method}: the reply has no listenKey")
        if method == _PING:
            self.ping_inflight = False
            if exc is None:
                self.key_at = now
                if result["listenKey"] != self.key:
                    self._new_key(result["listenKey"], now)
                return
            log.warning("%s: keepalive failed (%s); asking for a key again", self.name, exc)
            code = getattr(exc, "code", None)
            self._renew(now, f"keepalive failed: {_describe(exc)}", new_link=code == -1125)
            return
        self.renewing = False
        if exc is None:
            self.renew_attempts = 0
            self.key_at = now
            self._new_key(result["listenKey"], now)
            self.stream._update_state()
            return
        if _fatal(exc):
            self._fail(exc)
            return
        self.renew_attempts += 1
        attempts = self.renew_attempts
        limit = max(1, self.config.max_reconnect_attempts)
        if attempts >= limit:
            self._fail(exc)
            return
        delay = backoff(LinkPolicy.from_config(self.config), attempts)
        log.warning(
            "%s: asking for a listenKey failed (%s); again in %.1f s", self.name, exc, delay
        )
        self.renew_wanted = True
        self.renew_at = now + delay

    def _new_key(self, key: str, now: float) -> None:
        changed = key != self.key
        if changed:
            if self.key is not None:
                self.key_changed = True
            log.info("%s: new listenKey %s", self.name, mask(key))
            self.key = key
        if changed or self.need_new_link:
            if not changed:
                log.info("%s: listenKey %s again; reconnecting", self.name, mask(key))
            self.need_new_link = False
            if self.current is not None:
                self.io.rotate(self)
        elif self.current is not None and self.break_since is not None and not self.stale:
            self._emit_gap(now)

    def _fail(self, exc: BaseException) -> None:
        code = getattr(exc, "code", None)
        error = ListenKeyError(
            f"the user data stream cannot get a listenKey: {_describe(exc)}",
            code=code,
            status=getattr(exc, "status", None),
        )
        error.__cause__ = exc
        log.error("%s: %s", self.name, error)
        self.io.remove(self, error)

    # Gaps (I/O thread)

    def _break(self, reason: str) -> None:
        if self.break_since is None:
            self.break_since = int(time.time() * 1000)
            self.break_reason = reason

    def _emit_gap(self, now: float) -> None:
        since = self.break_since
        reason = self.break_reason
        self.break_since = None
        self.break_reason = ""
        if self.hold is not None:  # a snapshot in flight: its events go first
            self.batch.extend(self.hold)
            self.hold = None
        gap = {
            "e": GAP,
            "E": int(time.time() * 1000),
            "since": since,
            "reason": reason,
            "listen_key_changed": self.key_changed,
        }
        self.key_changed = False
        self.batch.append(gap)
        self.stream._gap()
        log.warning("%s: events may be missing since the break (%s)", self.name, reason)
        if self.config.reconcile:
            self._reconcile(reason, now)
        self.flush()

    def _reconcile(self, reason: str, now: float) -> None:
        futures = self.keys.snapshot()
        if futures is None:
            return
        self.snapshot_seq += 1
        seq = self.snapshot_seq
        self.hold = []
        self.hold_reason = reason
        self.hold_until = now + self.config.request_timeout + 2.0
        positions, balances = futures
        box: dict[str, Any] = {"reason": reason}

        def done(_: Future[Any]) -> None:
            if positions.done() and balances.done() and not box.get("posted"):
                box["posted"] = True
                self.post(lambda now: self._snapshot_done(seq, (positions, balances), reason))

        positions.add_done_callback(done)
        balances.add_done_callback(done)

    def _snapshot_done(
        self,
        seq: int,
        futures: Optional[tuple[Future[Any], Future[Any]]],
        reason: str,
    ) -> None:
        if seq != self.snapshot_seq or self.hold is None:
            return  # superseded by a later gap
        snapshot: dict[str, Any] = {"e": SNAPSHOT, "E": int(time.time() * 1000)}
        if futures is None:
            snapshot.update(
                reason=reason,
                positions=None,
                balances=None,
                error=f"no snapshot within {self.config.request_timeout + 2.0:g} s",
            )
        else:
            snapshot["reason"] = reason
            try:
                snapshot["positions"] = futures[0].result(0)["result"]
                snapshot["balances"] = futures[1].result(0)["result"]
            except Exception as exc:
                snapshot.update(positions=None, balances=None, error=_describe(exc))
        held, self.hold = self.hold, None
        self.batch.append(snapshot)
        self.batch.extend(held)
        self.flush()


class UserDataStream:
    """
    Binance's user data stream, for synchronous code. See the module docstring.

    Build it started with ``BinanceClient().user_stream(api_key, message_handler, config)``
    or ``ws.user_stream(message_handler, config)``; or construct it and call ``start()``.

    Args:
        api_key: the API key whose account to follow (a stream of its own: it opens an
            API-key-only ws-fapi connection for the listenKey). Give this or ``service``.
        message_handler: called with each event (Binance's dict) on a bfsync thread; ``None``
            to read them with ``events()``.
        config: settings (``stream_url``, ``ws_url``, ``keepalive_interval``, ``events``,
            ``private_url_form``, ``reconcile``, ``order_history``, ``queue_size``,
            ``stale_after``, timeouts, reconnection, ``max_connection_age``); unknown keys
            raise ``ValueError``. For a service's stream the service's settings are the
            defaults.
        service: a connected ``WebSocketService`` whose key and connection to use.

    Raises:
        ValueError: a bad ``config`` or ``message_handler``, ``reconcile`` without a service.
        AuthenticationError: ``api_key`` is not a non-empty string.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        message_handler: Optional[Handler] = None,
        config: Optional[Mapping[str, Any]] = None,
        *,
        service: Optional[WebSocketService] = None,
    ) -> None:
        if message_handler is not None and not callable(message_handler):
            raise ValueError("message_handler must be a callable or None")
        if (api_key is None) == (service is None):
            raise ValueError("give an api_key or a service (WebSocketService), not both")
        if service is None and (not isinstance(api_key, str) or not api_key):
            raise AuthenticationError("api_key must be a non-empty string")
        if service is not None:
            defaults = attrs.asdict(service.config, recurse=False)
            self.config = Config.from_dict(config, **defaults)
        else:
            self.config = Config.from_dict(config)
            if self.config.reconcile:
                raise ValueError(
                    "config['reconcile'] needs a stream of a WebSocketService "
                    "(ws.user_stream(...)): positions and balances are signed requests"
                )
        self.number = next(_numbers)
        self.message_handler = message_handler
        self.on_state_change: Optional[Callable[[State], object]] = None
        self.reconnects = 0
        self.rotations = 0
        self.gaps = 0
        self._api_key = api_key
        self._service = service
        self._lock = threading.Lock()  # start / stop
        self._cond = threading.Condition(threading.Lock())  # history, state, waiters
        self._history = OrderHistory(self.config.order_history)
        self._state = State.CLOSED
        self._failure: Optional[BaseException] = None
        self._io: Optional[IOThread] = None
        self._own_io = False
        self._channel: Optional[_PrivateChannel] = None
        self._lane = DeliveryLane(None, shape="payloads", latest_key="e")
        self._lane.close()
        self._dispatcher = Dispatcher("bfsync-dispatch")
        self._closing = False

    def __repr__(self) -> str:
        return (
            f"<UserDataStream {self.state.value} listenKey={mask(self.listen_key)} "
            f"events={len(self.config.events)}>"
        )

    def __enter__(self) -> UserDataStream:
        if self.state in (State.CLOSED, State.FAILED):
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Lifecycle

    @property
    def state(self) -> State:
        """``connecting``, ``connected``, ``reconnecting``, ``stale``, ``closed`` or ``failed``."""
        return self._state

    @property
    def failure(self) -> Optional[BaseException]:
        """Why the stream failed (``state`` ``"failed"``), else ``None``."""
        return self._failure

    @property
    def is_connected(self) -> bool:
        """Whether a private connection is open (events can arrive)."""
        channel = self._channel
        return (
            channel is not None
            and channel.current is not None
            and self._state not in (State.CLOSED, State.FAILED)
        )

    @property
    def listen_key(self) -> Optional[str]:
        """The current listenKey (a bearer credential: do not log it), or ``None``."""
        channel = self._channel
        return channel.key if channel is not None else None

    @property
    def dropped(self) -> int:
        """Events dropped (oldest first) because the queue was full."""
        return self._lane.dropped

    @property
    def handler_errors(self) -> int:
        """How many times ``message_handler`` raised."""
        return self._lane.handler_errors

    def start(self) -> None:
        """
        Get a listenKey and open the private connection; a no-op when running.

        Blocks at most about ``connection_timeout`` (own ws-fapi connection) plus
        ``request_timeout`` (the key) plus ``connection_timeout`` (the stream), each plus one
        second.

        Raises:
            ListenKeyError: ``userDataStream.start`` was refused (``code``: -2015 for a bad
                or revoked API key).
            RequestTimeoutError: no listenKey within ``request_timeout``.
            ConnectionError: ws-fapi or the stream server could not be reached, or the
                service is closed.
        """
        with self._lock:
            if self._channel is not None and self._state not in (State.CLOSED, State.FAILED):
                return
            self._teardown()
            self._closing = False
            self._failure = None
            self._history = OrderHistory(self.config.order_history)
            self._lane = DeliveryLane(
                self.message_handler,
                queue_size=self.config.queue_size,
                shape="payloads",
                latest_key="e",
                name=f"bfsync-user-{self.number}",
            )
            self._set_state(State.CONNECTING)
            try:
                self._open()
            except BaseException:
                self._teardown()
                self._set_state(State.CLOSED)
                raise

    def stop(self) -> None:
        """
        Close the private connection (and the stream's own ws-fapi connection) and stop the
        stream's threads; idempotent, from any thread (also from the handler). ``events()``
        ends; waiting ``wait_for_order`` calls raise ``ConnectionError``. The listenKey is not
        stopped on the server (other streams of the same API key share it); unpinged, it
        expires within 60 minutes. Bounded: returns within about seven seconds.
        """
        with self._lock:
            self._teardown()
        if self._state is not State.FAILED:
            self._set_state(State.CLOSED)
        self._dispatcher.close(1.0)

    def close(self) -> None:
        """The same as ``stop()``."""
        self.stop()

    # Delivery

    def events(self, timeout: Optional[float] = None) -> Iterator[dict[str, Any]]:
        """
        Yield events (and bfsync's ``bfsync.*`` notices) until the stream is stopped, or
        until ``timeout`` seconds pass with no event (``None``: no limit).

        Raises:
            RuntimeError: a ``message_handler`` takes the events.
        """
        return cast("Iterator[dict[str, Any]]", self._lane.events(timeout))

    def latest(self, event_type: str) -> Optional[dict[str, Any]]:
        """The last event of ``event_type`` (e.g. ``"ACCOUNT_UPDATE"``, ``"bfsync.gap"``)."""
        return cast("Optional[dict[str, Any]]", self._lane.latest(event_type))

    def wait_for_order(
        self,
        client_order_id: str,
        statuses: Sequence[str] = ("FILLED",),
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """
        Wait until the order (ORDER_TRADE_UPDATE ``o.c``) or algo order (ALGO_UPDATE
        ``o.caid``) ``client_order_id`` has one of ``statuses`` (``o.X``); return that event.

        Events that arrived before the call count (the last ``order_history`` ids are kept),
        the first matching one is returned. Callable from any thread but the I/O thread,
        also from the message handler. For algo orders use algo statuses (``TRIGGERED``,
        ``FINISHED``, ...).

        Raises:
            ValueError: an empty ``client_order_id``, an unknown status, a bad ``timeout``.
            OrderEndedError: the order reached a final status not in ``statuses`` (e.g.
                CANCELED while waiting for FILLED); ``event`` is that event.
            OrderWaitTimeoutError: nothing matched within ``timeout`` seconds (a
                ``RequestTimeoutError``; ``gaps`` says whether events may have been missed).
            ConnectionError: the stream is not running, or stopped or failed while waiting.
        """
        if not isinstance(client_order_id, str) or not client_order_id:
            raise ValueError(f"client_order_id must be a non-empty string, got {client_order_id!r}")
        wanted = check_statuses(statuses)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout < 0
        ):
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        io = self._io
        if io is not None and io.in_io_thread():
            raise RuntimeError("wait_for_order cannot be called on bfsync's I/O thread")
        deadline = time.monotonic() + timeout
        gaps = self.gaps
        with self._cond:
            while True:
                events = self._history.events(client_order_id)
                hit, ended = match(events, wanted)
                if hit is not None:
                    return hit
                if ended is not None:
                    raise OrderEndedError(
                        f"order {client_order_id!r} ended {ended['o'].get('X')} "
                        f"({ended.get('e')}), not {'/'.join(sorted(wanted))}",
                        client_order_id=client_order_id,
                        event=ended,
                    )
                if self._state in (State.CLOSED, State.FAILED):
                    raise ConnectionError(
                        f"the user data stream is {self._state.value}"
                        + (f" ({self._failure})" if self._failure else "")
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missed = self.gaps - gaps
                    raise OrderWaitTimeoutError(
                        f"order {client_order_id!r}: no {'/'.join(sorted(wanted))} within "
                        f"{timeout:g} s"
                        + (f"; {missed} gap(s) meanwhile, events may be missing" if missed else ""),
                        client_order_id=client_order_id,
                        last_event=events[-1] if events else None,
                        gaps=missed,
                    )
                self._cond.wait(remaining)

    def order_events(self, client_order_id: str) -> list[dict[str, Any]]:
        """The ORDER_TRADE_UPDATE / ALGO_UPDATE events kept for ``client_order_id``."""
        with self._cond:
            return self._history.events(client_order_id)

    # Private methods (caller threads)

    def _open(self) -> None:
        config = self.config
        limit = config.connection_timeout + 1.0
        service = self._service
        keys: _KeySource
        if service is None:
            from ._rpc import RpcSession

            io = IOThread("bfsync-io")
            self._io, self._own_io = io, True
            url = config.ws_url
            url += ("&" if "?" in url else "?") + "returnRateLimits=false"
            session_config = attrs.evolve(config, sync_clock=False)
            assert self._api_key is not None
            session = RpcSession(
                session_config,
                cast(Any, _ApiKeyOnly()),
                self._api_key,
                url,
                lambda state: None,
                self._keys_finished,
            )
            session.name = f"userstream-keys#{self.number}"
            session.start()
            io.add(session, LinkPolicy.from_config(config))
            if not session.opened.wait(limit) or session.failure is not None:
                cause = session.failure
                raise ConnectionError(
                    f"cannot connect to {config.ws_url} for a listenKey: "
                    f"{cause or f'no connection within {limit:g} s'}"
                ) from cause
            keys = _OwnKeys(io, session, float(config.request_timeout))
        else:
            transport = service._transport
            if transport is None or service.state in (State.CLOSED, State.FAILED):
                raise ConnectionError("the WebSocketService is not connected; connect() it first")
            io = transport.io_thread
            self._io, self._own_io = io, False
            keys = _ServiceKeys(service)
        key = self._first_key(keys)
        channel = _PrivateChannel(self, io, keys, key)
        self._channel = channel
        try:
            io.add(channel, LinkPolicy.from_config(config))
        except RuntimeError as exc:
            raise ConnectionError("the WebSocketService is closed") from exc
        if not channel.opened.wait(limit) or channel.failure is not None or channel.closed:
            cause = channel.failure
            raise ConnectionError(
                f"cannot open the user data stream at {config.stream_url}/private "
                f"(listenKey {mask(key)}): {cause or f'no connection within {limit:g} s'}"
            ) from cause

    def _first_key(self, keys: _KeySource) -> str:
        timeout = self.config.request_timeout
        future = keys.request(_START)
        try:
            reply = future.result(timeout + 1.0)
        except RequestError as exc:
            if isinstance(exc, RequestTimeoutError):
                raise
            raise ListenKeyError(
                f"userDataStream.start refused: {exc.msg}",
                code=exc.code,
                msg=exc.msg,
                status=exc.status,
                response=exc.response,
            ) from exc
        except concurrent.futures.TimeoutError as exc:
            raise RequestTimeoutError(f"userDataStream.start: no reply within {timeout} s") from exc
        except Exception as exc:
            if isinstance(exc, ConnectionError):
                raise
            raise ConnectionError(f"userDataStream.start failed: {_describe(exc)}") from exc
        result = reply.get("result") if isinstance(reply, dict) else None
        key = result.get("listenKey") if isinstance(result, dict) else None
        if not isinstance(key, str) or not key:
            raise ListenKeyError("userDataStream.start: the reply has no listenKey")
        return key

    def _teardown(self) -> None:
        self._closing = True
        io, self._io = self._io, None
        channel = self._channel
        if io is not None:
            if self._own_io:
                io.close()
            elif channel is not None:
                io.remove(channel)
                if io.alive and not io.in_io_thread():
                    _wait_closed(channel, 2.0)
        self._channel = None
        self._lane.close()
        with self._cond:
            self._cond.notify_all()

    # Private methods (I/O thread)

    def _record(self, event: dict[str, Any]) -> None:
        with self._cond:
            if self._history.record(event) is not None:
                self._cond.notify_all()

    def _gap(self) -> None:
        with self._cond:
            self.gaps += 1
            self._cond.notify_all()

    def _keys_finished(self, cause: Optional[BaseException]) -> None:
        """The own ws-fapi session ended (I/O thread): without it no key can be renewed."""
        channel = self._channel
        if cause is not None and channel is not None and not self._closing:
            error = ConnectionError(f"the ws-fapi connection for listenKeys failed: {cause}")
            error.__cause__ = cause
            self._io_remove(channel, error)

    def _io_remove(self, channel: _PrivateChannel, cause: BaseException) -> None:
        io = self._io
        if io is not None:
            io.remove(channel, cause)

    def _channel_closed(self, channel: _PrivateChannel, cause: Optional[BaseException]) -> None:
        if self._channel is not channel or self._closing:
            return
        # The service's I/O thread closed (ws.close(), cause None): the stream ends with it.
        state = State.CLOSED if cause is None else State.FAILED
        if cause is not None:
            self._failure = cause
            log.error("%s failed: %s", channel.name, cause)
        self._closing = True
        with self._cond:
            self._state = state  # first: whoever wakes below sees it
        self._lane.close(0)
        if self._own_io and self._io is not None:
            self._io.close(0)
        with self._cond:
            self._cond.notify_all()
        log.info("user stream #%d: %s", self.number, state.value)
        callback = self.on_state_change
        if callback is not None:
            self._dispatcher.post(callback, state)
        self._dispatcher.close(0)

    def _update_state(self) -> None:
        channel = self._channel
        if channel is None or self._closing:
            return
        if self._state in (State.CLOSED, State.FAILED):
            return
        if channel.current is None:
            state = State.RECONNECTING if channel.ever_opened else State.CONNECTING
        elif (
            channel.renewing
            or channel.renew_wanted
            or channel.need_new_link
            or channel.link_key != channel.key
        ):
            state = State.RECONNECTING
        elif channel.stale:
            state = State.STALE
        else:
            state = State.CONNECTED
        self._set_state(state)

    def _set_state(self, state: State) -> None:
        with self._cond:
            if state is self._state:
                return
            self._state = state
            self._cond.notify_all()
        log.info("user stream #%d: %s", self.number, state.value)
        callback = self.on_state_change
        if callback is not None:
            self._dispatcher.post(callback, state)


def _wait_closed(channel: _PrivateChannel, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not channel.closed and time.monotonic() < end:
        time.sleep(0.01)
