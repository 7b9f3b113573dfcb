"""
User-data events of the fake (reference §7.1), built from its orders: pure, no I/O.

The engine calls these when an order is placed, fills, expires, is amended or cancelled, and
when an algo order changes; each appends Binance-shaped events (``ORDER_TRADE_UPDATE``,
``TRADE_LITE``, ``ACCOUNT_UPDATE``, ``ALGO_UPDATE``) to ``exchange.user_events`` when that is
a list (a private stream has connected), and does nothing otherwise. The fake has one account,
so every live listenKey gets every event.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from ._engine import Exchange, SymbolSpec

__all__ = [
    "algo_update",
    "order_amended",
    "order_placed",
    "order_update",
    "trade",
]

JsonDict = dict[str, Any]
_TRADE_IDS = itertools.count(800000001)
_ZERO = Decimal(0)


def _text(value: Decimal, places: int) -> str:
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized == 0:
        quantized = quantized.copy_abs()
    return f"{quantized:f}"


def _order_event(
    ex: Exchange,
    order: Mapping[str, Any],
    spec: SymbolSpec,
    execution: str,
    now: int,
    last_qty: Decimal = _ZERO,
    last_price: Decimal = _ZERO,
    trade_id: int = 0,
    realized: Decimal = _ZERO,
) -> JsonDict:
    pp, qp = spec.price_precision, spec.quantity_precision
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now,
        "T": now,
        "o": {
            "s": order["symbol"],
            "c": order["clientOrderId"],
            "S": order["side"],
            "o": order["type"],
            "f": order["timeInForce"],
            "q": order["origQty"],
            "p": order["price"],
            "ap": order["avgPrice"],
            "sp": order["stopPrice"],
            "x": execution,
            "X": order["status"],
            "i": order["orderId"],
            "l": _text(last_qty, qp),
            "z": order["executedQty"],
            "L": _text(last_price, pp),
            "N": "USDT",
            "n": "0",
            "T": now,
            "t": trade_id,
            "b": "0",
            "a": "0",
            "m": False,
            "R": order["reduceOnly"],
            "wt": order["workingType"],
            "ot": order["origType"],
            "ps": order["positionSide"],
            "cp": order["closePosition"],
            "rp": _text(realized, 8),
            "pP": order["priceProtect"],
            "si": 0,
            "ss": 0,
            "V": order["selfTradePreventionMode"],
            "pm": order["priceMatch"],
            "gtd": order["goodTillDate"],
            "er": "0",
        },
    }


def trade(
    ex: Exchange,
    order: Mapping[str, Any],
    spec: SymbolSpec,
    qty: Decimal,
    now: int,
    price: Optional[Decimal] = None,
) -> None:
    """TRADE_LITE, ORDER_TRADE_UPDATE (x TRADE) and ACCOUNT_UPDATE of one fill at ``price``."""
    events = ex.user_events
    if events is None:
        return
    trade_id = next(_TRADE_IDS)
    if price is None:
        price = spec.price
    pp, qp = spec.price_precision, spec.quantity_precision
    events.append(
        {
            "e": "TRADE_LITE",
            "E": now,
            "T": now,
            "s": order["symbol"],
            "q": _text(qty, qp),
            "p": order["price"],
            "m": False,
            "c": order["clientOrderId"],
            "S": order["side"],
            "L": _text(price, pp),
            "l": _text(qty, qp),
            "t": trade_id,
            "i": order["orderId"],
        }
    )
    realized = ex.last_realized
    events.append(_order_event(ex, order, spec, "TRADE", now, qty, price, trade_id, realized))
    events.append(account_update(ex, order["symbol"], now))


def account_update(
    ex: Exchange, symbol: Optional[str], now: int, reason: str = "ORDER"
) -> JsonDict:
    """An ACCOUNT_UPDATE with the USDT balance and (when given) ``symbol``'s position."""
    balance = _text(ex.balances.get("USDT", _ZERO), 8)
    positions: list[JsonDict] = []
    if symbol is not None:
        spec = ex.symbols[symbol]
        position = ex.positions.get(symbol)
        amount = position.amount if position is not None else _ZERO
        entry = position.entry_price if position is not None else _ZERO
        unrealized = (spec.price - entry) * amount if amount else _ZERO
        positions.append(
            {
                "s": symbol,
                "pa": _text(amount, spec.quantity_precision),
                "ep": _text(entry, 8),
                "bep": _text(entry, 8),
                "cr": "0",
                "up": _text(unrealized, 8),
                "mt": "cross",
                "iw": "0",
                "ps": "BOTH",
            }
        )
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": balance, "cw": balance, "bc": "0"}],
            "P": positions,
        },
    }


def order_placed(
    ex: Exchange, order: Mapping[str, Any], spec: SymbolSpec, filled: Decimal, now: int
) -> None:
    """Events of a new order: NEW, then its fill (TRADE) or its expiry (EXPIRED)."""
    events = ex.user_events
    if events is None:
        return
    status = order["status"]
    if filled > 0:
        # The NEW event shows the order as accepted, before it traded.
        accepted = dict(order)
        accepted.update(status="NEW", executedQty=_text(_ZERO, spec.quantity_precision))
        accepted["avgPrice"] = _text(_ZERO, spec.price_precision)
        events.append(_order_event(ex, accepted, spec, "NEW", now))
        trade(ex, order, spec, filled, now)
        return
    if status == "EXPIRED":
        accepted = dict(order)
        accepted["status"] = "NEW"
        events.append(_order_event(ex, accepted, spec, "NEW", now))
        events.append(_order_event(ex, order, spec, "EXPIRED", now))
        return
    events.append(_order_event(ex, order, spec, "NEW", now))


def order_update(
    ex: Exchange, order: Mapping[str, Any], spec: SymbolSpec, execution: str, now: int
) -> None:
    """One ORDER_TRADE_UPDATE with execution type ``execution`` (e.g. CANCELED)."""
    if ex.user_events is not None:
        ex.user_events.append(_order_event(ex, order, spec, execution, now))


def order_amended(
    ex: Exchange, order: Mapping[str, Any], spec: SymbolSpec, executed_before: Decimal, now: int
) -> None:
    """Events of an ``order.modify``: AMENDMENT, then a fill (TRADE) or a CANCELED."""
    events = ex.user_events
    if events is None:
        return
    status = order["status"]
    amended = dict(order)
    if status != "NEW":
        amended["status"] = "NEW"
        amended["executedQty"] = _text(executed_before, spec.quantity_precision)
    events.append(_order_event(ex, amended, spec, "AMENDMENT", now))
    if status == "FILLED":
        trade(ex, order, spec, Decimal(order["executedQty"]) - executed_before, now)
    elif status == "CANCELED":
        events.append(_order_event(ex, order, spec, "CANCELED", now))


def algo_update(ex: Exchange, algo: Mapping[str, Any], now: int) -> None:
    """One ALGO_UPDATE for ``algo`` in its current state (``X`` = ``algoStatus``)."""
    events = ex.user_events
    if events is None:
        return
    actual = algo.get("actualOrderId")
    events.append(
        {
            "e": "ALGO_UPDATE",
            "T": now,
            "E": now,
            "o": {
                "caid": algo["clientAlgoId"],
                "aid": algo["algoId"],
                "at": algo["algoType"],
                "o": algo["orderType"],
                "s": algo["symbol"],
                "S": algo["side"],
                "ps": algo["positionSide"],
                "f": algo["timeInForce"],
                "q": algo["quantity"],
                "X": algo["algoStatus"],
                "ai": str(actual) if actual is not None else "",
                "ap": algo.get("actualPrice", "0.00000"),
                "aq": algo.get("actualQty", "0.00000"),
                "act": "0",
                "tp": algo["triggerPrice"],
                "p": algo["price"],
                "V": algo["selfTradePreventionMode"],
                "wt": algo["workingType"],
                "pm": algo["priceMatch"],
                "cp": algo["closePosition"],
                "pP": algo["priceProtect"],
                "R": algo["reduceOnly"],
                "tt": algo["triggerTime"],
                "gtd": algo["goodTillDate"],
                "rm": "",
            },
        }
    )
