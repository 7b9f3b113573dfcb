"""
Frames of Binance's WebSocket API (pure: no sockets, threads or clock).

One table, ``METHODS``, says how each wire method is secured and what it weighs;
``encode_request`` writes a request frame; ``decode_frame`` reads a reply; ``error_for``
turns a reply whose status is not 200 into the exception the caller sees, and
``revoked_error`` the id-null 401 of a revoked key into the exception of each request it
fails. That translation happens here and nowhere else.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, Optional

from .exceptions import (
    AuthenticationError,
    LoginRejectedError,
    OrderAuthenticationLostError,
    OrderServerError,
    RateLimitError,
    RequestError,
)

__all__ = [
    "METHODS",
    "NONE",
    "OUTCOME_UNKNOWN_CODES",
    "SIGNED",
    "USER_STREAM",
    "MethodInfo",
    "decode_frame",
    "encode_request",
    "error_for",
    "revoked_error",
    "retry_after",
]

NONE = "NONE"
USER_STREAM = "USER_STREAM"
SIGNED = "SIGNED"


class MethodInfo(NamedTuple):
    """How a wire method is sent: security, request weight, whether it places orders or reads."""

    security: str
    weight: int
    is_order: bool = False
    is_read: bool = False  # safe to send again: changes nothing on the server


METHODS: dict[str, MethodInfo] = {
    "session.logon": MethodInfo(SIGNED, 2),
    "session.status": MethodInfo(NONE, 2, is_read=True),
    "session.logout": MethodInfo(NONE, 2),
    "depth": MethodInfo(NONE, 5, is_read=True),
    "ticker.price": MethodInfo(NONE, 1, is_read=True),
    "ticker.book": MethodInfo(NONE, 2, is_read=True),
    "order.place": MethodInfo(SIGNED, 0, is_order=True),
    "algoOrder.place": MethodInfo(SIGNED, 0, is_order=True),
    "order.modify": MethodInfo(SIGNED, 0, is_order=True),
    "order.cancel": MethodInfo(SIGNED, 1),
    "order.status": MethodInfo(SIGNED, 1, is_read=True),
    "algoOrder.cancel": MethodInfo(SIGNED, 1),
    "v2/account.position": MethodInfo(SIGNED, 5, is_read=True),
    "v2/account.balance": MethodInfo(SIGNED, 5, is_read=True),
    "v2/account.status": MethodInfo(SIGNED, 5, is_read=True),
    "userDataStream.start": MethodInfo(USER_STREAM, 1),
    "userDataStream.ping": MethodInfo(USER_STREAM, 1),
    "userDataStream.stop": MethodInfo(USER_STREAM, 1),
}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_request(request_id: int, method: str, params: dict[str, Any]) -> str:
    """The text of a request frame."""
    return _dumps({"id": request_id, "method": method, "params": params})


def decode_frame(data: str | bytes) -> dict[str, Any]:
    """
    The reply frame as a dict.

    Raises:
        ValueError: not JSON, or not a JSON object.
    """
    try:
        frame = json.loads(data)
    except RecursionError:  # absurdly deep nesting: not a reply of Binance's
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(frame, dict):
        raise ValueError(f"expected a JSON object, got {type(frame).__name__}")
    return frame


_BANNED_UNTIL = re.compile(r"banned until (\d{10,})")


def retry_after(frame: dict[str, Any], now_ms: Optional[int] = None) -> Optional[float]:
    """
    Seconds to wait after a 429 / 418 reply, when the frame says.

    A 418's message says "IP banned until <ms>": with ``now_ms`` the wait is computed from it.
    Otherwise the frame's ``retryAfter`` (ms, a Binance field on some replies) is used.
    """
    try:
        error = frame.get("error")
        msg = error.get("msg", "") if isinstance(error, dict) else ""
        match = _BANNED_UNTIL.search(str(msg))
        if match and now_ms is not None:
            return max(0.0, (int(match.group(1)) - now_ms) / 1000)
        after = frame.get("retryAfter")
        if isinstance(after, (int, float)) and not isinstance(after, bool) and now_ms is not None:
            return max(0.0, (after - now_ms) / 1000) if after > 1e12 else None
    except (ValueError, OverflowError):  # a number too long or too large to mean anything
        return None
    return None


#: Codes Binance answers when it cannot tell whether a request was executed (§6): -1006
#: "unexpected response from the message bus", -1007 "timeout waiting for the backend".
OUTCOME_UNKNOWN_CODES = (-1006, -1007)


def error_for(
    frame: dict[str, Any],
    method: str,
    now_ms: Optional[int] = None,
    *,
    client_order_id: Optional[str] = None,
) -> RequestError:
    """
    The exception for a reply whose ``status`` is not 200.

    - 418 / 429: ``RateLimitError`` (with ``retry_after``);
    - a refused ``session.logon``: ``LoginRejectedError``;
    - an order (``METHODS[method].is_order``) answered with status 5xx or with code -1006 /
      -1007: ``OrderServerError`` carrying ``client_order_id``, since Binance says the
      execution status is unknown (the order may have been placed);
    - anything else: ``RequestError``.

    Args:
        frame: the reply.
        method: the request's wire method.
        now_ms: the wall clock in ms, to turn a 418's "banned until" into seconds.
        client_order_id: the order's ``newClientOrderId`` / ``clientAlgoId`` (orders only).
    """
    status = frame.get("status")
    code, msg = _error_detail(frame)
    text = f"{method} failed: status {status}, code {code}: {msg}"
    kw: dict[str, Any] = {"code": code, "msg": msg, "status": status, "response": frame}
    if status in (418, 429):
        return RateLimitError(text, retry_after=retry_after(frame, now_ms), **kw)
    if method == "session.logon":
        return LoginRejectedError(text, **kw)
    info = METHODS.get(method)
    server_failed = isinstance(status, int) and not isinstance(status, bool) and status >= 500
    if info is not None and info.is_order and (server_failed or code in OUTCOME_UNKNOWN_CODES):
        return OrderServerError(
            f"{text}; the order may or may not have been placed "
            f"(client order id {client_order_id!r})",
            client_order_id=client_order_id,
            method=method,
            **kw,
        )
    return RequestError(text, **kw)


def _error_detail(frame: dict[str, Any]) -> tuple[Optional[int], str]:
    """The ``code`` and ``msg`` of an error frame (``None`` and a placeholder when absent)."""
    error = frame.get("error")
    code: Optional[int] = None
    msg = "no error detail in the reply"
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        msg = str(error.get("msg", msg))
    return code, msg


def revoked_error(
    frame: dict[str, Any], method: str, *, client_order_id: Optional[str] = None
) -> AuthenticationError:
    """
    The exception for a request in flight when the server revoked the API key (a ``status``
    401 frame with ``id: null``, §1.4): the request may or may not have been processed.

    An order (``METHODS[method].is_order``) gets ``OrderAuthenticationLostError`` (an
    ``OrderStatusUnknownError`` and ``AuthenticationError``) carrying ``client_order_id``;
    anything else a plain ``AuthenticationError``.
    """
    code, msg = _error_detail(frame)
    status = frame.get("status")
    text = f"{method}: the server revoked the API key (status {status}, code {code}: {msg})"
    info = METHODS.get(method)
    if info is not None and info.is_order:
        return OrderAuthenticationLostError(
            f"{text}; the order may or may not have been placed "
            f"(client order id {client_order_id!r})",
            client_order_id=client_order_id,
            method=method,
            code=code,
            msg=msg,
            status=status,
            response=frame,
        )
    return AuthenticationError(f"{text}; the request may not have been processed")
