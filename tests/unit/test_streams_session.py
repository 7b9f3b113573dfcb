"""The pure market session: pacing, subscription bookkeeping, sharding, handover, silence."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bfsync._streamnames import MARKET, PUBLIC, route
from bfsync._streams import (
    MAX_PARAMS,
    MAX_STREAMS,
    Control,
    Handover,
    Pacer,
    Shard,
    Silence,
    event_key,
    plan,
    reply_error,
)


class Waiter:
    """Records what a control's waiter is called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, reply: Any, error: Any) -> None:
        self.calls.append((reply, error))


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200))
@settings(max_examples=50, deadline=None)
def test_pacer_never_passes_ten_messages_in_any_second(gaps: list[float]) -> None:
    """Whatever the attempts, at most 8 messages pass in any one-second window."""
    now = 0.0
    pacer = Pacer(now)
    sent: list[float] = []
    for gap in gaps:
        now += gap
        while pacer.take(now):
            sent.append(now)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u < t + 1.0) <= 8


def test_pacer_ready_at_says_when_the_next_token_comes() -> None:
    """After the burst is spent, the next token comes 1/rate later."""
    pacer = Pacer(10.0)
    taken = 0
    while pacer.take(10.0):
        taken += 1
    assert 4 == taken
    assert 10.25 == pacer.ready_at(10.0)
    assert pacer.take(10.25)


def make_shard(now: float = 0.0) -> Shard:
    shard = Shard(PUBLIC, 1, now, request_timeout=5.0)
    shard.opened(link=7, now=now)
    return shard


def test_subscribe_calls_are_coalesced_into_one_message_and_all_acked() -> None:
    """Adjacent SUBSCRIBEs go as one message; every caller gets the ack."""
    shard = make_shard()
    waiters = [Waiter() for _ in range(3)]
    for i, w in enumerate(waiters):
        shard.submit(Control("SUBSCRIBE", [f"s{i}@bookTicker"], 5.0, [w]))
    sent = shard.take(0.0)
    assert 1 == len(sent)
    assert ["s0@bookTicker", "s1@bookTicker", "s2@bookTicker"] == sent[0].params
    assert {"method": "SUBSCRIBE", "params": sent[0].params, "id": sent[0].id} == sent[0].frame()
    assert shard.acked({"result": None, "id": sent[0].id})
    assert [[({"result": None, "id": sent[0].id}, None)]] * 3 == [w.calls for w in waiters]
    assert {"s0@bookTicker", "s1@bookTicker", "s2@bookTicker"} == shard.active
    assert set() == shard.subscribing


def test_coalescing_stops_at_max_params_and_pacing_holds_the_rest() -> None:
    """More than MAX_PARAMS streams take several messages, paced by the bucket."""
    shard = make_shard()
    for i in range(MAX_PARAMS * 6):
        shard.submit(Control("SUBSCRIBE", [f"s{i}@aggTrade"], 50.0, [Waiter()]))
    first = shard.take(0.0)
    assert 4 == len(first)
    assert all(MAX_PARAMS == len(c.params) for c in first)
    assert [] == shard.take(0.0)
    assert 0.25 == shard.next_deadline(0.0)
    assert 1 == len(shard.take(0.25))


def test_an_error_reply_fails_the_waiters_with_binances_code() -> None:
    """A refused SUBSCRIBE settles with the code and forgets its streams."""
    shard = make_shard()
    waiter = Waiter()
    shard.submit(Control("SUBSCRIBE", ["x@aggTrade"], 5.0, [waiter]))
    (control,) = shard.take(0.0)
    reply = {"error": {"code": 2, "msg": "Invalid request: bad"}, "id": control.id}
    assert shard.acked(reply)
    assert [(reply, ("error", "SUBSCRIBE: Invalid request: bad", 2))] == waiter.calls
    assert set() == shard.active | shard.subscribing


def test_reply_error_reads_both_error_shapes() -> None:
    """Both the nested and the flat error shape give (code, msg); a result is no error."""
    assert (0, "Unknown property") == reply_error({"error": {"code": 0, "msg": "Unknown property"}})
    assert (3, "Invalid JSON") == reply_error({"code": 3, "msg": "Invalid JSON"})
    assert None is reply_error({"result": None, "id": 1})


def test_unknown_ids_are_not_ours() -> None:
    """A reply with an id nobody waits for (or a non-int id) is reported as not ours."""
    shard = make_shard()
    assert not shard.acked({"result": None, "id": 99})
    assert not shard.acked({"result": None, "id": True})


def test_a_lost_link_fails_what_was_in_flight_and_resubscribes_what_was_held() -> None:
    """In-flight controls fail at once; the next link replays every active stream first."""
    shard = make_shard()
    shard.submit(Control("SUBSCRIBE", ["a@aggTrade"], 5.0, [Waiter()]))
    (first,) = shard.take(0.0)
    shard.acked({"result": None, "id": first.id})
    waiter = Waiter()
    shard.submit(Control("SUBSCRIBE", ["b@aggTrade"], 5.0, [waiter]))
    shard.take(0.0)
    queued = Waiter()
    shard.submit(Control("UNSUBSCRIBE", ["a@aggTrade"], 5.0, [queued]))
    shard.lost(7)
    assert "lost" == waiter.calls[0][1][0]
    assert {"a@aggTrade"} == shard.active
    assert not shard.owes(7)
    shard.opened(link=8, now=1.0)
    assert not shard.resubscribed()
    sent = shard.take(1.0)
    assert ["SUBSCRIBE", "UNSUBSCRIBE"] == [c.method for c in sent]
    assert ["a@aggTrade"] == sent[0].params
    assert [8, 8] == [c.link for c in sent]
    shard.acked({"result": None, "id": sent[0].id})
    assert shard.resubscribed()
    assert [] == queued.calls


def test_nothing_is_sent_without_a_link() -> None:
    """Controls wait in the queue while there is no link, then time out."""
    shard = Shard(MARKET, 1, 0.0, request_timeout=5.0)
    waiter = Waiter()
    shard.submit(Control("SUBSCRIBE", ["a@aggTrade"], 5.0, [waiter]))
    assert [] == shard.take(1.0)
    assert 5.0 == shard.next_deadline(1.0)
    shard.expire(5.0)
    assert "timeout" == waiter.calls[0][1][0]
    assert 0 == shard.load


def test_an_unanswered_control_times_out() -> None:
    """A sent control with no ack by its deadline fails with a timeout."""
    shard = make_shard()
    waiter = Waiter()
    shard.submit(Control("LIST_SUBSCRIPTIONS", [], 5.0, [waiter]))
    (control,) = shard.take(0.0)
    assert {"method": "LIST_SUBSCRIPTIONS", "id": control.id} == control.frame()
    shard.expire(4.9)
    assert [] == waiter.calls
    shard.expire(5.0)
    assert "timeout" == waiter.calls[0][1][0]


def test_set_property_combined_is_replayed_on_a_new_link() -> None:
    """A combined setting the server acked is set again on the next link."""
    shard = make_shard()
    shard.submit(Control("SET_PROPERTY", ["combined", True], 5.0, [Waiter()]))
    (control,) = shard.take(0.0)
    shard.acked({"result": None, "id": control.id})
    shard.lost(7)
    shard.opened(link=9, now=1.0)
    assert [("SET_PROPERTY", ["combined", True])] == [(c.method, c.params) for c in shard.take(1)]


def test_close_fails_everything() -> None:
    """close() settles queued and in-flight controls."""
    shard = make_shard()
    a, b = Waiter(), Waiter()
    shard.submit(Control("SUBSCRIBE", ["a@aggTrade"], 5.0, [a]))
    shard.take(0.0)
    shard.submit(Control("GET_PROPERTY", ["combined"], 5.0, [b]))
    shard.close("closed")
    assert ["closed", "closed"] == [a.calls[0][1][0], b.calls[0][1][0]]


def test_plan_routes_and_shards_beyond_1024() -> None:
    """Streams go to their route's shards, at most MAX_STREAMS each, new shards beyond."""
    existing = Shard(PUBLIC, 1, 0.0, 5.0)
    existing.active = {f"p{i}@bookTicker" for i in range(MAX_STREAMS - 2)}
    streams = [f"n{i}@bookTicker" for i in range(5)] + ["btcusdt@aggTrade", "p0@bookTicker"]
    out, new = plan([existing], route, streams)
    assert {PUBLIC: 1, MARKET: 1} == new
    assert ["n0@bookTicker", "n1@bookTicker"] == out[1]
    assert ["n2@bookTicker", "n3@bookTicker", "n4@bookTicker"] == out[2]
    assert ["btcusdt@aggTrade"] == out[3]


def test_plan_of_3000_streams_needs_three_shards() -> None:
    """3000 streams of one route fill shards of 1024."""
    out, new = plan([], route, [f"s{i}@aggTrade" for i in range(3000)])
    assert {MARKET: 3} == new
    assert [1024, 1024, 952] == [len(out[n]) for n in sorted(out)]


def test_event_keys() -> None:
    """u for bookTicker/depth, a for aggTrade, E otherwise, per symbol; arrays by E."""
    assert (("BTC", "bookTicker"), 5) == event_key({"e": "bookTicker", "s": "BTC", "u": 5})
    assert (("BTC", "aggTrade"), 9) == event_key({"e": "aggTrade", "s": "BTC", "a": 9, "E": 1})
    assert (("BTC", "kline"), 77) == event_key({"e": "kline", "s": "BTC", "E": 77})
    assert (("arr", "24hrTicker"), 3) == event_key([{"e": "24hrTicker", "E": 3}])
    assert None is event_key({"e": "kline"})
    assert None is event_key([])


def ticks(symbol: str, first: int, last: int) -> list[dict[str, Any]]:
    return [{"e": "bookTicker", "s": symbol, "u": u} for u in range(first, last + 1)]


def test_outside_a_rotation_every_event_is_delivered() -> None:
    """With one link nothing is dropped (events may share a timestamp key)."""
    handover = Handover()
    events = [{"e": "kline", "s": "A", "E": 5}, {"e": "kline", "s": "A", "E": 5}]
    assert [[("x", events[0])], [("x", events[1])]] == [
        handover.admit("x", e, False) for e in events
    ]
    assert 0 == handover.duplicates


@given(st.integers(0, 2**32), st.integers(1, 30), st.integers(0, 20))
@settings(max_examples=200, deadline=None)
def test_rotation_delivers_every_event_once_in_order(seed: int, overlap: int, late: int) -> None:
    """Old and new links interleaved at random: each event once, in order, none missing."""
    rng = random.Random(seed)
    events = ticks("A", 1, 60)
    start = 20  # the new link's subscription takes effect here
    old_stream = events[: start + overlap]  # the old link delivers until it is retired
    new_stream = events[start + min(late, overlap) :]
    handover = Handover()
    delivered: list[int] = []
    for event in events[:start]:
        delivered += [p["u"] for _, p in handover.admit("s", event, False)]
    handover.start()
    old, new = list(old_stream[start:]), list(new_stream)
    while old or new:
        take_old = bool(old) and (not new or rng.random() < 0.5)
        event = (old if take_old else new).pop(0)
        delivered += [p["u"] for _, p in handover.admit("s", event, take_old)]
    delivered += [p["u"] for _, p in handover.finish()]
    assert list(range(1, 61)) == delivered


def test_caught_up_once_the_new_link_joins_the_old() -> None:
    """The old link may retire once every stream it delivered has switched."""
    handover = Handover()
    handover.start()
    assert handover.caught_up()
    assert [("s", {"e": "bookTicker", "s": "A", "u": 1})] == handover.admit(
        "s", ticks("A", 1, 1)[0], True
    )
    assert not handover.caught_up()
    assert [] == handover.admit("s", ticks("A", 3, 3)[0], False)  # held: 2 not seen yet
    assert [2] == [p["u"] for _, p in handover.admit("s", ticks("A", 2, 2)[0], True)]
    assert not handover.caught_up()
    assert [3] == [p["u"] for _, p in handover.admit("s", ticks("A", 3, 3)[0], True)]
    assert handover.caught_up()
    assert [] == handover.admit("s", ticks("A", 4, 4)[0], True)  # old copies now dropped
    assert [4] == [p["u"] for _, p in handover.admit("s", ticks("A", 4, 4)[0], False)]


def test_silence_reports_stale_streams_and_their_recovery() -> None:
    """A stream silent for stale_after is reported once; hearing it again clears it."""
    silence = Silence(2.0)
    silence.watch("a", 0.0)
    silence.watch("b", 0.0)
    assert 2.0 == silence.next_deadline()
    silence.hear("b", 1.5)
    assert frozenset({"a"}) == silence.check(2.0)
    assert None is silence.check(2.1)
    assert 3.5 == silence.next_deadline()
    assert silence.hear("a", 2.5)
    assert frozenset() == silence.check(2.5)
    silence.unwatch("a")
    assert frozenset({"b"}) == silence.check(3.5)


def test_silence_without_stale_after_never_reports() -> None:
    """stale_after None switches the check off."""
    silence = Silence(None)
    silence.watch("a", 0.0)
    assert None is silence.check(1e9)
    assert float("inf") == silence.next_deadline()
