"""
What bounds bfsync's figures on this machine, measured without bfsync.

- ``handoff``: a request handed from a caller thread to another thread (deque + wake byte on a
  socket pair + ``select``) and its ``Future`` settled back: the two thread hand-offs every
  blocking bfsync call makes, with no network and no work.
- ``best client``: one thread, no futures, batched writes (100 frames per ``sendall``) and
  large reads through the same frame reader as bfsync's, against ``server.py`` in another
  process: the throughput no client of that server can beat by much.

Run: ``python benchmarks/bounds.py`` (prints medians; no JSON).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

import websocket
from websocket import ABNF

from bfsync._wsframes import FrameReader


def handoff(n: int = 20000) -> float:
    """Median µs of one caller -> thread -> caller round trip through a Future."""
    r, w = socket.socketpair()
    r.setblocking(False)
    queue: deque[Future[None]] = deque()
    stop = threading.Event()

    def io() -> None:
        while not stop.is_set():
            select.select([r], [], [], 0.5)
            with contextlib.suppress(BlockingIOError):
                r.recv(4096)
            while queue:
                queue.popleft().set_result(None)

    thread = threading.Thread(target=io, daemon=True)
    thread.start()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        future: Future[None] = Future()
        queue.append(future)
        w.send(b"\0")
        future.result(5)
        times.append(time.perf_counter() - start)
    stop.set()
    w.send(b"\0")
    thread.join(2)
    r.close()
    w.close()
    return statistics.median(times) * 1e6


def best_client(rounds: int = 200, batch: int = 100) -> float:
    """Median calls/s of a batched single-thread client against server.py."""
    server = subprocess.Popen(  # noqa: S603 - our own script, with this interpreter
        [sys.executable, str(Path(__file__).with_name("server.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws-fapi/v1", timeout=10)
        sock = ws.sock
        reader = FrameReader()
        rates = []
        for _ in range(rounds):
            start = time.perf_counter()
            request = {"method": "ticker.price", "params": {"symbol": "BTCUSDT"}}
            frames = b"".join(
                ABNF.create_frame(json.dumps({"id": i, **request}), ABNF.OPCODE_TEXT).format()
                for i in range(batch)
            )
            sock.sendall(frames)
            got = 0
            while got < batch:
                reader.feed(sock.recv(65536))
                for _, payload in reader.events():
                    json.loads(payload)
                    got += 1
            rates.append(batch / (time.perf_counter() - start))
        ws.close()
        return statistics.median(rates)
    finally:
        server.kill()
        server.wait(5)


if __name__ == "__main__":
    print(f"thread hand-off round trip: median {handoff():.1f} µs")
    print(f"best batched client against server.py: median {best_client():,.0f} calls/s")
