"""
The pure order book under load: a 1000-level book, diffs of 20 levels, frequent reads.

Cases (medians of ``--repeat`` runs, one thread, no sockets):

- ``apply diff``: ``BookState.on_diff`` with 20 levels near the top (a quarter removals).
- ``parse + apply``: the same from the JSON-decoded payload (``parse_depth_update`` first).
- ``bids(10)``, ``bids()``: reading the best 10 / all 1000 levels.
- ``dict + sort on read``: the alternative design, a dict per side sorted at each read.

Run: ``python benchmarks/orderbook_micro.py [--n 20000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal
from typing import Any, Callable

from bfsync.orderbook import BookState, DepthDiff, DepthSnapshot, parse_depth_update

TICK = Decimal("0.1")
MID = Decimal("50000.0")


def snapshot() -> DepthSnapshot:
    bids = [(MID - TICK * i, Decimal("1.5")) for i in range(1, 1001)]
    asks = [(MID + TICK * i, Decimal("2.5")) for i in range(0, 1000)]
    return DepthSnapshot(100, bids, asks)


def payloads(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    last = 100
    for _ in range(n):
        bids = [
            [str(MID - TICK * rnd.randint(1, 60)), "0" if rnd.random() < 0.25 else "3.25"]
            for _ in range(10)
        ]
        asks = [
            [str(MID + TICK * rnd.randint(0, 60)), "0" if rnd.random() < 0.25 else "1.75"]
            for _ in range(10)
        ]
        out.append(
            {"e": "depthUpdate", "U": last + 1, "u": last + 3, "pu": last, "b": bids, "a": asks}
        )
        last += 3
    return out


def loaded(depth: int = 1000) -> BookState:
    book = BookState(depth=depth)
    book.on_diff(DepthDiff(100, 100, 99, [], []))
    book.on_snapshot(snapshot())
    return book


def rate(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    raw = payloads(args.n)
    diffs = [parse_depth_update(p) for p in raw]

    def apply_only() -> int:
        book = loaded()
        for diff in diffs:
            book.on_diff(diff)
        assert book.synced
        return len(diffs)

    def parse_apply() -> int:
        book = loaded()
        for payload in raw:
            book.on_diff(parse_depth_update(payload))
        return len(raw)

    def read(n: Any) -> Callable[[], int]:
        book = loaded()

        def run() -> int:
            for _ in range(args.n):
                book.bids(n)
            return args.n

        return run

    def dict_sort_read() -> int:
        side = dict(snapshot().bids)
        for _ in range(args.n // 10):
            sorted(side.items(), reverse=True)[:10]
        return args.n // 10

    cases = [
        ("apply diff (20 levels)", apply_only),
        ("parse + apply", parse_apply),
        ("bids(10)", read(10)),
        ("bids() (1000 levels)", read(None)),
        ("dict + sort on read, top 10", dict_sort_read),
    ]
    print(f"{'case':<32}{'per second':>14}{'µs each':>10}")
    for name, fn in cases:
        per_second = statistics.median(rate(fn) for _ in range(args.repeat))
        print(f"{name:<32}{per_second:>14,.0f}{1e6 / per_second:>10.1f}")


if __name__ == "__main__":
    main()
