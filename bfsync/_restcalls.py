"""
The REST calls of ``WebSocketService`` (a mixin): what ws-fapi lacks, in the same style.

Each public method is one short line over ``_rest_call``, which checks the keywords (with
``enable_validation``), puts numbers and booleans in wire form, and sends the call through
the service's ``RestTransport`` (``_resthttp.py``): blocking in the caller's thread, or on a
``bfsync-rest-N`` thread with ``wait_for_response=False``. The table of endpoints, weights and
signing rules is ``rest.py``; ``docs/rest.md`` says where each one comes from.

Every call returns a frame-like dict ``{"status", "result", "rateLimits"}`` (or a
``concurrent.futures.Future`` of it), so ``reply["result"]`` reads as for ws-fapi calls. The
overloads type it as ``bfsync.types.ReplyFrame[...]`` of the call's result, and the ``**kwargs``
through ``Unpack[...]`` of a TypedDict of ``bfsync.types``; they change nothing at run time.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Union, cast, overload

from ._numbers import integer_of
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
    from concurrent.futures import Future

    from typing_extensions import Unpack

    from ._dispatch import Dispatcher
    from ._resthttp import RestTransport
    from .config import Config
    from .limits import RateLimiter
    from .signing import Signer
    from .types import (
        AccountTrade,
        AccountTradesParams,
        AlgoOrder,
        CodeMessage,
        CommissionRate,
        ContractType,
        FundingRate,
        FundingRateParams,
        Income,
        IncomeParams,
        Kline,
        KlineInterval,
        KlineParams,
        Leverage,
        LeverageBrackets,
        MarginType,
        MarkPrice,
        MultiAssetsMode,
        OpenAlgoOrdersParams,
        Order,
        PositionMode,
        ReplyFrame,
        ReplyOrFuture,
        ServerTime,
    )

__all__ = ["RestCalls"]

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
        # Whole numbers of any type (numpy ints, Excel's whole floats), as on ws-fapi.
        number = integer_of(value)
        if number is None:
            raise OrderValidationError(f"{name} must be a whole number, got {value!r}")
        if number < low or (high is not None and number > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise OrderValidationError(f"{name} must be {bound}, got {number}")
        return number

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

    Every method takes ``wait_for_response=True`` (block and return the reply dict, typed
    ``ReplyFrame[...]`` of the call's result) or ``False`` (a ``concurrent.futures.Future`` of
    it at once, done-callbacks on bfsync's dispatcher thread). Keywords are Binance's
    (``startTime``, ``limit``, ...); ``None`` counts as not given. With ``enable_validation``
    bad keywords raise ``OrderValidationError`` in the caller's thread; without it unknown
    keywords are sent as they are.

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

    @overload
    def get_open_orders(
        self, symbol: Optional[str] = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[Order]]: ...
    @overload
    def get_open_orders(
        self, symbol: Optional[str] = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[Order]]]: ...
    @overload
    def get_open_orders(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> ReplyOrFuture[list[Order]]: ...
    def get_open_orders(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> ReplyOrFuture[list[Order]]:
        """
        Open orders of ``symbol``, or of every symbol (``GET /fapi/v1/openOrders``, weight 1;
        40 without a symbol).

        Returns:
            ``ReplyFrame[list[Order]]`` (:class:`~bfsync.types.Order`, without ``cumQty``);
            with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_open_orders", {"symbol": symbol}, wait_for_response)

    @overload
    def get_open_algo_orders(
        self,
        symbol: Optional[str] = ...,
        wait_for_response: Literal[True] = ...,
        **kwargs: Unpack[OpenAlgoOrdersParams],
    ) -> ReplyFrame[list[AlgoOrder]]: ...
    @overload
    def get_open_algo_orders(
        self,
        symbol: Optional[str] = ...,
        *,
        wait_for_response: Literal[False],
        **kwargs: Unpack[OpenAlgoOrdersParams],
    ) -> Future[ReplyFrame[list[AlgoOrder]]]: ...
    @overload
    def get_open_algo_orders(
        self,
        symbol: Optional[str] = ...,
        wait_for_response: bool = ...,
        **kwargs: Unpack[OpenAlgoOrdersParams],
    ) -> ReplyOrFuture[list[AlgoOrder]]: ...
    def get_open_algo_orders(
        self,
        symbol: Optional[str] = None,
        wait_for_response: bool = True,
        **kwargs: Unpack[OpenAlgoOrdersParams],
    ) -> ReplyOrFuture[list[AlgoOrder]]:
        """
        Open conditional orders (``GET /fapi/v1/openAlgoOrders``, weight 1; 40 without a
        symbol).

        Optional keywords (:class:`~bfsync.types.OpenAlgoOrdersParams`): ``algoType``
        (``"CONDITIONAL"``), ``algoId``, ``recvWindow``.

        Returns:
            ``ReplyFrame[list[AlgoOrder]]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        params = {"symbol": symbol, **kwargs}
        return self._rest_call("get_open_algo_orders", params, wait_for_response)

    @overload
    def get_algo_order(
        self,
        algoId: Optional[int] = ...,
        clientAlgoId: Optional[str] = ...,
        wait_for_response: Literal[True] = ...,
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def get_algo_order(
        self,
        algoId: Optional[int] = ...,
        clientAlgoId: Optional[str] = ...,
        *,
        wait_for_response: Literal[False],
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def get_algo_order(
        self,
        algoId: Optional[int] = ...,
        clientAlgoId: Optional[str] = ...,
        wait_for_response: bool = ...,
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def get_algo_order(
        self,
        algoId: Optional[int] = None,
        clientAlgoId: Optional[str] = None,
        wait_for_response: bool = True,
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        One conditional order (``GET /fapi/v1/algoOrder``, weight 1) by ``algoId`` or
        ``clientAlgoId`` (one of them is required).

        Returns:
            ``ReplyFrame[AlgoOrder]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            RequestError: -2013 when there is no such order (also one older than Binance
                keeps); otherwise as every REST call (see :class:`RestCalls`).
        """
        params = {"algoId": algoId, "clientAlgoId": clientAlgoId}
        return self._rest_call("get_algo_order", params, wait_for_response)

    @overload
    def cancel_all_open_orders(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CodeMessage]: ...
    @overload
    def cancel_all_open_orders(
        self, symbol: str, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CodeMessage]]: ...
    @overload
    def cancel_all_open_orders(
        self, symbol: str, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CodeMessage]: ...
    def cancel_all_open_orders(
        self, symbol: str, wait_for_response: bool = True
    ) -> ReplyOrFuture[CodeMessage]:
        """
        Cancel every open plain order of ``symbol`` (``DELETE /fapi/v1/allOpenOrders``).

        Returns:
            ``ReplyFrame[CodeMessage]`` (``{"code": 200, "msg": ...}``); with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            OrderStatusUnknownError: sent, but whether it was done is unknown (never sent
                again); otherwise as every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("cancel_all_open_orders", {"symbol": symbol}, wait_for_response)

    @overload
    def cancel_all_algo_orders(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CodeMessage]: ...
    @overload
    def cancel_all_algo_orders(
        self, symbol: str, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CodeMessage]]: ...
    @overload
    def cancel_all_algo_orders(
        self, symbol: str, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CodeMessage]: ...
    def cancel_all_algo_orders(
        self, symbol: str, wait_for_response: bool = True
    ) -> ReplyOrFuture[CodeMessage]:
        """
        Cancel every open conditional order of ``symbol`` (``DELETE /fapi/v1/algoOpenOrders``).

        Returns:
            ``ReplyFrame[CodeMessage]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            OrderStatusUnknownError: sent, but whether it was done is unknown (never sent
                again); otherwise as every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("cancel_all_algo_orders", {"symbol": symbol}, wait_for_response)

    @overload
    def change_leverage(
        self, symbol: str, leverage: int, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[Leverage]: ...
    @overload
    def change_leverage(
        self, symbol: str, leverage: int, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[Leverage]]: ...
    @overload
    def change_leverage(
        self, symbol: str, leverage: int, wait_for_response: bool = ...
    ) -> ReplyOrFuture[Leverage]: ...
    def change_leverage(
        self, symbol: str, leverage: int, wait_for_response: bool = True
    ) -> ReplyOrFuture[Leverage]:
        """
        Set ``symbol``'s initial leverage, 1 to 125 (``POST /fapi/v1/leverage``).

        Returns:
            ``ReplyFrame[Leverage]`` (``leverage``, ``maxNotionalValue``, ``symbol``); with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            OrderValidationError: (with validation) ``leverage`` not an int from 1 to 125.
            OrderStatusUnknownError: sent, but whether it was done is unknown; otherwise as
                every REST call (see :class:`RestCalls`).
        """
        params = {"symbol": symbol, "leverage": leverage}
        return self._rest_call("change_leverage", params, wait_for_response)

    @overload
    def change_margin_type(
        self, symbol: str, marginType: MarginType, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CodeMessage]: ...
    @overload
    def change_margin_type(
        self, symbol: str, marginType: MarginType, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CodeMessage]]: ...
    @overload
    def change_margin_type(
        self, symbol: str, marginType: MarginType, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CodeMessage]: ...
    def change_margin_type(
        self,
        symbol: str,
        marginType: MarginType,
        wait_for_response: bool = True,
    ) -> ReplyOrFuture[CodeMessage]:
        """
        ``ISOLATED`` or ``CROSSED`` margin for ``symbol`` (``POST /fapi/v1/marginType``).

        Returns:
            ``ReplyFrame[CodeMessage]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            RequestError: -4046 when it is already so; -4047 / -4048 with open orders or a
                position. OrderStatusUnknownError: sent, outcome unknown. Otherwise as every
                REST call (see :class:`RestCalls`).
        """
        params = {"symbol": symbol, "marginType": marginType}
        return self._rest_call("change_margin_type", params, wait_for_response)

    @overload
    def get_position_mode(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[PositionMode]: ...
    @overload
    def get_position_mode(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[PositionMode]]: ...
    @overload
    def get_position_mode(self, wait_for_response: bool = ...) -> ReplyOrFuture[PositionMode]: ...
    def get_position_mode(self, wait_for_response: bool = True) -> ReplyOrFuture[PositionMode]:
        """
        Hedge or one-way mode (``GET /fapi/v1/positionSide/dual``, weight 30).

        Returns:
            ``ReplyFrame[PositionMode]`` (``{"dualSidePosition": bool}``); with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_position_mode", {}, wait_for_response)

    @overload
    def change_position_mode(
        self, dualSidePosition: bool, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CodeMessage]: ...
    @overload
    def change_position_mode(
        self, dualSidePosition: bool, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CodeMessage]]: ...
    @overload
    def change_position_mode(
        self, dualSidePosition: bool, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CodeMessage]: ...
    def change_position_mode(
        self,
        dualSidePosition: bool,
        wait_for_response: bool = True,
    ) -> ReplyOrFuture[CodeMessage]:
        """
        Hedge mode (``True``) or one-way (``False``) on every symbol
        (``POST /fapi/v1/positionSide/dual``).

        Returns:
            ``ReplyFrame[CodeMessage]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            RequestError: -4059 when it is already so; -4067 / -4068 with open orders or a
                position. OrderStatusUnknownError: sent, outcome unknown. Otherwise as every
                REST call (see :class:`RestCalls`).
        """
        params = {"dualSidePosition": dualSidePosition}
        return self._rest_call("change_position_mode", params, wait_for_response)

    @overload
    def get_multi_assets_mode(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[MultiAssetsMode]: ...
    @overload
    def get_multi_assets_mode(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[MultiAssetsMode]]: ...
    @overload
    def get_multi_assets_mode(
        self, wait_for_response: bool = ...
    ) -> ReplyOrFuture[MultiAssetsMode]: ...
    def get_multi_assets_mode(
        self, wait_for_response: bool = True
    ) -> ReplyOrFuture[MultiAssetsMode]:
        """
        Multi-assets mode (``GET /fapi/v1/multiAssetsMargin``, weight 30).

        Returns:
            ``ReplyFrame[MultiAssetsMode]`` (``{"multiAssetsMargin": bool}``); with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_multi_assets_mode", {}, wait_for_response)

    @overload
    def change_multi_assets_mode(
        self, multiAssetsMargin: bool, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CodeMessage]: ...
    @overload
    def change_multi_assets_mode(
        self, multiAssetsMargin: bool, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CodeMessage]]: ...
    @overload
    def change_multi_assets_mode(
        self, multiAssetsMargin: bool, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CodeMessage]: ...
    def change_multi_assets_mode(
        self,
        multiAssetsMargin: bool,
        wait_for_response: bool = True,
    ) -> ReplyOrFuture[CodeMessage]:
        """
        Multi-assets mode on or off (``POST /fapi/v1/multiAssetsMargin``).

        Returns:
            ``ReplyFrame[CodeMessage]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            OrderStatusUnknownError: sent, outcome unknown; otherwise as every REST call (see
                :class:`RestCalls`).
        """
        params = {"multiAssetsMargin": multiAssetsMargin}
        return self._rest_call("change_multi_assets_mode", params, wait_for_response)

    # Market data

    @overload
    def get_klines(
        self,
        symbol: str,
        interval: KlineInterval,
        wait_for_response: Literal[True] = ...,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyFrame[list[Kline]]: ...
    @overload
    def get_klines(
        self,
        symbol: str,
        interval: KlineInterval,
        wait_for_response: Literal[False],
        **kwargs: Unpack[KlineParams],
    ) -> Future[ReplyFrame[list[Kline]]]: ...
    @overload
    def get_klines(
        self,
        symbol: str,
        interval: KlineInterval,
        wait_for_response: bool = ...,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyOrFuture[list[Kline]]: ...
    def get_klines(
        self,
        symbol: str,
        interval: KlineInterval,
        wait_for_response: bool = True,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyOrFuture[list[Kline]]:
        """
        Candles, oldest first (``GET /fapi/v1/klines``; weight by ``limit``: 1 to 10).

        Optional keywords (:class:`~bfsync.types.KlineParams`): ``startTime``, ``endTime``
        (ms), ``limit`` (1 to 1500, Binance's default 500).

        Returns:
            ``ReplyFrame[list[Kline]]``: each candle a JSON list, typed as the tuple
            :data:`~bfsync.types.Kline` (``candle[0]`` open time, ``candle[4]`` close as
            text); with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            OrderValidationError: (with validation) a bad ``interval`` or keyword, named.
            Otherwise as every REST call (see :class:`RestCalls`).
        """
        params = {"symbol": symbol, "interval": interval, **kwargs}
        return self._rest_call("get_klines", params, wait_for_response)

    @overload
    def get_continuous_klines(
        self,
        pair: str,
        contractType: ContractType,
        interval: KlineInterval,
        wait_for_response: Literal[True] = ...,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyFrame[list[Kline]]: ...
    @overload
    def get_continuous_klines(
        self,
        pair: str,
        contractType: ContractType,
        interval: KlineInterval,
        wait_for_response: Literal[False],
        **kwargs: Unpack[KlineParams],
    ) -> Future[ReplyFrame[list[Kline]]]: ...
    @overload
    def get_continuous_klines(
        self,
        pair: str,
        contractType: ContractType,
        interval: KlineInterval,
        wait_for_response: bool = ...,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyOrFuture[list[Kline]]: ...
    def get_continuous_klines(
        self,
        pair: str,
        contractType: ContractType,
        interval: KlineInterval,
        wait_for_response: bool = True,
        **kwargs: Unpack[KlineParams],
    ) -> ReplyOrFuture[list[Kline]]:
        """
        Candles of a contract type of ``pair`` (``GET /fapi/v1/continuousKlines``): keywords,
        weight and reply as :meth:`get_klines`.
        """
        params = {"pair": pair, "contractType": contractType, "interval": interval, **kwargs}
        return self._rest_call("get_continuous_klines", params, wait_for_response)

    @overload
    def get_mark_price(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[MarkPrice]: ...
    @overload
    def get_mark_price(
        self, symbol: None = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[MarkPrice]]: ...
    @overload
    def get_mark_price(
        self, symbol: str, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[MarkPrice]]: ...
    @overload
    def get_mark_price(
        self, symbol: None = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[MarkPrice]]]: ...
    @overload
    def get_mark_price(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> Union[ReplyOrFuture[MarkPrice], ReplyOrFuture[list[MarkPrice]]]: ...
    def get_mark_price(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Union[ReplyOrFuture[MarkPrice], ReplyOrFuture[list[MarkPrice]]]:
        """
        Mark price, index price and funding rate (``GET /fapi/v1/premiumIndex``) of
        ``symbol``, or of every symbol when ``None`` (weight 1; bfsync counts 10 without one).

        Returns:
            ``ReplyFrame[MarkPrice]``, or ``ReplyFrame[list[MarkPrice]]`` without a symbol; with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_mark_price", {"symbol": symbol}, wait_for_response)

    @overload
    def get_funding_rate_history(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[FundingRateParams]
    ) -> ReplyFrame[list[FundingRate]]: ...
    @overload
    def get_funding_rate_history(
        self, wait_for_response: Literal[False], **kwargs: Unpack[FundingRateParams]
    ) -> Future[ReplyFrame[list[FundingRate]]]: ...
    @overload
    def get_funding_rate_history(
        self, wait_for_response: bool = ..., **kwargs: Unpack[FundingRateParams]
    ) -> ReplyOrFuture[list[FundingRate]]: ...
    def get_funding_rate_history(
        self, wait_for_response: bool = True, **kwargs: Unpack[FundingRateParams]
    ) -> ReplyOrFuture[list[FundingRate]]:
        """
        Past funding rates, oldest first (``GET /fapi/v1/fundingRate``; Binance's own limit of
        500 per 5 minutes per IP).

        Optional keywords (:class:`~bfsync.types.FundingRateParams`): ``symbol``,
        ``startTime``, ``endTime`` (ms), ``limit`` (1 to 1000, Binance's default 100).

        Returns:
            ``ReplyFrame[list[FundingRate]]``; with ``wait_for_response=False`` a ``Future``
            of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_funding_rate_history", kwargs, wait_for_response)

    @overload
    def get_server_time(self, wait_for_response: Literal[True] = ...) -> ReplyFrame[ServerTime]: ...
    @overload
    def get_server_time(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[ServerTime]]: ...
    @overload
    def get_server_time(self, wait_for_response: bool = ...) -> ReplyOrFuture[ServerTime]: ...
    def get_server_time(self, wait_for_response: bool = True) -> ReplyOrFuture[ServerTime]:
        """
        The server's clock (``GET /fapi/v1/time``).

        Returns:
            ``ReplyFrame[ServerTime]`` (``{"serverTime": ms}``); with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_server_time", {}, wait_for_response)

    # Account

    @overload
    def get_account_trades(
        self,
        symbol: str,
        wait_for_response: Literal[True] = ...,
        **kwargs: Unpack[AccountTradesParams],
    ) -> ReplyFrame[list[AccountTrade]]: ...
    @overload
    def get_account_trades(
        self,
        symbol: str,
        wait_for_response: Literal[False],
        **kwargs: Unpack[AccountTradesParams],
    ) -> Future[ReplyFrame[list[AccountTrade]]]: ...
    @overload
    def get_account_trades(
        self,
        symbol: str,
        wait_for_response: bool = ...,
        **kwargs: Unpack[AccountTradesParams],
    ) -> ReplyOrFuture[list[AccountTrade]]: ...
    def get_account_trades(
        self,
        symbol: str,
        wait_for_response: bool = True,
        **kwargs: Unpack[AccountTradesParams],
    ) -> ReplyOrFuture[list[AccountTrade]]:
        """
        Your trades of ``symbol`` (``GET /fapi/v1/userTrades``, weight 5).

        Optional keywords (:class:`~bfsync.types.AccountTradesParams`): ``orderId``,
        ``startTime``, ``endTime`` (ms; the last 7 days without them), ``fromId``, ``limit``
        (1 to 1000, Binance's default 500), ``recvWindow``.

        Returns:
            ``ReplyFrame[list[AccountTrade]]``; with ``wait_for_response=False`` a ``Future``
            of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        params = {"symbol": symbol, **kwargs}
        return self._rest_call("get_account_trades", params, wait_for_response)

    @overload
    def get_income_history(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[IncomeParams]
    ) -> ReplyFrame[list[Income]]: ...
    @overload
    def get_income_history(
        self, wait_for_response: Literal[False], **kwargs: Unpack[IncomeParams]
    ) -> Future[ReplyFrame[list[Income]]]: ...
    @overload
    def get_income_history(
        self, wait_for_response: bool = ..., **kwargs: Unpack[IncomeParams]
    ) -> ReplyOrFuture[list[Income]]: ...
    def get_income_history(
        self, wait_for_response: bool = True, **kwargs: Unpack[IncomeParams]
    ) -> ReplyOrFuture[list[Income]]:
        """
        Realized PnL, funding fees, commissions, transfers... (``GET /fapi/v1/income``,
        weight 30; Binance keeps three months).

        Optional keywords (:class:`~bfsync.types.IncomeParams`): ``symbol``, ``incomeType``,
        ``startTime``, ``endTime`` (ms; the last 7 days without them), ``page``, ``limit``
        (1 to 1000, Binance's default 100), ``recvWindow``.

        Returns:
            ``ReplyFrame[list[Income]]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_income_history", kwargs, wait_for_response)

    @overload
    def get_commission_rate(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[CommissionRate]: ...
    @overload
    def get_commission_rate(
        self, symbol: str, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[CommissionRate]]: ...
    @overload
    def get_commission_rate(
        self, symbol: str, wait_for_response: bool = ...
    ) -> ReplyOrFuture[CommissionRate]: ...
    def get_commission_rate(
        self, symbol: str, wait_for_response: bool = True
    ) -> ReplyOrFuture[CommissionRate]:
        """
        Your maker and taker rates for ``symbol`` (``GET /fapi/v1/commissionRate``, weight 20).

        Returns:
            ``ReplyFrame[CommissionRate]``; with ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_commission_rate", {"symbol": symbol}, wait_for_response)

    @overload
    def get_leverage_brackets(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[LeverageBrackets]: ...
    @overload
    def get_leverage_brackets(
        self, symbol: None = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[LeverageBrackets]]: ...
    @overload
    def get_leverage_brackets(
        self, symbol: str, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[LeverageBrackets]]: ...
    @overload
    def get_leverage_brackets(
        self, symbol: None = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[LeverageBrackets]]]: ...
    @overload
    def get_leverage_brackets(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> Union[ReplyOrFuture[LeverageBrackets], ReplyOrFuture[list[LeverageBrackets]]]: ...
    def get_leverage_brackets(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Union[ReplyOrFuture[LeverageBrackets], ReplyOrFuture[list[LeverageBrackets]]]:
        """
        Notional and leverage brackets (``GET /fapi/v1/leverageBracket``) of ``symbol``, or of
        every symbol when ``None``.

        Returns:
            ``ReplyFrame[LeverageBrackets]`` (one object, as Binance documents for a request
            with a symbol), or ``ReplyFrame[list[LeverageBrackets]]`` without one; with
            ``wait_for_response=False`` a ``Future`` of it.

        Raises:
            As every REST call (see :class:`RestCalls`).
        """
        return self._rest_call("get_leverage_brackets", {"symbol": symbol}, wait_for_response)

    # Orders whose outcome is unknown

    @overload
    def resolve_unknown(
        self,
        exc: OrderStatusUnknownError,
        symbol: Optional[str] = ...,
        wait_for_response: Literal[True] = ...,
    ) -> Union[ReplyFrame[Order], ReplyFrame[AlgoOrder]]: ...
    @overload
    def resolve_unknown(
        self,
        exc: OrderStatusUnknownError,
        symbol: Optional[str] = ...,
        *,
        wait_for_response: Literal[False],
    ) -> Future[Union[ReplyFrame[Order], ReplyFrame[AlgoOrder]]]: ...
    @overload
    def resolve_unknown(
        self,
        exc: OrderStatusUnknownError,
        symbol: Optional[str] = ...,
        wait_for_response: bool = ...,
    ) -> Union[
        ReplyFrame[Order],
        ReplyFrame[AlgoOrder],
        Future[Union[ReplyFrame[Order], ReplyFrame[AlgoOrder]]],
    ]: ...
    def resolve_unknown(
        self,
        exc: OrderStatusUnknownError,
        symbol: Optional[str] = None,
        wait_for_response: bool = True,
    ) -> Union[
        ReplyFrame[Order],
        ReplyFrame[AlgoOrder],
        Future[Union[ReplyFrame[Order], ReplyFrame[AlgoOrder]]],
    ]:
        """
        What the exchange knows of the order behind an ``OrderStatusUnknownError``.

        Plain orders are looked up with ws-fapi ``order.status`` by ``origClientOrderId``
        (this needs the symbol: bfsync remembers it for the last 1024 orders it sent, or
        give ``symbol``); conditional orders with ``GET /fapi/v1/algoOrder`` by
        ``clientAlgoId``. Nothing is ever sent again.

        Returns:
            That reply: ``ReplyFrame[Order]`` (a plain order, by ws-fapi) or
            ``ReplyFrame[AlgoOrder]`` (a conditional order, by REST); with
            ``wait_for_response=False`` a ``Future`` of it. ``"algoId" in reply["result"]``
            tells them apart (and narrows the type for mypy).

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
    ) -> ReplyOrFuture[Any]:
        if self.enable_validation:
            params = check_params(name, params)
        wire = format_params(params)
        transport = self._rest_transport()
        call = CALLS[name]
        if not wait_for_response:
            return transport.submit(lambda: transport.request(call, wire, client_order_id))
        return cast("ReplyFrame[Any]", transport.request(call, wire, client_order_id))

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

    def _lookup_for(
        self, exc: BaseException, symbol: Optional[str]
    ) -> Callable[[], Union[ReplyFrame[Order], ReplyFrame[AlgoOrder]]]:
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

    def _find_algo(self, client_id: str) -> ReplyFrame[AlgoOrder]:
        try:
            return self.get_algo_order(clientAlgoId=client_id)
        except RequestError as exc:
            found = _not_found(exc, client_id, "GET /fapi/v1/algoOrder")
            if found is exc:
                raise
            raise found from None

    def _find_order(self, client_id: str, symbol: str) -> ReplyFrame[Order]:
        get_status: Any = getattr(self, "get_order_status")  # noqa: B009 - WebSocketService's
        try:
            return cast("ReplyFrame[Order]", get_status(symbol=symbol, origClientOrderId=client_id))
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
