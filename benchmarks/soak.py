"""
Soak test: bfsync services under continuous load while a fault thread breaks things.

    python benchmarks/soak.py                       # 10 minutes, 4 threads
    python benchmarks/soak.py --minutes 0.2         # a quick check (12 s)
    python benchmarks/soak.py --minutes 1 --threads 8 --seed 7
    python benchmarks/soak.py --minutes 1 --fault rotation --fault stalled   # only these

A FakeExchange runs in this process. Two services connect to it: one signing with HMAC and
pinging every second, one with Ed25519, logged on and pinging every 20 s (so a silent server
is found by its deadlines and its send buffer, not by a missing pong). ``--threads`` threads
make a random mix of calls on both (blocking and futures; reads, and small orders that fill at
once) while a fault thread injects a random fault every few seconds: a drop with or without a
close frame, a 1 s stall, two refused handshakes (with a drop), duplicated replies, a garbage
frame, delayed replies, orders placed but answered 5xx or -1006/-1007 (which must raise
``OrderServerError``, never a plain ``RequestError``), a stalled reader (the server stops
reading for longer than ``request_timeout`` while 1 MB requests fill the send buffers), hung
handshakes met by the reconnection after a drop, and a rotation (``max_connection_age`` is
short) whose new connection hangs.

Every call is put down to the fault injected last before it started ("none" before the
first). Per fault kind the soak reports the calls, the failures and the slowest blocking call
and future (from the call until its done-callback ran); any of them past ``request_timeout``
plus ``--margin`` is a broken promise, and so is any failed call during a hung rotation (the
old connection must serve every call). The order requests the fake received are counted by
client order id: none may arrive twice.

At the end the faults are cleared, every future must have settled, one call on each service
must succeed, and once everything is closed no thread or file descriptor may be left over.
The exit code is 1 if any of that fails, or if a call raised anything that is not a bfsync
``BinanceWebSocketError``. Threads, open file descriptors and RSS are reported at the start,
after warm-up (1 minute or 20 % of the run, whichever is shorter), at their peak under load,
at the end of the load and after closing.
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
# request_timeout 2 s as in issue 9's measurements; max_connection_age short, so that rotations
# are frequent and a hung rotation is met within seconds.
CONFIG: dict[str, Any] = {
    "request_timeout": 2,
    "connection_timeout": 5,
    "reconnect_delay": 0.1,
    "max_reconnect_delay": 1,
    "max_reconnect_attempts": 20,
    "ping_interval": 1,
    "max_connection_age": 6,
}
# The Ed25519 service pings rarely: a stalled server is found by deadlines and the send buffer.
ED25519_CONFIG: dict[str, Any] = {"ping_interval": 20}
MARGIN = 0.75  # how late a deadline may be met on a loaded machine (as tests/ allow)
SETTLE_WAIT = 15.0  # bound on waiting for the last futures (request_timeout is 2 s)
PRUNE_EVERY = 200  # a worker checks its outstanding futures this often
SAMPLE_EVERY = 0.5  # threads and fds are sampled this often under load, for their peak
BIG = "X" * 1_000_000  # a stalled reader's filler: a few of these fill the socket buffers
BIG_CALLS = 24  # fillers per stalled reader (24 MB, more than loopback's buffers take)
# The in-process fake keeps every order it ever took, so orders grow its memory (not bfsync's):
# `--order-share 0` shows bfsync's own footprint.
ORDER_SHARE = 0.1
# Threads that come and go by design: a handshake in progress, the deadline watcher.
TRANSIENT_THREADS = ("bfsync-connect-", "bfsync-deadline")
NO_FAULT = "none"
HUNG_ROTATION = "hung rotation"
SETTLING = HUNG_ROTATION + " (settling)"
RELEASED = HUNG_ROTATION + " (released)"


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


def transient(name: str) -> bool:
    return name.startswith(TRANSIENT_THREADS)


def client_sockets(port: int) -> int:
    """Open sockets of this process connected to ``port`` (bfsync's, not the fake's own)."""
    if not port:
        return 0
    remote: set[str] = set()
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table_path) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:
                remote.add(fields[9])  # the socket's inode
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in remote:
            count += 1
    return count


class Snapshot:
    """Threads, file descriptors and resident memory at one moment."""

    def __init__(self, label: str, port: int = 0) -> None:
        self.label = label
        self.threads = threading.active_count()
        self.fds = open_fds()
        self.sockets = client_sockets(port)
        self.rss = rss_mb()
        # Python objects alive (tracemalloc, when --tracemalloc): what RSS cannot tell apart
        # from the allocator keeping freed memory.
        self.traced = (
            tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else None
        )
        self.names = sorted(t.name for t in threading.enumerate())
        self.lasting = sum(1 for name in self.names if not transient(name))
        self.connecting = sum(1 for name in self.names if name.startswith("bfsync-connect-"))


class Peak:
    """The most threads, handshake threads, fds and bfsync sockets under load; highest RSS."""

    def __init__(self) -> None:
        self.snapshot: Optional[Snapshot] = None
        self.connecting = 0
        self.fds = 0
        self.sockets = 0
        self.rss = 0.0

    def sample(self, port: int) -> None:
        now = Snapshot("peak under load", port)
        if self.snapshot is None or now.threads > self.snapshot.threads:
            self.snapshot = now
        self.connecting = max(self.connecting, now.connecting)
        self.fds = max(self.fds, now.fds)
        self.sockets = max(self.sockets, now.sockets)
        self.rss = max(self.rss, now.rss)


Outstanding = list[tuple[Future[Any], str]]  # a future and the fault kind it is put down to


class Kind:
    """What happened to the calls started while one kind of fault was the latest."""

    def __init__(self) -> None:
        self.injected = 0
        self.calls = 0
        self.failed = 0
        self.blocking = 0
        self.futures = 0
        self.worst_blocking = 0.0
        self.worst_future = 0.0
        self.errors: collections.Counter[str] = collections.Counter()


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
        self.unsettled: Outstanding = []
        self.kind = NO_FAULT  # the fault injected last: calls started now are put down to it
        self.kinds: dict[str, Kind] = collections.defaultdict(Kind)
        self.order_ids: set[str] = set()  # client order ids of order requests the fake got
        self.orders_received = 0
        self.orders_twice: list[str] = []
        self.rotation_windows = 0
        self.rotation_hung = 0  # handshakes hung during those windows
        self.rotation_reconnects = 0  # reconnections during them (their failures are excused)

    def outcome(self, exc: Optional[BaseException], kind: Optional[str] = None) -> None:
        with self.lock:
            if kind is not None and exc is not None:
                self.kinds[kind].failed += 1
                self.kinds[kind].errors[type(exc).__name__.replace("Error", "")] += 1
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

    def started(self, blocking: bool) -> str:
        """Count a call about to start; return the fault kind it is put down to."""
        with self.lock:
            self.calls += 1
            kind = self.kind
            record = self.kinds[kind]
            record.calls += 1
            if blocking:
                record.blocking += 1
            else:
                record.futures += 1
            return kind

    def blocking_took(self, kind: str, seconds: float) -> None:
        with self.lock:
            record = self.kinds[kind]
            record.worst_blocking = max(record.worst_blocking, seconds)

    def track(self, future: Future[Any], kind: str, started: float) -> None:
        """Time ``future`` until its done-callback runs."""

        def done(_: Future[Any]) -> None:
            took = time.monotonic() - started
            with self.lock:
                self.callbacks_run += 1
                record = self.kinds[kind]
                record.worst_future = max(record.worst_future, took)

        future.add_done_callback(done)
        with self.lock:
            self.futures_created += 1

    def inject(self, name: str, first_phase: Optional[str] = None) -> None:
        """Count fault ``name``; calls from now on are put down to it (or ``first_phase``)."""
        with self.lock:
            self.faults[name] += 1
            self.kinds[name].injected += 1
            self.kind = name if first_phase is None else first_phase

    def now_kind(self, name: str) -> None:
        """Put the calls from now on down to ``name`` (a phase of a fault), not counted."""
        with self.lock:
            self.kind = name

    def orders_seen(self, client_ids: Sequence[str]) -> None:
        with self.lock:
            for client_id in client_ids:
                self.orders_received += 1
                if client_id in self.order_ids:
                    self.orders_twice.append(client_id)
                else:
                    self.order_ids.add(client_id)


class LinkLosses(logging.Handler):
    """Counts the reasons bfsync logs for lost links (``bfsync.io`` warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if "lost: " not in str(record.msg) or not isinstance(record.args, tuple):
            return
        reason = str(record.args[-1]).split(" -+-+-")[0]  # no HTTP headers
        self.reasons[": ".join(reason.split(": ")[:2])] += 1


# The load


def worker(
    services: list[WebSocketService],
    stats: Stats,
    stop: threading.Event,
    seed: int,
    order_share: float = ORDER_SHARE,
) -> None:
    rng = random.Random(seed)
    outstanding: Outstanding = []
    count = 0
    while not stop.is_set():
        ws = rng.choice(services)
        _, call = rng.choice(ORDERS) if rng.random() < order_share else rng.choice(READS)
        blocking = rng.random() < 0.5
        kind = stats.started(blocking)
        started = time.monotonic()
        try:
            result = call(ws, blocking)
        except Exception as exc:  # every class is counted; non-bfsync ones fail the run
            if blocking:
                stats.blocking_took(kind, time.monotonic() - started)
            stats.outcome(exc, kind)
        else:
            if blocking:
                stats.blocking_took(kind, time.monotonic() - started)
                stats.outcome(None, kind)
            else:
                stats.track(result, kind, started)
                outstanding.append((result, kind))
        count += 1
        if count % PRUNE_EVERY == 0:
            outstanding = settle(outstanding, stats)
        time.sleep(rng.uniform(0, 0.002))
    with stats.lock:
        stats.unsettled.extend(outstanding)


def settle(futures: Outstanding, stats: Stats) -> Outstanding:
    """Count the futures that are done; return those still pending."""
    left = []
    for future, kind in futures:
        if future.done():
            with stats.lock:
                stats.futures_settled += 1
            stats.outcome(None if future.cancelled() else future.exception(), kind)
        else:
            left.append((future, kind))
    return left


def harvest_orders(fx: FakeExchange, stats: Stats) -> None:
    """Count the order requests the fake received by client order id, then forget them all."""
    orders = fx.requests_for("order.place")
    # The fake records every request: keep its memory flat. (A request that arrives between
    # these two lines is not counted: a window of microseconds, once per fault.)
    fx.clear_requests()
    stats.orders_seen([str(r["params"].get("newClientOrderId")) for r in orders])


# The faults


def until(predicate: Callable[[], bool], timeout: float, stop: threading.Event) -> bool:
    """Poll ``predicate`` until it holds (True), ``timeout`` passes or ``stop`` is set."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline or stop.wait(0.02):
            return False
    return True


def usable(ws: WebSocketService) -> bool:
    return ws.state in (State.CONNECTED, State.LOGGED_IN)


def fault_thread(
    fx: FakeExchange,
    services: list[WebSocketService],
    stats: Stats,
    stop: threading.Event,
    seed: int,
    only: Sequence[str] = (),
) -> None:
    rng = random.Random(seed)
    timeout = float(CONFIG["request_timeout"])
    outstanding: Outstanding = []  # the stalled reader's fillers

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
        # The reconnection after the drop meets handshakes that are never answered: held
        # until bfsync gives up on them (connection_timeout) or they are answered 503.
        fx.hang_handshakes(rng.choice([2, 4]))
        fx.drop_connections(close_frame=rng.random() < 0.5)
        stop.wait(rng.uniform(0.5, CONFIG["connection_timeout"] + 1.5))
        fx.accept_handshakes()

    def stalled_reader() -> None:
        # Longer than request_timeout, and 1 MB requests on top of the callers' own on the
        # service that pings rarely: the server's receive buffer and bfsync's send buffer
        # fill, the link is lost when its buffer has not moved for request_timeout (2 s).
        fx.stall(rng.uniform(timeout + 1, 2 * timeout + 2))
        for ws in services:
            if ws.config.ping_interval < timeout:
                continue  # its missing pong ends the link first: no need to fill its buffer
            for _ in range(BIG_CALLS):
                kind = stats.started(blocking=False)
                started = time.monotonic()
                try:
                    future = ws.get_ticker_price(BIG, wait_for_response=False)
                except Exception as exc:
                    stats.outcome(exc, kind)
                else:
                    stats.track(future, kind, started)
                    outstanding.append((future, kind))

    def hung_rotation() -> None:
        # Every handshake hangs while the services' links reach max_connection_age: their
        # rotations hang, and the old links must serve every call meanwhile.
        fx.clear_scripts()
        fx.clear_faults()
        until(lambda: all(usable(ws) for ws in services), CONFIG["connection_timeout"], stop)
        hung, reconnects = fx.handshakes_hung, [ws.reconnects for ws in services]
        rotations = [ws.rotations for ws in services]
        fx.hang_handshakes()
        stats.now_kind(HUNG_ROTATION)
        until(
            lambda: fx.handshakes_hung >= hung + len(services),
            CONFIG["max_connection_age"] + 1.0,
            stop,
        )
        stop.wait(rng.uniform(1.0, 3.0))  # the rotations hang a while longer
        fx.accept_handshakes()  # hung ones are answered 503, the next attempts succeed
        until(lambda: all(ws.rotations > n for ws, n in zip(services, rotations)), 3.0, stop)
        stats.now_kind(RELEASED)
        with stats.lock:
            stats.rotation_windows += 1
            stats.rotation_hung += fx.handshakes_hung - hung
            stats.rotation_reconnects += sum(
                ws.reconnects - n for ws, n in zip(services, reconnects)
            )
        stop.wait(timeout)  # the window's last calls end before the next fault

    faults: list[tuple[str, Callable[[], None]]] = [
        ("drop (close frame)", drop_close),
        ("drop (tcp abort)", drop_abort),
        ("stall 1 s", stall),
        ("refuse 2 handshakes", refuse),
        ("duplicate replies", duplicate),
        ("garbage frame", garbage),
        ("delayed replies", delay),
        ("orders placed, answered 5xx", server_failure),
        ("hung handshakes after a drop", hang),
        (f"stalled reader {timeout + 1:g}-{2 * timeout + 2:g} s", stalled_reader),
        (HUNG_ROTATION, hung_rotation),
    ]
    if only:
        faults = [(n, f) for n, f in faults if any(o in n for o in only)] or faults
    while not stop.wait(rng.uniform(2.0, 4.0)):
        harvest_orders(fx, stats)
        name, inject = rng.choice(faults)
        # A hung rotation first lets the last fault's effects pass ("settling").
        stats.inject(name, SETTLING if name == HUNG_ROTATION else None)
        try:
            inject()
        except Exception as exc:  # a fault that could not be injected is reported, not fatal
            logging.getLogger("soak").error("injecting %s failed: %r", name, exc)
            with stats.lock:
                stats.faults[name + " (failed)"] += 1
    with stats.lock:
        stats.unsettled.extend(outstanding)


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
    parser.add_argument(
        "--margin",
        type=float,
        default=MARGIN,
        help=f"seconds a call may end past request_timeout ({MARGIN:g})",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        help="inject only the faults whose name contains this (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.threads < 1 or args.margin < 0:
        parser.error("--minutes must be > 0, --threads >= 1 and --margin >= 0")
    logging.basicConfig(
        level=logging.WARNING,
        format="%(relativeCreated)9.0f %(threadName)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:  # warnings are counted, printed if --verbose
        handler.setLevel(logging.WARNING if args.verbose else logging.ERROR)
    losses = LinkLosses()
    logging.getLogger("bfsync.io").addHandler(losses)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    duration = args.minutes * 60
    if args.tracemalloc:
        tracemalloc.start()
    warmup = min(60.0, duration * 0.2)
    bound = CONFIG["request_timeout"] + args.margin
    print(
        f"soak: {args.minutes:g} min, {args.threads} threads, seed {seed}, "
        f"request_timeout {CONFIG['request_timeout']:g} s, margin {args.margin:g} s",
        flush=True,
    )

    snapshots = [Snapshot("start")]
    peak = Peak()
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
        ed_ws = WebSocketService(
            ed_key, ed_path, config={**CONFIG, **ED25519_CONFIG, "ws_url": fx.url}
        )
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
            threading.Thread(
                target=fault_thread,
                args=(fx, services, stats, stop, seed, args.fault),
                name="soak-faults",
            )
        )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        progress_every = max(10.0, duration / 10)
        next_progress = started + progress_every
        warm = False
        while not stop.wait(SAMPLE_EVERY):
            now = time.monotonic()
            elapsed = now - started
            if not warm and elapsed >= warmup:
                snapshots.append(Snapshot("after warm-up", fx.port))
                warm = True
            peak.sample(fx.port)
            if elapsed >= duration:
                break
            if now >= next_progress:
                next_progress += progress_every
                with stats.lock:
                    print(
                        f"  {elapsed:6.0f} s  calls {stats.calls}  ok {stats.successes}  "
                        f"errors {sum(stats.errors.values())}  faults {sum(stats.faults.values())}",
                        file=sys.stderr,
                        flush=True,
                    )
        snapshots.append(Snapshot("end of load", fx.port))
        stop.set()
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(SETTLE_WAIT)
            if thread.is_alive():
                failures.append(f"thread {thread.name} did not stop")
        harvest_orders(fx, stats)

        # Every future must settle, within request_timeout (and then some).
        fx.clear_faults()
        fx.clear_scripts()
        deadline = time.monotonic() + SETTLE_WAIT
        pending = [future for future, _ in stats.unsettled]
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
        if stats.orders_twice:
            failures.append(
                f"{len(stats.orders_twice)} orders reached the fake twice, e.g. "
                f"{stats.orders_twice[:3]}"
            )
        for kind, record in sorted(stats.kinds.items()):
            if record.worst_blocking > bound:
                failures.append(
                    f"{kind}: a blocking call took {record.worst_blocking:.2f} s "
                    f"(request_timeout {CONFIG['request_timeout']:g} s + {args.margin:g})"
                )
            if record.worst_future > bound:
                failures.append(
                    f"{kind}: a future settled after {record.worst_future:.2f} s "
                    f"(request_timeout {CONFIG['request_timeout']:g} s + {args.margin:g})"
                )
        rotation_failed = stats.kinds[HUNG_ROTATION].failed if HUNG_ROTATION in stats.kinds else 0
        if rotation_failed:
            failures.append(
                f"{rotation_failed} calls failed while a rotation hung (the old link must "
                f"serve them; {stats.rotation_reconnects} reconnections in those windows)"
            )

        # The services must still work.
        for name, ws in (("HMAC", hmac_ws), ("Ed25519", ed_ws)):
            wait_usable(ws, SETTLE_WAIT)
            status: Any
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
    # Let the last exited threads be reaped from threading's table (bounded).
    first = snapshots[0]
    after_close = time.monotonic() + 3.0
    while time.monotonic() < after_close:
        time.sleep(0.1)
        if threading.active_count() <= first.threads and open_fds() <= first.fds:
            break
    snapshots.append(Snapshot("after close"))

    last = snapshots[-1]
    if last.threads > first.threads:
        failures.append(f"threads grew: {first.threads} -> {last.threads} ({last.names})")
    if last.fds > first.fds:
        failures.append(f"file descriptors grew: {first.fds} -> {last.fds}")
    if len(snapshots) == 4:
        warm_snap, end = snapshots[1], snapshots[2]
        if end.lasting > warm_snap.lasting:  # handshakes and the deadline watcher come and go
            failures.append(
                f"threads grew under load: {warm_snap.lasting} -> {end.lasting} ({end.names})"
            )
    # Per service: the current link, a draining one after a rotation, a handshake in progress.
    if peak.sockets > 3 * len(services):
        failures.append(
            f"bfsync held {peak.sockets} sockets at once for {len(services)} services (at "
            "most 3 each: current, draining, handshake)"
        )
    if stats.rotation_windows and not stats.rotation_hung:
        print("WARNING: no rotation met a hung handshake", file=sys.stderr)

    print()
    rows_snap = [
        (
            s.label,
            str(s.threads),
            str(s.connecting),
            str(s.fds),
            str(s.sockets),
            f"{s.rss:.1f}",
            "-" if s.traced is None else f"{s.traced:.1f}",
        )
        for s in snapshots
    ]
    if peak.snapshot is not None:
        rows_snap.insert(
            -2,
            (
                "peak under load",
                str(peak.snapshot.threads),
                str(peak.connecting),
                str(peak.fds),
                str(peak.sockets),
                f"{peak.rss:.1f}",
                "-",
            ),
        )
    print(
        table(
            rows_snap,
            ("phase", "threads", "handshaking", "fds", "bfsync sockets", "rss MB", "traced MB"),
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
        ("fx handshakes hung", str(fx.handshakes_hung)),
        ("fx replies duplicated", str(fx.replies_duplicated)),
        ("orders received by the fake", str(stats.orders_received)),
        ("  client order ids twice", str(len(stats.orders_twice))),
        ("hung rotation windows", str(stats.rotation_windows)),
        ("  handshakes hung in them", str(stats.rotation_hung)),
        ("  reconnections in them", str(stats.rotation_reconnects)),
    ]
    rows += [(f"  error {name}", str(n)) for name, n in stats.errors.most_common()]
    rows += [(f"  link lost: {why}", str(n)) for why, n in losses.reasons.most_common()]
    print(table(rows, ("measure", "value")))
    print()
    kinds = sorted(stats.kinds.items(), key=lambda item: (item[0] != NO_FAULT, item[0]))
    print(
        table(
            [
                (
                    kind,
                    str(r.injected),
                    str(r.calls),
                    str(r.failed),
                    f"{r.worst_blocking:.2f}",
                    f"{r.worst_future:.2f}",
                    " ".join(f"{name} {n}" for name, n in r.errors.most_common(3)),
                )
                for kind, r in kinds
            ],
            (
                "calls after fault",
                "injected",
                "calls",
                "failed",
                "worst call s",
                "worst future s",
                "failed as (most)",
            ),
        )
    )
    print(f"(bound: request_timeout {CONFIG['request_timeout']:g} s + {args.margin:g} s)")
    print()
    print(table(finals, ("service", "state", "reconnects", "rotations", "pending", "final call")))
    print()
    if failures:
        print("FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(
        "OK: every future settled, every deadline held, no order sent twice, only bfsync "
        "errors, services working, nothing leaked"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
