"""DeliveryLane in pull mode under random batches, signals, reads and queue sizes."""

from __future__ import annotations

from itertools import islice
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bfsync._delivery import DeliveryLane

STREAMS = ["btcusdt@bookTicker", "ethusdt@aggTrade", "xrpusdt@depth"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.lists(st.integers(0, 2), max_size=12)),
        st.tuples(st.just("signal"), st.none()),
        st.tuples(st.just("take"), st.integers(0, 8)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(operations=operations, queue_size=st.integers(1, 10), combined=st.booleans())
def test_order_counts_and_latest_hold(
    operations: list[Any], queue_size: int, combined: bool
) -> None:
    """Arrival order is kept, every loss is counted and announced, latest is the newest."""
    lane = DeliveryLane(queue_size=queue_size, combined=combined)
    produced: list[tuple[str, int]] = []  # (kind, id) in arrival order
    last: dict[str, dict[str, int]] = {}
    got: list[Any] = []
    next_id = 0
    for op, arg in operations:
        if op == "put":
            batch = []
            for stream_index in arg:
                stream = STREAMS[stream_index]
                batch.append({"stream": stream, "data": {"e": "x", "id": next_id}})
                last[stream] = {"e": "x", "id": next_id}
                produced.append(("event", next_id))
                next_id += 1
            lane.put(batch)
        elif op == "signal":
            lane.signal("gap", id=next_id)
            produced.append(("signal", next_id))
            next_id += 1
        else:
            got.extend(islice(lane.events(timeout=0), arg))
    got.extend(lane.events(timeout=0))
    lane.close()

    payloads = [item["data"] if combined else item for item in got]
    notices = [p for p in payloads if p["e"] == "bfsync.dropped"]
    delivered = [
        ("signal" if p["e"] == "bfsync.gap" else "event", p["id"])
        for p in payloads
        if p["e"] != "bfsync.dropped"
    ]
    # In order, nothing invented; what is missing was dropped, and said so.
    assert sorted(delivered, key=lambda item: item[1]) == delivered
    assert set(delivered) <= set(produced)
    assert len(produced) - len(delivered) == lane.dropped
    assert lane.dropped == sum(n["count"] for n in notices)
    assert [n["total"] for n in notices] == sorted(n["total"] for n in notices)
    assert all(lane.latest(stream) == payload for stream, payload in last.items())
    if combined:
        assert all(set(item) == {"stream", "data"} for item in got)
