"""bfsync.excel._user.UserView: the order cells' records, by plain calls with a given clock."""

from __future__ import annotations

from typing import Any

from bfsync.excel._user import UserView


class Clock:
    """Seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def order(client_id: str, status: str, execution: str = "NEW", symbol: str = "BTCUSDT") -> Any:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "o": {"c": client_id, "X": status, "x": execution, "s": symbol},
    }


def algo(client_id: str, status: str) -> Any:
    return {"e": "ALGO_UPDATE", "o": {"caid": client_id, "X": status, "s": "BTCUSDT"}}


def gap(reason: str = "connection lost") -> Any:
    return {"e": "bfsync.gap", "reason": reason}


def test_the_latest_event_of_each_id_is_kept() -> None:
    """Orders and algo orders by client id, the latest event wins."""
    view = UserView()
    view.on_event(order("a", "NEW"))
    view.on_event(algo("b", "NEW"))
    view.on_event(order("a", "FILLED", "TRADE"))

    a, b = view.order("a"), view.order("b")

    assert a is not None and b is not None
    assert ("FILLED", "NEW") == (a.event["o"]["X"], b.event["o"]["X"])
    assert None is view.order("c")


def test_fills_per_symbol_and_any() -> None:
    """Only TRADE executions are fills; the last per symbol and the last of any are kept."""
    view = UserView()
    view.on_event(order("a", "PARTIALLY_FILLED", "TRADE", "BTCUSDT"))
    view.on_event(order("b", "FILLED", "TRADE", "ETHUSDT"))
    view.on_event(order("c", "CANCELED", "CANCELED", "ETHUSDT"))

    btc, eth, last = view.fill("BTCUSDT"), view.fill("ETHUSDT"), view.fill(None)

    assert btc is not None and eth is not None and last is not None
    assert ("a", "b", "b") == (btc.event["o"]["c"], eth.event["o"]["c"], last.event["o"]["c"])


def test_a_gap_makes_open_orders_not_current_until_their_next_event() -> None:
    """After a gap, NEW is not current, FILLED still is (final); the next event is current."""
    clock = Clock()
    view = UserView(clock=clock)
    view.on_event(order("open", "NEW"))
    view.on_event(order("done", "FILLED", "TRADE"))
    clock.now += 3
    view.on_event(gap("connection lost (code 1006)"))
    clock.now += 2

    opened, done = view.order("open"), view.order("done")
    assert opened is not None and done is not None
    assert (False, False, True) == (view.current(opened), opened.final, done.final)
    assert ("connection lost (code 1006)", 2.0) == view.last_gap()

    view.on_event(order("open", "FILLED", "TRADE"))

    again = view.order("open")
    assert again is not None and view.current(again)


def test_a_restart_counts_as_a_gap_and_records_outlive_it() -> None:
    """restarted(): one gap; what was seen stays."""
    view = UserView()
    view.on_event(algo("a", "TRIGGERED"))

    view.restarted()

    record = view.order("a")
    assert record is not None
    assert (1, False, False) == (view.gaps, view.current(record), record.final)
    assert "started anew" in (view.last_gap() or ("", 0.0))[0]


def test_only_the_last_ids_are_kept_and_junk_is_ignored() -> None:
    """At most max_ids ids (oldest forgotten); non-dicts and other events change nothing."""
    view = UserView(max_ids=2)
    for event in (None, "text", {"e": "ACCOUNT_UPDATE"}, {"e": "ORDER_TRADE_UPDATE", "o": 1}):
        view.on_event(event)
    for client_id in ("a", "b", "c"):
        view.on_event(order(client_id, "NEW"))

    assert [None, "b", "c"] == [
        (r.event["o"]["c"] if r is not None else None) for r in map(view.order, "abc")
    ]
    assert (0, None) == (view.gaps, view.last_gap())
