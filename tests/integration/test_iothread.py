"""
One I/O thread serving several channels (``bfsync._iothread``), against FakeExchange's ws-fapi
socket: the contract a stream session codes against.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Optional

import pytest

from bfsync._iothread import ChannelBase, IOThread, LinkView, Outgoing
from bfsync._policy import LinkPolicy
from bfsync.testing import FakeExchange
from tests.timing import scaled

POLICY = LinkPolicy(connection_timeout=5, reconnect_delay=0.05, max_reconnect_delay=0.2)


class Probe(ChannelBase):
    """A channel that sends ``ticker.price`` requests queued by the test and records events."""

    def __init__(self, fx: FakeExchange, name: str, fail_on_text: bool = False) -> None:
        self.name = name
        self._url = fx.url
        self.queued: deque[str] = deque()
        self.replies: list[dict[str, Any]] = []
        self.opens: list[tuple[int, bool]] = []
        self.urls_asked = 0
        self.lost: list[int] = []
        self.retire_asked: list[int] = []
        self.closed: Optional[BaseException] = None
        self.closed_event = threading.Event()
        self.fail_on_text = fail_on_text
        self._ids = iter(range(1, 10**6))

    def url(self) -> str:
        self.urls_asked += 1
        return self._url

    def on_open(self, link: LinkView, now: float, rotation: bool) -> None:
        self.opens.append((link.number, rotation))

    def on_text(self, link: LinkView, data: bytes, now: float) -> None:
        if self.fail_on_text:
            raise ValueError("a bug in on_text")
        self.replies.append(json.loads(data))

    def outgoing(self, link: LinkView, now: float) -> Outgoing:
        texts = []
        while self.queued:
            symbol = self.queued.popleft()
            request = {
                "id": next(self._ids),
                "method": "ticker.price",
                "params": {"symbol": symbol},
            }
            texts.append(json.dumps(request))
        return texts

    def on_link_lost(self, link: LinkView, cause: BaseException, now: float) -> None:
        self.lost.append(link.number)

    def can_retire(self, old: LinkView, now: float) -> bool:
        self.retire_asked.append(old.number)
        return True

    def on_closed(self, cause: Optional[BaseException]) -> None:
        self.closed = cause
        self.closed_event.set()


def wait(condition: Any, seconds: float = 5.0) -> None:
    """Poll ``condition`` until true, at most ``seconds`` (scaled)."""
    end = time.monotonic() + scaled(seconds)
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def io() -> Any:
    thread = IOThread("bfsync-io")
    yield thread
    thread.close()
    assert not thread.alive


def ask(io: IOThread, probe: Probe, symbol: str = "BTCUSDT") -> None:
    """Queue one request on ``probe`` and wake the loop."""
    count = len(probe.replies)
    probe.queued.append(symbol)
    io.wake()
    wait(lambda: len(probe.replies) > count)


def test_one_thread_serves_several_channels(fx: FakeExchange, io: IOThread) -> None:
    """Two channels on one thread each get their own link and their own replies."""
    a, b = Probe(fx, "a"), Probe(fx, "b")
    io.add(a, POLICY)
    io.add(b, POLICY)
    wait(lambda: a.opens and b.opens)

    ask(io, a)
    ask(io, b, "ETHUSDT")

    assert "BTCUSDT" == a.replies[-1]["result"]["symbol"]
    assert "ETHUSDT" == b.replies[-1]["result"]["symbol"]
    assert a.opens[0][0] != b.opens[0][0]
    assert 2 == fx.connection_count
    assert 1 == len([t for t in threading.enumerate() if t.name.startswith("bfsync-io")])


def test_a_channel_removed_while_running_is_closed_alone(fx: FakeExchange, io: IOThread) -> None:
    """remove() closes one channel (on_closed(None)); the other goes on."""
    a, b = Probe(fx, "a"), Probe(fx, "b")
    io.add(a, POLICY)
    io.add(b, POLICY)
    wait(lambda: a.opens and b.opens)

    io.remove(a)

    assert a.closed_event.wait(scaled(5))
    assert a.closed is None
    ask(io, b)
    wait(lambda: fx.connection_count == 1)


def test_a_bug_in_a_channel_fails_it_loudly_and_spares_the_others(
    fx: FakeExchange, io: IOThread
) -> None:
    """A ValueError raised by a channel closes that channel with it; no silent reconnect."""
    bad, good = Probe(fx, "bad", fail_on_text=True), Probe(fx, "good")
    io.add(bad, POLICY)
    io.add(good, POLICY)
    wait(lambda: bad.opens and good.opens)

    bad.queued.append("BTCUSDT")
    io.wake()

    assert bad.closed_event.wait(scaled(5))
    assert isinstance(bad.closed, ValueError)
    assert 1 == bad.urls_asked  # never reconnected
    ask(io, good)


def test_url_is_asked_before_each_handshake(fx: FakeExchange, io: IOThread) -> None:
    """A lost link is reported, then a new handshake asks url() again."""
    probe = Probe(fx, "p")
    io.add(probe, POLICY)
    wait(lambda: probe.opens)

    fx.drop_connections()

    wait(lambda: len(probe.opens) == 2)
    assert [probe.opens[0][0]] == probe.lost
    assert 2 == probe.urls_asked
    assert [False, False] == [rotation for _, rotation in probe.opens]
    ask(io, probe)


def test_rotate_replaces_the_link_and_retires_the_old_one(fx: FakeExchange, io: IOThread) -> None:
    """rotate(): the new link opens with rotation=True; the old one retires when it owes nothing."""
    probe = Probe(fx, "p")
    io.add(probe, POLICY)
    wait(lambda: probe.opens)
    old = probe.opens[0][0]

    io.rotate(probe)

    wait(lambda: len(probe.opens) == 2 and fx.connection_count == 1)
    assert (True, [old], []) == (probe.opens[1][1], probe.retire_asked[:1], probe.lost)
    ask(io, probe)


def test_a_failed_first_handshake_closes_the_channel() -> None:
    """With retry_first=False, a refused first handshake ends the channel with its cause."""
    thread = IOThread("bfsync-io")
    with FakeExchange() as fx:
        fx.refuse_handshakes()
        probe = Probe(fx, "p")
        thread.add(probe, POLICY)
        assert probe.closed_event.wait(scaled(5))
        assert probe.closed is not None
    thread.close()
