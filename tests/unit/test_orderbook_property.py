"""
BookState against a reference exchange: random diffs, lost, duplicated and reordered events,
and snapshots taken at any moment (even mid-event). While the book says it is synced, its
levels are exactly the exchange's as of ``last_update_id``; a lost or reordered diff is flagged
(GAP) as soon as the next one arrives, and once the stream is clean again the book resyncs.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bfsync.orderbook import BookOutcome, BookState, DepthDiff, DepthSnapshot

D = Decimal
BID_PRICES = [D(90) + D("0.5") * i for i in range(21)]  # 90 .. 100
ASK_PRICES = [D("100.5") + D("0.5") * i for i in range(20)]  # 100.5 .. 110: never crossed
QTYS = [D(0), D("0.001"), D(1), D("2.50"), D(7)]

Side = dict[Decimal, Decimal]


class Exchange:
    """The truth: a book, its update ids, every state by final update id, events in flight."""

    def __init__(self) -> None:
        self.bids: Side = {BID_PRICES[-1]: D(1)}
        self.asks: Side = {ASK_PRICES[0]: D(1)}
        self.next_id = 100
        self.last_final = 99
        self.events: list[tuple[DepthDiff, Side, Side]] = []  # (diff, bids before, asks before)
        self.after: dict[int, tuple[Side, Side]] = {}
        self.in_flight: deque[DepthDiff] = deque()

    def generate(self, changes: list[tuple[bool, int, int]], span: int, skip: int) -> DepthDiff:
        before = (dict(self.bids), dict(self.asks))
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        for is_bid, index, qty_index in changes:
            price = BID_PRICES[index % 21] if is_bid else ASK_PRICES[index % 20]
            qty = QTYS[qty_index]
            (bids if is_bid else asks).append((price, qty))
            side = self.bids if is_bid else self.asks
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        first = self.next_id
        final = first + span
        diff = DepthDiff(first, final, self.last_final, bids, asks)
        self.events.append((diff, *before))
        self.after[final] = (dict(self.bids), dict(self.asks))
        self.last_final = final
        self.next_id = final + 1 + skip
        return diff

    def snapshot(self, limit: int, where: int) -> DepthSnapshot:
        """The book at an update id inside the last event (part of its changes applied)."""
        if not self.events:
            bids, asks, last = self.bids, self.asks, self.last_final
        else:
            diff, bids, asks = self.events[-1]
            bids, asks = dict(bids), dict(asks)
            span = diff.final_update_id - diff.first_update_id
            offset = where % (span + 1)
            last = diff.first_update_id + offset
            # Changes up to `last` are in; an event's changes are spread over its id range.
            changes = [(True, *level) for level in diff.bids] + [
                (False, *level) for level in diff.asks
            ]
            # The update at id `last` is in the snapshot, so at least one change once any.
            applied = changes[: -(-len(changes) * (offset + 1) // (span + 1))]
            for is_bid, price, qty in applied:
                side = bids if is_bid else asks
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        top_bids = sorted(bids.items(), reverse=True)[:limit]
        top_asks = sorted(asks.items())[:limit]
        return DepthSnapshot(last, top_bids, top_asks)


def check(book: BookState, exchange: Exchange, exact: bool) -> None:
    """While synced, the book holds the exchange's levels as of last_update_id."""
    bids, asks = book.bids(), book.asks()
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert len(bids) <= book.depth and len(asks) <= book.depth
    if book.needs_snapshot:
        assert ([], []) == (bids, asks)
    if not book.synced:
        return
    last = book.last_update_id
    assert last in exchange.after, f"synced at {last}, not a final update id"
    true_bids, true_asks = exchange.after[last]
    if exact:
        assert true_bids == dict(bids)
        assert true_asks == dict(asks)
    else:
        assert {p: true_bids.get(p) for p, _ in bids} == dict(bids)
        assert {p: true_asks.get(p) for p, _ in asks} == dict(asks)


changes = st.lists(
    st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, len(QTYS) - 1)), max_size=6
)
actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("gen"),
            changes,
            st.integers(0, 3),  # span: u - U
            st.integers(0, 3),  # skip: ids of other symbols between events
            st.sampled_from(["ok", "ok", "ok", "lose", "duplicate"]),
        ),
        st.tuples(st.just("deliver"), st.sampled_from(["next", "next", "swap"])),
        st.tuples(st.just("snapshot"), st.integers(0, 50), st.booleans()),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(actions=actions, depth=st.sampled_from([1000, 3]))
def test_the_book_is_never_wrong_while_it_says_synced(actions: list[Any], depth: int) -> None:
    """Random faults and snapshots: synced means exact; gaps flagged; a clean stream resyncs."""
    exchange = Exchange()
    book = BookState(depth=depth)
    exact = depth == 1000
    limit = 1000 if exact else 5

    def deliver(diff: DepthDiff) -> None:
        was_synced, last = book.synced, book.last_update_id
        outcome = book.on_diff(diff)
        if was_synced and diff.final_update_id > (last or 0):
            chained = diff.prev_final_update_id == last
            assert (BookOutcome.GAP not in (outcome,)) == chained, (outcome, diff, last)
        check(book, exchange, exact)

    for action in actions:
        if action[0] == "gen":
            _, level_changes, span, skip, fault = action
            diff = exchange.generate(level_changes, span, skip)
            if fault != "lose":
                exchange.in_flight.append(diff)
            if fault == "duplicate":
                exchange.in_flight.append(diff)
        elif action[0] == "deliver" and exchange.in_flight:
            if action[1] == "swap" and len(exchange.in_flight) >= 2:
                first = exchange.in_flight.popleft()
                deliver(exchange.in_flight.popleft())
                exchange.in_flight.appendleft(first)
            else:
                deliver(exchange.in_flight.popleft())
        elif action[0] == "snapshot" and (book.needs_snapshot or action[2]):
            book.on_snapshot(exchange.snapshot(limit, action[1]))
            check(book, exchange, exact)

    # A clean stream from here on: the book must get back in sync within a few rounds.
    while exchange.in_flight:
        deliver(exchange.in_flight.popleft())
    for _ in range(4):
        if book.needs_snapshot:
            book.on_snapshot(exchange.snapshot(limit, 7))
            check(book, exchange, exact)
        deliver(exchange.generate([(True, 20, 2)], 1, 1))
    assert book.synced
    assert exchange.last_final == book.last_update_id
