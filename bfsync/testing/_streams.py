"""
Binance market-stream protocol, server side, for the fake: pure (no sockets, threads, clock).

- ``parse_path(path)``: which route and mode a connection URL asks for (``/public/ws/a/b``,
  ``/market/stream?streams=a/b``, ``/private/ws?listenKey=K&events=E1/E2``, legacy ``/ws``).
- ``stream_route(name)``: the route a stream name belongs to (``"public"`` / ``"market"``), or
  ``None`` for a name Binance does not serve.
- ``StreamSession``: one connection's subscriptions, ``combined`` property and message-rate
  window; ``handle(text, now)`` answers a control frame (SUBSCRIBE, UNSUBSCRIBE,
  LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY) exactly as reference §7.2 lists, errors
  included.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "CONTROL_METHODS",
    "MAX_STREAMS",
    "MESSAGE_LIMIT",
    "ROUTES",
    "StreamPath",
    "StreamSession",
    "canonical",
    "deliverable",
    "parse_path",
    "stream_route",
]

ROUTES = ("public", "market", "private")
LEGACY = "legacy"  # the retired un-routed /ws and /stream paths: public data only
MAX_STREAMS = 1024  # streams per connection (reference §7.2)
MESSAGE_LIMIT = 10  # incoming messages per second per connection; over it: disconnect
CONTROL_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_ID = 2**64 - 1

_SYM = r"[a-z0-9][a-z0-9_]*"
_INTERVAL = r"(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
_CONTRACT = r"(perpetual|current_quarter|next_quarter)"
_PUBLIC = (
    rf"{_SYM}@bookTicker",
    r"!bookTicker",
    rf"{_SYM}@depth(5|10|20)?(@(100|250|500)ms)?",
    rf"{_SYM}@rpiDepth@500ms",
)
_MARKET = (
    rf"{_SYM}@aggTrade",
    rf"{_SYM}@trade",  # undocumented on futures; its route is unconfirmed (§7.3)
    rf"{_SYM}@markPrice(@1s)?",
    r"!markPrice@arr(@1s)?",
    rf"{_SYM}@kline_{_INTERVAL}",
    rf"{_SYM}_{_CONTRACT}@continuousKline_{_INTERVAL}",
    rf"{_SYM}@miniTicker",
    r"!miniTicker@arr",
    rf"{_SYM}@ticker",
    r"!ticker@arr",
    rf"{_SYM}@forceOrder",
    r"!forceOrder@arr",
    rf"{_SYM}@compositeIndex",
    r"!contractInfo",
    r"!assetIndex@arr",
    rf"{_SYM}@assetIndex",
    r"tradingSession",
)
_PUBLIC_RE = re.compile("|".join(f"(?:{p})" for p in _PUBLIC))
_MARKET_RE = re.compile("|".join(f"(?:{p})" for p in _MARKET))


def canonical(name: str) -> str:
    """A stream name as the fake keys it: the symbol part (before the first ``@``) lowercased."""
    if name.startswith("!") or name == "tradingSession":
        return name
    at = name.find("@")
    if at < 0:
        return name.lower()
    return name[:at].lower() + name[at:]


def stream_route(name: str) -> Optional[str]:
    """``"public"`` or ``"market"`` for a stream Binance serves (canonical name); else None."""
    if _PUBLIC_RE.fullmatch(name):
        return "public"
    if _MARKET_RE.fullmatch(name):
        return "market"
    return None


def deliverable(connection_route: str, name: str) -> bool:
    """Whether a connection on ``connection_route`` gets data of stream ``name``."""
    route = stream_route(name)
    if route is None:
        return False
    if connection_route == LEGACY:
        return route == "public"
    return route == connection_route


@dataclass
class StreamPath:
    """What a stream connection's URL asks for."""

    route: str  # public, market, private or legacy
    combined: bool  # /stream: events wrapped as {"stream", "data"}
    streams: list[str]  # from the path (raw mode) or ?streams= (combined mode)
    listen_keys: list[tuple[str, Optional[str]]]  # private: (listenKey, "E1/E2" or None)
    path_key: bool = False  # private: the key came in the path form /private/ws/<key>


def parse_path(path: str) -> Optional[StreamPath]:
    """
    The stream route of a request path, or None when it is not a stream path (the fake then
    serves ws-fapi on it). Stream paths: ``/<route>/ws[/<s1>/<s2>...]`` and
    ``/<route>/stream?streams=<s1>/<s2>`` for the routes ``public``, ``market``, ``private``,
    and the legacy ``/ws...`` and ``/stream...``.
    """
    parts = urlsplit(path)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments:
        return None
    route = LEGACY
    if segments[0] in ROUTES:
        route = segments.pop(0)
    if not segments or segments[0] not in ("ws", "stream"):
        return None
    mode = segments.pop(0)
    query = parse_qsl(parts.query, keep_blank_values=True)
    streams: list[str] = []
    listen_keys: list[tuple[str, Optional[str]]] = []
    path_key = False
    if mode == "ws":
        names = [s for segment in segments for s in segment.split("/") if s]
        if route == "private":
            listen_keys.extend((name, None) for name in names)
            path_key = bool(names)
        else:
            streams.extend(names)
    for key, value in query:
        if key == "streams":
            streams.extend(s for s in value.split("/") if s)
        elif key == "listenKey" and route == "private":
            listen_keys.append((value, None))
        elif key == "events" and route == "private" and listen_keys:
            listen_keys[-1] = (listen_keys[-1][0], value)
    if route == "private" and streams:
        # /private/stream?streams=<key>: the SDK's form, a subscription by listenKey.
        listen_keys.extend((name.split("@", 1)[0], _events_of(name)) for name in streams)
        streams = []
    return StreamPath(
        route, mode == "stream", [canonical(s) for s in streams], listen_keys, path_key
    )


def _events_of(name: str) -> Optional[str]:
    return name.split("@", 1)[1] if "@" in name else None


def _error(code: int, msg: str, request_id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


@dataclass
class StreamSession:
    """
    One stream connection's protocol state: subscriptions in the order made, ``combined``,
    and the times of the messages received in the last second.

    ``check_private(name)`` (set by the owner on the private route) validates a listenKey
    subscription; it returns an error reply body ``(code, msg)`` or None.
    """

    route: str
    combined: bool = False
    subscriptions: dict[str, None] = field(default_factory=dict)
    received: deque[float] = field(default_factory=deque)
    max_streams: int = MAX_STREAMS
    check_private: Optional[Callable[[str], Optional[tuple[int, str]]]] = None
    subscribe_requests: int = 0  # SUBSCRIBE frames answered (refused ones too)

    def over_rate(self, now: float, limit: int) -> bool:
        """Record one incoming message at ``now`` (seconds); True when over ``limit`` per s."""
        received = self.received
        received.append(now)
        while received and received[0] <= now - 1.0:
            received.popleft()
        return len(received) > limit

    def handle(self, text: Any) -> tuple[dict[str, Any], list[str], list[str]]:
        """
        Answer one control frame: ``(reply, added, removed)``; ``added`` / ``removed`` are the
        canonical stream names whose subscription changed. Never raises for bad input.
        """
        if not isinstance(text, str):
            return _error(3, "Invalid JSON: binary frames are not supported", None), [], []
        try:
            frame = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"Invalid JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
            return _error(3, msg, None), [], []
        if not isinstance(frame, dict):
            where = f"at line 1 column {len(text)}"
            msg = f"Invalid request: invalid type: expected struct Request {where}"
            return _error(2, msg, None), [], []
        request_id: Any = frame.get("id")
        if "method" not in frame:
            msg = f"Invalid request: missing field `method` at line 1 column {len(text)}"
            return _error(2, msg, request_id if _valid_id(request_id) else None), [], []
        if not _valid_id(request_id):
            return (
                _error(2, "Invalid request: request ID must be an unsigned integer", None),
                [],
                [],
            )
        method = frame.get("method")
        if method not in CONTROL_METHODS:
            expected = ", ".join(f"`{m}`" for m in CONTROL_METHODS)
            msg = f"Invalid request: unknown variant `{method}`, expected one of {expected}"
            return _error(2, msg, request_id), [], []
        params = frame.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error(2, "Invalid request: params must be an array", request_id), [], []
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                return _error(2, "Invalid request: too many parameters", request_id), [], []
            return {"result": list(self.subscriptions), "id": request_id}, [], []
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(method, params, request_id), [], []
        return self._subscribe(method == "SUBSCRIBE", params, request_id)

    def _property(self, method: str, params: list[Any], request_id: Any) -> dict[str, Any]:
        wanted = 2 if method == "SET_PROPERTY" else 1
        if len(params) > wanted:
            return _error(2, "Invalid request: too many parameters", request_id)
        if not params or not isinstance(params[0], str):
            return _error(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            return _error(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            return {"result": self.combined, "id": request_id}
        if len(params) < 2 or not isinstance(params[1], bool):
            return _error(1, "Invalid value type: expected Boolean", request_id)
        self.combined = params[1]
        return {"result": None, "id": request_id}

    def _subscribe(
        self, subscribe: bool, params: list[Any], request_id: Any
    ) -> tuple[dict[str, Any], list[str], list[str]]:
        if subscribe:
            self.subscribe_requests += 1
        names: list[str] = []
        for item in params:
            if not isinstance(item, str) or not item:
                msg = "Invalid request: stream names must be non-empty strings"
                return _error(2, msg, request_id), [], []
            if self.route == "private":
                if subscribe and self.check_private is not None:
                    refused = self.check_private(item)
                    if refused is not None:
                        return _error(refused[0], refused[1], request_id), [], []
                names.append(item)
                continue
            name = canonical(item)
            if subscribe and stream_route(name) is None:
                # Binance's answer to an unknown stream name is unconfirmed: refuse it.
                return (
                    _error(2, f"Invalid request: invalid stream name `{item}`", request_id),
                    [],
                    [],
                )
            names.append(name)
        if not subscribe:
            removed = [n for n in dict.fromkeys(names) if n in self.subscriptions]
            for name in removed:
                del self.subscriptions[name]
            return {"result": None, "id": request_id}, [], removed
        added = [n for n in dict.fromkeys(names) if n not in self.subscriptions]
        if len(self.subscriptions) + len(added) > self.max_streams:
            msg = f"Invalid request: too many streams (at most {self.max_streams} per connection)"
            return _error(2, msg, request_id), [], []
        for name in added:
            self.subscriptions[name] = None
        return {"result": None, "id": request_id}, added, []
