"""The pure parts of bfsync.excel's live cells: leases, arrivals, argument checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest

import bfsync.excel as bx
from bfsync.excel._live import Leases, LiveStreams
from tests.timing import scaled

A, B = "btcusdt@markPrice@1s", "btcusdt@bookTicker"


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def streams(clock: Clock) -> LiveStreams:
    """LiveStreams with no service (its worker would find none) and a settable clock."""

    def current() -> Optional[tuple[Any, int]]:
        return None

    return LiveStreams("test", current, lambda: (300.0, 5.0), clock)


class TestLeases:
    """Which streams to subscribe and unsubscribe, as plain function calls."""

    def test_the_first_ask_needs_a_subscription_later_ones_do_not(self) -> None:
        """ask() is true until the stream is held on that generation."""
        leases = Leases()

        assert leases.ask(A, 0.0, 1) is True
        assert [A] == leases.to_subscribe(0.0, 1, retry_after=5)
        leases.subscribed([A], 1)

        assert leases.ask(A, 1.0, 1) is False
        assert [] == leases.to_subscribe(1.0, 1, retry_after=5)

    def test_a_new_generation_needs_every_stream_again(self) -> None:
        """Held on generation 1 is not held on generation 2 (a new connection)."""
        leases = Leases()
        leases.ask(A, 0.0, 1)
        leases.ask(B, 0.0, 1)
        leases.subscribed([A, B], 1)

        assert leases.ask(A, 1.0, 2) is True
        assert [B, A] == leases.to_subscribe(1.0, 2, retry_after=5)

    def test_a_lease_runs_out_after_unsubscribe_after(self) -> None:
        """A held stream not asked for unsubscribe_after seconds is idle; asked, it is not."""
        leases = Leases()
        leases.ask(A, 0.0, 1)
        leases.ask(B, 0.0, 1)
        leases.subscribed([A, B], 1)
        leases.ask(A, 8.0, 1)

        assert 10.0 == leases.next_idle(10.0)
        assert [] == leases.idle(9.9, 10.0)
        assert [B] == leases.idle(10.0, 10.0)
        leases.release([B])
        assert 18.0 == leases.next_idle(10.0)
        assert {A: 1} == leases.held

    def test_nothing_held_is_never_idle(self) -> None:
        """A stream asked for but not held has no lease to run out."""
        leases = Leases()
        leases.ask(A, 0.0, 1)

        assert float("inf") == leases.next_idle(10.0)
        assert [] == leases.idle(1000.0, 10.0)

    def test_a_refused_stream_is_tried_again_after_retry_after(self) -> None:
        """A refusal is remembered; the stream is asked again retry_after seconds later."""
        leases = Leases()
        leases.ask(A, 0.0, 1)
        leases.failed([A], "code 2", 0.0)

        assert [] == leases.to_subscribe(4.9, 1, retry_after=5)
        assert [A] == leases.to_subscribe(5.0, 1, retry_after=5)
        leases.subscribed([A], 1)
        assert {} == leases.refused

    def test_reset_keeps_the_leases(self) -> None:
        """A new connection holds nothing, but what cells asked for is still wanted."""
        leases = Leases()
        leases.ask(A, 0.0, 1)
        leases.subscribed([A], 1)
        leases.failed([B], "x", 0.0)

        leases.reset()

        assert ({}, {}, {A: 0.0}) == (leases.held, leases.refused, leases.asked)


class TestArrivals:
    """The service's handler records arrivals; a gap forgets them."""

    def test_an_event_starts_its_age(self) -> None:
        """An envelope of a stream records its arrival; its age grows with the clock."""
        clock = Clock()
        live = streams(clock)

        assert live.age(A) is None
        live.on_event({"stream": A, "data": {"p": "1"}})
        clock.now += 2.5

        assert 2.5 == live.age(A)
        assert live.age(B) is None

    def test_a_gap_forgets_the_arrival_of_the_streams_it_names(self) -> None:
        """After a gap notice the stream has no current value until its next event."""
        clock = Clock()
        live = streams(clock)
        live.on_event({"stream": A, "data": {}})
        live.on_event({"stream": B, "data": {}})

        live.on_event({"stream": "bfsync.gap", "data": {"e": "bfsync.gap", "streams": [A]}})

        assert (None, True) == (live.age(A), live.gapped(A))
        assert (0.0, False) == (live.age(B), live.gapped(B))
        live.on_event({"stream": A, "data": {}})
        assert (0.0, False) == (live.age(A), live.gapped(A))

    @pytest.mark.parametrize(
        "event",
        [
            None,
            "text",
            {"e": "markPriceUpdate"},  # a payload, not an envelope
            {"stream": 5, "data": {}},
            {"stream": "bfsync.stale", "data": {"streams": [A]}},
            {"stream": "bfsync.gap", "data": "not a dict"},
            {"stream": "bfsync.gap", "data": {"streams": [7, None]}},
        ],
    )
    def test_other_items_are_ignored(self, event: Any) -> None:
        """Notices other than gaps and malformed items change nothing and never raise."""
        live = streams(Clock())

        live.on_event(event)

        assert (None, False) == (live.age(A), live.gapped(A))

    def test_reset_forgets_every_value(self) -> None:
        """A service connected anew: no value is current."""
        live = streams(Clock())
        live.on_event({"stream": A, "data": {}})

        live.reset()

        assert live.age(A) is None


@pytest.fixture
def options() -> Iterator[None]:
    """Errors as values; options restored after."""
    saved = bx.get_options()
    bx.set_options(errors="value")
    yield
    bx.set_options(**saved)


@pytest.mark.usefixtures("options")
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bx.live_price(None), "#BF! invalid: symbol must be text, got None"),
        (lambda: bx.live_price("BTC USDT"), "#BF! invalid: "),
        (lambda: bx.live_price("BTCUSDT", "yes"), "#BF! invalid: with_age must be TRUE or FALSE"),
        (lambda: bx.live_price("BTCUSDT", max_age=0), "#BF! invalid: max_age must be a number"),
        (lambda: bx.live_price("BTCUSDT", max_age=True), "#BF! invalid: max_age must be"),
        (lambda: bx.live_book("BTCUSDT", "mid"), "#BF! invalid: field must be one of"),
        (lambda: bx.live_book("BTCUSDT", name=3), "#BF! invalid: name must be the text name"),
    ],
)
def test_bad_arguments_are_refused_before_any_connection(call: Any, message: str) -> None:
    """A bad argument is a clear value, and no market service is made for it."""
    assert call().startswith(message)
    assert "default" not in bx._shared.registry().markets or (
        bx._shared.registry().markets["default"].service is None
    )


@pytest.mark.usefixtures("options")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_age": 0}, "max_age must be a number of seconds > 0"),
        ({"unsubscribe_after": -1}, "unsubscribe_after must be a number of seconds > 0"),
        ({"unsubscribe_after": float("nan")}, "unsubscribe_after must be"),
    ],
)
def test_set_options_refuses_bad_live_options(kwargs: dict[str, Any], message: str) -> None:
    """The live options are checked like the others."""
    with pytest.raises(ValueError, match=message):
        bx.set_options(**kwargs)


def test_the_worker_does_not_spin_while_the_service_is_down() -> None:
    """A lease that ran out while no service is usable: the worker looks again after a pause."""
    looks = []

    def current() -> Optional[tuple[Any, int]]:
        looks.append(1)
        return None

    live = LiveStreams("spin", current, lambda: (0.01, 5.0))
    live.ask(A, 1)  # starts the worker, which finds no service
    with live._cond:
        live._leases.subscribed([A], 1)  # as if held before the outage: its lease runs out
    time.sleep(scaled(0.5))
    live.stop()
    live.join()

    assert 1 <= len(looks) <= 3
    assert not any(t.name == "bfsync-excel-live-spin" for t in threading.enumerate())
