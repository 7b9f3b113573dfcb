"""
Exceptions raised by bfsync.

The names of the first level are those of ``binance-futures-async``; the finer classes below
them let a caller tell cases apart::

    BinanceWebSocketError
    ├── ConnectionError                     not connected, closed, or the link was lost
    │   └── ConnectionLostError             a request in flight when the link dropped
    │       └── OrderConnectionLostError    ... an order: outcome unknown (also RequestError)
    ├── AuthenticationError                 bad key file, login() without Ed25519
    │   ├── LoginRejectedError              session.logon refused (also RequestError)
    │   └── OrderAuthenticationLostError    key revoked with an order in flight: outcome unknown
    ├── RequestError                        the server answered status != 200 (code, msg, ...)
    │   ├── RequestTimeoutError             no reply within request_timeout
    │   │   └── OrderTimeoutError           ... an order: outcome unknown
    │   ├── RateLimitError                  status 429 / 418, with retry_after
    │   ├── OrderStatusUnknownError         base of every "outcome unknown" error
    │   │   └── OrderServerError            an order answered 5xx or -1006/-1007: outcome unknown
    │   └── OrderNotFoundError              resolve_unknown(): the exchange has no such order
    ├── UserStreamError
    │   ├── ListenKeyError                  listenKey refused (also RequestError)
    │   ├── OrderEndedError                 wait_for_order: the order ended otherwise
    │   └── OrderWaitTimeoutError           wait_for_order: no match in time (a timeout)
    ├── OrderBookOutOfSyncError             a local order book read while not in sync
    └── OrderValidationError                refused before sending (also ValueError)

``OrderStatusUnknownError`` is the class to catch for "the order may or may not exist":
its ``client_order_id`` attribute is the id to look the order up with. Its subclasses say
why: no reply in time (``OrderTimeoutError``), the link dropped (``OrderConnectionLostError``),
a server-side failure (``OrderServerError``), the key revoked meanwhile
(``OrderAuthenticationLostError``, also an ``AuthenticationError``).

Every ``RequestError`` has the attributes ``code`` (Binance error code or ``None``), ``msg``,
``status`` (the frame's status or ``None``) and ``response`` (the frame, or ``None``).
"""

from __future__ import annotations

import builtins
from typing import Any, Optional

__all__ = [
    "AuthenticationError",
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
    "UserStreamError",
]


class BinanceWebSocketError(Exception):
    """Base class of every exception bfsync raises."""


class ConnectionError(BinanceWebSocketError):  # the async library's name
    """The service is not connected, was closed, or its link was lost."""


class ConnectionLostError(ConnectionError):
    """The link was lost while this request was in flight (or queued and never sent)."""


class AuthenticationError(BinanceWebSocketError):
    """A key could not be loaded or used, or the server refused to authenticate."""


class UserStreamError(BinanceWebSocketError):
    """An error of the user data stream."""


class OrderBookOutOfSyncError(BinanceWebSocketError):
    """
    A local order book was read while it is not in sync (resyncing, not yet synced, closed).

    Attributes:
        symbol: the book's symbol.
    """

    def __init__(self, message: str, *, symbol: Optional[str] = None) -> None:
        super().__init__(message)
        self.symbol = symbol


class OrderValidationError(BinanceWebSocketError, ValueError):
    """Order parameters were refused before anything was sent; the message names the rule."""


class RequestError(BinanceWebSocketError):
    """
    A request failed: the server answered with an error, or no answer came.

    Attributes:
        code: Binance's error code (``-1102``, ...) or ``None`` when no error frame came.
        msg: Binance's error message, or bfsync's own text.
        status: the reply's status (400, 401, 429, ...) or ``None``.
        response: the whole reply frame as a dict, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        msg: Optional[str] = None,
        status: Optional[int] = None,
        response: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.msg = msg if msg is not None else message
        self.status = status
        self.response = response


class RequestTimeoutError(RequestError, builtins.TimeoutError):
    """No reply came within ``request_timeout`` seconds."""


class RateLimitError(RequestError):
    """
    The server answered 429 (too many requests) or 418 (IP banned).

    Attributes:
        retry_after: seconds to wait before sending again, or ``None`` when unknown.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class OrderStatusUnknownError(RequestError):
    """
    An order was sent and no answer came: it may or may not have been placed.

    bfsync never re-sends it. Look it up with ``client_order_id`` (``order.status`` /
    ``origClientOrderId`` for plain orders, ``clientAlgoId`` for conditional ones) or watch the
    user data stream.

    Also raised by the REST calls that change state (``cancel_all_open_orders``,
    ``change_leverage``, ...) when their outcome is unknown (a timeout once sent, HTTP 5xx,
    -1006 / -1007); ``client_order_id`` is ``None`` there. ``resolve_unknown(exc)`` looks an
    order up.

    Attributes:
        client_order_id: the ``newClientOrderId`` / ``clientAlgoId`` the order was sent with.
        method: the wire method (``"order.place"``, ``"algoOrder.place"``, ...) or REST call
            (``"DELETE /fapi/v1/allOpenOrders"``), when known; ``None`` otherwise.
        symbol: the order's symbol, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        client_order_id: Optional[str] = None,
        method: Optional[str] = None,
        symbol: Optional[str] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.client_order_id = client_order_id
        self.method = method
        self.symbol = symbol


class OrderTimeoutError(OrderStatusUnknownError, RequestTimeoutError):
    """An order got no reply within ``request_timeout``; its outcome is unknown."""


class OrderConnectionLostError(OrderStatusUnknownError, ConnectionLostError):
    """The link was lost after an order was sent; its outcome is unknown."""


class OrderNotFoundError(RequestError):
    """
    ``resolve_unknown()``: the exchange does not know the order (it was not placed, or not yet).

    An order sent moments ago may still be on its way; once ``recvWindow`` (5 s by default)
    has passed since it was sent, the exchange refuses it if it arrives, so "not found" then
    means "not placed".

    Attributes:
        client_order_id: the client order id that was looked up.
    """

    def __init__(self, message: str, *, client_order_id: Optional[str] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.client_order_id = client_order_id


class OrderServerError(OrderStatusUnknownError):
    """
    An order was answered with status 5xx, or with code -1006 / -1007 ("execution status
    unknown"): Binance failed on its side and the order may or may not have been placed.
    ``status`` and ``code`` say which.
    """


class OrderAuthenticationLostError(OrderStatusUnknownError, AuthenticationError):
    """
    The API key was revoked (status 401, ``id: null``) while this order was in flight: the
    order may or may not have been placed, and nothing signed with the key will work again.
    """


class LoginRejectedError(AuthenticationError, RequestError):
    """The server refused ``session.logon``; ``code`` says why."""


class ListenKeyError(UserStreamError, RequestError):
    """
    The server refused ``userDataStream.start`` or ``ping``; ``code`` says why (-2014 / -2015:
    a bad or revoked API key; -1125: the listenKey is gone).
    """


class OrderWaitTimeoutError(UserStreamError, RequestTimeoutError):
    """
    ``UserDataStream.wait_for_order`` saw no awaited status in time.

    Attributes:
        client_order_id: the id waited for.
        last_event: the last ORDER_TRADE_UPDATE / ALGO_UPDATE seen for it, or ``None``.
        gaps: how many gaps (events possibly missed) the stream had during the wait; when
            not 0, the status may have changed unseen: look the order up.
    """

    def __init__(
        self,
        message: str,
        *,
        client_order_id: Optional[str] = None,
        last_event: Optional[dict[str, Any]] = None,
        gaps: int = 0,
    ) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id
        self.last_event = last_event
        self.gaps = gaps


class OrderEndedError(UserStreamError):
    """
    ``UserDataStream.wait_for_order``: the order reached a final status that was not awaited
    (e.g. CANCELED while waiting for FILLED), so the awaited one can never come.

    Attributes:
        client_order_id: the id waited for.
        event: the ORDER_TRADE_UPDATE / ALGO_UPDATE with the final status.
    """

    def __init__(self, message: str, *, client_order_id: str, event: dict[str, Any]) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id
        self.event = event
