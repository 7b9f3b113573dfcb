"""The server clock offset, from fake serverTime replies."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bfsync.clock import MAX_OFFSET_MS, MAX_STEP_MS, OUTLIER_FACTOR, SAMPLES, ServerClock


def measure(clock: ServerClock, middle: int, round_trip: float, offset: int) -> None:
    """Feed a reply read at our ``middle`` ms, by a server ``offset`` ms ahead."""
    clock.update(middle + offset, middle - round_trip / 2, middle + round_trip / 2)


def test_before_any_measurement() -> None:
    """No sample yet: offset 0, no round trip, timestamps are the local time."""
    clock = ServerClock()

    assert (0.0, None, 1_700_000_000_123) == (
        clock.offset_ms,
        clock.round_trip_ms,
        clock.timestamp(1_700_000_000_123.9),
    )


def test_offset_from_a_symmetric_round_trip() -> None:
    """Sent at 1000, back at 1100, serverTime 1300: the server read 1300 at our 1050."""
    clock = ServerClock()
    clock.update(1300, 1000.0, 1100.0)

    assert (250.0, 100.0) == (clock.offset_ms, clock.round_trip_ms)


@pytest.mark.parametrize("skew", [3000, -3000])
def test_skewed_server_gives_that_offset(skew: int) -> None:
    """A server 3000 ms ahead (or behind) gives an offset of +3000 (or -3000)."""
    clock = ServerClock()
    measure(clock, 1_700_000_000_000, 40.0, skew)

    assert float(skew) == clock.offset_ms


@pytest.mark.parametrize("skew", [3000, -3000])
def test_timestamp_applies_the_offset(skew: int) -> None:
    """timestamp() is the local time plus the offset, as an int."""
    clock = ServerClock()
    measure(clock, 1_700_000_000_000, 40.0, skew)

    assert 1_700_000_010_000 + skew == clock.timestamp(1_700_000_010_000.0)


def test_timestamp_truncates_to_int() -> None:
    """A fractional offset is added before truncating to whole ms."""
    clock = ServerClock()
    clock.update(1051, 1000.0, 1101.0)  # offset 0.5

    assert (0.5, 2000) == (clock.offset_ms, clock.timestamp(1999.6))


def test_smallest_round_trip_wins() -> None:
    """Of several samples, the one with the smallest round trip gives the offset."""
    clock = ServerClock()
    measure(clock, 0, 100.0, 500)
    measure(clock, 1000, 20.0, 300)
    measure(clock, 2000, 60.0, 400)

    assert (300.0, 20.0) == (clock.offset_ms, clock.round_trip_ms)


def test_newest_sample_wins_a_tie() -> None:
    """Two samples with the same round trip: the newer one is used."""
    clock = ServerClock()
    measure(clock, 0, 20.0, 300)
    measure(clock, 1000, 20.0, 310)

    assert 310.0 == clock.offset_ms


def test_old_samples_age_out() -> None:
    """Only the last few accepted samples count: a good one leaves after SAMPLES newer ones."""
    clock = ServerClock()
    measure(clock, 0, 20.0, 300)
    for i in range(SAMPLES):
        measure(clock, 1000 * (i + 1), 30.0 + i, 400 + i)

    assert (400.0, 30.0) == (clock.offset_ms, clock.round_trip_ms)


def test_slow_round_trip_is_discarded() -> None:
    """A round trip over 5x the best is ignored, even if it would be kept otherwise."""
    clock = ServerClock()
    measure(clock, 0, 10.0, 300)
    measure(clock, 1000, 10.0 * OUTLIER_FACTOR + 2, 9000)
    for i in range(SAMPLES - 1):  # without the outlier in them, the first sample is still kept
        measure(clock, 2000 + 1000 * i, 40.0, 500)

    assert (300.0, 10.0) == (clock.offset_ms, clock.round_trip_ms)


def test_round_trip_up_to_5x_is_kept() -> None:
    """A round trip of exactly 5x the best is accepted: it breaks a run of outliers."""
    clock = ServerClock()
    measure(clock, 0, 10.0, 300)
    measure(clock, 1000, 10.0 * OUTLIER_FACTOR, 700)
    for i in range(SAMPLES - 1):  # had the 5x one been an outlier, these would take over
        measure(clock, 2000 + 1000 * i, 100.0, 900)

    assert (300.0, 10.0) == (clock.offset_ms, clock.round_trip_ms)


def test_tiny_round_trips_are_not_outliers() -> None:
    """Within 1 ms of the best is never an outlier, even over 5x (a localhost 0.1 ms best)."""
    clock = ServerClock()
    measure(clock, 0, 0.0, 300)
    measure(clock, 1000, 0.75, 600)
    for i in range(SAMPLES - 1):  # had the 0.75 ms one been an outlier, these would take over
        measure(clock, 2000 + 1000 * i, 100.0, 900)

    assert (300.0, 0.0) == (clock.offset_ms, clock.round_trip_ms)


def test_a_run_of_outliers_replaces_the_samples() -> None:
    """SAMPLES slow round trips in a row mean the network changed: they become the samples."""
    clock = ServerClock()
    measure(clock, 0, 10.0, 300)
    for i in range(SAMPLES - 1):
        measure(clock, 1000 * (i + 1), 200.0 + i, 800 + i)
    before = (clock.offset_ms, clock.round_trip_ms)
    measure(clock, 9000, 250.0, 900)

    assert [(300.0, 10.0), (800.0, 200.0)] == [before, (clock.offset_ms, clock.round_trip_ms)]


def test_a_good_sample_ends_a_run_of_outliers() -> None:
    """Outliers must come in a row to take over: an accepted sample starts the count again."""
    clock = ServerClock()
    measure(clock, 0, 10.0, 300)
    for i in range(2 * SAMPLES - 2):
        if i == SAMPLES - 1:
            measure(clock, 1000 * (i + 1), 12.0, 310)
        measure(clock, 1000 * (i + 1), 200.0, 800)

    assert (300.0, 10.0) == (clock.offset_ms, clock.round_trip_ms)


def test_negative_round_trip_is_refused() -> None:
    """A reply received before its request was sent is a caller's bug: ValueError."""
    with pytest.raises(ValueError, match="before"):
        ServerClock().update(1000, 2000.0, 1999.0)


def test_concurrent_updates_keep_the_best() -> None:
    """Threads feeding samples at once: the estimate is the best of the last samples."""
    clock = ServerClock()
    start = threading.Barrier(4)

    def worker(offset: int) -> None:
        start.wait()
        for i in range(500):
            measure(clock, 1000 * i, 20.0, offset)

    threads = [threading.Thread(target=worker, args=(n * 10,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert 20.0 == clock.round_trip_ms
    assert clock.offset_ms in {0.0, 10.0, 20.0, 30.0}


@given(
    st.lists(
        st.tuples(st.integers(10, 50), st.integers(-5000, 5000)),
        min_size=1,
        max_size=30,
    )
)
def test_estimate_is_the_best_of_the_last_samples(samples: list[tuple[int, int]]) -> None:
    """Round trips all within 5x of each other: the newest smallest of the last SAMPLES wins."""
    clock = ServerClock()
    for i, (round_trip, offset) in enumerate(samples):
        measure(clock, 1000 * i, float(round_trip), offset)
    last = samples[-SAMPLES:]
    best = min(round_trip for round_trip, _ in last)
    offset = [off for round_trip, off in last if round_trip == best][-1]

    assert (float(offset), float(best)) == (clock.offset_ms, clock.round_trip_ms)


def test_reset_takes_the_next_measurement_as_it_is() -> None:
    """After reset() a slower measurement replaces a faster old one (a clock that jumped)."""
    clock = ServerClock()
    clock.update(server_time_ms=10_000, sent_at_ms=9_999, received_at_ms=10_001)
    clock.update(server_time_ms=20_000 + 6_000, sent_at_ms=19_990, received_at_ms=20_010)
    assert 0.0 == clock.offset_ms  # the jump lost to the faster old sample

    clock.reset()
    clock.update(server_time_ms=30_000 + 6_000, sent_at_ms=29_990, received_at_ms=30_010)

    assert 6_000.0 == clock.offset_ms


# ---- bounds on what one measurement may change ------------------------------------------------

NOW = 1_800_000_000_000  # a local wall clock in ms


def test_absurd_server_time_is_refused() -> None:
    """serverTime 5 (1970) does not make the offset -1.8e12 ms: it is refused, logged."""
    clock = ServerClock()

    taken = clock.update(5, NOW - 10, NOW + 10)

    assert (False, 0.0, None) == (taken, clock.offset_ms, clock.round_trip_ms)


def test_absurd_server_time_after_a_reset_is_refused() -> None:
    """After reset() (a -1021) the next measurement is taken as it is, but not beyond a day."""
    clock = ServerClock()
    measure(clock, NOW, 10.0, 250)
    clock.reset()

    assert not clock.update(5, NOW - 10, NOW + 10)
    assert clock.update(NOW + 3_600_000, NOW - 10, NOW + 10)  # an hour off: a real skew
    assert 3_600_000.0 == clock.offset_ms


@pytest.mark.parametrize("offset", [MAX_OFFSET_MS - 1, -(MAX_OFFSET_MS - 1)])
def test_a_large_first_offset_within_a_day_is_taken(offset: float) -> None:
    """A local clock off by almost a day is compensated (the first measurement)."""
    clock = ServerClock()
    measure(clock, NOW, 10.0, int(offset))

    assert offset == clock.offset_ms


def test_a_jump_waits_for_a_second_measurement() -> None:
    """An offset moving by over MAX_STEP_MS is held; a second agreeing one makes it the estimate."""
    clock = ServerClock()
    measure(clock, NOW, 10.0, 200)
    jump = int(MAX_STEP_MS) + 60_000

    measure(clock, NOW + 1000, 30.0, jump)
    held = clock.offset_ms
    measure(clock, NOW + 2000, 40.0, jump + 500)

    assert (200.0, float(jump), 30.0) == (held, clock.offset_ms, clock.round_trip_ms)


def test_a_lone_jump_is_forgotten() -> None:
    """A jumped measurement followed by a normal one is dropped; it never becomes the estimate."""
    clock = ServerClock()
    measure(clock, NOW, 10.0, 200)
    far = -int(MAX_STEP_MS) * 3
    measure(clock, NOW + 1000, 10.0, far)
    measure(clock, NOW + 2000, 10.0, 210)
    measure(clock, NOW + 3000, 10.0, far)  # held afresh: the first one was dropped

    assert 210.0 == clock.offset_ms


def test_two_disagreeing_jumps_are_both_held() -> None:
    """Two jumped measurements that disagree with each other confirm nothing."""
    clock = ServerClock()
    measure(clock, NOW, 10.0, 0)
    measure(clock, NOW + 1000, 10.0, 100_000)
    measure(clock, NOW + 2000, 10.0, 200_000)

    assert 0.0 == clock.offset_ms


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2_000),  # round trip
            st.integers(-(10**13), 10**13),  # server time minus local time: absurd ones too
        ),
        min_size=1,
        max_size=20,
    )
)
def test_one_measurement_never_moves_the_offset_beyond_the_bounds(
    samples: list[tuple[int, int]],
) -> None:
    """Any sequence: the offset stays within a day, and moves by over MAX_STEP_MS only when
    two measurements in a row agree on it (property)."""
    clock = ServerClock()
    previous: list[int] = []
    for i, (round_trip, offset) in enumerate(samples):
        before = clock.offset_ms
        had_estimate = clock.round_trip_ms is not None
        measure(clock, NOW + 1000 * i, float(round_trip), offset)
        assert abs(clock.offset_ms) <= MAX_OFFSET_MS
        if had_estimate and abs(clock.offset_ms - before) > MAX_STEP_MS:
            assert previous and abs(previous[-1] - clock.offset_ms) <= 2_000 + 1_000
        if abs(offset) <= MAX_OFFSET_MS:  # a refused one is no measurement at all
            previous.append(offset)
