"""How events of a busy stream reach the delivery lane: in bounded batches, not held after."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import threading
import time
import weakref
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from bfsync import market
from bfsync._delivery import DeliveryLane
from bfsync._streams import Shard
from bfsync.market import _FLUSH_AT, MarketService, _ShardChannel
from tests.timing import scaled

STREAM = "btcusdt@bookTicker"


def frame(u: int) -> bytes:
    payload = {"e": "bookTicker", "u": u, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}
    return json.dumps({"stream": STREAM, "data": payload}).encode()


def decoders() -> list[Callable[[bytes], Any]]:
    """json.loads, and orjson.loads where the optional orjson is installed."""
    found: list[Callable[[bytes], Any]] = [json.loads]
    with contextlib.suppress(ImportError):
        found.append(importlib.import_module("orjson").loads)
    return found


def test_the_stream_decoder_is_orjson_when_installed_else_json() -> None:
    """bfsync decodes stream events with orjson when it can be imported, else with json."""
    assert decoders()[-1] is market._loads


@pytest.fixture(params=decoders(), ids=lambda f: f.__module__)
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(market, "_loads", request.param)
    return request.param


def test_a_long_read_reaches_the_lane_every_flush_at_events(decoder: Any) -> None:
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


def test_bad_messages_are_ignored_whichever_the_decoder(decoder: Any) -> None:
    """Not JSON, not an object, invalid UTF-8: ignored; the next event still arrives."""
    service = MarketService()
    lane = DeliveryLane(None, queue_size=100, shape="pairs")
    service._lane = lane
    shard = Shard("/public", 1, 0.0, 5.0)
    shard.active.add(STREAM)
    channel = _ShardChannel(service, shard, "ws://127.0.0.1:1/public/stream")
    link: Any = SimpleNamespace(number=0)
    for bad in (b"{not json", b"[1, 2]", b'{"stream": "\xff\xfe"}', b"\xff\xfe", b""):
        channel.on_text(link, bad, 0.0)
    channel.on_text(link, frame(7), 0.0)
    channel.flush()
    assert [7] == [e["u"] for e in lane.events(timeout=0)]


class Event(dict):  # type: ignore[type-arg]
    """A payload that can be weakly referenced."""


def test_the_delivery_thread_keeps_no_handled_batch_alive() -> None:
    """Once a batch is handled, the waiting delivery thread holds none of its events."""
    handled = threading.Event()

    def handler(event: Any) -> None:
        if event["n"] == 2:
            handled.set()

    lane = DeliveryLane(handler, shape="payloads")
    try:
        events = [Event(e="x", n=n) for n in range(3)]
        first = weakref.ref(events[0])
        lane.put(events)
        del events
        assert handled.wait(scaled(5))
        end = time.monotonic() + scaled(2)
        while first() is not None and time.monotonic() < end:
            gc.collect()
            time.sleep(0.01)
        assert None is first()
    finally:
        lane.close()
