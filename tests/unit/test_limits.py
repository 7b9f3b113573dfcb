"""The client-side rate limiter and request weights, with a fake ``now``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bfsync.exceptions import RateLimitError
from bfsync.limits import DEFAULT_BUDGETS, ORDERS, REQUEST_WEIGHT, Budget, RateLimiter, weight_of

ORDERS_10S = Budget(ORDERS, 300, 10)
ORDERS_1M = Budget(ORDERS, 1200, 60)
WEIGHT_1M = Budget(REQUEST_WEIGHT, 2400, 60)

# A send: (time it may go out, weight, orders).
Send = tuple[float, int, int]


def worst_window(sends: Sequence[Send], budget: Budget) -> int:
    """The most ``budget`` units any window of ``budget.window`` seconds holds."""
    index = 1 if budget.kind == REQUEST_WEIGHT else 2
    points = sorted((send[0], send[index]) for send in sends if send[index])
    worst = held = 0
    end = 0
    for start, amount in points:  # the fullest window starts at a send
        while end < len(points) and points[end][0] < start + budget.window:
            held += points[end][1]
            end += 1
        worst = max(worst, held)
        held -= amount
    return worst


def reserve_all(
    limiter: RateLimiter, requests: Sequence[tuple[float, int, int]]
) -> tuple[list[float], list[Send]]:
    """Reserve each (now, weight, orders); return the delays and the sends they grant."""
    delays = [limiter.reserve(weight, orders, now) for now, weight, orders in requests]
    sends = [(now + delay, w, o) for (now, w, o), delay in zip(requests, delays)]
    return delays, sends


def limits_item(kind: str, interval: str, number: int, limit: int, count: int) -> dict[str, Any]:
    """One item of a reply's ``rateLimits``."""
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": number,
        "limit": limit,
        "count": count,
    }


# ---- budgets ---------------------------------------------------------------------------------


def test_default_budgets_are_binance_limits() -> None:
    """The defaults are ORDERS 300/10 s and 1200/60 s, REQUEST_WEIGHT 2400/60 s (§1.2)."""
    assert (ORDERS_10S, ORDERS_1M, WEIGHT_1M) == DEFAULT_BUDGETS


def test_budget_names_itself() -> None:
    """str(Budget) is the text error messages use."""
    assert ["ORDERS 300 per 10 s", "REQUEST_WEIGHT 2400 per 60 s", "ORDERS 5 per 0.5 s"] == [
        str(ORDERS_10S),
        str(WEIGHT_1M),
        str(Budget(ORDERS, 5, 0.5)),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "RAW_REQUESTS", "limit": 1, "window": 1},
        {"kind": ORDERS, "limit": 0, "window": 1},
        {"kind": ORDERS, "limit": 1.5, "window": 1},
        {"kind": ORDERS, "limit": 1, "window": 0},
    ],
)
def test_budget_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    """A budget with an unknown kind, a limit <= 0 or not an int, or a window <= 0 fails."""
    with pytest.raises((ValueError, TypeError)):
        Budget(**kwargs)


def test_budget_is_frozen() -> None:
    """Budgets are immutable values."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ORDERS_10S.limit = 1  # type: ignore[misc]


def test_unknown_mode_is_refused() -> None:
    """Only "wait" and "raise" are modes."""
    with pytest.raises(ValueError, match="mode"):
        RateLimiter(mode="block")


@pytest.mark.parametrize(("weight", "orders"), [(-1, 0), (0, -1)])
def test_negative_amounts_are_refused(weight: int, orders: int) -> None:
    """A negative weight or order count is a ValueError."""
    with pytest.raises(ValueError, match=">= 0"):
        RateLimiter().reserve(weight, orders, 0.0)


def test_request_larger_than_a_budget_is_refused() -> None:
    """A request that could never fit a budget is a ValueError naming it, and reserves nothing."""
    limiter = RateLimiter([Budget(REQUEST_WEIGHT, 10, 1), Budget(ORDERS, 1, 1)])

    with pytest.raises(ValueError, match="REQUEST_WEIGHT 10 per 1 s"):
        limiter.reserve(11, 1, 0.0)
    assert 0.0 == limiter.reserve(10, 1, 0.0)


# ---- wait mode -------------------------------------------------------------------------------


def test_request_that_fits_waits_zero() -> None:
    """A request within every budget may go now."""
    limiter = RateLimiter()

    assert [0.0, 0.0, 0.0] == [
        limiter.reserve(2, 0, 100.0),
        limiter.reserve(0, 1, 100.0),
        limiter.reserve(20, 0, 100.5),
    ]


def test_zero_request_uses_nothing() -> None:
    """A request of weight 0 and no order (order.place's weight) reserves nothing."""
    limiter = RateLimiter([Budget(REQUEST_WEIGHT, 1, 10)])
    limiter.reserve(1, 0, 0.0)

    assert (0.0, 9.0) == (limiter.reserve(0, 0, 1.0), limiter.reserve(1, 0, 1.0))


def test_order_burst_is_spread_over_10s_windows() -> None:
    """1000 orders at once: 300 now, then 300 more every 10 s."""
    limiter = RateLimiter()

    delays, _ = reserve_all(limiter, [(0.0, 0, 1)] * 1000)

    assert [0.0] * 300 + [10.0] * 300 + [20.0] * 300 + [30.0] * 100 == delays


def test_order_burst_keeps_every_window_within_budgets() -> None:
    """A steady overload: replaying the sends, no window of any budget goes over."""
    limiter = RateLimiter()
    requests = [(i / 128, 1, 1) for i in range(3000)]  # 128 orders/s, four times too many

    delays, sends = reserve_all(limiter, requests)

    assert [300, 1200, 1200] == [worst_window(sends, b) for b in DEFAULT_BUDGETS]
    assert delays[-1] > 0


def test_delays_are_measured_from_each_callers_now() -> None:
    """A later caller waits less for the same slot: the grant is a time, the delay relative."""
    limiter = RateLimiter([Budget(ORDERS, 1, 10)])
    limiter.reserve(0, 1, 0.0)

    assert [6.0, 13.0] == [limiter.reserve(0, 1, 4.0), limiter.reserve(0, 1, 7.0)]


def test_one_minute_orders_budget() -> None:
    """300 orders every 10 s fit the 10 s budget; the 1200 per minute one stops them at 40 s."""
    limiter = RateLimiter()
    requests = [(float(10 * (i // 300)), 0, 1) for i in range(1201)]

    delays, sends = reserve_all(limiter, requests)

    assert [0.0] * 1200 + [20.0] == delays
    assert 1200 == worst_window(sends, ORDERS_1M)


def test_one_minute_weight_budget() -> None:
    """120 depth requests of weight 20 use the 2400 per minute; the next weight waits 60 s."""
    limiter = RateLimiter()
    weight = weight_of("depth", {"symbol": "BTCUSDT", "limit": 1000})

    delays, _ = reserve_all(limiter, [(0.0, weight, 0)] * 120 + [(30.0, 1, 0)])

    assert [0.0] * 120 + [30.0] == delays


def test_weight_waits_for_enough_to_leave() -> None:
    """A heavy request waits until enough of the oldest weight has left the window."""
    limiter = RateLimiter([Budget(REQUEST_WEIGHT, 10, 10)])
    reserve_all(limiter, [(0.0, 4, 0), (1.0, 4, 0), (2.0, 2, 0)])

    assert 11.0 - 3.0 == limiter.reserve(8, 0, 3.0)  # the weight of 0 s and 1 s must go


def test_fitting_request_is_not_queued_behind_another_budget() -> None:
    """A cancel (weight only) goes now while a modify waits for the ORDERS budget."""
    limiter = RateLimiter([Budget(ORDERS, 1, 10), Budget(REQUEST_WEIGHT, 100, 60)])
    limiter.reserve(1, 1, 0.0)

    assert [10.0, 0.0] == [limiter.reserve(1, 1, 0.0), limiter.reserve(1, 0, 0.0)]


def test_now_running_backwards_is_safe() -> None:
    """A caller whose clock reading is older than one already seen still gets a safe slot."""
    limiter = RateLimiter([Budget(ORDERS, 1, 10)])

    delays, sends = reserve_all(limiter, [(0.0, 0, 1), (10.0, 0, 1), (9.0, 0, 1)])

    assert [0.0, 0.0, 11.0] == delays
    assert 1 == worst_window(sends, Budget(ORDERS, 1, 10))


# ---- raise mode ------------------------------------------------------------------------------


def test_raise_mode_names_the_budget_with_retry_after() -> None:
    """In "raise" mode the 301st order raises RateLimitError naming ORDERS 300 per 10 s."""
    limiter = RateLimiter(mode="raise")
    for _ in range(300):
        limiter.reserve(0, 1, 0.0)

    with pytest.raises(RateLimitError) as caught:
        limiter.reserve(0, 1, 4.0)

    assert 6.0 == caught.value.retry_after
    assert "ORDERS 300 per 10 s" in str(caught.value)


def test_raise_mode_reserves_nothing_when_it_raises() -> None:
    """A refused request leaves the budget as it was: the next one gets the same answer."""
    limiter = RateLimiter([Budget(ORDERS, 1, 10)], mode="raise")
    limiter.reserve(0, 1, 0.0)
    retries = []
    for now in (1.0, 2.0):
        with pytest.raises(RateLimitError) as caught:
            limiter.reserve(0, 1, now)
        retries.append(caught.value.retry_after)

    assert [9.0, 8.0, 0.0] == [*retries, limiter.reserve(0, 1, 10.0)]


def test_smaller_request_after_a_refusal_waits_less() -> None:
    """After a heavy request is refused, a lighter one waits only for its own share to leave."""
    limiter = RateLimiter([Budget(REQUEST_WEIGHT, 12, 10)], mode="raise")
    reserve_all(limiter, [(0.0, 4, 0), (1.0, 4, 0), (2.0, 4, 0)])
    retries = []
    for weight in (9, 5):
        with pytest.raises(RateLimitError) as caught:
            limiter.reserve(weight, 0, 3.0)
        retries.append(caught.value.retry_after)

    assert [12.0 - 3.0, 11.0 - 3.0] == retries


def test_raise_mode_names_the_one_minute_budgets() -> None:
    """The 1-minute budgets are named when they are the ones used up."""
    limiter = RateLimiter(mode="raise")
    for _ in range(120):
        limiter.reserve(20, 0, 0.0)
    for i in range(1200):
        limiter.reserve(0, 1, 10.0 * (i // 300))

    with pytest.raises(RateLimitError) as weight_error:
        limiter.reserve(1, 0, 40.0)
    with pytest.raises(RateLimitError) as orders_error:
        limiter.reserve(0, 1, 40.0)

    assert "REQUEST_WEIGHT 2400 per 60 s" in str(weight_error.value)
    assert "ORDERS 1200 per 60 s" in str(orders_error.value)
    assert (20.0, 20.0) == (weight_error.value.retry_after, orders_error.value.retry_after)


def test_raise_mode_lets_fitting_requests_through() -> None:
    """In "raise" mode a request that fits returns 0.0 like in "wait" mode."""
    assert 0.0 == RateLimiter(mode="raise").reserve(5, 1, 0.0)


# ---- observe ---------------------------------------------------------------------------------


def test_observed_higher_server_count_delays_sooner() -> None:
    """The server counts 250 orders we did not send: only 50 more fit the 10 s window."""
    limiter = RateLimiter()
    limiter.observe([limits_item(ORDERS, "SECOND", 10, 300, 250)], now=0.0)

    delays, _ = reserve_all(limiter, [(1.0, 0, 1)] * 51)

    assert [0.0] * 50 + [9.0] == delays


def test_observed_weight_count_delays_sooner() -> None:
    """A REQUEST_WEIGHT count of 2390 per minute leaves 10 weight to this client."""
    limiter = RateLimiter()
    limiter.reserve(5, 0, 0.0)
    limiter.observe([limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 2390)], now=1.0)

    assert [0.0, 60.0 - 2.0] == [limiter.reserve(10, 0, 2.0), limiter.reserve(1, 0, 2.0)]


def test_observed_counts_are_not_counted_twice() -> None:
    """The same count seen twice pads once: padding is part of what the budget holds."""
    limiter = RateLimiter([Budget(ORDERS, 10, 10)])
    for now in (0.0, 1.0, 2.0):
        limiter.observe([limits_item(ORDERS, "SECOND", 10, 10, 6)], now=now)

    delays, _ = reserve_all(limiter, [(3.0, 0, 1)] * 5)

    assert [0.0] * 4 + [7.0] == delays


def test_observed_count_within_ours_changes_nothing() -> None:
    """A server count at or below our own tally (in-flight replies) pads nothing."""
    limiter = RateLimiter([Budget(ORDERS, 10, 10)])
    reserve_all(limiter, [(0.0, 0, 1)] * 5)
    limiter.observe([limits_item(ORDERS, "SECOND", 10, 10, 3)], now=0.5)

    delays, _ = reserve_all(limiter, [(1.0, 0, 1)] * 6)

    assert [0.0] * 5 + [9.0] == delays


def test_padding_leaves_after_a_window() -> None:
    """Other clients' use counts for one window after it was seen, then frees the budget."""
    limiter = RateLimiter([Budget(ORDERS, 10, 10)])
    limiter.observe([limits_item(ORDERS, "SECOND", 10, 10, 10)], now=0.0)

    assert [10.0, 0.0] == [limiter.reserve(0, 1, 0.0), limiter.reserve(0, 1, 10.0)]


def test_observe_matches_a_budget_with_a_safety_margin() -> None:
    """A budget of 60.5 s (the service's margin) takes in the server's 1-minute counter."""
    limiter = RateLimiter([Budget(REQUEST_WEIGHT, 2400, 60.5)])
    limiter.observe([limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 2400)], now=0.0)

    assert 60.5 == limiter.reserve(1, 0, 0.0)


def test_observe_matches_budgets_by_kind_and_window() -> None:
    """Counters of other windows, kinds or intervals, and malformed items, pad nothing."""
    limiter = RateLimiter([Budget(ORDERS, 10, 10)])
    limiter.observe(
        [
            limits_item(ORDERS, "MINUTE", 1, 1200, 100),
            limits_item(REQUEST_WEIGHT, "SECOND", 10, 10, 100),
            limits_item(ORDERS, "HOUR", 10, 10, 100),
            limits_item(ORDERS, "FORTNIGHT", 10, 10, 100),
            {"rateLimitType": ORDERS, "interval": "SECOND", "intervalNum": 10, "count": "100"},
            {"rateLimitType": ORDERS, "interval": "SECOND", "intervalNum": 10, "count": True},
            {"rateLimitType": ORDERS, "interval": ["SECOND"], "intervalNum": 10, "count": 100},
            "not a mapping",  # type: ignore[list-item]
        ],
        now=0.0,
    )

    delays, _ = reserve_all(limiter, [(0.0, 0, 1)] * 10)

    assert [0.0] * 10 == delays


def test_latest_keeps_the_last_item_per_counter() -> None:
    """A weight-only reply replaces the weight counter and keeps the ORDERS ones."""
    limiter = RateLimiter()
    weight_1 = limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 1)
    orders_10s = limits_item(ORDERS, "SECOND", 10, 300, 1)
    orders_1m = limits_item(ORDERS, "MINUTE", 1, 1200, 1)
    weight_2 = limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 2)
    limiter.observe([weight_1, orders_10s, orders_1m], now=0.0)
    limiter.observe([weight_2], now=0.1)
    limiter.observe([], now=0.2)

    assert [weight_2, orders_10s, orders_1m] == limiter.latest


def test_latest_is_a_copy() -> None:
    """Changing what latest returned, or the list observed, changes nothing inside."""
    limiter = RateLimiter()
    item = limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 7)
    limiter.observe([item], now=0.0)
    item["count"] = 99
    first = limiter.latest
    first[0]["count"] = 1000
    first.clear()

    assert [limits_item(REQUEST_WEIGHT, "MINUTE", 1, 2400, 7)] == limiter.latest


def test_latest_starts_empty() -> None:
    """Before any reply, latest is an empty list."""
    assert [] == RateLimiter().latest


# ---- threads and memory ----------------------------------------------------------------------


def test_threads_reserve_without_overshoot() -> None:
    """8 threads reserving 100 orders each at a fixed now: 300 slots per 10 s, none lost."""
    limiter = RateLimiter()
    delays: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [limiter.reserve(1, 1, 0.0) for _ in range(100)]
        with lock:
            delays.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [0.0] * 300 + [10.0] * 300 + [20.0] * 200 == sorted(delays)


def test_memory_stays_bounded() -> None:
    """After 100 000 requests over ~104 min, each budget holds one window of entries."""
    limiter = RateLimiter()
    for i in range(100_000):
        limiter.reserve(1, 1, i / 16)  # 16 per second: within every budget

    windows = limiter._windows  # the test looks at the internals on purpose
    held = [len(window) for window in windows]
    stored = [len(window.times) for window in windows]

    assert [160, 960, 960] == held
    assert all(size <= 2 * 1200 for size in stored)


# ---- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("depth", {"symbol": "BTCUSDT", "limit": 5}, 2),
        ("depth", {"symbol": "BTCUSDT", "limit": 10}, 2),
        ("depth", {"symbol": "BTCUSDT", "limit": 20}, 2),
        ("depth", {"symbol": "BTCUSDT", "limit": 50}, 2),
        ("depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
        ("depth", {"symbol": "BTCUSDT", "limit": 500}, 10),
        ("depth", {"symbol": "BTCUSDT", "limit": 1000}, 20),
        ("depth", {"symbol": "BTCUSDT"}, 10),
        ("depth", {"symbol": "BTCUSDT", "limit": None}, 10),
        ("depth", {"symbol": "BTCUSDT", "limit": "100"}, 5),
        ("depth", {"symbol": "BTCUSDT", "limit": "many"}, 10),
        ("depth", {"symbol": "BTCUSDT", "limit": 200}, 10),
        ("depth", {"symbol": "BTCUSDT", "limit": 5000}, 20),
        ("ticker.price", {"symbol": "BTCUSDT"}, 1),
        ("ticker.price", {}, 2),
        ("ticker.price", {"symbol": ""}, 2),
        ("ticker.book", {"symbol": "BTCUSDT"}, 2),
        ("ticker.book", {}, 5),
        ("order.place", {"symbol": "BTCUSDT"}, 0),
        ("algoOrder.place", {}, 0),
        ("order.modify", {}, 0),
        ("order.cancel", {}, 1),
        ("order.status", {}, 1),
        ("session.logon", {}, 2),
        ("session.status", {}, 2),
        ("v2/account.status", {}, 5),
        ("v2/account.position", {"symbol": "BTCUSDT"}, 5),
        ("userDataStream.ping", {}, 1),
        ("no.such.method", {}, 1),
    ],
)
def test_weight_of(method: str, params: dict[str, Any], expected: int) -> None:
    """Weights per §3: depth by limit, tickers by symbol, the rest from METHODS, unknown 1."""
    assert expected == weight_of(method, params)


# ---- properties ------------------------------------------------------------------------------

SMALL_BUDGETS = (
    Budget(ORDERS, 3, 1),
    Budget(ORDERS, 7, 4),
    Budget(REQUEST_WEIGHT, 12, 3),
)
# Steps are multiples of 1/16 s, so every sum is exact and the replay needs no tolerance.
STEP = st.integers(min_value=-2, max_value=40).map(lambda n: n / 16)
REQUEST = st.tuples(STEP, st.integers(0, 12), st.integers(0, 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(REQUEST, max_size=120))
def test_granted_sends_never_exceed_a_budget(steps: list[tuple[float, int, int]]) -> None:
    """Random (dt, weight, orders), now sometimes going back: no window is ever over budget."""
    limiter = RateLimiter(SMALL_BUDGETS)
    now, requests = 100.0, []
    for dt, weight, orders in steps:
        now += dt
        requests.append((now, weight, orders))

    delays, sends = reserve_all(limiter, requests)

    assert all(delay >= 0 for delay in delays)
    for budget in SMALL_BUDGETS:
        assert worst_window(sends, budget) <= budget.limit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("reserve"), STEP, st.integers(0, 12), st.integers(0, 1)),
            st.tuples(st.just("observe"), STEP, st.sampled_from(SMALL_BUDGETS), st.integers(0, 15)),
        ),
        max_size=120,
    )
)
def test_raise_mode_with_server_counts_never_exceeds(steps: list[tuple[Any, ...]]) -> None:
    """Mode "raise" with server counts mixed in: grants fit, refusals clear after retry_after."""
    limiter = RateLimiter(SMALL_BUDGETS, mode="raise")
    now, sends = 100.0, []
    for action, dt, first, second in steps:
        now += dt
        if action == "observe":
            budget: Budget = first
            unit, number = ("SECOND", int(budget.window))
            item = limits_item(budget.kind, unit, number, budget.limit, second)
            limiter.observe([item], now)
            continue
        try:
            delay = limiter.reserve(first, second, now)
        except RateLimitError as error:
            assert error.retry_after is not None
            assert error.retry_after > 0
            retry_at = now + error.retry_after
            assert 0.0 == limiter.reserve(first, second, retry_at)
            now = retry_at
            delay = 0.0
        sends.append((now + delay, first, second))

    for budget in SMALL_BUDGETS:
        assert worst_window(sends, budget) <= budget.limit


class NaiveLimiter:
    """The same rule as RateLimiter, the slow way: every entry kept, every candidate tried."""

    def __init__(self, budgets: Sequence[Budget], mode: str) -> None:
        self.budgets = budgets
        self.mode = mode
        self.entries: list[list[tuple[float, int]]] = [[] for _ in budgets]
        self.now = float("-inf")

    def held(self, index: int, at: float) -> int:
        """The amount of budget ``index`` still counting at ``at``."""
        window = self.budgets[index].window
        return sum(amount for time, amount in self.entries[index] if time + window > at)

    def record(self, index: int, at: float, amount: int) -> None:
        """Record at ``at``, or at the budget's latest entry if later."""
        latest = max((time for time, _ in self.entries[index]), default=at)
        self.entries[index].append((max(at, latest), amount))

    def reserve(self, weight: int, orders: int, now: float) -> float:
        """The earliest time every used budget has room, as a delay from ``now``; or raise."""
        self.now = current = max(now, self.now)
        uses = []
        grant = current
        for index, budget in enumerate(self.budgets):
            amount = weight if budget.kind == REQUEST_WEIGHT else orders
            if amount:
                uses.append((index, amount))
                window = budget.window
                times = [current] + [
                    t + window for t, _ in self.entries[index] if t + window > current
                ]
                fits = [t for t in times if self.held(index, t) + amount <= budget.limit]
                grant = max(grant, min(fits))
        if grant > current and self.mode == "raise":
            raise RateLimitError("model", retry_after=grant - now)
        for index, amount in uses:
            self.record(index, grant, amount)
        return max(0.0, grant - now)

    def observe(self, index: int, count: int, now: float) -> None:
        """Pad budget ``index`` up to the server's ``count``."""
        self.now = current = max(now, self.now)
        excess = count - self.held(index, current)
        if excess > 0:
            self.record(index, current, excess)


def outcome(limiter: RateLimiter | NaiveLimiter, weight: int, orders: int, now: float) -> Any:
    """The delay, or ("raise", retry_after)."""
    try:
        return limiter.reserve(weight, orders, now)
    except RateLimitError as error:
        return ("raise", error.retry_after)


@pytest.mark.parametrize("mode", ["wait", "raise"])
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("reserve"), STEP, st.integers(0, 12), st.integers(0, 1)),
            st.tuples(st.just("observe"), STEP, st.integers(0, 2), st.integers(0, 15)),
        ),
        max_size=150,
    )
)
def test_limiter_agrees_with_a_naive_model(mode: str, steps: list[tuple[Any, ...]]) -> None:
    """Random reserves and server counts: the same answers as the slow model of the same rule."""
    limiter, model = RateLimiter(SMALL_BUDGETS, mode), NaiveLimiter(SMALL_BUDGETS, mode)
    now = 100.0
    expected, actual = [], []
    for action, dt, first, second in steps:
        now += dt
        if action == "observe":
            budget = SMALL_BUDGETS[first]
            item = limits_item(budget.kind, "SECOND", int(budget.window), budget.limit, second)
            limiter.observe([item], now)
            model.observe(first, second, now)
        else:
            expected.append(outcome(model, first, second, now))
            actual.append(outcome(limiter, first, second, now))

    assert expected == actual
