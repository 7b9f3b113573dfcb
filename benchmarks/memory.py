"""
Memory and threads around N blocking bfsync calls, in a fresh process (run.py starts it).

    python benchmarks/memory.py ws://127.0.0.1:PORT/ws-fapi/v1 --calls 100000 [--tracemalloc]

Prints one JSON object: VmRSS, VmHWM and Threads from /proc/self/status plus
``threading.active_count()`` at each step (start, after ``import bfsync``, after connect,
after a 10 % warm-up, after all calls, after close), after a ``gc.collect()``. The calls
alternate ``get_ticker_price`` (unsigned) and ``get_account_balance`` (HMAC-signed). With
``--tracemalloc`` it also lists the biggest allocation differences between the end of the
warm-up and the end of the calls (slower). Only the standard library is imported before
bfsync, so "start" is close to a bare interpreter.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
import tracemalloc
from typing import Any, Optional

SYMBOL = "BTCUSDT"
API_KEY = "benchmark-api-key"
# A dummy secret for a local server, in the form of Binance's (64 letters and digits).
HMAC_SECRET = "BenchmarkHmacSecret000000000000000000000000000000000000000000000"  # noqa: S105


def proc_status() -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads from /proc/self/status (Linux; empty elsewhere)."""
    wanted = {"VmRSS", "VmHWM", "Threads"}
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in wanted:
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def measure(url: str, calls: int, trace: bool) -> dict[str, Any]:
    points: list[dict[str, Any]] = []

    def point(label: str) -> None:
        gc.collect()
        status = proc_status()
        points.append(
            {
                "at": label,
                "rss_kib": status.get("VmRSS"),
                "peak_rss_kib": status.get("VmHWM"),
                "os_threads": status.get("Threads"),
                "python_threads": threading.active_count(),
            }
        )

    point("start")
    import bfsync

    point("after import bfsync")
    service = bfsync.WebSocketService(API_KEY, HMAC_SECRET, config={"ws_url": url})
    service.connect()
    point("after connect")
    warm = max(1, calls // 10)
    ticker, balance = service.get_ticker_price, service.get_account_balance

    def call(i: int) -> None:
        # Alternate an unsigned and an HMAC-signed call: both paths of the I/O thread.
        if i & 1:
            balance()
        else:
            ticker(SYMBOL)

    for i in range(warm):
        call(i)
    point(f"after {warm} calls (warm-up)")
    top: list[str] = []
    if trace:
        tracemalloc.start(10)
        before = tracemalloc.take_snapshot()
    t0 = time.perf_counter()
    for i in range(warm, calls):
        call(i)
    elapsed = time.perf_counter() - t0
    point(f"after {calls} calls")
    if trace:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        top = [str(stat) for stat in after.compare_to(before, "lineno")[:8]]
    pending = service.pending
    service.close()
    point("after close")
    time.sleep(0.2)
    point("after close + 0.2 s")
    return {
        "calls": calls,
        "calls_per_s_after_warmup": (calls - warm) / elapsed if calls > warm else None,
        "pending_after_calls": pending,
        "points": points,
        "tracemalloc_top": top,
    }


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="RSS and threads around N bfsync calls.")
    parser.add_argument("url", help="ws://127.0.0.1:PORT/ws-fapi/v1 of benchmarks/server.py")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.url, max(1, args.calls), args.tracemalloc)))


if __name__ == "__main__":
    main()
