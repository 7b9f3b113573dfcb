"""
The ws-fapi session: a :class:`~bfsync._iothread.Channel` of requests and replies.

Theory of operation
-------------------
Caller threads append ``Request`` s to :attr:`RpcSession.inbox` and wake the I/O thread.
Everything else happens on the I/O thread, through the channel methods:

- Requests are taken from the inbox into the session's own queue, and each one's deadline
  goes into a heap: expiry never assumes that requests were queued in deadline order
  (re-logon and clock measurements go to the front of the queue with fresh deadlines).
- ``outgoing(link)`` takes queued requests for the current link, in order: a request the
  caller cancelled (or that a caller thread already timed out) is dropped; each gets a fresh
  id and goes into ``pending`` *before* it is sent; it is stamped (``timestamp``,
  ``recvWindow``) and signed unless the link has an Ed25519 session. The rate limiter's hold
  (``not_before``) stops the queue there, keeping order. While a re-logon is in flight after a
  reconnection or a rotation, signed requests wait behind it (their deadlines still hold),
  so that nothing signed goes out before the session is known to be logged on or not;
  other requests pass.
- ``on_text`` matches replies to ``pending`` by id (any order) and settles the futures.
  A reply that names a pending id but is not valid UTF-8 or not JSON fails that request at
  once (an order's with "outcome unknown").
- ``on_link_lost`` fails what was in flight on that link (orders: outcome unknown), and puts
  reads back in front once with ``retry_reads``; queued requests wait for the next link.
- ``can_retire(old)``: a rotated link is closed when no request sent on it is pending.
- ``on_closed`` fails everything left; the transport is then closed or failed.

Settling is race-safe: a caller thread may time a request out itself (the blocking wait
in ``service.py``, or the process-wide deadline watcher for futures) while the I/O thread
settles it; whichever comes first wins, the other is a no-op. :data:`TAKE_LOCK` makes the
choice between "sent" and "timed out before it was sent" atomic, so the error says which.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import re
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable, Optional

from ._iothread import ChannelBase, LinkView, Outgoing
from .clock import ServerClock
from .config import Config
from .exceptions import (
    ConnectionLostError,
    OrderConnectionLostError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    RequestError,
    RequestTimeoutError,
)
from .protocol import (
    METHODS,
    NONE,
    SIGNED,
    USER_STREAM,
    decode_frame,
    encode_request,
    error_for,
    revoked_error,
)
from .signing import Signer, canonical_payload
from .transport import Request, State

__all__ = ["TAKE_LOCK", "RpcSession", "expire_request", "timeout_error"]

log = logging.getLogger("bfsync.rpc")

#: Guards the choice "send it" (I/O thread) against "it timed out unsent" (caller threads).
TAKE_LOCK = threading.Lock()

_MAX_FRAME = 4 << 20  # replies larger than this are logged and dropped, the link is kept
_DEFAULT_BAN = 120.0  # a 418 that does not say until when: Binance's shortest ban
# A reply's id, found without decoding it: only as the first key, as Binance sends it.
_ID = re.compile(rb'\s*\{\s*"id"\s*:\s*(\d{1,18})\s*[,}]')


def settle_result(future: Future[Any], value: Any) -> bool:
    """Set ``future``'s result unless it is settled already; True if this call did."""
    try:
        future.set_result(value)
    except InvalidStateError:
        return False
    return True


def settle_error(future: Future[Any], exc: BaseException) -> bool:
    """Set ``future``'s exception unless it is settled already; True if this call did."""
    try:
        future.set_exception(exc)
    except InvalidStateError:
        return False
    return True


def timeout_error(request: Request, sent: bool, timeout: float) -> RequestTimeoutError:
    """The error of a request that reached its deadline (the same text on every thread)."""
    if not sent:
        return RequestTimeoutError(
            f"{request.method}: not sent within {timeout} s (no connection, or held by the "
            "rate limiter); it never reached the server"
        )
    if METHODS[request.method].is_order:
        return OrderTimeoutError(
            f"{request.method}: no reply within {timeout} s; the order may or may not have "
            f"been placed (client order id {request.client_order_id!r})",
            client_order_id=request.client_order_id,
        )
    return RequestTimeoutError(f"{request.method}: no reply within {timeout} s")


def expire_request(request: Request, timeout: float) -> None:
    """
    From any thread: fail ``request`` with its timeout error unless it is settled already.

    An unsent request is marked so the I/O thread never sends it; a sent one keeps its
    ``pending`` entry on the I/O thread (a late reply is then ignored).
    """
    with TAKE_LOCK:
        if request.future.done():
            return
        sent = bool(request.id)
        request.expired = True
    settle_error(request.future, timeout_error(request, sent, timeout))


class RpcSession(ChannelBase):
    """
    The ws-fapi request/reply session. Channel methods run on the I/O thread only.

    Args:
        config: the service's settings.
        signer: signs requests (I/O thread only).
        api_key: sent as ``apiKey`` on signed requests.
        url: the ws-fapi URL (with its query).
        on_state: called with each new ``State``; must not block.
        on_finished: called once, on the I/O thread, after ``on_closed``.
    """

    name = "ws-fapi"

    def __init__(
        self,
        config: Config,
        signer: Signer,
        api_key: str,
        url: str,
        on_state: Callable[[State], None],
        on_finished: Callable[[Optional[BaseException]], None] = lambda cause: None,
    ) -> None:
        self._config = config
        self._signer = signer
        self._api_key = api_key
        self._url = url
        self._on_state = on_state
        self._on_finished = on_finished
        self._timeout = config.request_timeout
        self.inbox: deque[Request] = deque()  # caller threads append, the I/O thread takes
        self._queue: deque[Request] = deque()
        self._pending: dict[int, Request] = {}
        self._owed: dict[int, int] = {}  # link number -> requests pending on it
        self._deadlines: list[tuple[float, int, Request]] = []
        self._purge_at = 1024
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self.current: Optional[LinkView] = None
        self._session_link = 0  # the number of the link with an Ed25519 session
        self._want_logon = False
        self._logon: Optional[Request] = None  # a re-logon in flight: signed requests wait
        self.accepting = False
        self.state = State.CLOSED
        self.failure: Optional[BaseException] = None
        self.opened = threading.Event()
        self.closing = False
        self.reconnects = 0
        self.rotations = 0
        self.last_logon_error: Optional[BaseException] = None
        self.last_message_time: Optional[float] = None
        self.clock = ServerClock()
        self.rate_limits: list[dict[str, Any]] = []
        self.on_rate_limits: Optional[Callable[[list[dict[str, Any]]], None]] = None
        self.banned_until = 0.0  # time.monotonic() before which nothing is sent (418)
        self._after_sync: list[Request] = []  # held until the clock is measured again
        self._distrust_clock = False  # a -1021 came: the next measurement replaces the rest
        self._next_sync = time.monotonic() + config.clock_sync_interval

    @property
    def pending_count(self) -> int:
        return len(self._pending) + len(self._queue) + len(self.inbox)

    def start(self) -> None:
        self.set_state(State.CONNECTING)
        self.accepting = True

    # Channel methods (I/O thread)

    def url(self) -> str:
        return self._url

    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        self.current = link
        self.last_message_time = now
        if rotation:
            self.rotations += 1
        else:
            if self.opened.is_set():
                self.reconnects += 1
            self.set_state(State.CONNECTED)
            self.opened.set()
        if self._want_logon:
            self._relogon(now)

    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        self.last_message_time = now
        if len(data) > _MAX_FRAME:
            log.warning("ignored a frame of %d bytes (over %d)", len(data), _MAX_FRAME)
            return
        try:
            reply = decode_frame(data)
        except ValueError as exc:
            self._unreadable(data, exc)
            return
        reply_id = reply.get("id")
        # type() and not isinstance(): JSON true must not match request 1.
        request = self._pending.get(reply_id) if type(reply_id) is int else None
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
        self._unpend(request)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s id=%d: status %r in %.1f ms",
                request.method,
                request.id,
                reply.get("status"),
                (now - request.sent_mono) * 1000,
            )
        try:
            self._settle(request, reply)
        except Exception as exc:  # a reply of a shape nobody foresaw: settle, never die
            log.exception("could not handle the reply to %s", request.method)
            settle_error(
                request.future,
                RequestError(f"{request.method}: unreadable reply: {exc}", response=reply),
            )

    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        self._intake()
        queue = self._queue
        if link is not self.current or not queue:
            return ()
        texts: list[str] = []
        held: list[Request] = []
        pending = self._pending
        logon = self._logon
        while queue:
            request = queue[0]
            if request.not_before and request.not_before > now:
                break  # the rate limiter holds it (and, to keep order, those behind it)
            queue.popleft()
            if logon is not None and request.security == SIGNED and request is not logon:
                held.append(request)  # after the re-logon's reply
                continue
            if not self._take(request):
                continue  # cancelled, or timed out by a caller thread, before it was sent
            request_id = request.id
            pending[request_id] = request
            request.link = number = link.number
            self._owed[number] = self._owed.get(number, 0) + 1
            request.sent_mono = now
            try:
                text = encode_request(request_id, request.method, self._stamp(request, link))
            except Exception as exc:  # a value json cannot encode: the caller's mistake
                self._unpend(request)
                settle_error(
                    request.future, ValueError(f"{request.method}: params cannot be sent: {exc}")
                )
                continue
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s id=%d sent on link %d", request.method, request_id, number)
            texts.append(text)
        if held:
            queue.extendleft(reversed(held))
        return texts

    def next_deadline(self) -> float:
        self._intake()
        heap = self._deadlines
        while heap and not self._live(heap[0][2]):
            heapq.heappop(heap)
        until = heap[0][0] if heap else float("inf")
        queue = self._queue
        if queue and self.current is not None and queue[0].not_before:
            until = min(until, queue[0].not_before)
        if self._config.sync_clock and self.current is not None:
            until = min(until, self._next_sync)
        return until

    def on_tick(self, now: float) -> None:
        self._intake()
        self._expire(now)
        if self._config.sync_clock and self.current is not None and now >= self._next_sync:
            self._sync_clock(now)

    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        number = link.number
        cause = cause.__cause__ or cause
        if link is self.current:
            self.current = None
            self._session_link = 0
            if self._config.retry_reads:
                # Reads (never orders) go again once, first in line, on the next connection.
                retry = [
                    r
                    for r in self._pending.values()
                    if r.link == number and not r.retried and METHODS[r.method].is_read
                ]
                for request in reversed(retry):
                    self._unpend(request)
                    request.retried = True
                    self._queue.appendleft(request)
            self._fail_link(number, cause, "the connection was lost")
            if self._config.max_reconnect_attempts and not self.closing:
                self.set_state(State.RECONNECTING)
        else:
            self._fail_link(number, cause, "the rotated connection was lost")

    def on_connect_failed(self, cause: BaseException, attempt: int, now: float) -> None:
        self._intake()
        self._expire(now)

    def can_retire(self, old: LinkView, now: float) -> bool:
        return not self._owed.get(old.number)

    def on_closed(self, cause: Optional[BaseException]) -> None:
        self.accepting = False
        closing = self.closing or cause is None
        self.current = None
        why = "the service was closed" if closing else "the connection was lost"
        requests = list(self._pending.values())
        self._pending.clear()
        self._owed.clear()
        self._fail_sent(requests, None if closing else cause, why)
        self._intake()
        left = list(self._queue) + self._after_sync
        self._queue.clear()
        self._after_sync = []
        self._deadlines = []
        for request in left:
            if self._take(request):
                exc = ConnectionLostError(f"{request.method}: {why} before it was sent")
                exc.__cause__ = cause
                settle_error(request.future, exc)
        if not closing:
            self.failure = cause
        self.set_state(State.CLOSED if closing else State.FAILED)
        self.opened.set()
        self._on_finished(cause)

    # Private methods

    def set_state(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            log.info("state: %s", state.value)
            self._on_state(state)

    def _intake(self) -> None:
        inbox = self.inbox
        if not inbox:
            return
        queue = self._queue
        heap = self._deadlines
        seq = self._seq
        while inbox:
            request = inbox.popleft()
            queue.append(request)
            heapq.heappush(heap, (request.deadline, next(seq), request))
        if len(heap) > self._purge_at:
            self._purge()

    def _push_deadline(self, request: Request) -> None:
        heapq.heappush(self._deadlines, (request.deadline, next(self._seq), request))

    def _purge(self) -> None:
        """Drop the deadlines of settled requests (amortized: when the heap doubled)."""
        heap = [entry for entry in self._deadlines if self._live(entry[2])]
        heapq.heapify(heap)
        self._deadlines = heap
        self._purge_at = max(1024, 2 * len(heap))

    def _live(self, request: Request) -> bool:
        """Whether ``request`` still needs its deadline enforced here."""
        if request.id and self._pending.get(request.id) is request:
            return True
        return not request.future.done() and not request.expired

    def _take(self, request: Request) -> bool:
        """Claim a queued request for sending (new id); False: drop it."""
        with TAKE_LOCK:
            if request.expired:
                return False
            future = request.future
            if request.id:  # queued again (read retry, -1021 re-send): running already
                if future.done():
                    return False
            else:
                try:
                    if not future.set_running_or_notify_cancel():
                        return False  # cancelled by the caller
                except RuntimeError:  # settled already (its deadline, by a caller thread)
                    return False
            request.id = next(self._ids)
        return True

    def _unpend(self, request: Request) -> None:
        if self._pending.pop(request.id, None) is request:
            number = request.link
            owed = self._owed.get(number, 0) - 1
            if owed > 0:
                self._owed[number] = owed
            else:
                self._owed.pop(number, None)

    def _stamp(self, request: Request, link: LinkView) -> dict[str, Any]:
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
        params.pop("signature", None)
        params.pop("apiKey", None)
        if self._session_link == link.number and request.method != "session.logon":
            request.via_session = True
            return params
        request.via_session = False
        params["apiKey"] = self._api_key
        params["signature"] = self._signer.sign(canonical_payload(params))
        return params

    def _unreadable(self, data: bytes, exc: ValueError) -> None:
        """A frame that is not JSON: fail its request at once if it names a pending id."""
        match = _ID.match(data)
        request = self._pending.get(int(match.group(1))) if match else None
        if request is None:
            log.warning("ignored a frame that is not a JSON object: %.200r", data)
            return
        self._unpend(request)
        what = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
        log.warning("the reply to %s id=%d is %s", request.method, request.id, what)
        if METHODS[request.method].is_order:
            error: RequestError = OrderStatusUnknownError(
                f"{request.method}: the reply is {what}; the order may or may not have been "
                f"placed (client order id {request.client_order_id!r})",
                client_order_id=request.client_order_id,
            )
        else:
            error = RequestError(f"{request.method}: the reply is {what}")
        settle_error(request.future, error)

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
                self._want_logon = True
                self._session_link = request.link
                self.set_state(State.LOGGED_IN)
            elif method == "session.logout":
                self._want_logon = False
                self._session_link = 0
                self.set_state(State.CONNECTED)
            settle_result(future, reply)
            return
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
                self._sync_clock(time.monotonic())
            return
        exc = error_for(
            reply,
            request.method,
            int(time.time() * 1000),
            client_order_id=request.client_order_id,
        )
        if reply.get("status") == 418:
            wait = getattr(exc, "retry_after", None)
            self.banned_until = time.monotonic() + (_DEFAULT_BAN if wait is None else wait)
            log.error("the server banned this IP (418): sending nothing for %.0f s", wait or 0)
        settle_error(future, exc)

    def _internal(self, method: str, security: str, now: float) -> Request:
        """A request of the session's own, first in line."""
        future: Future[dict[str, Any]] = Future()
        request = Request(method, {}, security, future, now + self._timeout)
        self._queue.appendleft(request)
        self._push_deadline(request)
        return request

    def _sync_clock(self, now: float) -> None:
        """Queue a ``session.status`` ahead of everything, to measure the server's clock."""
        request = self._internal("session.status", NONE, now)
        request.future.add_done_callback(self._sync_done)
        self._next_sync = now + self._config.clock_sync_interval

    def _sync_done(self, future: Future[Any]) -> None:
        if future.exception() is not None:
            log.warning("measuring the server's clock failed: %s", future.exception())
        held, self._after_sync = self._after_sync, []
        for request in reversed(held):
            if not request.future.done():
                self._queue.appendleft(request)

    def _clock_measured(self, reply: dict[str, Any], request: Request) -> None:
        result = reply.get("result")
        server_time = result.get("serverTime") if isinstance(result, dict) else None
        if isinstance(server_time, int) and request.sent_at:
            if self._distrust_clock:  # the server said the estimate is wrong: start over
                self._distrust_clock = False
                self.clock.reset()
            with contextlib.suppress(ValueError):
                self.clock.update(server_time, request.sent_at, time.time() * 1000)

    def _relogon(self, now: float) -> None:
        """Queue ``session.logon`` ahead of everything else on a new link."""
        log.info("logging on again on the new link")
        request = self._internal("session.logon", SIGNED, now)
        self._logon = request
        request.future.add_done_callback(self._relogon_done)

    def _relogon_done(self, future: Future[Any]) -> None:
        self._logon = None
        exc = future.exception()
        if exc is not None:
            log.warning("logging on again failed: %s", exc)
            if self.state is State.LOGGED_IN:  # after a rotation it still said so
                self.set_state(State.CONNECTED)
        self.last_logon_error = exc  # after the state: who sees the error sees the state

    def _session_revoked(self, reply: dict[str, Any]) -> None:
        """A 401 with ``id: null``: the key was revoked; requests that relied on it fail."""
        log.error("the server revoked the API key (401): the session is logged out")
        self._want_logon = False
        self._session_link = 0
        if self.state is State.LOGGED_IN:
            self.set_state(State.CONNECTED)
        for request in list(self._pending.values()):
            if request.via_session or request.security in (SIGNED, USER_STREAM):
                self._unpend(request)
                settle_error(
                    request.future,
                    revoked_error(reply, request.method, client_order_id=request.client_order_id),
                )

    def _expire(self, now: float) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            request = heapq.heappop(heap)[2]
            if request.id and self._pending.get(request.id) is request:
                self._unpend(request)
                settle_error(request.future, timeout_error(request, True, self._timeout))
                continue
            if request.future.done() or request.expired:
                continue
            with TAKE_LOCK:
                sent = bool(request.id)
                request.expired = True
            with contextlib.suppress(ValueError):
                self._queue.remove(request)
            settle_error(request.future, timeout_error(request, sent, self._timeout))

    def _fail_link(self, number: int, cause: Optional[BaseException], why: str) -> None:
        requests = [r for r in self._pending.values() if r.link == number]
        for request in requests:
            self._unpend(request)
        self._fail_sent(requests, cause, why)

    @staticmethod
    def _fail_sent(requests: list[Request], cause: Optional[BaseException], why: str) -> None:
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
            settle_error(request.future, exc)
