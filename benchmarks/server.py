"""
A minimal, fast ws-fapi responder for the benchmarks (``websockets``, asyncio).

It binds ``--host`` (127.0.0.1) on ``--port`` (0: any free port), prints the port on stdout
as one line, and answers every request frame on a connection in order, with a small fixed
result of the right shape for the method (see the reference §3), the request's ``id``
echoed, ``status`` 200 and a ``rateLimits`` list (unless the URL says
``returnRateLimits=false``). Signatures and timestamps are NOT checked: every client pays the
same server cost. Pings are answered by ``websockets``; the server sends none unless
``--ping-interval`` is given.

Methods: ``ticker.price``, ``ticker.book``, ``depth``, ``v2/account.balance``,
``session.logon``, ``session.status``, ``session.logout``. Anything else gets status 400,
code -1000. A frame that is not a JSON object gets ``id`` null, status 400, code -1000.

It stops on SIGTERM/SIGINT and, with ``--exit-on-stdin-eof``, when its stdin closes (run.py
passes a pipe, so the server also goes away if run.py dies without cleaning up).

Run it alone: ``python benchmarks/server.py`` and point a client at
``ws://127.0.0.1:PORT/ws-fapi/v1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Optional

from websockets.asyncio.server import ServerConnection, serve

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads

API_KEY = "benchmark-api-key"
_CONNECTED_SINCE_MS = int(time.time() * 1000)


def _rate_limits(weight: int) -> str:
    return _dumps(
        [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
                "count": weight,
            }
        ]
    )


def _session(authorized: bool) -> str:
    now = int(time.time() * 1000)
    return _dumps(
        {
            "apiKey": API_KEY if authorized else None,
            "authorizedSince": now if authorized else None,
            "connectedSince": _CONNECTED_SINCE_MS,
            "returnRateLimits": True,
            "serverTime": now,
        }
    )


_NOW = 1_700_000_000_000
_TICKER_PRICE = _dumps({"symbol": "BTCUSDT", "price": "64231.10", "time": _NOW})
_TICKER_BOOK = _dumps(
    {
        "lastUpdateId": 1027024,
        "symbol": "BTCUSDT",
        "bidPrice": "64231.00",
        "bidQty": "3.117",
        "askPrice": "64231.10",
        "askQty": "0.842",
        "time": _NOW,
    }
)
_DEPTH = _dumps(
    {
        "lastUpdateId": 1027024,
        "E": _NOW,
        "T": _NOW - 2,
        "bids": [[f"{64231.0 - i / 10:.2f}", f"{0.5 + i:.3f}"] for i in range(5)],
        "asks": [[f"{64231.1 + i / 10:.2f}", f"{0.4 + i:.3f}"] for i in range(5)],
    }
)
_BALANCE = _dumps(
    [
        {
            "accountAlias": "SgsR",
            "asset": asset,
            "balance": balance,
            "crossWalletBalance": balance,
            "crossUnPnl": "0.00000000",
            "availableBalance": balance,
            "maxWithdrawAmount": balance,
            "marginAvailable": True,
            "updateTime": _NOW,
        }
        for asset, balance in (("USDT", "1000.00000000"), ("BNB", "0.00000000"))
    ]
)

# method -> (result JSON text, or a function that makes it; request weight)
_RESULTS: dict[str, tuple[Any, int]] = {
    "ticker.price": (_TICKER_PRICE, 1),
    "ticker.book": (_TICKER_BOOK, 2),
    "depth": (_DEPTH, 5),
    "v2/account.balance": (_BALANCE, 5),
    "session.logon": (lambda: _session(True), 2),
    "session.status": (lambda: _session(True), 2),
    "session.logout": (lambda: _session(False), 2),
}
_UNKNOWN = _dumps({"code": -1000, "msg": "Unknown method."})
_MALFORMED = _dumps({"code": -1000, "msg": "Malformed request."})


def _reply_table(with_limits: bool) -> dict[str, tuple[str, Optional[Callable[[], str]]]]:
    """method -> (the reply text after the id, or a builder of the result for dynamic ones)."""
    table: dict[str, tuple[str, Optional[Callable[[], str]]]] = {}
    for method, (result, weight) in _RESULTS.items():
        tail = f',"rateLimits":{_rate_limits(weight)}}}' if with_limits else "}"
        if callable(result):
            table[method] = (tail, result)
        else:
            table[method] = (f',"status":200,"result":{result}{tail}', None)
    return table


_TABLES = {True: _reply_table(True), False: _reply_table(False)}
_ERROR_LIMITS = f',"rateLimits":{_rate_limits(1)}'


def reply_for(message: str | bytes, with_limits: bool) -> str:
    """The reply frame's text for one request frame's text."""
    try:
        request = _loads(message)
        request_id = request["id"]
        method = request.get("method")
    except (ValueError, TypeError, KeyError):
        limits = _ERROR_LIMITS if with_limits else ""
        return f'{{"id":null,"status":400,"error":{_MALFORMED}{limits}}}'
    entry = _TABLES[with_limits].get(method) if isinstance(method, str) else None
    id_text = _dumps(request_id)
    if entry is None:
        limits = _ERROR_LIMITS if with_limits else ""
        return f'{{"id":{id_text},"status":400,"error":{_UNKNOWN}{limits}}}'
    tail, build = entry
    if build is not None:
        return f'{{"id":{id_text},"status":200,"result":{build()}{tail}'
    return f'{{"id":{id_text}{tail}'


async def _handle(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    with_limits = "returnRateLimits=false" not in path
    send = ws.send
    # One request at a time, in order: no task per request.
    with contextlib.suppress(Exception):  # a client that vanishes mid-frame is not an error
        async for message in ws:
            await send(reply_for(message, with_limits))


async def main_async(
    host: str, port: int, ping_interval: Optional[float], watch_stdin: bool
) -> None:
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    if watch_stdin:
        fd = sys.stdin.fileno()

        def on_stdin() -> None:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
                request_stop()

        loop.add_reader(fd, on_stdin)

    async with serve(
        _handle,
        host,
        port,
        compression=None,
        ping_interval=ping_interval,
        max_size=1 << 20,
        max_queue=None,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(bound, flush=True)
        await stop


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--ping-interval", type=float, default=None, help="send pings every N s (default: none)"
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when stdin reaches end of file (the parent's pipe closed)",
    )
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.host, args.port, args.ping_interval, args.exit_on_stdin_eof))


if __name__ == "__main__":
    main()
