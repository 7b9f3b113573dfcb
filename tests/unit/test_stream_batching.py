"""How events of a busy stream reach the delivery lane: in bounded batches, not held after."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from bfsync._delivery import DeliveryLane
from bfsync._streams import Shard
from bfsync.market import _FLUSH_AT, MarketService, _ShardChannel

STREAM = "btcusdt@bookTicker"


def frame(u: int) -> bytes:
    payload = {"e": "bookTicker", "u": u, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}
    return json.dumps({"stream": STREAM, "data": payload}).encode()


def test_a_long_read_reaches_the_lane_every_flush_at_events() -> None:
    """One read of many frames is handed to the lane every _FLUSH_AT events, in order."""
    service = MarketService()  # never connected: the channel is driven by hand
    lane = DeliveryLane(None, queue_size=100_000, shape="pairs")
    service._lane = lane
    shard = Shard("/public", 1, 0.0, 5.0)
    shard.active.add(STREAM)
    channel = _ShardChannel(service, shard, "ws://127.0.0.1:1/public/stream")
    link: Any = SimpleNamespace(number=0)
    count = 3 * _FLUSH_AT + 10
    for u in range(1, count + 1):
        channel.on_text(link, frame(u), 0.0)
    assert 3 * _FLUSH_AT == lane.pending
    channel.flush()  # what the I/O thread does at the end of the read
    assert list(range(1, count + 1)) == [e["u"] for e in lane.events(timeout=0)]
    assert 0 == lane.dropped
