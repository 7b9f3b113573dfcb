"""
A local market-stream server for benchmarks/streams.py: publishes Binance-shaped bookTicker
events as fast as a client takes them, or at a fixed rate, each stamped with its publish time.

It is a minimal WebSocket server on raw asyncio streams (handshake, unmasking, ping/pong, close),
so that publishing costs the server little: each event is formatted and framed by hand and a
whole batch goes out in one write. It serves every route the clients connect to (``/ws``,
``/stream``, ``/public/ws``, ``/public/stream``, ``/market/...``), with stream names in the
path (``/ws/btcusdt@bookTicker``) or the query (``?streams=a/b``), and answers SUBSCRIBE,
UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY. A connection is in combined
mode (``{"stream", "data"}`` envelopes) when its path ends in ``/stream`` or after
``SET_PROPERTY ["combined", true]``; otherwise it gets bare payloads.

Control, one line each on stdin (the harness holds the pipe; EOF stops the server):

    PUB <stream> <count> <rate> <first_u>

publishes ``count`` events of ``stream`` (``u`` = first_u, first_u + 1, ...) to every
connection subscribed to it; ``rate`` 0 means as fast as the connections take them (TCP
backpressure), otherwise events per second. When done it prints on stdout
``DONE <stream> <connections> <count> <seconds>``. Each event carries its publish time, in
microseconds since the epoch, in ``E`` and ``T`` (stamped just before the write that sends
it). At a fixed rate the events due are sent every time the event loop wakes (about every
millisecond: 10 events per write at 10,000/s).

Run alone: ``python benchmarks/stream_server.py`` prints its port, then reads stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import struct
import sys
import threading
import time
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SAT_BATCH = 200  # events per write when publishing as fast as possible


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server-to-client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def event_frames(stream: str, symbol: str, first_u: int, count: int, combined: bool) -> bytes:
    """``count`` bookTicker frames, ``u`` from ``first_u``, stamped now (µs) in E and T."""
    t = time.time_ns() // 1000
    prefix = f'{{"stream":"{stream}","data":' if combined else ""
    suffix = "}" if combined else ""
    parts = []
    for u in range(first_u, first_u + count):
        text = (
            f'{prefix}{{"e":"bookTicker","u":{u},"E":{t},"T":{t},"s":"{symbol}",'
            f'"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}{suffix}'
        )
        parts.append(frame(text.encode()))
    return b"".join(parts)


class Connection:
    """One client connection: its writer, mode and subscriptions."""

    def __init__(self, writer: asyncio.StreamWriter, combined: bool, streams: set[str]) -> None:
        self.writer = writer
        self.combined = combined
        self.streams = streams
        self.lock = asyncio.Lock()  # one writer at a time (events vs. replies)

    async def send(self, data: bytes) -> None:
        async with self.lock:
            self.writer.write(data)
            await self.writer.drain()


class StreamServer:
    """The server: connections, their subscriptions, and publishing."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn: Optional[Connection] = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            key = headers.get("sec-websocket-key")
            if not key:
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()  # noqa: S324 - the WebSocket handshake
            writer.write(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            parts = urlsplit(target)
            path = parts.path.rstrip("/")
            streams: set[str] = set()
            for value in parse_qs(parts.query).get("streams", []):
                streams.update(s.lower() for s in value.split("/") if s)
            combined = path.endswith("/stream") or "/stream/" in path or bool(streams)
            if "/ws/" in path:  # /ws/<a>/<b>: raw mode, streams in the path
                names = unquote(path.split("/ws/", 1)[1])
                streams.update(s.lower() for s in names.split("/") if s)
                combined = False
            conn = Connection(writer, combined, streams)
            self.connections.add(conn)
            await self.read_frames(reader, conn)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            if conn is not None:
                self.connections.discard(conn)
            with contextlib.suppress(Exception):
                writer.close()

    async def read_frames(self, reader: asyncio.StreamReader, conn: Connection) -> None:
        while True:
            b0, b1 = await reader.readexactly(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if b1 & 0x80 else b""
            data = await reader.readexactly(n)
            if mask:
                data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
            if opcode == 0x8:  # close: echo it and go
                with contextlib.suppress(Exception):
                    await conn.send(frame(data[:2], 0x8))
                return
            if opcode == 0x9:
                await conn.send(frame(data, 0xA))
            elif opcode == 0x1:
                await self.control(conn, data)

    async def control(self, conn: Connection, data: bytes) -> None:
        try:
            message = json.loads(data)
            method = message.get("method")
            params = message.get("params") or []
            request_id = message.get("id")
        except (ValueError, AttributeError):
            return
        result: Any = None
        if method == "SUBSCRIBE":
            conn.streams.update(str(s).lower() for s in params)
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(str(s).lower() for s in params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        elif method == "SET_PROPERTY" and len(params) == 2 and params[0] == "combined":
            conn.combined = bool(params[1])
        elif method == "GET_PROPERTY" and params == ["combined"]:
            result = conn.combined
        else:
            reply = {"error": {"code": 2, "msg": f"Invalid request: {method!r}"}, "id": request_id}
            await conn.send(frame(json.dumps(reply).encode()))
            return
        reply = {"result": result, "id": request_id}
        await conn.send(frame(json.dumps(reply, separators=(",", ":")).encode()))

    async def publish(self, stream: str, count: int, rate: float, first_u: int) -> None:
        key = stream.lower()
        targets = [c for c in self.connections if key in c.streams]
        symbol = stream.split("@", 1)[0].upper()
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        try:
            while sent < count and targets:
                if rate > 0:
                    due = min(count, int((loop.time() - start) * rate) + 1)
                    k = due - sent
                else:
                    k = min(_SAT_BATCH, count - sent)
                if k > 0:
                    for conn in targets:
                        data = event_frames(stream, symbol, first_u + sent, k, conn.combined)
                        await conn.send(data)
                    sent += k
                if rate > 0 and sent < count:
                    await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
        except (ConnectionError, RuntimeError) as exc:
            print(f"# publish {stream}: {exc!r}", file=sys.stderr, flush=True)
        elapsed = loop.time() - start
        print(f"DONE {stream} {len(targets)} {sent} {elapsed:.6f}", flush=True)


def read_commands(
    loop: asyncio.AbstractEventLoop, server: StreamServer, stop: asyncio.Event
) -> None:
    """stdin reader (a thread): schedules each PUB; EOF stops the server."""
    tasks: set[asyncio.Task[None]] = set()

    def start(stream: str, count: int, rate: float, first_u: int) -> None:
        task = loop.create_task(server.publish(stream, count, rate, first_u))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for line in sys.stdin:
        words = line.split()
        if len(words) == 5 and words[0] == "PUB":
            try:
                args = (words[1], int(words[2]), float(words[3]), int(words[4]))
            except ValueError:
                print(f"# bad command: {line.strip()!r}", file=sys.stderr, flush=True)
                continue
            loop.call_soon_threadsafe(start, *args)
        elif words:
            print(f"# unknown command: {line.strip()!r}", file=sys.stderr, flush=True)
    loop.call_soon_threadsafe(stop.set)


async def serve(port: int) -> None:
    server = StreamServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port)
    print(listener.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(
        target=read_commands, args=(loop, server, stop), name="commands", daemon=True
    ).start()
    async with listener:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
