"""
The command line's grammar: ``argv`` -> :class:`Invocation` (pure: no I/O, no environment).

Options common to every command (``--json``, ``--testnet``, ``--ws-url``, ...) are accepted
before or after the command's name: they are declared on the top parser and on each
sub-parser with ``default=SUPPRESS``, so whichever place the user wrote them fills the one
namespace, and :func:`parse` supplies the defaults afterwards.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Optional

__all__ = [
    "DEPTH_LIMITS",
    "ORDER_TYPES",
    "PUBLIC_COMMANDS",
    "TABULAR_COMMANDS",
    "Invocation",
    "UsageError",
    "build_parser",
    "order_keywords",
    "parse",
]

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
# Commands that need no keys (public market data).
PUBLIC_COMMANDS = frozenset({"price", "book", "depth", "watch"})
# Commands whose output is a table, so --csv makes sense.
TABULAR_COMMANDS = frozenset(
    {"price", "book", "depth", "balance", "positions", "orders", "order", "cancel", "cancel-all"}
)
_CONFIRMED = frozenset({"order", "cancel", "cancel-all"})

PROG = "bfsync"
DESCRIPTION = """\
Quick looks and safe actions on Binance USD-M Futures.

Keys come from the environment (BINANCE_API_KEY, and BINANCE_PRIVATE_KEY: a key file's path
or the HMAC secret) or from a profile (--profile NAME) in the config file
$XDG_CONFIG_HOME/bfsync/config.ini (~/.config/bfsync/config.ini), never from the command
line. price, book, depth and watch need no keys.

Exit status: 0 ok, 1 an error from the exchange or the connection (one line on stderr),
2 bad usage (arguments, profile, an order refused before sending), 130 interrupted."""

EPILOG = """\
examples:
  bfsync price BTCUSDT
  bfsync --testnet balance --json
  bfsync order BTCUSDT BUY LIMIT 0.01 --price 45000
  bfsync watch btcusdt@bookTicker ethusdt@aggTrade --count 10
  bfsync demo                      (the complete usage example, on an embedded exchange)

'bfsync COMMAND --help' describes a command."""


class UsageError(Exception):
    """Bad command-line usage (exit status 2); ``usage`` is the relevant usage line."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting on bad usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}", self.format_usage())


@dataclass(frozen=True)
class Invocation:
    """
    One parsed command line.

    Attributes:
        command: the command's name (``"price"``, ``"cancel-all"``, ...).
        args: the command's own arguments, by name (``symbol``, ``limit``, ``streams``, ...).
        output: ``"table"``, ``"json"`` or ``"csv"``.
        profile: the ``--profile`` given, or ``None``.
        testnet: ``--testnet`` given.
        urls: the URLs given, by config key (``ws_url``, ``rest_url``, ``stream_url``).
        timeout: ``--timeout`` seconds, or ``None`` for the library's defaults.
        yes: ``--yes``: do not ask for confirmation.
    """

    command: str
    args: Mapping[str, Any] = field(default_factory=dict)
    output: str = "table"
    profile: Optional[str] = None
    testnet: bool = False
    urls: Mapping[str, str] = field(default_factory=dict)
    timeout: Optional[float] = None
    yes: bool = False


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _upper(text: str) -> str:
    return text.upper()


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _common(parser: argparse.ArgumentParser, confirm: bool) -> None:
    """Add the shared options (``default=SUPPRESS``: see the module docstring)."""
    s = argparse.SUPPRESS
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", default=s, help="print one JSON document")
    out.add_argument("--csv", action="store_true", default=s, help="print CSV (tables only)")
    conn = parser.add_argument_group("keys and connection")
    conn.add_argument(
        "--profile", metavar="NAME", default=s, help="keys and URLs from this config profile"
    )
    conn.add_argument("--testnet", action="store_true", default=s, help="use Binance's testnet")
    conn.add_argument("--ws-url", metavar="URL", default=s, help="the ws-fapi URL")
    conn.add_argument("--rest-url", metavar="URL", default=s, help="the REST base URL")
    conn.add_argument("--stream-url", metavar="URL", default=s, help="the market streams URL")
    conn.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=s,
        help="connection and request timeout (default 30)",
    )
    if confirm:
        parser.add_argument(
            "-y", "--yes", action="store_true", default=s, help="do not ask for confirmation"
        )


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every command, with its help)."""
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, confirm=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=description or help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(p, confirm=name in _CONFIRMED)
        return p

    p = command("price", "latest price of a symbol (no keys needed)")
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")

    p = command("book", "best bid and ask of a symbol (no keys needed)")
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")

    p = command("depth", "order book levels of a symbol (no keys needed)")
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")
    p.add_argument(
        "--limit",
        type=int,
        choices=DEPTH_LIMITS,
        default=10,
        metavar="N",
        help=f"levels per side, one of {', '.join(map(str, DEPTH_LIMITS))} (default 10)",
    )

    p = command("balance", "account balances (assets with a balance; --all for every one)")
    p.add_argument("--all", action="store_true", help="also assets with a zero balance")

    p = command("positions", "open positions (--all: also flat ones)")
    p.add_argument("--all", action="store_true", help="also symbols with no position")

    p = command(
        "orders",
        "open orders, plain and conditional (algo)",
        "Open orders: plain ones (GET /fapi/v1/openOrders) and conditional ones\n"
        "(GET /fapi/v1/openAlgoOrders), one table with a KIND column.",
    )
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, nargs="?", help="only this symbol")

    p = command(
        "order",
        "place an order (shows it and asks first, unless --yes)",
        "Place an order. The order is checked first (bfsync's validation, and the exchange's\n"
        "filters when exchangeInfo can be fetched), shown on stderr, and sent only after you\n"
        "confirm (or with --yes). Conditional kinds (STOP, STOP_MARKET, TAKE_PROFIT,\n"
        "TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET) are sent as algo orders.\n\n"
        "examples:\n"
        "  bfsync order BTCUSDT BUY LIMIT 0.01 --price 45000\n"
        "  bfsync order BTCUSDT SELL STOP_MARKET 0.01 --stop-price 44000 --reduce-only\n"
        "  bfsync order BTCUSDT SELL TAKE_PROFIT_MARKET --stop-price 52000 --close-position",
    )
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")
    p.add_argument("side", metavar="SIDE", type=_upper, choices=("BUY", "SELL"), help="BUY or SELL")
    p.add_argument(
        "type",
        metavar="TYPE",
        type=_upper,
        choices=ORDER_TYPES,
        help=", ".join(ORDER_TYPES),
    )
    p.add_argument("quantity", metavar="QUANTITY", nargs="?", help="e.g. 0.01")
    p.add_argument("--price", help="limit price (LIMIT, STOP, TAKE_PROFIT)")
    p.add_argument("--stop-price", metavar="PRICE", help="trigger price (conditional kinds)")
    p.add_argument(
        "--time-in-force",
        metavar="TIF",
        type=_upper,
        help="GTC, IOC, FOK, GTX or GTD (default GTC for LIMIT)",
    )
    p.add_argument("--reduce-only", action="store_true", help="only reduce a position")
    p.add_argument("--close-position", action="store_true", help="close the whole position")
    p.add_argument("--callback-rate", metavar="PERCENT", help="TRAILING_STOP_MARKET: 0.1 to 10")
    p.add_argument("--activation-price", metavar="PRICE", help="TRAILING_STOP_MARKET")
    p.add_argument("--position-side", type=_upper, metavar="SIDE", help="BOTH, LONG or SHORT")
    p.add_argument("--working-type", type=_upper, metavar="T", help="MARK_PRICE or CONTRACT_PRICE")
    p.add_argument("--client-id", metavar="ID", help="your client order id (default: a new one)")
    p.add_argument(
        "--param",
        metavar="NAME=VALUE",
        type=_key_value,
        action="append",
        default=[],
        help="any other parameter, by Binance's name (repeatable)",
    )

    p = command(
        "cancel",
        "cancel one order by id or client id (asks first, unless --yes)",
        "Cancel one order: give ORDER_ID or --client-id. --algo cancels a conditional\n"
        "(algo) order by its algoId or clientAlgoId ('bfsync orders' shows the KIND).",
    )
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")
    p.add_argument("order_id", metavar="ORDER_ID", nargs="?", type=_positive_int, help="its id")
    p.add_argument("--client-id", metavar="ID", help="its client order id instead")
    p.add_argument("--algo", action="store_true", help="a conditional (algo) order")

    p = command(
        "cancel-all",
        "cancel every open order of a symbol, plain and conditional (asks first)",
    )
    p.add_argument("symbol", metavar="SYMBOL", type=_upper, help="e.g. BTCUSDT")

    p = command(
        "watch",
        "print stream events until Ctrl-C or --count N (no keys needed)",
        "Subscribe to market streams and print their events: JSON lines\n"
        '({"stream": ..., "data": ...}) when the output is not a terminal or with --json,\n'
        "a live table on a terminal. Connection gaps appear as 'bfsync.gap' events.\n\n"
        "examples:\n"
        "  bfsync watch btcusdt@bookTicker\n"
        "  bfsync watch btcusdt@aggTrade ethusdt@markPrice@1s --count 20 --json",
    )
    p.add_argument("streams", metavar="STREAM", nargs="+", help="e.g. btcusdt@bookTicker")
    p.add_argument("--count", type=_positive_int, metavar="N", help="stop after N events")

    sub.add_parser(
        "demo",
        help="the complete usage example (embedded exchange; 'bfsync demo --help')",
        add_help=False,
    )
    return parser


def parse(argv: Sequence[str]) -> Invocation:
    """
    Parse a command line (without the program name).

    ``demo`` is not parsed here: the caller hands ``demo``'s arguments to the demo as they are.

    Raises:
        UsageError: bad usage (the message is argparse's ``prog: error: ...`` line).
        SystemExit: ``--help`` was printed (status 0).
    """
    parser = build_parser()
    ns = vars(parser.parse_args(list(argv)))
    command = ns.pop("command")
    json_out = ns.pop("json", False)
    csv_out = ns.pop("csv", False)
    if json_out and csv_out:
        raise UsageError(f"{PROG} {command}: error: choose --json or --csv, not both")
    if csv_out and command not in TABULAR_COMMANDS:
        raise UsageError(f"{PROG} {command}: error: --csv is for tables; {command} has none")
    urls = {
        key: ns.pop(key) for key in ("ws_url", "rest_url", "stream_url") if ns.get(key) is not None
    }
    for key in ("ws_url", "rest_url", "stream_url"):
        ns.pop(key, None)
    yes = ns.pop("yes", False)
    if yes and command not in _CONFIRMED:
        raise UsageError(f"{PROG} {command}: error: --yes is for order, cancel and cancel-all")
    invocation = Invocation(
        command=command,
        output="json" if json_out else "csv" if csv_out else "table",
        profile=ns.pop("profile", None),
        testnet=ns.pop("testnet", False),
        urls=urls,
        timeout=ns.pop("timeout", None),
        yes=yes,
        args=ns,
    )
    if command == "cancel":
        given = [ns.get("order_id") is not None, ns.get("client_id") is not None]
        if sum(given) != 1:
            raise UsageError(
                f"{PROG} cancel: error: give ORDER_ID or --client-id ID (exactly one)",
            )
    if command == "order":
        order_keywords(invocation.args)  # the argument-level checks, here
    return invocation


_FLAGS = {
    "price": "price",
    "stop_price": "stopPrice",
    "time_in_force": "timeInForce",
    "callback_rate": "callbackRate",
    "activation_price": "activationPrice",
    "position_side": "positionSide",
    "working_type": "workingType",
    "client_id": "newClientOrderId",
}


def order_keywords(args: Mapping[str, Any]) -> dict[str, Any]:
    """
    The ``place_*_order`` keywords of an ``order`` command's arguments, by Binance's names.

    ``timeInForce`` defaults to ``GTC`` for LIMIT orders. bfsync's own validation checks the
    rest when the order is prepared.

    Raises:
        UsageError: a ``--param`` repeats a parameter given otherwise.
    """
    kwargs: dict[str, Any] = {"symbol": args["symbol"], "side": args["side"]}
    if args.get("quantity") is not None:
        kwargs["quantity"] = args["quantity"]
    for flag, name in _FLAGS.items():
        if args.get(flag) is not None:
            kwargs[name] = args[flag]
    if args.get("reduce_only"):
        kwargs["reduceOnly"] = "true"
    if args.get("close_position"):
        kwargs["closePosition"] = "true"
    if args["type"] == "LIMIT" and "timeInForce" not in kwargs:
        kwargs["timeInForce"] = "GTC"
    for name, value in args.get("param") or ():
        if name in kwargs:
            raise UsageError(f"{PROG} order: error: --param {name}= repeats a parameter given")
        kwargs[name] = value
    return kwargs
