"""
The user data stream's pure parts: no socket, thread or clock (``now`` is passed in).

- :func:`private_url`: the URL of a listenKey's private connection (query or path form,
  reference §7.3: the sources disagree, so both are kept, the query form by default).
- :func:`mask`: a listenKey as it may appear in logs, reprs and errors.
- :func:`key_refused`: whether a failed handshake means the server no longer knows the key.
- :class:`Overlap`: de-duplication while a connection is replaced (rotation): both links
  carry the same events for a moment; each message is delivered once.
- :class:`OrderHistory`: the recent ORDER_TRADE_UPDATE / ALGO_UPDATE events per client id,
  bounded, for ``wait_for_order`` (it sees events that came before the call).
- :func:`match`: what ``wait_for_order`` decides about one id's history.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Optional
from urllib.parse import quote

__all__ = [
    "ALGO_FINAL",
    "ALGO_STATUSES",
    "DEFAULT_EVENTS",
    "ORDER_FINAL",
    "ORDER_STATUSES",
    "OrderHistory",
    "Overlap",
    "check_events",
    "check_statuses",
    "key_refused",
    "mask",
    "match",
    "order_key",
    "private_url",
]

#: Every user-data event type of reference §7.1 (``listenKeyExpired`` included: a client must
#: learn that its key is gone, whatever the server does with an ``events=`` list).
DEFAULT_EVENTS = (
    "ORDER_TRADE_UPDATE",
    "TRADE_LITE",
    "ACCOUNT_UPDATE",
    "ALGO_UPDATE",
    "MARGIN_CALL",
    "ACCOUNT_CONFIG_UPDATE",
    "STRATEGY_UPDATE",
    "GRID_UPDATE",
    "listenKeyExpired",
)

#: ``X`` of an ORDER_TRADE_UPDATE; the final ones end a wait that cannot match any more.
ORDER_STATUSES = frozenset(
    {"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}
)
ORDER_FINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
#: ``X`` (algoStatus) of an ALGO_UPDATE.
ALGO_STATUSES = frozenset(
    {"NEW", "CANCELED", "TRIGGERING", "TRIGGERED", "FINISHED", "REJECTED", "EXPIRED"}
)
ALGO_FINAL = frozenset({"CANCELED", "FINISHED", "REJECTED", "EXPIRED"})

_EVENT_NAME = re.compile(r"^[A-Za-z_]{1,64}$")
_FORMS = ("query", "path")


def private_url(stream_url: str, listen_key: str, events: Sequence[str], form: str) -> str:
    """
    The private connection's URL for ``listen_key``.

    ``form="query"``: ``<stream_url>/private/ws?listenKey=K&events=E1/E2/...`` (Binance's
    change notice of 2026-03-06); ``form="path"``: ``<stream_url>/private/ws/K`` (older
    sources; no event list). ``stream_url`` has no trailing slash.
    """
    if form not in _FORMS:
        raise ValueError(f"form must be 'query' or 'path', got {form!r}")
    key = quote(listen_key, safe="")
    if form == "path":
        return f"{stream_url}/private/ws/{key}"
    return f"{stream_url}/private/ws?listenKey={key}&events={'/'.join(events)}"


def check_events(value: Any) -> tuple[str, ...]:
    """``value`` as the ``events`` config key holds it (a tuple of event type names)."""
    if isinstance(value, str):
        value = [v for v in value.split("/") if v]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(
            "config['events'] must be a non-empty list of event type names "
            f"(e.g. ['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE']), got {value!r}"
        )
    bad = [v for v in value if not isinstance(v, str) or not _EVENT_NAME.match(v)]
    if bad:
        raise ValueError(
            f"config['events']: {bad[0]!r} is not an event type name (letters and _ only)"
        )
    return tuple(dict.fromkeys(value))


def mask(listen_key: Optional[str]) -> str:
    """A listenKey as logs, reprs and errors show it: its first four characters only."""
    if not listen_key:
        return "None"
    return f"{listen_key[:4]}...({len(listen_key)} chars)"


def key_refused(cause: BaseException) -> bool:
    """
    Whether a failed handshake says the listenKey is unknown: an HTTP 400 answer, or one whose
    body carries code -1125 (``cause`` is the ``LinkLost``, its ``__cause__`` the
    websocket-client error with ``status_code`` and ``resp_body``).
    """
    seen: set[int] = set()
    error: Optional[BaseException] = cause
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        status = getattr(error, "status_code", None)
        body = getattr(error, "resp_body", None)
        if status == 400:
            return True
        if isinstance(body, (bytes, bytearray)) and b"-1125" in body:
            return True
        error = error.__cause__
    return False


def order_key(event: Any) -> Optional[tuple[str, str]]:
    """``(client id, status)`` of an ORDER_TRADE_UPDATE (``o.c``) or ALGO_UPDATE (``o.caid``)."""
    if not isinstance(event, dict):
        return None
    kind = event.get("e")
    body = event.get("o")
    if not isinstance(body, dict):
        return None
    if kind == "ORDER_TRADE_UPDATE":
        ident = body.get("c")
    elif kind == "ALGO_UPDATE":
        ident = body.get("caid")
    else:
        return None
    status = body.get("X")
    if not isinstance(ident, str) or not ident or not isinstance(status, str):
        return None
    return ident, status


def check_statuses(statuses: Any) -> frozenset[str]:
    """
    ``wait_for_order``'s ``statuses`` as a set; a single string counts as one status.

    Raises:
        ValueError: empty, or a status that neither orders nor algo orders have.
    """
    if isinstance(statuses, str):
        statuses = (statuses,)
    try:
        wanted = frozenset(statuses)
    except TypeError:
        raise ValueError(f"statuses must be a sequence of status names, got {statuses!r}") from None
    known = ORDER_STATUSES | ALGO_STATUSES
    unknown = sorted(str(s) for s in wanted if s not in known)
    if not wanted or unknown:
        raise ValueError(
            f"statuses must name order statuses ({', '.join(sorted(ORDER_STATUSES))}) or algo "
            f"statuses ({', '.join(sorted(ALGO_STATUSES))}); got {statuses!r}"
        )
    return wanted


class OrderHistory:
    """
    The last events of the last ``max_ids`` client ids (``max_events`` each), oldest id
    forgotten first. ``record`` is O(1).
    """

    def __init__(self, max_ids: int = 1000, max_events: int = 32) -> None:
        self.max_ids = max_ids
        self.max_events = max_events
        self._by_id: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def record(self, event: Any) -> Optional[str]:
        """Keep ``event`` if it is an order or algo update; returns its client id."""
        key = order_key(event)
        if key is None:
            return None
        ident = key[0]
        events = self._by_id.get(ident)
        if events is None:
            events = self._by_id[ident] = []
            if len(self._by_id) > self.max_ids:
                self._by_id.popitem(last=False)
        else:
            self._by_id.move_to_end(ident)
        events.append(event)
        if len(events) > self.max_events:
            del events[0]
        return ident

    def events(self, client_id: str) -> list[dict[str, Any]]:
        """The kept events of ``client_id``, oldest first (a copy)."""
        return list(self._by_id.get(client_id, ()))

    def __len__(self) -> int:
        return len(self._by_id)


def match(
    events: Iterable[dict[str, Any]], wanted: frozenset[str]
) -> tuple[Optional[dict[str, Any]], Optional[dict[str, Any]]]:
    """
    ``(hit, ended)`` for one id's events, oldest first: ``hit`` is the first event whose
    status is wanted; else ``ended`` is the first event with a final status that is not
    wanted (an ORDER_TRADE_UPDATE final for orders, an ALGO_UPDATE final for algo orders):
    after it nothing wanted can come. Both ``None``: keep waiting.
    """
    ended: Optional[dict[str, Any]] = None
    for event in events:
        key = order_key(event)
        if key is None:
            continue
        status = key[1]
        if status in wanted:
            return event, None
        final = ORDER_FINAL if event.get("e") == "ORDER_TRADE_UPDATE" else ALGO_FINAL
        if ended is None and status in final:
            ended = event
    return None, ended


class Overlap:
    """
    De-duplication while a rotation's two links both carry the stream.

    The server sends each event on every connection bound to the key, and binds the new one
    during its handshake, before the client sees it open. So: ``arm()`` when the rotation's
    handshake starts (from then on every message delivered is remembered, by its exact bytes);
    ``start(until)`` when the new link is open (from then on, and until ``until``, a message
    already delivered from either link is dropped). Outside an overlap every message passes
    and nothing is remembered.
    """

    __slots__ = ("_seen", "armed", "until")

    def __init__(self) -> None:
        self.until = 0.0
        self.armed = False
        self._seen: set[bytes] = set()

    def arm(self) -> None:
        """A rotation's handshake starts: remember what is delivered from now on."""
        self.armed = True
        self._seen = set()

    def start(self, until: float) -> None:
        """The new link is open: drop repeats until ``until``."""
        if not self.armed:
            self._seen = set()
        self.armed = False
        self.until = until

    @property
    def active(self) -> bool:
        return self.until > 0.0

    def admit(self, data: bytes, now: float) -> bool:
        """Whether ``data`` is new (deliver it)."""
        if self.armed:
            self._seen.add(data)
            return True
        if not self.until:
            return True
        if now >= self.until:
            self.stop()
            return True
        if data in self._seen:
            return False
        self._seen.add(data)
        return True

    def stop(self) -> None:
        self.until = 0.0
        self.armed = False
        self._seen = set()
