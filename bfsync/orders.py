"""
Order preparation: validation rules, exact decimal formatting and the algo-order mapping.

Pure: no sockets, threads, clock or randomness. ``prepare_order`` turns the keywords of a
``place_*_order`` call into a :class:`PreparedOrder` (method, wire params, client order id);
the service then adds ``timestamp``/``apiKey``/``signature`` and sends it.

What happens to the keywords, in this order:

1. A keyword given as ``None`` counts as not given (xlwings passes empty cells as ``None``).
2. Binance's own names are aliases of the documented ones (``triggerPrice`` of ``stopPrice``,
   ``activatePrice`` of ``activationPrice``, ``clientAlgoId`` of ``newClientOrderId``). Giving
   both spellings of one parameter is an error, with or without validation.
3. With ``validate=True`` the keywords are checked against two tables:

   - ``_KINDS``: one row per order kind, :class:`_Kind` ``(required, optional, one_of)``.
     A keyword in neither set is refused by name: a misspelt one with the nearest known name
     (``unknown parameter 'quantty' for LIMIT orders; did you mean 'quantity'?``), a known
     one that Binance does not take for this kind as such (``stopPrice is not a parameter of
     MARKET orders``). ``one_of`` groups need exactly one member *in effect*
     (``priceMatch='NONE'`` and ``closePosition=false`` are not in effect).
   - ``_CHECKERS``: parameter -> checker, which refuses a bad value and returns its wire form:
     DECIMAL params finite and > 0 (``callbackRate`` within [0.1, 10]); booleans a bool or
     ``'true'``/``'false'`` in any case; ``recvWindow``/``goodTillDate`` positive ints (digit
     text and whole floats are taken: Excel hands every number over as a float); enums exact
     and case-sensitive; ``newClientOrderId`` 1 to 36 of ``A-Z a-z 0-9 . : / _ -``.

   Then the few rules between parameters (``_CROSS_RULES``): ``goodTillDate`` with and only
   with ``timeInForce='GTD'``, ``closePosition=true`` with neither ``reduceOnly=true`` nor
   the hedge-mode side that cannot close, ``reduceOnly`` not in hedge mode.

   The kinds take (``common`` = ``positionSide, newClientOrderId, reduceOnly,
   newOrderRespType, selfTradePreventionMode, recvWindow``; ``symbol`` and ``side`` are
   required everywhere)::

     kind                  required                 one of                    also optional
     LIMIT                 timeInForce, quantity    price | priceMatch        goodTillDate
     MARKET                quantity                 -                         -
     STOP, TAKE_PROFIT     quantity, stopPrice      price | priceMatch        timeInForce,
                                                                              goodTillDate,
                                                                              workingType,
                                                                              priceProtect
     STOP_MARKET,          stopPrice                quantity |                timeInForce,
     TAKE_PROFIT_MARKET                             closePosition=true        goodTillDate,
                                                                              workingType,
                                                                              priceProtect
     TRAILING_STOP_MARKET  callbackRate, quantity   -                         activationPrice,
                                                                              timeInForce,
                                                                              goodTillDate,
                                                                              workingType

   ``type``, ``algoType``, ``timestamp``, ``apiKey`` and ``signature`` are set by bfsync and
   refused when validating (dropped without validation).
4. Numbers are sent exactly, with or without validation: DECIMAL params as plain decimal text
   (float ``0.00001`` -> ``"0.00001"``, never ``"1e-05"``), booleans as ``"true"``/``"false"``,
   INT params as ints. Every real number type is taken (numpy scalars, ``Decimal``,
   ``Fraction``; see :mod:`bfsync._numbers`). A float carries all the digits of its repr:
   ``0.1 + 0.2`` is sent as ``"0.30000000000000004"`` (with the symbol's filters loaded the
   step/tick rule refuses it first; without them Binance does, with ``-1111``). Without
   validation nothing else is refused but what cannot go on the wire at all (an object that
   is no number, text or bool; ``Fraction(1, 3)``), and unknown keywords are passed on,
   formatted the same way as :func:`format_params` does.
5. The kind picks the method: LIMIT and MARKET go to ``order.place``; the five conditional
   kinds go to ``algoOrder.place`` with ``algoType=CONDITIONAL`` and ``stopPrice`` ->
   ``triggerPrice``, ``activationPrice`` -> ``activatePrice``, ``newClientOrderId`` ->
   ``clientAlgoId``. Every order carries a client order id: the caller's, or a new one.
"""

from __future__ import annotations

import difflib
import numbers
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ._numbers import NotANumber, bool_of, decimal_of, integer_of, is_bool
from .exceptions import OrderValidationError
from .signing import param_text

__all__ = [
    "ORDER_TYPES",
    "CONDITIONAL_TYPES",
    "PreparedOrder",
    "prepare_order",
    "format_decimal",
    "format_params",
]

ORDER_TYPES: tuple[str, ...] = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
CONDITIONAL_TYPES: frozenset[str] = frozenset(ORDER_TYPES[2:])
# The service method that places each type (for callers that pick it by name: the CLI, Excel).
PLACE_METHODS: Mapping[str, str] = {
    "LIMIT": "place_limit_order",
    "MARKET": "place_market_order",
    "STOP": "place_stop_order",
    "STOP_MARKET": "place_stop_market_order",
    "TAKE_PROFIT": "place_take_profit_order",
    "TAKE_PROFIT_MARKET": "place_take_profit_market_order",
    "TRAILING_STOP_MARKET": "place_trailing_stop_market_order",
}

ORDER_PLACE = "order.place"
ALGO_ORDER_PLACE = "algoOrder.place"


@attrs.frozen
class PreparedOrder:
    """
    An order ready to be signed and sent.

    Attributes:
        method: ``"order.place"`` or ``"algoOrder.place"``.
        params: the wire params, formatted (str and int values when validated), without
            ``timestamp``, ``apiKey`` or ``signature``.
        client_order_id: the ``newClientOrderId`` / ``clientAlgoId`` the order is sent with.
    """

    method: str
    params: dict[str, Any]
    client_order_id: str


# ---------------------------------------------------------------------------------------------
# Formatting


def format_decimal(value: Any, name: str = "value") -> str:
    """
    The exact plain decimal text of a number: no exponent, no digit added or lost.

    Every real number type is read exactly (see :mod:`bfsync._numbers`): a float (also
    ``np.float64``) through its ``repr``, the shortest text that round-trips, so ``0.00001``
    gives ``"0.00001"`` and ``50000.0`` gives ``"50000.0"``; ``np.float32(0.1)`` gives
    ``"0.1"``; ``np.int64(5)`` gives ``"5"``; ``Fraction(3, 8)`` gives ``"0.375"``;
    ``Decimal("1E+2")`` gives ``"100"``; a string is parsed the same way and returned stripped
    when it is already plain (``"0.10"`` stays ``"0.10"``).

    Raises:
        OrderValidationError: ``value`` is a bool, not a number, not finite, or a fraction
            with no exact decimal form (``Fraction(1, 3)``); the message names ``name``.
    """
    try:
        number = decimal_of(value)
    except NotANumber as exc:
        raise OrderValidationError(
            f"{name} must be a finite decimal number, got {value!r} ({exc})"
        ) from None
    if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
        raise OrderValidationError(f"{name} must be a finite decimal number, got {value!r}")
    if isinstance(value, str) and _PLAIN_DECIMAL_RE.fullmatch(value.strip()):
        return value.strip()
    return format(number, "f")


def format_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """
    Params of a non-order call in wire form.

    ``None`` values are dropped; booleans (numpy's too) become ``"true"``/``"false"``; the
    DECIMAL params (``quantity``, ``price``, ...) become plain decimal strings; other ints
    stay ints (``np.int64`` becomes an ``int``); other numbers become plain decimal strings,
    except for the INT params (``limit``, ``orderId``, ``algoId``, ``recvWindow``,
    ``goodTillDate``, ``startTime``, ``endTime``, ``fromId``, ``countdownTime``), where a
    whole number (``5.0`` from Excel) is sent as an int; strings are kept.

    Raises:
        OrderValidationError: a value that cannot go on the wire (not a number, text or
            bool; a fraction with no exact decimal form), naming the parameter.
    """
    return {
        key: _loose_decimal(value, key) if key in _DECIMAL_PARAMS else _loose(value, key)
        for key, value in params.items()
        if value is not None
    }


_PLAIN_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Beyond 1e1000 (or below 1e-1000) the plain text would be absurdly long; floats stop at 1e308.
_MAX_EXPONENT = 1000
# INT / LONG params of ws-fapi and REST: a whole float (Excel's numbers) goes as a JSON int.
_INT_PARAMS = frozenset(
    {
        "limit",
        "orderId",
        "algoId",
        "recvWindow",
        "goodTillDate",
        "startTime",
        "endTime",
        "fromId",
        "countdownTime",
    }
)


def _loose(value: Any, name: str) -> Any:
    """A value in wire form without judging it: what is sent when nothing is validated."""
    flag = bool_of(value)
    if flag is not None:
        return param_text(flag)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if not isinstance(value, (numbers.Real, Decimal)):
        raise OrderValidationError(
            f"{name} must be a number, text or a bool, got {value!r} "
            f"({type(value).__name__} cannot be sent)"
        )
    if name in _INT_PARAMS:
        whole = integer_of(value)
        if whole is not None:
            return whole
    try:
        number = decimal_of(value)
    except NotANumber as exc:
        raise OrderValidationError(
            f"{name} cannot be sent exactly, got {value!r} ({exc})"
        ) from None
    if not number.is_finite():
        return str(value)  # NaN / inf: sent as text, for the server to refuse
    return format_decimal(value, name)


def _loose_decimal(value: Any, name: str) -> Any:
    """A DECIMAL param in wire form without judging it: numbers (ints too) as plain text."""
    if isinstance(value, numbers.Integral) and not is_bool(value):
        return str(operator.index(value))
    return _loose(value, name)


# ---------------------------------------------------------------------------------------------
# Checkers: parameter -> function(value, name as the caller spelled it) -> wire value

_Checker = Callable[[Any, str], Any]

_CLIENT_ID_RE = re.compile(r"[\.A-Z\:/a-z0-9_-]{1,36}")
_CALLBACK_RATE_MIN = Decimal("0.1")
_CALLBACK_RATE_MAX = Decimal("10")


def _positive_decimal(value: Any, name: str) -> str:
    try:
        text = format_decimal(value, name)
    except OrderValidationError:
        raise OrderValidationError(f"{name} must be a finite number > 0, got {value!r}") from None
    if Decimal(text) <= 0:
        raise OrderValidationError(f"{name} must be a finite number > 0, got {value!r}")
    return text


def _callback_rate(value: Any, name: str) -> str:
    text = _positive_decimal(value, name)
    if not _CALLBACK_RATE_MIN <= Decimal(text) <= _CALLBACK_RATE_MAX:
        raise OrderValidationError(
            f"{name} must be between {_CALLBACK_RATE_MIN} and {_CALLBACK_RATE_MAX} "
            f"(percent), got {value!r}"
        )
    return text


def _boolean(value: Any, name: str) -> str:
    flag = bool_of(value)
    if flag is not None:
        return param_text(flag)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower()
    raise OrderValidationError(
        f"{name} must be true or false (a bool or the text 'true'/'false'), got {value!r}"
    )


def _positive_int(what: str) -> _Checker:
    def check(value: Any, name: str) -> int:
        # Whole floats are taken: Excel hands every number over as a float.
        number = integer_of(value)
        if number is None or number <= 0:
            raise OrderValidationError(f"{name} must be a positive integer ({what}), got {value!r}")
        return number

    return check


def _enum(*allowed: str) -> _Checker:
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise OrderValidationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def _symbol(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OrderValidationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _client_order_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _CLIENT_ID_RE.fullmatch(value):
        raise OrderValidationError(
            f"{name} must be 1 to 36 characters of A-Z a-z 0-9 . : / _ - "
            f"(^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$), got {value!r}"
        )
    return value


_DECIMAL_PARAMS = frozenset({"quantity", "price", "stopPrice", "activationPrice", "callbackRate"})
_BOOL_PARAMS = frozenset({"reduceOnly", "priceProtect", "closePosition"})

_CHECKERS: dict[str, _Checker] = {
    "symbol": _symbol,
    "side": _enum("BUY", "SELL"),
    "positionSide": _enum("BOTH", "LONG", "SHORT"),
    "timeInForce": _enum("GTC", "IOC", "FOK", "GTX", "GTD", "RPI"),
    "workingType": _enum("MARK_PRICE", "CONTRACT_PRICE"),
    "newOrderRespType": _enum("ACK", "RESULT"),
    "selfTradePreventionMode": _enum("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"),
    "priceMatch": _enum(
        "NONE",
        "OPPONENT",
        "OPPONENT_5",
        "OPPONENT_10",
        "OPPONENT_20",
        "QUEUE",
        "QUEUE_5",
        "QUEUE_10",
        "QUEUE_20",
    ),
    "quantity": _positive_decimal,
    "price": _positive_decimal,
    "stopPrice": _positive_decimal,
    "activationPrice": _positive_decimal,
    "callbackRate": _callback_rate,
    "reduceOnly": _boolean,
    "priceProtect": _boolean,
    "closePosition": _boolean,
    "recvWindow": _positive_int("milliseconds"),
    "goodTillDate": _positive_int("milliseconds since the epoch"),
    "newClientOrderId": _client_order_id,
}

# ---------------------------------------------------------------------------------------------
# The order kinds


@attrs.frozen
class _Kind:
    """One row of the kinds table: what an order kind needs and takes."""

    required: frozenset[str]
    optional: frozenset[str]
    one_of: tuple[tuple[str, str], ...] = ()

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional | {name for group in self.one_of for name in group}


_COMMON_REQUIRED = frozenset({"symbol", "side"})
_COMMON_OPTIONAL = frozenset(
    {
        "positionSide",
        "newClientOrderId",
        "reduceOnly",
        "newOrderRespType",
        "selfTradePreventionMode",
        "recvWindow",
    }
)
_CONDITIONAL_OPTIONAL = _COMMON_OPTIONAL | {"timeInForce", "goodTillDate", "workingType"}


def _kind(required: frozenset[str], optional: frozenset[str], *one_of: tuple[str, str]) -> _Kind:
    return _Kind(_COMMON_REQUIRED | required, optional, one_of)


_STOP_LIMIT = _kind(
    frozenset({"quantity", "stopPrice"}),
    _CONDITIONAL_OPTIONAL | {"priceProtect"},
    ("price", "priceMatch"),
)
_STOP_MARKET = _kind(
    frozenset({"stopPrice"}),
    _CONDITIONAL_OPTIONAL | {"priceProtect"},
    ("quantity", "closePosition"),
)

_KINDS: dict[str, _Kind] = {
    "LIMIT": _kind(
        frozenset({"timeInForce", "quantity"}),
        _COMMON_OPTIONAL | {"goodTillDate"},
        ("price", "priceMatch"),
    ),
    "MARKET": _kind(frozenset({"quantity"}), _COMMON_OPTIONAL),
    "STOP": _STOP_LIMIT,
    "TAKE_PROFIT": _STOP_LIMIT,
    "STOP_MARKET": _STOP_MARKET,
    "TAKE_PROFIT_MARKET": _STOP_MARKET,
    "TRAILING_STOP_MARKET": _kind(
        frozenset({"callbackRate", "quantity"}),
        _CONDITIONAL_OPTIONAL | {"activationPrice"},
    ),
}

_KNOWN: frozenset[str] = frozenset(_CHECKERS)

# Binance's names -> the documented names (the keywords of the async library).
_ALIASES: dict[str, str] = {
    "triggerPrice": "stopPrice",
    "activatePrice": "activationPrice",
    "clientAlgoId": "newClientOrderId",
}
# The documented names -> the algoOrder.place wire names.
_ALGO_NAMES: dict[str, str] = {doc: wire for wire, doc in _ALIASES.items()}

_SET_BY_BFSYNC: dict[str, str] = {
    "type": "the method called",
    "algoType": "the method called",
    "timestamp": "the I/O thread when sending",
    "apiKey": "the service's key",
    "signature": "the signer",
}

# Values that leave a one_of member "not in effect".
_INERT: dict[str, str] = {"priceMatch": "NONE", "closePosition": "false"}


def _in_effect(values: Mapping[str, Any], name: str) -> bool:
    return name in values and values[name] != _INERT.get(name)


def _shown(values: Mapping[str, Any], spelled: Mapping[str, str], name: str) -> str:
    """A parameter as the caller wrote it, with its value when the value is what matters."""
    if name in _INERT:
        return f"{spelled.get(name, name)}={values[name]}"
    return spelled.get(name, name)


# ---------------------------------------------------------------------------------------------
# Rules between parameters: each gets the order type, the checked wire values (documented
# names) and the caller's spelling of each name, and raises or returns.

_CrossRule = Callable[[str, Mapping[str, Any], Mapping[str, str]], None]


def _good_till_date(order_type: str, values: Mapping[str, Any], spelled: Mapping[str, str]) -> None:
    gtd = values.get("timeInForce") == "GTD"
    if gtd and "goodTillDate" not in values:
        raise OrderValidationError(
            f"goodTillDate is required when timeInForce is 'GTD' ({order_type} orders)"
        )
    if "goodTillDate" in values and not gtd:
        got = f"timeInForce={values['timeInForce']!r}" if "timeInForce" in values else "none"
        raise OrderValidationError(f"goodTillDate is only taken with timeInForce='GTD', got {got}")


def _close_position(order_type: str, values: Mapping[str, Any], spelled: Mapping[str, str]) -> None:
    if values.get("closePosition") != "true":
        return
    if values.get("reduceOnly") == "true":
        raise OrderValidationError(
            f"{spelled['reduceOnly']}=true cannot be sent together with "
            f"{spelled['closePosition']}=true"
        )
    side, position_side = values.get("side"), values.get("positionSide")
    if (side, position_side) in (("BUY", "LONG"), ("SELL", "SHORT")):
        raise OrderValidationError(
            f"{spelled['closePosition']}=true cannot be sent with side={side!r} and "
            f"positionSide={position_side!r} (in hedge mode, closing a {position_side} "
            f"position is a {'SELL' if side == 'BUY' else 'BUY'})"
        )


def _reduce_only(order_type: str, values: Mapping[str, Any], spelled: Mapping[str, str]) -> None:
    if "reduceOnly" in values and values.get("positionSide") in ("LONG", "SHORT"):
        raise OrderValidationError(
            f"{spelled['reduceOnly']} cannot be sent with positionSide="
            f"{values['positionSide']!r}: Binance refuses reduceOnly in hedge mode"
        )


_CROSS_RULES: tuple[_CrossRule, ...] = (_good_till_date, _close_position, _reduce_only)


# ---------------------------------------------------------------------------------------------
# Preparation


def prepare_order(
    order_type: str,
    kwargs: Mapping[str, Any],
    *,
    validate: bool,
    new_client_order_id: Callable[[], str],
) -> PreparedOrder:
    """
    Check (when ``validate``) and shape one order for the wire.

    Args:
        order_type: one of :data:`ORDER_TYPES`, set by the ``place_*_order`` method called.
        kwargs: the caller's keywords; ``None`` values count as not given.
        validate: apply the rules of the tables above (``enable_validation``).
        new_client_order_id: called once, only when the caller gave no client order id and
            the order is not refused.

    Returns:
        The method, the formatted params and the client order id.

    Raises:
        OrderValidationError: a rule is broken (the message names the parameter and the rule);
            without ``validate`` only when both spellings of one parameter are given.
        ValueError: ``order_type`` is not one of :data:`ORDER_TYPES` (a bug in the caller).
    """
    if order_type not in _KINDS:
        raise ValueError(f"order_type must be one of {', '.join(ORDER_TYPES)}, got {order_type!r}")
    given, spelled = _resolve_aliases(kwargs)
    if validate:
        values = _validate(order_type, _KINDS[order_type], given, spelled)
    else:
        values = _format_loosely(given)

    if "newClientOrderId" in values:
        client_order_id = param_text(values["newClientOrderId"])
    else:
        client_order_id = new_client_order_id()
        values["newClientOrderId"] = client_order_id

    if order_type in CONDITIONAL_TYPES:
        params: dict[str, Any] = {"algoType": "CONDITIONAL", "type": order_type}
        params.update((_ALGO_NAMES.get(name, name), value) for name, value in values.items())
        return PreparedOrder(ALGO_ORDER_PLACE, params, client_order_id)
    params = {"type": order_type}
    params.update(values)
    return PreparedOrder(ORDER_PLACE, params, client_order_id)


def _resolve_aliases(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The given keywords under their documented names, and the caller's spelling of each."""
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        name = _ALIASES.get(key, key)
        if name in given:
            raise OrderValidationError(
                f"{spelled[name]} and {key} name the same parameter; give only one of them"
            )
        given[name] = value
        spelled[name] = key
    return given, spelled


def _format_loosely(given: Mapping[str, Any]) -> dict[str, Any]:
    """Without validation: drop what bfsync sets, format numbers and booleans, keep the rest."""
    return {
        name: _loose_decimal(value, name) if name in _DECIMAL_PARAMS else _loose(value, name)
        for name, value in given.items()
        if name not in _SET_BY_BFSYNC
    }


def _validate(
    order_type: str, kind: _Kind, given: Mapping[str, Any], spelled: Mapping[str, str]
) -> dict[str, Any]:
    """The checked wire values of ``given`` (documented names), or OrderValidationError."""
    allowed = kind.allowed
    for name in given:
        if name not in allowed:
            raise OrderValidationError(_refusal(order_type, allowed, spelled[name], name))
    values = {name: _CHECKERS[name](value, spelled[name]) for name, value in given.items()}
    for name in sorted(kind.required):
        if name not in values:
            raise OrderValidationError(f"{name} is required for {order_type} orders")
    for first, second in kind.one_of:
        if _in_effect(values, first) and _in_effect(values, second):
            raise OrderValidationError(
                f"{_shown(values, spelled, first)} cannot be sent together with "
                f"{_shown(values, spelled, second)} ({order_type} orders take one of them)"
            )
        if not (_in_effect(values, first) or _in_effect(values, second)):
            alternative = f"{second}=true" if second in _BOOL_PARAMS else second
            inert = (
                f" ({_shown(values, spelled, second)} does not count)" if second in values else ""
            )
            raise OrderValidationError(
                f"{first} or {alternative} is required for {order_type} orders{inert}"
            )
    for rule in _CROSS_RULES:
        rule(order_type, values, spelled)
    return values


def _refusal(order_type: str, allowed: frozenset[str], key: str, name: str) -> str:
    """Why the keyword ``key`` (documented name ``name``) is not taken by this kind."""
    if name in _SET_BY_BFSYNC:
        return f"{key} is set by bfsync (from {_SET_BY_BFSYNC[name]}); do not pass it"
    if name in _KNOWN:
        takers = [kind for kind in ORDER_TYPES if name in _KINDS[kind].allowed]
        return (
            f"{key} is not a parameter of {order_type} orders "
            f"(it is taken by {', '.join(takers)} orders)"
        )
    candidates = sorted(allowed | {alias for alias, doc in _ALIASES.items() if doc in allowed})
    close = difflib.get_close_matches(key, candidates, n=1)
    if not close:
        lowered = {candidate.lower(): candidate for candidate in candidates}
        close = [lowered[key.lower()]] if key.lower() in lowered else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown parameter {key!r} for {order_type} orders{hint}"
