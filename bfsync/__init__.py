"""
bfsync: a synchronous client for the Binance USD-M Futures WebSocket API.

One background thread owns the WebSocket and the signer; any thread may call the
``WebSocketService`` methods, blocking or with ``wait_for_response=False`` for a
``concurrent.futures.Future``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._registry import close_all
from .exceptions import (
    AuthenticationError,
    BinanceWebSocketError,
    ConnectionError,
    ConnectionLostError,
    ListenKeyError,
    LoginRejectedError,
    OrderAuthenticationLostError,
    OrderBookOutOfSyncError,
    OrderConnectionLostError,
    OrderEndedError,
    OrderNotFoundError,
    OrderServerError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    OrderValidationError,
    OrderWaitTimeoutError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
    UserStreamError,
)

if TYPE_CHECKING:
    from .client import BinanceClient
    from .service import WebSocketService
    from .transport import State

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BinanceClient",
    "BinanceWebSocketError",
    "ConnectionError",
    "ConnectionLostError",
    "ListenKeyError",
    "LoginRejectedError",
    "OrderAuthenticationLostError",
    "OrderBookOutOfSyncError",
    "OrderConnectionLostError",
    "OrderEndedError",
    "OrderNotFoundError",
    "OrderServerError",
    "OrderStatusUnknownError",
    "OrderTimeoutError",
    "OrderValidationError",
    "OrderWaitTimeoutError",
    "RateLimitError",
    "RequestError",
    "RequestTimeoutError",
    "State",
    "UserStreamError",
    "WebSocketService",
    "close_all",
]

# The client classes load their modules (attrs, websocket-client, cryptography) on first use,
# so that ``import bfsync`` is cheap: an Excel add-in imports it at start-up.
_LAZY = {"BinanceClient": ".client", "WebSocketService": ".service", "State": ".transport"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bfsync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# A library logs; the application decides where that goes (and nothing shows by default).
logging.getLogger("bfsync").addHandler(logging.NullHandler())
