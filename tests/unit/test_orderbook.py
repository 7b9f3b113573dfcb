"""BookState: every transition of the local-book procedure, and the parsers (plain calls)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from bfsync.orderbook import (
    MAX_OLD_RUN,
    BookOutcome,
    BookPhase,
    BookState,
    DepthDiff,
    DepthSnapshot,
    parse_depth_update,
    parse_snapshot,
    snapshot_limit_for,
)

D = Decimal


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in pairs]


def diff(
    first: int,
    final: int,
    prev: int,
    bids: Sequence[tuple[str, str]] = (),
    asks: Sequence[tuple[str, str]] = (),
) -> DepthDiff:
    return DepthDiff(first, final, prev, levels(*bids), levels(*asks))


def snapshot(
    last: int,
    bids: Sequence[tuple[str, str]] = (("100", "1"), ("99", "2")),
    asks: Sequence[tuple[str, str]] = (("101", "3"), ("102", "4")),
) -> DepthSnapshot:
    return DepthSnapshot(last, levels(*bids), levels(*asks))


def synced_book(last: int = 10, depth: int = 1000) -> BookState:
    book = BookState(depth=depth)
    book.on_diff(diff(9, last, 8))
    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(last))
    return book


# Buffering


def test_a_new_book_buffers_diffs_and_needs_a_snapshot() -> None:
    """Before any snapshot every diff is held and the book says it needs one."""
    book = BookState()

    assert BookOutcome.BUFFERED == book.on_diff(diff(1, 2, 0))
    assert BookOutcome.BUFFERED == book.on_diff(diff(3, 4, 2))
    assert (BookPhase.BUFFERING, True, False) == (book.phase, book.needs_snapshot, book.synced)
    assert (2, None, [], []) == (book.buffered, book.last_update_id, book.bids(), book.asks())


def test_buffering_drops_a_duplicate_diff() -> None:
    """A held diff arriving again (u not after the last held u) is dropped, not held twice."""
    book = BookState()
    book.on_diff(diff(1, 2, 0))

    assert BookOutcome.DROPPED == book.on_diff(diff(1, 2, 0))
    assert 1 == book.buffered


def test_a_break_in_the_held_chain_discards_what_came_before() -> None:
    """A held diff whose pu is not the previous held u starts the buffer afresh."""
    book = BookState()
    book.on_diff(diff(1, 2, 0))
    book.on_diff(diff(3, 4, 2))

    assert BookOutcome.BUFFERED == book.on_diff(diff(7, 8, 6))
    assert 1 == book.buffered


def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    """Beyond max_buffer the oldest held diff goes; a later snapshot still bridges the rest."""
    book = BookState(max_buffer=2)
    for first in range(1, 7, 2):  # (1,2), (3,4), (5,6)
        book.on_diff(diff(first, first + 1, first - 1))

    assert (2, 1) == (book.buffered, book.buffer_overflows)
    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(4))
    assert 6 == book.last_update_id


# Snapshot


def test_snapshot_drops_older_diffs_and_applies_from_the_bridging_one() -> None:
    """Held diffs with u < lastUpdateId are dropped; U <= L <= u applies, then the chain."""
    book = BookState()
    book.on_diff(diff(1, 3, 0, bids=[("100", "9")]))  # u < 5: dropped
    book.on_diff(diff(4, 6, 3, bids=[("100", "5")]))  # 4 <= 5 <= 6: applied
    book.on_diff(diff(7, 8, 6, asks=[("101", "0")]))  # chained: applied

    outcome = book.on_snapshot(snapshot(5))

    assert BookOutcome.APPLIED == outcome
    assert (True, 8, 0) == (book.synced, book.last_update_id, book.buffered)
    assert levels(("100", "5"), ("99", "2")) == book.bids()
    assert levels(("102", "4")) == book.asks()


def test_a_diff_ending_exactly_at_last_update_id_bridges() -> None:
    """u == lastUpdateId is not dropped (u < L is) and bridges the snapshot."""
    book = BookState()
    book.on_diff(diff(3, 5, 2, bids=[("98", "1")]))

    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(5))
    assert levels(("100", "1"), ("99", "2"), ("98", "1")) == book.bids()


def test_a_snapshot_older_than_every_held_diff_is_stale() -> None:
    """Every held diff has U > lastUpdateId: STALE_SNAPSHOT, book cleared, diffs kept."""
    book = BookState()
    book.on_diff(diff(10, 12, 9))
    book.on_diff(diff(13, 14, 12))

    assert BookOutcome.STALE_SNAPSHOT == book.on_snapshot(snapshot(5))
    assert (BookPhase.BUFFERING, 2, [], None) == (
        book.phase,
        book.buffered,
        book.bids(),
        book.last_update_id,
    )
    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(11))
    assert 14 == book.last_update_id


def test_a_snapshot_with_nothing_held_waits_loaded_for_the_bridge() -> None:
    """With no diff held the book is LOADED, not synced, until a diff bridges lastUpdateId."""
    book = BookState()

    assert BookOutcome.LOADED == book.on_snapshot(snapshot(5))
    assert (BookPhase.LOADED, False, 5) == (book.phase, book.synced, book.last_update_id)
    assert BookOutcome.DROPPED == book.on_diff(diff(2, 4, 1))
    assert BookOutcome.APPLIED == book.on_diff(diff(5, 7, 4))
    assert (True, 7) == (book.synced, book.last_update_id)


def test_snapshot_with_only_older_diffs_held_is_loaded() -> None:
    """Held diffs all older than the snapshot are dropped and the book waits LOADED."""
    book = BookState()
    book.on_diff(diff(1, 2, 0))

    assert BookOutcome.LOADED == book.on_snapshot(snapshot(5))
    assert 0 == book.buffered


def test_loaded_book_seeing_a_later_diff_calls_the_snapshot_stale() -> None:
    """LOADED and the next diff has U > lastUpdateId: STALE_SNAPSHOT, that diff is held."""
    book = BookState()
    book.on_snapshot(snapshot(5))

    assert BookOutcome.STALE_SNAPSHOT == book.on_diff(diff(8, 9, 7))
    assert (BookPhase.BUFFERING, 1, []) == (book.phase, book.buffered, book.asks())


def test_a_crossed_snapshot_is_refused_and_held_diffs_kept() -> None:
    """A snapshot with best bid >= best ask: CROSSED, nothing loaded, diffs still held."""
    book = BookState()
    book.on_diff(diff(4, 6, 3))

    outcome = book.on_snapshot(snapshot(5, bids=[("101", "1")], asks=[("101", "1")]))

    assert BookOutcome.CROSSED == outcome
    assert (BookPhase.BUFFERING, 1, []) == (book.phase, book.buffered, book.bids())


def test_snapshot_levels_with_zero_quantity_are_ignored() -> None:
    """A zero quantity in a snapshot is no level."""
    book = BookState()

    book.on_snapshot(snapshot(5, bids=[("100", "0"), ("99", "1")]))

    assert levels(("99", "1")) == book.bids()


# Synced


def test_synced_applies_chained_diffs_with_absolute_quantities() -> None:
    """pu == last u applies: quantities replace, zero removes, an absent zero is harmless."""
    book = synced_book(10)

    outcome = book.on_diff(
        diff(11, 12, 10, bids=[("100", "7"), ("98", "0"), ("97", "1")], asks=[("102", "0")])
    )

    assert BookOutcome.APPLIED == outcome
    assert levels(("100", "7"), ("99", "2"), ("97", "1")) == book.bids()
    assert levels(("101", "3")) == book.asks()
    assert 12 == book.last_update_id


def test_synced_drops_duplicates_and_late_diffs() -> None:
    """A diff with u <= last u is dropped and the book stays synced."""
    book = synced_book(10)
    book.on_diff(diff(11, 12, 10, bids=[("100", "7")]))

    assert BookOutcome.DROPPED == book.on_diff(diff(11, 12, 10, bids=[("100", "1")]))
    assert (True, 12, D("7")) == (book.synced, book.last_update_id, book.bids(1)[0][1])


def test_synced_gap_clears_the_book_and_holds_the_diff() -> None:
    """pu != last u: GAP, levels cleared, the diff held for the next snapshot."""
    book = synced_book(10)

    assert BookOutcome.GAP == book.on_diff(diff(15, 16, 14))
    assert (BookPhase.BUFFERING, True, [], [], 1) == (
        book.phase,
        book.needs_snapshot,
        book.bids(),
        book.asks(),
        book.buffered,
    )
    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(15))
    assert 16 == book.last_update_id


def test_a_diff_that_crosses_the_book_puts_it_out_of_sync() -> None:
    """A bid at or above the best ask after a diff: CROSSED and cleared."""
    book = synced_book(10)

    assert BookOutcome.CROSSED == book.on_diff(diff(11, 12, 10, bids=[("101", "1")]))
    assert (False, [], None) == (book.synced, book.bids(), book.last_update_id)


def test_reset_forgets_levels_and_held_diffs() -> None:
    """reset() returns to BUFFERING with nothing held."""
    book = synced_book(10)
    book.reset()

    assert (BookPhase.BUFFERING, 0, []) == (book.phase, book.buffered, book.bids())


def test_a_new_snapshot_on_a_synced_book_replaces_it() -> None:
    """A snapshot while synced loads afresh and waits for its bridge."""
    book = synced_book(10)

    assert BookOutcome.LOADED == book.on_snapshot(snapshot(20, bids=[("90", "1")]))
    assert (BookPhase.LOADED, levels(("90", "1"))) == (book.phase, book.bids())


@pytest.mark.parametrize("phase", ["buffering", "loaded", "synced"])
def test_ids_going_backwards_start_the_book_over(phase: str) -> None:
    """More than MAX_OLD_RUN old diffs in a row (a restarted sequence) do not freeze it."""
    book = BookState()
    book.on_diff(diff(100, 101, 99))
    if phase != "buffering":
        book.on_snapshot(snapshot(100 if phase == "synced" else 200))
    expected = {
        "buffering": BookOutcome.BUFFERED,
        "loaded": BookOutcome.STALE_SNAPSHOT,
        "synced": BookOutcome.GAP,
    }[phase]

    outcomes = [book.on_diff(diff(i, i, i - 1)) for i in range(1, MAX_OLD_RUN + 2)]

    assert [BookOutcome.DROPPED] * MAX_OLD_RUN == outcomes[:-1]
    assert expected == outcomes[-1]
    assert (BookPhase.BUFFERING, 1) == (book.phase, book.buffered)
    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(MAX_OLD_RUN + 1))


def test_old_diffs_replayed_from_the_buffer_do_not_count_as_a_run() -> None:
    """Many held diffs older than a snapshot are dropped quietly when it loads."""
    book = BookState()
    for i in range(1, 3 * MAX_OLD_RUN):
        book.on_diff(diff(i, i, i - 1))

    assert BookOutcome.APPLIED == book.on_snapshot(snapshot(3 * MAX_OLD_RUN - 1))
    assert BookOutcome.DROPPED == book.on_diff(diff(5, 5, 4))


# Depth, trimming, reading


def test_levels_beyond_depth_are_trimmed_worst_first() -> None:
    """With depth=2 the snapshot and each diff keep only the two best levels a side."""
    book = BookState(depth=2)
    book.on_diff(diff(5, 5, 4))
    book.on_snapshot(snapshot(5, bids=[("100", "1"), ("99", "1"), ("98", "1")]))

    assert levels(("100", "1"), ("99", "1")) == book.bids()
    book.on_diff(diff(6, 6, 5, bids=[("100.5", "2")], asks=[("100.9", "1"), ("101.5", "1")]))
    assert levels(("100.5", "2"), ("100", "1")) == book.bids()
    assert levels(("100.9", "1"), ("101", "3")) == book.asks()


def test_bids_and_asks_read_best_first_with_n() -> None:
    """bids(n)/asks(n) return the n best levels, all when None, none when 0."""
    book = synced_book(10)

    assert levels(("100", "1")) == book.bids(1)
    assert levels(("101", "3"), ("102", "4")) == book.asks(5)
    assert ([], []) == (book.bids(0), book.asks(0))
    assert (D("100"), D("101")) == (book.best_bid(), book.best_ask())


def test_equal_prices_written_differently_are_one_level() -> None:
    """'100.10' and '100.1' are the same price level."""
    book = synced_book(10)
    book.on_diff(diff(11, 11, 10, bids=[("100.10", "1")]))
    book.on_diff(diff(12, 12, 11, bids=[("100.1", "0")]))

    assert levels(("100", "1"), ("99", "2")) == book.bids()


@pytest.mark.parametrize("depth", [0, 1001, "10", True, None])
def test_bad_depth_is_refused(depth: Any) -> None:
    """depth must be an int from 1 to 1000."""
    with pytest.raises(ValueError, match="depth must be an int from 1 to 1000"):
        BookState(depth=depth)


def test_bad_max_buffer_is_refused() -> None:
    """max_buffer must be a positive int."""
    with pytest.raises(ValueError, match="max_buffer"):
        BookState(max_buffer=0)


@pytest.mark.parametrize(
    ("depth", "limit"), [(1, 5), (5, 5), (6, 10), (20, 20), (101, 500), (1000, 1000)]
)
def test_snapshot_limit_covers_the_depth(depth: int, limit: int) -> None:
    """The snapshot limit is the smallest accepted value >= depth."""
    assert limit == snapshot_limit_for(depth)


# Parsing


def test_parse_depth_update_reads_payload_and_envelope() -> None:
    """A depthUpdate payload and its combined envelope parse to the same diff."""
    payload = {
        "e": "depthUpdate",
        "E": 1,
        "T": 1,
        "s": "BTCUSDT",
        "U": 5,
        "u": 7,
        "pu": 4,
        "b": [["100.5", "1.000"]],
        "a": [["101", "0"]],
    }
    expected = DepthDiff(5, 7, 4, levels(("100.5", "1.000")), levels(("101", "0")))

    assert expected == parse_depth_update(payload)
    assert expected == parse_depth_update({"stream": "btcusdt@depth", "data": payload})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"U": None}, "'U'"),
        ({"pu": "4"}, "'pu'"),
        ({"u": True}, "'u'"),
        ({"b": "x"}, "'b'"),
        ({"a": [["101"]]}, "'a'"),
        ({"a": [["abc", "1"]]}, "'a'"),
        ({"b": [["100", "-1"]]}, "'b'"),
        ({"b": [["0", "1"]]}, "'b'"),
        ({"b": [[100.5, "1"]]}, "'b'"),
        ({"b": [["NaN", "1"]]}, "'b'"),
    ],
)
def test_parse_depth_update_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    """A missing or malformed field raises ValueError naming it."""
    payload = {"U": 5, "u": 7, "pu": 4, "b": [], "a": [], **change}

    with pytest.raises(ValueError, match=field):
        parse_depth_update(payload)


def test_parse_snapshot_reads_rest_shape() -> None:
    """The REST body parses to lastUpdateId and Decimal levels."""
    body = {"lastUpdateId": 42, "E": 1, "T": 1, "bids": [["1.5", "2"]], "asks": [["1.6", "3"]]}

    assert DepthSnapshot(42, levels(("1.5", "2")), levels(("1.6", "3"))) == parse_snapshot(body)


def test_parse_snapshot_refuses_a_body_without_last_update_id() -> None:
    """An error body or a body without lastUpdateId raises ValueError naming it."""
    with pytest.raises(ValueError, match="'lastUpdateId'"):
        parse_snapshot({"code": -1121, "msg": "Invalid symbol."})
