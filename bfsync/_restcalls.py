"""
The REST calls of ``WebSocketService`` (a mixin): what ws-fapi lacks, in the same style.

Each public method is one short line over ``_rest_call``, which checks the keywords (with
``enable_validation``), puts numbers and booleans in wire form, and sends the call through
the service's ``RestTransport`` (``_resthttp.py``): blocking in the caller's thread, or on a
``bfsync-rest-N`` thread with ``wait_for_response=False``. The table of endpoints, weights and
signing rules is ``rest.py``; ``docs/rest.md`` says where each one comes from.

Every call returns a frame-like dict ``{"status", "result", "rateLimits"}`` (or a
``concurrent.futures.Future`` of it), so ``reply["result"]`` reads as for ws-fapi calls.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from .exceptions import (
    ConnectionError,
    OrderNotFoundError,
    OrderStatusUnknownError,
    OrderValidationError,
    RequestError,
)
from .orders import format_params
from .rest import CALLS, rest_base_url

if TYPE_CHECKING:
    from ._dispatch import Dispatcher
    from ._resthttp import RestTransport
    from .config import Config
    from .limits import RateLimiter
    from .signing import Signer

__all__ = ["RestCalls"]

#: A call's result: the reply dict, or with ``wait_for_response=False`` a Future of it.
Reply = Any

_INTERVALS: tuple[str, ...] = (
    *("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"),
    *("1d", "3d", "1w", "1M"),
)
_CONTRACT_TYPES = ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER", "TRADIFI_PERPETUAL")
_MARGIN_TYPES = ("ISOLATED", "CROSSED")
_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_NOT_FOUND_CODES = frozenset({-2011, -2013})
_NOTES_KEPT = 1024
_ALGO_METHODS = ("algoOrder.place", "POST /fapi/v1/algoOrder")
_ORDER_METHODS = ("order.place", "order.modify", "POST /fapi/v1/order")


# Checkers: (value, name) -> the value in wire form, or OrderValidationError naming the rule.


def _text(value: Any, name: str) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise OrderValidationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _int_in(low: int, high: Optional[int]) -> Callable[[Any, str], Any]:
    def check(value: Any, name: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OrderValidationError(f"{name} must be an int, got {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise OrderValidationError(f"{name} must be {bound}, got {value}")
        return value

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any, str], Any]:
    def check(value: Any, name: str) -> Any:
        if value not in choices:
            raise OrderValidationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _flag(value: Any, name: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise OrderValidationError(f"{name} must be True or False, got {value!r}")


def _client_id(value: Any, name: str) -> Any:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise OrderValidationError(
            f"{name} must be 1 to 36 characters of A-Z a-z 0-9 . : / _ -, got {value!r}"
        )
    return value


_TIME = _int_in(0, None)
_ID = _int_in(1, None)
_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "symbol": _text,
    "pair": _text,
    "interval": _one_of(_INTERVALS),
    "contractType": _one_of(_CONTRACT_TYPES),
    "marginType": _one_of(_MARGIN_TYPES),
    "leverage": _int_in(1, 125),
    "dualSidePosition": _flag,
    "multiAssetsMargin": _flag,
    "algoId": _ID,
    "clientAlgoId": _client_id,
    "algoType": _one_of(("CONDITIONAL",)),
    "orderId": _ID,
    "fromId": _int_in(0, None),
    "startTime": _TIME,
    "endTime": _TIME,
    "page": _ID,
    "incomeType": _text,
    "recvWindow": _int_in(1, None),
}
#: call -> (required, optional, {name: limit bound}); signed calls also take recvWindow.
_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], Optional[int]]] = {
    "get_open_orders": ((), ("symbol",), None),
    "get_open_algo_orders": ((), ("symbol", "algoType", "algoId"), None),
    "get_algo_order": ((), ("algoId", "clientAlgoId"), None),
    "cancel_all_open_orders": (("symbol",), (), None),
    "cancel_all_algo_orders": (("symbol",), (), None),
    "change_leverage": (("symbol", "leverage"), (), None),
    "change_margin_type": (("symbol", "marginType"), (), None),
    "get_position_mode": ((), (), None),
    "change_position_mode": (("dualSidePosition",), (), None),
    "get_multi_assets_mode": ((), (), None),
    "change_multi_assets_mode": (("multiAssetsMargin",), (), None),
    "get_klines": (("symbol", "interval"), ("startTime", "endTime", "limit"), 1500),
    "get_continuous_klines": (
        ("pair", "contractType", "interval"),
        ("startTime", "endTime", "limit"),
        1500,
    ),
    "get_mark_price": ((), ("symbol",), None),
    "get_funding_rate_history": ((), ("symbol", "startTime", "endTime", "limit"), 1000),
    "get_account_trades": (
        ("symbol",),
        ("orderId", "startTime", "endTime", "fromId", "limit"),
        1000,
    ),
    "get_income_history": (
        (),
        ("symbol", "incomeType", "startTime", "endTime", "page", "limit"),
        1000,
    ),
    "get_commission_rate": (("symbol",), (), None),
    "get_leverage_brackets": ((), ("symbol",), None),
    "get_server_time": ((), (), None),
}


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """
    ``params`` of REST call ``name`` checked against its rule (``None`` = not given).

    Raises:
        OrderValidationError: a missing, unknown or bad parameter, named.
    """
    required, optional, max_limit = _RULES[name]
    known = set(required) | set(optional)
    if CALLS[name].security != "NONE":
        known.add("recvWindow")
    if max_limit is not None:
        known.add("limit")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise OrderValidationError(f"unknown parameter {key!r} for {name}{hint}")
        if key == "limit":
            out[key] = _int_in(1, max_limit)(value, key)
        else:
            out[key] = _CHECKS[key](value, key)
    for key in required:
        if key not in out:
            raise OrderValidationError(f"{key} is required for {name}")
    if name == "get_algo_order" and not out:
        raise OrderValidationError("algoId or clientAlgoId is required for get_algo_order")
    return out


class RestCalls:
    """
    The REST half of ``WebSocketService``. Usable between ``connect()`` and ``close()``
    (``ConnectionError`` otherwise), whatever the state of the WebSocket: a script can still
    cancel everything over REST when the WebSocket link has failed.

    Every method takes ``wait_for_response=True`` (block and return the reply dict) or
    ``False`` (a ``concurrent.futures.Future`` at once, done-callbacks on bfsync's dispatcher
    thread). Keywords are Binance's (``startTime``, ``limit``, ...); ``None`` counts as not
    given. With ``enable_validation`` bad keywords raise ``OrderValidationError`` in the
    caller's thread; without it unknown keywords are sent as they are.

    Blocking calls wait at most ``connection_timeout`` to connect plus ``request_timeout``
    per read (twice for a read sent again after a connection error).

    Raises (every call):
        ConnectionError: not connected, closed, or the server could not be reached; also when
            ``ws_url`` is not Binance's and ``rest_url`` still is (the message names it).
        RequestError: the server refused (``code``, ``msg``, ``status``, ``response``);
            ``RateLimitError`` (429 / 418, ``retry_after``); ``RequestTimeoutError``.
        OrderStatusUnknownError: a call that changes state may or may not have been done
            (timeout once sent, HTTP 5xx, -1006 / -1007); it is never sent again.
    """

    # Set by WebSocketService.__init__; declared here for the type checker.
    config: Config
    enable_validation: bool
    _signer: Signer
    _api_key: str
    _limiter: Optional[RateLimiter]
    _dispatcher: Dispatcher

    _rest: Optional[RestTransport] = None
    _rest_allowed = False
    _rest_lock = threading.Lock()  # guards creating and dropping transports (all services)

    # Trade

    def get_open_orders(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Reply:
        """Open orders (``GET /fapi/v1/openOrders``) of ``symbol``, or all (weight 40)."""
        return self._rest_call("get_open_orders", {"symbol": symbol}, wait_for_response)

    def get_open_algo_orders(
        self, symbol: Optional[str] = None, wait_for_response: bool = True, **kwargs: Any
    ) -> Reply:
        """Open conditional orders (``GET /fapi/v1/openAlgoOrders``); also algoType, algoId."""
        params = {"symbol": symbol, **kwargs}
        return self._rest_call("get_open_algo_orders", params, wait_for_response)

    def get_algo_order(
        self,
        algoId: Optional[int] = None,
        clientAlgoId: Optional[str] = None,
        wait_for_response: bool = True,
    ) -> Reply:
        """One conditional order (``GET /fapi/v1/algoOrder``) by ``algoId`` or ``clientAlgoId``."""
        params = {"algoId": algoId, "clientAlgoId": clientAlgoId}
        return self._rest_call("get_algo_order", params, wait_for_response)

    def cancel_all_open_orders(self, symbol: str, wait_for_response: bool = True) -> Reply:
        """Cancel every open order of ``symbol`` (``DELETE /fapi/v1/allOpenOrders``)."""
        return self._rest_call("cancel_all_open_orders", {"symbol": symbol}, wait_for_response)

    def cancel_all_algo_orders(self, symbol: str, wait_for_response: bool = True) -> Reply:
        """Cancel every open conditional order of ``symbol`` (``DELETE .../algoOpenOrders``)."""
        return self._rest_call("cancel_all_algo_orders", {"symbol": symbol}, wait_for_response)

    def change_leverage(self, symbol: str, leverage: int, wait_for_response: bool = True) -> Reply:
        """Set ``symbol``'s initial leverage, 1 to 125 (``POST /fapi/v1/leverage``)."""
        params = {"symbol": symbol, "leverage": leverage}
        return self._rest_call("change_leverage", params, wait_for_response)

    def change_margin_type(
        self,
        symbol: str,
        marginType: str,
        wait_for_response: bool = True,
    ) -> Reply:
        """``ISOLATED`` or ``CROSSED`` margin for ``symbol`` (``POST /fapi/v1/marginType``)."""
        params = {"symbol": symbol, "marginType": marginType}
        return self._rest_call("change_margin_type", params, wait_for_response)

    def get_position_mode(self, wait_for_response: bool = True) -> Reply:
        """``{"dualSidePosition": bool}`` (``GET /fapi/v1/positionSide/dual``, weight 30)."""
        return self._rest_call("get_position_mode", {}, wait_for_response)

    def change_position_mode(
        self,
        dualSidePosition: bool,
        wait_for_response: bool = True,
    ) -> Reply:
        """Hedge mode (``True``) or one-way (``False``) on every symbol (``POST .../dual``)."""
        params = {"dualSidePosition": dualSidePosition}
        return self._rest_call("change_position_mode", params, wait_for_response)

    def get_multi_assets_mode(self, wait_for_response: bool = True) -> Reply:
        """``{"multiAssetsMargin": bool}`` (``GET /fapi/v1/multiAssetsMargin``, weight 30)."""
        return self._rest_call("get_multi_assets_mode", {}, wait_for_response)

    def change_multi_assets_mode(
        self,
        multiAssetsMargin: bool,
        wait_for_response: bool = True,
    ) -> Reply:
        """Multi-assets mode on or off (``POST /fapi/v1/multiAssetsMargin``)."""
        params = {"multiAssetsMargin": multiAssetsMargin}
        return self._rest_call("change_multi_assets_mode", params, wait_for_response)

    # Market data

    def get_klines(
        self, symbol: str, interval: str, wait_for_response: bool = True, **kwargs: Any
    ) -> Reply:
        """Candles (``GET /fapi/v1/klines``): startTime, endTime, limit (default 500)."""
        params = {"symbol": symbol, "interval": interval, **kwargs}
        return self._rest_call("get_klines", params, wait_for_response)

    def get_continuous_klines(
        self,
        pair: str,
        contractType: str,
        interval: str,
        wait_for_response: bool = True,
        **kwargs: Any,
    ) -> Reply:
        """Candles of a contract type (``GET /fapi/v1/continuousKlines``): as ``get_klines``."""
        params = {"pair": pair, "contractType": contractType, "interval": interval, **kwargs}
        return self._rest_call("get_continuous_klines", params, wait_for_response)

    def get_mark_price(self, symbol: Optional[str] = None, wait_for_response: bool = True) -> Reply:
        """Mark price and funding rate (``GET /fapi/v1/premiumIndex``) of one or all symbols."""
        return self._rest_call("get_mark_price", {"symbol": symbol}, wait_for_response)

    def get_funding_rate_history(self, wait_for_response: bool = True, **kwargs: Any) -> Reply:
        """Past funding rates (``GET /fapi/v1/fundingRate``): symbol, startTime, endTime, limit."""
        return self._rest_call("get_funding_rate_history", kwargs, wait_for_response)

    def get_server_time(self, wait_for_response: bool = True) -> Reply:
        """``{"serverTime": ms}`` (``GET /fapi/v1/time``)."""
        return self._rest_call("get_server_time", {}, wait_for_response)

    # Account

    def get_account_trades(
        self, symbol: str, wait_for_response: bool = True, **kwargs: Any
    ) -> Reply:
        """Your trades (``GET /fapi/v1/userTrades``): orderId, startTime, endTime, fromId, limit."""
        params = {"symbol": symbol, **kwargs}
        return self._rest_call("get_account_trades", params, wait_for_response)

    def get_income_history(self, wait_for_response: bool = True, **kwargs: Any) -> Reply:
        """Income (``GET /fapi/v1/income``, weight 30): symbol, incomeType, times, page, limit."""
        return self._rest_call("get_income_history", kwargs, wait_for_response)

    def get_commission_rate(self, symbol: str, wait_for_response: bool = True) -> Reply:
        """Maker and taker rates of ``symbol`` (``GET /fapi/v1/commissionRate``, weight 20)."""
        return self._rest_call("get_commission_rate", {"symbol": symbol}, wait_for_response)

    def get_leverage_brackets(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Reply:
        """Notional brackets (``GET /fapi/v1/leverageBracket``) of ``symbol`` or all."""
        return self._rest_call("get_leverage_brackets", {"symbol": symbol}, wait_for_response)

    # Orders whose outcome is unknown

    def resolve_unknown(
        self,
        exc: BaseException,
        symbol: Optional[str] = None,
        wait_for_response: bool = True,
    ) -> Reply:
        """
        What the exchange knows of the order behind an ``OrderStatusUnknownError``.

        Plain orders are looked up with ws-fapi ``order.status`` by ``origClientOrderId``
        (this needs the symbol: bfsync remembers it for the last 1024 orders it sent, or
        give ``symbol``); conditional orders with ``GET /fapi/v1/algoOrder`` by
        ``clientAlgoId``. Returns that reply (``reply["result"]`` is the order). Nothing is
        ever sent again.

        Raises:
            OrderNotFoundError: the exchange has no order with that client id (not placed; or
                still on its way, if sent less than ``recvWindow`` ago).
            ValueError: ``exc`` is not an ``OrderStatusUnknownError`` with a client order id,
                or the symbol of a plain order is unknown (give ``symbol``).
            RequestError, ConnectionError: the lookup itself failed.
        """
        lookup = self._lookup_for(exc, symbol)
        if wait_for_response:
            return lookup()
        return self._rest_transport().submit(lookup)

    # Private methods

    def _rest_open(self) -> None:
        """Allow REST calls (``connect()``)."""
        self._rest_allowed = True

    def _rest_close(self) -> None:
        """Refuse REST calls and stop the REST threads (``close()``); bounded, idempotent."""
        with self._rest_lock:
            self._rest_allowed = False
            transport, self._rest = self._rest, None
        if transport is not None:
            transport.close()

    def _rest_transport(self) -> RestTransport:
        if not self._rest_allowed:
            raise ConnectionError("the service is not connected; call connect() first")
        transport = self._rest
        if transport is not None:
            return transport
        base_url = rest_base_url(self.config)
        from ._resthttp import RestTransport

        with self._rest_lock:
            if self._rest is None:
                self._rest = RestTransport(
                    self.config,
                    self._signer,
                    self._api_key,
                    base_url,
                    lambda: float(getattr(self, "clock_offset_ms", 0.0)),
                    self._limiter,
                    self._dispatcher,
                )
            return self._rest

    def _rest_call(
        self,
        name: str,
        params: Mapping[str, Any],
        wait_for_response: bool,
        client_order_id: Optional[str] = None,
    ) -> Reply:
        if self.enable_validation:
            params = check_params(name, params)
        wire = format_params(params)
        transport = self._rest_transport()
        call = CALLS[name]
        if not wait_for_response:
            return transport.submit(lambda: transport.request(call, wire, client_order_id))
        return transport.request(call, wire, client_order_id)

    def _note_order(self, method: str, params: Mapping[str, Any], client_order_id: str) -> None:
        """Remember an order's method and symbol by client id, for ``resolve_unknown``."""
        notes: OrderedDict[str, tuple[str, Optional[str]]]
        notes = self.__dict__.setdefault("_order_notes", OrderedDict())
        symbol = params.get("symbol")
        with self._rest_lock:
            notes[client_order_id] = (method, symbol if isinstance(symbol, str) else None)
            notes.move_to_end(client_order_id)
            while len(notes) > _NOTES_KEPT:
                notes.popitem(last=False)

    def _lookup_for(self, exc: BaseException, symbol: Optional[str]) -> Callable[[], Any]:
        if not isinstance(exc, OrderStatusUnknownError):
            raise ValueError(
                f"exc must be an OrderStatusUnknownError, got {type(exc).__name__}: {exc}"
            )
        client_id = exc.client_order_id
        if not client_id:
            raise ValueError(
                "exc has no client_order_id, so there is nothing to look up "
                "(a cancel-all or settings call: check get_open_orders() / the settings)"
            )
        notes = self.__dict__.get("_order_notes") or {}
        with self._rest_lock:
            noted = notes.get(client_id)
        method = getattr(exc, "method", None) or (noted[0] if noted else None)
        if method is None:
            head = str(exc).split(":", 1)[0]
            method = head if head in _ALGO_METHODS + _ORDER_METHODS else None
        symbol = symbol or getattr(exc, "symbol", None) or (noted[1] if noted else None)
        if method in _ALGO_METHODS:
            return lambda: self._find_algo(client_id)
        if method is not None and method not in _ORDER_METHODS:
            raise ValueError(f"exc comes from {method}, which is not an order")
        if not symbol:
            raise ValueError(
                f"the symbol of order {client_id!r} is unknown: call resolve_unknown(exc, "
                "symbol=...)"
            )
        return lambda: self._find_order(client_id, symbol)

    def _find_algo(self, client_id: str) -> Any:
        try:
            return self.get_algo_order(clientAlgoId=client_id)
        except RequestError as exc:
            found = _not_found(exc, client_id, "GET /fapi/v1/algoOrder")
            if found is exc:
                raise
            raise found from None

    def _find_order(self, client_id: str, symbol: str) -> Any:
        get_status: Any = getattr(self, "get_order_status")  # noqa: B009 - WebSocketService's
        try:
            return get_status(symbol=symbol, origClientOrderId=client_id)
        except RequestError as exc:
            found = _not_found(exc, client_id, "order.status")
            if found is exc:
                raise
            raise found from None


def _not_found(exc: RequestError, client_id: str, where: str) -> RequestError:
    if exc.code not in _NOT_FOUND_CODES:
        return exc
    return OrderNotFoundError(
        f"{where}: the exchange has no order with client id {client_id!r} ({exc.code}: "
        f"{exc.msg}); it was not placed, or is still on its way if sent less than recvWindow "
        "ago",
        client_order_id=client_id,
        code=exc.code,
        msg=exc.msg,
        status=exc.status,
        response=exc.response,
    )
