"""
Price moves for the fake: resting LIMIT orders that the new price crosses fill, and algo
(conditional) orders whose trigger is met trigger. Pure: state in, events out through
``exchange.user_events`` (see ``_userdata``); the caller holds the fake's lock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _userdata

if TYPE_CHECKING:  # pragma: no cover
    from ._engine import Exchange, SymbolSpec

__all__ = ["move_price", "trigger_algo"]

JsonDict = dict[str, Any]


def _text(value: Decimal, places: int) -> str:
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized == 0:
        quantized = quantized.copy_abs()
    return f"{quantized:f}"


def move_price(ex: Exchange, symbol: str, price: Decimal, now: int) -> tuple[int, int]:
    """
    Set ``symbol``'s price; fill the resting LIMIT orders it crosses (BUY at or above it,
    SELL at or below it; at their own price) and trigger the algo orders whose trigger it
    meets. Returns ``(orders filled, algo orders triggered)``.
    """
    spec = ex.symbols[symbol]
    spec.price = price
    filled = 0
    for order in ex._open_orders():
        if order["symbol"] != symbol or order["type"] != "LIMIT":
            continue
        limit = Decimal(order["price"])
        if (order["side"] == "BUY" and limit >= price) or (
            order["side"] == "SELL" and limit <= price
        ):
            _fill_resting(ex, spec, order, limit, now)
            filled += 1
    triggered = 0
    for algo in list(ex.algo_orders.values()):
        if algo["symbol"] == symbol and algo["algoStatus"] == "NEW" and _met(algo, price):
            trigger_algo(ex, algo["algoId"], now)
            triggered += 1
    return filled, triggered


def _met(algo: JsonDict, price: Decimal) -> bool:
    kind = algo["orderType"]
    if kind == "TRAILING_STOP_MARKET":
        activate = Decimal(algo.get("activatePrice") or 0)
        if activate == 0:
            return False
        return price >= activate if algo["side"] == "SELL" else price <= activate
    level = Decimal(algo["triggerPrice"])
    if kind.startswith("STOP"):
        return price >= level if algo["side"] == "BUY" else price <= level
    return price <= level if algo["side"] == "BUY" else price >= level


def _fill_resting(
    ex: Exchange, spec: SymbolSpec, order: JsonDict, price: Decimal, now: int
) -> None:
    executed = Decimal(order["executedQty"])
    qty = Decimal(order["origQty"]) - executed
    done = ex._fill(spec, order["side"], qty, price, order["reduceOnly"], now)
    total = executed + done
    quote = Decimal(order["cumQuote"]) + done * price
    order.update(
        status="FILLED",
        avgPrice=_text(quote / total if total else Decimal(0), spec.price_precision),
        executedQty=_text(total, spec.quantity_precision),
        cumQty=_text(total, spec.quantity_precision),
        cumQuote=_text(quote, 5),
        updateTime=now,
    )
    _userdata.trade(ex, order, spec, done, now, price)
    for algo in ex.algo_orders.values():
        if algo.get("actualOrderId") == order["orderId"] and algo["algoStatus"] == "TRIGGERED":
            algo.update(algoStatus="FINISHED", actualPrice=order["avgPrice"], updateTime=now)
            algo["actualQty"] = order["executedQty"]
            _userdata.algo_update(ex, algo, now)


def trigger_algo(ex: Exchange, algo_id: int, now: int) -> JsonDict:
    """
    Trigger algo order ``algo_id`` now (whatever the price): ALGO_UPDATE TRIGGERING, then the
    order it places (MARKET, or LIMIT at its ``price`` for STOP / TAKE_PROFIT) with its
    ORDER_TRADE_UPDATE events, ALGO_UPDATE TRIGGERED, and FINISHED once that order filled.
    Returns the placed order. ``KeyError`` if unknown, ``ValueError`` unless NEW.
    """
    algo = ex.algo_orders[algo_id]
    if algo["algoStatus"] != "NEW":
        raise ValueError(f"algo order {algo_id} is {algo['algoStatus']}, not NEW")
    spec = ex.symbols[algo["symbol"]]
    algo.update(algoStatus="TRIGGERING", updateTime=now, triggerTime=now)
    _userdata.algo_update(ex, algo, now)

    side = algo["side"]
    limit_like = algo["orderType"] in ("STOP", "TAKE_PROFIT")
    qty = Decimal(algo["quantity"])
    if algo["closePosition"]:
        position = ex.positions.get(spec.symbol)
        qty = abs(position.amount) if position is not None else Decimal(0)
    price = Decimal(algo["price"]) if limit_like else Decimal(0)
    crosses = not limit_like or ex._crosses(spec, side, price)
    order_id = ex.next_order_id
    ex.next_order_id += 1
    ex.update_id += 1
    executed = Decimal(0)
    if crosses and qty > 0:
        executed = ex._fill(
            spec, side, qty, spec.price, algo["reduceOnly"] or algo["closePosition"], now
        )
    zero_price = _text(Decimal(0), spec.price_precision)
    order: JsonDict = {
        "orderId": order_id,
        "symbol": spec.symbol,
        "status": "FILLED" if executed else "NEW",
        "clientOrderId": algo["clientAlgoId"],
        "price": algo["price"] if limit_like else zero_price,
        "avgPrice": _text(spec.price if executed else Decimal(0), spec.price_precision),
        "origQty": _text(qty, spec.quantity_precision),
        "executedQty": _text(executed, spec.quantity_precision),
        "cumQty": _text(executed, spec.quantity_precision),
        "cumQuote": _text(executed * spec.price, 5),
        "timeInForce": algo["timeInForce"] if limit_like else "GTC",
        "type": "LIMIT" if limit_like else "MARKET",
        "reduceOnly": algo["reduceOnly"],
        "closePosition": algo["closePosition"],
        "side": side,
        "positionSide": algo["positionSide"],
        "stopPrice": algo["triggerPrice"],
        "workingType": algo["workingType"],
        "priceProtect": algo["priceProtect"],
        "origType": algo["orderType"],
        "priceMatch": algo["priceMatch"],
        "selfTradePreventionMode": algo["selfTradePreventionMode"],
        "goodTillDate": algo["goodTillDate"],
        "time": now,
        "updateTime": now,
    }
    ex.orders[order_id] = order
    ex.open_order_ids[order_id] = None
    algo.update(
        algoStatus="TRIGGERED",
        actualOrderId=order_id,
        actualPrice=order["avgPrice"],
        actualQty=order["executedQty"],
    )
    _userdata.algo_update(ex, algo, now)
    _userdata.order_placed(ex, order, spec, executed, now)
    if executed:
        algo["algoStatus"] = "FINISHED"
        _userdata.algo_update(ex, algo, now)
    return dict(order)
