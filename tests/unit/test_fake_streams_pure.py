"""The pure parts of FakeExchange's streams: the live book, URL routing, control frames."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bfsync.testing._book import Book, to_levels
from bfsync.testing._streams import (
    StreamSession,
    canonical,
    deliverable,
    parse_path,
    stream_route,
)

D = Decimal


def test_book_events_chain_and_snapshot_id() -> None:
    """Each event's pu is the previous u; U follows it; the snapshot id is inside the next."""
    book = Book([(D(10), D(1))], [(D(11), D(1))], update_id=100)
    assert 100 == book.snapshot(5, 0)["lastUpdateId"]
    assert (100, 101, 99) == book.apply([(D(10), D(2)), (D(9), D(1))], [])
    assert 102 == book.snapshot(5, 0)["lastUpdateId"]
    assert 103 == book.next_id()  # a book ticker's id, inside the next event's range
    assert (102, 103, 101) == book.apply([], [(D(11), D(0))])
    assert 104 == book.snapshot(5, 0)["lastUpdateId"]
    assert [["10.00", "2.000"], ["9.00", "1.000"]] == book.snapshot(5, 0)["bids"]
    assert [] == book.snapshot(5, 0)["asks"]


def test_book_removing_an_absent_level_is_fine() -> None:
    """Quantity 0 for a level the book does not hold changes nothing; the event still counts."""
    book = Book([], [], update_id=1)
    assert (1, 1, 0) == book.apply([(D(5), D(0))], [])
    assert ({}, {}) == (book.bids, book.asks)


def test_to_levels_checks_each_pair() -> None:
    """to_levels() names the side and the rule it broke."""
    assert [(D("1.5"), D(0))] == to_levels([("1.5", 0)], "bids")
    for bad, match in (
        ([("0", "1")], "bids price must be > 0"),
        ([("1", "-1")], "bids quantity must be >= 0"),
        ([("x", "1")], "bids price must be a number"),
        ([(1,)], "pairs"),
        ([("nan", "1")], "finite"),
    ):
        with pytest.raises(ValueError, match=match):
            to_levels(bad, "bids")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("btcusdt@bookTicker", "public"),
        ("!bookTicker", "public"),
        ("btcusdt@depth", "public"),
        ("btcusdt@depth@100ms", "public"),
        ("btcusdt@depth20@500ms", "public"),
        ("btcusdt@rpiDepth@500ms", "public"),
        ("btcusdt@aggTrade", "market"),
        ("btcusdt@markPrice@1s", "market"),
        ("!markPrice@arr", "market"),
        ("btcusdt@kline_1M", "market"),
        ("btcusdt_perpetual@continuousKline_15m", "market"),
        ("!ticker@arr", "market"),
        ("!forceOrder@arr", "market"),
        ("tradingSession", "market"),
        ("btcusdt@kline_7m", None),
        ("btcusdt@depth15", None),
        ("btcusdt@bookticker", None),
        ("BTCUSDT@aggTrade", None),  # not canonical: canonical() lowercases the symbol first
        ("", None),
    ],
)
def test_stream_route(name: str, route: Any) -> None:
    """Stream names map to the route reference §7.2 puts them on."""
    assert route == stream_route(name)


def test_canonical_lowercases_only_the_symbol() -> None:
    """The symbol part is lowercased; event names and all-market streams are kept."""
    assert "btcusdt@aggTrade" == canonical("BTCUSDT@aggTrade")
    assert "!markPrice@arr" == canonical("!markPrice@arr")
    assert "tradingSession" == canonical("tradingSession")


def test_deliverable_by_connection_route() -> None:
    """Legacy connections get public streams only; a stream goes to its own route."""
    assert deliverable("legacy", "btcusdt@bookTicker")
    assert not deliverable("legacy", "btcusdt@aggTrade")
    assert not deliverable("public", "btcusdt@aggTrade")
    assert deliverable("market", "btcusdt@aggTrade")
    assert not deliverable("private", "btcusdt@aggTrade")


def test_parse_path_forms() -> None:
    """Raw, combined, private (query, path, several keys) and legacy URLs; others are ws-fapi."""
    raw = parse_path("/public/ws/BTCUSDT@bookTicker/ethusdt@depth")
    assert raw is not None
    assert ("public", False, ["btcusdt@bookTicker", "ethusdt@depth"]) == (
        raw.route,
        raw.combined,
        raw.streams,
    )
    combined = parse_path("/market/stream?streams=btcusdt@aggTrade/!ticker@arr")
    assert combined is not None
    assert ("market", True, ["btcusdt@aggTrade", "!ticker@arr"]) == (
        combined.route,
        combined.combined,
        combined.streams,
    )
    private = parse_path("/private/stream?listenKey=K1&events=A/B&listenKey=K2")
    assert private is not None
    assert [("K1", "A/B"), ("K2", None)] == private.listen_keys
    path_form = parse_path("/private/ws/KEY")
    assert path_form is not None
    assert (True, [("KEY", None)]) == (path_form.path_key, path_form.listen_keys)
    legacy = parse_path("/ws/btcusdt@aggTrade")
    assert legacy is not None
    assert "legacy" == legacy.route
    for other in ("/ws-fapi/v1", "/", "/public", "/market/v1"):
        assert parse_path(other) is None


def reply(session: StreamSession, frame: Any) -> Any:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    return session.handle(text)[0]


def test_session_subscribe_list_unsubscribe() -> None:
    """SUBSCRIBE adds (once), UNSUBSCRIBE removes, LIST_SUBSCRIPTIONS keeps the order made."""
    session = StreamSession("public")
    answer, added, removed = session.handle(
        json.dumps({"method": "SUBSCRIBE", "params": ["b@bookTicker", "a@bookTicker"], "id": 1})
    )
    assert ({"result": None, "id": 1}, ["b@bookTicker", "a@bookTicker"], []) == (
        answer,
        added,
        removed,
    )
    again = {"method": "SUBSCRIBE", "params": ["a@bookTicker"], "id": 2}
    assert ([], []) == session.handle(json.dumps(again))[1:]
    listed = reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
    assert {"result": ["b@bookTicker", "a@bookTicker"], "id": 3} == listed
    gone = {"method": "UNSUBSCRIBE", "params": ["b@bookTicker", "x@bookTicker"], "id": 4}
    assert ["b@bookTicker"] == session.handle(json.dumps(gone))[2]


def test_session_message_rate_window() -> None:
    """over_rate() is true from the 11th message within one second."""
    session = StreamSession("public")
    assert not any(session.over_rate(0.05 * i, 10) for i in range(10))
    assert session.over_rate(0.5, 10)
    assert not StreamSession("public").over_rate(0.0, 10)


def test_session_id_range() -> None:
    """Ids are unsigned 64-bit integers."""
    session = StreamSession("public")
    assert 2**64 - 1 == reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 2**64 - 1})["id"]
    assert 2 == reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 2**64})["error"]["code"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["diff", "diff", "gap", "ticker"]),
            st.lists(
                st.tuples(st.integers(1, 8), st.integers(0, 3), st.booleans()),
                max_size=4,
            ),
        ),
        max_size=30,
    ),
    st.integers(0, 30),
)
def test_snapshot_plus_received_diffs_rebuild_the_book(
    ops: list[tuple[str, list[tuple[int, int, bool]]]], snapshot_at: int
) -> None:
    """A client following reference §7.3 from any snapshot rebuilds the book, or sees a gap."""
    book = Book([(D(1), D(1))], [(D(20), D(1))], update_id=1000)
    received: list[dict[str, Any]] = []
    snapshot = book.snapshot(1000, 0)
    gap_after_snapshot = False
    for i, (kind, changes) in enumerate(ops):
        if i == snapshot_at:
            snapshot = book.snapshot(1000, 0)
            received.clear()  # the client subscribed just before its snapshot
            gap_after_snapshot = False
        if kind == "ticker":
            book.next_id()
            continue
        bids = [(D(p), D(q)) for p, q, is_bid in changes if is_bid]
        asks = [(D(p + 10), D(q)) for p, q, is_bid in changes if not is_bid]
        first, last, prev = book.apply(bids, asks)
        if kind == "diff":
            event = {"U": first, "u": last, "pu": prev, "b": book.wire(bids), "a": book.wire(asks)}
            received.append(event)
        else:
            gap_after_snapshot = True
    snapshot_id = snapshot["lastUpdateId"]
    local = (
        {D(p): D(q) for p, q in snapshot["bids"]},
        {D(p): D(q) for p, q in snapshot["asks"]},
    )
    last_u = None
    for event in received:
        if event["u"] < snapshot_id:
            continue
        in_order = (
            event["U"] <= snapshot_id <= event["u"] if last_u is None else event["pu"] == last_u
        )
        if not in_order:
            assert gap_after_snapshot  # the client resyncs; only after a lost event
            return
        for side, levels in zip(local, (event["b"], event["a"])):
            for p, q in levels:
                if D(q) == 0:
                    side.pop(D(p), None)
                else:
                    side[D(p)] = D(q)
        last_u = event["u"]
    if last_u == book.last_event_u or (last_u is None and not gap_after_snapshot):
        assert (book.bids, book.asks) == local
