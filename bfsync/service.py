"""
``WebSocketService``: every documented call of ``binance-futures-async``, synchronous.

Each public method is one short line over ``_call``: it builds the params in the caller's
thread (validating when asked, so ``OrderValidationError`` is raised there, before anything
is queued), hands a ``Request`` to the I/O thread and either waits for its future or
returns it.

Blocking calls (``wait_for_response=True``, the default) return the reply frame, a dict
``{"id", "status", "result", "rateLimits"?}``, or raise. They never wait longer than
``request_timeout``: the I/O thread fails the request at its deadline, and if it has not
(it is stuck), the caller's thread fails it itself, race-safely.
``wait_for_response=False`` returns a ``concurrent.futures.Future`` at once, which resolves
to the same dict or raises the same exception, by its deadline at the latest (the
process-wide watcher of ``_deadlines.py`` settles it if the I/O thread does not); its
done-callbacks run on bfsync's dispatcher thread, never on the I/O thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from concurrent.futures import Future
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Union, cast, overload

from . import _deadlines
from ._dispatch import DispatchedFuture, Dispatcher
from ._restcalls import RestCalls
from .calls import prepare_call
from .config import Config
from .exceptions import (
    AuthenticationError,
    ConnectionError,
    OrderValidationError,
)
from .orders import format_params, prepare_order
from .protocol import METHODS
from .signing import ED25519, load_signer
from .transport import Request, State, Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .filters import ExchangeFilters, FilterCache
    from .limits import RateLimiter
    from .types import (
        AccountStatus,
        AlgoOrder,
        AlgoOrderCancel,
        AlgoOrderLookupParams,
        Balance,
        Depth,
        Empty,
        IntegerLike,
        LimitOrderParams,
        ListenKey,
        MarketOrderParams,
        ModifyOrderParams,
        NumberLike,
        Order,
        OrderLookupParams,
        Position,
        RateLimit,
        ReplyFrame,
        ReplyOrFuture,
        SessionStatus,
        StopMarketOrderParams,
        StopOrderParams,
        TickerBook,
        TickerPrice,
        TrailingStopMarketOrderParams,
    )
    from .userstream import UserDataStream

__all__ = ["Reply", "WebSocketService"]

log = logging.getLogger("bfsync.service")

#: What a call returns: the reply frame (a dict), or with ``wait_for_response=False`` a
#: ``concurrent.futures.Future`` of it. Kept for old annotations; the calls are typed with
#: :mod:`bfsync.types` (``ReplyFrame[Order]``, ``Future[ReplyFrame[Order]]``, ...).
Reply = Any

_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_COUNTED_ORDERS = frozenset({"order.place", "algoOrder.place", "order.modify"})
_EXIT_WAIT = 0.2  # seconds a dropped service's threads get to stop at interpreter exit
_PREPARED = frozenset(
    {
        "order.place",
        "algoOrder.place",
        "order.modify",
        "order.cancel",
        "order.status",
        "algoOrder.cancel",
    }
)


class WebSocketService(RestCalls):
    """
    A connection to Binance's USD-M Futures WebSocket API, usable from any thread.

    Args:
        api_key: the Binance API key.
        private_key_path: a path to a PEM Ed25519 or RSA private key (optionally encrypted,
            see ``config["private_key_password"]``), or the HMAC secret itself.
        enable_validation: check order parameters before sending (``OrderValidationError``).
        config: settings merged over the defaults (see the README); an unknown key or a bad
            value raises ``ValueError`` naming it.

    Raises:
        AuthenticationError: ``private_key_path`` names a file that holds no usable key.
        ValueError: a bad ``config``.

    The constructor does not connect: call ``connect()``, or build the service with
    ``BinanceClient().websocket_service(...)``, which does.
    """

    def __init__(
        self,
        api_key: str,
        private_key_path: str,
        enable_validation: bool = False,
        config: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise AuthenticationError("api_key must be a non-empty string")
        self.config = Config.from_dict(config)
        self._signer = load_signer(private_key_path, self.config.private_key_password)
        self._api_key = api_key
        self.enable_validation = bool(enable_validation)
        self.on_state_change: Optional[Callable[[State], object]] = None
        self._dispatcher = Dispatcher("bfsync-dispatch")
        self._transport: Optional[Transport] = None
        self._connect_lock = threading.Lock()
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None
        self._filters: Optional[FilterCache] = None
        self._limiter: Optional[RateLimiter] = None
        if self.config.rate_limit is not None:
            from .limits import DEFAULT_BUDGETS, Budget, RateLimiter

            # Windows half a second longer than Binance's: a request delayed on the way must
            # not land in the server's next window with one too many.
            budgets = [Budget(b.kind, b.limit, b.window + 0.5) for b in DEFAULT_BUDGETS]
            self._limiter = RateLimiter(budgets, mode=self.config.rate_limit)

    def __repr__(self) -> str:
        return (
            f"<WebSocketService {self.state.value} {self.config.ws_url} "
            f"key_type={self.key_type} validation={self.enable_validation}>"
        )

    def __enter__(self) -> WebSocketService:
        if self.state in (State.CLOSED, State.FAILED):
            self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Connection methods

    @property
    def key_type(self) -> str:
        """``"HMAC"``, ``"RSA"`` or ``"Ed25519"``."""
        return self._signer.key_type

    @property
    def state(self) -> State:
        """The current ``State`` (a ``str`` enum: ``"connected"``, ``"logged_in"``, ...)."""
        transport = self._transport
        return transport.state if transport is not None else State.CLOSED

    @property
    def reconnects(self) -> int:
        """How many times the link was re-established since ``connect()``."""
        transport = self._transport
        return transport.reconnects if transport is not None else 0

    @property
    def rotations(self) -> int:
        """How many times the connection was replaced before the server's 24 h limit."""
        transport = self._transport
        return transport.rotations if transport is not None else 0

    @property
    def rate_limits(self) -> list[RateLimit]:
        """The ``rateLimits`` counters of the latest reply that had them."""
        transport = self._transport
        counters = list(transport.rate_limits) if transport is not None else []
        return cast("list[RateLimit]", counters)

    @property
    def clock_offset_ms(self) -> float:
        """The server's clock minus ours, in ms, as last measured (0 before a measurement)."""
        transport = self._transport
        return transport.clock.offset_ms if transport is not None else 0.0

    @property
    def last_logon_error(self) -> Optional[BaseException]:
        """Why logging on again after a reconnect failed last, or ``None``."""
        transport = self._transport
        return transport.last_logon_error if transport is not None else None

    @property
    def pending(self) -> int:
        """Requests queued or in flight."""
        transport = self._transport
        return transport.pending_count if transport is not None else 0

    @property
    def last_message_time(self) -> Optional[float]:
        """``time.monotonic()`` when the last frame arrived, or ``None``."""
        transport = self._transport
        return transport.last_message_time if transport is not None else None

    def connect(self) -> None:
        """
        Open the connection; a no-op when already connected.

        Blocks at most ``connection_timeout`` seconds (plus one).

        Raises:
            ConnectionError: the server could not be reached or refused the handshake.
        """
        with self._connect_lock:
            current = self._transport
            if current is not None and current.forked:
                # A child of os.fork(): the parent's threads are not here, its sockets are
                # not ours to close. Start afresh.
                current.close()
                current = self._transport = None
                self._dispatcher = Dispatcher("bfsync-dispatch")
            if current is not None and current.state not in (State.CLOSED, State.FAILED):
                return
            if current is not None:
                current.close()
            ref = weakref.ref(self)
            dispatcher = self._dispatcher

            def on_state(state: State) -> None:
                service = ref()
                callback = service.on_state_change if service is not None else None
                if log.isEnabledFor(logging.INFO):  # logged off the I/O thread
                    dispatcher.post(log.info, "state: %s", state)
                if callback is not None:
                    dispatcher.post(callback, state)

            self._rest_open()
            if self.config.validate_filters:
                self.load_exchange_info()
            transport = Transport(self.config, self._signer, self._api_key, on_state)
            limiter = self._limiter
            if limiter is not None:
                transport.on_rate_limits = lambda counters: limiter.observe(
                    counters, time.monotonic()
                )
            self._transport = transport
            if self._finalizer is not None:
                self._finalizer.detach()
            # A service dropped without close() still stops its threads.
            self._finalizer = weakref.finalize(self, _stop, transport, self._dispatcher)
            log.info("connecting to %s (%s key)", self.config.ws_url, self.key_type)
            transport.open()
            from ._registry import register

            register(self)  # for bfsync.close_all()
            if self.config.sync_clock:
                # Measure the server's clock before the first signed request is stamped.
                self._call("session.status", {}, True)
            log.info("connected to %s", self.config.ws_url)

    def close(self) -> None:
        """
        Close the connection and stop bfsync's threads; idempotent, from any thread.

        Requests still pending fail with ``ConnectionLostError`` (orders with
        ``OrderConnectionLostError``: outcome unknown). Returns within about six seconds
        even if the server does not answer. Afterwards every call raises ``ConnectionError``
        until ``connect()`` is called again.
        """
        from ._registry import unregister

        unregister(self)
        if self.state not in (State.CLOSED, State.FAILED):
            log.info("closing the connection to %s", self.config.ws_url)
        transport = self._transport
        if transport is not None:
            transport.close()
        self._rest_close()
        if self._finalizer is not None:
            self._finalizer.detach()
        self._dispatcher.close(1.0)
        _deadlines.sweep(join=1.0)

    @overload
    def login(self, wait_for_response: Literal[True] = ...) -> ReplyFrame[SessionStatus]: ...
    @overload
    def login(self, wait_for_response: Literal[False]) -> Future[ReplyFrame[SessionStatus]]: ...
    @overload
    def login(self, wait_for_response: bool = ...) -> ReplyOrFuture[SessionStatus]: ...
    def login(self, wait_for_response: bool = True) -> ReplyOrFuture[SessionStatus]:
        """
        Log the connection on with ``session.logon`` (Ed25519 keys only).

        Afterwards signed requests carry only ``timestamp``; after a reconnect bfsync logs on again
        by itself.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.SessionStatus`; with ``wait_for_response=False`` at once a
            ``Future`` of it (raising the same errors).

        Raises:
            AuthenticationError: the key is not Ed25519 (at once, in this thread, also with
                ``wait_for_response=False``), or ``LoginRejectedError`` (an
                ``AuthenticationError`` and ``RequestError``) if the server refuses.
            ConnectionError: the service is closed or failed.
        """
        if self._signer.key_type != ED25519:
            raise AuthenticationError(
                f"login() needs an Ed25519 key; this service signs with {self.key_type}, "
                "so every request is signed on its own instead"
            )
        return self._call("session.logon", {}, wait_for_response)

    @overload
    def logout(self, wait_for_response: Literal[True] = ...) -> ReplyFrame[SessionStatus]: ...
    @overload
    def logout(self, wait_for_response: Literal[False]) -> Future[ReplyFrame[SessionStatus]]: ...
    @overload
    def logout(self, wait_for_response: bool = ...) -> ReplyOrFuture[SessionStatus]: ...
    def logout(self, wait_for_response: bool = True) -> ReplyOrFuture[SessionStatus]:
        """
        End the session (``session.logout``); the connection stays open.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.SessionStatus` with ``apiKey`` None; with
            ``wait_for_response=False`` at once a ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("session.logout", {}, wait_for_response)

    # Market data methods

    @overload
    def get_depth(
        self,
        symbol: str,
        limit: Optional[IntegerLike] = ...,
        wait_for_response: Literal[True] = ...,
    ) -> ReplyFrame[Depth]: ...
    @overload
    def get_depth(
        self, symbol: str, limit: Optional[IntegerLike] = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[Depth]]: ...
    @overload
    def get_depth(
        self, symbol: str, limit: Optional[IntegerLike] = ..., wait_for_response: bool = ...
    ) -> ReplyOrFuture[Depth]: ...
    def get_depth(
        self, symbol: str, limit: Optional[IntegerLike] = None, wait_for_response: bool = True
    ) -> ReplyOrFuture[Depth]:
        """
        The order book (``depth``).

        ``limit``: the number of levels, one of 5, 10, 20, 50, 100, 500, 1000 (Binance's default is
        500); any int type (numpy's too). With validation a bad ``limit`` or an empty symbol raises
        ``OrderValidationError`` here.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.Depth` (``bids``/``asks`` as ``[price, qty]`` text, best first);
            with ``wait_for_response=False`` at once a ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        if self.enable_validation:
            _require_symbol(symbol)
            from ._numbers import integer_of

            if limit is not None and integer_of(limit) not in _DEPTH_LIMITS:
                raise OrderValidationError(
                    f"limit must be one of {', '.join(map(str, _DEPTH_LIMITS))}, got {limit!r}"
                )
        return self._call("depth", {"symbol": symbol, "limit": limit}, wait_for_response)

    @overload
    def get_ticker_price(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[TickerPrice]: ...
    @overload
    def get_ticker_price(
        self, symbol: None = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[TickerPrice]]: ...
    @overload
    def get_ticker_price(
        self, symbol: str, *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[TickerPrice]]: ...
    @overload
    def get_ticker_price(
        self, symbol: None = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[TickerPrice]]]: ...
    @overload
    def get_ticker_price(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> Union[ReplyOrFuture[TickerPrice], ReplyOrFuture[list[TickerPrice]]]: ...
    def get_ticker_price(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Union[ReplyOrFuture[TickerPrice], ReplyOrFuture[list[TickerPrice]]]:
        """
        The latest price (``ticker.price``) of ``symbol``, or of every symbol when ``None``.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.TickerPrice`, or a list of them when ``symbol`` is None; with
            ``wait_for_response=False`` at once a ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("ticker.price", {"symbol": symbol}, wait_for_response)

    @overload
    def get_ticker_book(
        self, symbol: str, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[TickerBook]: ...
    @overload
    def get_ticker_book(
        self, symbol: None = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[TickerBook]]: ...
    @overload
    def get_ticker_book(
        self, symbol: str, *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[TickerBook]]: ...
    @overload
    def get_ticker_book(
        self, symbol: None = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[TickerBook]]]: ...
    @overload
    def get_ticker_book(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> Union[ReplyOrFuture[TickerBook], ReplyOrFuture[list[TickerBook]]]: ...
    def get_ticker_book(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> Union[ReplyOrFuture[TickerBook], ReplyOrFuture[list[TickerBook]]]:
        """
        The best bid and ask (``ticker.book``) of ``symbol``, or of every symbol when ``None``.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.TickerBook`, or a list of them when ``symbol`` is None; with
            ``wait_for_response=False`` at once a ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("ticker.book", {"symbol": symbol}, wait_for_response)

    # Account methods

    @overload
    def get_position_info(
        self, symbol: Optional[str] = ..., wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[Position]]: ...
    @overload
    def get_position_info(
        self, symbol: Optional[str] = ..., *, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[Position]]]: ...
    @overload
    def get_position_info(
        self, symbol: Optional[str] = ..., wait_for_response: bool = ...
    ) -> ReplyOrFuture[list[Position]]: ...
    def get_position_info(
        self, symbol: Optional[str] = None, wait_for_response: bool = True
    ) -> ReplyOrFuture[list[Position]]:
        """
        Positions (``v2/account.position``) of ``symbol``, or all when ``None``.

        Only symbols with a position or open orders are listed.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a list of
            :class:`~bfsync.types.Position`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("v2/account.position", {"symbol": symbol}, wait_for_response)

    @overload
    def get_account_balance(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[list[Balance]]: ...
    @overload
    def get_account_balance(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[list[Balance]]]: ...
    @overload
    def get_account_balance(
        self, wait_for_response: bool = ...
    ) -> ReplyOrFuture[list[Balance]]: ...
    def get_account_balance(self, wait_for_response: bool = True) -> ReplyOrFuture[list[Balance]]:
        """
        Balances (``v2/account.balance``).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a list of
            :class:`~bfsync.types.Balance`; with ``wait_for_response=False`` at once a ``Future`` of
            it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("v2/account.balance", {}, wait_for_response)

    @overload
    def get_account_status(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[AccountStatus]: ...
    @overload
    def get_account_status(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[AccountStatus]]: ...
    @overload
    def get_account_status(self, wait_for_response: bool = ...) -> ReplyOrFuture[AccountStatus]: ...
    def get_account_status(self, wait_for_response: bool = True) -> ReplyOrFuture[AccountStatus]:
        """
        Account information (``v2/account.status``).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AccountStatus`; with ``wait_for_response=False`` at once a
            ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("v2/account.status", {}, wait_for_response)

    # Order methods: keyword names as Binance spells them (see orders.py for the rules)

    @overload
    def place_limit_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[LimitOrderParams]
    ) -> ReplyFrame[Order]: ...
    @overload
    def place_limit_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[LimitOrderParams]
    ) -> Future[ReplyFrame[Order]]: ...
    @overload
    def place_limit_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[LimitOrderParams]
    ) -> ReplyOrFuture[Order]: ...
    def place_limit_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[Order]:
        """
        Place a LIMIT order (``order.place``).

        Keywords, as Binance spells them: ``symbol``, ``side`` (BUY, SELL), ``quantity``,
        ``timeInForce`` (GTC, IOC, FOK, GTX, GTD, RPI), and ``price`` or ``priceMatch``;
        ``goodTillDate`` (ms) with GTD. Common options: ``positionSide``, ``newClientOrderId`` (else
        bfsync makes one), ``reduceOnly``, ``newOrderRespType``, ``selfTradePreventionMode``,
        ``recvWindow``. Numbers may be any real type (numpy's too) or numeric text; ``None`` counts
        as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.Order`; with ``wait_for_response=False`` at once a ``Future`` of
            it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("LIMIT", kwargs, wait_for_response)

    @overload
    def place_market_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[MarketOrderParams]
    ) -> ReplyFrame[Order]: ...
    @overload
    def place_market_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[MarketOrderParams]
    ) -> Future[ReplyFrame[Order]]: ...
    @overload
    def place_market_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[MarketOrderParams]
    ) -> ReplyOrFuture[Order]: ...
    def place_market_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[Order]:
        """
        Place a MARKET order (``order.place``).

        Keywords: ``symbol``, ``side``, ``quantity``. Common options: ``positionSide``,
        ``newClientOrderId`` (else bfsync makes one), ``reduceOnly``, ``newOrderRespType``,
        ``selfTradePreventionMode``, ``recvWindow``. Numbers may be any real type (numpy's too) or
        numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.Order`; with ``wait_for_response=False`` at once a ``Future`` of
            it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("MARKET", kwargs, wait_for_response)

    @overload
    def place_stop_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[StopOrderParams]
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def place_stop_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[StopOrderParams]
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def place_stop_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[StopOrderParams]
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def place_stop_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        Place a STOP (stop-limit) order (``algoOrder.place``).

        Keywords: ``symbol``, ``side``, ``quantity``, ``stopPrice``, and ``price`` or
        ``priceMatch``. Optional: ``timeInForce``, ``goodTillDate``, ``workingType`` (MARK_PRICE,
        CONTRACT_PRICE), ``priceProtect``. Sent as ``algoOrder.place`` (``algoType=CONDITIONAL``,
        ``stopPrice`` as ``triggerPrice``, ``newClientOrderId`` as ``clientAlgoId``; Binance's names
        are taken too). Common options: ``positionSide``, ``newClientOrderId`` (else bfsync makes
        one), ``reduceOnly``, ``newOrderRespType``, ``selfTradePreventionMode``, ``recvWindow``.
        Numbers may be any real type (numpy's too) or numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrder`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("STOP", kwargs, wait_for_response)

    @overload
    def place_stop_market_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[StopMarketOrderParams]
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def place_stop_market_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[StopMarketOrderParams]
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def place_stop_market_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[StopMarketOrderParams]
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def place_stop_market_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        Place a STOP_MARKET order (``algoOrder.place``).

        Keywords: ``symbol``, ``side``, ``stopPrice``, and ``quantity`` or ``closePosition=True``.
        Optional: ``timeInForce``, ``goodTillDate``, ``workingType`` (MARK_PRICE, CONTRACT_PRICE),
        ``priceProtect``. Sent as ``algoOrder.place`` (``algoType=CONDITIONAL``, ``stopPrice`` as
        ``triggerPrice``, ``newClientOrderId`` as ``clientAlgoId``; Binance's names are taken too).
        Common options: ``positionSide``, ``newClientOrderId`` (else bfsync makes one),
        ``reduceOnly``, ``newOrderRespType``, ``selfTradePreventionMode``, ``recvWindow``. Numbers
        may be any real type (numpy's too) or numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrder`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("STOP_MARKET", kwargs, wait_for_response)

    @overload
    def place_take_profit_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[StopOrderParams]
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def place_take_profit_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[StopOrderParams]
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def place_take_profit_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[StopOrderParams]
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def place_take_profit_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        Place a TAKE_PROFIT (take-profit limit) order (``algoOrder.place``).

        Keywords: ``symbol``, ``side``, ``quantity``, ``stopPrice``, and ``price`` or
        ``priceMatch``. Optional: ``timeInForce``, ``goodTillDate``, ``workingType`` (MARK_PRICE,
        CONTRACT_PRICE), ``priceProtect``. Sent as ``algoOrder.place`` (``algoType=CONDITIONAL``,
        ``stopPrice`` as ``triggerPrice``, ``newClientOrderId`` as ``clientAlgoId``; Binance's names
        are taken too). Common options: ``positionSide``, ``newClientOrderId`` (else bfsync makes
        one), ``reduceOnly``, ``newOrderRespType``, ``selfTradePreventionMode``, ``recvWindow``.
        Numbers may be any real type (numpy's too) or numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrder`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("TAKE_PROFIT", kwargs, wait_for_response)

    @overload
    def place_take_profit_market_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[StopMarketOrderParams]
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def place_take_profit_market_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[StopMarketOrderParams]
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def place_take_profit_market_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[StopMarketOrderParams]
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def place_take_profit_market_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        Place a TAKE_PROFIT_MARKET order (``algoOrder.place``).

        Keywords: ``symbol``, ``side``, ``stopPrice``, and ``quantity`` or ``closePosition=True``.
        Optional: ``timeInForce``, ``goodTillDate``, ``workingType`` (MARK_PRICE, CONTRACT_PRICE),
        ``priceProtect``. Sent as ``algoOrder.place`` (``algoType=CONDITIONAL``, ``stopPrice`` as
        ``triggerPrice``, ``newClientOrderId`` as ``clientAlgoId``; Binance's names are taken too).
        Common options: ``positionSide``, ``newClientOrderId`` (else bfsync makes one),
        ``reduceOnly``, ``newOrderRespType``, ``selfTradePreventionMode``, ``recvWindow``. Numbers
        may be any real type (numpy's too) or numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrder`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("TAKE_PROFIT_MARKET", kwargs, wait_for_response)

    @overload
    def place_trailing_stop_market_order(
        self,
        wait_for_response: Literal[True] = ...,
        **kwargs: Unpack[TrailingStopMarketOrderParams],
    ) -> ReplyFrame[AlgoOrder]: ...
    @overload
    def place_trailing_stop_market_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[TrailingStopMarketOrderParams]
    ) -> Future[ReplyFrame[AlgoOrder]]: ...
    @overload
    def place_trailing_stop_market_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[TrailingStopMarketOrderParams]
    ) -> ReplyOrFuture[AlgoOrder]: ...
    def place_trailing_stop_market_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrder]:
        """
        Place a TRAILING_STOP_MARKET order (``algoOrder.place``).

        Keywords: ``symbol``, ``side``, ``quantity``, ``callbackRate`` (0.1 to 10, percent),
        optional ``activationPrice`` (sent as ``activatePrice``). Optional: ``timeInForce``,
        ``goodTillDate``, ``workingType`` (MARK_PRICE, CONTRACT_PRICE). Sent as ``algoOrder.place``
        (``algoType=CONDITIONAL``, ``stopPrice`` as ``triggerPrice``, ``newClientOrderId`` as
        ``clientAlgoId``; Binance's names are taken too). Common options: ``positionSide``,
        ``newClientOrderId`` (else bfsync makes one), ``reduceOnly``, ``newOrderRespType``,
        ``selfTradePreventionMode``, ``recvWindow``. Numbers may be any real type (numpy's too) or
        numeric text; ``None`` counts as not given.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrder`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._place("TRAILING_STOP_MARKET", kwargs, wait_for_response)

    # More of ws-fapi: order management, session and user data stream

    @overload
    def modify_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[ModifyOrderParams]
    ) -> ReplyFrame[Order]: ...
    @overload
    def modify_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[ModifyOrderParams]
    ) -> Future[ReplyFrame[Order]]: ...
    @overload
    def modify_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[ModifyOrderParams]
    ) -> ReplyOrFuture[Order]: ...
    def modify_order(self, wait_for_response: bool = True, **kwargs: Any) -> ReplyOrFuture[Order]:
        """
        Change a LIMIT order (``order.modify``).

        Keywords: ``symbol``, ``side``, ``quantity``, ``price`` (or ``priceMatch``), and ``orderId``
        or ``origClientOrderId``; optional ``recvWindow``. An unanswered modify raises an "outcome
        unknown" error.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.Order`; with ``wait_for_response=False`` at once a ``Future`` of
            it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword
                (raised here, before anything is sent); also, without it, a value that cannot be
                sent at all (an object that is no number, text or bool).
            RequestError: the exchange refused the order (``code``, ``msg``).
            OrderStatusUnknownError: sent, but no answer came (the link dropped or
                ``request_timeout`` passed): look the order up by ``exc.client_order_id``.
            ConnectionError: the service is closed or failed.
        """
        return self._call(
            "order.modify",
            prepare_call("order.modify", kwargs, validate=self.enable_validation),
            wait_for_response,
            kwargs.get("origClientOrderId"),
        )

    @overload
    def cancel_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[OrderLookupParams]
    ) -> ReplyFrame[Order]: ...
    @overload
    def cancel_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[OrderLookupParams]
    ) -> Future[ReplyFrame[Order]]: ...
    @overload
    def cancel_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[OrderLookupParams]
    ) -> ReplyOrFuture[Order]: ...
    def cancel_order(self, wait_for_response: bool = True, **kwargs: Any) -> ReplyOrFuture[Order]:
        """
        Cancel an order (``order.cancel``).

        Keywords: ``symbol``, and ``orderId`` or ``origClientOrderId``; optional ``recvWindow``.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.Order` with ``status`` CANCELED; with ``wait_for_response=False``
            at once a ``Future`` of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword.
            RequestError: the server refused the request (``code``, ``msg``; ``-2011`` / ``-2013``
                for an unknown order); ``RequestTimeoutError`` when no reply came in time.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._prepared_call("order.cancel", kwargs, wait_for_response)

    @overload
    def get_order_status(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[OrderLookupParams]
    ) -> ReplyFrame[Order]: ...
    @overload
    def get_order_status(
        self, wait_for_response: Literal[False], **kwargs: Unpack[OrderLookupParams]
    ) -> Future[ReplyFrame[Order]]: ...
    @overload
    def get_order_status(
        self, wait_for_response: bool = ..., **kwargs: Unpack[OrderLookupParams]
    ) -> ReplyOrFuture[Order]: ...
    def get_order_status(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[Order]:
        """
        An order's state (``order.status``).

        Keywords: ``symbol``, and ``orderId`` or ``origClientOrderId``; optional ``recvWindow``.
        Conditional orders are not found here (Binance's rule).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.Order`; with ``wait_for_response=False`` at once a ``Future`` of
            it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword.
            RequestError: the server refused the request (``code``, ``msg``; ``-2011`` / ``-2013``
                for an unknown order); ``RequestTimeoutError`` when no reply came in time.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._prepared_call("order.status", kwargs, wait_for_response)

    @overload
    def cancel_algo_order(
        self, wait_for_response: Literal[True] = ..., **kwargs: Unpack[AlgoOrderLookupParams]
    ) -> ReplyFrame[AlgoOrderCancel]: ...
    @overload
    def cancel_algo_order(
        self, wait_for_response: Literal[False], **kwargs: Unpack[AlgoOrderLookupParams]
    ) -> Future[ReplyFrame[AlgoOrderCancel]]: ...
    @overload
    def cancel_algo_order(
        self, wait_for_response: bool = ..., **kwargs: Unpack[AlgoOrderLookupParams]
    ) -> ReplyOrFuture[AlgoOrderCancel]: ...
    def cancel_algo_order(
        self, wait_for_response: bool = True, **kwargs: Any
    ) -> ReplyOrFuture[AlgoOrderCancel]:
        """
        Cancel a conditional order (``algoOrder.cancel``).

        Keywords: ``algoId`` or ``clientAlgoId``; optional ``recvWindow``.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` an
            :class:`~bfsync.types.AlgoOrderCancel`; with ``wait_for_response=False`` at once a
            ``Future`` of it (raising the same errors).

        Raises:
            OrderValidationError: with ``enable_validation``, a bad, missing or unknown keyword.
            RequestError: the server refused the request (``code``, ``msg``; ``-2011`` / ``-2013``
                for an unknown order); ``RequestTimeoutError`` when no reply came in time.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._prepared_call("algoOrder.cancel", kwargs, wait_for_response)

    @overload
    def get_session_status(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[SessionStatus]: ...
    @overload
    def get_session_status(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[SessionStatus]]: ...
    @overload
    def get_session_status(self, wait_for_response: bool = ...) -> ReplyOrFuture[SessionStatus]: ...
    def get_session_status(self, wait_for_response: bool = True) -> ReplyOrFuture[SessionStatus]:
        """
        The connection's session (``session.status``).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.SessionStatus`; with ``wait_for_response=False`` at once a
            ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("session.status", {}, wait_for_response)

    @overload
    def start_user_data_stream(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[ListenKey]: ...
    @overload
    def start_user_data_stream(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[ListenKey]]: ...
    @overload
    def start_user_data_stream(self, wait_for_response: bool = ...) -> ReplyOrFuture[ListenKey]: ...
    def start_user_data_stream(self, wait_for_response: bool = True) -> ReplyOrFuture[ListenKey]:
        """
        A listenKey for the user data stream (``userDataStream.start``).

        If one is active it is returned and extended by 60 minutes.

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.ListenKey`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("userDataStream.start", {}, wait_for_response)

    @overload
    def ping_user_data_stream(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[ListenKey]: ...
    @overload
    def ping_user_data_stream(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[ListenKey]]: ...
    @overload
    def ping_user_data_stream(self, wait_for_response: bool = ...) -> ReplyOrFuture[ListenKey]: ...
    def ping_user_data_stream(self, wait_for_response: bool = True) -> ReplyOrFuture[ListenKey]:
        """
        Keep the listenKey alive for 60 more minutes (``userDataStream.ping``).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` a
            :class:`~bfsync.types.ListenKey`; with ``wait_for_response=False`` at once a ``Future``
            of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("userDataStream.ping", {}, wait_for_response)

    @overload
    def stop_user_data_stream(
        self, wait_for_response: Literal[True] = ...
    ) -> ReplyFrame[Empty]: ...
    @overload
    def stop_user_data_stream(
        self, wait_for_response: Literal[False]
    ) -> Future[ReplyFrame[Empty]]: ...
    @overload
    def stop_user_data_stream(self, wait_for_response: bool = ...) -> ReplyOrFuture[Empty]: ...
    def stop_user_data_stream(self, wait_for_response: bool = True) -> ReplyOrFuture[Empty]:
        """
        Close the user data stream (``userDataStream.stop``).

        Returns:
            The reply frame (:class:`~bfsync.types.ReplyFrame`), ``result`` empty; with
            ``wait_for_response=False`` at once a ``Future`` of it (raising the same errors).

        Raises:
            RequestError: the server refused the request (``code``, ``msg``);
                ``RequestTimeoutError`` when no reply came within ``request_timeout``.
            ConnectionError: the service is closed or failed, or the link was lost.
        """
        return self._call("userDataStream.stop", {}, wait_for_response)

    def user_stream(
        self,
        message_handler: Optional[Callable[[dict[str, Any]], object]] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> UserDataStream:
        """
        A started user data stream of this service's API key (``bfsync.userstream``): its
        listenKey is managed over this connection, its private connection is served by this
        service's I/O thread, and it ends when the service is closed. ``config`` is merged
        over this service's settings (``reconcile=True`` is available here).

        Raises:
            ListenKeyError, RequestTimeoutError, ConnectionError: as ``UserDataStream.start``.
            ValueError: a bad ``config`` or ``message_handler``.
        """
        from .userstream import UserDataStream

        stream = UserDataStream(None, message_handler, config, service=self)
        stream.start()
        return stream

    # Exchange filters

    def load_exchange_info(self) -> ExchangeFilters:
        """
        Fetch ``GET /fapi/v1/exchangeInfo`` from ``rest_url`` now, and use its filters.

        From then on, with ``enable_validation=True``, orders are checked against the
        symbol's PRICE_FILTER, LOT_SIZE / MARKET_LOT_SIZE and MIN_NOTIONAL before sending.
        The filters are fetched again after ``exchange_info_refresh`` seconds (on the next
        order, in its thread). Blocks at most ``request_timeout`` seconds.

        Raises:
            RequestError: the server answered with an error.
            ConnectionError: the server could not be reached.
        """
        return self._filter_cache().load()

    def round_price(self, symbol: str, price: NumberLike) -> Decimal:
        """
        ``price`` rounded down to the symbol's tick; above maxPrice, the highest valid price.

        Loads the exchange filters first if they are not loaded (``load_exchange_info``).

        Raises:
            OrderValidationError: unknown symbol (a wrong case gets the exchange's spelling as
                a hint), ``price`` not a finite number, or below minPrice: it never rounds up.
            RequestError, ConnectionError: loading the filters failed.
        """
        return self._filter_cache().get().round_price(symbol, price)

    def round_quantity(self, symbol: str, quantity: NumberLike, market: bool = False) -> Decimal:
        """
        ``quantity`` rounded down to the symbol's step (MARKET_LOT_SIZE if ``market``).

        Loads the exchange filters first if they are not loaded. Above maxQty it gives the
        highest valid quantity.

        Raises:
            OrderValidationError: unknown symbol, ``quantity`` not a finite number, or below
                minQty: it never rounds up (``0.00001`` BTC is refused, not made ``0.001``).
            RequestError, ConnectionError: loading the filters failed.
        """
        return self._filter_cache().get().round_quantity(symbol, quantity, market)

    # Private methods

    def _filter_cache(self) -> FilterCache:
        if self._filters is None:
            from .filters import FilterCache, fetch_exchange_info
            from .rest import rest_base_url

            config = self.config
            self._filters = FilterCache(
                lambda: fetch_exchange_info(rest_base_url(config), config.request_timeout),
                refresh_interval=config.exchange_info_refresh,
            )
        return self._filters

    def _prepared_call(
        self, method: str, kwargs: dict[str, Any], wait_for_response: bool
    ) -> ReplyOrFuture[Any]:
        params = prepare_call(method, kwargs, validate=self.enable_validation)
        return self._call(method, params, wait_for_response)

    def _new_client_order_id(self) -> str:
        prefix = self.config.client_order_id_prefix
        return prefix + uuid.uuid4().hex[: 36 - len(prefix)]

    def _place(
        self, order_type: str, kwargs: dict[str, Any], wait_for_response: bool
    ) -> ReplyOrFuture[Any]:
        order = prepare_order(
            order_type,
            kwargs,
            validate=self.enable_validation,
            new_client_order_id=self._new_client_order_id,
        )
        filters = self._filters
        if self.enable_validation and filters is not None and filters.loaded:
            filters.get().check_order(order_type, order.params)
        return self._call(order.method, order.params, wait_for_response, order.client_order_id)

    def _call(
        self,
        method: str,
        params: dict[str, Any],
        wait_for_response: bool,
        client_order_id: Optional[str] = None,
    ) -> ReplyOrFuture[Any]:
        transport = self._transport
        if transport is None:
            raise ConnectionError("the service is not connected; call connect() first")
        if method not in _PREPARED:
            params = format_params(params)
        if client_order_id is not None:
            self._note_order(method, params, client_order_id)
        future: DispatchedFuture[ReplyFrame[Any]] = DispatchedFuture()
        future._dispatcher = self._dispatcher
        timeout = self.config.request_timeout
        now = time.monotonic()
        request = Request(
            method, params, METHODS[method].security, future, now + timeout, client_order_id
        )
        if log.isEnabledFor(logging.DEBUG):  # the method and ids only: never params or keys
            log.debug(
                "submit %s symbol=%s client_order_id=%s wait=%s",
                method,
                params.get("symbol"),
                client_order_id,
                wait_for_response,
            )
        limiter = self._limiter
        if limiter is not None:
            from .limits import weight_of

            # Raises RateLimitError here in "raise" mode; in "wait" mode the I/O thread holds it.
            delay = limiter.reserve(weight_of(method, params), int(method in _COUNTED_ORDERS), now)
            if delay > 0:
                request.not_before = now + delay
        if not wait_for_response:
            transport.submit(request)
            _deadlines.watch(request.deadline, future, request, transport.expire)
            return future
        if transport.in_io_thread():
            raise RuntimeError("a blocking bfsync call cannot be made on bfsync's I/O thread")
        transport.submit(request)
        try:
            return future.result(max(0.0, request.deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            if future.done():  # the request's own timeout error (a TimeoutError since 3.11)
                raise
        # The deadline passed and the I/O thread has not settled it: settle it here.
        transport.expire(request)
        return future.result(0)


def _stop(transport: Transport, dispatcher: Dispatcher) -> None:
    """
    Stop a dropped service's threads (its weakref finalizer; must not refer to it).

    At interpreter exit (the main thread has finished) it waits well under a second in all
    (``_EXIT_WAIT`` per step): a healthy I/O thread stops in milliseconds, a stuck one must
    not delay the exit (its daemon threads end with the process).
    """
    exiting = not threading.main_thread().is_alive()
    transport.close(_EXIT_WAIT if exiting else 2.0)
    dispatcher.close(_EXIT_WAIT if exiting else 1.0)


def _require_symbol(symbol: Any) -> None:
    if not isinstance(symbol, str) or not symbol:
        raise OrderValidationError(f"symbol must be a non-empty string, got {symbol!r}")
