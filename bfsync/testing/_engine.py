"""
The fake exchange's state and request handling: no sockets, threads or clock.

``Exchange.process(session, message, now_ms)`` turns one received frame into an ``Outcome``
(the decoded request to record, the reply to send or ``None``, and a delay). The caller,
``FakeExchange``, holds its lock around every call and owns the sockets and the thread.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import Any, Callable, Optional, Union
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)

from ..signing import ED25519, HMAC, RSA, canonical_payload, param_text
from . import _userdata
from ._book import Book

__all__ = ["ApiError", "Exchange", "Outcome", "Session", "SymbolSpec", "load_exchange_info"]

JsonDict = dict[str, Any]
_LOG = logging.getLogger("bfsync.testing")

# --------------------------------------------------------------------------------------------
# Constants: enums (§5.1), limits (§1.2), first ids.

SIDES = ("BUY", "SELL")
ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
CONDITIONAL_TYPES = ORDER_TYPES[2:]
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX", "GTD", "RPI")
# OPPONENT_10 and OPPONENT_20 are "temporarily removed" from place and amend since 2025-10-23
# (§5.1): refused with -5037 like an unknown value.
PRICE_MATCH = (
    "NONE",
    "OPPONENT",
    "OPPONENT_5",
    "QUEUE",
    "QUEUE_5",
    "QUEUE_10",
    "QUEUE_20",
)
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
RESPONSE_TYPES = ("ACK", "RESULT")
WORKING_TYPES = ("MARK_PRICE", "CONTRACT_PRICE")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
TRADING = "TRADING"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
DEPTH_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}

REQUEST_WEIGHT_LIMIT = 2400
ORDERS_10S_LIMIT = 300
ORDERS_1M_LIMIT = 1200
HANDSHAKE_WEIGHT = 5
DEFAULT_RECV_WINDOW = 5000
BOOK_LEVELS = 20
LEVERAGE = Decimal(20)
MAINT_MARGIN_RATE = Decimal("0.004")
PERCENT_PRICE_UP = Decimal("1.05")
PERCENT_PRICE_DOWN = Decimal("0.95")
FIRST_ORDER_ID = 4000000001
FIRST_ALGO_ID = 2000000001
FIRST_UPDATE_ID = 7000000001
FIRST_MODIFY_ID = 1
MAX_GOOD_TILL_DATE = 253402300799000
ORDER_METHODS = ("order.place", "order.modify")
MAX_MODIFICATIONS = 10000  # per order, unless the symbol's maxMoveOrderLimit says otherwise
LISTEN_KEY_TTL = 3600000  # a listenKey lives 60 min after its last start / ping
LISTEN_KEY_CHARS = string.ascii_letters + string.digits
FAKE_IP = "127.0.0.1"  # every client of the fake connects from here (the -1003 message)

# The symbols, filters and rate limits of the fake come from this package file (a snapshot
# shaped like GET /fapi/v1/exchangeInfo); fixture symbols get these deterministic prices.
EXCHANGE_INFO_RESOURCE = "exchange_info.json"
DEFAULT_PRICES = {"BTCUSDT": Decimal(50000), "ETHUSDT": Decimal(3000)}

MSG_SIGNATURE = "Signature for this request is not valid."
MSG_API_KEY_FORMAT = "API-key format invalid."
MSG_API_KEY_INVALID = "Invalid API-key, IP, or permissions for action."
MSG_TS_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_TS_OUTSIDE = "Timestamp for this request is outside of the recvWindow."
MSG_4120 = (
    "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
)
MSG_PRECISION = "Precision is over the maximum defined for this asset."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_SYMBOL_STATUS = "Invalid symbol status for opening position."
MSG_MODIFY_NOT_TRADING = "Symbol is not in trading status. Order amendment is not permitted."
MSG_LIMIT_ONLY = "Only limit order is supported."
MSG_MODIFY_LIMIT = "Exceed maximum modify order limit."
MSG_SAME_ORDER = "No need to modify the order."
MSG_NO_LISTEN_KEY = "This listenKey does not exist."
MSG_TOO_MANY_REQUESTS = (
    "Too many requests; current limit of IP({ip}) is {limit} requests per minute. "
    "Please use the websocket for live updates to avoid polling the API."
)
MSG_TOO_MANY_ORDERS = "Too many new orders; current limit is {limit} orders per {interval}."
MSG_SERVER_ERROR = "Internal error; unable to process your request. Please try again."
UNKNOWN_OUTCOME_MSGS = {
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution "
    "status unknown.",
}


class ApiError(Exception):
    """An error reply: ``{"code": code, "msg": msg}`` with frame status ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def mandatory(name: str) -> ApiError:
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def invalid(name: str) -> ApiError:
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def either(first: str, second: str) -> ApiError:
    return ApiError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


# --------------------------------------------------------------------------------------------
# Symbols, positions, sessions.


@dataclass
class SymbolSpec:
    """
    One symbol of the fake: its (mark = last) price, its filters and its status.

    A rule whose bound is 0 is disabled (as in exchangeInfo). ``market_*`` are the
    MARKET_LOT_SIZE filter (``None``: LOT_SIZE applies to MARKET orders too). ``percent_up`` /
    ``percent_down`` are PERCENT_PRICE's multipliers (0: no such filter). A precision of -1 is
    derived from the tick / step size. ``info`` is the exchangeInfo entry the spec was read
    from (``None`` for symbols added with ``add_symbol``).
    """

    symbol: str
    price: Decimal
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal = Decimal(5)
    max_price: Decimal = Decimal(1000000)
    price_precision: int = -1
    quantity_precision: int = -1
    min_price: Decimal = Decimal(0)
    status: str = TRADING
    market_min_qty: Optional[Decimal] = None
    market_max_qty: Optional[Decimal] = None
    market_step_size: Optional[Decimal] = None
    percent_up: Decimal = PERCENT_PRICE_UP
    percent_down: Decimal = PERCENT_PRICE_DOWN
    max_modifications: int = MAX_MODIFICATIONS
    info: Optional[JsonDict] = None

    def __post_init__(self) -> None:
        if self.price_precision < 0:
            self.price_precision = _places(self.tick_size)
        if self.quantity_precision < 0:
            self.quantity_precision = _places(self.step_size)

    def price_text(self, value: Decimal) -> str:
        """A price as Binance writes it: ``pricePrecision`` decimals (at least the tick's)."""
        return fmt(value, max(self.price_precision, _places(self.tick_size)))

    def qty_text(self, value: Decimal) -> str:
        """A quantity as Binance writes it: ``quantityPrecision`` decimals (at least the step's)."""
        return fmt(value, max(self.quantity_precision, _places(self.step_size)))

    def lot(self, market: bool) -> tuple[Decimal, Decimal, Decimal]:
        """``(minQty, maxQty, stepSize)``: MARKET_LOT_SIZE for MARKET orders, else LOT_SIZE."""
        if market and self.market_step_size is not None:
            assert self.market_min_qty is not None and self.market_max_qty is not None
            return self.market_min_qty, self.market_max_qty, self.market_step_size
        return self.min_qty, self.max_qty, self.step_size


def load_exchange_info() -> JsonDict:
    """
    The exchangeInfo snapshot shipped as ``bfsync/testing/exchange_info.json``.

    Raises:
        RuntimeError: the file is missing or is not a JSON object with a ``symbols`` list.
    """
    try:
        text = files("bfsync.testing").joinpath(EXCHANGE_INFO_RESOURCE).read_text("utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"bfsync/testing/{EXCHANGE_INFO_RESOURCE} cannot be read: {exc}"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise RuntimeError(
            f"bfsync/testing/{EXCHANGE_INFO_RESOURCE} is not an exchangeInfo object with 'symbols'"
        )
    return data


def _filter_value(entry: Mapping[str, Any], key: str, default: str = "0") -> Decimal:
    raw = entry.get(key, default)
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise RuntimeError(f"exchangeInfo filter {entry!r}: {key} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise RuntimeError(f"exchangeInfo filter {entry!r}: {key} must be >= 0")
    return value


def _default_price(symbol: str, min_price: Decimal, max_price: Decimal, tick: Decimal) -> Decimal:
    """BTCUSDT 50000, ETHUSDT 3000; another symbol 100 x minPrice (1 without a minPrice)."""
    price = DEFAULT_PRICES.get(symbol)
    if price is None:
        price = min_price * 100 if min_price > 0 else Decimal(1)
        if tick > 0:
            price = min_price + ((price - min_price) // tick) * tick
        if max_price > 0:
            price = min(price, max_price)
    return price


def spec_from_info(info: Mapping[str, Any]) -> SymbolSpec:
    """A ``SymbolSpec`` from one exchangeInfo ``symbols`` entry, at its default price."""
    symbol = info.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise RuntimeError(f"exchangeInfo symbol entry without a 'symbol': {info!r}")
    filters: dict[str, Mapping[str, Any]] = {}
    for entry in info.get("filters") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("filterType"), str):
            filters[entry["filterType"]] = entry
    price_filter = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market = filters.get("MARKET_LOT_SIZE")
    percent = filters.get("PERCENT_PRICE", {})
    notional = filters.get("MIN_NOTIONAL", {})
    min_price = _filter_value(price_filter, "minPrice")
    max_price = _filter_value(price_filter, "maxPrice")
    tick = _filter_value(price_filter, "tickSize")

    def precision(key: str) -> int:
        value = info.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else -1

    limit = info.get("maxMoveOrderLimit")
    return SymbolSpec(
        symbol=symbol,
        price=_default_price(symbol, min_price, max_price, tick),
        tick_size=tick,
        step_size=_filter_value(lot, "stepSize"),
        min_qty=_filter_value(lot, "minQty"),
        max_qty=_filter_value(lot, "maxQty"),
        min_notional=_filter_value(notional, "notional"),
        max_price=max_price,
        price_precision=precision("pricePrecision"),
        quantity_precision=precision("quantityPrecision"),
        min_price=min_price,
        status=str(info.get("status", TRADING)),
        market_min_qty=_filter_value(market, "minQty") if market is not None else None,
        market_max_qty=_filter_value(market, "maxQty") if market is not None else None,
        market_step_size=_filter_value(market, "stepSize") if market is not None else None,
        percent_up=_filter_value(percent, "multiplierUp"),
        percent_down=_filter_value(percent, "multiplierDown"),
        max_modifications=limit if isinstance(limit, int) and limit > 0 else MAX_MODIFICATIONS,
        info=copy.deepcopy(dict(info)),
    )


def _plain(value: Decimal) -> str:
    return f"{value:f}"


def info_of(spec: SymbolSpec) -> JsonDict:
    """The exchangeInfo entry of a symbol added with ``add_symbol`` (filters from the spec)."""
    base = spec.symbol[:-4] if spec.symbol.endswith("USDT") else spec.symbol
    min_qty, max_qty, step = spec.lot(market=True)
    filters: list[JsonDict] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": _plain(spec.min_price),
            "maxPrice": _plain(spec.max_price),
            "tickSize": _plain(spec.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": _plain(spec.min_qty),
            "maxQty": _plain(spec.max_qty),
            "stepSize": _plain(spec.step_size),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": _plain(min_qty),
            "maxQty": _plain(max_qty),
            "stepSize": _plain(step),
        },
        {"filterType": "MIN_NOTIONAL", "notional": _plain(spec.min_notional)},
    ]
    if spec.percent_up or spec.percent_down:
        filters.append(
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": _plain(spec.percent_up),
                "multiplierDown": _plain(spec.percent_down),
                "multiplierDecimal": "4",
            }
        )
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": spec.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": spec.max_modifications,
        "filters": filters,
        "orderTypes": list(ORDER_TYPES),
        "timeInForce": list(TIME_IN_FORCE),
    }


@dataclass
class Position:
    amount: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    update_time: int = 0


class _Window:
    """A sliding-window counter: the amounts added in the last ``span`` ms."""

    __slots__ = ("events", "span", "total")

    def __init__(self, span: int) -> None:
        self.span = span
        self.events: deque[tuple[int, int]] = deque()
        self.total = 0

    def count(self, now: int) -> int:
        """The amount added in ``(now - span, now]``."""
        events = self.events
        if events and events[-1][0] > now:  # the server clock was moved back: start afresh
            events.clear()
            self.total = 0
        while events and events[0][0] <= now - self.span:
            self.total -= events.popleft()[1]
        return self.total

    def add(self, now: int, amount: int) -> None:
        if amount:
            self.events.append((now, amount))
            self.total += amount

    def free_at(self, now: int, amount: int, limit: int) -> int:
        """When (ms) ``amount`` more would fit under ``limit``, as the oldest entries leave."""
        excess = self.count(now) + amount - limit
        for at, value in self.events:
            if excess <= 0:
                break
            excess -= value
            if excess <= 0:
                return at + self.span
        return now


@dataclass
class Session:
    """The per-connection state: logon, the REQUEST_WEIGHT window, keys used."""

    index: int
    connected_since: int
    return_rate_limits: bool = True
    api_key: Optional[str] = None
    authorized_since: Optional[int] = None
    weight: _Window = field(default_factory=lambda: _Window(60000))
    ip: str = FAKE_IP
    used_keys: set[str] = field(default_factory=set)  # keys that authenticated a request


@dataclass
class Outcome:
    """What to do with one received frame."""

    record: Optional[JsonDict]  # the decoded request {"id","method","params"}, or None
    reply: Optional[JsonDict]  # the frame to send, or None (withheld)
    delay: float = 0.0


@dataclass
class _Rule:
    value: Any
    remaining: Optional[int]  # None: forever


@dataclass
class _Script:
    result: Any
    error: Optional[JsonDict]
    status: int


# --------------------------------------------------------------------------------------------
# Keys.


class _Key:
    """A registered API key: the HMAC secret, or the RSA / Ed25519 public key."""

    __slots__ = ("_public", "_secret", "kind")

    def __init__(self, kind: str, secret: Optional[bytes], public: Any) -> None:
        self.kind = kind
        self._secret = secret
        self._public = public

    def __repr__(self) -> str:
        return f"_Key({self.kind}, <hidden>)"

    def verify(self, params: Mapping[str, Any], signature: str) -> bool:
        return any(self._verify(p.encode(), signature) for p in payloads(params))

    def _verify(self, payload: bytes, signature: str) -> bool:
        if self.kind == HMAC:
            assert self._secret is not None
            expected = hmac.new(self._secret, payload, hashlib.sha256).hexdigest().encode()
            return hmac.compare_digest(expected, signature.lower().encode())
        try:
            raw = base64.b64decode(signature.encode(), validate=True)
        except (binascii.Error, ValueError):
            return False
        try:
            if self.kind == RSA:
                self._public.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                self._public.verify(raw, payload)
        except InvalidSignature:
            return False
        return True


def payloads(params: Mapping[str, Any]) -> list[str]:
    """
    The payloads a signature may be over: ``canonical_payload`` and, when it differs, the
    same sorted pairs percent-encoded (as the official Python SDK signs them).
    """
    plain = canonical_payload(params)
    encoded = urlencode([(k, param_text(params[k])) for k in sorted(params) if k != "signature"])
    return [plain] if encoded == plain else [plain, encoded]


def normalize_kind(kind: str) -> str:
    for known in (HMAC, RSA, ED25519):
        if isinstance(kind, str) and kind.lower() == known.lower():
            return known
    raise ValueError(f"key kind must be 'HMAC', 'RSA' or 'Ed25519', not {kind!r}")


def make_key(kind: str, key: Any) -> _Key:
    """A ``_Key`` from a secret (HMAC) or a public/private key object or PEM (RSA, Ed25519)."""
    kind = normalize_kind(kind)
    if kind == HMAC:
        if isinstance(key, str):
            key = key.encode()
        if not isinstance(key, bytes) or not key:
            raise TypeError("an HMAC key is the secret, a non-empty str")
        return _Key(HMAC, key, None)
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        if b"PRIVATE KEY" in key:
            key = load_pem_private_key(key, password=None)
        else:
            key = load_pem_public_key(key)
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        key = key.public_key()
    wanted = rsa.RSAPublicKey if kind == RSA else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise TypeError(f"a {kind} key must be a {kind} public key (object or PEM), got {key!r}")
    return _Key(kind, None, key)


# --------------------------------------------------------------------------------------------
# Param helpers.


def _missing(value: Any) -> bool:
    return value is None or value == ""


def text_param(params: Mapping[str, Any], name: str, required: bool = False) -> Optional[str]:
    value = params.get(name)
    if _missing(value):
        if required:
            raise mandatory(name)
        return None
    if isinstance(value, (dict, list)):
        raise mandatory(name) if required else invalid(name)
    return param_text(value)


def decimal_param(
    params: Mapping[str, Any], name: str, required: bool = False
) -> Optional[tuple[str, Decimal]]:
    """``(text as received, value)``; numbers are accepted as well as strings."""
    value = params.get(name)
    if _missing(value):
        if required:
            raise mandatory(name)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise mandatory(name)
    text = value if isinstance(value, str) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise mandatory(name) from None
    if not number.is_finite():
        raise mandatory(name)
    return text, number


def int_param(params: Mapping[str, Any], name: str, required: bool = False) -> Optional[int]:
    value = params.get(name)
    if _missing(value):
        if required:
            raise mandatory(name)
        return None
    if isinstance(value, bool):
        raise mandatory(name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value):
        return int(value)
    raise mandatory(name)


def _lookup(
    params: Mapping[str, Any],
    id_name: str,
    by_id: Mapping[int, JsonDict],
    client_name: str,
    by_client_id: Mapping[str, JsonDict],
) -> Optional[JsonDict]:
    """The order named by its id (which wins when both are sent) or its client id."""
    order_id = int_param(params, id_name)
    client_id = text_param(params, client_name)
    if order_id is None and client_id is None:
        raise either(id_name, client_name)
    if order_id is not None:
        return by_id.get(order_id)
    return by_client_id.get(client_id or "")


def _order_enums(params: JsonDict) -> tuple[str, str, str]:
    """priceMatch, selfTradePreventionMode and newOrderRespType, checked, with defaults."""
    price_match = enum_param(
        params, "priceMatch", PRICE_MATCH, ApiError(-5037, "Invalid price match.")
    )
    stp = enum_param(
        params,
        "selfTradePreventionMode",
        STP_MODES,
        ApiError(-5039, "Invalid self trade prevention mode."),
    )
    resp_type = enum_param(
        params, "newOrderRespType", RESPONSE_TYPES, ApiError(-1136, "Invalid newOrderRespType.")
    )
    return price_match or "NONE", stp or "NONE", resp_type or "ACK"


def flag_param(params: Mapping[str, Any], name: str, code: int = -1130) -> bool:
    """A ``"true"``/``"false"`` flag (JSON booleans accepted); absent means false."""
    value = params.get(name)
    if _missing(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if code == -4062:
        raise ApiError(-4062, "Invalid or improper reduceOnly value.")
    raise invalid(name)


def enum_param(
    params: Mapping[str, Any], name: str, allowed: tuple[str, ...], error: ApiError
) -> Optional[str]:
    value = params.get(name)
    if _missing(value):
        return None
    if not isinstance(value, str) or value not in allowed:
        raise error
    return value


def fmt(value: Decimal, places: int) -> str:
    """``value`` with exactly ``places`` decimals, in plain notation (never ``0E-8``, ``-0``)."""
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized == 0:
        quantized = quantized.copy_abs()
    return f"{quantized:f}"


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def rate_limit(kind: str, interval: str, num: int, limit: int, count: int) -> JsonDict:
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": num,
        "limit": limit,
        "count": count,
    }


ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,36}")
MSG_BAD_ID = (
    "Invalid 'id' in JSON request; expected an integer, a string matching "
    "'^[a-zA-Z0-9-_]{1,36}$', or null."
)


def valid_id(value: Any) -> bool:
    """Binance's rule (§2.1, spot's, assumed for ws-fapi): int64, a short id string, or null."""
    if value is None:
        return True
    if isinstance(value, str):
        return ID_RE.fullmatch(value) is not None
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


class JsonNumber(float):
    """
    A JSON number with a fraction or exponent, as a float that remembers its text.

    Signatures are over the text the client sent: ``50000.10`` sent as a JSON number is signed
    as ``50000.10``, which ``str(float)`` would turn into ``50000.1`` (a false -1022).
    """

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> Any:
        return (JsonNumber, (self.text,))


def load_frame(message: str) -> Any:
    """``json.loads`` keeping the text of numbers with a fraction or exponent."""
    return json.loads(message, parse_float=JsonNumber)


# --------------------------------------------------------------------------------------------
# The exchange.

Handler = Callable[[Session, JsonDict, int], Any]


class Exchange:
    """Keys, symbols, orders, positions and scripted behaviour of one ``FakeExchange``."""

    def __init__(self) -> None:
        self.keys: dict[str, _Key] = {}
        self.info = load_exchange_info()
        self.symbols: dict[str, SymbolSpec] = {}
        for entry in self.info["symbols"]:
            spec = spec_from_info(entry)
            self.symbols[spec.symbol] = spec
        self.balances: dict[str, Decimal] = {"USDT": Decimal(10000)}
        self.balance_times: dict[str, int] = {"USDT": 0}
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, JsonDict] = {}
        self.algo_orders: dict[int, JsonDict] = {}
        # By client id, so a duplicate check does not scan every order ever placed.
        self.orders_by_client_id: dict[str, JsonDict] = {}
        self.algo_orders_by_client_id: dict[str, JsonDict] = {}
        self.open_order_ids: dict[int, None] = {}  # pruned as orders become final
        self.next_order_id = FIRST_ORDER_ID
        self.next_algo_id = FIRST_ALGO_ID
        self.next_modify_id = FIRST_MODIFY_ID
        self.update_id = FIRST_UPDATE_ID
        self.scripts: dict[str, list[_Rule]] = {}
        self.delays: dict[str, list[_Rule]] = {}
        self.withholds: dict[str, list[_Rule]] = {}
        self.failures: dict[str, list[_Rule]] = {}  # fail_after_processing: (status, error)
        self.modifications: dict[int, int] = {}  # orderId -> order.modify calls that changed it
        self.listen_keys: dict[str, tuple[str, int]] = {}  # apiKey -> (listenKey, expires at)
        self.revoked: dict[str, set[int]] = {}  # apiKey -> sessions told with an id-null 401
        self.request_weight_limit = REQUEST_WEIGHT_LIMIT
        self.orders_10s_limit = ORDERS_10S_LIMIT
        self.orders_1m_limit = ORDERS_1M_LIMIT
        self.enforce_rate_limits = True
        self.order_windows: dict[str, tuple[_Window, _Window]] = {}  # account -> (10 s, 1 min)
        # Streams: live books (symbols a test published depth for), and the user-data events
        # to push (None until a private stream connects: nothing is collected before).
        self.books: dict[str, Book] = {}
        self.user_events: Optional[list[JsonDict]] = None
        self.last_realized = Decimal(0)  # the realized PnL of the last fill (for events)
        # (signed, handler): signed methods are authenticated before the handler runs; the
        # USER_STREAM methods (userDataStream.*) check their apiKey themselves.
        self.handlers: dict[str, tuple[bool, Handler]] = {
            "session.logon": (False, self._session_logon),
            "session.status": (False, self._session_status),
            "session.logout": (False, self._session_logout),
            "depth": (False, self._depth),
            "ticker.price": (False, self._ticker_price),
            "ticker.book": (False, self._ticker_book),
            "order.place": (True, self._order_place),
            "order.modify": (True, self._order_modify),
            "order.cancel": (True, self._order_cancel),
            "order.status": (True, self._order_status),
            "algoOrder.place": (True, self._algo_order_place),
            "algoOrder.cancel": (True, self._algo_order_cancel),
            "userDataStream.start": (False, self._user_stream_start),
            "userDataStream.ping": (False, self._user_stream_ping),
            "userDataStream.stop": (False, self._user_stream_stop),
            "v2/account.position": (True, self._positions_v2),
            "v2/account.balance": (True, self._balance),
            "v2/account.status": (True, self._account_v2),
            "account.position": (True, self._positions_v1),
            "account.balance": (True, self._balance),
            "account.status": (True, self._account_v1),
        }

    # ---- controls --------------------------------------------------------------------------

    def set_rate_limits(self, request_weight: int, orders_10s: int, orders_1m: int) -> None:
        """The limits counted against (and, with ``enforce_rate_limits``, enforced)."""
        for name, value in (
            ("request_weight", request_weight),
            ("orders_10s", orders_10s),
            ("orders_1m", orders_1m),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.request_weight_limit = request_weight
        self.orders_10s_limit = orders_10s
        self.orders_1m_limit = orders_1m

    def revoke_key(self, api_key: str) -> None:
        """
        Revoke ``api_key``: the next request of each connection that was using it (logged on
        with it, or that had signed with it) gets an id-null 401 -2015 and the session is
        logged out; any other request with it gets -2015 (400). Its listenKey is dropped.
        Registering the key again makes it valid again.

        Raises:
            KeyError: ``api_key`` is not registered.
        """
        if api_key not in self.keys:
            raise KeyError(f"unknown API key {api_key!r}")
        del self.keys[api_key]
        self.revoked[api_key] = set()
        self.listen_keys.pop(api_key, None)

    def active_listen_keys(self, now: int) -> dict[str, str]:
        """``{apiKey: listenKey}`` of the listenKeys alive at ``now``."""
        return {k: key for k, (key, expires) in self.listen_keys.items() if expires > now}

    def exchange_info(self, now: int) -> JsonDict:
        """
        The fixture's exchangeInfo as served now: ``serverTime`` = ``now``, the configured
        limits in ``rateLimits``, and one entry per symbol of the fake (the fixture's entry, or
        one built from the filters of a symbol added with ``add_symbol``).
        """
        info = {k: copy.deepcopy(v) for k, v in self.info.items() if k != "symbols"}
        info["serverTime"] = now
        limits = {
            ("REQUEST_WEIGHT", "MINUTE", 1): self.request_weight_limit,
            ("ORDERS", "SECOND", 10): self.orders_10s_limit,
            ("ORDERS", "MINUTE", 1): self.orders_1m_limit,
        }
        for item in info.get("rateLimits") or ():
            if isinstance(item, dict):
                key = (item.get("rateLimitType"), item.get("interval"), item.get("intervalNum"))
                if key in limits:
                    item["limit"] = limits[key]
        info["symbols"] = [
            copy.deepcopy(spec.info) if spec.info is not None else info_of(spec)
            for spec in self.symbols.values()
        ]
        return info

    def listed(self) -> list[SymbolSpec]:
        """The symbols shown when a request names none: those with status TRADING."""
        return [spec for spec in self.symbols.values() if spec.status == TRADING]

    # ---- scripted behaviour ----------------------------------------------------------------

    @staticmethod
    def add_rule(
        table: dict[str, list[_Rule]], method: str, value: Any, times: Optional[int]
    ) -> None:
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty str")
        bad_times = isinstance(times, bool) or not isinstance(times, int) or times < 1
        if times is not None and bad_times:
            raise ValueError(f"times must be a positive int or None (forever), got {times!r}")
        table.setdefault(method, []).append(_Rule(value, times))

    def add_script(
        self,
        method: str,
        result: Any,
        error: Optional[Mapping[str, Any]],
        status: Optional[int],
        times: Optional[int],
    ) -> None:
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result= and error=")
        if error is not None:
            if not isinstance(error, Mapping) or "code" not in error:
                raise ValueError('error must be a dict like {"code": -1000, "msg": "..."}')
            script = _Script(None, dict(error), 400 if status is None else status)
        else:
            script = _Script(copy.deepcopy(result), None, 200 if status is None else status)
        self.add_rule(self.scripts, method, script, times)

    @staticmethod
    def _take(table: dict[str, list[_Rule]], method: str) -> Any:
        rules = table.get(method)
        if not rules:
            return None
        rule = rules[0]
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.pop(0)
                if not rules:
                    del table[method]
        return rule.value

    def clear_scripts(self) -> None:
        self.scripts.clear()
        self.delays.clear()
        self.withholds.clear()
        self.failures.clear()

    def add_failure(
        self,
        method: str,
        status: int,
        code: Optional[int],
        msg: Optional[str],
        times: Optional[int],
    ) -> None:
        """Handle the next ``times`` requests of ``method`` as usual, then answer an error."""
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an int from 400 to 599, got {status!r}")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ValueError(f"code must be an int or None, got {code!r}")
        if msg is not None and not isinstance(msg, str):
            raise ValueError(f"msg must be a str or None, got {msg!r}")
        error: JsonDict = {} if code is None else {"code": code}
        if msg is None:
            msg = UNKNOWN_OUTCOME_MSGS.get(code, MSG_SERVER_ERROR) if code else MSG_SERVER_ERROR
        error["msg"] = msg
        self.add_rule(self.failures, method, (status, error), times)

    # ---- frames ----------------------------------------------------------------------------

    def open_session(self, index: int, now: int, return_rate_limits: bool) -> Session:
        session = Session(index, now, return_rate_limits)
        session.weight.add(now, HANDSHAKE_WEIGHT)
        return session

    def process(self, session: Session, message: Union[str, bytes], now: int) -> Outcome:
        """The outcome of one received frame; never raises for bad input."""
        if isinstance(message, bytes):
            return Outcome(
                None,
                self._bad_frame(
                    session, now, "Binary frames are not supported; send JSON text frames."
                ),
            )
        try:
            frame = load_frame(message)
        except ValueError as exc:
            return Outcome(None, self._bad_frame(session, now, f"Malformed JSON request: {exc}."))
        if not isinstance(frame, dict):
            return Outcome(
                None, self._bad_frame(session, now, "Malformed request: expected a JSON object.")
            )
        request_id = frame.get("id")
        method = frame.get("method")
        params = frame.get("params")
        record = {"id": request_id, "method": method, "params": params}
        if not valid_id(request_id):
            return Outcome(
                record,
                self._bad_frame(
                    session,
                    now,
                    MSG_BAD_ID,
                ),
            )
        if not isinstance(method, str) or not method:
            return Outcome(
                record,
                self._error_reply(
                    session,
                    now,
                    request_id,
                    {},
                    ApiError(-1000, "Invalid request: 'method' is missing or not a string."),
                ),
            )
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return Outcome(
                record,
                self._error_reply(
                    session,
                    now,
                    request_id,
                    {},
                    ApiError(-1000, "Invalid request: 'params' must be a JSON object."),
                ),
            )
        revoked = self._revoked_key(session, params)
        if revoked is not None:
            # Binance's notice that the key died during the session: id null, the session
            # is logged out, the request is not executed (nor scripted, delayed or withheld).
            self.revoked[revoked].add(session.index)
            if session.api_key == revoked:
                session.api_key = None
                session.authorized_since = None
            session.weight.add(now, self.weight(method, params))
            return Outcome(
                record,
                {
                    "id": None,
                    "status": 401,
                    "error": {"code": -2015, "msg": MSG_API_KEY_INVALID},
                },
            )
        limits, refused = self._count(session, method, params, now, enforce=True)
        if refused is not None:
            error, retry_at = refused
            limited: JsonDict = {
                "id": request_id,
                "status": error.status,
                "error": {"code": error.code, "msg": error.msg},
                "retryAfter": retry_at,
            }
            if self._want_rate_limits(session, params):
                limited["rateLimits"] = limits
            return Outcome(record, limited)
        withheld = self._take(self.withholds, method) is not None
        script: Optional[_Script] = None if withheld else self._take(self.scripts, method)
        delay = 0.0 if withheld else float(self._take(self.delays, method) or 0.0)
        failure = None if withheld or script is not None else self._take(self.failures, method)
        reply: JsonDict
        if script is not None:
            if script.error is not None:
                reply = {"id": request_id, "status": script.status, "error": dict(script.error)}
            else:
                reply = {
                    "id": request_id,
                    "status": script.status,
                    "result": copy.deepcopy(script.result),
                }
        else:
            try:
                result = self._dispatch(session, method, params, now)
                reply = {"id": request_id, "status": 200, "result": result}
            except ApiError as exc:
                reply = {
                    "id": request_id,
                    "status": exc.status,
                    "error": {"code": exc.code, "msg": exc.msg},
                }
            except Exception as exc:  # a bug of the fake: answer rather than drop the link
                _LOG.exception("FakeExchange failed on a %s request", method)
                reply = {
                    "id": request_id,
                    "status": 500,
                    "error": {
                        "code": -1000,
                        "msg": f"FakeExchange internal error: {type(exc).__name__}: {exc}",
                    },
                }
            if failure is not None:  # handled (an order placed), yet answered as a failure
                status, error = failure
                reply = {"id": request_id, "status": status, "error": dict(error)}
        if self._want_rate_limits(session, params):
            reply["rateLimits"] = limits
        return Outcome(record, None if withheld else reply, delay)

    def _bad_frame(self, session: Session, now: int, msg: str) -> JsonDict:
        return self._error_reply(session, now, None, {}, ApiError(-1000, msg))

    def _error_reply(
        self, session: Session, now: int, request_id: Any, params: JsonDict, error: ApiError
    ) -> JsonDict:
        limits, _ = self._count(session, "", params, now, enforce=False)
        reply: JsonDict = {
            "id": request_id,
            "status": error.status,
            "error": {"code": error.code, "msg": error.msg},
        }
        if session.return_rate_limits:
            reply["rateLimits"] = limits
        return reply

    # ---- rate limits -----------------------------------------------------------------------

    @staticmethod
    def _want_rate_limits(session: Session, params: Mapping[str, Any]) -> bool:
        value = params.get("returnRateLimits")
        if value is True or (isinstance(value, str) and value.lower() == "true"):
            return True
        if value is False or (isinstance(value, str) and value.lower() == "false"):
            return False
        return session.return_rate_limits

    def _order_windows(
        self, session: Session, params: Mapping[str, Any]
    ) -> tuple[_Window, _Window]:
        """The ORDERS windows of the account: per API key (the request's, else the logon's)."""
        api_key = params.get("apiKey")
        if not isinstance(api_key, str) or not api_key:
            api_key = session.api_key
        account = f"key:{api_key}" if api_key else f"connection:{session.index}"
        windows = self.order_windows.get(account)
        if windows is None:
            windows = self.order_windows[account] = (_Window(10000), _Window(60000))
        return windows

    def _count(
        self, session: Session, method: str, params: Mapping[str, Any], now: int, enforce: bool
    ) -> tuple[list[JsonDict], Optional[tuple[ApiError, int]]]:
        """
        Count the request and give the ``rateLimits`` to report. With ``enforce`` (and
        ``enforce_rate_limits``), a request that would go over a limit is not counted and
        ``(the 429 error, when it would fit in ms)`` is returned as well.
        """
        weight = self.weight(method, params)
        window = session.weight
        used = window.count(now)
        is_order = method in ORDER_METHODS
        counted: tuple[int, int] = (0, 0)
        orders: Optional[tuple[_Window, _Window]] = None
        if is_order:
            orders = self._order_windows(session, params)
            counted = (orders[0].count(now), orders[1].count(now))
        refused: Optional[tuple[ApiError, int]] = None
        if enforce and self.enforce_rate_limits:
            if weight and used + weight > self.request_weight_limit:
                msg = MSG_TOO_MANY_REQUESTS.format(ip=session.ip, limit=self.request_weight_limit)
                at = window.free_at(now, weight, self.request_weight_limit)
                refused = (ApiError(-1003, msg, 429), at)
            elif orders is not None:
                for count, limit, label, order_window in (
                    (counted[0], self.orders_10s_limit, "10 SECOND", orders[0]),
                    (counted[1], self.orders_1m_limit, "MINUTE", orders[1]),
                ):
                    if count + 1 > limit:
                        msg = MSG_TOO_MANY_ORDERS.format(limit=limit, interval=label)
                        refused = (ApiError(-1015, msg, 429), order_window.free_at(now, 1, limit))
                        break
        if refused is None:
            window.add(now, weight)
            used += weight
            if orders is not None:
                orders[0].add(now, 1)
                orders[1].add(now, 1)
                counted = (counted[0] + 1, counted[1] + 1)
        limits = [
            rate_limit("REQUEST_WEIGHT", "MINUTE", 1, self.request_weight_limit, used),
        ]
        if is_order:
            limits.append(rate_limit("ORDERS", "SECOND", 10, self.orders_10s_limit, counted[0]))
            limits.append(rate_limit("ORDERS", "MINUTE", 1, self.orders_1m_limit, counted[1]))
        return limits, refused

    def _revoked_key(self, session: Session, params: Mapping[str, Any]) -> Optional[str]:
        """A revoked key this connection was using and has not been told about, if any."""
        candidates = [session.api_key, params.get("apiKey")]
        for key in candidates:
            if not isinstance(key, str) or key in self.keys:
                continue
            told = self.revoked.get(key)
            if told is None or session.index in told:
                continue
            if key == session.api_key or key in session.used_keys:
                return key
        return None

    @staticmethod
    def weight(method: str, params: Mapping[str, Any]) -> int:
        """The REQUEST_WEIGHT of a request, per §3."""
        has_symbol = not _missing(params.get("symbol"))
        if method.startswith("session."):
            return 2
        if method == "depth":
            try:
                limit = int_param(params, "limit")
            except ApiError:
                limit = None
            return DEPTH_LIMITS.get(500 if limit is None else limit, 10)
        if method == "ticker.price":
            return 1 if has_symbol else 2
        if method == "ticker.book":
            return 2 if has_symbol else 5
        if method in ("order.place", "order.modify", "algoOrder.place"):
            return 0
        if "account." in method:
            return 5
        return 1

    # ---- dispatch and authentication -------------------------------------------------------

    def _dispatch(self, session: Session, method: str, params: JsonDict, now: int) -> Any:
        entry = self.handlers.get(method)
        if entry is None:
            raise ApiError(-1000, f"Unknown method '{method}'.")
        signed, handler = entry
        if signed:
            self._authenticate(session, params, now, logon=False)
        return handler(session, params, now)

    def _authenticate(self, session: Session, params: JsonDict, now: int, logon: bool) -> str:
        api_key = params.get("apiKey")
        if _missing(api_key):
            if not logon and session.api_key is not None:
                self._check_timestamp(params, now)
                session.used_keys.add(session.api_key)
                return session.api_key
            raise mandatory("apiKey")
        if not isinstance(api_key, str) or not (api_key.isascii() and api_key.isalnum()):
            raise ApiError(-2014, MSG_API_KEY_FORMAT)
        key = self.keys.get(api_key)
        if key is None:
            raise ApiError(-2015, MSG_API_KEY_INVALID)
        self._check_timestamp(params, now)
        signature = params.get("signature")
        if _missing(signature):
            raise mandatory("signature")
        if not isinstance(signature, str) or not key.verify(params, signature):
            raise ApiError(-1022, MSG_SIGNATURE)
        if logon and key.kind != ED25519:
            # Binance takes only Ed25519 keys for session.logon; the code it sends for another
            # kind is unconfirmed (-1022 or -4056): the fake answers -1022.
            raise ApiError(-1022, MSG_SIGNATURE)
        session.used_keys.add(api_key)
        return api_key

    def _stream_key(self, session: Session, params: Mapping[str, Any]) -> str:
        """USER_STREAM security: the ``apiKey`` param (no signature), else the logon's key."""
        api_key = params.get("apiKey")
        if _missing(api_key):
            if session.api_key is not None:
                return session.api_key
            raise mandatory("apiKey")
        if not isinstance(api_key, str) or not (api_key.isascii() and api_key.isalnum()):
            raise ApiError(-2014, MSG_API_KEY_FORMAT)
        if api_key not in self.keys:
            raise ApiError(-2015, MSG_API_KEY_INVALID)
        session.used_keys.add(api_key)
        return api_key

    @staticmethod
    def _check_timestamp(params: Mapping[str, Any], now: int) -> None:
        timestamp = int_param(params, "timestamp", required=True)
        assert timestamp is not None
        try:
            recv_window = int_param(params, "recvWindow")
        except ApiError:
            raise invalid("recvWindow") from None
        if recv_window is None:
            recv_window = DEFAULT_RECV_WINDOW
        if recv_window <= 0:
            raise invalid("recvWindow")
        if timestamp >= now + 1000:
            raise ApiError(-1021, MSG_TS_AHEAD)
        if now - timestamp > recv_window:
            raise ApiError(-1021, MSG_TS_OUTSIDE)

    # ---- session.* -------------------------------------------------------------------------

    @staticmethod
    def _session_object(session: Session, now: int) -> JsonDict:
        return {
            "apiKey": session.api_key,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_since,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now,
        }

    def _session_logon(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        api_key = self._authenticate(session, params, now, logon=True)
        session.api_key = api_key
        session.authorized_since = now
        return self._session_object(session, now)

    def _session_status(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        return self._session_object(session, now)

    def _session_logout(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        session.api_key = None
        session.authorized_since = None
        return self._session_object(session, now)

    # ---- market data -----------------------------------------------------------------------

    def symbol_spec(self, params: Mapping[str, Any], required: bool = True) -> Optional[SymbolSpec]:
        name = params.get("symbol")
        if _missing(name):
            if required:
                raise mandatory("symbol")
            return None
        spec = self.symbols.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec

    @staticmethod
    def levels(spec: SymbolSpec, bids: bool, count: int) -> list[list[str]]:
        """The fake's fixed book: ``count`` (at most 20) levels one tick apart off the price."""
        out: list[list[str]] = []
        for i in range(min(count, BOOK_LEVELS)):
            offset = spec.tick_size * (i + 1)
            price = spec.price - offset if bids else spec.price + offset
            if price <= 0:
                break
            qty = Decimal("0.250") * ((i * 3 + (0 if bids else 1)) % 8 + 1)
            out.append([fmt(price, spec.price_precision), fmt(qty, spec.quantity_precision)])
        return out

    def _depth(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        spec = self.symbol_spec(params)
        assert spec is not None
        try:
            limit = int_param(params, "limit")
        except ApiError:
            raise invalid("limit") from None
        if limit is None:
            limit = 500
        return self.depth_snapshot(spec.symbol, limit, now)

    def live_book(self, symbol: str) -> Book:
        """
        ``symbol``'s live book (streams publish its diffs), created on first use from the
        fixed ladder at the symbol's price, its ids continuing from ``update_id``.
        ``KeyError`` for an unknown symbol.
        """
        book = self.books.get(symbol)
        if book is None:
            spec = self.symbols[symbol]
            ladder = [
                [(Decimal(p), Decimal(q)) for p, q in self.levels(spec, side, BOOK_LEVELS)]
                for side in (True, False)
            ]
            book = Book(
                ladder[0], ladder[1], self.update_id, spec.price_precision, spec.quantity_precision
            )
            self.books[symbol] = book
        return book

    def depth_snapshot(self, symbol: str, limit: int, now: int) -> JsonDict:
        """
        The depth answer (ws-fapi ``depth``, REST ``GET /fapi/v1/depth``): from the live book
        when ``symbol`` has one (its ``lastUpdateId`` fits the streamed ``U/u/pu`` chain),
        else the fixed ladder. ``ApiError`` -1121 (symbol) or -1130 (``limit`` not one of
        5 10 20 50 100 500 1000).
        """
        spec = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        if isinstance(limit, bool) or limit not in DEPTH_LIMITS:
            raise invalid("limit")
        book = self.books.get(symbol)
        if book is not None:
            return book.snapshot(limit, now)
        return {
            "lastUpdateId": self.update_id,
            "E": now,
            "T": now,
            "bids": self.levels(spec, True, limit),
            "asks": self.levels(spec, False, limit),
        }

    def _ticker_price(self, session: Session, params: JsonDict, now: int) -> Any:
        spec = self.symbol_spec(params, required=False)
        specs = [spec] if spec is not None else self.listed()
        items = [
            {"symbol": s.symbol, "price": fmt(s.price, s.price_precision), "time": now}
            for s in specs
        ]
        return items[0] if spec is not None else items

    def _ticker_book(self, session: Session, params: JsonDict, now: int) -> Any:
        spec = self.symbol_spec(params, required=False)
        specs = [spec] if spec is not None else self.listed()
        items = []
        for s in specs:
            bid = self.levels(s, True, 1)
            ask = self.levels(s, False, 1)
            update_id = self.update_id
            live = self.books.get(s.symbol)
            if live is not None:  # a symbol streams publish depth for: its live book
                (bid_level, ask_level), update_id = live.best(), live.last_update_id
                bid = live.wire([bid_level]) if bid_level[1] else []
                ask = live.wire([ask_level]) if ask_level[1] else [["0", "0"]]
            items.append(
                {
                    "lastUpdateId": update_id,
                    "symbol": s.symbol,
                    "bidPrice": bid[0][0] if bid else "0",
                    "bidQty": bid[0][1] if bid else "0",
                    "askPrice": ask[0][0],
                    "askQty": ask[0][1],
                    "time": now,
                }
            )
        return items[0] if spec is not None else items

    # ---- order checks shared by order.place and algoOrder.place ----------------------------

    @staticmethod
    def _check_quantity(spec: SymbolSpec, qty: Decimal, market: bool = False) -> None:
        """LOT_SIZE (MARKET_LOT_SIZE when ``market``); a bound or step of 0 is no rule."""
        min_qty, max_qty, step = spec.lot(market)
        if qty <= 0:
            raise ApiError(-4003, "Quantity less than or equal to zero.")
        if step > 0 and _decimals(qty) > _places(step):
            raise ApiError(-1111, MSG_PRECISION)
        if min_qty > 0 and qty < min_qty:
            raise ApiError(-4004, "Quantity less than min quantity.")
        if max_qty > 0 and qty > max_qty:
            raise ApiError(-4005, "Quantity greater than max quantity.")
        if step > 0 and (qty - min_qty) % step != 0:
            raise ApiError(-4023, "Qty not increased by step size.")

    @staticmethod
    def _check_price(spec: SymbolSpec, price: Decimal) -> None:
        """PRICE_FILTER; a bound or tick of 0 is no rule."""
        if price <= 0:
            raise ApiError(-4013, "Price less than min price.")
        if spec.tick_size > 0 and _decimals(price) > _places(spec.tick_size):
            raise ApiError(-1111, MSG_PRECISION)
        if spec.min_price > 0 and price < spec.min_price:
            raise ApiError(-4013, "Price less than min price.")
        if spec.max_price > 0 and price > spec.max_price:
            raise ApiError(-4002, "Price greater than max price.")
        if spec.tick_size > 0 and (price - spec.min_price) % spec.tick_size != 0:
            raise ApiError(-4014, "Price not increased by tick size.")

    @staticmethod
    def _check_percent_price(spec: SymbolSpec, side: str, price: Decimal) -> None:
        """PERCENT_PRICE against the mark price (the fake's price)."""
        high = spec.price * spec.percent_up
        low = spec.price * spec.percent_down
        if spec.percent_up > 0 and side == "BUY" and price > high:
            raise ApiError(
                -4016, f"Limit price can't be higher than {fmt(high, spec.price_precision)}."
            )
        if spec.percent_down > 0 and side == "SELL" and price < low:
            raise ApiError(
                -4024, f"Limit price can't be lower than {fmt(low, spec.price_precision)}."
            )

    @staticmethod
    def _check_notional(spec: SymbolSpec, notional: Decimal, code: int = -4164) -> None:
        """MIN_NOTIONAL (the caller skips reduce-only orders); -5029 for order.modify."""
        if spec.min_notional > 0 and notional < spec.min_notional:
            tail = " (unless you choose reduce only)." if code == -4164 else ""
            raise ApiError(
                code, f"Order's notional must be no smaller than {spec.min_notional}{tail}"
            )

    @staticmethod
    def _check_trading(spec: SymbolSpec) -> None:
        if spec.status != TRADING:
            raise ApiError(-4140, MSG_SYMBOL_STATUS)

    @staticmethod
    def _crosses(spec: SymbolSpec, side: str, price: Decimal) -> bool:
        """Whether a LIMIT price takes liquidity: the fake's book is one tick off the price."""
        best_bid = spec.price - spec.tick_size
        best_ask = spec.price + spec.tick_size
        return (side == "BUY" and price >= best_ask) or (side == "SELL" and price <= best_bid)

    @staticmethod
    def _check_position_side(params: Mapping[str, Any]) -> str:
        value = params.get("positionSide")
        if _missing(value) or value == "BOTH":
            return "BOTH"
        if value in ("LONG", "SHORT"):
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        raise invalid("positionSide")

    @staticmethod
    def _good_till(params: Mapping[str, Any], tif: str, now: int) -> int:
        if tif != "GTD":
            return 0
        value = int_param(params, "goodTillDate", required=True)
        assert value is not None
        if not now + 600000 < value < MAX_GOOD_TILL_DATE:
            raise ApiError(
                -5040,
                "goodTillDate must be greater than current time plus 600 seconds and smaller "
                "than 253402300799000.",
            )
        return value - value % 1000

    @staticmethod
    def _client_id(
        params: Mapping[str, Any], name: str, taken: Callable[[str], bool]
    ) -> Optional[str]:
        value = params.get(name)
        if _missing(value):
            return None
        if not isinstance(value, str) or not CLIENT_ID_RE.match(value):
            raise ApiError(-4015, "Client order id is not valid.")
        if taken(value):
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        return value

    def _open_orders(self) -> list[JsonDict]:
        """The orders still open (NEW, PARTIALLY_FILLED), without scanning every order."""
        still_open = []
        for order_id in list(self.open_order_ids):
            order = self.orders[order_id]
            if order["status"] in OPEN_STATUSES:
                still_open.append(order)
            else:
                del self.open_order_ids[order_id]
        return still_open

    def _open_order_id(self, client_id: str) -> bool:
        order = self.orders_by_client_id.get(client_id)
        return order is not None and order["status"] in OPEN_STATUSES

    def _open_algo_id(self, client_id: str) -> bool:
        algo = self.algo_orders_by_client_id.get(client_id)
        return algo is not None and algo["algoStatus"] == "NEW"

    def _match_price(self, spec: SymbolSpec, side: str, match: str) -> Decimal:
        """The price ``priceMatch`` picks from the fake's book."""
        opponent = match.startswith("OPPONENT")
        level = int(match.rsplit("_", 1)[1]) if "_" in match else 1
        use_bids = (side == "SELL") if opponent else (side == "BUY")
        book = self.levels(spec, use_bids, level)
        return Decimal(book[-1][0])

    # ---- order.place -----------------------------------------------------------------------

    def _order_place(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        for name in ("symbol", "side", "type"):
            text_param(params, name, required=True)
        side = enum_param(params, "side", SIDES, ApiError(-1117, "Invalid side."))
        otype = enum_param(params, "type", ORDER_TYPES, ApiError(-1116, "Invalid orderType."))
        tif_given = enum_param(
            params, "timeInForce", TIME_IN_FORCE, ApiError(-1115, "Invalid timeInForce.")
        )
        assert side is not None and otype is not None
        if otype in CONDITIONAL_TYPES:
            raise ApiError(-4120, MSG_4120)
        spec = self.symbol_spec(params)
        assert spec is not None
        self._check_trading(spec)
        position_side = self._check_position_side(params)
        reduce_only = flag_param(params, "reduceOnly", code=-4062)
        price_match, stp, resp_type = _order_enums(params)
        client_id = self._client_id(params, "newClientOrderId", self._open_order_id)

        quantity = decimal_param(params, "quantity", required=True)
        assert quantity is not None
        qty = quantity[1]
        price = Decimal(0)
        if otype == "LIMIT":
            tif = tif_given
            if tif is None:
                raise mandatory("timeInForce")
            if price_match != "NONE":
                if not _missing(params.get("price")):
                    raise ApiError(-1128, "Combination of optional parameters invalid.")
                price = self._match_price(spec, side, price_match)
            else:
                given = decimal_param(params, "price", required=True)
                assert given is not None
                price = given[1]
            good_till = self._good_till(params, tif, now)
        else:
            if price_match != "NONE":
                raise ApiError(
                    -5038, "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT."
                )
            tif = "GTC"
            good_till = 0
        self._check_quantity(spec, qty, market=otype == "MARKET")
        if otype == "LIMIT":
            self._check_price(spec, price)
            self._check_percent_price(spec, side, price)
        if not reduce_only:
            self._check_notional(spec, (price if otype == "LIMIT" else spec.price) * qty)
        position = self.positions.get(spec.symbol, Position())
        if reduce_only and not (
            (side == "BUY" and position.amount < 0) or (side == "SELL" and position.amount > 0)
        ):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")

        # Would it take liquidity? The fake's book is one tick either side of the price.
        crosses = otype == "MARKET" or self._crosses(spec, side, price)
        if crosses and tif in ("GTX", "RPI"):
            raise ApiError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only "
                "order will be rejected.",
            )
        if not crosses and tif == "FOK":
            raise ApiError(
                -5021,
                "Due to the order could not be filled immediately, the FOK "
                "order has been rejected.",
            )

        order_id = self.next_order_id
        self.next_order_id += 1
        self.update_id += 1
        if client_id is None:
            client_id = f"fake{order_id}"
        executed = Decimal(0)
        status = "NEW"
        if crosses:
            executed = self._fill(spec, side, qty, spec.price, reduce_only, now)
            status = "FILLED"
        elif tif == "IOC":
            status = "EXPIRED"
        order: JsonDict = {
            "orderId": order_id,
            "symbol": spec.symbol,
            "status": status,
            "clientOrderId": client_id,
            "price": spec.price_text(price),  # 0 for MARKET
            "avgPrice": fmt(spec.price if executed else Decimal(0), spec.price_precision),
            "origQty": spec.qty_text(qty),
            "executedQty": fmt(executed, spec.quantity_precision),
            "cumQty": fmt(executed, spec.quantity_precision),
            "cumQuote": fmt(executed * spec.price, 5),
            "timeInForce": tif,
            "type": otype,
            "reduceOnly": reduce_only,
            "closePosition": False,
            "side": side,
            "positionSide": position_side,
            "stopPrice": fmt(Decimal(0), spec.price_precision),
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": otype,
            "priceMatch": price_match,
            "selfTradePreventionMode": stp,
            "goodTillDate": good_till,
            "time": now,
            "updateTime": now,
        }
        self.orders[order_id] = order
        self.orders_by_client_id[order["clientOrderId"]] = order
        self.open_order_ids[order_id] = None
        _userdata.order_placed(self, order, spec, executed, now)
        reply = {k: v for k, v in order.items() if k != "time"}
        if resp_type == "ACK":
            # The ACK answer comes before matching: the order as it was when accepted.
            reply.update(
                status="NEW",
                avgPrice=fmt(Decimal(0), spec.price_precision),
                executedQty=fmt(Decimal(0), spec.quantity_precision),
                cumQty=fmt(Decimal(0), spec.quantity_precision),
                cumQuote=fmt(Decimal(0), 5),
            )
        return reply

    def _fill(
        self,
        spec: SymbolSpec,
        side: str,
        qty: Decimal,
        price: Decimal,
        reduce_only: bool,
        now: int,
    ) -> Decimal:
        """Apply a fill to the one-way position and the USDT balance; the quantity filled."""
        position = self.positions.setdefault(spec.symbol, Position())
        old = position.amount
        self.last_realized = Decimal(0)
        signed = qty if side == "BUY" else -qty
        if reduce_only:
            signed = max(signed, -old) if old > 0 else min(signed, -old)
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            cost = abs(old) * position.entry_price + abs(signed) * price
            position.entry_price = cost / abs(new)
        else:
            closed = min(abs(signed), abs(old))
            realized = closed * (price - position.entry_price) * (1 if old > 0 else -1)
            self.last_realized = realized
            self.balances["USDT"] = self.balances.get("USDT", Decimal(0)) + realized
            self.balance_times["USDT"] = now
            if new == 0:
                position.entry_price = Decimal(0)
            elif (new > 0) != (old > 0):
                position.entry_price = price
        position.amount = new
        position.update_time = now
        return abs(signed)

    # ---- order.status / order.cancel / order.modify ----------------------------------------

    def _find_order(
        self, params: Mapping[str, Any], spec: SymbolSpec, unknown: ApiError
    ) -> JsonDict:
        """
        The order named by ``orderId`` (which wins when both are sent) or
        ``origClientOrderId`` (the newest order with that id) on ``spec``'s symbol.
        """
        order = _lookup(
            params, "orderId", self.orders, "origClientOrderId", self.orders_by_client_id
        )
        if order is None or order["symbol"] != spec.symbol:
            raise unknown
        return order

    @staticmethod
    def _order_reply(order: Mapping[str, Any]) -> JsonDict:
        """The order object of order.place / order.modify / order.cancel (no ``time``)."""
        return {k: v for k, v in order.items() if k != "time"}

    def _order_status(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        spec = self.symbol_spec(params)
        assert spec is not None
        return dict(self._find_order(params, spec, ApiError(-2013, MSG_NO_SUCH_ORDER)))

    def _order_cancel(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        spec = self.symbol_spec(params)
        assert spec is not None
        order = self._find_order(params, spec, ApiError(-2011, MSG_UNKNOWN_ORDER))
        if order["status"] not in OPEN_STATUSES:
            raise ApiError(-2011, MSG_UNKNOWN_ORDER)
        order["status"] = "CANCELED"
        order["updateTime"] = now
        _userdata.order_update(self, order, spec, "CANCELED", now)
        return self._order_reply(order)

    def _order_modify(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        for name in ("symbol", "side", "quantity"):
            text_param(params, name, required=True)
        side = enum_param(params, "side", SIDES, ApiError(-1117, "Invalid side."))
        assert side is not None
        spec = self.symbol_spec(params)
        assert spec is not None
        if spec.status != TRADING:
            raise ApiError(-5024, MSG_MODIFY_NOT_TRADING)
        match = (
            enum_param(params, "priceMatch", PRICE_MATCH, ApiError(-5037, "Invalid price match."))
            or "NONE"
        )
        quantity = decimal_param(params, "quantity", required=True)
        assert quantity is not None
        qty = quantity[1]
        given = decimal_param(params, "price")
        if given is not None and match != "NONE":
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if given is None and match == "NONE":
            raise either("price", "priceMatch")
        order = self._find_order(params, spec, ApiError(-2013, MSG_NO_SUCH_ORDER))
        if order["type"] != "LIMIT":
            raise ApiError(-5025, MSG_LIMIT_ONLY)
        if order["status"] not in OPEN_STATUSES:
            # Binance's code for a final order is unconfirmed: the matching engine no longer
            # knows the order, so the fake answers as for an unknown one.
            raise ApiError(-2013, MSG_NO_SUCH_ORDER)
        if side != order["side"]:
            raise invalid("side")
        price = given[1] if given is not None else self._match_price(spec, side, match)
        self._check_quantity(spec, qty)
        self._check_price(spec, price)
        self._check_percent_price(spec, side, price)
        unchanged = (
            qty == Decimal(order["origQty"])
            and price == Decimal(order["price"])
            and match == order["priceMatch"]
        )
        if unchanged:
            raise ApiError(-5027, MSG_SAME_ORDER)
        if not order["reduceOnly"]:
            self._check_notional(spec, price * qty, code=-5029)
        done = self.modifications.get(order["orderId"], 0)
        if done >= spec.max_modifications:
            raise ApiError(-5026, MSG_MODIFY_LIMIT)
        self.modifications[order["orderId"]] = done + 1

        executed = Decimal(order["executedQty"])
        order.update(
            price=spec.price_text(price),
            origQty=spec.qty_text(qty),
            priceMatch=match,
            updateTime=now,
        )
        crosses = self._crosses(spec, side, price)
        if qty <= executed or (crosses and order["timeInForce"] in ("GTX", "RPI")):
            # Binance cancels the order instead: the new quantity is already filled, or a
            # post-only order would now take liquidity.
            order["status"] = "CANCELED"
        elif crosses:
            filled = self._fill(spec, side, qty - executed, spec.price, order["reduceOnly"], now)
            total = executed + filled
            old_quote = Decimal(order["cumQuote"])
            quote = old_quote + filled * spec.price
            order.update(
                status="FILLED",
                avgPrice=fmt(quote / total, spec.price_precision),
                executedQty=fmt(total, spec.quantity_precision),
                cumQty=fmt(total, spec.quantity_precision),
                cumQuote=fmt(quote, 5),
            )
        _userdata.order_amended(self, order, spec, executed, now)
        reply = self._order_reply(order)
        # modifyId (2026-07): the one sent, else one the fake numbers (its form is unconfirmed).
        modify_id = params.get("modifyId")
        if _missing(modify_id):
            modify_id = self.next_modify_id
            self.next_modify_id += 1
        reply["modifyId"] = modify_id
        return reply

    # ---- algoOrder.place -------------------------------------------------------------------

    def _algo_order_place(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        for name in ("algoType", "symbol", "side", "type"):
            text_param(params, name, required=True)
        if params.get("algoType") != "CONDITIONAL":
            raise invalid("algoType")
        side = enum_param(params, "side", SIDES, ApiError(-1117, "Invalid side."))
        otype = enum_param(params, "type", CONDITIONAL_TYPES, ApiError(-1116, "Invalid orderType."))
        tif = (
            enum_param(
                params, "timeInForce", TIME_IN_FORCE, ApiError(-1115, "Invalid timeInForce.")
            )
            or "GTC"
        )
        assert side is not None and otype is not None
        spec = self.symbol_spec(params)
        assert spec is not None
        self._check_trading(spec)
        position_side = self._check_position_side(params)
        reduce_only = flag_param(params, "reduceOnly", code=-4062)
        close_position = flag_param(params, "closePosition")
        price_protect = flag_param(params, "priceProtect")
        working_type = (
            enum_param(params, "workingType", WORKING_TYPES, invalid("workingType"))
            or "CONTRACT_PRICE"
        )
        price_match, stp, _ = _order_enums(params)
        client_id = self._client_id(params, "clientAlgoId", self._open_algo_id)

        limit_like = otype in ("STOP", "TAKE_PROFIT")
        trailing = otype == "TRAILING_STOP_MARKET"
        if close_position and (limit_like or trailing):
            raise ApiError(-1106, "Parameter 'closePosition' sent when not required.")
        if close_position and reduce_only:
            raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
        if price_match != "NONE" and not limit_like:
            raise ApiError(
                -5038, "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT."
            )
        quantity = decimal_param(params, "quantity", required=not close_position)
        if close_position and quantity is not None:
            raise ApiError(-4137, "Quantity must be zero with closePosition equals true.")
        trigger = None if trailing else decimal_param(params, "triggerPrice", required=True)
        price: Optional[tuple[str, Decimal]] = None
        if limit_like:
            if price_match == "NONE":
                price = decimal_param(params, "price", required=True)
            elif not _missing(params.get("price")):
                raise ApiError(-1128, "Combination of optional parameters invalid.")
        callback = decimal_param(params, "callbackRate", required=True) if trailing else None
        activate = decimal_param(params, "activatePrice") if trailing else None
        good_till = self._good_till(params, tif, now)

        if quantity is not None:
            self._check_quantity(spec, quantity[1])
        for given in (trigger, price, activate):
            if given is not None:
                self._check_price(spec, given[1])
        if callback is not None and not Decimal("0.1") <= callback[1] <= Decimal(10):
            raise invalid("callbackRate")
        last = spec.price
        if quantity is not None and not reduce_only and not close_position:
            # The reference price of bfsync.filters: the limit price, else the trigger (else,
            # for trailing orders, the activation price, else the last price).
            if price is not None:
                reference = price[1]
            elif trigger is not None:
                reference = trigger[1]
            else:
                reference = activate[1] if activate is not None else last
            self._check_notional(spec, reference * quantity[1])
        if trigger is not None:
            level = trigger[1]
            if otype.startswith("STOP"):
                immediate = last >= level if side == "BUY" else last <= level
            else:
                immediate = last <= level if side == "BUY" else last >= level
            if immediate:
                raise ApiError(-2021, "Order would immediately trigger.")
        if activate is not None and (
            (side == "BUY" and activate[1] >= last) or (side == "SELL" and activate[1] <= last)
        ):
            raise ApiError(-2021, "Order would immediately trigger.")

        algo_id = self.next_algo_id
        self.next_algo_id += 1
        zero_price = fmt(Decimal(0), spec.price_precision)
        algo: JsonDict = {
            "algoId": algo_id,
            "clientAlgoId": client_id if client_id is not None else f"fakeAlgo{algo_id}",
            "algoType": "CONDITIONAL",
            "orderType": otype,
            "symbol": spec.symbol,
            "side": side,
            "positionSide": position_side,
            "timeInForce": tif,
            "quantity": spec.qty_text(quantity[1]) if quantity is not None else "0",
            "algoStatus": "NEW",
            "triggerPrice": spec.price_text(trigger[1]) if trigger is not None else zero_price,
            "price": spec.price_text(price[1]) if price is not None else zero_price,
            "icebergQuantity": None,
            "selfTradePreventionMode": stp,
            "workingType": working_type,
            "priceMatch": price_match,
            "closePosition": close_position,
            "priceProtect": price_protect,
            "reduceOnly": reduce_only,
            "createTime": now,
            "updateTime": now,
            "triggerTime": 0,
            "goodTillDate": good_till,
        }
        if trailing:
            assert callback is not None
            algo["activatePrice"] = (
                spec.price_text(activate[1]) if activate is not None else zero_price
            )
            algo["callbackRate"] = callback[0]
        self.algo_orders[algo_id] = algo
        self.algo_orders_by_client_id[algo["clientAlgoId"]] = algo
        _userdata.algo_update(self, algo, now)
        return dict(algo)

    # ---- algoOrder.cancel ------------------------------------------------------------------

    def _algo_order_cancel(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        algo = _lookup(
            params, "algoId", self.algo_orders, "clientAlgoId", self.algo_orders_by_client_id
        )
        if algo is None or algo["algoStatus"] != "NEW":
            raise ApiError(-2011, MSG_UNKNOWN_ORDER)
        algo["algoStatus"] = "CANCELED"
        algo["updateTime"] = now
        _userdata.algo_update(self, algo, now)
        return {
            "algoId": algo["algoId"],
            "clientAlgoId": algo["clientAlgoId"],
            "code": "200",
            "msg": "success",
        }

    # ---- userDataStream.* ------------------------------------------------------------------

    def _live_listen_key(self, api_key: str, now: int) -> Optional[str]:
        entry = self.listen_keys.get(api_key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self.listen_keys[api_key]
            return None
        return entry[0]

    def _user_stream_start(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        api_key = self._stream_key(session, params)
        key = self._live_listen_key(api_key, now)
        if key is None:
            key = "".join(secrets.choice(LISTEN_KEY_CHARS) for _ in range(64))
        self.listen_keys[api_key] = (key, now + LISTEN_KEY_TTL)
        return {"listenKey": key}

    def _user_stream_ping(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        api_key = self._stream_key(session, params)
        key = self._live_listen_key(api_key, now)
        if key is None:
            raise ApiError(-1125, MSG_NO_LISTEN_KEY)
        self.listen_keys[api_key] = (key, now + LISTEN_KEY_TTL)
        return {"listenKey": key}

    def _user_stream_stop(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        api_key = self._stream_key(session, params)
        self.listen_keys.pop(api_key, None)
        return {}

    # ---- account ---------------------------------------------------------------------------

    def _figures(self, spec: SymbolSpec) -> dict[str, Any]:
        """Position and open-order figures of one symbol (one-way mode, cross, 20x)."""
        position = self.positions.get(spec.symbol, Position())
        amount = position.amount
        mark = spec.price
        notional = amount * mark
        bid_notional = Decimal(0)
        ask_notional = Decimal(0)
        for order in self._open_orders():
            if order["symbol"] == spec.symbol:
                remaining = Decimal(order["origQty"]) - Decimal(order["executedQty"])
                value = Decimal(order["price"]) * remaining
                if order["side"] == "BUY":
                    bid_notional += value
                else:
                    ask_notional += value
        return {
            "amount": amount,
            "entry": position.entry_price,
            "mark": mark,
            "unpnl": (mark - position.entry_price) * amount if amount else Decimal(0),
            "notional": notional,
            "im": abs(notional) / LEVERAGE,
            "mm": abs(notional) * MAINT_MARGIN_RATE,
            "order_im": (bid_notional + ask_notional) / LEVERAGE,
            "bid": bid_notional,
            "ask": ask_notional,
            "time": position.update_time,
            "active": amount != 0 or bid_notional != 0 or ask_notional != 0,
        }

    def _account_symbols(self) -> list[SymbolSpec]:
        """The symbols account replies list: TRADING ones, and any other with a position."""
        return [
            spec
            for spec in self.symbols.values()
            if spec.status == TRADING or self._figures(spec)["active"]
        ]

    def _selected(self, params: Mapping[str, Any]) -> list[SymbolSpec]:
        spec = self.symbol_spec(params, required=False)
        return [spec] if spec is not None else self._account_symbols()

    def _positions_v2(self, session: Session, params: JsonDict, now: int) -> list[JsonDict]:
        out = []
        for spec in self._selected(params):
            f = self._figures(spec)
            if not f["active"]:
                continue
            out.append(
                {
                    "symbol": spec.symbol,
                    "positionSide": "BOTH",
                    "positionAmt": fmt(f["amount"], spec.quantity_precision),
                    "entryPrice": fmt(f["entry"], 8),
                    "breakEvenPrice": fmt(f["entry"], 8),
                    "markPrice": fmt(f["mark"], 8),
                    "unRealizedProfit": fmt(f["unpnl"], 8),
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": fmt(f["notional"], 8),
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": fmt(f["im"] + f["order_im"], 8),
                    "maintMargin": fmt(f["mm"], 8),
                    "positionInitialMargin": fmt(f["im"], 8),
                    "openOrderInitialMargin": fmt(f["order_im"], 8),
                    "adl": 0,
                    "bidNotional": fmt(f["bid"], 8),
                    "askNotional": fmt(f["ask"], 8),
                    "updateTime": f["time"],
                }
            )
        return out

    def _positions_v1(self, session: Session, params: JsonDict, now: int) -> list[JsonDict]:
        out = []
        for spec in self._selected(params):
            f = self._figures(spec)
            out.append(
                {
                    "entryPrice": fmt(f["entry"], 8),
                    "breakEvenPrice": fmt(f["entry"], 8),
                    "marginType": "cross",
                    "isAutoAddMargin": "false",
                    "isolatedMargin": "0.00000000",
                    "leverage": str(LEVERAGE),
                    "liquidationPrice": "0",
                    "markPrice": fmt(f["mark"], 8),
                    "maxNotionalValue": "1000000",
                    "positionAmt": fmt(f["amount"], spec.quantity_precision),
                    "notional": fmt(f["notional"], 8),
                    "isolatedWallet": "0",
                    "symbol": spec.symbol,
                    "unRealizedProfit": fmt(f["unpnl"], 8),
                    "positionSide": "BOTH",
                    "updateTime": f["time"],
                }
            )
        return out

    def _totals(self) -> dict[str, Decimal]:
        figures = [self._figures(spec) for spec in self.symbols.values()]
        wallet = self.balances.get("USDT", Decimal(0))
        unpnl = sum((f["unpnl"] for f in figures), Decimal(0))
        position_im = sum((f["im"] for f in figures), Decimal(0))
        order_im = sum((f["order_im"] for f in figures), Decimal(0))
        maint = sum((f["mm"] for f in figures), Decimal(0))
        available = wallet + unpnl - position_im - order_im
        return {
            "wallet": wallet,
            "unpnl": unpnl,
            "position_im": position_im,
            "order_im": order_im,
            "im": position_im + order_im,
            "mm": maint,
            "margin": wallet + unpnl,
            "available": available,
        }

    def _balance(self, session: Session, params: JsonDict, now: int) -> list[JsonDict]:
        totals = self._totals()
        out = []
        for asset, amount in self.balances.items():
            usdt = asset == "USDT"
            available = totals["available"] if usdt else amount
            out.append(
                {
                    "accountAlias": "FakeAccount",
                    "asset": asset,
                    "balance": fmt(amount, 8),
                    "crossWalletBalance": fmt(amount, 8),
                    "crossUnPnl": fmt(totals["unpnl"] if usdt else Decimal(0), 8),
                    "availableBalance": fmt(available, 8),
                    "maxWithdrawAmount": fmt(available, 8),
                    "marginAvailable": True,
                    "updateTime": self.balance_times.get(asset, 0),
                }
            )
        return out

    def _assets(self, totals: Mapping[str, Decimal]) -> list[JsonDict]:
        out = []
        for asset, amount in self.balances.items():
            usdt = asset == "USDT"
            zero = Decimal(0)
            available = totals["available"] if usdt else amount
            out.append(
                {
                    "asset": asset,
                    "walletBalance": fmt(amount, 8),
                    "unrealizedProfit": fmt(totals["unpnl"] if usdt else zero, 8),
                    "marginBalance": fmt(totals["margin"] if usdt else amount, 8),
                    "maintMargin": fmt(totals["mm"] if usdt else zero, 8),
                    "initialMargin": fmt(totals["im"] if usdt else zero, 8),
                    "positionInitialMargin": fmt(totals["position_im"] if usdt else zero, 8),
                    "openOrderInitialMargin": fmt(totals["order_im"] if usdt else zero, 8),
                    "crossWalletBalance": fmt(amount, 8),
                    "crossUnPnl": fmt(totals["unpnl"] if usdt else zero, 8),
                    "availableBalance": fmt(available, 8),
                    "maxWithdrawAmount": fmt(available, 8),
                    "marginAvailable": True,
                    "updateTime": self.balance_times.get(asset, 0),
                }
            )
        return out

    def _account_totals(self, totals: Mapping[str, Decimal]) -> JsonDict:
        return {
            "totalInitialMargin": fmt(totals["im"], 8),
            "totalMaintMargin": fmt(totals["mm"], 8),
            "totalWalletBalance": fmt(totals["wallet"], 8),
            "totalUnrealizedProfit": fmt(totals["unpnl"], 8),
            "totalMarginBalance": fmt(totals["margin"], 8),
            "totalPositionInitialMargin": fmt(totals["position_im"], 8),
            "totalOpenOrderInitialMargin": fmt(totals["order_im"], 8),
            "totalCrossWalletBalance": fmt(totals["wallet"], 8),
            "totalCrossUnPnl": fmt(totals["unpnl"], 8),
            "availableBalance": fmt(totals["available"], 8),
            "maxWithdrawAmount": fmt(totals["available"], 8),
        }

    def _account_v2(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        totals = self._totals()
        positions = []
        for spec in self._account_symbols():
            f = self._figures(spec)
            if f["active"]:
                positions.append(
                    {
                        "symbol": spec.symbol,
                        "positionSide": "BOTH",
                        "positionAmt": fmt(f["amount"], spec.quantity_precision),
                        "unrealizedProfit": fmt(f["unpnl"], 8),
                        "isolatedMargin": "0",
                        "notional": fmt(f["notional"], 8),
                        "isolatedWallet": "0",
                        "initialMargin": fmt(f["im"] + f["order_im"], 8),
                        "maintMargin": fmt(f["mm"], 8),
                        "updateTime": f["time"],
                    }
                )
        account = self._account_totals(totals)
        account["assets"] = self._assets(totals)
        account["positions"] = positions
        return account

    def _account_v1(self, session: Session, params: JsonDict, now: int) -> JsonDict:
        totals = self._totals()
        positions = []
        for spec in self._account_symbols():
            f = self._figures(spec)
            positions.append(
                {
                    "symbol": spec.symbol,
                    "initialMargin": fmt(f["im"] + f["order_im"], 8),
                    "maintMargin": fmt(f["mm"], 8),
                    "unrealizedProfit": fmt(f["unpnl"], 8),
                    "positionInitialMargin": fmt(f["im"], 8),
                    "openOrderInitialMargin": fmt(f["order_im"], 8),
                    "leverage": str(LEVERAGE),
                    "isolated": False,
                    "entryPrice": fmt(f["entry"], 8),
                    "maxNotional": "1000000",
                    "bidNotional": fmt(f["bid"], 8),
                    "askNotional": fmt(f["ask"], 8),
                    "positionSide": "BOTH",
                    "positionAmt": fmt(f["amount"], spec.quantity_precision),
                    "updateTime": f["time"],
                }
            )
        account: JsonDict = {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
        }
        account.update(self._account_totals(totals))
        account["assets"] = self._assets(totals)
        account["positions"] = positions
        return account
