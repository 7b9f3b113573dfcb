"""
bfsync benchmarks: one command, one local ws-fapi server in a separate process, one table.

    python -m pip install -e '.[testing]' -r benchmarks/requirements.txt
    python benchmarks/run.py            # the full run (about 2-3 minutes on 2 cores)
    python benchmarks/run.py --quick    # every section with tiny counts (CI: a few seconds)

Every latency case runs in blocks of ``--block`` calls, the cases in a shuffled order each
round, so that drift of the machine hits every case alike; ratios are against the raw
websocket-client round trip (latency) or raw pipelining (throughput) of the same run.
See benchmarks/README.md for what each row means. Figures also go to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
SYMBOL = "BTCUSDT"
API_KEY = "benchmark-api-key"
# A dummy secret for a local server, in the form of Binance's (64 letters and digits).
HMAC_SECRET = "BenchmarkHmacSecret000000000000000000000000000000000000000000000"  # noqa: S105
WS_PATH = "/ws-fapi/v1"

perf_ns = time.perf_counter_ns

# calls, elapsed ns, samples (ns; one per call, or one per batch: its time per request)
Block = tuple[int, int, list[float]]


# The server process


class ServerProcess:
    """benchmarks/server.py in a subprocess; stopped at exit whatever happens."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, no shell
            [sys.executable, str(HERE / "server.py"), "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        atexit.register(self.stop)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"benchmarks/server.py did not print its port (got {line!r})")
        self.port = int(line)
        self.url = f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def stop(self) -> None:
        proc = self.proc
        if proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # the server exits on EOF
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# Statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


@dataclass
class Case:
    """One row: ``run(n)`` makes about ``n`` calls and returns a ``Block``."""

    key: str
    label: str
    run: Callable[[int], Block]
    batch: int = 1  # requests per sample (1: each sample is one call)
    block: int = 0  # calls per block; 0: the run's --block
    calls: int = 0
    elapsed_ns: int = 0
    samples: list[float] = field(default_factory=list)
    block_rates: list[float] = field(default_factory=list)

    def record(self, result: Block) -> None:
        calls, elapsed, samples = result
        self.calls += calls
        self.elapsed_ns += elapsed
        self.samples.extend(samples)
        self.block_rates.append(calls / (elapsed / 1e9))

    def summary(self) -> dict[str, Any]:
        values = sorted(self.samples)
        return {
            "label": self.label,
            "n": self.calls,
            "samples": len(values),
            "per": "call" if self.batch == 1 else f"request (mean of batches of {self.batch})",
            "median_us": statistics.median(values) / 1e3,
            "p99_us": percentile(values, 99) / 1e3,
            "mean_us": statistics.fmean(values) / 1e3,
            "min_us": values[0] / 1e3,
            "calls_per_s_median": statistics.median(self.block_rates),
            "calls_per_s_overall": self.calls / (self.elapsed_ns / 1e9),
        }


# Raw websocket-client: the baseline


class RawClient:
    """The least a client must do: encode a frame, send it, read the reply, decode it."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws: Any = websocket.create_connection(
            url, skip_utf8_validation=True, enable_multithread=False
        )
        self.next_id = 0
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def _frame(self) -> tuple[int, str]:
        self.next_id += 1
        request_id = self.next_id
        text = self._dumps(
            {"id": request_id, "method": "ticker.price", "params": {"symbol": SYMBOL}}
        )
        return request_id, text

    def _read(self, request_id: int) -> None:
        reply = json.loads(self.ws.recv())
        if reply["id"] != request_id or reply["status"] != 200:
            raise RuntimeError(f"raw client: unexpected reply {reply!r}")

    def sequential(self, n: int) -> Block:
        samples: list[float] = []
        send, frame, read = self.ws.send, self._frame, self._read
        start = perf_ns()
        for _ in range(n):
            t0 = perf_ns()
            request_id, text = frame()
            send(text)
            read(request_id)
            samples.append(perf_ns() - t0)
        return n, perf_ns() - start, samples

    def pipelined(self, n: int, depth: int) -> Block:
        samples: list[float] = []
        send, frame, read = self.ws.send, self._frame, self._read
        batches = max(1, n // depth)
        start = perf_ns()
        for _ in range(batches):
            t0 = perf_ns()
            ids = []
            for _ in range(depth):
                request_id, text = frame()
                send(text)
                ids.append(request_id)
            for request_id in ids:
                read(request_id)
            samples.append((perf_ns() - t0) / depth)
        return batches * depth, perf_ns() - start, samples

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close(timeout=1)


# bfsync


def timed_calls(call: Callable[[], Any], n: int) -> Block:
    samples: list[float] = []
    start = perf_ns()
    for _ in range(n):
        t0 = perf_ns()
        call()
        samples.append(perf_ns() - t0)
    return n, perf_ns() - start, samples


def bfsync_futures(service: Any, n: int, depth: int) -> Block:
    samples: list[float] = []
    submit = service.get_ticker_price
    batches = max(1, n // depth)
    start = perf_ns()
    for _ in range(batches):
        t0 = perf_ns()
        futures = [submit(SYMBOL, wait_for_response=False) for _ in range(depth)]
        for future in futures:
            future.result(30)
        samples.append((perf_ns() - t0) / depth)
    return batches * depth, perf_ns() - start, samples


class ThreadTeam:
    """``k`` threads that each make blocking calls when told to, between two barriers."""

    def __init__(self, k: int, call: Callable[[], Any]) -> None:
        self.k = k
        self.call = call
        self.per_thread = 1
        self.results: list[list[float]] = [[] for _ in range(k)]
        self.errors: list[BaseException] = []
        self.stopping = False
        self.start = threading.Barrier(k + 1)
        self.done = threading.Barrier(k + 1)
        self.threads = [
            threading.Thread(
                target=self._work, args=(i,), name=f"bench-caller-{k}-{i}", daemon=True
            )
            for i in range(k)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self, index: int) -> None:
        call = self.call
        while True:
            self.start.wait()
            if self.stopping:
                return
            samples: list[float] = []
            try:
                for _ in range(self.per_thread):
                    t0 = perf_ns()
                    call()
                    samples.append(perf_ns() - t0)
            except BaseException as exc:
                self.errors.append(exc)
            self.results[index] = samples
            self.done.wait()

    def run(self, n: int) -> Block:
        self.per_thread = max(1, n // self.k)
        t0 = perf_ns()
        self.start.wait(120)
        self.done.wait(300)
        elapsed = perf_ns() - t0
        if self.errors:
            raise RuntimeError(f"a caller thread failed: {self.errors[0]!r}") from self.errors[0]
        samples = [s for result in self.results for s in result]
        return self.per_thread * self.k, elapsed, samples

    def close(self) -> None:
        self.stopping = True
        try:
            self.start.wait(5)
        except threading.BrokenBarrierError:
            return  # interrupted mid-block: the threads are daemons, leave them
        for thread in self.threads:
            thread.join(5)


def make_ed25519_key(directory: str) -> str:
    """A fresh Ed25519 key as an unencrypted PKCS#8 PEM file; returns its path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = os.path.join(directory, "ed25519.pem")
    with open(path, "wb") as f:
        f.write(pem)
    return path


def bfsync_service(url: str, key: str) -> Any:
    import bfsync

    service = bfsync.WebSocketService(API_KEY, key, config={"ws_url": url})
    service.connect()
    return service


def check_reply(reply: Any, what: str) -> None:
    if not isinstance(reply, dict) or reply.get("status") != 200:
        raise RuntimeError(f"{what}: unexpected reply {reply!r}")


# binance-futures-async


def async_lib_problem() -> Optional[str]:
    """Why binance-futures-async cannot be benchmarked, or None."""
    try:
        import aiohttp  # noqa: F401
        import binance_futures_async  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def bfa_service(url: str) -> Any:
    from binance_futures_async.client import DEFAULT_WEBSOCKET_CONFIG
    from binance_futures_async.websocket_api.websocket_service import WebSocketService

    # Its connection check reconnects when no server ping came for ping_interval + 10 s;
    # the benchmark server sends no pings, so push that past the length of the run.
    config = {**DEFAULT_WEBSOCKET_CONFIG, "ping_interval": 24 * 3600}
    service = WebSocketService(API_KEY, HMAC_SECRET, config=config)
    service.ws_manager.base_url = url  # hard-coded to Binance's; it appends ?returnRateLimits
    await service.connect()
    return service


async def cancel_other_tasks() -> None:
    """binance-futures-async's reader and checker tasks never end; cancel them."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class LoopThread:
    """An asyncio event loop running forever in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="bfa-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self, service: Any) -> None:
        with contextlib.suppress(Exception):
            self.call(service.close(), 10)
        with contextlib.suppress(Exception):
            self.call(cancel_other_tasks(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def bfa_threaded(loop_thread: LoopThread, service: Any, n: int) -> Block:
    loop = loop_thread.loop
    call = service.get_ticker_price
    run = asyncio.run_coroutine_threadsafe
    samples: list[float] = []
    start = perf_ns()
    for _ in range(n):
        t0 = perf_ns()
        run(call(SYMBOL), loop).result(30)
        samples.append(perf_ns() - t0)
    return n, perf_ns() - start, samples


async def bfa_sequential(service: Any, n: int) -> Block:
    call = service.get_ticker_price
    samples: list[float] = []
    start = perf_ns()
    for _ in range(n):
        t0 = perf_ns()
        await call(SYMBOL)
        samples.append(perf_ns() - t0)
    return n, perf_ns() - start, samples


async def bfa_gather(service: Any, n: int, depth: int) -> Block:
    call = service.get_ticker_price
    samples: list[float] = []
    batches = max(1, n // depth)
    start = perf_ns()
    for _ in range(batches):
        t0 = perf_ns()
        await asyncio.gather(*(call(SYMBOL) for _ in range(depth)))
        samples.append((perf_ns() - t0) / depth)
    return batches * depth, perf_ns() - start, samples


# Import time, memory, profile


_IMPORT_PROBE = """\
import time
def rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1
r = rss()
t = time.perf_counter()
import {module}
t = time.perf_counter() - t
print(t, rss() - r if r >= 0 else -1)
"""


# Bytecode may be cached, as on a user's machine: PYTHONDONTWRITEBYTECODE (set on some of
# these machines) would make every fresh process compile bfsync from source, while packages
# installed from wheels have their .pyc files already.
_IMPORT_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def import_cost(module: str) -> tuple[float, Optional[int]]:
    """Seconds to import ``module`` in a fresh process, and the RSS it added (KiB)."""
    out = subprocess.run(  # noqa: S603 - our own interpreter, no shell
        [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parent,
        env=_IMPORT_ENV,
    )
    seconds, rss_kib = out.stdout.split()
    return float(seconds), (int(rss_kib) if int(rss_kib) >= 0 else None)


def importtime_breakdown(module: str, top: int) -> dict[str, Any]:
    """
    ``python -X importtime -c 'import module'``: the module's cumulative time and the
    biggest outermost modules from outside its package that it pulls in.
    """
    out = subprocess.run(  # noqa: S603 - our own interpreter, no shell
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE.parent,
        env=_IMPORT_ENV,
    )
    rows: list[tuple[str, int, float]] = []  # name, depth, cumulative ms (post-order)
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        try:
            cumulative_us = int(parts[1])
        except ValueError:
            continue  # the header line
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((name.strip(), depth, cumulative_us / 1e3))
    # The target is the last depth-0 entry of that name; its descendants come just before it.
    target = max(i for i, (name, depth, _) in enumerate(rows) if depth == 0 and name == module)
    first = target
    while first > 0 and rows[first - 1][1] > 0:
        first -= 1
    package = module.split(".")[0]

    def own(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    biggest: list[dict[str, Any]] = []
    # Walk from the root down (reverse post-order); keep foreign entries whose ancestors
    # between them and the target are all the package's own modules.
    ancestors: list[tuple[int, bool]] = []  # (depth, is foreign) of the open chain
    for name, depth, cumulative in reversed(rows[first:target]):
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        foreign = not own(name)
        if foreign and not any(f for _, f in ancestors):
            biggest.append({"module": name, "cumulative_ms": cumulative})
        ancestors.append((depth, foreign))
    biggest.sort(key=lambda r: -r["cumulative_ms"])
    return {"cumulative_ms": rows[target][2], "biggest_dependencies": biggest[:top]}


def measure_imports(modules: list[str], runs: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {m: [] for m in modules}
    rss: dict[str, list[int]] = {m: [] for m in modules}
    for module in modules:
        import_cost(module)  # once unmeasured, to write bytecode caches
    for _ in range(runs):
        for module in modules:  # round robin, so drift hits each alike
            seconds, rss_kib = import_cost(module)
            times[module].append(seconds)
            if rss_kib is not None:
                rss[module].append(rss_kib)
    result: dict[str, Any] = {}
    for module in modules:
        values = sorted(times[module])
        result[module] = {
            "runs": runs,
            "median_ms": statistics.median(values) * 1e3,
            "min_ms": values[0] * 1e3,
            "max_ms": values[-1] * 1e3,
            "rss_added_kib": statistics.median(rss[module]) if rss[module] else None,
            "importtime": importtime_breakdown(module, 6),
        }
    return result


def run_memory(url: str, calls: int, trace: bool) -> dict[str, Any]:
    """benchmarks/memory.py in a fresh process."""
    args = [sys.executable, str(HERE / "memory.py"), url, "--calls", str(calls)]
    args += ["--tracemalloc"] if trace else []
    out = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"benchmarks/memory.py failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_profile(url: str, key_path: str, n: int, top: int) -> dict[str, Any]:
    """cProfile of n blocking bfsync calls: the caller's thread and bfsync's I/O thread."""
    import cProfile
    import io
    import pstats

    io_profiles: list[cProfile.Profile] = []

    def hook(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if threading.current_thread().name.startswith("bfsync-io"):
            profiler = cProfile.Profile()
            io_profiles.append(profiler)
            profiler.enable()

    threading.setprofile(hook)
    try:
        service = bfsync_service(url, HMAC_SECRET)
        ed_service = bfsync_service(url, key_path)
    finally:
        threading.setprofile(None)
    ed_service.login()
    caller = cProfile.Profile()
    caller.enable()
    for _ in range(n):
        service.get_ticker_price(SYMBOL)
        service.get_account_balance()
        ed_service.get_account_balance()
    caller.disable()
    service.close()
    ed_service.close()

    def text(profiler: cProfile.Profile) -> str:
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats("tottime").print_stats(top)
        return buffer.getvalue()

    return {
        "calls": 3 * n,
        "what": "per round: get_ticker_price, get_account_balance (HMAC), "
        "get_account_balance (Ed25519 after login)",
        "caller_thread": text(caller),
        "io_threads": [text(p) for p in io_profiles],
    }


# The run


@dataclass
class Settings:
    n: int
    block: int
    pipeline: int
    inflight: int
    threads: list[int]
    mem_calls: int
    import_runs: int
    seed: int


def build_cases(
    settings: Settings,
    url: str,
    key_path: str,
    with_async: bool,
    cleanups: list[Callable[[], None]],
) -> list[Case]:
    raw = RawClient(url)
    cleanups.append(raw.close)
    raw_pipe = RawClient(url)
    cleanups.append(raw_pipe.close)
    hmac_svc = bfsync_service(url, HMAC_SECRET)
    cleanups.append(hmac_svc.close)
    ed_svc = bfsync_service(url, key_path)
    cleanups.append(ed_svc.close)
    check_reply(ed_svc.login(), "bfsync login()")
    if str(ed_svc.state) != "logged_in":
        raise RuntimeError(f"bfsync Ed25519 service is {ed_svc.state} after login()")
    check_reply(hmac_svc.get_ticker_price(SYMBOL), "bfsync get_ticker_price")
    check_reply(hmac_svc.get_account_balance(), "bfsync get_account_balance (HMAC)")
    check_reply(ed_svc.get_account_balance(), "bfsync get_account_balance (Ed25519)")

    depth, inflight = settings.pipeline, settings.inflight
    ticker = hmac_svc.get_ticker_price
    cases = [
        Case("raw", "raw websocket-client, round trip", raw.sequential),
        Case(
            "raw_pipelined",
            f"raw websocket-client, pipelined x{depth}",
            lambda n: raw_pipe.pipelined(n, depth),
            batch=depth,
        ),
        Case(
            "bfsync_ticker",
            "bfsync get_ticker_price (unsigned)",
            lambda n: timed_calls(lambda: ticker(SYMBOL), n),
        ),
        Case(
            "bfsync_hmac",
            "bfsync get_account_balance (HMAC)",
            lambda n: timed_calls(hmac_svc.get_account_balance, n),
        ),
        Case(
            "bfsync_ed25519",
            "bfsync get_account_balance (Ed25519)",
            lambda n: timed_calls(ed_svc.get_account_balance, n),
        ),
        Case(
            "bfsync_futures",
            f"bfsync futures, {inflight} in flight",
            lambda n: bfsync_futures(hmac_svc, n, inflight),
            batch=inflight,
        ),
    ]
    for k in settings.threads:
        team = ThreadTeam(k, lambda: ticker(SYMBOL))
        cleanups.append(team.close)
        cases.append(
            Case(
                f"bfsync_threads_{k}",
                f"bfsync {k} thread{'s' if k > 1 else ''}, blocking",
                team.run,
                block=max(settings.block, 25 * k),
            )
        )
    if with_async:
        loop_thread = LoopThread()
        threaded_svc = loop_thread.call(bfa_service(url))
        cleanups.append(lambda: loop_thread.close(threaded_svc))
        own_loop = asyncio.new_event_loop()
        loop_svc = own_loop.run_until_complete(bfa_service(url))

        def close_own_loop() -> None:
            with contextlib.suppress(Exception):
                own_loop.run_until_complete(loop_svc.close())
            own_loop.run_until_complete(cancel_other_tasks())
            own_loop.close()

        cleanups.append(close_own_loop)
        check_reply(
            loop_thread.call(threaded_svc.get_ticker_price(SYMBOL)), "binance-futures-async"
        )
        cases += [
            Case(
                "bfa_thread",
                "bfa via run_coroutine_threadsafe",
                lambda n: bfa_threaded(loop_thread, threaded_svc, n),
            ),
            Case(
                "bfa_loop",
                "bfa in its own loop, await",
                lambda n: own_loop.run_until_complete(bfa_sequential(loop_svc, n)),
            ),
            Case(
                "bfa_gather",
                f"bfa in its own loop, gather x{inflight}",
                lambda n: own_loop.run_until_complete(bfa_gather(loop_svc, n, inflight)),
                batch=inflight,
            ),
        ]
    for case in cases:
        if not case.block:
            case.block = settings.block
    return cases


def run_interleaved(cases: list[Case], settings: Settings, progress: bool) -> int:
    """Warm up, then rounds of one block per case in a shuffled order; returns the rounds."""
    rng = random.Random(settings.seed)
    for case in cases:
        case.run(min(case.block, 50 * case.batch))  # warm-up, discarded
    rounds = max(1, math.ceil(settings.n / settings.block))
    next_report = time.monotonic() + 10
    for r in range(rounds):
        order = cases[:]
        rng.shuffle(order)
        for case in order:
            case.record(case.run(case.block))
        if progress and time.monotonic() >= next_report:
            print(f"  ... round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            next_report = time.monotonic() + 10
    return rounds


def versions() -> dict[str, Optional[str]]:
    from importlib import metadata

    def version(dist: str) -> Optional[str]:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    names = ("bfsync", "websocket-client", "websockets", "binance-futures-async", "aiohttp")
    return {dist: version(dist) for dist in names}


def fmt_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned, the rest right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    meta = results["meta"]
    s = results["settings"]
    v = meta["versions"]
    out.append(
        f"bfsync {v['bfsync']} benchmarks: Python {meta['python']} on {meta['platform']}, "
        f"{meta['cpus']} CPUs; websocket-client {v['websocket-client']}, "
        f"server: websockets {v['websockets']} in pid {meta['server_pid']}"
    )
    out.append(
        f"{s['n']} calls per case in {meta['rounds']} rounds of one block ({s['block']} calls) "
        f"per case, shuffled each round; {meta['latency_seconds']:.1f} s"
    )
    out.append("")
    raw = results["latency"]["raw"]
    rows = []
    for item in results["latency"].values():
        label = item["label"] + ("" if item["per"] == "call" else " *")
        rows.append(
            [
                label,
                str(item["n"]),
                f"{item['median_us']:.1f}",
                f"{item['p99_us']:.1f}",
                f"{item['median_us'] / raw['median_us']:.2f}",
            ]
        )
    out.append("LATENCY")
    out.append(fmt_table(["case", "n", "median µs", "p99 µs", "ratio to raw (median)"], rows))
    out.append("  * time per request: a batch's time / its size (median and p99 over batches)")
    out.append("")
    base = results["throughput"]["raw_pipelined"]["calls_per_s_median"]
    rows = [
        [
            item["label"],
            f"{item['calls_per_s_median']:,.0f}",
            f"{item['calls_per_s_median'] / base:.2f}",
        ]
        for item in results["throughput"].values()
    ]
    out.append("THROUGHPUT (calls/s: median over blocks)")
    out.append(fmt_table(["case", "calls/s", "ratio to raw pipelined"], rows))
    out.append("")
    out.append(f"IMPORT TIME (fresh process each, median of {s['import_runs']})")
    imports = results["imports"]
    rows = [
        [
            m,
            f"{i['median_ms']:.1f}",
            f"{i['min_ms']:.1f}",
            f"{i['max_ms']:.1f}",
            "?" if i["rss_added_kib"] is None else f"{i['rss_added_kib'] / 1024:.1f}",
        ]
        for m, i in imports.items()
    ]
    out.append(fmt_table(["import", "median ms", "min ms", "max ms", "RSS added MiB"], rows))
    if "bfsync" in imports and "binance_futures_async" in imports:
        ratio = imports["bfsync"]["median_ms"] / imports["binance_futures_async"]["median_ms"]
        out.append(f"  bfsync / binance_futures_async: {ratio:.2f}")
    for module in ("bfsync", "binance_futures_async"):
        if module in imports:
            detail = imports[module]["importtime"]
            deps = ", ".join(
                f"{d['module']} {d['cumulative_ms']:.1f}" for d in detail["biggest_dependencies"]
            )
            out.append(
                f"  -X importtime {module} ({detail['cumulative_ms']:.1f} ms in one run); "
                f"biggest imports from outside it (ms): {deps}"
            )
    out.append("")
    memory = results["memory"]
    out.append(f"MEMORY AND THREADS (fresh process, {memory['calls']} blocking bfsync calls)")
    rows = [
        [
            p["at"],
            f"{p['rss_kib'] / 1024:.1f}",
            f"{p['peak_rss_kib'] / 1024:.1f}",
            str(p["os_threads"]),
            str(p["python_threads"]),
        ]
        for p in memory["points"]
    ]
    out.append(fmt_table(["at", "RSS MiB", "peak MiB", "OS threads", "Python threads"], rows))
    by_at = {p["at"]: p for p in memory["points"]}
    warm = next(p for p in memory["points"] if "warm-up" in p["at"])
    end = by_at[f"after {memory['calls']} calls"]
    grown = end["rss_kib"] - warm["rss_kib"]
    out.append(
        f"  RSS growth after warm-up: {grown:+d} KiB; "
        f"{memory['calls_per_s_after_warmup'] or 0:,.0f} calls/s; "
        f"pending after the calls: {memory['pending_after_calls']}"
    )
    out.extend(f"  tracemalloc: {line}" for line in memory.get("tracemalloc_top", []))
    if results["skipped"]:
        out.append("")
        out.extend(f"SKIPPED: {what}" for what in results["skipped"])
    return "\n".join(out)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark bfsync against raw websocket-client and binance-futures-async."
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, every section (CI)")
    parser.add_argument("--n", type=int, help="calls per latency case (default 30000; quick 300)")
    parser.add_argument("--block", type=int, help="calls per block (default 200; quick 100)")
    parser.add_argument("--pipeline", type=int, help="raw pipelining depth (default 100)")
    parser.add_argument("--inflight", type=int, help="futures in flight (default 100)")
    parser.add_argument(
        "--threads", default="1,4,16", help="caller thread counts, comma-separated (1,4,16)"
    )
    parser.add_argument(
        "--mem-calls", type=int, help="calls for memory/threads (default 100000; quick 2000)"
    )
    parser.add_argument("--import-runs", type=int, help="fresh processes per import (default 9)")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations (slower)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile N rounds of the three bfsync blocking calls (caller and I/O thread)",
    )
    parser.add_argument("--skip-async", action="store_true", help="leave out binance-futures-async")
    parser.add_argument("--seed", type=int, default=1, help="seed of the block order")
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results.json",
        help="where to write every figure (default benchmarks/results.json)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    quick = args.quick

    def pick(value: Optional[int], full: int, tiny: int) -> int:
        chosen = value if value is not None else (tiny if quick else full)
        if chosen < 1:
            raise SystemExit(f"counts must be at least 1, got {chosen}")
        return chosen

    return Settings(
        n=pick(args.n, 30000, 300),
        block=pick(args.block, 200, 100),
        pipeline=pick(args.pipeline, 100, 20),
        inflight=pick(args.inflight, 100, 20),
        threads=[int(k) for k in args.threads.split(",") if k.strip()],
        mem_calls=pick(args.mem_calls, 100_000, 2000),
        import_runs=pick(args.import_runs, 9, 3),
        seed=args.seed,
    )


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    skipped: list[str] = []
    problem = "--skip-async was given" if args.skip_async else async_lib_problem()
    with_async = problem is None
    if problem is not None:
        skipped.append(f"binance-futures-async ({problem})")
        print(f"binance-futures-async: skipped ({problem})", file=sys.stderr)

    server = ServerProcess()
    cleanups: list[Callable[[], None]] = []
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bfsync-bench-") as tmp:
            key_path = make_ed25519_key(tmp)
            print(f"server pid {server.proc.pid} at {server.url}", file=sys.stderr)
            cases = build_cases(settings, server.url, key_path, with_async, cleanups)
            print(
                f"latency/throughput: {len(cases)} cases x {settings.n} calls ...",
                file=sys.stderr,
                flush=True,
            )
            t0 = time.perf_counter()
            rounds = run_interleaved(cases, settings, progress=not args.quick)
            latency_seconds = time.perf_counter() - t0
            for cleanup in reversed(cleanups):
                cleanup()
            cleanups.clear()
            summaries = {case.key: case.summary() for case in cases}
            raw_median = summaries["raw"]["median_us"]
            pipe_rate = summaries["raw_pipelined"]["calls_per_s_median"]
            latency = {
                key: {**s, "ratio_to_raw": s["median_us"] / raw_median}
                for key, s in summaries.items()
            }
            throughput = {
                key: {
                    "label": s["label"],
                    "calls": s["n"],
                    "calls_per_s_median": s["calls_per_s_median"],
                    "calls_per_s_overall": s["calls_per_s_overall"],
                    "ratio_to_raw_pipelined": s["calls_per_s_median"] / pipe_rate,
                }
                for key, s in summaries.items()
            }
            print("import times ...", file=sys.stderr, flush=True)
            # bfsync.service: what the first `from bfsync import BinanceClient` loads.
            modules = ["bfsync", "bfsync.service", "websocket"]
            if with_async:
                modules += ["binance_futures_async", "aiohttp"]
            imports = measure_imports(modules, settings.import_runs)
            print(f"memory: {settings.mem_calls} calls ...", file=sys.stderr, flush=True)
            memory = run_memory(server.url, settings.mem_calls, args.tracemalloc)
            profile = None
            if args.profile:
                print(f"profile: {args.profile} rounds ...", file=sys.stderr, flush=True)
                profile = run_profile(server.url, key_path, args.profile, 25)
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        server.stop()

    results = {
        "meta": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "versions": versions(),
            "server_pid": server.proc.pid,
            "rounds": rounds,
            "latency_seconds": latency_seconds,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": bool(args.quick),
        },
        "settings": vars(settings),
        "latency": latency,
        "throughput": throughput,
        "imports": imports,
        "memory": memory,
        "profile": profile,
        "skipped": skipped,
    }
    print(report(results))
    if profile is not None:
        print(f"\nPROFILE ({profile['calls']} calls: {profile['what']})")
        print("caller thread:\n" + profile["caller_thread"])
        for i, text in enumerate(profile["io_threads"], 1):
            print(f"I/O thread {i}:\n{text}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
