"""
One I/O thread serving several *channels*, each a logical WebSocket connection.

Theory of operation
-------------------
An :class:`IOThread` owns one daemon thread (``bfsync-io-N``). It is the only thread that
touches sockets. It serves any number of channels (the ws-fapi session of a
``WebSocketService``; one market-stream connection per route and shard; a user-data stream).
A channel is an object implementing :class:`Channel`: it decides *what* to send and what a
received message means; the I/O thread decides *when* and *how* bytes move:

- Each channel has at most one **current** link (where its new frames go), plus, during a
  rotation, a **draining** link (the previous one, still read until the channel says it owes
  nothing). Each link has its own liveness (ping after ``ping_interval`` of silence, dead after
  ``pong_timeout`` without an answer), its own send buffer and its own age.
- **Handshakes never run on the I/O thread.** A short-lived helper thread
  (``bfsync-connect-N``) runs one handshake, bounded by ``connection_timeout``, and hands the
  open link to the loop. During a rotation the old link keeps serving meanwhile. On close the
  helper's socket is shut down under it.
- **Sends never block.** Frames go to the link's buffer; the loop writes what the socket
  takes and selects for writability for the rest. A buffer that does not move for
  ``write_stall`` seconds means the link is dead.
- The loop ``select``s over every channel's links and a wake socket, with a timeout equal to
  the nearest deadline: each link's liveness and age, each channel's ``next_deadline()``, each
  channel's reconnection time.
- A lost link (any socket, TLS, websocket-client or RFC 6455 error, all mapped at one boundary
  in ``_link.py``) is reported with :meth:`Channel.on_link_lost`; if it was the current link the
  channel reconnects (first attempt at once, then :func:`bfsync._policy.backoff`). After
  ``max_reconnect_attempts`` failed attempts the channel is removed with
  :meth:`Channel.on_closed` and the cause. Other channels are not affected.
- **An exception escaping a channel method is a bug**, never a "lost link": it is logged with
  its traceback and that channel is removed (``on_closed(exc)``); other channels go on.
- Every path out of the thread calls ``on_closed`` on every channel still there.

The channel contract (every method runs on the I/O thread and must not block)
------------------------------------------------------------------------------
1. ``url()`` is asked before each handshake (first, reconnection, rotation), so a user data
   stream can return the URL of its newest listenKey. The URL is never logged (it may hold a
   listenKey); logs name the channel by ``name``.
2. ``on_open(link, now, rotation)``: a link is open. ``rotation=False``: the first link or a
   reconnection (the previous link, if any, was already reported lost); ``rotation=True``: the
   previous link is now *draining* and ``link`` becomes current. Queue the replay here
   (re-logon, resubscribe); ``outgoing`` is asked right after.
3. ``on_text(link, data, now)``: one complete text message (``bytes``, UTF-8 not checked) from
   ``link`` (current or draining). Binary frames are logged and dropped; pings are answered,
   pongs and close frames handled by the I/O thread.
4. ``outgoing(link, now)``: the text frames (``str``, or UTF-8 ``bytes``) to send on ``link``
   now, in order. Asked for each open link after every wake-up, after ``on_open``,
   ``on_text`` and ``on_tick``, and when the channel's ``next_deadline`` passes, except while
   the link's send buffer holds more than ``IOThread.high_water`` bytes (back-pressure: keep
   them queued, with their deadlines). Pacing (e.g. 10 control messages a second) lives
   here: return fewer, and set ``next_deadline`` to when the rest may go.
5. ``next_deadline()``: the monotonic time at which ``on_tick`` must run (expiries, pacing,
   timers); ``math.inf`` for none. Asked after each callback; a caller thread that changes
   it calls ``IOThread.wake()``.
6. ``on_tick(now)``: called when ``now >= next_deadline()``.
7. ``on_link_lost(link, cause, now)``: ``link`` is gone (``cause`` is a ``LinkLost``, its
   ``__cause__`` the original error, or the reason the I/O thread dropped it). Fail what was
   in flight on it. If it was the current link a reconnection follows (unless the channel is
   being removed).
8. ``on_connect_failed(cause, attempt, now)``: a handshake failed (attempt 1, 2, ...). The
   channel may log or expire requests; the I/O thread schedules the next attempt or gives up.
9. ``can_retire(old, now)``: during a rotation, whether the draining link ``old`` owes
   nothing more (all replies/acks that were requested on it have come). Once True, or after
   ``drain_timeout``, the I/O thread sends a close frame and drops it (``on_link_lost`` is
   *not* called for a retired link that owed nothing; a draining link lost early is reported).
10. ``on_closed(cause)``: the last call. ``cause`` is ``None`` when the channel was removed or
    the thread closed on purpose, else why it failed (reconnection gave up, first handshake
    failed, a bug). Settle everything; the channel is no longer served.

Caller threads use the ``IOThread`` methods only: ``add``/``remove`` (channels come and go
while the thread runs, e.g. a new shard when a route passes 1024 streams), ``wake`` (after
queueing something for ``outgoing``; coalesced, cheap), ``rotate`` (replace a channel's link
now, e.g. a silent stream), ``close``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Protocol, Union

from ._policy import LinkPolicy

__all__ = ["Channel", "ChannelBase", "IOThread", "LinkLost", "LinkView", "Outgoing"]

#: What ``Channel.outgoing`` returns: text frames, as ``str`` or UTF-8 ``bytes``.
Outgoing = Sequence[Union[str, bytes]]


class LinkLost(Exception):
    """A link is gone; ``__cause__`` (when set) is the socket, TLS or protocol error."""


class LinkView(Protocol):
    """What a channel sees of one link (all read-only except ``fail``)."""

    @property
    def number(self) -> int:
        """Unique within the process, increasing: tells links apart in logs and tables."""

    @property
    def opened_at(self) -> float:
        """``time.monotonic()`` when the handshake completed."""

    @property
    def last_received(self) -> float:
        """``time.monotonic()`` when the last frame of any kind arrived on it."""

    @property
    def buffered(self) -> int:
        """Bytes queued on it and not yet taken by the socket."""

    def fail(self, cause: BaseException) -> None:
        """Ask the I/O thread to drop this link as lost (I/O thread only; e.g. a bad peer)."""


class Channel(Protocol):
    """One logical connection served by an :class:`IOThread`: see the module docstring."""

    #: Names the channel in logs and thread names; must hold no secret.
    name: str

    def url(self) -> str:
        """The URL of the next handshake."""

    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        """``link`` is open and current; queue the replay (re-logon, resubscribe)."""

    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        """One complete text message from ``link``."""

    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        """The text frames to send on ``link`` now."""

    def next_deadline(self) -> float:
        """When ``on_tick`` must run next (monotonic seconds; ``math.inf`` for never)."""

    def on_tick(self, now: float) -> None:
        """A deadline passed: expire, pace, measure."""

    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        """``link`` is gone: fail what was in flight on it."""

    def on_connect_failed(self, cause: BaseException, attempt: int, now: float) -> None:
        """Handshake attempt ``attempt`` failed."""

    def can_retire(self, old: LinkView, now: float) -> bool:
        """Whether the draining link ``old`` owes nothing more."""

    def on_closed(self, cause: Optional[BaseException]) -> None:
        """The channel is no longer served; settle everything."""


class ChannelBase:
    """Convenient defaults for a :class:`Channel` (subclass and override what you need)."""

    name = "channel"

    def url(self) -> str:
        raise NotImplementedError

    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        pass

    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        pass

    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        return ()

    def next_deadline(self) -> float:
        return math.inf

    def on_tick(self, now: float) -> None:
        pass

    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        pass

    def on_connect_failed(self, cause: BaseException, attempt: int, now: float) -> None:
        pass

    def can_retire(self, old: LinkView, now: float) -> bool:
        return True

    def on_closed(self, cause: Optional[BaseException]) -> None:
        pass


class IOThread:
    """
    The I/O thread and the channels it serves. See the module docstring.

    Args:
        name: the thread's name prefix (``bfsync-io`` gives ``bfsync-io-N``).
    """

    #: ``outgoing`` is not asked for a link holding more unsent bytes than this.
    high_water = 4 << 20

    def __init__(self, name: str = "bfsync-io") -> None:
        raise NotImplementedError  # implemented in the next commit

    # Public methods (any thread)

    def add(self, channel: Channel, policy: LinkPolicy) -> None:
        """
        Serve ``channel`` from now on: its first handshake starts at once (on a helper thread).
        Starts the thread on first use. Raises ``RuntimeError`` after ``close()``.
        """
        raise NotImplementedError

    def remove(self, channel: Channel, cause: Optional[BaseException] = None) -> None:
        """
        Stop serving ``channel``: its links get a close frame and are dropped, its handshake
        (if any) is aborted, then ``on_closed(cause)`` runs on the I/O thread. Returns at once;
        a no-op for a channel not (or no longer) served.
        """
        raise NotImplementedError

    def wake(self) -> None:
        """Make the loop ask every channel for ``outgoing`` and ``next_deadline`` again."""
        raise NotImplementedError

    def rotate(self, channel: Channel) -> None:
        """Replace ``channel``'s current link now (the old one drains as in a rotation)."""
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """
        Remove every channel (``on_closed(None)``) and stop the thread. Idempotent, from any
        thread (from the I/O thread itself it does not wait). Waits at most about ``timeout``
        seconds, then shuts the sockets down under the thread and waits one more second.
        """
        raise NotImplementedError

    def in_io_thread(self) -> bool:
        """Whether the calling thread is this I/O thread."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        raise NotImplementedError
