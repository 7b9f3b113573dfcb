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

import contextlib
import itertools
import logging
import math
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Callable, Optional, Protocol, TypeVar, Union

from ._link import Handshake, Link, LinkLost, load_websocket_client
from ._policy import LinkPolicy, Verdict, backoff, rotation_due
from ._wsframes import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT

__all__ = ["Channel", "ChannelBase", "IOThread", "LinkLost", "LinkView", "Outgoing"]

log = logging.getLogger("bfsync.io")

T = TypeVar("T")
_thread_numbers = itertools.count(1)

#: What ``Channel.outgoing`` returns: text frames, as ``str`` or UTF-8 ``bytes``.
Outgoing = Sequence[Union[str, bytes]]


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


class _Slot:
    """One channel as the I/O thread serves it: its links, handshake and reconnection."""

    __slots__ = (
        "attempts",
        "channel",
        "current",
        "dead",
        "drain_until",
        "draining",
        "force_rotation",
        "handshake",
        "opened",
        "policy",
        "retry_at",
        "rotate_after",
    )

    def __init__(self, channel: Channel, policy: LinkPolicy, now: float) -> None:
        self.channel = channel
        self.policy = policy
        self.current: Optional[Link] = None
        self.draining: list[Link] = []
        self.drain_until: dict[int, float] = {}
        self.handshake: Optional[Handshake] = None
        self.attempts = 0  # failed handshakes in a row
        self.retry_at: Optional[float] = now  # when to try a handshake (no current link)
        self.rotate_after = 0.0  # a failed rotation handshake is retried after this
        self.force_rotation = False
        self.opened = False  # a link was open once
        self.dead = False

    def links(self) -> list[Link]:
        current = self.current
        return [*self.draining, current] if current is not None else list(self.draining)


class IOThread:
    """
    The I/O thread and the channels it serves. See the module docstring.

    Args:
        name: the thread's name prefix (``bfsync-io`` gives ``bfsync-io-N``).
    """

    #: ``outgoing`` is not asked for a link holding more unsent bytes than this.
    high_water = 4 << 20

    def __init__(self, name: str = "bfsync-io") -> None:
        load_websocket_client()
        self._name = f"{name}-{next(_thread_numbers)}"
        self._slots: list[_Slot] = []
        self._ops: deque[Callable[[float], None]] = deque()
        self._finished: deque[Handshake] = deque()
        self._helpers: set[Handshake] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_armed = False  # a wake byte is on its way; the I/O thread clears this
        self._closing = False
        self._closed = False
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._ident: Optional[int] = None
        self.pid = os.getpid()

    def __repr__(self) -> str:
        return f"<IOThread {self._name} channels={len(self._slots)}>"

    # Public methods (any thread)

    def add(self, channel: Channel, policy: LinkPolicy) -> None:
        """
        Serve ``channel`` from now on: its first handshake starts at once (on a helper thread).
        Starts the thread on first use. Raises ``RuntimeError`` after ``close()``.
        """
        with self._lock:
            if self._closing:
                raise RuntimeError("the I/O thread is closed")
            self._ops.append(lambda now: self._add(channel, policy, now))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self.wake()

    def remove(self, channel: Channel, cause: Optional[BaseException] = None) -> None:
        """
        Stop serving ``channel``: its links get a close frame and are dropped, its handshake
        (if any) is aborted, then ``on_closed(cause)`` runs on the I/O thread. Returns at once;
        a no-op for a channel not (or no longer) served.
        """
        self._ops.append(lambda now: self._remove(channel, cause))
        self.wake()

    def wake(self) -> None:
        """Make the loop ask every channel for ``outgoing`` and ``next_deadline`` again."""
        if not self._wake_armed:
            self._wake_armed = True
            # OSError: the buffer is full (a wake-up is pending anyway), or we are closed.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def rotate(self, channel: Channel) -> None:
        """Replace ``channel``'s current link now (the old one drains as in a rotation)."""

        def op(now: float) -> None:
            slot = self._slot_of(channel)
            if slot is not None:
                slot.force_rotation = True

        self._ops.append(op)
        self.wake()

    def close(self, timeout: float = 5.0) -> None:
        """
        Remove every channel (``on_closed(None)``) and stop the thread. Idempotent, from any
        thread (from the I/O thread itself it does not wait). Waits at most about ``timeout``
        seconds, then shuts the sockets down under the thread and waits at most
        ``min(timeout, 1)`` more seconds. ``timeout=0``: ask the thread to stop, wait for nothing.
        """
        with self._lock:
            self._closing = True
            thread = self._thread
        self._force_wake()
        if thread is None:
            self._release()
            return
        if thread is threading.current_thread() or timeout <= 0:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %.1f s; aborting its sockets", self._name, timeout)
            self._abort_all()
            thread.join(min(timeout, 1.0))

    def in_io_thread(self) -> bool:
        """Whether the calling thread is this I/O thread."""
        return threading.get_ident() == self._ident

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # The I/O thread

    def _run(self) -> None:
        self._ident = threading.get_ident()
        cause: Optional[BaseException] = None
        try:
            while not self._closing:
                self._turn()
        except BaseException as exc:  # a bug in the loop itself; still settle everything
            log.exception("%s crashed", self._name)
            cause = exc
        finally:
            self._shutdown(cause)

    def _turn(self) -> None:
        now = time.monotonic()
        busy = False  # something happened: serve the channels before waiting
        if self._ops:
            self._run_ops(now)
            busy = True
        if self._finished:
            self._collect(now)
            busy = True
        wake = self._wake_r
        readers: list[Any] = [wake]
        writers: list[Any] = []
        by_sock: dict[Any, tuple[_Slot, Link]] = {}
        ready_now: list[tuple[_Slot, Link]] = []
        until = math.inf
        for slot in self._slots:
            policy = slot.policy
            for link in slot.links():
                by_sock[link.sock] = (slot, link)
                readers.append(link.sock)
                if link.buffered:
                    writers.append(link.sock)
                    stall = link.stall_deadline(policy.write_stall)
                    if stall is not None:
                        until = min(until, stall)
                if link.tls_pending():
                    ready_now.append((slot, link))
                until = min(until, link.liveness.next_deadline())
            until = min(until, self._slot_deadline(slot))
        timeout: Optional[float] = None
        if busy or ready_now or self._ops or self._finished:
            timeout = 0.0
        elif until < math.inf:
            timeout = max(0.0, until - now + 0.0005)
        readable, _, _ = select.select(readers, writers, [], timeout)
        now = time.monotonic()
        if wake in readable:
            self._drain_wake()
        for sock in readable:
            entry = by_sock.get(sock)
            if entry is not None and entry not in ready_now:
                ready_now.append(entry)
        for slot, link in ready_now:
            if not slot.dead and link.failure is None:
                self._read(slot, link, now)
        for slot in list(self._slots):
            if not slot.dead:
                self._service(slot, now)

    def _slot_deadline(self, slot: _Slot) -> float:
        """The earliest time at which ``slot`` needs the loop, other than its links' liveness."""
        until = self._ask(slot, math.inf, slot.channel.next_deadline)
        if slot.current is None:
            if slot.handshake is None and slot.retry_at is not None:
                until = min(until, slot.retry_at)
        elif slot.handshake is None and not slot.draining:
            until = min(until, max(slot.current.opened_at + slot.policy.max_age, slot.rotate_after))
        for link in slot.draining:
            until = min(until, slot.drain_until.get(link.number, 0.0))
        return until

    def _read(self, slot: _Slot, link: Link, now: float) -> None:
        try:
            events = link.read(now)
        except LinkLost as lost:
            if lost.events:
                self._deliver(slot, link, lost.events, now)
            self._lose(slot, link, lost, now)
            return
        if events:
            self._deliver(slot, link, events, now)

    def _deliver(
        self, slot: _Slot, link: Link, events: list[tuple[int, bytes]], now: float
    ) -> None:
        channel = slot.channel
        for opcode, payload in events:
            if slot.dead:
                return
            if opcode == OP_TEXT:
                self._ask(slot, None, channel.on_text, link, payload, now)
            elif opcode == OP_PING:
                link.answer_ping(payload)
            elif opcode == OP_CLOSE:
                link.queue_close(1000)  # answer it; the link ends anyway
                with contextlib.suppress(LinkLost):
                    link.flush(now)
                self._lose(
                    slot, link, LinkLost(f"the server closed the link{_close_reason(payload)}"), now
                )
                return
            elif opcode == OP_BINARY:
                log.warning("%s: ignored a binary frame of %d bytes", channel.name, len(payload))
            # A pong only shows the link is alive: counted by Link.read.

    def _service(self, slot: _Slot, now: float) -> None:
        """Timers, liveness, rotation, retirement, reconnection and sending for one slot."""
        channel = slot.channel
        policy = slot.policy
        if self._ask(slot, math.inf, channel.next_deadline) <= now:
            self._ask(slot, None, channel.on_tick, now)
        for link in slot.links():
            if slot.dead:
                return
            if link.failure is not None:
                failure = link.failure
                lost = failure if isinstance(failure, LinkLost) else LinkLost(str(failure))
                self._lose(slot, link, lost, now)
                continue
            verdict = link.liveness.action(now)
            if verdict is Verdict.PING:
                link.ping()
            elif verdict is Verdict.DEAD:
                self._lose(
                    slot,
                    link,
                    LinkLost(f"no answer to a ping within {policy.pong_timeout:g} s"),
                    now,
                )
                continue
            if link.write_stalled(now, policy.write_stall):
                self._lose(
                    slot,
                    link,
                    LinkLost(f"the server took no data for {policy.write_stall:g} s"),
                    now,
                )
        if slot.dead:
            return
        for old in list(slot.draining):
            if self._ask(slot, True, channel.can_retire, old, now):
                self._retire(slot, old, None, now)
            elif now >= slot.drain_until.get(old.number, 0.0):
                self._retire(
                    slot,
                    old,
                    LinkLost(
                        f"the rotated connection owed replies after {policy.drain_timeout:g} s"
                    ),
                    now,
                )
        if slot.dead:
            return
        current = slot.current
        if current is None:
            if slot.handshake is None and slot.retry_at is not None and slot.retry_at <= now:
                slot.retry_at = None
                self._start_handshake(slot, False, now)
        elif (
            slot.handshake is None
            and not slot.draining
            and not current.retiring
            and (
                slot.force_rotation
                or (rotation_due(policy, current.opened_at, now) and now >= slot.rotate_after)
            )
        ):
            slot.force_rotation = False
            self._start_handshake(slot, True, now)
        for link in slot.links():
            if slot.dead:
                return
            if not link.retiring and link.buffered < self.high_water:
                texts: Outgoing = self._ask(slot, (), channel.outgoing, link, now)
                if texts:
                    link.queue_texts(texts)
            if link.buffered:
                try:
                    link.flush(now)
                except LinkLost as lost:
                    self._lose(slot, link, lost, now)

    def _start_handshake(self, slot: _Slot, rotation: bool, now: float) -> None:
        url = self._ask(slot, None, slot.channel.url)
        if url is None:
            return
        if rotation:
            assert slot.current is not None
            log.info(
                "%s: rotating link %d after %.0f s",
                slot.channel.name,
                slot.current.number,
                now - slot.current.opened_at,
            )
        else:
            log.debug("%s: connecting (attempt %d)", slot.channel.name, slot.attempts + 1)
        handshake = Handshake(url, slot.policy, self._handshake_done, rotation)
        slot.handshake = handshake
        self._helpers.add(handshake)
        handshake.start()

    def _handshake_done(self, handshake: Handshake) -> None:
        """On the helper thread: hand the result to the loop."""
        self._finished.append(handshake)
        self._force_wake()

    def _collect(self, now: float) -> None:
        # Helpers whose threads ended are forgotten; the others are joined on shutdown.
        self._helpers = {h for h in self._helpers if h.running}
        while self._finished:
            handshake = self._finished.popleft()
            slot = next((s for s in self._slots if s.handshake is handshake), None)
            link = handshake.link
            if slot is None or slot.dead:
                if link is not None:
                    link.abort()
                continue
            slot.handshake = None
            channel = slot.channel
            if link is not None:
                slot.attempts = 0
                took = now - handshake.started_at
                if slot.current is None:
                    slot.current = link
                    log.info(
                        "%s: link %d open (%s, handshake %.3f s)",
                        channel.name,
                        link.number,
                        "reconnected" if slot.opened else "first",
                        took,
                    )
                    slot.opened = True
                    self._ask(slot, None, channel.on_open, link, now, False)
                else:
                    old = slot.current
                    slot.draining.append(old)
                    slot.drain_until[old.number] = now + slot.policy.drain_timeout
                    slot.current = link
                    log.info(
                        "%s: link %d open (rotation of link %d, handshake %.3f s)",
                        channel.name,
                        link.number,
                        old.number,
                        took,
                    )
                    self._ask(slot, None, channel.on_open, link, now, True)
                continue
            error = handshake.error
            assert error is not None
            if not isinstance(error, LinkLost):
                log.error(
                    "%s: the handshake failed with an unexpected error",
                    channel.name,
                    exc_info=error,
                )
                self._finish(slot, error)
                continue
            if handshake.rotation and slot.current is not None:
                log.warning(
                    "%s: could not open a link to rotate to (%s); retrying later",
                    channel.name,
                    error,
                )
                slot.rotate_after = now + slot.policy.reconnect_delay
                self._ask(slot, None, channel.on_connect_failed, error, 0, now)
                continue
            slot.attempts += 1
            attempts = slot.attempts
            self._ask(slot, None, channel.on_connect_failed, error, attempts, now)
            if slot.dead:
                continue
            if not slot.opened and not slot.policy.retry_first:
                log.warning("%s: %s", channel.name, error)
                self._finish(slot, error)
            elif attempts >= slot.policy.max_reconnect_attempts:
                log.error(
                    "%s: giving up after %d reconnection attempts: %s",
                    channel.name,
                    attempts,
                    error,
                )
                self._finish(slot, error)
            else:
                delay = backoff(slot.policy, attempts)
                log.warning(
                    "%s: reconnection attempt %d failed (%s); next in %.2f s",
                    channel.name,
                    attempts,
                    error,
                    delay,
                )
                slot.retry_at = now + delay

    def _lose(self, slot: _Slot, link: Link, lost: LinkLost, now: float) -> None:
        """``link`` is gone: tell the channel; reconnect if it was the current link."""
        link.abort()
        channel = slot.channel
        if link is slot.current:
            slot.current = None
            log.warning("%s: link %d lost: %s", channel.name, link.number, _why(lost))
            self._ask(slot, None, channel.on_link_lost, link, lost, now)
            if slot.dead:
                return
            if slot.policy.max_reconnect_attempts == 0:
                self._finish(slot, lost)
            elif slot.handshake is None:
                slot.retry_at = now  # the first attempt at once
        elif link in slot.draining:
            slot.draining.remove(link)
            slot.drain_until.pop(link.number, None)
            log.warning("%s: draining link %d lost: %s", channel.name, link.number, _why(lost))
            self._ask(slot, None, channel.on_link_lost, link, lost, now)

    def _retire(self, slot: _Slot, old: Link, lost: Optional[LinkLost], now: float) -> None:
        """Close a draining link; ``lost``: it still owed something (tell the channel)."""
        slot.draining.remove(old)
        slot.drain_until.pop(old.number, None)
        old.queue_close(1000)
        with contextlib.suppress(LinkLost):
            old.flush(now)
        old.abort()
        log.debug("%s: link %d retired", slot.channel.name, old.number)
        if lost is not None:
            self._ask(slot, None, slot.channel.on_link_lost, old, lost, now)

    def _ask(self, slot: _Slot, default: T, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` into the channel; an exception is a bug: log it, fail the channel."""
        if slot.dead:
            return default
        try:
            return call(*args)
        except Exception as exc:
            log.exception("%s: a bug in the channel; it is closed", slot.channel.name)
            self._finish(slot, exc)
            return default

    def _finish(self, slot: _Slot, cause: Optional[BaseException]) -> None:
        """Stop serving ``slot``: drop its links and handshake, then ``on_closed(cause)``."""
        if slot.dead:
            return
        slot.dead = True
        with contextlib.suppress(ValueError):
            self._slots.remove(slot)
        now = time.monotonic()
        for link in slot.links():
            if cause is None:
                link.queue_close(1000)
                with contextlib.suppress(LinkLost):
                    link.flush(now)
            link.abort()
        slot.current = None
        slot.draining = []
        if slot.handshake is not None:
            slot.handshake.abort()
            slot.handshake = None
        try:
            slot.channel.on_closed(cause)
        except Exception:
            log.exception("%s: on_closed raised", slot.channel.name)

    def _slot_of(self, channel: Channel) -> Optional[_Slot]:
        return next((s for s in self._slots if s.channel is channel), None)

    def _add(self, channel: Channel, policy: LinkPolicy, now: float) -> None:
        if self._slot_of(channel) is None:
            self._slots.append(_Slot(channel, policy, now))

    def _remove(self, channel: Channel, cause: Optional[BaseException]) -> None:
        slot = self._slot_of(channel)
        if slot is not None:
            self._finish(slot, cause)

    def _run_ops(self, now: float) -> None:
        while self._ops:
            self._ops.popleft()(now)

    def _drain_wake(self) -> None:
        # One read: callers write a byte only when no wake-up is armed, so bytes are few.
        # Read first, disarm after: a caller that found the flag still armed in between has
        # queued its work before we look at the queues (after this), so nothing is missed;
        # disarming first would let that caller's byte be swallowed here and the next caller
        # (seeing the flag armed) sleep until a timeout.
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            self._wake_r.recv(4096)
        self._wake_armed = False

    def _force_wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _shutdown(self, cause: Optional[BaseException]) -> None:
        """Every path out of the thread: every channel gets ``on_closed``; sockets released."""
        with self._lock:
            self._closing = True
        self._run_ops_safely()
        for slot in list(self._slots):
            self._finish(slot, cause)
        for handshake in list(self._helpers):
            handshake.abort()
        deadline = time.monotonic() + 1.0
        for handshake in list(self._helpers):
            handshake.join(max(0.0, deadline - time.monotonic()))
        while self._finished:
            link = self._finished.popleft().link
            if link is not None:
                link.abort()
        self._release()

    def _run_ops_safely(self) -> None:
        """Ops queued at the end: adds become ``on_closed(None)``, removes still remove."""
        now = time.monotonic()
        while self._ops:
            try:
                self._ops.popleft()(now)
            except Exception:
                log.exception("%s: an operation failed while closing", self._name)

    def _release(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _abort_all(self) -> None:
        """From a caller thread when the loop does not stop: shut every socket down under it."""
        for slot in list(self._slots):
            for link in slot.links():
                link.abort()
            if slot.handshake is not None:
                slot.handshake.abort()
        for handshake in list(self._helpers):
            handshake.abort()


def _why(lost: BaseException) -> str:
    return str(lost) or type(lost).__name__


def _close_reason(data: bytes) -> str:
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f" (close code {code}{': ' + reason if reason else ''})"
    return ""
