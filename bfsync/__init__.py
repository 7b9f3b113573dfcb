"""
bfsync: a synchronous client for the Binance USD-M Futures WebSocket API.

One background thread owns the WebSocket and the signer; any thread may call the
``WebSocketService`` methods, blocking or with ``wait_for_response=False`` for a
``concurrent.futures.Future``.
"""

import logging

from .client import BinanceClient
from .exceptions import (
    AuthenticationError,
    BinanceWebSocketError,
    ConnectionError,
    ConnectionLostError,
    LoginRejectedError,
    OrderConnectionLostError,
    OrderStatusUnknownError,
    OrderTimeoutError,
    OrderValidationError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
    UserStreamError,
)
from .service import WebSocketService
from .transport import State

__version__ = "0.1.0"

# A library logs; the application decides where that goes (and nothing shows by default).
logging.getLogger("bfsync").addHandler(logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "BinanceClient",
    "BinanceWebSocketError",
    "ConnectionError",
    "ConnectionLostError",
    "LoginRejectedError",
    "OrderConnectionLostError",
    "OrderStatusUnknownError",
    "OrderTimeoutError",
    "OrderValidationError",
    "RateLimitError",
    "RequestError",
    "RequestTimeoutError",
    "State",
    "UserStreamError",
    "WebSocketService",
]
