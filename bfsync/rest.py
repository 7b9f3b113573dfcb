"""
REST calls of Binance USD-M Futures that ws-fapi lacks (pure: no sockets, threads or clock).

One table, ``CALLS``: per bfsync call name, the HTTP verb and path, the security (``NONE``,
``USER_STREAM``: API key header only, ``SIGNED``), the request weight, and whether the call
only reads (safe to send again) or places orders. The rest is how REST differs from ws-fapi:

- :func:`encode_params`: the query string (or form body) **in the order the params were
  given**, each value percent-encoded (RFC 3986 unreserved characters kept). REST signs that
  text as sent, unsorted (reference §4.1, vector C), not the sorted ws-fapi payload.
- :func:`signed_payload`: the params plus ``timestamp`` and ``recvWindow``, encoded, with
  ``&signature=`` appended (HMAC lowercase hex; RSA / Ed25519 base64, percent-encoded).
- :func:`decode_response`: an HTTP answer as the frame-like dict callers get
  (``{"status", "result", "rateLimits"}``), or the exception of bfsync's tree. The error
  itself is built by :func:`bfsync.protocol.error_for`, as for ws-fapi replies.
- :func:`decode_public_get`: the answer of an unsigned ``GET`` of public data (depth,
  exchangeInfo) as its JSON object, or the same exceptions.
- :func:`rest_base_url`: the one rule that keeps a test from calling production: a service
  whose ``ws_url`` is not Binance's must name its ``rest_url``.

Sources for every endpoint and weight: ``docs/rest.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional
from urllib.parse import quote, urlsplit

from .config import PROD_REST_URL, TESTNET_REST_URL, Config
from .exceptions import (
    ConnectionError,
    OrderStatusUnknownError,
    RateLimitError,
    RequestError,
)
from .protocol import NONE, SIGNED, USER_STREAM, error_for
from .signing import param_text

__all__ = [
    "CALLS",
    "UNKNOWN_OUTCOME_CODES",
    "RestCall",
    "decode_public_get",
    "decode_response",
    "encode_params",
    "rate_limits_from_headers",
    "rest_base_url",
    "signed_payload",
    "weight_of_call",
]


class RestCall(NamedTuple):
    """How one REST call is sent: verb, path, security, weight; reads and orders marked."""

    verb: str
    path: str
    security: str
    weight: int  # with a symbol (or the only weight); see ``weight_all`` and ``by_limit``
    weight_all: Optional[int] = None  # weight when no ``symbol`` is given, if different
    by_limit: bool = False  # klines: the weight follows ``limit`` (default 500)
    is_read: bool = False  # changes nothing on the server: may be sent again
    is_order: bool = False  # places orders (counts in ORDERS)

    @property
    def label(self) -> str:
        """``"GET /fapi/v1/openOrders"``: how messages and ``FakeExchange`` name the call."""
        return f"{self.verb} {self.path}"


_R = RestCall
CALLS: dict[str, RestCall] = {
    # Trade
    "get_open_orders": _R("GET", "/fapi/v1/openOrders", SIGNED, 1, 40, is_read=True),
    "get_open_algo_orders": _R("GET", "/fapi/v1/openAlgoOrders", SIGNED, 1, 40, is_read=True),
    "get_algo_order": _R("GET", "/fapi/v1/algoOrder", SIGNED, 1, is_read=True),
    "cancel_all_open_orders": _R("DELETE", "/fapi/v1/allOpenOrders", SIGNED, 1),
    "cancel_all_algo_orders": _R("DELETE", "/fapi/v1/algoOpenOrders", SIGNED, 1),
    "change_leverage": _R("POST", "/fapi/v1/leverage", SIGNED, 1),
    "change_margin_type": _R("POST", "/fapi/v1/marginType", SIGNED, 1),
    "get_position_mode": _R("GET", "/fapi/v1/positionSide/dual", SIGNED, 30, is_read=True),
    "change_position_mode": _R("POST", "/fapi/v1/positionSide/dual", SIGNED, 1),
    "get_multi_assets_mode": _R("GET", "/fapi/v1/multiAssetsMargin", SIGNED, 30, is_read=True),
    "change_multi_assets_mode": _R("POST", "/fapi/v1/multiAssetsMargin", SIGNED, 1),
    "get_account_trades": _R("GET", "/fapi/v1/userTrades", SIGNED, 5, is_read=True),
    "get_income_history": _R("GET", "/fapi/v1/income", SIGNED, 30, is_read=True),
    "get_commission_rate": _R("GET", "/fapi/v1/commissionRate", SIGNED, 20, is_read=True),
    "get_leverage_brackets": _R("GET", "/fapi/v1/leverageBracket", SIGNED, 1, is_read=True),
    # Market data
    "get_klines": _R("GET", "/fapi/v1/klines", NONE, 5, by_limit=True, is_read=True),
    "get_continuous_klines": _R(
        "GET", "/fapi/v1/continuousKlines", NONE, 5, by_limit=True, is_read=True
    ),
    "get_mark_price": _R("GET", "/fapi/v1/premiumIndex", NONE, 1, 10, is_read=True),
    "get_funding_rate_history": _R("GET", "/fapi/v1/fundingRate", NONE, 1, is_read=True),
    "get_server_time": _R("GET", "/fapi/v1/time", NONE, 1, is_read=True),
    "get_exchange_info": _R("GET", "/fapi/v1/exchangeInfo", NONE, 1, is_read=True),
    # User data stream (REST twins of userDataStream.*)
    "start_listen_key": _R("POST", "/fapi/v1/listenKey", USER_STREAM, 1),
    "keepalive_listen_key": _R("PUT", "/fapi/v1/listenKey", USER_STREAM, 1),
    "close_listen_key": _R("DELETE", "/fapi/v1/listenKey", USER_STREAM, 1),
}

#: Binance's "execution status unknown" codes (reference §6): the request may have been done.
UNKNOWN_OUTCOME_CODES = frozenset({-1006, -1007})

#: klines ``limit`` -> weight: [1,100) 1, [100,500) 2, [500,1000] 5, > 1000 10.
_KLINE_WEIGHTS = ((99, 1), (499, 2), (1000, 5))


def weight_of_call(call: RestCall, params: Mapping[str, Any]) -> int:
    """The ``REQUEST_WEIGHT`` of ``call`` with ``params`` (by ``symbol`` or ``limit``)."""
    if call.by_limit:
        limit = params.get("limit")
        try:
            number = 500 if limit is None else int(limit)
        except (TypeError, ValueError):
            return 5
        for top, weight in _KLINE_WEIGHTS:
            if number <= top:
                return weight
        return 10
    if call.weight_all is not None and params.get("symbol") in (None, ""):
        return call.weight_all
    return call.weight


def encode_params(params: Mapping[str, Any]) -> str:
    """
    ``key=value&...`` in the order given, values as ``param_text`` percent-encoded.

    Booleans become ``true`` / ``false``; ``None`` values are left out.
    """
    return "&".join(
        f"{quote(str(key), safe='')}={quote(param_text(value), safe='')}"
        for key, value in params.items()
        if value is not None
    )


def signed_payload(
    params: Mapping[str, Any],
    timestamp: int,
    recv_window: Optional[int],
    sign: Any,
) -> str:
    """
    The signed query string (or form body): ``params``, then ``recvWindow`` (unless given in
    ``params`` or ``None``) and ``timestamp``, then ``&signature=...``.

    ``sign`` is the service's signer's ``sign`` (text -> signature); its output is
    percent-encoded (base64 has ``+``, ``/`` and ``=``).
    """
    items = {key: value for key, value in params.items() if value is not None}
    if recv_window is not None and "recvWindow" not in items:
        items["recvWindow"] = recv_window
    items.pop("timestamp", None)
    items["timestamp"] = timestamp
    text = encode_params(items)
    return f"{text}&signature={quote(sign(text), safe='')}"


_WEIGHT_HEADER = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$", re.IGNORECASE)
_INTERVALS = {"s": "SECOND", "m": "MINUTE", "h": "HOUR", "d": "DAY"}


def rate_limits_from_headers(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """
    ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-10S`` ... as ``rateLimits`` items
    (``rateLimitType``, ``interval``, ``intervalNum``, ``count``), the shape
    :meth:`bfsync.limits.RateLimiter.observe` takes. Unreadable headers are skipped.
    """
    out: list[dict[str, Any]] = []
    for key, value in headers.items():
        match = _WEIGHT_HEADER.match(key)
        if match is None:
            continue
        try:
            count = int(str(value).strip())
        except ValueError:
            continue
        kind = "REQUEST_WEIGHT" if match.group(1).lower() == "used-weight" else "ORDERS"
        out.append(
            {
                "rateLimitType": kind,
                "interval": _INTERVALS[match.group(3).lower()],
                "intervalNum": int(match.group(2)),
                "count": count,
            }
        )
    return out


def _retry_after_header(headers: Mapping[str, str]) -> Optional[float]:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if 0 <= seconds < 1e7 else None
    return None


def decode_response(
    call: RestCall,
    status: int,
    headers: Mapping[str, str],
    text: str,
    now_ms: int,
    client_order_id: Optional[str] = None,
    symbol: Optional[str] = None,
) -> dict[str, Any]:
    """
    The frame-like reply ``{"status", "result", "rateLimits"}`` of a 200 answer.

    Raises:
        RateLimitError: 429 or 418; ``retry_after`` from the body's ban time or the
            ``Retry-After`` header (seconds).
        OrderStatusUnknownError: a call that changes state got 5xx (but not -1008, "system
            overloaded", which refuses) or -1006 / -1007: it may have been done.
        RequestError: any other status but 200 (``code`` / ``msg`` from Binance's
            ``{"code", "msg"}`` body), or a 200 whose body is not JSON.
    """
    limits = rate_limits_from_headers(headers)
    try:
        body: Any = json.loads(text) if text else None
        decoded = True
    except (ValueError, RecursionError):
        body, decoded = None, False
    frame: dict[str, Any] = {"status": status}
    if status == 200:
        if not decoded:
            raise RequestError(
                f"{call.label}: HTTP 200 but the body is not JSON: {text[:200]!r}",
                status=status,
                msg="the body is not JSON",
            )
        frame["result"] = body
        frame["rateLimits"] = limits
        return frame
    error: dict[str, Any] = {"code": None, "msg": f"HTTP {status}: {text[:200]}"}
    if isinstance(body, dict) and isinstance(body.get("code"), int):
        error = {"code": body["code"], "msg": str(body.get("msg", ""))}
    frame["error"] = error
    frame["rateLimits"] = limits
    exc = error_for(frame, call.label, now_ms)
    if isinstance(exc, RateLimitError):
        if exc.retry_after is None:
            exc.retry_after = _retry_after_header(headers)
        return _raise(exc)
    code = error["code"]
    unknown = code in UNKNOWN_OUTCOME_CODES or (status >= 500 and code != -1008)
    if unknown and not call.is_read:
        what = f"client order id {client_order_id!r}" if client_order_id else "the request"
        raise OrderStatusUnknownError(
            f"{call.label}: status {status}, code {code}: {error['msg']}; the outcome is "
            f"unknown ({what} may or may not have been done)",
            client_order_id=client_order_id,
            method=call.label,
            symbol=symbol,
            code=code,
            msg=error["msg"],
            status=status,
            response=frame,
        )
    return _raise(exc)


def decode_public_get(
    url: str, status: int, headers: Mapping[str, str], text: str
) -> dict[str, Any]:
    """
    The JSON object of the answer to an unsigned ``GET {url}`` (public data).

    Raises:
        RateLimitError: 429 or 418 (``retry_after`` from the ``Retry-After`` header).
        RequestError: any other status but 200 (``status``; ``code``/``msg`` when the body is
            Binance's ``{"code", "msg"}``), or a 200 whose body is not a JSON object.
    """
    try:
        decoded: Any = json.loads(text)
    except (ValueError, RecursionError):
        decoded = None
    body = decoded if isinstance(decoded, dict) else None
    if status == 200:
        if body is None:
            raise RequestError(
                f"GET {url}: HTTP 200 but the body is not a JSON object: {text[:200]!r}",
                status=status,
            )
        return body
    code = body.get("code") if body is not None else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = str(body.get("msg", "")) if body is not None and code is not None else None
    detail = f" ({code}: {msg})" if code is not None else ""
    message = f"GET {url} failed: HTTP {status}{detail}"
    if status in (418, 429):
        raise RateLimitError(
            message,
            retry_after=_retry_after_header(headers),
            code=code,
            msg=msg,
            status=status,
            response=body,
        )
    raise RequestError(message, code=code, msg=msg, status=status, response=body)


def _raise(exc: BaseException) -> dict[str, Any]:
    raise exc


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


_BINANCE_HOSTS = ("binance.com", "binancefuture.com")
_BINANCE_REST = frozenset({PROD_REST_URL.rstrip("/"), TESTNET_REST_URL.rstrip("/")})


def _is_binance(url: str) -> bool:
    host = _host(url)
    return any(host == h or host.endswith("." + h) for h in _BINANCE_HOSTS)


def rest_base_url(config: Config) -> str:
    """
    ``config.rest_url`` without a trailing ``/``, for every REST use of a service.

    Raises:
        ConnectionError: ``ws_url`` points somewhere that is not Binance (a local server, a
            test double) while ``rest_url`` is still one of Binance's: a test would call the
            real exchange. The message names ``rest_url``.
    """
    rest = config.rest_url.rstrip("/")
    if not _is_binance(config.ws_url) and rest in _BINANCE_REST:
        raise ConnectionError(
            f"config['ws_url'] is {config.ws_url!r}, not Binance, but config['rest_url'] is "
            f"still Binance's {rest!r}: refusing to call it. Set config['rest_url'] too "
            "(FakeExchange: fx.rest_url)"
        )
    return rest
