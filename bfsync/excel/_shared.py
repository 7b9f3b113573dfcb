"""
The process's shared services, one per name, and the options of the cell functions.

Theory of operation
-------------------
Every piece of state lives in one ``_Registry`` object, kept in this module's globals and
found again when the module is executed a second time (``importlib.reload`` runs a module's
code in its existing namespace), so a reload of ``bfsync.excel`` or of the user's module
keeps the services, their connections and the cache. A new process (xlwings' "Restart UDF
Server") starts from nothing.

``service(name)`` returns the entry's service at once when it is usable (connected or logged
in). Otherwise it takes the entry's lock, so that of 16 threads asking at once one connects
and the others wait for it (at most ``connection_timeout``), and then:

- a service that is *reconnecting* is left to its own I/O thread for ``reconnect_interval``
  seconds (calls meanwhile fail at once with "reconnecting", so no cell waits for
  ``request_timeout``); after that, it is closed and connected anew;
- a service that *failed* (its I/O thread gave up) or was closed is connected again;
- after a failed connection attempt the next one waits ``reconnect_interval`` seconds: in
  between, callers get a ``ConnectionError`` at once that carries the last error and when
  the next attempt may be made, without touching the network (a recalculation storm during
  an outage costs one attempt per interval, not one per cell).

Keys are read when a service is made: the ones given to ``configure`` or else the
environment (``BINANCE_API_KEY``, ``BINANCE_PRIVATE_KEY``). Shared services always validate
orders (``enable_validation=True``). All of them are closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Optional

from ..config import TESTNET_REST_URL, TESTNET_WS_URL
from ..exceptions import AuthenticationError, BinanceWebSocketError, ConnectionError
from ..service import WebSocketService
from ..transport import State
from ._cache import TtlCache

__all__ = [
    "API_KEY_ENV",
    "PRIVATE_KEY_ENV",
    "close",
    "configure",
    "get_options",
    "registry",
    "service",
    "set_options",
    "status",
]

log = logging.getLogger("bfsync.excel")

API_KEY_ENV = "BINANCE_API_KEY"
PRIVATE_KEY_ENV = "BINANCE_PRIVATE_KEY"

#: Shorter than the library's 30 s: a synchronous UDF that waits freezes Excel meanwhile.
#: A ``config`` given to ``configure`` wins.
EXCEL_CONFIG_DEFAULTS: dict[str, Any] = {"connection_timeout": 10, "request_timeout": 10}

_USABLE = (State.CONNECTED, State.LOGGED_IN)
_REASON_LENGTH = 160  # leaves room in a cell's text for "(next attempt in N s)"


class _Settings:
    """What ``configure`` was given for one name (the private key is never shown)."""

    __slots__ = ("api_key", "config", "private_key", "testnet")

    def __init__(
        self,
        api_key: Optional[str],
        private_key: Optional[str],
        config: Optional[Mapping[str, Any]],
        testnet: bool,
    ) -> None:
        self.api_key = api_key
        self.private_key = private_key
        self.config = dict(config) if config is not None else None
        self.testnet = testnet

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Settings) and (
            (self.api_key, self.private_key, self.config, self.testnet)
            == (other.api_key, other.private_key, other.config, other.testnet)
        )

    def __hash__(self) -> int:  # pragma: no cover - never hashed; __eq__ needs a partner
        return hash((self.api_key, self.testnet))

    def __repr__(self) -> str:
        return f"<_Settings api_key={'set' if self.api_key else 'from env'} testnet={self.testnet}>"


class _Entry:
    """One name: its settings, its service, and how its last connection attempt went."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.settings = _Settings(None, None, None, False)
        self.service: Optional[WebSocketService] = None
        self.last_error: Optional[str] = None
        self.failed_at: Optional[float] = None
        self.reconnecting_since: Optional[float] = None


class _Registry:
    """Everything ``bfsync.excel`` keeps for the process (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}
        self.cache = TtlCache()
        self.errors = "value"
        self.ttl = 1.0
        self.reconnect_interval = 5.0
        atexit.register(self.close_all)

    def entry(self, name: str) -> _Entry:
        entry = self.entries.get(name)
        if entry is None:
            with self.lock:
                entry = self.entries.get(name)
                if entry is None:
                    entry = self.entries[name] = _Entry(name)
        return entry

    def close_all(self) -> None:
        """Close every shared service (also run at interpreter exit)."""
        with self.lock:
            entries = list(self.entries.values())
        for entry in entries:
            close_entry(entry)
        self.cache.clear()


def _registry() -> _Registry:
    found = globals().get("_REGISTRY")
    return found if found is not None else _Registry()


#: The one registry of the process; executing this module again finds the same one.
_REGISTRY: _Registry = _registry()


def registry() -> _Registry:
    """The process's registry (internal; tests look at its cache counters)."""
    return _REGISTRY


def configure(
    api_key: Optional[str] = None,
    private_key: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    name: str = "default",
    *,
    testnet: bool = False,
) -> None:
    """
    Set the keys and settings of the shared service ``name``.

    Args:
        api_key: the API key; ``None`` reads ``BINANCE_API_KEY`` when the service is made.
        private_key: a path to a PEM key or the HMAC secret; ``None`` reads
            ``BINANCE_PRIVATE_KEY``.
        config: the ``config`` dict of ``websocket_service`` (checked here: an unknown key
            or bad value raises ``ValueError`` naming it). bfsync.excel's defaults under it:
            ``connection_timeout=10``, ``request_timeout=10``.
        name: which shared service.
        testnet: use Binance's testnet URLs (``ws_url``/``rest_url`` in ``config`` win).

    Calling it again with the same arguments (a module reloaded by "Import Python UDFs")
    changes nothing and keeps the connection; different arguments close the service, and
    the next call makes a new one with them. Does not connect; closing a replaced service
    takes at most a few seconds.
    """
    from ..config import Config

    _check_name(name)
    for label, value in (("api_key", api_key), ("private_key", private_key)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{label} must be a non-empty string or None")
    Config.from_dict(config)  # a bad key or value is reported here, in the caller's thread
    settings = _Settings(api_key, private_key, config, bool(testnet))
    entry = _REGISTRY.entry(name)
    with entry.lock:
        if entry.settings == settings:
            return
        entry.settings = settings
        service = entry.service
        entry.service = None
        entry.last_error = None
        entry.failed_at = None
    if service is not None:
        service.close()
    _REGISTRY.cache.clear()


def service(name: str = "default") -> WebSocketService:
    """
    The process's one shared, connected ``WebSocketService`` named ``name``.

    Made on the first call (once, under a lock, however many threads ask), connected again
    by itself after it failed or was closed (after a failed attempt, the next waits
    ``reconnect_interval`` seconds, see ``set_options``). Blocks at most about
    ``connection_timeout`` seconds.

    Raises:
        AuthenticationError: no API key or private key was configured or found in the
            environment, or the key file holds no usable key.
        ConnectionError: not connected now; the message says why (the last error) and when
            the next attempt may be made.
        ValueError: a bad ``name``.
    """
    _check_name(name)
    entry = _REGISTRY.entry(name)
    current = entry.service
    if current is not None and current.state in _USABLE:
        entry.reconnecting_since = None
        return current
    with entry.lock:
        return _bring_up(entry)


def close(name: Optional[str] = None) -> None:
    """
    Close the shared service ``name`` (every one when ``None``) and forget cached values.

    The next call of ``service(name)`` makes a new one. Bounded (about six seconds per
    service at worst), idempotent, from any thread.
    """
    if name is None:
        _REGISTRY.close_all()
        return
    _check_name(name)
    entry = _REGISTRY.entries.get(name)
    if entry is not None:
        close_entry(entry)
    _REGISTRY.cache.clear()


def close_entry(entry: _Entry) -> None:
    with entry.lock:
        service, entry.service = entry.service, None
        entry.last_error = None
        entry.failed_at = None
        entry.reconnecting_since = None
    if service is not None:
        try:
            service.close()
        except Exception:  # pragma: no cover - close() does not raise; at exit, never fail
            log.exception("closing the shared service %r failed", entry.name)


def status(name: str = "default") -> str:
    """
    The shared service's state in words, without connecting: ``"connected"``,
    ``"not connected: <last error>"``, ``"reconnecting"``, ``"not started"``, ...
    """
    _check_name(name)
    entry = _REGISTRY.entries.get(name)
    current = entry.service if entry is not None else None
    if entry is None or current is None:
        if entry is not None and entry.last_error:
            return f"not connected: {entry.last_error}"
        return "not started"
    state = current.state
    if state in _USABLE:
        return str(state)
    if entry.last_error is not None:
        return f"not connected: {entry.last_error}"
    if state in (State.FAILED, State.CLOSED):
        return f"not connected: {state} (the next call connects again)"
    return str(state)


def set_options(
    errors: Optional[str] = None,
    ttl: Optional[float] = None,
    reconnect_interval: Optional[float] = None,
) -> dict[str, Any]:
    """
    Change how the cell functions behave, for the whole process; returns the options.

    Args:
        errors: ``"value"`` (default): a function returns a short text starting ``#BF!``
            instead of raising; ``"raise"``: it raises bfsync's exception (xlwings then
            shows ``#VALUE!``).
        ttl: seconds a read value is reused (default 1): within it, any number of cells
            asking for the same thing cause one request. ``0`` asks every time (concurrent
            identical calls still share one request).
        reconnect_interval: after a failed connection attempt, the next waits this many
            seconds (default 5); also how long a reconnecting service is left to its own
            reconnection before it is connected anew.

    Raises:
        ValueError: a bad value, naming the parameter.
    """
    if errors is not None and errors not in ("value", "raise"):
        raise ValueError(f"errors must be 'value' or 'raise', got {errors!r}")
    if ttl is not None and not _finite(ttl, minimum=0.0):
        raise ValueError(f"ttl must be a number of seconds >= 0, got {ttl!r}")
    if reconnect_interval is not None and not _finite(reconnect_interval, minimum=None):
        raise ValueError(
            f"reconnect_interval must be a number of seconds > 0, got {reconnect_interval!r}"
        )
    if errors is not None:
        _REGISTRY.errors = errors
    if ttl is not None:
        _REGISTRY.ttl = float(ttl)
    if reconnect_interval is not None:
        _REGISTRY.reconnect_interval = float(reconnect_interval)
    return get_options()


def get_options() -> dict[str, Any]:
    """The current options (see ``set_options``)."""
    return {
        "errors": _REGISTRY.errors,
        "ttl": _REGISTRY.ttl,
        "reconnect_interval": _REGISTRY.reconnect_interval,
    }


# Private functions


def _bring_up(entry: _Entry) -> WebSocketService:
    """Return the entry's service connected, or raise; called with ``entry.lock`` held."""
    now = time.monotonic()
    interval = _REGISTRY.reconnect_interval
    current = entry.service
    if current is not None:
        state = current.state
        if state in _USABLE:  # another thread brought it up while this one waited
            entry.reconnecting_since = None
            return current
        if state is State.RECONNECTING:
            if entry.reconnecting_since is None:
                entry.reconnecting_since = now
            if now - entry.reconnecting_since < interval:
                raise ConnectionError("reconnecting" + _last(entry))
    failed_at = entry.failed_at
    if failed_at is not None and now - failed_at < interval:
        why = entry.last_error or "not connected"
        wait = math.ceil(failed_at + interval - now)
        raise ConnectionError(f"{why} (next attempt in {wait} s)")
    if current is None:
        current = _make_service(entry.settings)  # no network: keys and config only
        entry.service = current
    entry.reconnecting_since = None
    try:
        if current.state is State.RECONNECTING:
            current.close()  # its own backoff may wait minutes; start again now
        current.connect()
    except BinanceWebSocketError as exc:
        entry.failed_at = time.monotonic()
        entry.last_error = _reason(exc)
        log.warning("shared service %r could not connect: %s", entry.name, entry.last_error)
        raise
    entry.failed_at = None
    entry.last_error = None
    return current


def _make_service(settings: _Settings) -> WebSocketService:
    api_key = settings.api_key or os.environ.get(API_KEY_ENV) or None
    private_key = settings.private_key or os.environ.get(PRIVATE_KEY_ENV) or None
    if api_key is None or private_key is None:
        missing = " and ".join(
            env
            for env, value in ((API_KEY_ENV, api_key), (PRIVATE_KEY_ENV, private_key))
            if value is None
        )
        raise AuthenticationError(
            f"no keys: set {missing} in the environment, or call bfsync.excel.configure()"
        )
    merged: dict[str, Any] = dict(EXCEL_CONFIG_DEFAULTS)
    if settings.testnet:
        merged.update(ws_url=TESTNET_WS_URL, rest_url=TESTNET_REST_URL)
    merged.update(settings.config or {})
    return WebSocketService(api_key, private_key, enable_validation=True, config=merged)


def _reason(exc: BaseException) -> str:
    """
    A connection error's text for a cell: with its cause when bfsync wrapped one, without
    websocket-client's dump of the response headers, at most ``_REASON_LENGTH`` characters.
    """
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return _trim(text)


def _trim(text: str) -> str:
    text = " ".join(text.split(" -+-+- ")[0].split())
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 3] + "..."


def _last(entry: _Entry) -> str:
    return f" (last error: {entry.last_error})" if entry.last_error else ""


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")


def _finite(value: object, minimum: Optional[float]) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value >= minimum if minimum is not None else value > 0
