"""
Output: tables, CSV and JSON of the exchange's replies (pure: text in, text out).

Values are printed exactly as the exchange sent them: its decimal strings are never turned
into numbers. A table shows millisecond times (``time``, ``updateTime``) as UTC; CSV and JSON
keep the raw values.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "Column",
    "Table",
    "balance_table",
    "book_table",
    "cancel_all_table",
    "depth_table",
    "json_line",
    "json_text",
    "orders_table",
    "positions_table",
    "price_table",
    "render",
    "render_csv",
    "render_table",
    "reply_table",
    "watch_row",
    "watch_table",
]

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Column:
    """A column: the row key, its title, and ``kind`` ``"text"`` or ``"ms"`` (a time)."""

    key: str
    title: str
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    """Rows (dicts, possibly missing keys) under columns."""

    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]


def _raw(value: Any) -> str:
    """A value as CSV shows it: strings as sent, ``None`` empty, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _cell(value: Any, kind: str) -> str:
    if kind == "ms" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        moment = datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{value % 1000:03d}"
    return _raw(value)


def render_table(table: Table) -> str:
    """Aligned columns (numbers right-aligned), a header line; ``(none)`` for no rows."""
    titles = [c.title for c in table.columns]
    cells = [[_cell(row.get(c.key), c.kind) for c in table.columns] for row in table.rows]
    if not cells:
        return "(none)\n"
    widths = [max(len(t), *(len(r[i]) for r in cells)) for i, t in enumerate(titles)]
    numeric = [
        all(_NUMBER.match(r[i]) or not r[i] for r in cells) and any(r[i] for r in cells)
        for i in range(len(titles))
    ]
    lines = []
    for line in [titles, *cells]:
        parts = [
            text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i])
            for i, text in enumerate(line)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    """CSV with a header of the column titles; raw values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.title for c in table.columns])
    for row in table.rows:
        writer.writerow([_raw(row.get(c.key)) for c in table.columns])
    return out.getvalue()


def json_text(document: Any) -> str:
    """One JSON document, indented, as the exchange sent it."""
    return json.dumps(document, indent=2) + "\n"


def json_line(document: Any) -> str:
    """One JSON document on one line (for ``watch``)."""
    return json.dumps(document, separators=(",", ":")) + "\n"


def render(output: str, document: Any, table: Table) -> str:
    """``document`` as JSON for ``--json``, else ``table`` as a table or CSV."""
    if output == "json":
        return json_text(document)
    if output == "csv":
        return render_csv(table)
    return render_table(table)


def _columns(*spec: str) -> list[Column]:
    """``"key"``, ``"key:TITLE"`` or ``"key:TITLE:ms"`` specs."""
    columns = []
    for item in spec:
        key, _, rest = item.partition(":")
        title, _, kind = rest.partition(":")
        columns.append(Column(key, title or key, kind or "text"))
    return columns


def _rows(result: Any) -> list[Mapping[str, Any]]:
    if isinstance(result, list):
        return [r for r in result if isinstance(r, Mapping)]
    if isinstance(result, Mapping):
        return [result]
    return []


def price_table(result: Any) -> Table:
    """``ticker.price``: one row per symbol."""
    return Table(_columns("symbol:SYMBOL", "price:PRICE", "time:TIME:ms"), _rows(result))


def book_table(result: Any) -> Table:
    """``ticker.book``: best bid and ask."""
    return Table(
        _columns(
            "symbol:SYMBOL",
            "bidQty:BID QTY",
            "bidPrice:BID",
            "askPrice:ASK",
            "askQty:ASK QTY",
            "time:TIME:ms",
        ),
        _rows(result),
    )


def depth_table(result: Any) -> Table:
    """``depth``: asks from the highest down, then bids from the best down (a ladder)."""
    asks = result.get("asks", []) if isinstance(result, Mapping) else []
    bids = result.get("bids", []) if isinstance(result, Mapping) else []
    rows: list[dict[str, Any]] = [
        {"side": "ask", "price": level[0], "qty": level[1]} for level in reversed(asks)
    ]
    rows += [{"side": "bid", "price": level[0], "qty": level[1]} for level in bids]
    return Table(_columns("side:SIDE", "price:PRICE", "qty:QTY"), rows)


def _nonzero(value: Any) -> bool:
    """Whether a decimal string is not zero (``None``: no; text that is no number: yes)."""
    if value is None:
        return False
    try:
        return float(value) != 0
    except (TypeError, ValueError):
        return True


def balance_table(result: Any, everything: bool = False) -> Table:
    """``v2/account.balance``: assets with a balance (all with ``everything``)."""
    rows = [
        r
        for r in _rows(result)
        if everything or _nonzero(r.get("balance")) or _nonzero(r.get("crossUnPnl"))
    ]
    return Table(
        _columns(
            "asset:ASSET",
            "balance:BALANCE",
            "availableBalance:AVAILABLE",
            "crossUnPnl:UNREALIZED PNL",
            "maxWithdrawAmount:MAX WITHDRAW",
        ),
        rows,
    )


def positions_table(result: Any, everything: bool = False) -> Table:
    """``v2/account.position``: non-zero positions (all with ``everything``)."""
    rows = [r for r in _rows(result) if everything or _nonzero(r.get("positionAmt"))]
    return Table(
        _columns(
            "symbol:SYMBOL",
            "positionSide:SIDE",
            "positionAmt:AMOUNT",
            "entryPrice:ENTRY",
            "markPrice:MARK",
            "unRealizedProfit:UNREALIZED PNL",
            "liquidationPrice:LIQUIDATION",
            "notional:NOTIONAL",
        ),
        rows,
    )


_ORDER_COLUMNS = _columns(
    "kind:KIND",
    "symbol:SYMBOL",
    "id:ID",
    "clientId:CLIENT ID",
    "side:SIDE",
    "type:TYPE",
    "quantity:QTY",
    "price:PRICE",
    "stopPrice:STOP PRICE",
    "status:STATUS",
    "time:TIME:ms",
)


def _order_row(order: Mapping[str, Any]) -> dict[str, Any]:
    """One order (plain or algo, as any reply shapes it) in the orders table's terms."""
    if "algoId" in order:
        return {
            "kind": "algo",
            "symbol": order.get("symbol"),
            "id": order.get("algoId"),
            "clientId": order.get("clientAlgoId"),
            "side": order.get("side"),
            "type": order.get("orderType"),
            "quantity": order.get("quantity"),
            "price": order.get("price"),
            "stopPrice": order.get("triggerPrice"),
            "status": order.get("algoStatus"),
            "time": order.get("createTime"),
        }
    return {
        "kind": "order",
        "symbol": order.get("symbol"),
        "id": order.get("orderId"),
        "clientId": order.get("clientOrderId"),
        "side": order.get("side"),
        "type": order.get("type"),
        "quantity": order.get("origQty"),
        "price": order.get("price"),
        "stopPrice": order.get("stopPrice"),
        "status": order.get("status"),
        "time": order.get("time", order.get("updateTime")),
    }


def orders_table(orders: Any, algo_orders: Any = None) -> Table:
    """Open orders, plain then conditional, in one table with a KIND column."""
    rows = [_order_row(o) for o in _rows(orders)] + [_order_row(o) for o in _rows(algo_orders)]
    return Table(_ORDER_COLUMNS, rows)


def reply_table(result: Any) -> Table:
    """An order reply (placed, cancelled): the orders table's columns."""
    return orders_table(result)


def cancel_all_table(results: Mapping[str, Any]) -> Table:
    """``cancel-all``: one row per kind, with the exchange's code and message."""
    rows = [
        {"kind": kind, "code": r.get("code"), "msg": r.get("msg")}
        for kind, r in results.items()
        if isinstance(r, Mapping)
    ]
    return Table(_columns("kind:KIND", "code:CODE", "msg:MESSAGE"), rows)


# ---- watch ------------------------------------------------------------------------------------

_SUMMARY_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "bookTicker": (("b", "bid"), ("B", "bid qty"), ("a", "ask"), ("A", "ask qty")),
    "aggTrade": (("p", "price"), ("q", "qty"), ("m", "buyer maker")),
    "trade": (("p", "price"), ("q", "qty")),
    "markPriceUpdate": (("p", "mark"), ("i", "index"), ("r", "funding")),
    "24hrTicker": (("c", "last"), ("P", "change %"), ("v", "volume")),
    "24hrMiniTicker": (("c", "last"), ("v", "volume")),
    "forceOrder": (),
    "depthUpdate": (),
}


def watch_row(stream: str, payload: Any) -> dict[str, Any]:
    """One ``watch`` table row of an event: its stream, type, time and a short summary."""
    if not isinstance(payload, Mapping):
        return {"stream": stream, "event": "", "time": None, "summary": _raw(payload)[:80]}
    event = str(payload.get("e", ""))
    time = payload.get("E") if isinstance(payload.get("E"), int) else payload.get("T")
    parts: list[str] = []
    if event == "kline" and isinstance(payload.get("k"), Mapping):
        k = payload["k"]
        parts = [f"{name} {k.get(key)}" for key, name in (("o", "o"), ("h", "h"), ("l", "l"))]
        parts += [f"c {k.get('c')}", f"v {k.get('v')}"]
    elif event == "depthUpdate" or ("b" in payload and isinstance(payload.get("b"), list)):
        bids, asks = payload.get("b") or [], payload.get("a") or []
        parts = [f"{len(bids)} bid levels", f"{len(asks)} ask levels"]
        if bids:
            parts.append(f"bid {bids[0][0]} x {bids[0][1]}")
        if asks:
            parts.append(f"ask {asks[0][0]} x {asks[0][1]}")
    elif event == "forceOrder" and isinstance(payload.get("o"), Mapping):
        o = payload["o"]
        parts = [f"{o.get('S')} {o.get('q')} @ {o.get('p')}"]
    elif event in _SUMMARY_FIELDS or (not event and "b" in payload and "a" in payload):
        fields = _SUMMARY_FIELDS.get(event or "bookTicker", ())
        parts = [f"{name} {_raw(payload.get(key))}" for key, name in fields if key in payload]
    elif event.startswith("bfsync."):
        streams = payload.get("streams")
        parts = [str(payload.get("reason", ""))] if payload.get("reason") else []
        if isinstance(streams, list):
            parts.append(", ".join(map(str, streams)))
    else:
        text = json.dumps(payload, separators=(",", ":"))
        parts = [text[:80] + ("..." if len(text) > 80 else "")]
    return {"stream": stream, "event": event, "time": time, "summary": "  ".join(parts)}


def watch_table(rows: Iterable[Mapping[str, Any]], status: Optional[str] = None) -> str:
    """The live table: one row per stream (its latest event), then a status line."""
    table = Table(
        _columns("stream:STREAM", "event:EVENT", "time:TIME:ms", "summary:LATEST"), list(rows)
    )
    text = render_table(table)
    if status:
        text += status + "\n"
    return text
