"""
Market streams, side by side in one run: events/s into a synchronous handler, CPU per 100k
events, publish-to-handler latency at fixed rates, and bfsync's memory over 1,000,000 events.

    python -m pip install -e '.[testing]' -r benchmarks/requirements.txt
    python benchmarks/streams.py            # the full run (about 5 minutes on 2 cores)
    python benchmarks/streams.py --quick    # tiny counts, peers optional (CI: a few seconds)

One server process (benchmarks/stream_server.py) publishes bookTicker events; every client
runs in its own worker process (this script with ``--worker NAME``), so that no client shares
a GIL or a CPU-time figure with another. Each round runs one block of every (client, mode)
pair in a shuffled order; figures are medians over the rounds, ratios are against the raw
websocket-client loop of the same run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import queue
import random
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
Handler = Callable[[Any], None]


@dataclass(frozen=True)
class ClientSpec:
    key: str
    label: str
    needs: tuple[str, ...] = ()  # modules that must import (peers), else skipped


CLIENTS = [
    ClientSpec("raw", "raw websocket-client + json.loads (ceiling)"),
    ClientSpec("raw_queue", "raw + queue.Queue hand-off per event"),
    ClientSpec("bfsync", "bfsync MarketService, message_handler (json)"),
    ClientSpec("bfsync_events", "bfsync MarketService, events() pull (json)"),
    ClientSpec("bfa", "binance-futures-async market_service", ("binance_futures_async", "aiohttp")),
    ClientSpec("python_binance", "python-binance ThreadedWebsocketManager", ("binance",)),
    ClientSpec("unicorn", "unicorn-binance-websocket-api", ("unicorn_binance_websocket_api",)),
]
# Extra rows (not targets): bfsync decoding with orjson (which it uses by itself when orjson
# is installed; the rows above force the standard json), and the raw loop with orjson.
EXTRA = [
    ClientSpec("bfsync_orjson", "bfsync MarketService, message_handler (orjson)", ("orjson",)),
    ClientSpec("raw_orjson", "raw websocket-client + orjson.loads", ("orjson",)),
]
MODES = ("sat", "1k", "10k")
RATES = {"sat": 0.0, "1k": 1000.0, "10k": 10000.0}


def symbol_of(key: str) -> str:
    """A distinct, valid symbol per client, so each block reaches only its client."""
    return key.replace("_", "").upper()[:12] + "USDT"


def stream_of(key: str) -> str:
    return f"{symbol_of(key).lower()}@bookTicker"


# The worker side (one process per client)


class Sink:
    """
    The synchronous handler every client calls with a bookTicker payload. It counts the
    events of the current block (``u`` in [first, last]), keeps the publish time of the
    first (``E``: µs since the epoch, stamped by the server) and the time the last was handled,
    and at a fixed rate records publish-to-handler latency of every event.
    """

    def __init__(self) -> None:
        self.first = 1 << 62
        self.last = 1 << 62
        self.timing = False
        self.count = 0
        self.t_first = 0  # µs, the server's stamp of the first event handled
        self.t_last = 0  # µs, when the last event was handled
        self.latencies: list[int] = []
        self.done = threading.Event()

    def arm(self, first: int, last: int, timing: bool) -> None:
        self.count = 0
        self.t_first = self.t_last = 0
        self.latencies = []
        self.timing = timing
        self.done.clear()
        self.last = last
        self.first = first

    def __call__(self, payload: Any) -> None:
        u = payload.get("u", -1)
        if u < self.first:
            return  # a notice, or a late event of an earlier block
        if self.timing:
            self.latencies.append(time.time_ns() // 1000 - payload["E"])
        if self.count == 0:
            self.t_first = payload["E"]
        self.count += 1
        if u >= self.last:
            self.t_last = time.time_ns() // 1000
            self.done.set()


class Client:
    """A client under test: connected in ``__init__``, fed by the server during ``run``."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        self.url = url
        self.stream = stream
        self.symbol = stream.split("@")[0].upper()
        self.sink = sink

    def run(self, limit: float) -> None:
        """Return when the block's last event was handled, or after ``limit`` seconds."""
        self.sink.done.wait(limit)

    def extra(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class RawClient(Client):
    """websocket-client in combined mode, decoding and handling in the same thread."""

    loads: Callable[[Any], Any] = staticmethod(json.loads)

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        import websocket

        self.ws = websocket.create_connection(
            f"{url}/public/stream", skip_utf8_validation=True, enable_multithread=False
        )
        self.ws.send(json.dumps({"method": "SUBSCRIBE", "params": [stream], "id": 1}))
        reply = json.loads(self.ws.recv())
        if reply.get("id") != 1:
            raise RuntimeError(f"raw client: unexpected ack {reply!r}")

    def run(self, limit: float) -> None:
        # A blocking socket, as a plain loop has (a socket timeout adds a poll() before every
        # recv); a timer shuts the socket down if the block never completes.
        recv, loads, sink, done = self.ws.recv, self.loads, self.sink, self.sink.done
        self.ws.settimeout(None)
        watchdog = threading.Timer(limit, self._abort)
        watchdog.start()
        try:
            with contextlib.suppress(Exception):
                while not done.is_set():
                    sink(loads(recv())["data"])
        finally:
            watchdog.cancel()

    def _abort(self) -> None:
        if not self.sink.done.is_set():
            with contextlib.suppress(Exception):
                self.ws.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close(timeout=1)


class RawOrjsonClient(RawClient):
    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        import orjson

        self.loads = orjson.loads
        super().__init__(url, stream, sink)


class RawQueueClient(RawClient):
    """The naive hand-off: the reading thread puts each decoded event on a queue.Queue."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        self.ws.settimeout(None)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.stopping = False
        threading.Thread(target=self._read, name="raw-reader", daemon=True).start()
        threading.Thread(target=self._consume, name="raw-consumer", daemon=True).start()

    def _read(self) -> None:
        recv, loads, put = self.ws.recv, json.loads, self.queue.put
        with contextlib.suppress(Exception):
            while not self.stopping:
                put(loads(recv())["data"])

    def _consume(self) -> None:
        get, sink = self.queue.get, self.sink
        while True:
            item = get()
            if item is None:
                return
            sink(item)

    def run(self, limit: float) -> None:
        self.sink.done.wait(limit)

    def close(self) -> None:
        self.stopping = True
        self.queue.put(None)
        super().close()


def set_bfsync_decoder(loads: Callable[[Any], Any]) -> None:
    """Make bfsync decode stream events with ``loads`` (in this worker process only)."""
    import types

    import bfsync.market

    if hasattr(bfsync.market, "_loads"):  # bfsync picks orjson by itself when installed
        bfsync.market._loads = loads
    else:
        bfsync.market.json = types.SimpleNamespace(  # type: ignore[assignment]
            loads=loads, dumps=json.dumps
        )


class BfsyncClient(Client):
    """bfsync MarketService with a message_handler (on bfsync's delivery thread)."""

    handler_mode = True
    decoder: Callable[[Any], Any] = staticmethod(json.loads)

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        from bfsync import BinanceClient

        set_bfsync_decoder(self.decoder)

        handler = sink if self.handler_mode else None
        self.ms = BinanceClient().market_service(handler, {"stream_url": url})
        self.ms.subscribe_book_ticker([self.symbol])

    def run(self, limit: float) -> None:
        if self.handler_mode:
            self.sink.done.wait(limit)
            return
        sink, done = self.sink, self.sink.done
        for event in self.ms.events(timeout=limit):
            sink(event)
            if done.is_set():
                return

    def extra(self) -> dict[str, Any]:
        return {"dropped": self.ms.dropped, "handler_errors": self.ms.handler_errors}

    def close(self) -> None:
        self.ms.close()


class BfsyncEventsClient(BfsyncClient):
    handler_mode = False


class BfsyncOrjsonClient(BfsyncClient):
    """bfsync decoding with orjson.loads (what it does by itself when orjson is installed)."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        import orjson

        self.decoder = orjson.loads
        super().__init__(url, stream, sink)


class LoopThread:
    """An asyncio loop running forever in a thread (for binance-futures-async)."""

    def __init__(self) -> None:
        import asyncio

        self.asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bfa-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return self.asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class BfaClient(Client):
    """binance-futures-async's MarketService in its loop on a thread; base_url set to ours."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        from binance_futures_async.client import DEFAULT_MARKET_STREAM_CONFIG
        from binance_futures_async.market_streams.market_service import MarketService

        # Its health check reconnects when no {"e": "ping"} came for ping_interval + 10 s.
        config = {**DEFAULT_MARKET_STREAM_CONFIG, "ping_interval": 24 * 3600}
        self.lt = LoopThread()

        async def start() -> Any:
            service = MarketService(base_url=url, message_handler=sink, config=config)
            await service.connect()
            await service.subscribe_book_ticker([self.symbol])
            return service

        self.service = self.lt.call(start())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.lt.call(self.service.close(), 10)
        self.lt.stop()


class PythonBinanceClient(Client):
    """python-binance ThreadedWebsocketManager, FSTREAM_URL set to ours; no REST ping."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        from binance import AsyncClient, ThreadedWebsocketManager
        from binance.ws.streams import BinanceSocketManager

        async def ping(self: Any) -> dict[str, Any]:
            return {}

        async def server_time(self: Any) -> dict[str, Any]:
            return {"serverTime": int(time.time() * 1000)}

        # AsyncClient.create() pings Binance's REST API: answer locally instead.
        AsyncClient.ping = ping  # type: ignore[method-assign]
        AsyncClient.get_server_time = server_time  # type: ignore[method-assign]
        BinanceSocketManager.FSTREAM_URL = f"{url}/"
        # max_queue_size: when its callback falls that far behind, the socket fails with
        # "queue overflow" and its listener then spins on error messages. At saturation it
        # falls behind by the whole block, so the bound is set above any block here.
        self.twm = ThreadedWebsocketManager(max_queue_size=10_000_000)
        self.twm.start()

        def callback(message: Any) -> None:
            data = message.get("data")
            if data is not None:
                sink(data)

        self.twm.start_symbol_ticker_futures_socket(callback=callback, symbol=self.symbol)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.twm.stop()
            self.twm.join(5)


class UnicornClient(Client):
    """UNICORN with websocket_base_uri set to ours; callback on its network loop."""

    def __init__(self, url: str, stream: str, sink: Sink) -> None:
        super().__init__(url, stream, sink)
        import logging

        from unicorn_binance_websocket_api import BinanceWebSocketApiManager

        logging.getLogger("unicorn_binance_websocket_api").setLevel(logging.CRITICAL)

        def process(data: Any, stream_buffer_name: Any = None) -> None:
            payload = data.get("data") if isinstance(data, dict) else None
            if payload is not None:
                sink(payload)

        self.manager = BinanceWebSocketApiManager(
            exchange="binance.com-futures",
            process_stream_data=process,
            output_default="dict",
            websocket_base_uri=f"{url}/",
            warn_on_update=False,
            disable_colorama=True,
        )
        self.manager.create_stream(["bookTicker"], [self.symbol.lower()])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.manager.stop_manager()


CLIENT_CLASSES: dict[str, type[Client]] = {
    "raw": RawClient,
    "raw_queue": RawQueueClient,
    "raw_orjson": RawOrjsonClient,
    "bfsync": BfsyncClient,
    "bfsync_events": BfsyncEventsClient,
    "bfsync_orjson": BfsyncOrjsonClient,
    "bfa": BfaClient,
    "python_binance": PythonBinanceClient,
    "unicorn": UnicornClient,
}


def rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def worker(name: str, url: str) -> int:
    """Serve commands (JSON lines on stdin) for one client; answer JSON lines on stdout."""
    out = sys.stdout

    def say(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    sink = Sink()
    try:
        client = CLIENT_CLASSES[name](url, stream_of(name), sink)
    except Exception as exc:
        say({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    say({"ready": True, "pid": os.getpid()})
    tracing = False
    for line in sys.stdin:
        cmd = json.loads(line)
        what = cmd["cmd"]
        if what == "arm":
            sink.arm(cmd["first"], cmd["last"], cmd["timing"])
            counters = client.extra()
            cpu0 = time.process_time()
            say({"armed": True})
            client.run(cmd["limit"])
            cpu = time.process_time() - cpu0
            lat = sorted(sink.latencies)
            say(
                {
                    "events": sink.count,
                    "complete": sink.done.is_set(),
                    "seconds": (sink.t_last - sink.t_first) / 1e6 if sink.done.is_set() else None,
                    "cpu_s": cpu,
                    "p50_us": percentile(lat, 50) if lat else None,
                    "p99_us": percentile(lat, 99) if lat else None,
                    "max_us": float(lat[-1]) if lat else None,
                    **{k: v - counters.get(k, 0) for k, v in client.extra().items()},
                }
            )
        elif what == "mem":
            gc.collect()
            point: dict[str, Any] = {"rss_kib": rss_kib()}
            if cmd.get("start_tracing"):
                import tracemalloc

                tracemalloc.start(10)
                tracing = True
                point["snapshot"] = True
                worker_state["snapshot"] = tracemalloc.take_snapshot()
            elif tracing and cmd.get("stop_tracing"):
                import tracemalloc

                current, peak = tracemalloc.get_traced_memory()
                after = tracemalloc.take_snapshot()
                diffs = after.compare_to(worker_state["snapshot"], "lineno")
                point["traced_current_kib"] = current / 1024
                point["traced_peak_kib"] = peak / 1024
                point["top"] = [str(d) for d in diffs[:5]]
                tracemalloc.stop()
                tracing = False
            point["threads"] = threading.active_count()
            say(point)
        elif what == "stop":
            break
    client.close()
    say({"closed": True, "threads_left": [t.name for t in threading.enumerate()]})
    return 0


worker_state: dict[str, Any] = {}


# The harness side


class Proc:
    """A child process speaking lines on stdin/stdout, stopped at exit whatever happens."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(  # noqa: S603 - our own scripts, no shell
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            cwd=HERE.parent,
        )
        self.buffer = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())

    def read(self, timeout: float) -> str:
        """The next line the child wrote, waiting at most ``timeout`` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"{self.name}: no answer within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.name}: exited (code {self.proc.poll()})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def ask(self, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(json.dumps(obj))
        return dict(json.loads(self.read(timeout)))

    def stop(self, timeout: float = 10) -> None:
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Server(Proc):
    def __init__(self) -> None:
        super().__init__([str(HERE / "stream_server.py")], "stream_server")
        line = self.read(30).strip()
        if not line.isdigit():
            raise RuntimeError(f"stream_server.py did not print its port (got {line!r})")
        self.url = f"ws://127.0.0.1:{int(line)}"

    def publish(self, stream: str, count: int, rate: float, first: int) -> None:
        self.send(f"PUB {stream} {count} {rate:g} {first}")

    def done(self, timeout: float) -> tuple[int, int, float]:
        words = self.read(timeout).split()
        if words[0] != "DONE":
            raise RuntimeError(f"stream_server: unexpected {words!r}")
        return int(words[2]), int(words[3]), float(words[4])


class Worker(Proc):
    def __init__(self, spec: ClientSpec, url: str) -> None:
        script = str(Path(__file__).resolve())
        super().__init__([script, "--worker", spec.key, "--url", url], spec.key)
        self.spec = spec
        self.next_u = 1
        self.ready: dict[str, Any] = {}

    def wait_ready(self, timeout: float) -> Optional[str]:
        """None when connected, else why not."""
        try:
            self.ready = json.loads(self.read(timeout))
        except (TimeoutError, RuntimeError, ValueError) as exc:
            return str(exc)
        return None if self.ready.get("ready") else str(self.ready.get("error"))

    def block(self, server: Server, n: int, rate: float, timing: bool) -> dict[str, Any]:
        """One block of ``n`` events to this client; its figures."""
        first = self.next_u
        last = first + n - 1
        self.next_u = last + 1
        limit = n / (rate or 2000.0) + 30.0
        arm = {"cmd": "arm", "first": first, "last": last, "timing": timing, "limit": limit}
        armed = self.ask(arm, 30)
        assert armed.get("armed"), armed
        server.publish(stream_of(self.spec.key), n, rate, first)
        targets, sent, publish_s = server.done(limit + 30)
        result = dict(json.loads(self.read(limit + 30)))
        result.update(n=n, targets=targets, sent=sent, publish_s=publish_s)
        if result["complete"] and result["seconds"]:
            result["events_per_s"] = result["events"] / result["seconds"]
        return result

    def probe(self, server: Server, timeout: float) -> bool:
        """Publish single events until one reaches the client (its subscription is live)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first = self.next_u
            self.next_u += 1
            arm = {"cmd": "arm", "first": first, "last": first, "timing": False, "limit": 2.0}
            self.ask(arm, 30)
            server.publish(stream_of(self.spec.key), 1, 0, first)
            targets, _, _ = server.done(30)
            result = json.loads(self.read(35))
            if targets and result["complete"]:
                return True
            time.sleep(0.2)
        return False


@dataclass
class Settings:
    rounds: int
    sat_n: int
    n_1k: int
    n_10k: int
    warmup: int
    mem_events: int
    mem_warmup: int
    mem_traced: int
    seed: int
    tracemalloc: bool
    extras: bool
    peers: bool = True


@dataclass
class Row:
    spec: ClientSpec
    blocks: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {m: [] for m in MODES})


def med(values: list[Optional[float]]) -> Optional[float]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else None


def cpu_per_100k(block: dict[str, Any]) -> Optional[float]:
    events = block["events"]
    return block["cpu_s"] / events * 1e5 if events else None


def summarize(row: Row) -> dict[str, Any]:
    sat = row.blocks["sat"]
    out: dict[str, Any] = {"label": row.spec.label}
    out["events_per_s"] = med([b.get("events_per_s") for b in sat])
    out["cpu_s_per_100k"] = med([cpu_per_100k(b) for b in sat])
    for mode in ("1k", "10k"):
        blocks = row.blocks[mode]
        out[f"p50_us_{mode}"] = med([b.get("p50_us") for b in blocks])
        out[f"p99_us_{mode}"] = med([b.get("p99_us") for b in blocks])
        out[f"max_us_{mode}"] = med([b.get("max_us") for b in blocks])
        out[f"cpu_s_per_100k_{mode}"] = med([cpu_per_100k(b) for b in blocks])
    all_blocks = [b for m in MODES for b in row.blocks[m]]
    out["incomplete_blocks"] = sum(1 for b in all_blocks if not b["complete"])
    out["dropped"] = sum(b.get("dropped", 0) for b in all_blocks)
    out["runs"] = {m: [{k: v for k, v in b.items()} for b in row.blocks[m]] for m in MODES}
    return out


def run_memory(server: Server, settings: Settings) -> dict[str, Any]:
    """
    bfsync (handler mode) in a fresh process: RSS before and after ``mem_events`` events (after
    a warm-up), then tracemalloc over a further ``mem_traced`` events (tracing is slow, and its
    own memory would count in RSS, so the two are measured apart).
    """
    spec = ClientSpec("bfsync", "bfsync memory")
    w = Worker(spec, server.url)
    try:
        problem = w.wait_ready(60)
        if problem:
            return {"error": problem}
        if not w.probe(server, 15):
            return {"error": "no event reached the client"}
        warm = w.block(server, settings.mem_warmup, 0.0, False)
        before = w.ask({"cmd": "mem"}, 60)
        t0 = time.monotonic()
        steps = 4  # RSS after each quarter: a leak grows at every step, a peak does not
        delivered, dropped, complete, points = 0, 0, True, []
        for i in range(steps):
            part = settings.mem_events // steps + (settings.mem_events % steps if i == 0 else 0)
            block = w.block(server, part, 0.0, False)
            delivered += block["events"]
            dropped += block.get("dropped", 0)
            complete = complete and block["complete"]
            points.append(w.ask({"cmd": "mem"}, 60)["rss_kib"])
        seconds = time.monotonic() - t0
        after = w.ask({"cmd": "mem"}, 60)
        traced: dict[str, Any] = {}
        if settings.tracemalloc:
            w.ask({"cmd": "mem", "start_tracing": True}, 60)
            block = w.block(server, settings.mem_traced, 0.0, False)
            traced = w.ask({"cmd": "mem", "stop_tracing": True}, 300)
            traced.update(events=settings.mem_traced, delivered=block["events"])
        w.send(json.dumps({"cmd": "stop"}))
        closed = json.loads(w.read(30))
        return {
            "events": settings.mem_events,
            "warmup_events": warm["events"],
            "delivered": delivered,
            "complete": complete,
            "dropped": dropped,
            "seconds": seconds,
            "before": before,
            "after": after,
            "rss_kib_each_quarter": points,
            "rss_growth_kib": after["rss_kib"] - before["rss_kib"],
            "tracemalloc": traced or None,
            "threads_left_after_close": closed.get("threads_left"),
        }
    finally:
        w.stop()


def versions() -> dict[str, Optional[str]]:
    def version(dist: str) -> Optional[str]:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    names = (
        "bfsync",
        "websocket-client",
        "binance-futures-async",
        "aiohttp",
        "python-binance",
        "websockets",
        "unicorn-binance-websocket-api",
        "orjson",
    )
    return {d: version(d) for d in names}


def loadavg() -> Optional[list[float]]:
    with contextlib.suppress(OSError, AttributeError):
        return list(os.getloadavg())
    return None


def fmt(value: Optional[float], spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def fmt_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def targets(s: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's targets, each with its verdict (within the run's noise where it says so)."""
    lines = []

    def get(key: str, what: str) -> Optional[float]:
        return s[key][what] if key in s else None

    raw = get("raw", "events_per_s")
    bf = get("bfsync", "events_per_s")
    if raw and bf:
        ok = bf >= 0.8 * raw
        verdict = "MET" if ok else "MISSED"
        lines.append(f"bfsync handler >= 0.8x raw ceiling: {bf / raw:.2f}x -> {verdict}")
    uni = get("unicorn", "events_per_s")
    if uni and bf:
        spread = max(s["unicorn"].get("noise", 0.0), s["bfsync"].get("noise", 0.0))
        ok = bf >= uni * (1 - max(spread, 0.05))
        lines.append(
            f"bfsync >= UNICORN events/s within noise (+-{max(spread, 0.05):.0%}): "
            f"{bf / uni:.2f}x -> {'MET' if ok else 'MISSED'}"
        )
    for key, name in (("bfa", "binance-futures-async"), ("python_binance", "python-binance")):
        other = get(key, "events_per_s")
        if other and bf:
            ok = bf >= 4 * other
            lines.append(f"bfsync >= 4x {name}: {bf / other:.1f}x -> {'MET' if ok else 'MISSED'}")
    up99 = get("unicorn", "p99_us_10k")
    bp99 = get("bfsync", "p99_us_10k")
    if up99 and bp99:
        ok = bp99 <= up99
        lines.append(
            f"bfsync p99 at 10k/s <= UNICORN's: {bp99:,.0f} vs {up99:,.0f} µs -> "
            f"{'MET' if ok else 'MISSED'}"
        )
    return lines


def report(results: dict[str, Any]) -> str:
    meta, s = results["meta"], results["clients"]
    out = [
        f"bfsync {meta['versions']['bfsync']} market streams: Python {meta['python']} on "
        f"{meta['platform']}, {meta['cpus']} CPUs; load average before {meta['load_before']}, "
        f"after {meta['load_after']}",
        f"{meta['rounds']} rounds, each one block per (client, mode) in shuffled order; "
        f"saturation {meta['settings']['sat_n']:,} events, 1k/s {meta['settings']['n_1k']:,}, "
        f"10k/s {meta['settings']['n_10k']:,} per block; medians over rounds; "
        f"{meta['seconds']:.0f} s",
        "",
    ]
    raw = s.get("raw", {}).get("events_per_s")
    rows = []
    for item in s.values():
        eps = item["events_per_s"]
        rows.append(
            [
                item["label"],
                fmt(eps),
                fmt(eps / raw if eps and raw else None, ".2f"),
                fmt(item["cpu_s_per_100k"], ".2f"),
                fmt(item["p50_us_1k"]),
                fmt(item["p99_us_1k"]),
                fmt(item["p50_us_10k"]),
                fmt(item["p99_us_10k"]),
                fmt(item.get("noise"), ".0%"),
                f"{item['incomplete_blocks']}/{item['dropped']}",
            ]
        )
    out.append(
        fmt_table(
            [
                "client",
                "events/s",
                "x raw",
                "CPU s/100k",
                "p50 µs 1k/s",
                "p99 µs 1k/s",
                "p50 µs 10k/s",
                "p99 µs 10k/s",
                "spread",
                "incomplete/dropped",
            ],
            rows,
        )
    )
    out.append(
        "  events/s: saturation, first to last event handled; CPU: the client process's CPU time "
        "at saturation; latency: publish (server clock) to handler; spread: (max-min)/median of "
        "events/s over rounds"
    )
    mem = results.get("memory")
    if mem:
        out.append("")
        if "error" in mem:
            out.append(f"MEMORY: bfsync could not be measured: {mem['error']}")
        else:
            b, a = mem["before"], mem["after"]
            line = (
                f"MEMORY (fresh process, bfsync handler, {mem['events']:,} events in "
                f"{mem['seconds']:.1f} s, delivered {mem['delivered']:,}, "
                f"dropped {mem['dropped']}): "
                f"RSS {b['rss_kib'] / 1024:.1f} -> {a['rss_kib'] / 1024:.1f} MiB "
                f"({mem['rss_growth_kib']:+d} KiB); after each quarter: "
                + ", ".join(f"{kib / 1024:.1f}" for kib in mem["rss_kib_each_quarter"])
                + " MiB"
            )
            out.append(line)
            tm = mem["tracemalloc"]
            if tm:
                out.append(
                    f"  tracemalloc over {tm['events']:,} more events (delivered "
                    f"{tm['delivered']:,}): {tm['traced_current_kib']:.1f} KiB still allocated "
                    f"at the end (peak {tm['traced_peak_kib']:.1f} KiB); biggest differences:"
                )
                out.extend(f"    {t}" for t in tm.get("top", [])[:3])
            left = mem.get("threads_left_after_close")
            out.append(f"  threads left after close(): {left}")
    out.append("")
    out.append("TARGETS")
    out.extend(f"  {line}" for line in results["targets"])
    if results["skipped"]:
        out.append("")
        out.extend(f"SKIPPED: {what}" for what in results["skipped"])
    return "\n".join(out)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Market-stream clients side by side in one run.")
    p.add_argument("--quick", action="store_true", help="tiny counts (CI); peers optional")
    p.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    p.add_argument("--sat-n", type=int, help="events per saturation block (default 50000)")
    p.add_argument("--n-1k", type=int, help="events per 1,000/s block (default 4000)")
    p.add_argument("--n-10k", type=int, help="events per 10,000/s block (default 30000)")
    p.add_argument("--mem-events", type=int, help="events in the memory section (1000000)")
    p.add_argument("--no-tracemalloc", action="store_true", help="RSS only in the memory section")
    p.add_argument("--skip-memory", action="store_true", help="leave the memory section out")
    p.add_argument("--no-extras", action="store_true", help="leave out the orjson rows")
    p.add_argument("--no-peers", action="store_true", help="leave out the other libraries")
    p.add_argument("--only", help="comma-separated client keys to run (default: all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the block order")
    p.add_argument(
        "--json", type=Path, default=HERE / "results-streams.json", help="where the JSON goes"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        code = worker(args.worker, args.url)
        sys.stdout.flush()
        os._exit(code)  # a peer's non-daemon threads must not keep the worker alive
    quick = args.quick

    def pick(value: Optional[int], full: int, tiny: int) -> int:
        chosen = value if value is not None else (tiny if quick else full)
        if chosen < 1:
            raise SystemExit(f"counts must be at least 1, got {chosen}")
        return chosen

    settings = Settings(
        rounds=pick(args.rounds, 3, 1),
        sat_n=pick(args.sat_n, 50_000, 2_000),
        n_1k=pick(args.n_1k, 4_000, 100),
        n_10k=pick(args.n_10k, 30_000, 1_000),
        warmup=2_000 if not quick else 200,
        mem_events=pick(args.mem_events, 1_000_000, 10_000),
        mem_warmup=200_000 if not quick else 2_000,
        mem_traced=100_000 if not quick else 2_000,
        seed=args.seed,
        tracemalloc=not args.no_tracemalloc,
        extras=not args.no_extras,
    )
    specs = CLIENTS + (EXTRA if settings.extras else [])
    if args.only:
        keep = {k.strip() for k in args.only.split(",")}
        specs = [sp for sp in specs if sp.key in keep or sp.key == "raw"]
    skipped: list[str] = []
    wanted: list[ClientSpec] = []
    for spec in specs:
        if args.no_peers and spec.needs and spec.key not in ("bfsync_orjson", "raw_orjson"):
            line = f"{spec.label}: left out (--no-peers)"
            print(f"skipped: {line}", file=sys.stderr, flush=True)
            skipped.append(line)
            continue
        missing = [m for m in spec.needs if find_spec(m) is None]
        if missing:
            line = f"{spec.label}: not installed ({', '.join(missing)})"
            print(f"skipped: {line}", file=sys.stderr, flush=True)
            skipped.append(line)
        else:
            wanted.append(spec)

    load_before = loadavg()
    t_start = time.monotonic()
    server = Server()
    print(f"stream server pid {server.proc.pid} at {server.url}", file=sys.stderr, flush=True)
    workers: list[Worker] = []
    rows: dict[str, Row] = {}
    memory: Optional[dict[str, Any]] = None
    try:
        starting = [Worker(spec, server.url) for spec in wanted]
        for w in starting:
            problem = w.wait_ready(90)
            if problem is None and not w.probe(server, 20):
                problem = "connected, but no published event reached its handler"
            if problem is not None:
                line = f"{w.spec.label}: cannot be pointed at the local server ({problem})"
                print(f"skipped: {line}", file=sys.stderr, flush=True)
                skipped.append(line)
                w.stop(5)
            else:
                workers.append(w)
                rows[w.spec.key] = Row(w.spec)
        print(
            f"[{time.monotonic() - t_start:.1f} s] clients: "
            f"{', '.join(w.spec.key for w in workers)}",
            file=sys.stderr,
            flush=True,
        )
        for w in workers:  # warm-up, discarded
            w.block(server, settings.warmup, 0.0, False)
        rng = random.Random(settings.seed)
        sizes = {"sat": settings.sat_n, "1k": settings.n_1k, "10k": settings.n_10k}
        for r in range(settings.rounds):
            pairs = [(w, m) for w in workers for m in MODES]
            rng.shuffle(pairs)
            for w, mode in pairs:
                t_block = time.monotonic()
                result = w.block(server, sizes[mode], RATES[mode], mode != "sat")
                rows[w.spec.key].blocks[mode].append(result)
                if not quick:
                    eps = result.get("events_per_s")
                    print(
                        f"  round {r + 1} {w.spec.key:15} {mode:4} "
                        f"{time.monotonic() - t_block:5.1f} s "
                        + (f"{eps:9,.0f}/s" if eps else "")
                        + (f" p99 {result['p99_us']:,.0f} µs" if result.get("p99_us") else "")
                        + ("" if result["complete"] else " INCOMPLETE"),
                        file=sys.stderr,
                        flush=True,
                    )
        for w in workers:  # all close at once: some peers take seconds to stop
            with contextlib.suppress(Exception):
                w.send(json.dumps({"cmd": "stop"}))
        for w in workers:
            with contextlib.suppress(Exception):
                w.read(30)
            w.stop()
        workers.clear()
        if not args.skip_memory:
            print(
                f"[{time.monotonic() - t_start:.1f} s] memory: {settings.mem_events:,} events ...",
                file=sys.stderr,
                flush=True,
            )
            memory = run_memory(server, settings)
    finally:
        for w in workers:
            w.stop(5)
        server.stop()

    summaries = {key: summarize(row) for key, row in rows.items()}
    for item in summaries.values():
        rates = [b.get("events_per_s") for b in item["runs"]["sat"] if b.get("events_per_s")]
        if len(rates) > 1:
            item["noise"] = (max(rates) - min(rates)) / statistics.median(rates)
    results = {
        "meta": {
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "versions": versions(),
            "rounds": settings.rounds,
            "settings": vars(settings),
            "load_before": load_before,
            "load_after": loadavg(),
            "seconds": time.monotonic() - t_start,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": quick,
        },
        "clients": summaries,
        "memory": memory,
        "targets": targets(summaries),
        "skipped": skipped,
    }
    print(report(results))
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
