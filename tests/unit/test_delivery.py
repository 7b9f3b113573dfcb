"""DeliveryLane: batches from a producer thread to a handler thread or events(), bounded."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from bfsync._delivery import DeliveryLane
from tests.timing import scaled

WAIT = scaled(5.0)


def env(i: int, stream: str = "btcusdt@bookTicker") -> dict[str, Any]:
    return {"stream": stream, "data": {"e": "bookTicker", "u": i}}


def lane_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bfsync-deliver")]


class Recorder:
    """A handler that records events and their thread, and can be told to block."""

    def __init__(self, expect: int) -> None:
        self.events: list[Any] = []
        self.threads: set[str] = set()
        self.expect = expect
        self.done = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, event: Any) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        self.threads.add(threading.current_thread().name)
        self.events.append(event)
        if len(self.events) >= self.expect:
            self.done.set()


@pytest.fixture(autouse=True)
def _no_thread_left() -> Any:
    yield
    for thread in lane_threads():
        thread.join(WAIT)
    assert [] == lane_threads()


def test_handler_gets_every_event_in_order_on_a_delivery_thread() -> None:
    """Batches from another thread reach the handler once each, in order, never there."""
    recorder = Recorder(expect=300)
    lane = DeliveryLane(recorder)
    producer = threading.Thread(
        target=lambda: [lane.put([env(i) for i in range(b, b + 100)]) for b in (0, 100, 200)],
        name="producer",
    )
    producer.start()
    producer.join(WAIT)

    assert recorder.done.wait(WAIT)
    assert [{"e": "bookTicker", "u": i} for i in range(300)] == recorder.events
    assert 1 == len(recorder.threads)
    assert recorder.threads.pop().startswith("bfsync-deliver-")
    lane.close()
    assert {"received": 300, "delivered": 300, "dropped": 0} == {
        k: lane.stats()[k] for k in ("received", "delivered", "dropped")
    }


def test_latest_is_current_while_the_handler_is_blocked() -> None:
    """latest(stream) is updated on put, before any queue, even with the handler stuck."""
    recorder = Recorder(expect=3)
    recorder.gate.clear()
    lane = DeliveryLane(recorder)
    lane.put([env(1)])
    assert recorder.entered.wait(WAIT)
    lane.put([env(2), env(3, stream="ethusdt@bookTicker")])

    assert {"e": "bookTicker", "u": 2} == lane.latest("btcusdt@bookTicker")
    assert {"e": "bookTicker", "u": 3} == lane.latest("ethusdt@bookTicker")
    assert lane.latest("xrpusdt@bookTicker") is None
    recorder.gate.set()
    assert recorder.done.wait(WAIT)
    lane.close()


def test_a_raising_handler_is_logged_counted_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each exception is counted and logged (without the event); later events still arrive."""
    seen: list[int] = []
    done = threading.Event()

    def handler(event: Any) -> None:
        seen.append(event["u"])
        if len(seen) == 4:
            done.set()
        if event["u"] % 2:
            raise RuntimeError("user bug")

    caplog.set_level(logging.ERROR, logger="bfsync.delivery")
    lane = DeliveryLane(handler)
    lane.put([env(i) for i in range(4)])

    assert done.wait(WAIT)
    lane.close()
    assert [0, 1, 2, 3] == seen
    assert 2 == lane.handler_errors
    assert 2 == len(caplog.records)
    assert "message_handler raised" in caplog.records[0].getMessage()
    assert "bookTicker" not in caplog.text


def test_a_blocked_handler_drops_the_oldest_and_then_hears_of_it() -> None:
    """Beyond queue_size the oldest go; the handler then gets a bfsync.dropped notice first."""
    recorder = Recorder(expect=1 + 1 + 3)
    recorder.gate.clear()
    lane = DeliveryLane(recorder, queue_size=3)
    lane.put([env(0)])
    assert recorder.entered.wait(WAIT)  # event 0 is in the handler, the queue is empty
    lane.put([env(i) for i in range(1, 6)])  # 1, 2 dropped; 3, 4, 5 wait

    assert (2, 3) == (lane.dropped, lane.pending)
    recorder.gate.set()
    assert recorder.done.wait(WAIT)
    lane.close()
    notice = recorder.events[1]
    assert ("bfsync.dropped", 2, 2) == (notice["e"], notice["count"], notice["total"])
    assert isinstance(notice["E"], int)
    assert [0, 3, 4, 5] == [e["u"] for e in recorder.events if e["e"] == "bookTicker"]


def test_events_yields_in_order_then_ends_after_timeout() -> None:
    """Pull mode: events(timeout) yields what is queued, in order, then stops when idle."""
    lane = DeliveryLane()
    lane.put([env(1), env(2)])
    lane.put([env(3)])

    assert [1, 2, 3] == [e["u"] for e in lane.events(timeout=scaled(0.05))]
    assert [] == list(lane.events(timeout=0))
    lane.close()


def test_events_waits_for_events_from_another_thread() -> None:
    """events() blocks until the producer puts a batch, then yields it."""
    lane = DeliveryLane()
    timer = threading.Timer(scaled(0.05), lambda: lane.put([env(7)]))
    timer.start()

    got = next(iter(lane.events(timeout=WAIT)))

    timer.join(WAIT)
    lane.close()
    assert {"e": "bookTicker", "u": 7} == got


def test_pull_mode_overflow_drops_oldest_and_reports_it_in_line() -> None:
    """queue_size=3 and five events: a dropped notice, then the three newest."""
    lane = DeliveryLane(queue_size=3)
    lane.put([env(i) for i in range(5)])

    got = list(lane.events(timeout=0))

    lane.close()
    assert ("bfsync.dropped", 2, 2) == (got[0]["e"], got[0]["count"], got[0]["total"])
    assert [2, 3, 4] == [e["u"] for e in got[1:]]
    assert 2 == lane.dropped


def test_close_ends_a_waiting_events_iterator() -> None:
    """close() from another thread ends events() that waits with no timeout."""
    lane = DeliveryLane()
    got: list[Any] = []
    ended = threading.Event()

    def consume() -> None:
        got.extend(lane.events())
        ended.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    lane.put([env(1)])
    threading.Timer(scaled(0.05), lane.close).start()

    assert ended.wait(WAIT)
    consumer.join(WAIT)
    assert [1] == [e["u"] for e in got]
    assert [] == list(lane.events(timeout=WAIT))


def test_close_from_inside_the_handler_stops_delivery() -> None:
    """The handler may close its own lane: no deadlock, nothing more delivered, no thread."""
    seen: list[int] = []
    lane: DeliveryLane

    def handler(event: Any) -> None:
        seen.append(event["u"])
        lane.close()
        lane.close()

    lane = DeliveryLane(handler)
    lane.put([env(1), env(2), env(3)])
    for thread in lane_threads():
        thread.join(WAIT)

    assert [1] == seen
    assert lane.closed


def test_close_is_bounded_while_the_handler_blocks() -> None:
    """close() waits at most its timeout for a stuck handler; the thread ends after it."""
    recorder = Recorder(expect=1)
    recorder.gate.clear()
    lane = DeliveryLane(recorder)
    lane.put([env(1), env(2)])
    assert recorder.entered.wait(WAIT)

    lane.close(timeout=scaled(0.05))

    assert 1 == len(lane_threads())
    recorder.gate.set()
    for thread in lane_threads():
        thread.join(WAIT)
    assert [1] == [e["u"] for e in recorder.events]


def test_put_and_signal_after_close_are_ignored() -> None:
    """A closed lane takes nothing and yields nothing."""
    lane = DeliveryLane()
    lane.close()
    lane.put([env(1)])
    lane.signal("gap", stream="btcusdt@depth")

    assert (0, None) == (lane.pending, lane.latest("btcusdt@bookTicker"))
    assert [] == list(lane.events(timeout=0))


def test_signals_are_delivered_in_order_with_events() -> None:
    """signal() queues {"e": "bfsync.<kind>", "E", ...} between the events around it."""
    lane = DeliveryLane()
    lane.put([env(1)])
    notice = lane.signal("gap", stream="btcusdt@depth", reason="reconnected")
    lane.put([env(2)])

    got = list(lane.events(timeout=0))

    lane.close()
    assert ["bookTicker", "bfsync.gap", "bookTicker"] == [e["e"] for e in got]
    assert notice is got[1]
    assert ("btcusdt@depth", "reconnected") == (notice["stream"], notice["reason"])


def test_combined_mode_delivers_envelopes_and_wraps_signals() -> None:
    """combined=True: consumers get {"stream", "data"}; a signal comes wrapped the same way."""
    lane = DeliveryLane(combined=True)
    lane.put([env(1)])
    lane.signal("state", state="RECONNECTING")

    got = list(lane.events(timeout=0))

    lane.close()
    assert env(1) == got[0]
    assert "bfsync.state" == got[1]["stream"]
    assert ("bfsync.state", "RECONNECTING") == (got[1]["data"]["e"], got[1]["data"]["state"])
    assert {"e": "bookTicker", "u": 1} == lane.latest("btcusdt@bookTicker")


def test_malformed_items_are_counted_and_skipped() -> None:
    """A batch with bad items: the good ones are delivered, put() does not raise."""
    lane = DeliveryLane()
    lane.put([env(1), {"result": None, "id": 3}, "text", None, env(2)])

    got = [e["u"] for e in lane.events(timeout=0)]

    lane.close()
    assert ([1, 2], 3) == (got, lane.stats()["malformed"])


def test_plain_payloads_are_keyed_by_event_type() -> None:
    """envelopes=False (user stream): latest() is keyed by the "e" field."""
    lane = DeliveryLane(shape="payloads")
    lane.put([{"e": "ORDER_TRADE_UPDATE", "E": 1}, {"e": "ACCOUNT_UPDATE", "E": 2}])

    assert {"e": "ACCOUNT_UPDATE", "E": 2} == lane.latest("ACCOUNT_UPDATE")
    assert [1, 2] == [e["E"] for e in lane.events(timeout=0)]
    lane.close()


def test_pairs_are_keyed_by_stream_and_delivered_as_payloads_or_envelopes() -> None:
    """shape="pairs": (stream, payload) tuples; combined switches the delivered form."""
    lane = DeliveryLane(shape="pairs")
    lane.put([("btcusdt@aggTrade", {"a": 1}), ("ethusdt@aggTrade", {"a": 2}), ("bad",)])
    lane.combined = True
    lane.put([("btcusdt@aggTrade", {"a": 3})])

    got = list(lane.events(timeout=0))

    lane.close()
    assert [{"a": 1}, {"a": 2}, {"stream": "btcusdt@aggTrade", "data": {"a": 3}}] == got
    assert ({"a": 3}, 1) == (lane.latest("btcusdt@aggTrade"), lane.stats()["malformed"])


def test_an_unknown_shape_is_refused() -> None:
    """shape must be envelopes, pairs or payloads."""
    with pytest.raises(ValueError, match="shape must be one of envelopes, pairs, payloads"):
        DeliveryLane(shape="frames")


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "10"])
def test_bad_queue_size_is_refused(size: Any) -> None:
    """queue_size must be an int >= 1."""
    with pytest.raises(ValueError, match="queue_size must be an int >= 1"):
        DeliveryLane(queue_size=size)


def test_bad_handler_and_misuse_are_refused() -> None:
    """A non-callable handler, events() with a handler, a negative timeout: clear errors."""
    with pytest.raises(ValueError, match="message_handler must be callable"):
        DeliveryLane("print")  # type: ignore[arg-type]
    lane = DeliveryLane(lambda event: None)
    with pytest.raises(RuntimeError, match="without a message_handler"):
        lane.events()
    lane.close()
    with pytest.raises(ValueError, match="timeout must be None or a number >= 0"):
        DeliveryLane().events(timeout=-1)
