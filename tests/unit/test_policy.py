"""The I/O thread's decisions about time, tested by plain calls (``_policy.py``)."""

from __future__ import annotations

import math

import pytest

from bfsync._policy import LinkPolicy, Liveness, Verdict, backoff, rotation_due
from bfsync.config import Config


def middle(low: float, high: float) -> float:
    """A jitter source that always draws the middle of its range."""
    return (low + high) / 2


def test_backoff_doubles_up_to_the_maximum() -> None:
    """The waits after attempts 1, 2, 3, ... double from reconnect_delay to the maximum."""
    policy = LinkPolicy(reconnect_delay=1.0, max_reconnect_delay=5.0)
    assert [1.0, 2.0, 4.0, 5.0, 5.0] == [backoff(policy, n, middle) for n in range(1, 6)]


def test_backoff_jitter_stays_within_twenty_percent() -> None:
    """The jitter is drawn from ±20 % of the base wait."""
    policy = LinkPolicy(reconnect_delay=10.0, max_reconnect_delay=10.0)
    assert (8.0, 12.0) == (
        backoff(policy, 1, lambda low, high: low),
        backoff(policy, 1, lambda low, high: high),
    )


def test_liveness_pings_after_silence_then_declares_death() -> None:
    """Silence for ping_interval asks for a ping; no answer within pong_timeout is death."""
    live = Liveness(ping_interval=10.0, pong_timeout=3.0, now=100.0)
    assert None is live.action(109.9)
    assert 110.0 == live.next_deadline()
    assert Verdict.PING is live.action(110.0)
    assert None is live.action(112.9)
    assert 113.0 == live.next_deadline()
    assert Verdict.DEAD is live.action(113.0)


def test_liveness_anything_received_counts_as_an_answer() -> None:
    """A frame after our ping clears it and restarts the silence clock."""
    live = Liveness(ping_interval=10.0, pong_timeout=3.0, now=0.0)
    assert Verdict.PING is live.action(10.0)
    live.received(11.0)
    assert None is live.action(13.5)
    assert 21.0 == live.next_deadline()


def test_pong_timeout_never_exceeds_ping_interval() -> None:
    """With a ping interval shorter than the pong timeout, the interval bounds the wait."""
    live = Liveness(ping_interval=1.0, pong_timeout=10.0, now=0.0)
    assert Verdict.PING is live.action(1.0)
    assert Verdict.DEAD is live.action(2.0)


def test_rotation_due_at_max_age() -> None:
    """A link is replaced once it is max_age old, never before."""
    policy = LinkPolicy(max_age=60.0)
    assert (False, True) == (rotation_due(policy, 0.0, 59.9), rotation_due(policy, 0.0, 60.0))
    assert False is rotation_due(LinkPolicy(), 0.0, 1e12)


def test_policy_from_config() -> None:
    """A service's settings map onto the link policy."""
    config = Config.from_dict(
        {"ping_interval": 5, "max_connection_age": 100, "request_timeout": 2, "reconnect_delay": 1}
    )
    policy = LinkPolicy.from_config(config)
    assert (5.0, 5.0, 100.0, 1.0, 2.0, 3.0) == (
        policy.ping_interval,
        policy.pong_timeout,
        policy.max_age,
        policy.reconnect_delay,
        policy.write_stall,
        policy.drain_timeout,
    )
    assert math.inf == LinkPolicy().max_age


def test_policy_is_frozen() -> None:
    """A policy cannot be changed under a running I/O thread."""
    with pytest.raises(AttributeError):
        LinkPolicy().ping_interval = 1.0  # type: ignore[misc]
