"""
The commands' I/O: services, confirmation prompts, output (see ``bfsync.cli``).

Everything a command prints for a program goes to stdout (a table, CSV or one JSON
document); what it says to the person (previews, prompts, warnings, errors) goes to stderr.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Optional

from ..client import BinanceClient
from ..exceptions import ConnectionError, RequestError
from . import _format as fmt
from ._args import PUBLIC_COMMANDS, Invocation, order_keywords
from ._profiles import (
    ConfigError,
    Credentials,
    Profile,
    config_path,
    read_config,
    resolve,
    service_config,
)

__all__ = ["COMMANDS", "Context", "NotConfirmed", "run_command"]

# Public market data needs no keys; the service still wants some (it never signs with these).
_ANONYMOUS = Credentials("anonymous", "0" * 64, "no keys (public data)")  # HMAC-shaped
_PLACE = {
    "LIMIT": "place_limit_order",
    "MARKET": "place_market_order",
    "STOP": "place_stop_order",
    "STOP_MARKET": "place_stop_market_order",
    "TAKE_PROFIT": "place_take_profit_order",
    "TAKE_PROFIT_MARKET": "place_take_profit_market_order",
    "TRAILING_STOP_MARKET": "place_trailing_stop_market_order",
}
_WATCH_POLL = 0.25  # seconds: how often watch checks its state and redraws when idle
_REDRAW_EVERY = 0.1  # seconds between two redraws of the live table


class NotConfirmed(Exception):
    """The user did not confirm; nothing was sent (exit status 1)."""


@dataclass
class Context:
    """One command's run: its invocation, streams, environment, and what to close at the end."""

    invocation: Invocation
    env: Mapping[str, str]
    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    to_close: list[Any] = field(default_factory=list)

    def say(self, text: str) -> None:
        """A line for the person, on stderr."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def emit(self, text: str) -> None:
        """Output for a program, on stdout."""
        self.stdout.write(text)
        self.stdout.flush()

    def close(self) -> None:
        """Close every service opened (each bounded), last first; one failing stops no other."""
        while self.to_close:
            service = self.to_close.pop()
            try:
                service.close()
            except Exception as exc:  # a bug in close(): still close the others, say so
                self.say(f"warning: closing {type(service).__name__} failed: {_one_line(exc)}")

    # Settings

    def settings(self) -> tuple[Optional[Credentials], bool, dict[str, Any]]:
        """The keys (or ``None``), testnet or not, and the services' config overrides."""
        inv = self.invocation
        path = config_path(self.env, self.home, windows=os.name == "nt")
        profiles = read_config(path) if inv.profile is not None or path.exists() else None
        profile: Optional[Profile]
        profile, credentials = resolve(self.env, profiles, inv.profile, path)
        testnet, config = service_config(profile, inv.testnet, inv.urls, inv.timeout)
        return credentials, testnet, config

    def websocket(self, connect: bool = True) -> Any:
        """A ``WebSocketService`` (validation on), connected unless ``connect`` is false."""
        from ..service import WebSocketService

        credentials, testnet, overrides = self.settings()
        command = self.invocation.command
        if credentials is None:
            if command not in PUBLIC_COMMANDS:
                raise ConfigError(
                    f"{command} needs keys: set BINANCE_API_KEY and BINANCE_PRIVATE_KEY, or "
                    "use --profile NAME (see 'bfsync --help')"
                )
            credentials = _ANONYMOUS
        client = BinanceClient(testnet=testnet)
        config = {"ws_url": client.ws_url, "rest_url": client.rest_url, **overrides}
        config.pop("stream_url", None)
        if credentials.private_key_password:
            config["private_key_password"] = credentials.private_key_password
        ws = WebSocketService(
            credentials.api_key, credentials.private_key, enable_validation=True, config=config
        )
        self.to_close.append(ws)
        if connect:
            ws.connect()
        return ws

    def market(self) -> Any:
        """A connected ``MarketService`` with nothing subscribed yet."""
        _, testnet, overrides = self.settings()
        config = {k: v for k, v in overrides.items() if k not in ("ws_url", "rest_url")}
        service = BinanceClient(testnet=testnet).market_service(None, config)
        self.to_close.append(service)
        return service

    def where(self, ws: Any) -> str:
        """Where orders go, in words a person checks before confirming."""
        from ..config import PROD_WS_URL, TESTNET_WS_URL

        url = str(ws.config.ws_url)
        if url == PROD_WS_URL:
            return "Binance PRODUCTION (real money)"
        if url == TESTNET_WS_URL:
            return "Binance testnet"
        return url

    def confirm(self, question: str) -> None:
        """
        Ask ``question`` on stderr and read a line from stdin, unless ``--yes``.

        Raises:
            NotConfirmed: the answer is not y/yes (end of input counts as no).
        """
        if self.invocation.yes:
            return
        self.stderr.write(f"{question} [y/N] ")
        self.stderr.flush()
        answer = self.stdin.readline()
        if not (answer.endswith("\n") and _isatty(self.stdin)):
            self.stderr.write("\n")  # a terminal echoed the answer's newline; a pipe did not
        if answer.strip().lower() not in ("y", "yes"):
            raise NotConfirmed("not confirmed: nothing was sent")

    def output(self, document: Any, table: fmt.Table) -> None:
        self.emit(fmt.render(self.invocation.output, document, table))


# ---- the commands -----------------------------------------------------------------------------


def _price(ctx: Context) -> int:
    result = ctx.websocket().get_ticker_price(ctx.invocation.args["symbol"])["result"]
    ctx.output(result, fmt.price_table(result))
    return 0


def _book(ctx: Context) -> int:
    result = ctx.websocket().get_ticker_book(ctx.invocation.args["symbol"])["result"]
    ctx.output(result, fmt.book_table(result))
    return 0


def _depth(ctx: Context) -> int:
    args = ctx.invocation.args
    result = ctx.websocket().get_depth(args["symbol"], args["limit"])["result"]
    ctx.output(result, fmt.depth_table(result))
    return 0


def _balance(ctx: Context) -> int:
    result = ctx.websocket().get_account_balance()["result"]
    ctx.output(result, fmt.balance_table(result, ctx.invocation.args["all"]))
    return 0


def _positions(ctx: Context) -> int:
    result = ctx.websocket().get_position_info()["result"]
    ctx.output(result, fmt.positions_table(result, ctx.invocation.args["all"]))
    return 0


def _both(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start ``wait_for_response=False`` calls together; their results, or raise the first error."""
    futures = [call() for call in calls]
    return [future.result() for future in futures]


def _orders(ctx: Context) -> int:
    symbol = ctx.invocation.args["symbol"]
    ws = ctx.websocket()
    plain, algo = _both(
        [
            lambda: ws.get_open_orders(symbol, wait_for_response=False),
            lambda: ws.get_open_algo_orders(symbol, wait_for_response=False),
        ]
    )
    document = {"orders": plain["result"], "algoOrders": algo["result"]}
    ctx.output(document, fmt.orders_table(plain["result"], algo["result"]))
    return 0


def _order(ctx: Context) -> int:
    from ..orders import prepare_order

    args = ctx.invocation.args
    order_type = args["type"]
    kwargs = order_keywords(args)
    ws = ctx.websocket(connect=False)
    filters = None
    try:
        filters = ws.load_exchange_info()
    except (ConnectionError, RequestError) as exc:
        ctx.say(f"warning: exchange filters not checked here ({_one_line(exc)}); the exchange will")
    if "newClientOrderId" not in kwargs and "clientAlgoId" not in kwargs:
        kwargs["newClientOrderId"] = ws.config.client_order_id_prefix + uuid.uuid4().hex[:20]
    prepared = prepare_order(
        order_type, kwargs, validate=True, new_client_order_id=lambda: kwargs["newClientOrderId"]
    )
    if filters is not None:
        filters.check_order(order_type, prepared.params)
    ctx.say(f"{order_type} order to {ctx.where(ws)} ({prepared.method}):")
    width = max(len(name) for name in prepared.params)
    for name, value in prepared.params.items():
        ctx.say(f"  {name.ljust(width)}  {value}")
    ctx.confirm("Send this order?")
    ws.connect()
    result = getattr(ws, _PLACE[order_type])(**kwargs)["result"]
    ctx.output(result, fmt.reply_table(result))
    return 0


def _cancel(ctx: Context) -> int:
    args = ctx.invocation.args
    symbol, order_id, client_id = args["symbol"], args["order_id"], args["client_id"]
    ws = ctx.websocket(connect=False)
    what = f"order id {order_id}" if order_id is not None else f"client id {client_id}"
    kind = "conditional (algo) order" if args["algo"] else "order"
    ctx.confirm(f"Cancel {symbol} {kind} with {what} on {ctx.where(ws)}?")
    ws.connect()
    if args["algo"]:
        key = "algoId" if order_id is not None else "clientAlgoId"
        reply = ws.cancel_algo_order(**{key: order_id if order_id is not None else client_id})
    else:
        key = "orderId" if order_id is not None else "origClientOrderId"
        value = order_id if order_id is not None else client_id
        reply = ws.cancel_order(symbol=symbol, **{key: value})
    result = reply["result"]
    ctx.output(result, fmt.reply_table(result))
    return 0


def _cancel_all(ctx: Context) -> int:
    symbol = ctx.invocation.args["symbol"]
    ws = ctx.websocket()
    plain, algo = _both(
        [
            lambda: ws.get_open_orders(symbol, wait_for_response=False),
            lambda: ws.get_open_algo_orders(symbol, wait_for_response=False),
        ]
    )
    n_plain, n_algo = len(plain["result"] or []), len(algo["result"] or [])
    ctx.confirm(
        f"Cancel every open order of {symbol} on {ctx.where(ws)}: {n_plain} plain "
        f"and {n_algo} conditional, now open?"
    )
    # Both at once, and each is tried even when the other fails.
    futures = {
        "orders": ws.cancel_all_open_orders(symbol, wait_for_response=False),
        "algoOrders": ws.cancel_all_algo_orders(symbol, wait_for_response=False),
    }
    document: dict[str, Any] = {}
    failed: Optional[BaseException] = None
    for kind, future in futures.items():
        try:
            document[kind] = future.result()["result"]
        except (RequestError, ConnectionError, concurrent.futures.CancelledError) as exc:
            ctx.say(f"bfsync cancel-all: {kind}: {_one_line(exc)}")
            failed = failed or exc
    ctx.output(document, fmt.cancel_all_table(document))
    return 1 if failed is not None else 0


def _watch(ctx: Context) -> int:
    from .._streamnames import canonical_all

    args = ctx.invocation.args
    try:
        streams = canonical_all(args["streams"], "STREAM")
    except ValueError as exc:
        raise ConfigError(f"bfsync watch: error: {exc}") from None
    count: Optional[int] = args["count"]
    live = ctx.invocation.output != "json" and _isatty(ctx.stdout)
    ms = ctx.market()
    ms.set_property("combined", True)
    ms.subscribe(streams)
    seen = 0
    rows: dict[str, dict[str, Any]] = {stream: {"stream": stream} for stream in streams}
    drawn = 0
    last_draw = 0.0
    note = ""
    while count is None or seen < count:
        for envelope in ms.events(_WATCH_POLL):
            stream = str(envelope.get("stream", "")) if isinstance(envelope, Mapping) else ""
            data = envelope.get("data") if isinstance(envelope, Mapping) else envelope
            if not stream.startswith("bfsync."):
                seen += 1
            if live:
                if stream.startswith("bfsync."):
                    note = f"; {stream}: {fmt.watch_row(stream, data)['summary']}"
                else:
                    rows[stream] = fmt.watch_row(stream, data)
            else:
                ctx.emit(fmt.json_line(envelope))
            if count is not None and seen >= count:
                break
            if live and time.monotonic() - last_draw >= _REDRAW_EVERY:
                drawn = _redraw(ctx, rows, f"{seen} events, Ctrl-C to stop{note}", drawn)
                last_draw = time.monotonic()
        if live:
            drawn = _redraw(ctx, rows, f"{seen} events, Ctrl-C to stop{note}", drawn)
            last_draw = time.monotonic()
        if ms.state.value in ("failed", "closed"):
            raise ConnectionError(f"the stream connection was lost ({ms.state.value})")
    return 0


def _redraw(ctx: Context, rows: Mapping[str, Mapping[str, Any]], status: str, drawn: int) -> int:
    """Redraw the live table over the previous one; returns the number of lines drawn."""
    text = fmt.watch_table(rows.values(), status)
    up = f"\x1b[{drawn}F\x1b[J" if drawn else ""
    ctx.emit(up + text)
    return text.count("\n")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


COMMANDS: dict[str, Callable[[Context], int]] = {
    "price": _price,
    "book": _book,
    "depth": _depth,
    "balance": _balance,
    "positions": _positions,
    "orders": _orders,
    "order": _order,
    "cancel": _cancel,
    "cancel-all": _cancel_all,
    "watch": _watch,
}


def run_command(ctx: Context) -> int:
    """Run the invocation's command (raises what it raises; see ``bfsync.cli.main``)."""
    return COMMANDS[ctx.invocation.command](ctx)
