"""
The market-stream session, pure: what one connection has subscribed, what it owes, when it may
speak, and which events to deliver. No socket, thread or clock (``now`` is passed in), so
every rule is tested by plain calls; ``bfsync.market`` runs it on the I/O thread.

- :class:`Pacer`: a token bucket that keeps control messages under Binance's 10 a second
  per connection (over it, the server closes the connection; repeatedly, it bans the IP).
- :class:`Control`: one SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY /
  GET_PROPERTY on its way, with the callers waiting for its ack.
- :class:`Shard`: one connection's bookkeeping: the streams it serves (``active``), those
  being subscribed, the queue of controls (coalesced and paced), the controls in flight by
  id and the link they went out on, the resubscription after a (re)connection.
- :func:`plan` spreads streams over shards: per route, at most ``MAX_STREAMS`` each.
- :class:`Handover`: de-duplication while a connection is replaced by a new one (rotation):
  the old link stays authoritative for a stream until the new one has caught up with it,
  so nothing is delivered twice and nothing is skipped, and order is kept.
- :class:`Silence`: per-stream silence, for ``stale_after``.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from typing import Any, Callable, Optional

__all__ = [
    "MAX_PARAMS",
    "MAX_STREAMS",
    "Control",
    "Handover",
    "Pacer",
    "Shard",
    "Silence",
    "event_key",
    "plan",
    "reply_error",
]

MAX_STREAMS = 1024  # per connection (Binance, since 2025-07-02)
MAX_PARAMS = 200  # streams in one SUBSCRIBE (bfsync's choice; Binance does not document one)
PACE_RATE = 4.0  # control messages a second, sustained
PACE_BURST = 4.0  # at most 4 + 4 = 8 messages in any one second: under 10 with room for pongs


class Pacer:
    """
    A token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    In any window of one second at most ``burst + rate`` messages pass.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, now: float, rate: float = PACE_RATE, burst: float = PACE_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def ready_at(self, now: float) -> float:
        """When the next token is there (``now`` if it is)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return now
        return now + (1.0 - self.tokens) / self.rate


_ids = itertools.count(1)


class Control:
    """
    One control message and whoever waits for its ack.

    ``waiters`` are callables: ``waiter(reply, error)``, called once with the ack frame (and
    ``None``) or with ``None`` and an exception (``kind`` and ``message`` below; the I/O layer
    maps them to bfsync exceptions). Internal controls (the resubscription) have none.
    """

    __slots__ = ("deadline", "id", "link", "method", "params", "waiters")

    def __init__(
        self,
        method: str,
        params: list[Any],
        deadline: float,
        waiters: Optional[list[Callable[[Any, Any], None]]] = None,
    ) -> None:
        self.method = method
        self.params = params
        self.deadline = deadline
        self.waiters = waiters if waiters is not None else []
        self.id = 0
        self.link = 0  # the link number it was sent on

    def frame(self) -> dict[str, Any]:
        if self.method == "LIST_SUBSCRIPTIONS":
            return {"method": self.method, "id": self.id}
        return {"method": self.method, "params": self.params, "id": self.id}

    def settle(self, reply: Any, error: Any) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter(reply, error)


def reply_error(reply: dict[str, Any]) -> Optional[tuple[Any, str]]:
    """``(code, msg)`` when a control reply is an error, else ``None``."""
    error = reply.get("error")
    if isinstance(error, dict):
        return error.get("code"), str(error.get("msg", ""))
    if "code" in reply and "result" not in reply:
        return reply.get("code"), str(reply.get("msg", ""))
    return None


class Shard:
    """
    One market connection's bookkeeping (one route, up to ``MAX_STREAMS`` streams).

    The I/O layer calls ``opened`` when a link opens, ``take(now, link)`` for the frames to
    send, ``acked(reply, now)`` for a control reply, ``lost(link)`` when a link is gone and
    ``expire(now)`` on each tick. Errors go to the waiters as ``("timeout" | "lost" |
    "error" | "closed", message, code)`` tuples.
    """

    def __init__(self, route: str, number: int, now: float, request_timeout: float) -> None:
        self.route = route
        self.number = number
        self.request_timeout = request_timeout
        self.active: set[str] = set()  # acked (or resubscribed): resubscribed after a reconnect
        self.subscribing: set[str] = set()  # a SUBSCRIBE for them is queued or in flight
        self.queue: deque[Control] = deque()
        self.pending: dict[int, Control] = {}
        self.pacer = Pacer(now)
        self.link = 0  # the current link's number; 0 while there is none
        self.resubscribing: set[int] = set()  # ids of resubscription controls in flight
        self.combined_property: Optional[bool] = None  # what the caller set, replayed

    # Capacity

    @property
    def load(self) -> int:
        """Streams held or being subscribed: what counts against ``MAX_STREAMS``."""
        return len(self.active | self.subscribing)

    def serves(self, stream: str) -> bool:
        """Whether events of ``stream`` are wanted from this shard."""
        return stream in self.active or stream in self.subscribing

    # Caller side

    def submit(self, control: Control) -> None:
        """Queue a control; SUBSCRIBEs mark their streams as being subscribed."""
        if control.method == "SUBSCRIBE":
            self.subscribing.update(control.params)
        self.queue.append(control)

    # I/O side

    def opened(self, link: int, now: float) -> None:
        """A new current link: resubscribe ``active`` first (paced like any control)."""
        self.link = link
        replay: list[Control] = []
        if self.combined_property is not None:
            replay.append(
                Control(
                    "SET_PROPERTY",
                    ["combined", self.combined_property],
                    now + self.request_timeout,
                )
            )
        streams = sorted(self.active)
        replay.extend(
            Control("SUBSCRIBE", streams[start : start + MAX_PARAMS], now + self.request_timeout)
            for start in range(0, len(streams), MAX_PARAMS)
        )
        for control in reversed(replay):
            self.queue.appendleft(control)

    def take(self, now: float) -> list[Control]:
        """
        The controls to send now on the current link, paced; each gets its id and is in
        flight from here. Adjacent queued SUBSCRIBEs (or UNSUBSCRIBEs) go as one message (at
        most ``MAX_PARAMS`` streams), so a burst of calls costs few messages.
        """
        out: list[Control] = []
        queue = self.queue
        while queue and self.link and self.pacer.take(now):
            control = queue.popleft()
            if control.method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                while (
                    queue
                    and queue[0].method == control.method
                    and len(control.params) + len(queue[0].params) <= MAX_PARAMS
                ):
                    other = queue.popleft()
                    control.params = control.params + [
                        p for p in other.params if p not in control.params
                    ]
                    control.waiters.extend(other.waiters)
                    control.deadline = min(control.deadline, other.deadline)
            control.id = next(_ids)
            control.link = self.link
            if not control.waiters and control.method == "SUBSCRIBE":
                self.resubscribing.add(control.id)
            self.pending[control.id] = control
            out.append(control)
        return out

    def next_deadline(self, now: float) -> float:
        """When ``take`` or ``expire`` has something to do."""
        deadline = math.inf
        if self.queue:
            deadline = min(deadline, self.queue[0].deadline)
            if self.link:
                deadline = min(deadline, self.pacer.ready_at(now))
        if self.pending:
            deadline = min(deadline, min(c.deadline for c in self.pending.values()))
        return deadline

    def acked(self, reply: dict[str, Any]) -> bool:
        """
        Settle the control ``reply`` answers (False: an id that is not ours, e.g. late).

        A successful SUBSCRIBE makes its streams active; a failed one forgets them (events of
        a stream nobody holds are not delivered). UNSUBSCRIBE removes them either way.
        """
        control_id = reply.get("id")
        control = self.pending.pop(control_id, None) if type(control_id) is int else None
        if control is None:
            return False
        self.resubscribing.discard(control.id)
        failure = reply_error(reply)
        if control.method == "SUBSCRIBE":
            self.subscribing.difference_update(control.params)
            if failure is None:
                self.active.update(control.params)
        elif control.method == "UNSUBSCRIBE" and failure is None:
            self.active.difference_update(control.params)
        elif (
            control.method == "SET_PROPERTY"
            and failure is None
            and control.params
            and control.params[0] == "combined"
        ):
            self.combined_property = bool(control.params[1])
        if failure is None:
            control.settle(reply, None)
        else:
            code, msg = failure
            control.settle(reply, ("error", f"{control.method}: {msg}", code))
        return True

    def lost(self, link: int) -> None:
        """``link`` is gone: what was in flight on it fails; queued controls wait."""
        if link == self.link:
            self.link = 0
        for control_id, control in list(self.pending.items()):
            if control.link == link:
                self._fail_pending(
                    control_id, "lost", f"{control.method}: the connection was lost before the ack"
                )
        # The resubscription of a lost link is rebuilt by the next ``opened``.
        for control in [c for c in self.queue if not c.waiters and c.method == "SUBSCRIBE"]:
            self.queue.remove(control)

    def expire(self, now: float) -> None:
        """Fail controls (queued or in flight) whose deadline passed."""
        for control_id, control in list(self.pending.items()):
            if control.deadline <= now:
                self._fail_pending(
                    control_id,
                    "timeout",
                    f"{control.method}: no ack within {self.request_timeout} s",
                )
        while self.queue and self.queue[0].deadline <= now:
            control = self.queue.popleft()
            self._forget(control)
            control.settle(
                None,
                (
                    "timeout",
                    f"{control.method}: not sent within {self.request_timeout} s (no connection)",
                    None,
                ),
            )

    def owes(self, link: int) -> bool:
        """Whether controls sent on ``link`` still wait for their ack."""
        return any(c.link == link for c in self.pending.values())

    def resubscribed(self) -> bool:
        """Whether the replay of the current link has been acked (or there was none)."""
        return not self.resubscribing and not any(
            not c.waiters and c.method == "SUBSCRIBE" for c in self.queue
        )

    def close(self, why: str) -> None:
        """Fail every control (queued or in flight) with ``("closed", why)``."""
        controls = list(self.pending.values()) + list(self.queue)
        self.pending.clear()
        self.queue.clear()
        self.resubscribing.clear()
        self.subscribing.clear()
        for control in controls:
            control.settle(None, ("closed", f"{control.method}: {why}", None))

    def _fail_pending(self, control_id: int, kind: str, text: str) -> None:
        """Drop the in-flight control ``control_id`` and settle it with the failure ``kind``."""
        control = self.pending.pop(control_id)
        self.resubscribing.discard(control_id)
        self._forget(control)
        control.settle(None, (kind, text, None))

    def _forget(self, control: Control) -> None:
        if control.method == "SUBSCRIBE" and control.waiters:
            self.subscribing.difference_update(control.params)
            # An internal resubscription that failed: keep the streams active, the next link
            # resubscribes them.


def plan(
    shards: Iterable[Shard], route_of: Callable[[str], str], streams: Iterable[str]
) -> tuple[dict[int, list[str]], dict[str, int]]:
    """
    Where to subscribe ``streams``: ``({shard number: new streams}, {route: shards to add})``.

    Streams already held (or being subscribed) are left out. Each route fills its shards in
    order up to ``MAX_STREAMS``; streams that fit nowhere go to new shards, numbered after
    the existing ones (the caller creates them in that order, one route after the other).
    """
    shards = list(shards)
    held = set()
    load: dict[int, int] = {}
    for shard in shards:
        held |= shard.active | shard.subscribing
        load[shard.number] = shard.load
    out: dict[int, list[str]] = {}
    new: dict[str, list[list[str]]] = {}
    for stream in streams:
        if stream in held:
            continue
        held.add(stream)
        where = route_of(stream)
        for shard in shards:
            if shard.route == where and load[shard.number] < MAX_STREAMS:
                load[shard.number] += 1
                out.setdefault(shard.number, []).append(stream)
                break
        else:
            groups = new.setdefault(where, [])
            if not groups or len(groups[-1]) >= MAX_STREAMS:
                groups.append([])
            groups[-1].append(stream)
    number = max((s.number for s in shards), default=0)
    counts: dict[str, int] = {}
    for where, groups in new.items():
        counts[where] = len(groups)
        for group in groups:
            number += 1
            out[number] = group
    return out, counts


def event_key(payload: Any) -> Optional[tuple[Any, int]]:
    """
    ``(sub-key, order key)`` of an event, for de-duplication: ``u`` for bookTicker and depth,
    ``a`` for aggTrade, ``E`` otherwise; the sub-key is the symbol (``s``) with the event
    type, since ids count per symbol (``!bookTicker`` mixes symbols). ``None``: no key.
    """
    if isinstance(payload, list):
        first = payload[0] if payload and isinstance(payload[0], dict) else None
        if first is None:
            return None
        key = first.get("E")
        return (("arr", first.get("e")), key) if type(key) is int else None
    if not isinstance(payload, dict):
        return None
    kind = payload.get("e")
    sub = (payload.get("s"), kind)
    if kind in ("bookTicker", "depthUpdate") or (kind is None and "u" in payload):
        key = payload.get("u")
    elif kind == "aggTrade":
        key = payload.get("a")
    else:
        key = payload.get("E")
    return (sub, key) if type(key) is int else None


class Handover:
    """
    De-duplication across a connection's links, kept in order (see the module docstring).

    ``admit(stream, payload, from_old)`` says whether to deliver an event now; events of the
    new link that arrive before it has caught up with the old one are held and come back
    from ``admit`` (as the list to deliver, in order) once it has, or from ``finish()`` when
    the old link is gone. Outside a rotation every event is delivered (only the last key of
    each (stream, sub-key) is recorded, for the next rotation).
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, Any], int] = {}
        self.rotating = False
        self.held: dict[tuple[str, Any], list[tuple[int, str, Any]]] = {}
        self.switched: set[tuple[str, Any]] = set()
        self.seen_old: set[tuple[str, Any]] = set()
        self.duplicates = 0

    def start(self) -> None:
        """A rotation begins: the old link is authoritative until the new one catches up."""
        self.finish()
        self.rotating = True

    def caught_up(self) -> bool:
        """Whether every stream the old link delivered during the rotation has switched."""
        return not self.held and self.seen_old <= self.switched

    def admit(self, stream: str, payload: Any, from_old: bool) -> list[tuple[str, Any]]:
        """The events to deliver now, in order (``[]``: hold or drop this one)."""
        found = event_key(payload)
        if found is None:
            if self.rotating and from_old:
                self.duplicates += 1
                return []  # keyless: the new link's copy is the one delivered
            return [(stream, payload)]
        sub, key = found
        ident = (stream, sub)
        last = self.last.get(ident)
        if not self.rotating:
            # One link: everything it sends is delivered (two events may share an ``E``).
            if last is None or key > last:
                self.last[ident] = key
            return [(stream, payload)]
        if from_old:
            if ident in self.switched or (last is not None and key <= last):
                self.duplicates += 1
                return []
            self.seen_old.add(ident)
            self.last[ident] = key
            out = [(stream, payload)]
            held = self.held.get(ident)
            if held and key >= held[0][0]:
                out.extend(self._release(ident))
            return out
        # From the new link.
        if ident in self.switched:
            if last is not None and key <= last:
                self.duplicates += 1
                return []
            self.last[ident] = key
            return [(stream, payload)]
        if last is not None and key <= last:
            self.duplicates += 1  # the new link already overlaps what was delivered
            self.switched.add(ident)
            return []
        if last is None and ident not in self.seen_old:
            self.switched.add(ident)  # the old link never delivered it: nothing to join
            self.last[ident] = key
            return [(stream, payload)]
        self.held.setdefault(ident, []).append((key, stream, payload))
        return []

    def _release(self, ident: tuple[str, Any]) -> list[tuple[str, Any]]:
        self.switched.add(ident)
        out = []
        last = self.last.get(ident)
        for key, stream, payload in self.held.pop(ident, []):
            if last is not None and key <= last:
                self.duplicates += 1
                continue
            last = key
            out.append((stream, payload))
        if last is not None:
            self.last[ident] = last
        return out

    def finish(self) -> list[tuple[str, Any]]:
        """The rotation is over (the old link is gone): release what was held, in order."""
        out: list[tuple[str, Any]] = []
        for ident in list(self.held):
            out.extend(self._release(ident))
        self.rotating = False
        self.switched.clear()
        self.seen_old.clear()
        return out

    def forget(self, stream: str) -> None:
        """``stream`` was unsubscribed: a later subscription starts afresh."""
        for ident in [i for i in self.last if i[0] == stream]:
            del self.last[ident]


class Silence:
    """
    Per-stream silence: a stream subscribed (or heard) at ``t`` and silent since is stale at
    ``t + stale_after``. ``check(now)`` returns the stale set when it changed, else ``None``.
    """

    def __init__(self, stale_after: Optional[float]) -> None:
        self.stale_after = stale_after
        self.heard: dict[str, float] = {}
        self.stale: frozenset[str] = frozenset()

    def watch(self, stream: str, now: float) -> None:
        self.heard.setdefault(stream, now)

    def unwatch(self, stream: str) -> None:
        self.heard.pop(stream, None)

    def hear(self, stream: str, now: float) -> bool:
        """``stream`` delivered at ``now``; True when it was stale (call ``check`` now)."""
        if stream in self.heard:
            self.heard[stream] = now
            return stream in self.stale
        return False

    def reset(self, now: float) -> None:
        """After a reconnection: every stream gets a fresh ``stale_after``."""
        for stream in self.heard:
            self.heard[stream] = now

    def next_deadline(self) -> float:
        """When a stream not yet stale becomes stale (``math.inf``: never)."""
        if self.stale_after is None:
            return math.inf
        fresh = [t for s, t in self.heard.items() if s not in self.stale]
        return min(fresh) + self.stale_after if fresh else math.inf

    def check(self, now: float) -> Optional[frozenset[str]]:
        if self.stale_after is None:
            return None
        limit = now - self.stale_after
        stale = frozenset(s for s, t in self.heard.items() if t <= limit)
        if stale == self.stale:
            return None
        self.stale = stale
        return stale
