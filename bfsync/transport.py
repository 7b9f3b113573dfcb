"""
The ws-fapi transport: the public ``State``, the ``Request`` a call becomes, and ``Transport``,
the I/O thread (``_iothread.IOThread``) serving one ws-fapi session (``_rpc.RpcSession``).

Theory of operation
-------------------
``Transport`` composes three parts, each with its own docstring:

- ``_link.py``: one WebSocket connection; the handshake (on a helper thread
  ``bfsync-connect-N``, never on the I/O thread); non-blocking reads and buffered,
  non-blocking writes; the single boundary where socket, TLS, websocket-client and RFC 6455
  errors become "link lost".
- ``_iothread.py``: the thread ``bfsync-io-N``: ``select`` over the links and a wake socket,
  liveness (pings), rotation before ``max_connection_age``, reconnection with backoff
  (``_policy.py``, pure), close and abort, and settle-everything-on-exit.
- ``_rpc.py``: what the ws-fapi session does on those links: ids, pending, stamping and
  signing, logon and re-logon, the server clock, deadlines, bans, the -1021 re-send and read
  retries.

Caller threads never block on the I/O thread and it never blocks on them: ``submit()``
appends to the session's inbox and wakes the loop. Every request has a deadline that holds
whatever the I/O thread is doing: the I/O thread enforces it, and so do the blocking wait in
``service.py`` and, for futures, the process-wide watcher of ``_deadlines.py``
(:meth:`Transport.expire` is the race-safe way for them to do so).
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from .config import Config
from .exceptions import ConnectionError, RateLimitError
from .signing import Signer

if TYPE_CHECKING:
    from ._iothread import IOThread
    from ._rpc import RpcSession
    from .clock import ServerClock

__all__ = ["Request", "State", "Transport"]


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
        "expired",
        "future",
        "id",
        "link",
        "method",
        "not_before",
        "params",
        "resent",
        "retried",
        "security",
        "sent_at",
        "sent_mono",
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
        self.sent_mono = 0.0  # time.monotonic() when handed to the link
        self.link = 0  # the number of the link it was sent on
        self.expired = False  # timed out before it was sent: never send it (under TAKE_LOCK)


class Transport:
    """
    One ws-fapi session on its own I/O thread. See the module docstring.

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
        from ._iothread import IOThread
        from ._policy import LinkPolicy
        from ._rpc import RpcSession

        self._config = config
        url = config.ws_url
        if not config.return_rate_limits:
            url += ("&" if "?" in url else "?") + "returnRateLimits=false"
        self._io: IOThread = IOThread()
        self._policy = LinkPolicy.from_config(config)
        self._session: RpcSession = RpcSession(
            config, signer, api_key, url, on_state, self._finished
        )
        self._pid = os.getpid()

    # Public methods (any thread)

    @property
    def state(self) -> State:
        """The session's state; ``FAILED`` in a forked child (it has no I/O thread)."""
        return State.FAILED if self.forked else self._session.state

    @property
    def io_thread(self) -> IOThread:
        """The I/O thread serving this session (a user data stream adds its channel to it)."""
        return self._io

    @property
    def pending_count(self) -> int:
        """Requests sent and not yet answered, plus those queued."""
        return self._session.pending_count

    @property
    def reconnects(self) -> int:
        return self._session.reconnects

    @property
    def rotations(self) -> int:
        return self._session.rotations

    @property
    def rate_limits(self) -> list[dict[str, Any]]:
        return self._session.rate_limits

    @property
    def clock(self) -> ServerClock:
        return self._session.clock

    @property
    def last_logon_error(self) -> Optional[BaseException]:
        return self._session.last_logon_error

    @property
    def last_message_time(self) -> Optional[float]:
        """``time.monotonic()`` when the last frame of any kind arrived on the current link."""
        link = self._session.current
        if link is not None:
            return link.last_received
        return self._session.last_message_time

    @property
    def on_rate_limits(self) -> Optional[Callable[[list[dict[str, Any]]], None]]:
        return self._session.on_rate_limits

    @on_rate_limits.setter
    def on_rate_limits(self, callback: Optional[Callable[[list[dict[str, Any]]], None]]) -> None:
        self._session.on_rate_limits = callback

    @property
    def forked(self) -> bool:
        """Whether this process is a child forked after ``open()`` (it has no I/O thread)."""
        return os.getpid() != self._pid

    def open(self) -> None:
        """
        Start the I/O thread and wait until the first connection is up.

        Waits at most ``connection_timeout`` (plus a second). Raises ``ConnectionError``,
        chained from the cause, when the handshake fails; then no thread is left running.
        """
        session = self._session
        session.start()
        self._io.add(session, self._policy)
        if not session.opened.wait(self._config.connection_timeout + 1.0):
            self.close()
            raise ConnectionError(
                f"no connection to {self._config.ws_url} within {self._config.connection_timeout} s"
            )
        failure = session.failure
        if failure is not None:
            self._io.close(2.0)
            raise ConnectionError(
                f"cannot connect to {self._config.ws_url}: {failure}"
            ) from failure

    def submit(self, request: Request) -> None:
        """
        Queue a request; its future settles on the I/O thread (or by its deadline).

        Raises:
            ConnectionError: the transport is closed or failed, or this is a forked child.
            RateLimitError: the server banned this IP (418) and the ban has not ended.
        """
        session = self._session
        if not session.accepting:
            raise self._not_connected()
        if self.forked:
            raise self._not_connected()
        banned_until = session.banned_until
        if banned_until:
            wait = banned_until - time.monotonic()
            if wait > 0:
                raise RateLimitError(
                    f"{request.method}: not sent, the server banned this IP (status 418); "
                    f"retry in {wait:.0f} s",
                    retry_after=wait,
                    status=418,
                )
        session.inbox.append(request)
        self._io.wake()
        if not session.accepting:
            # The I/O thread stopped between our check and our append: fail it ourselves.
            try:
                session.inbox.remove(request)
            except ValueError:
                return  # the I/O thread took it and settles it
            raise self._not_connected()

    def expire(self, request: Request) -> None:
        """
        From any thread, at or after ``request.deadline``: fail it with its timeout error
        unless it is settled already (race-safe; an unsent request is then never sent).
        """
        from ._rpc import expire_request

        expire_request(request, self._config.request_timeout)

    def close(self, timeout: float = 5.0) -> None:
        """
        Stop the I/O thread; fail what is pending and queued with ``ConnectionLostError``.

        Idempotent, callable from any thread, including the I/O thread itself (then it does
        not wait for it). Waits at most about ``timeout`` seconds, then shuts the sockets down
        under the thread and waits one more second. In a forked child it touches nothing
        (the sockets belong to the parent).
        """
        session = self._session
        session.accepting = False
        if self.forked:
            return
        session.closing = True
        self._io.close(timeout)
        if not self._io.alive and session.state not in (State.CLOSED, State.FAILED):
            session.set_state(State.CLOSED)  # the thread never started (or was aborted)

    def in_io_thread(self) -> bool:
        return self._io.in_io_thread()

    # Private methods

    def _finished(self, cause: Optional[BaseException]) -> None:
        """The session ended (on the I/O thread): stop the thread, without waiting for it."""
        self._io.close()

    def _not_connected(self) -> ConnectionError:
        if self.forked:
            return ConnectionError(
                f"this service was connected in process {self._pid}; after os.fork() this "
                f"process ({os.getpid()}) has no I/O thread: call connect() in it to open a "
                "connection of its own"
            )
        session = self._session
        if session.state is State.FAILED and session.failure is not None:
            exc = ConnectionError(
                f"the service failed ({session.failure}); call connect() to start again"
            )
            exc.__cause__ = session.failure
            return exc
        return ConnectionError("the service is not connected; call connect() first")
