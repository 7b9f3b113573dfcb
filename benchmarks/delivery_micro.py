"""
The delivery lane alone (no sockets): events/s from a producer thread to a handler or events().

Each case decodes N book-ticker frames with ``json.loads`` on the producer thread, as the I/O
thread does, and hands them over; the figure is events/s until the consumer has seen them all.

- ``raw loop``: decode and call the handler in the same thread (the ceiling).
- ``queue.Queue``: decode, then ``put`` each event to a consumer thread (the usual hand-off).
- ``lane handler bN``: ``DeliveryLane.put`` of N-event batches, handler on ``bfsync-deliver-1``.
- ``lane events() bN``: the same, consumed by ``for event in lane.events()``.
- ``lane only bN``: frames decoded beforehand: only the lane's own cost.

- ``pipe: ...``: frames written by another process, read in 64 KiB chunks by a reader thread
  (as an I/O thread reads a socket), then handled inline (the ceiling for the pipe rows),
  handed over one by one through a ``queue.SimpleQueue``, or one batch per read to the lane.

CPU µs/event counts every thread (``time.process_time``); it varies less than events/s when
the machine is shared.

Run: ``python benchmarks/delivery_micro.py [--n 200000] [--repeat 3]`` (prints medians).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
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


_WRITER = """
import json, sys
line = json.dumps({"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker", "u": 400900217,
    "E": 1568014460893, "T": 1568014460891, "s": "BTCUSDT", "b": "25.35190000",
    "B": "31.21000000", "a": "25.36520000", "A": "40.66000000"}}) + "\\n"
n = int(sys.argv[1])
chunk = (line * 100).encode()
out = sys.stdout.buffer
for _ in range(n // 100):
    out.write(chunk)
out.flush()
"""


def piped(texts: list[str], mode: str) -> float:
    """
    Frames from another process through a pipe, read in 64 KiB chunks by a reader thread
    (like an I/O thread): ``inline`` handles them there, ``queue`` hands each to a consumer
    thread, ``lane`` hands each chunk's events over as one batch.
    """
    n = len(texts) // 100 * 100
    done = threading.Event()
    seen = 0

    def handler(event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    lane = DeliveryLane(handler, queue_size=n) if mode == "lane" else None
    consumer = None
    if mode == "queue":

        def consume() -> None:
            for _ in range(n):
                handler(q.get())

        consumer = threading.Thread(target=consume)
        consumer.start()
    writer = subprocess.Popen(  # noqa: S603 - our own script, with this interpreter
        [sys.executable, "-c", _WRITER, str(n)], stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    fd = writer.stdout.fileno()
    loads = json.loads
    start = time.perf_counter()
    rest = b""
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        if mode == "inline":
            for line in lines:
                handler(loads(line)["data"])
        elif mode == "queue":
            for line in lines:
                q.put(loads(line)["data"])
        else:
            assert lane is not None
            lane.put([loads(line) for line in lines])
    done.wait(120)
    elapsed = time.perf_counter() - start
    writer.wait()
    if consumer is not None:
        consumer.join()
    if lane is not None:
        lane.close()
    return n / elapsed


def measure(fn: Callable[..., float], repeat: int, *args: Any) -> tuple[float, float]:
    """Median events/s (wall) and median CPU µs per event (all threads; steadier under load)."""
    rates, cpu = [], []
    n = len(args[0])
    for _ in range(repeat):
        start = time.process_time()
        rates.append(fn(*args))
        cpu.append((time.process_time() - start) / n * 1e6)
    return statistics.median(rates), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = frames(args.n)
    cases: list[tuple[str, Callable[..., float], tuple[Any, ...]]] = [
        ("raw loop (same thread)", raw_loop, (texts, 1)),
        ("queue.SimpleQueue per event", queue_per_event, (texts, 1)),
        *((f"lane handler b{b}", lane_handler, (texts, b)) for b in (1, 10, 100)),
        ("lane events() b100", lane_events, (texts, 100)),
        ("lane only b100 (pre-decoded)", lane_handler, (texts, 100, True)),
        ("pipe: reader thread inline", piped, (texts, "inline")),
        ("pipe: + queue per event", piped, (texts, "queue")),
        ("pipe: + lane, batch per read", piped, (texts, "lane")),
    ]
    rows = [(name, *measure(fn, args.repeat, *fn_args)) for name, fn, fn_args in cases]
    ceiling = rows[0][1]
    pipe_ceiling = rows[-3][1]
    print(f"{'case':<32}{'events/s':>12}{'x raw':>8}{'CPU µs/event':>14}")
    for name, rate, cpu in rows:
        base = pipe_ceiling if name.startswith("pipe") else ceiling
        shown = "n/a" if "pre-decoded" in name else f"{cpu:.2f}"  # its CPU counts the decoding
        print(f"{name:<32}{rate:>12,.0f}{rate / base:>8.2f}{shown:>14}")


if __name__ == "__main__":
    main()
