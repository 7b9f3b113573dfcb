"""Tables, CSV and JSON of the command line (bfsync.cli._format): plain calls."""

from __future__ import annotations

import csv
import io
import json

from bfsync.cli import _format as fmt

BOOK = {
    "symbol": "BTCUSDT",
    "bidPrice": "49999.90",
    "bidQty": "0.250",
    "askPrice": "50000.10",
    "askQty": "0.500",
    "time": 1796398096494,
}
ORDER = {
    "orderId": 4000000001,
    "symbol": "BTCUSDT",
    "status": "NEW",
    "clientOrderId": "c1",
    "price": "45000.00",
    "origQty": "0.010",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.00",
    "time": 1796398096496,
}
ALGO = {
    "algoId": 2000000001,
    "clientAlgoId": "a1",
    "orderType": "STOP_MARKET",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "quantity": "0.010",
    "algoStatus": "NEW",
    "triggerPrice": "44000.00",
    "price": "0.00",
    "createTime": 1796398096497,
}


def test_table_keeps_decimal_text_and_aligns_numbers() -> None:
    """Decimal strings appear exactly as sent (trailing zeros kept), numbers right-aligned."""
    text = fmt.render_table(fmt.book_table(BOOK))
    header, row = text.splitlines()
    assert "SYMBOL   BID QTY       BID       ASK  ASK QTY  TIME" == header
    assert "BTCUSDT    0.250  49999.90  50000.10    0.500  2026-12-04 15:28:16.494" == row


def test_csv_parses_back_with_raw_values() -> None:
    """CSV rows parse back to the exchange's exact strings, and times stay in milliseconds."""
    rows = list(csv.DictReader(io.StringIO(fmt.render_csv(fmt.book_table(BOOK)))))
    assert [
        {
            "SYMBOL": "BTCUSDT",
            "BID QTY": "0.250",
            "BID": "49999.90",
            "ASK": "50000.10",
            "ASK QTY": "0.500",
            "TIME": "1796398096494",
        }
    ] == rows


def test_json_is_the_document_as_sent() -> None:
    """--json prints the reply's result unchanged (strings stay strings)."""
    assert BOOK == json.loads(fmt.render("json", BOOK, fmt.book_table(BOOK)))


def test_depth_is_a_ladder() -> None:
    """depth lists asks from the highest down, then bids from the best down."""
    depth = {"bids": [["99.0", "1"], ["98.5", "2"]], "asks": [["99.5", "3"], ["100.0", "4"]]}
    rows = fmt.depth_table(depth).rows
    assert [("ask", "100.0"), ("ask", "99.5"), ("bid", "99.0"), ("bid", "98.5")] == [
        (r["side"], r["price"]) for r in rows
    ]


def test_orders_table_merges_plain_and_algo() -> None:
    """A plain and a conditional order share one table, told apart by KIND."""
    rows = fmt.orders_table([ORDER], [ALGO]).rows
    assert [
        ("order", 4000000001, "c1", "LIMIT", "0.010", "45000.00", "0.00", "NEW"),
        ("algo", 2000000001, "a1", "STOP_MARKET", "0.010", "0.00", "44000.00", "NEW"),
    ] == [
        (
            r["kind"],
            r["id"],
            r["clientId"],
            r["type"],
            r["quantity"],
            r["price"],
            r["stopPrice"],
            r["status"],
        )
        for r in rows
    ]


def test_balance_and_positions_hide_zeros_unless_all() -> None:
    """Zero balances and flat positions are left out, unless --all."""
    balances = [{"asset": "USDT", "balance": "10.0"}, {"asset": "BNB", "balance": "0.00000000"}]
    positions = [{"symbol": "A", "positionAmt": "0.000"}, {"symbol": "B", "positionAmt": "-1"}]
    assert ["USDT"] == [r["asset"] for r in fmt.balance_table(balances).rows]
    assert 2 == len(fmt.balance_table(balances, everything=True).rows)
    assert ["B"] == [r["symbol"] for r in fmt.positions_table(positions).rows]
    assert 2 == len(fmt.positions_table(positions, everything=True).rows)


def test_empty_table_says_none() -> None:
    """A table without rows prints (none); its CSV is the header alone."""
    table = fmt.orders_table([], [])
    assert "(none)\n" == fmt.render_table(table)
    assert 1 == len(fmt.render_csv(table).splitlines())


def test_csv_of_none_and_booleans() -> None:
    """None is an empty cell, booleans are true/false, nested values compact JSON."""
    table = fmt.Table(fmt._columns("a", "b", "c"), [{"a": None, "b": False, "c": [1, "x"]}])
    assert 'a,b,c\n,false,"[1,""x""]"\n' == fmt.render_csv(table)


def test_watch_rows_summarize_known_events() -> None:
    """watch's live table summarises bookTicker, kline and gap events in one line each."""
    ticker = {"e": "bookTicker", "E": 1, "b": "1.10", "B": "2", "a": "1.20", "A": "3"}
    kline = {"e": "kline", "E": 2, "k": {"o": "1", "h": "2", "l": "0.5", "c": "1.5", "v": "9"}}
    gap = {"e": "bfsync.gap", "E": 3, "reason": "lost", "streams": ["x@aggTrade"]}
    assert "bid 1.10  bid qty 2  ask 1.20  ask qty 3" == fmt.watch_row("s", ticker)["summary"]
    assert "o 1  h 2  l 0.5  c 1.5  v 9" == fmt.watch_row("k", kline)["summary"]
    assert "lost  x@aggTrade" == fmt.watch_row("bfsync.gap", gap)["summary"]


def test_watch_table_has_a_status_line() -> None:
    """The live table ends with its status line."""
    text = fmt.watch_table([{"stream": "s", "event": "e", "time": None, "summary": "x"}], "3 ev")
    assert "3 ev" == text.splitlines()[-1]


def test_json_line_is_one_line() -> None:
    """watch's JSON lines are compact, one per event."""
    assert '{"stream":"s","data":{"p":"1.0"}}\n' == fmt.json_line(
        {"stream": "s", "data": {"p": "1.0"}}
    )
