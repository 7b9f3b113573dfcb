"""
Types of bfsync's public API: the reply frames, the results of every call, and the keywords
of every order call, for mypy, pyright and IDE completion.

Nothing here changes what happens at run time: replies are plain dicts, and a ``TypedDict``
only says which keys they have (shapes from Binance's documentation; numbers that Binance
sends as text are ``str``, ids and times ``int``, flags ``bool``). Use them to annotate your
own code::

    from bfsync.types import Order, ReplyFrame

    def order_id(reply: ReplyFrame[Order]) -> int:
        return reply["result"]["orderId"]

The ``*Params`` dicts type the keywords of the ``place_*_order`` (and order-management) calls
(``**kwargs: Unpack[LimitOrderParams]``): a misspelt keyword or a value of the wrong type is
reported by mypy and underlined by IDEs. A keyword given as ``None`` counts as not given.
Enumerations (``side``, ``timeInForce``, ...) list their values for completion but take any
``str`` (a value read from a file or a cell is a ``str``); ``enable_validation=True`` checks
them at run time.

.. versionadded:: 0.2
"""

# No ``from __future__ import annotations`` here: the TypedDicts are built at run time from
# these annotations, and NotRequired is only seen (``__required_keys__``) when they are real.

import sys
from concurrent.futures import Future
from decimal import Decimal
from typing import (
    Generic,
    Literal,
    Optional,
    SupportsFloat,
    SupportsIndex,
    TypeVar,
    Union,
    final,
)

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # generic TypedDicts and NotRequired came in 3.11
    from typing_extensions import NotRequired, TypedDict

__all__ = [
    # Values the calls take
    "NumberLike",
    "IntegerLike",
    "FlagLike",
    "Side",
    "PositionSide",
    "TimeInForce",
    "WorkingType",
    "PriceMatch",
    "NewOrderRespType",
    "SelfTradePreventionMode",
    # Keywords of the order calls
    "OrderParams",
    "LimitOrderParams",
    "MarketOrderParams",
    "StopOrderParams",
    "StopMarketOrderParams",
    "TrailingStopMarketOrderParams",
    "ModifyOrderParams",
    "OrderLookupParams",
    "AlgoOrderLookupParams",
    # Keywords of the REST calls
    "KlineInterval",
    "ContractType",
    "MarginType",
    "IncomeType",
    "OpenAlgoOrdersParams",
    "KlineParams",
    "FundingRateParams",
    "AccountTradesParams",
    "IncomeParams",
    # Replies
    "RateLimit",
    "ReplyFrame",
    "ReplyOrFuture",
    "SessionStatus",
    "Depth",
    "TickerPrice",
    "TickerBook",
    "Order",
    "AlgoOrder",
    "AlgoOrderCancel",
    "Position",
    "Balance",
    "AccountAsset",
    "AccountPosition",
    "AccountStatus",
    "ListenKey",
    "Empty",
    # Replies of the REST calls
    "CodeMessage",
    "Leverage",
    "PositionMode",
    "MultiAssetsMode",
    "Kline",
    "MarkPrice",
    "FundingRate",
    "ServerTime",
    "AccountTrade",
    "Income",
    "CommissionRate",
    "LeverageBracket",
    "LeverageBrackets",
    # Market streams
    "ArrayStream",
]

_T = TypeVar("_T")

# ---------------------------------------------------------------------------------------------
# Values the calls take

#: A DECIMAL value (``price``, ``quantity``, ...): any real number (``int``, ``float``,
#: ``Decimal``, ``Fraction``, numpy scalars) or numeric text. Sent exactly (see the README).
NumberLike = Union[str, int, float, Decimal, SupportsFloat]
#: An INT value (``recvWindow``, ``orderId``, ``limit``): an int (numpy's too), a whole float
#: (Excel's numbers are floats) or digit text.
IntegerLike = Union[int, float, str, SupportsIndex]
#: A flag (``reduceOnly``, ...): a bool or the text ``"true"``/``"false"``.
FlagLike = Union[bool, str]

Side = Union[Literal["BUY", "SELL"], str]
PositionSide = Union[Literal["BOTH", "LONG", "SHORT"], str]
TimeInForce = Union[Literal["GTC", "IOC", "FOK", "GTX", "GTD", "RPI"], str]
WorkingType = Union[Literal["MARK_PRICE", "CONTRACT_PRICE"], str]
PriceMatch = Union[
    Literal[
        "NONE",
        "OPPONENT",
        "OPPONENT_5",
        "OPPONENT_10",
        "OPPONENT_20",
        "QUEUE",
        "QUEUE_5",
        "QUEUE_10",
        "QUEUE_20",
    ],
    str,
]
NewOrderRespType = Union[Literal["ACK", "RESULT"], str]
SelfTradePreventionMode = Union[Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"], str]

# ---------------------------------------------------------------------------------------------
# Keywords of the order calls


class OrderParams(TypedDict):
    """What every order takes: ``symbol`` and ``side`` (required), and the common options."""

    symbol: str
    side: Side
    positionSide: NotRequired[Optional[PositionSide]]
    newClientOrderId: NotRequired[Optional[str]]
    reduceOnly: NotRequired[Optional[FlagLike]]
    newOrderRespType: NotRequired[Optional[NewOrderRespType]]
    selfTradePreventionMode: NotRequired[Optional[SelfTradePreventionMode]]
    recvWindow: NotRequired[Optional[IntegerLike]]


class LimitOrderParams(OrderParams):
    """LIMIT: ``quantity``, ``timeInForce``, and ``price`` or ``priceMatch``."""

    quantity: NumberLike
    timeInForce: TimeInForce
    price: NotRequired[Optional[NumberLike]]
    priceMatch: NotRequired[Optional[PriceMatch]]
    goodTillDate: NotRequired[Optional[IntegerLike]]


class MarketOrderParams(OrderParams):
    """MARKET: ``quantity``."""

    quantity: NumberLike


class _ConditionalParams(OrderParams):
    """What every conditional order takes; Binance's names are aliases of the documented ones."""

    clientAlgoId: NotRequired[Optional[str]]
    timeInForce: NotRequired[Optional[TimeInForce]]
    goodTillDate: NotRequired[Optional[IntegerLike]]
    workingType: NotRequired[Optional[WorkingType]]


class StopOrderParams(_ConditionalParams):
    """STOP and TAKE_PROFIT: ``quantity``, ``stopPrice`` (or ``triggerPrice``), ``price`` or
    ``priceMatch``."""

    quantity: NumberLike
    stopPrice: NotRequired[Optional[NumberLike]]
    triggerPrice: NotRequired[Optional[NumberLike]]
    price: NotRequired[Optional[NumberLike]]
    priceMatch: NotRequired[Optional[PriceMatch]]
    priceProtect: NotRequired[Optional[FlagLike]]


class StopMarketOrderParams(_ConditionalParams):
    """STOP_MARKET and TAKE_PROFIT_MARKET: ``stopPrice`` (or ``triggerPrice``), and
    ``quantity`` or ``closePosition=True``."""

    stopPrice: NotRequired[Optional[NumberLike]]
    triggerPrice: NotRequired[Optional[NumberLike]]
    quantity: NotRequired[Optional[NumberLike]]
    closePosition: NotRequired[Optional[FlagLike]]
    priceProtect: NotRequired[Optional[FlagLike]]


class TrailingStopMarketOrderParams(_ConditionalParams):
    """TRAILING_STOP_MARKET: ``quantity``, ``callbackRate`` (0.1 to 10 percent), optional
    ``activationPrice`` (or ``activatePrice``)."""

    quantity: NumberLike
    callbackRate: NumberLike
    activationPrice: NotRequired[Optional[NumberLike]]
    activatePrice: NotRequired[Optional[NumberLike]]


class ModifyOrderParams(TypedDict):
    """``order.modify``: symbol, side, quantity, price or priceMatch, and an order id."""

    symbol: str
    side: Side
    quantity: NumberLike
    price: NotRequired[Optional[NumberLike]]
    priceMatch: NotRequired[Optional[PriceMatch]]
    orderId: NotRequired[Optional[IntegerLike]]
    origClientOrderId: NotRequired[Optional[str]]
    recvWindow: NotRequired[Optional[IntegerLike]]


class OrderLookupParams(TypedDict):
    """``order.cancel`` / ``order.status``: ``symbol``, and ``orderId`` or
    ``origClientOrderId``."""

    symbol: str
    orderId: NotRequired[Optional[IntegerLike]]
    origClientOrderId: NotRequired[Optional[str]]
    recvWindow: NotRequired[Optional[IntegerLike]]


class AlgoOrderLookupParams(TypedDict, total=False):
    """``algoOrder.cancel``: ``algoId`` or ``clientAlgoId``."""

    algoId: Optional[IntegerLike]
    clientAlgoId: Optional[str]
    recvWindow: Optional[IntegerLike]


# ---------------------------------------------------------------------------------------------
# Keywords of the REST calls (``bfsync/_restcalls.py``)
#
# With ``enable_validation=True`` bfsync checks these at run time: times, ids, ``limit`` and
# ``page`` must be a Python ``int`` (not a float or numpy integer), flags a bool or
# ``"true"``/``"false"``. Keywords the REST calls do not list are refused by mypy here; without
# validation bfsync still sends them (add ``# type: ignore[call-arg]`` for a parameter Binance
# added after this release).

KlineInterval = Union[
    Literal[
        "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"
    ],
    str,
]
ContractType = Union[
    Literal["PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER", "TRADIFI_PERPETUAL"], str
]
MarginType = Union[Literal["ISOLATED", "CROSSED"], str]
IncomeType = Union[
    Literal[
        "TRANSFER",
        "WELCOME_BONUS",
        "REALIZED_PNL",
        "FUNDING_FEE",
        "COMMISSION",
        "INSURANCE_CLEAR",
        "REFERRAL_KICKBACK",
        "COMMISSION_REBATE",
        "API_REBATE",
        "CONTEST_REWARD",
        "CROSS_COLLATERAL_TRANSFER",
        "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT",
        "INTERNAL_TRANSFER",
        "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT",
        "COIN_SWAP_DEPOSIT",
        "COIN_SWAP_WITHDRAW",
        "POSITION_LIMIT_INCREASE_FEE",
        "STRATEGY_UMFUTURES_TRANSFER",
        "FEE_RETURN",
        "BFUSD_REWARD",
    ],
    str,
]


class OpenAlgoOrdersParams(TypedDict, total=False):
    """``get_open_algo_orders``: ``algoType`` (``"CONDITIONAL"``), ``algoId``."""

    algoType: Optional[Literal["CONDITIONAL"]]
    algoId: Optional[int]
    recvWindow: Optional[int]


class KlineParams(TypedDict, total=False):
    """``get_klines`` / ``get_continuous_klines``: times in ms, ``limit`` 1 to 1500 (500)."""

    startTime: Optional[int]
    endTime: Optional[int]
    limit: Optional[int]


class FundingRateParams(TypedDict, total=False):
    """``get_funding_rate_history``: ``symbol``, times in ms, ``limit`` 1 to 1000 (100)."""

    symbol: Optional[str]
    startTime: Optional[int]
    endTime: Optional[int]
    limit: Optional[int]


class AccountTradesParams(TypedDict, total=False):
    """``get_account_trades``: ``orderId``, times in ms (7 days at most apart), ``fromId``,
    ``limit`` 1 to 1000 (500)."""

    orderId: Optional[int]
    startTime: Optional[int]
    endTime: Optional[int]
    fromId: Optional[int]
    limit: Optional[int]
    recvWindow: Optional[int]


class IncomeParams(TypedDict, total=False):
    """``get_income_history``: ``symbol``, ``incomeType``, times in ms (the last 7 days
    without them), ``page``, ``limit`` 1 to 1000 (100)."""

    symbol: Optional[str]
    incomeType: Optional[IncomeType]
    startTime: Optional[int]
    endTime: Optional[int]
    page: Optional[int]
    limit: Optional[int]
    recvWindow: Optional[int]


# ---------------------------------------------------------------------------------------------
# Replies


class RateLimit(TypedDict):
    """One ``rateLimits`` counter: e.g. REQUEST_WEIGHT, MINUTE, 1, limit 2400, count 12.

    ``limit`` is absent from REST replies (their ``X-MBX-USED-WEIGHT-*`` headers carry only
    the count)."""

    rateLimitType: str
    interval: str
    intervalNum: int
    limit: NotRequired[int]
    count: int


class ReplyFrame(TypedDict, Generic[_T]):
    """
    What a call returns: the server's reply frame, ``result`` typed per call.

    Replies with a status other than 200 are never returned: they raise ``RequestError``.
    ``rateLimits`` is there unless ``config["return_rate_limits"]`` is False. ``id`` (the
    request id) is in every ws-fapi reply; the REST calls' replies have none.
    """

    id: NotRequired[Union[int, str, None]]
    status: int
    result: _T
    rateLimits: NotRequired[list[RateLimit]]


#: What a call with ``wait_for_response`` given as a plain ``bool`` returns.
ReplyOrFuture = Union[ReplyFrame[_T], Future[ReplyFrame[_T]]]


class SessionStatus(TypedDict):
    """``session.logon`` / ``session.status`` / ``session.logout``; ``apiKey`` is None
    when no key is logged on."""

    apiKey: Optional[str]
    authorizedSince: Optional[int]
    connectedSince: int
    returnRateLimits: bool
    serverTime: int


class Depth(TypedDict):
    """``depth``: ``bids`` and ``asks`` are ``[price, qty]`` text pairs, best first."""

    lastUpdateId: int
    E: int
    T: int
    bids: list[list[str]]
    asks: list[list[str]]


class TickerPrice(TypedDict):
    """``ticker.price`` of one symbol."""

    symbol: str
    price: str
    time: int


class TickerBook(TypedDict):
    """``ticker.book`` of one symbol: best bid and ask."""

    lastUpdateId: int
    symbol: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str
    time: int


@final
class Order(TypedDict):
    """An order (``order.place``, ``order.modify``, ``order.cancel``, ``order.status``, and
    REST ``get_open_orders``, which has no ``cumQty``).

    ``@final``, as is :class:`AlgoOrder`, so that ``"algoId" in result`` tells the two apart
    for mypy (``resolve_unknown``)."""

    orderId: int
    symbol: str
    status: str
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    cumQty: NotRequired[str]
    timeInForce: str
    type: str
    reduceOnly: bool
    closePosition: bool
    side: str
    positionSide: str
    stopPrice: str
    workingType: str
    priceProtect: bool
    origType: str
    priceMatch: str
    selfTradePreventionMode: str
    goodTillDate: int
    updateTime: int
    avgPrice: NotRequired[str]
    cumQuote: NotRequired[str]
    time: NotRequired[int]
    activatePrice: NotRequired[str]
    priceRate: NotRequired[str]
    modifyId: NotRequired[int]


@final
class AlgoOrder(TypedDict):
    """A conditional order (``algoOrder.place``; REST ``get_algo_order``,
    ``get_open_algo_orders``, which add ``actualOrderId`` and ``actualPrice``: the plain
    order's id and price once triggered)."""

    algoId: int
    clientAlgoId: str
    algoType: str
    orderType: str
    symbol: str
    side: str
    positionSide: str
    timeInForce: str
    quantity: str
    algoStatus: str
    triggerPrice: str
    price: str
    icebergQuantity: Optional[str]
    selfTradePreventionMode: str
    workingType: str
    priceMatch: str
    closePosition: bool
    priceProtect: bool
    reduceOnly: bool
    createTime: int
    updateTime: int
    triggerTime: int
    goodTillDate: int
    activatePrice: NotRequired[str]
    callbackRate: NotRequired[str]
    actualOrderId: NotRequired[str]
    actualPrice: NotRequired[str]


class AlgoOrderCancel(TypedDict):
    """``algoOrder.cancel``."""

    algoId: int
    clientAlgoId: str
    code: str
    msg: str


class Position(TypedDict):
    """One item of ``v2/account.position``."""

    symbol: str
    positionSide: str
    positionAmt: str
    entryPrice: str
    breakEvenPrice: str
    markPrice: str
    unRealizedProfit: str
    liquidationPrice: str
    isolatedMargin: str
    notional: str
    marginAsset: str
    isolatedWallet: str
    initialMargin: str
    maintMargin: str
    positionInitialMargin: str
    openOrderInitialMargin: str
    adl: int
    bidNotional: str
    askNotional: str
    updateTime: int


class Balance(TypedDict):
    """One item of ``v2/account.balance``."""

    accountAlias: str
    asset: str
    balance: str
    crossWalletBalance: str
    crossUnPnl: str
    availableBalance: str
    maxWithdrawAmount: str
    marginAvailable: bool
    updateTime: int


class AccountAsset(TypedDict):
    """One item of ``v2/account.status``'s ``assets``."""

    asset: str
    walletBalance: str
    unrealizedProfit: str
    marginBalance: str
    maintMargin: str
    initialMargin: str
    positionInitialMargin: str
    openOrderInitialMargin: str
    crossWalletBalance: str
    crossUnPnl: str
    availableBalance: str
    maxWithdrawAmount: str
    marginAvailable: bool
    updateTime: int


class AccountPosition(TypedDict):
    """One item of ``v2/account.status``'s ``positions``."""

    symbol: str
    positionSide: str
    positionAmt: str
    unrealizedProfit: str
    isolatedMargin: str
    notional: str
    isolatedWallet: str
    initialMargin: str
    maintMargin: str
    updateTime: int


class AccountStatus(TypedDict):
    """``v2/account.status``."""

    totalInitialMargin: str
    totalMaintMargin: str
    totalWalletBalance: str
    totalUnrealizedProfit: str
    totalMarginBalance: str
    totalPositionInitialMargin: str
    totalOpenOrderInitialMargin: str
    totalCrossWalletBalance: str
    totalCrossUnPnl: str
    availableBalance: str
    maxWithdrawAmount: str
    assets: list[AccountAsset]
    positions: list[AccountPosition]


class ListenKey(TypedDict):
    """``userDataStream.start`` / ``userDataStream.ping``."""

    listenKey: str


class Empty(TypedDict):
    """A result with no fields (``userDataStream.stop``)."""


# ---------------------------------------------------------------------------------------------
# Replies of the REST calls (shapes from Binance's USD-M Futures REST documentation)


class CodeMessage(TypedDict):
    """``{"code": 200, "msg": ...}``: ``cancel_all_open_orders``, ``cancel_all_algo_orders``,
    ``change_margin_type``, ``change_position_mode``, ``change_multi_assets_mode``."""

    code: int
    msg: str


class Leverage(TypedDict):
    """``change_leverage``: the leverage set and the largest position notional it allows."""

    leverage: int
    maxNotionalValue: str
    symbol: str


class PositionMode(TypedDict):
    """``get_position_mode``: ``True`` for hedge mode, ``False`` for one-way."""

    dualSidePosition: bool


class MultiAssetsMode(TypedDict):
    """``get_multi_assets_mode``."""

    multiAssetsMargin: bool


#: One candle of ``get_klines`` / ``get_continuous_klines``: open time, open, high, low,
#: close, volume, close time, quote volume, number of trades, taker buy base volume, taker
#: buy quote volume, an unused field. At run time each candle is a JSON array, so a
#: ``list``: typed as a tuple so that mypy knows each position's type (``candle[4]`` is the
#: close, a ``str``); index or unpack it, do not compare it with a tuple.
Kline = tuple[int, str, str, str, str, str, int, str, int, str, str, str]


class MarkPrice(TypedDict):
    """``get_mark_price`` of one symbol (a list of them without a symbol)."""

    symbol: str
    markPrice: str
    indexPrice: str
    estimatedSettlePrice: str
    lastFundingRate: str
    interestRate: str
    nextFundingTime: int
    time: int


class FundingRate(TypedDict):
    """One item of ``get_funding_rate_history``."""

    symbol: str
    fundingRate: str
    fundingTime: int
    markPrice: str


class ServerTime(TypedDict):
    """``get_server_time``: milliseconds since the epoch."""

    serverTime: int


class AccountTrade(TypedDict):
    """One item of ``get_account_trades``."""

    buyer: bool
    commission: str
    commissionAsset: str
    id: int
    maker: bool
    orderId: int
    price: str
    qty: str
    quoteQty: str
    realizedPnl: str
    side: str
    positionSide: str
    symbol: str
    time: int


class Income(TypedDict):
    """One item of ``get_income_history``; ``symbol`` and ``tradeId`` are ``""`` when none."""

    symbol: str
    incomeType: str
    income: str
    asset: str
    info: str
    time: int
    tranId: int
    tradeId: str


class CommissionRate(TypedDict):
    """``get_commission_rate``: fractions (``"0.0002"`` is 0.02 %)."""

    symbol: str
    makerCommissionRate: str
    takerCommissionRate: str
    rpiCommissionRate: NotRequired[str]


class LeverageBracket(TypedDict):
    """One notional bracket: up to ``notionalCap`` the leverage is at most
    ``initialLeverage`` (JSON numbers: ``int`` or ``float``)."""

    bracket: int
    initialLeverage: int
    notionalCap: float
    notionalFloor: float
    maintMarginRatio: float
    cum: float


class LeverageBrackets(TypedDict):
    """``get_leverage_brackets`` of one symbol (a list of them without a symbol);
    ``notionalCoef`` only when your brackets differ from the symbol's default."""

    symbol: str
    notionalCoef: NotRequired[float]
    brackets: list[LeverageBracket]


# ---------------------------------------------------------------------------------------------
# Market streams

#: The streams whose payloads are lists of events (``MarketService.latest`` of one of these
#: names is typed ``Optional[list[dict[str, Any]]]``; of any other, ``Optional[dict[...]]``).
ArrayStream = Literal[
    "!markPrice@arr",
    "!markPrice@arr@1s",
    "!ticker@arr",
    "!miniTicker@arr",
    "!forceOrder@arr",
    "!assetIndex@arr",
]
