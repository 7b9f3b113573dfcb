"""OrderBook: the live book fed diffs by hand, snapshots from a scripted fetcher (threads)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Optional, Union

import pytest

from bfsync import OrderBookOutOfSyncError
from bfsync.exceptions import ConnectionError
from bfsync.livebook import OrderBook
from bfsync.orderbook import BookOutcome, BookPhase
from tests.timing import scaled

WAIT = scaled(5.0)
D = Decimal


def depth_event(
    first: int,
    final: int,
    prev: int,
    bids: Optional[list[list[str]]] = None,
    asks: Optional[list[list[str]]] = None,
) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": 1,
        "T": 1,
        "s": "BTCUSDT",
        "U": first,
        "u": final,
        "pu": prev,
        "b": bids or [],
        "a": asks or [],
    }


def snapshot(last: int, bids: Optional[list[list[str]]] = None) -> dict[str, Any]:
    return {
        "lastUpdateId": last,
        "E": 1,
        "T": 1,
        "bids": bids if bids is not None else [["100", "1"], ["99", "2"]],
        "asks": [["101", "3"], ["102", "4"]],
    }


class Fetcher:
    """A scripted fetch_snapshot: answers (dicts or exceptions) in turn, optionally gated."""

    def __init__(self, *answers: Union[dict[str, Any], Exception]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, symbol: str, limit: int) -> dict[str, Any]:
        with self.lock:
            self.calls.append((symbol, limit, threading.current_thread().name))
        self.entered.set()
        assert self.gate.wait(WAIT)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Notices:
    """Records on_notice calls."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def __call__(self, **fields: Any) -> None:
        self.items.append(fields)

    def statuses(self) -> list[str]:
        return [item["status"] for item in self.items]


@pytest.fixture
def books() -> Iterator[list[OrderBook]]:
    made: list[OrderBook] = []
    yield made
    for book in made:
        book.close(WAIT)
    assert [] == [t for t in threading.enumerate() if t.name.startswith("bfsync-book-")]


def make(books: list[OrderBook], fetcher: Any, **kw: Any) -> OrderBook:
    kw.setdefault("retry_delay", scaled(0.01))
    book = OrderBook("btcusdt", fetcher, **kw)
    books.append(book)
    return book


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(scaled(0.002))


def test_syncs_from_the_first_event_and_a_snapshot(books: list[OrderBook]) -> None:
    """A buffered diff plus a bridging snapshot: synced, levels exact, fetched on the worker."""
    notices = Notices()
    fetcher = Fetcher(snapshot(10))
    book = make(books, fetcher, on_notice=notices)
    with pytest.raises(OrderBookOutOfSyncError, match="BTCUSDT is not in sync"):
        book.bids()

    assert BookOutcome.BUFFERED == book.feed(depth_event(9, 11, 8, bids=[["100", "5"]]))
    assert book.wait_synced(WAIT)
    assert [("BTCUSDT", 1000, "bfsync-book-BTCUSDT")] == fetcher.calls
    assert [(D("100"), D("5")), (D("99"), D("2"))] == book.bids()
    assert [(D("101"), D("3"))] == book.asks(1)
    assert (True, 11, BookPhase.SYNCED) == (book.synced, book.last_update_id, book.phase)
    wait_for(lambda: notices.items)  # sent after the lock is released
    assert [{"symbol": "BTCUSDT", "status": "synced", "lastUpdateId": 11}] == notices.items
    assert (11, book.bids(1), book.asks(1)) == book.levels(1)


def test_the_first_fetch_waits_for_the_first_event(books: list[OrderBook]) -> None:
    """No snapshot is fetched before a diff has arrived (it could predate the stream)."""
    fetcher = Fetcher(snapshot(10))
    book = make(books, fetcher)
    time.sleep(scaled(0.05))

    assert [] == fetcher.calls
    book.feed(depth_event(10, 12, 9))
    assert book.wait_synced(WAIT)
    assert 1 == len(fetcher.calls)


def test_events_during_a_slow_fetch_are_kept_and_applied(books: list[OrderBook]) -> None:
    """Diffs fed while the fetch blocks are buffered, then bridged and applied in order."""
    fetcher = Fetcher(snapshot(10))
    fetcher.gate.clear()
    book = make(books, fetcher)
    book.feed(depth_event(8, 9, 7))
    assert fetcher.entered.wait(WAIT)

    outcomes = [
        book.feed(depth_event(10, 11, 9, bids=[["99", "0"]])),
        book.feed(depth_event(12, 13, 11, asks=[["101.5", "1"]])),
        book.feed(depth_event(14, 15, 13, bids=[["100", "3"]])),
    ]
    fetcher.gate.set()

    assert [BookOutcome.BUFFERED] * 3 == outcomes
    assert book.wait_synced(WAIT)
    assert 15 == book.last_update_id
    assert [(D("100"), D("3"))] == book.bids()
    assert [(D("101"), D("3")), (D("101.5"), D("1")), (D("102"), D("4"))] == book.asks()


def test_a_gap_resyncs_by_itself(books: list[OrderBook]) -> None:
    """A broken pu chain: out of sync at once, reads raise, a new snapshot syncs it again."""
    notices = Notices()
    fetcher = Fetcher(snapshot(10), snapshot(21, bids=[["100", "9"]]))
    book = make(books, fetcher, on_notice=notices)
    book.feed(depth_event(9, 11, 8))
    assert book.wait_synced(WAIT)

    assert BookOutcome.GAP == book.feed(depth_event(20, 22, 19))
    assert not book.synced
    with pytest.raises(OrderBookOutOfSyncError, match="resyncing after gap"):
        book.asks()
    assert book.wait_synced(WAIT)
    assert (22, [(D("100"), D("9"))]) == (book.last_update_id, book.bids(1))
    assert (1, 1, 2) == (book.gaps, book.resyncs, len(fetcher.calls))
    wait_for(lambda: len(notices.items) == 3)
    assert ["synced", "out_of_sync", "synced"] == notices.statuses()
    assert "gap" == notices.items[1]["reason"]


def test_a_failing_fetch_is_retried_with_backoff_and_reported(books: list[OrderBook]) -> None:
    """Two failures, then success: counted, reported with growing delays, then synced."""
    notices = Notices()
    fetcher = Fetcher(ConnectionError("refused"), ValueError("bad body"), snapshot(10))
    book = make(books, fetcher, on_notice=notices)
    book.feed(depth_event(9, 11, 8))

    assert book.wait_synced(WAIT)
    assert 2 == book.stats()["snapshot_failures"]
    wait_for(lambda: len(notices.items) == 3)
    assert ["snapshot_failed", "snapshot_failed", "synced"] == notices.statuses()
    assert "ConnectionError: refused" == notices.items[0]["error"]
    assert pytest.approx([scaled(0.01), scaled(0.02)]) == [n["retry_in"] for n in notices.items[:2]]
    assert book.last_error is None


def test_last_error_holds_the_failure_until_synced(books: list[OrderBook]) -> None:
    """While fetches keep failing, last_error is the exception and the book stays unsynced."""
    fetcher = Fetcher(ConnectionError("down"))
    book = make(books, fetcher)
    book.feed(depth_event(9, 11, 8))

    wait_for(lambda: len(fetcher.calls) >= 2)
    assert isinstance(book.last_error, ConnectionError)
    assert not book.wait_synced(scaled(0.01))


def test_a_stale_snapshot_is_fetched_again(books: list[OrderBook]) -> None:
    """A snapshot older than every buffered diff: fetched again, then synced."""
    fetcher = Fetcher(snapshot(5), snapshot(12))
    book = make(books, fetcher)
    book.feed(depth_event(10, 13, 9))

    assert book.wait_synced(WAIT)
    assert (13, 1, 2) == (book.last_update_id, book.stats()["stale_snapshots"], len(fetcher.calls))


def test_a_crossed_book_resyncs(books: list[OrderBook]) -> None:
    """A diff that puts a bid at the best ask: CROSSED, out of sync, resynced."""
    fetcher = Fetcher(snapshot(10), snapshot(30))
    book = make(books, fetcher)
    book.feed(depth_event(9, 11, 8))
    assert book.wait_synced(WAIT)

    assert BookOutcome.CROSSED == book.feed(depth_event(12, 12, 11, bids=[["101", "1"]]))
    book.feed(depth_event(30, 31, 12))
    assert book.wait_synced(WAIT)
    assert (1, 1, 31) == (book.stats()["crossed"], book.resyncs, book.last_update_id)


def test_a_malformed_event_is_counted_and_resyncs(books: list[OrderBook]) -> None:
    """An event that does not parse: counted, the book leaves sync (an update may be lost)."""
    fetcher = Fetcher(snapshot(10), snapshot(40))
    book = make(books, fetcher)
    book.feed(depth_event(9, 11, 8))
    assert book.wait_synced(WAIT)

    assert BookOutcome.DROPPED == book.feed({"e": "depthUpdate", "U": "x"})
    assert (False, 1) == (book.synced, book.stats()["malformed"])
    book.feed(depth_event(40, 41, 39))
    assert book.wait_synced(WAIT)


def test_invalidate_throws_the_book_away(books: list[OrderBook]) -> None:
    """invalidate(reason): out of sync with that reason; the next diffs resync it."""
    notices = Notices()
    fetcher = Fetcher(snapshot(10), snapshot(50))
    book = make(books, fetcher, on_notice=notices)
    book.feed(depth_event(9, 11, 8))
    assert book.wait_synced(WAIT)

    book.invalidate("reconnected")

    with pytest.raises(OrderBookOutOfSyncError, match="reconnected"):
        book.bids()
    book.feed(depth_event(50, 51, 49))
    assert book.wait_synced(WAIT)
    assert {"symbol": "BTCUSDT", "status": "out_of_sync", "reason": "reconnected"} in (
        notices.items
    )


def test_depth_sets_the_snapshot_limit_and_trims(books: list[OrderBook]) -> None:
    """depth=1 fetches limit 5 and keeps one level a side."""
    fetcher = Fetcher(snapshot(10))
    book = make(books, fetcher, depth=1)
    book.feed(depth_event(9, 11, 8))

    assert book.wait_synced(WAIT)
    assert 5 == fetcher.calls[0][1]
    assert ([(D("100"), D("1"))], [(D("101"), D("3"))]) == (book.bids(), book.asks())


def test_close_is_bounded_during_a_fetch_and_reads_then_raise(books: list[OrderBook]) -> None:
    """close() while the fetch blocks returns in time; reads raise; the thread ends later."""
    fetcher = Fetcher(snapshot(10))
    fetcher.gate.clear()
    book = make(books, fetcher)
    book.feed(depth_event(9, 11, 8))
    assert fetcher.entered.wait(WAIT)

    book.close(timeout=scaled(0.02))
    book.close(timeout=scaled(0.02))

    with pytest.raises(OrderBookOutOfSyncError, match="closed"):
        book.bids()
    assert not book.wait_synced(WAIT)
    assert BookOutcome.DROPPED == book.feed(depth_event(12, 13, 11))
    fetcher.gate.set()  # the fixture then checks that the worker is gone


def test_close_from_a_notice_callback_does_not_deadlock(books: list[OrderBook]) -> None:
    """on_notice runs on the worker; closing the book from there returns at once."""
    book: OrderBook
    closed = threading.Event()

    def on_notice(**fields: Any) -> None:
        book.close(WAIT)
        closed.set()

    fetcher = Fetcher(snapshot(10))
    book = make(books, fetcher, on_notice=on_notice)
    book.feed(depth_event(9, 11, 8))

    assert closed.wait(WAIT)
    assert book.closed


def test_wait_synced_times_out_without_events(books: list[OrderBook]) -> None:
    """No diff ever arrives: wait_synced returns False after its timeout."""
    book = make(books, Fetcher(snapshot(10)))

    assert not book.wait_synced(scaled(0.02))


def test_a_raising_notice_callback_is_logged_not_fatal(books: list[OrderBook]) -> None:
    """An exception in on_notice does not stop the book."""

    def on_notice(**fields: Any) -> None:
        raise RuntimeError("user bug")

    book = make(books, Fetcher(snapshot(10)), on_notice=on_notice)
    book.feed(depth_event(9, 11, 8))

    assert book.wait_synced(WAIT)
    assert BookOutcome.APPLIED == book.feed(depth_event(12, 12, 11))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"symbol": ""}, "symbol must be a non-empty string"),
        ({"fetch_snapshot": None}, "fetch_snapshot must be a callable"),
        ({"depth": 0}, "depth must be an int from 1 to 1000"),
        ({"retry_delay": 0}, "retry_delay must be a number > 0"),
        ({"max_retry_delay": "1"}, "max_retry_delay must be a number > 0"),
        ({"max_buffer": 0}, "max_buffer must be an int >= 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    """Each bad argument raises ValueError naming it, and no thread is started."""
    args: dict[str, Any] = {"symbol": "BTCUSDT", "fetch_snapshot": Fetcher(snapshot(1))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        OrderBook(**args)


@pytest.mark.parametrize("n", [-1, 1.5, True, "3"])
def test_a_bad_n_is_refused(books: list[OrderBook], n: Any) -> None:
    """bids(n)/asks(n): n must be None or an int >= 0."""
    book = make(books, Fetcher(snapshot(10)))

    with pytest.raises(ValueError, match="n must be None or an int >= 0"):
        book.bids(n)


def test_concurrent_reads_are_the_truth_at_their_update_id(books: list[OrderBook]) -> None:
    """A feeder with gaps, a reader and the worker at once: every read is exact for its id."""
    from tests.unit.test_orderbook_property import Exchange  # the reference exchange

    exchange = Exchange()
    lock = threading.Lock()

    def fetch(symbol: str, limit: int) -> dict[str, Any]:
        with lock:
            snap = exchange.snapshot(limit, len(exchange.events))
        return {
            "lastUpdateId": snap.last_update_id,
            "bids": [[str(p), str(q)] for p, q in snap.bids],
            "asks": [[str(p), str(q)] for p, q in snap.asks],
        }

    book = make(books, fetch, retry_delay=scaled(0.001))
    reads: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read_once() -> None:
        try:
            last, bids, asks = book.levels()
        except OrderBookOutOfSyncError:
            return
        with lock:
            truth = exchange.after.get(last)
        assert (dict(bids), dict(asks)) == truth, f"read at {last} differs from the exchange"
        reads.append(last)

    def reader() -> None:
        while not done.is_set():
            time.sleep(0.0002)  # let the feeder and the worker run
            try:
                read_once()
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(600):
            changes = [(i % 2 == 0, (i * 7) % 21, i % 5), (i % 3 == 0, (i * 5) % 20, (i + 1) % 5)]
            with lock:
                diff = exchange.generate(changes, i % 3, i % 2)
            if i % 150 != 149:  # every 150th diff is lost: a gap
                book.feed(
                    {
                        "U": diff.first_update_id,
                        "u": diff.final_update_id,
                        "pu": diff.prev_final_update_id,
                        "b": [[str(p), str(q)] for p, q in diff.bids],
                        "a": [[str(p), str(q)] for p, q in diff.asks],
                    }
                )
            if i % 150 == 100:
                assert book.wait_synced(WAIT)
            if i % 5 == 0:
                time.sleep(0.0005)  # give the reader a chance to read
    finally:
        done.set()
        thread.join(WAIT)
    assert [] == errors
    assert reads
    assert 3 <= book.gaps
