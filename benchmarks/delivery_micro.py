"""
The delivery lane alone (no sockets): events/s from a producer thread to a handler or events().

Each case decodes N book-ticker frames with ``json.loads`` on the producer thread, as the I/O
thread does, and hands them over; the figure is events/s until the consumer has seen them all.

- ``raw loop``: decode and call the handler in the same thread (the ceiling).
- ``queue.Queue``: decode, then ``put`` each event to a consumer thread (the usual hand-off).
- ``lane handler bN``: ``DeliveryLane.put`` of N-event batches, handler on ``bfsync-deliver-1``.
- ``lane events() bN``: the same, consumed by ``for event in lane.events()``.
- ``lane only bN``: frames decoded beforehand: only the lane's own cost.

Run: ``python benchmarks/delivery_micro.py [--n 200000] [--repeat 3]`` (prints medians).
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import threading
import time
from typing import Any, Callable

from bfsync._delivery import DeliveryLane


def frames(n: int) -> list[str]:
    return [
        json.dumps(
            {
                "stream": "btcusdt@bookTicker",
                "data": {
                    "e": "bookTicker",
                    "u": 400900217 + i,
                    "E": 1568014460893,
                    "T": 1568014460891,
                    "s": "BTCUSDT",
                    "b": "25.35190000",
                    "B": "31.21000000",
                    "a": "25.36520000",
                    "A": "40.66000000",
                },
            }
        )
        for i in range(n)
    ]


def raw_loop(texts: list[str], batch: int) -> float:
    latest: dict[str, Any] = {}
    seen = 0

    def handler(event: Any) -> None:
        nonlocal seen
        seen += 1

    loads = json.loads
    start = time.perf_counter()
    for text in texts:
        envelope = loads(text)
        latest[envelope["stream"]] = data = envelope["data"]
        handler(data)
    return len(texts) / (time.perf_counter() - start)


def queue_per_event(texts: list[str], batch: int) -> float:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    done = threading.Event()
    n = len(texts)

    def consume() -> None:
        for _ in range(n):
            q.get()
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    loads = json.loads
    start = time.perf_counter()
    for text in texts:
        q.put(loads(text)["data"])
    done.wait(120)
    elapsed = time.perf_counter() - start
    thread.join()
    return n / elapsed


def lane_handler(texts: list[str], batch: int, decoded: bool = False) -> float:
    n = len(texts)
    done = threading.Event()
    seen = 0

    def handler(event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    lane = DeliveryLane(handler, queue_size=n)
    loads = json.loads
    items = [loads(text) for text in texts] if decoded else None
    start = time.perf_counter()
    for i in range(0, n, batch):
        if items is not None:
            lane.put(items[i : i + batch])
        else:
            lane.put([loads(text) for text in texts[i : i + batch]])
    done.wait(120)
    elapsed = time.perf_counter() - start
    lane.close()
    return n / elapsed


def lane_events(texts: list[str], batch: int) -> float:
    n = len(texts)
    lane = DeliveryLane(queue_size=n)
    loads = json.loads
    result: list[float] = []

    def consume() -> None:
        for count, _ in enumerate(lane.events(timeout=30), 1):
            if count == n:
                break
        result.append(time.perf_counter())

    thread = threading.Thread(target=consume)
    thread.start()
    start = time.perf_counter()
    for i in range(0, n, batch):
        lane.put([loads(text) for text in texts[i : i + batch]])
    thread.join(120)
    lane.close()
    return n / (result[0] - start)


def median(fn: Callable[..., float], repeat: int, *args: Any) -> float:
    return statistics.median(fn(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = frames(args.n)
    ceiling = median(raw_loop, args.repeat, texts, 1)
    rows = [("raw loop (same thread)", ceiling)]
    rows.append(("queue.SimpleQueue per event", median(queue_per_event, args.repeat, texts, 1)))
    rows.extend(
        (f"lane handler b{batch}", median(lane_handler, args.repeat, texts, batch))
        for batch in (1, 10, 100)
    )
    rows.append(("lane events() b100", median(lane_events, args.repeat, texts, 100)))
    rows.append(
        ("lane only b100 (pre-decoded)", median(lane_handler, args.repeat, texts, 100, True))
    )
    print(f"{'case':<32}{'events/s':>12}{'x raw':>8}")
    for name, rate in rows:
        print(f"{name:<32}{rate:>12,.0f}{rate / ceiling:>8.2f}")


if __name__ == "__main__":
    main()
