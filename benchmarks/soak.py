"""
Soak test: bfsync services under continuous load while a fault thread breaks things.

    python benchmarks/soak.py                       # 10 minutes, 4 threads
    python benchmarks/soak.py --minutes 0.2         # a quick check (12 s)
    python benchmarks/soak.py --minutes 1 --threads 8 --seed 7

A FakeExchange runs in this process. Two services connect to it: one signing with HMAC, one
with Ed25519 and logged on. ``--threads`` threads make a random mix of calls on both (blocking
and futures; reads, and small orders that fill at once) while a fault thread injects a random
fault every few seconds: a drop with or without a close frame, a 1 s stall, two refused
handshakes (with a drop), duplicated replies, a garbage frame, delayed replies, orders placed
but answered 5xx or -1006/-1007 (which must raise ``OrderServerError``, never a plain
``RequestError``).

At the end the faults are cleared, every future must have settled, one call on each service
must succeed, and once everything is closed no thread or file descriptor may be left over.
The exit code is 1 if any of that fails, or if a call raised anything that is not a bfsync
``BinanceWebSocketError``. Threads, open file descriptors and RSS are reported at the start,
after warm-up (1 minute or 20 % of the run, whichever is shorter), at the end of the load and
after closing.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Callable, Optional

from bfsync import (
    BinanceWebSocketError,
    OrderServerError,
    RequestError,
    State,
    WebSocketService,
)
from bfsync.testing import FakeExchange

SYMBOL = "BTCUSDT"
CONFIG: dict[str, Any] = {
    "request_timeout": 3,
    "connection_timeout": 5,
    "reconnect_delay": 0.1,
    "max_reconnect_delay": 1,
    "max_reconnect_attempts": 20,
    "ping_interval": 1,
    "max_connection_age": 30,
}
SETTLE_WAIT = 15.0  # bound on waiting for the last futures (request_timeout is 3 s)
PRUNE_EVERY = 200  # a worker checks its outstanding futures this often
# The in-process fake keeps every order it ever took, so orders grow its memory (not bfsync's):
# `--order-share 0` shows bfsync's own footprint.
ORDER_SHARE = 0.1


Call = Callable[[WebSocketService, bool], Any]

# Reads, then orders: LIMIT GTC priced through the book and MARKET, both fill at once (nothing
# rests, so the fake's book does not grow), 0.01 BTC (notional ~500 USDT).
READS: list[tuple[str, Call]] = [
    ("ticker.price", lambda ws, wait: ws.get_ticker_price(SYMBOL, wait_for_response=wait)),
    ("ticker.book", lambda ws, wait: ws.get_ticker_book(SYMBOL, wait_for_response=wait)),
    ("depth", lambda ws, wait: ws.get_depth(SYMBOL, limit=5, wait_for_response=wait)),
    ("balance", lambda ws, wait: ws.get_account_balance(wait_for_response=wait)),
    ("position", lambda ws, wait: ws.get_position_info(SYMBOL, wait_for_response=wait)),
]


def _limit(side: str, price: str) -> Call:
    return lambda ws, wait: ws.place_limit_order(
        wait_for_response=wait,
        symbol=SYMBOL,
        side=side,
        quantity="0.01",
        price=price,
        timeInForce="GTC",
    )


def _market(side: str) -> Call:
    return lambda ws, wait: ws.place_market_order(
        wait_for_response=wait, symbol=SYMBOL, side=side, quantity="0.01"
    )


ORDERS: list[tuple[str, Call]] = [
    ("limit buy", _limit("BUY", "50010")),
    ("limit sell", _limit("SELL", "49990")),
    ("market buy", _market("BUY")),
    ("market sell", _market("SELL")),
]


# Measurements


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Snapshot:
    """Threads, file descriptors and resident memory at one moment."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.threads = threading.active_count()
        self.fds = open_fds()
        self.rss = rss_mb()
        # Python objects alive (tracemalloc, when --tracemalloc): what RSS cannot tell apart
        # from the allocator keeping freed memory.
        self.traced = (
            tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else None
        )
        self.names = sorted(t.name for t in threading.enumerate())


class Stats:
    """Counters shared by the workers and the fault thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.successes = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.unexpected: collections.Counter[str] = collections.Counter()
        self.misreported = 0  # an order answered 5xx / -1006 / -1007 as a plain RequestError
        self.faults: collections.Counter[str] = collections.Counter()
        self.futures_created = 0
        self.futures_settled = 0
        self.callbacks_run = 0
        self.unsettled: list[Future[Any]] = []

    def outcome(self, exc: Optional[BaseException]) -> None:
        with self.lock:
            if exc is None:
                self.successes += 1
                return
            name = type(exc).__name__
            self.errors[name] += 1
            if not isinstance(exc, BinanceWebSocketError):
                self.unexpected[name] += 1
            if isinstance(exc, RequestError) and not isinstance(exc, OrderServerError):
                status = exc.status if isinstance(exc.status, int) else 0
                if status >= 500 or exc.code in (-1006, -1007):  # only orders get these
                    self.misreported += 1

    def callback(self, _: Future[Any]) -> None:
        with self.lock:
            self.callbacks_run += 1


# The load


def worker(
    services: list[WebSocketService],
    stats: Stats,
    stop: threading.Event,
    seed: int,
    order_share: float = ORDER_SHARE,
) -> None:
    rng = random.Random(seed)
    outstanding: list[Future[Any]] = []
    count = 0
    while not stop.is_set():
        ws = rng.choice(services)
        _, call = rng.choice(ORDERS) if rng.random() < order_share else rng.choice(READS)
        blocking = rng.random() < 0.5
        with stats.lock:
            stats.calls += 1
        try:
            result = call(ws, blocking)
        except Exception as exc:  # every class is counted; non-bfsync ones fail the run
            stats.outcome(exc)
        else:
            if blocking:
                stats.outcome(None)
            else:
                result.add_done_callback(stats.callback)
                outstanding.append(result)
                with stats.lock:
                    stats.futures_created += 1
        count += 1
        if count % PRUNE_EVERY == 0:
            outstanding = settle(outstanding, stats)
        time.sleep(rng.uniform(0, 0.002))
    with stats.lock:
        stats.unsettled.extend(outstanding)


def settle(futures: list[Future[Any]], stats: Stats) -> list[Future[Any]]:
    """Count the futures that are done; return those still pending."""
    left = []
    for future in futures:
        if future.done():
            with stats.lock:
                stats.futures_settled += 1
            stats.outcome(None if future.cancelled() else future.exception())
        else:
            left.append(future)
    return left


# The faults


def fault_thread(fx: FakeExchange, stats: Stats, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)

    def drop_close() -> None:
        fx.drop_connections(close_frame=True)

    def drop_abort() -> None:
        fx.drop_connections(close_frame=False)

    def stall() -> None:
        fx.stall(1.0)

    def refuse() -> None:
        fx.refuse_handshakes(2)
        fx.drop_connections(close_frame=rng.random() < 0.5)

    def duplicate() -> None:
        fx.duplicate_replies(times=rng.randint(50, 300))

    def garbage() -> None:
        fx.send_garbage(rng.choice(["invalid_json", "binary", "unknown_id", "oversized"]))

    def server_failure() -> None:
        status, code = rng.choice([(503, None), (500, -1006), (400, -1007), (502, None)])
        fx.fail_after_processing("order.place", status=status, code=code, times=rng.randint(3, 20))

    def delay() -> None:
        method = rng.choice(["depth", "ticker.price", "v2/account.balance", "order.place"])
        fx.delay(method, rng.uniform(0.2, 1.0), times=rng.randint(5, 30))

    def hang() -> None:
        fx.hang_handshakes(2)
        fx.drop_connections(close_frame=rng.random() < 0.5)
        stop.wait(rng.uniform(0.5, 2.0))  # reconnections hang meanwhile; deadlines hold
        fx.accept_handshakes()

    def stalled_reader() -> None:
        fx.stall(rng.uniform(1.0, 3.0))  # callers keep sending: buffers fill, deadlines hold

    faults: list[tuple[str, Callable[[], None]]] = [
        ("drop (close frame)", drop_close),
        ("drop (tcp abort)", drop_abort),
        ("stall 1 s", stall),
        ("refuse 2 handshakes", refuse),
        ("duplicate replies", duplicate),
        ("garbage frame", garbage),
        ("delayed replies", delay),
        ("orders placed, answered 5xx", server_failure),
        ("hang 2 handshakes", hang),
        ("stalled reader 1-3 s", stalled_reader),
    ]
    while not stop.wait(rng.uniform(2.0, 4.0)):
        fx.clear_requests()  # the fake records every request: keep its memory flat
        name, inject = rng.choice(faults)
        try:
            inject()
        except Exception as exc:  # a fault that could not be injected is reported, not fatal
            logging.getLogger("soak").error("injecting %s failed: %r", name, exc)
            name += " (failed)"
        with stats.lock:
            stats.faults[name] += 1


# Reporting


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def wait_usable(ws: WebSocketService, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while ws.state not in (State.CONNECTED, State.LOGGED_IN) and time.monotonic() < deadline:
        time.sleep(0.05)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (10)")
    parser.add_argument("--threads", type=int, default=4, help="caller threads (4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--verbose", action="store_true", help="log bfsync's warnings")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also report Python's traced memory (slower)"
    )
    parser.add_argument(
        "--order-share", type=float, default=ORDER_SHARE, help="share of calls that are orders"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.threads < 1:
        parser.error("--minutes must be > 0 and --threads >= 1")
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.ERROR,
        format="%(relativeCreated)9.0f %(threadName)s %(name)s: %(message)s",
    )
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    duration = args.minutes * 60
    if args.tracemalloc:
        tracemalloc.start()
    warmup = min(60.0, duration * 0.2)
    print(f"soak: {args.minutes:g} min, {args.threads} threads, seed {seed}", flush=True)

    snapshots = [Snapshot("start")]
    stats = Stats()
    failures: list[str] = []
    fx = FakeExchange().start()
    keydir = tempfile.TemporaryDirectory(prefix="bfsync-soak-")
    services: list[WebSocketService] = []
    finals: list[tuple[str, ...]] = []
    elapsed = 0.0
    try:
        fx.enforce_rate_limits = False  # the load is far above Binance's 2400 weight a minute
        fx.set_balance("USDT", 10**9)
        hmac_key, secret = fx.add_hmac_key()
        ed_key, ed_path = fx.add_ed25519_key(keydir.name)
        hmac_ws = WebSocketService(hmac_key, secret, config={**CONFIG, "ws_url": fx.url})
        ed_ws = WebSocketService(ed_key, ed_path, config={**CONFIG, "ws_url": fx.url})
        services = [hmac_ws, ed_ws]
        for ws in services:
            ws.connect()
        ed_ws.login()

        stop = threading.Event()
        threads = [
            threading.Thread(
                target=worker,
                args=(services, stats, stop, seed + i, args.order_share),
                name=f"soak-worker-{i}",
            )
            for i in range(args.threads)
        ]
        threads.append(
            threading.Thread(target=fault_thread, args=(fx, stats, stop, seed), name="soak-faults")
        )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        stop.wait(warmup)
        snapshots.append(Snapshot("after warm-up"))
        progress_every = max(10.0, duration / 10)
        while not stop.wait(min(progress_every, max(0.0, started + duration - time.monotonic()))):
            elapsed = time.monotonic() - started
            if elapsed >= duration:
                break
            with stats.lock:
                print(
                    f"  {elapsed:6.0f} s  calls {stats.calls}  ok {stats.successes}  "
                    f"errors {sum(stats.errors.values())}  faults {sum(stats.faults.values())}",
                    file=sys.stderr,
                    flush=True,
                )
        snapshots.append(Snapshot("end of load"))
        stop.set()
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(SETTLE_WAIT)
            if thread.is_alive():
                failures.append(f"thread {thread.name} did not stop")

        # Every future must settle, within request_timeout (and then some).
        fx.clear_faults()
        fx.clear_scripts()
        deadline = time.monotonic() + SETTLE_WAIT
        pending = list(stats.unsettled)
        while pending and time.monotonic() < deadline:
            pending = [f for f in pending if not f.done()]
            time.sleep(0.05)
        stats.unsettled = settle(stats.unsettled, stats)
        if stats.unsettled:
            failures.append(f"{len(stats.unsettled)} futures never settled")
        if stats.futures_created != stats.futures_settled:
            failures.append(
                f"futures created {stats.futures_created} != settled {stats.futures_settled}"
            )
        if stats.unexpected:
            failures.append(f"unexpected exception classes: {dict(stats.unexpected)}")
        if stats.misreported:
            failures.append(f"{stats.misreported} unknown outcomes raised as plain RequestError")

        # The services must still work.
        for name, ws in (("HMAC", hmac_ws), ("Ed25519", ed_ws)):
            wait_usable(ws, SETTLE_WAIT)
            try:
                status = ws.get_ticker_price(SYMBOL)["status"]
                ok = status == 200
            except Exception as exc:
                ok, status = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                failures.append(f"the {name} service does not work at the end: {status}")
            finals.append(
                (
                    name,
                    ws.state.value,
                    str(ws.reconnects),
                    str(ws.rotations),
                    str(ws.pending),
                    "ok" if ok else str(status)[:60],
                )
            )
    finally:
        for ws in services:
            ws.close()
        fx.stop()
        keydir.cleanup()
    time.sleep(0.2)  # let the last exited threads be reaped from threading's table
    snapshots.append(Snapshot("after close"))

    first, last = snapshots[0], snapshots[-1]
    if last.threads > first.threads:
        failures.append(f"threads grew: {first.threads} -> {last.threads} ({last.names})")
    if last.fds > first.fds:
        failures.append(f"file descriptors grew: {first.fds} -> {last.fds}")
    if len(snapshots) == 4:
        warm, end = snapshots[1], snapshots[2]
        if end.threads > warm.threads:
            failures.append(f"threads grew under load: {warm.threads} -> {end.threads}")

    print()
    print(
        table(
            [
                (
                    s.label,
                    str(s.threads),
                    str(s.fds),
                    f"{s.rss:.1f}",
                    "-" if s.traced is None else f"{s.traced:.1f}",
                )
                for s in snapshots
            ],
            ("phase", "threads", "fds", "rss MB", "traced MB"),
        )
    )
    print()
    rows = [
        ("duration", f"{elapsed:.1f} s"),
        ("calls", str(stats.calls)),
        ("calls / s", f"{stats.calls / elapsed:.0f}" if elapsed else "-"),
        ("successes", str(stats.successes)),
        ("futures created", str(stats.futures_created)),
        ("futures settled", str(stats.futures_settled)),
        ("future callbacks run", str(stats.callbacks_run)),
        ("faults injected", str(sum(stats.faults.values()))),
        ("fx connections", str(fx.total_connections)),
        ("fx handshakes refused", str(fx.handshakes_refused)),
        ("fx replies duplicated", str(fx.replies_duplicated)),
    ]
    rows += [(f"  error {name}", str(n)) for name, n in stats.errors.most_common()]
    rows += [(f"  fault {name}", str(n)) for name, n in stats.faults.most_common()]
    print(table(rows, ("measure", "value")))
    print()
    print(table(finals, ("service", "state", "reconnects", "rotations", "pending", "final call")))
    print()
    if failures:
        print("FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("OK: every future settled, only bfsync errors, services working, nothing leaked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
