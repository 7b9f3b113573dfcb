"""
Market stream names: built from the twenty subscribe pairs' arguments, checked, and routed.

Pure: no socket, thread or clock. Every check raises ``ValueError`` naming the argument and
the rule, so it fires in the caller's thread before anything is queued.

- ``names_for(kind, **args)`` builds the wire names of one subscribe pair (the checks are
  ``binance-futures-async``'s: intervals, contract types, depth levels, update speeds; plus
  symbols that are strings of letters, digits and ``_``).
- ``canonical(name)`` checks a stream name given by the caller to ``subscribe(streams)``:
  the symbol part is lowercased (Binance wants lowercase symbols), the rest must match a
  stream Binance serves (reference §7.2), else ``ValueError`` with a "did you mean".
- ``route(name)`` says where Binance serves it: ``/public`` (bookTicker, depth) or
  ``/market`` (everything else). A stream sent to the wrong route fails silently there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, Union

__all__ = [
    "CONTRACT_TYPES",
    "DEPTH_LEVELS",
    "INTERVALS",
    "MARKET",
    "PUBLIC",
    "UPDATE_SPEEDS",
    "canonical",
    "canonical_all",
    "names_for",
    "route",
]

PUBLIC = "/public"
MARKET = "/market"

INTERVALS = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
CONTRACT_TYPES = ("perpetual", "current_quarter", "next_quarter")
DEPTH_LEVELS = (5, 10, 20)
UPDATE_SPEEDS = (250, 500, 100)  # depth streams, ms; 250 is the stream's default (no suffix)
MARK_PRICE_SPEEDS = ("3000ms", "1000ms")

_SYMBOL = re.compile(r"\w{1,40}")  # letters (any script, since 2025-10), digits, "_"
_INTERVAL = "|".join(INTERVALS)
_CONTRACT = "|".join(CONTRACT_TYPES)

# (pattern of the full canonical name, route). Symbols are lowercase by then.
_S = r"\w{1,40}"  # a symbol, lowercase by then (BTCUSD_PERP -> btcusd_perp)
_CATALOGUE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), where)
    for pattern, where in (
        (rf"{_S}@bookTicker", PUBLIC),
        (r"!bookTicker", PUBLIC),
        (rf"{_S}@depth(?:5|10|20)?(?:@500ms|@100ms)?", PUBLIC),
        (rf"{_S}@rpiDepth@500ms", PUBLIC),
        (rf"{_S}@aggTrade", MARKET),
        (rf"{_S}@markPrice(?:@1s)?", MARKET),
        (r"!markPrice@arr(?:@1s)?", MARKET),
        (rf"{_S}@kline_(?:{_INTERVAL})", MARKET),
        (rf"{_S}_(?:{_CONTRACT})@continuousKline_(?:{_INTERVAL})", MARKET),
        (rf"{_S}@miniTicker", MARKET),
        (r"!miniTicker@arr", MARKET),
        (rf"{_S}@ticker", MARKET),
        (r"!ticker@arr", MARKET),
        (rf"{_S}@forceOrder", MARKET),
        (r"!forceOrder@arr", MARKET),
        (rf"{_S}@compositeIndex", MARKET),
        (r"!contractInfo", MARKET),
        (r"!assetIndex@arr", MARKET),
        (rf"{_S}@assetIndex", MARKET),
        (r"tradingSession", MARKET),
    )
)

# Shapes offered as suggestions ("{s}" is the caller's symbol).
_SUGGESTIONS = (
    "{s}@bookTicker",
    "!bookTicker",
    "{s}@depth",
    "{s}@depth@100ms",
    "{s}@depth@500ms",
    "{s}@depth5",
    "{s}@depth10",
    "{s}@depth20",
    "{s}@depth5@100ms",
    "{s}@depth10@100ms",
    "{s}@depth20@100ms",
    "{s}@depth5@500ms",
    "{s}@depth10@500ms",
    "{s}@depth20@500ms",
    "{s}@rpiDepth@500ms",
    "{s}@aggTrade",
    "{s}@markPrice",
    "{s}@markPrice@1s",
    "!markPrice@arr",
    "!markPrice@arr@1s",
    *(f"{{s}}@kline_{i}" for i in INTERVALS),
    "{s}@miniTicker",
    "!miniTicker@arr",
    "{s}@ticker",
    "!ticker@arr",
    "{s}@forceOrder",
    "!forceOrder@arr",
    "{s}@compositeIndex",
    "!contractInfo",
    "!assetIndex@arr",
    "{s}@assetIndex",
    "tradingSession",
)


def _lower_symbol(name: str) -> str:
    """Lowercase the symbol part of ``name`` (before the first ``@``), never the stream kind."""
    if name.startswith("!") or "@" not in name:
        return name
    head, _, tail = name.partition("@")
    return f"{head.lower()}@{tail}"


def _match(name: str) -> Union[str, None]:
    for pattern, where in _CATALOGUE:
        if pattern.fullmatch(name):
            return where
    return None


def canonical(name: Any, argument: str = "streams") -> str:
    """
    The wire form of a stream name: the symbol lowercased, the rest checked.

    Raises:
        ValueError: not a string, or not a stream Binance serves (with a suggestion when one
            is close, e.g. ``btcusdt@bookticker`` -> ``btcusdt@bookTicker``).
    """
    if not isinstance(name, str):
        raise ValueError(f"{argument}: a stream name must be a string, got {name!r}")
    wire = _lower_symbol(name.strip())
    if _match(wire) is not None:
        return wire
    symbol = wire.partition("@")[0] if "@" in wire and not wire.startswith("!") else "btcusdt"
    candidates = [shape.format(s=symbol) for shape in _SUGGESTIONS]
    if "_" in symbol:  # perhaps a continuous kline: <pair>_<contractType>@continuousKline_<i>
        pair = symbol.split("_")[0]
        candidates += [f"{pair}_{c}@continuousKline_{i}" for c in CONTRACT_TYPES for i in INTERVALS]
    near = difflib.get_close_matches(wire, candidates, n=1, cutoff=0.75)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ValueError(
        f"{argument}: unknown stream name {name!r}{hint} "
        "(see Binance's market streams: e.g. 'btcusdt@bookTicker', 'btcusdt@kline_1m')"
    )


def canonical_all(streams: Any, argument: str = "streams") -> list[str]:
    """
    Every name of ``streams`` (a list of names, or one name) in wire form, duplicates removed.

    Raises:
        ValueError: ``streams`` is empty or not a list of strings, or a name is unknown.
    """
    if isinstance(streams, str):
        streams = [streams]
    if not isinstance(streams, Iterable) or isinstance(streams, (bytes, dict)):
        raise ValueError(f"{argument} must be a list of stream names, got {streams!r}")
    names = list(dict.fromkeys(canonical(s, argument) for s in streams))
    if not names:
        raise ValueError(f"{argument} must name at least one stream")
    return names


def route(name: str) -> str:
    """
    ``/public`` or ``/market``: where Binance serves the (canonical) stream ``name``.

    Raises:
        ValueError: an unknown stream name.
    """
    where = _match(name)
    if where is None:
        canonical(name)  # raises, with a suggestion
        raise AssertionError("unreachable")  # pragma: no cover
    return where


def _symbols(value: Any, argument: str) -> list[str]:
    """Check a list of symbols (one string is taken as a list of one); lowercase them."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise ValueError(f"{argument} must be a list of symbols, got {value!r}")
    if not value:
        raise ValueError(f"{argument} must name at least one symbol")
    out = []
    for symbol in value:
        if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
            raise ValueError(
                f"{argument}: {symbol!r} is not a symbol (letters, digits and '_', "
                "e.g. 'BTCUSDT' or 'BTCUSD_PERP')"
            )
        out.append(symbol.lower())
    return out


def _choices(value: Any, argument: str, allowed: Sequence[str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        raise ValueError(
            f"{argument} must be a non-empty list; valid values are: {', '.join(allowed)}"
        )
    for item in value:
        if item not in allowed:
            raise ValueError(
                f"Invalid {argument[:-1].replace('_', ' ')}: {item!r} (in {argument}). "
                f"Valid values are: {', '.join(allowed)}"
            )
    return list(value)


def _one_of(value: Any, argument: str, allowed: Sequence[Any]) -> None:
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(
            f"Invalid {argument}: {value!r}. Must be one of {', '.join(map(str, allowed))}"
        )


def _speed_suffix(update_speed: Any) -> str:
    _one_of(update_speed, "update_speed", UPDATE_SPEEDS)
    return "" if update_speed == 250 else f"@{update_speed}ms"


def _mark_suffix(update_speed: Any) -> str:
    _one_of(update_speed, "update_speed", MARK_PRICE_SPEEDS)
    return "@1s" if update_speed == "1000ms" else ""


def names_for(kind: str, **args: Any) -> list[str]:
    """
    The wire names a subscribe pair sends, e.g. ``names_for("kline", symbols=["BTCUSDT"],
    intervals=["1m"]) == ["btcusdt@kline_1m"]``. ``kind`` is the pair's name without
    ``subscribe_``.

    Raises:
        ValueError: a bad argument, named, with the rule.
    """
    build = _BUILDERS[kind]
    return list(dict.fromkeys(build(**args)))


def _per_symbol(suffix: str, argument: str = "symbols") -> Any:
    def build(**args: Any) -> list[str]:
        return [f"{s}@{suffix}" for s in _symbols(args[argument], argument)]

    return build


def _fixed(name: str) -> Any:
    return lambda: [name]


def _mark_price(symbols: Any, update_speed: Any = "3000ms") -> list[str]:
    suffix = _mark_suffix(update_speed)
    return [f"{s}@markPrice{suffix}" for s in _symbols(symbols, "symbols")]


def _all_mark_price(update_speed: Any = "3000ms") -> list[str]:
    return [f"!markPrice@arr{_mark_suffix(update_speed)}"]


def _kline(symbols: Any, intervals: Any) -> list[str]:
    checked = _choices(intervals, "intervals", INTERVALS)
    return [f"{s}@kline_{i}" for s in _symbols(symbols, "symbols") for i in checked]


def _continuous_kline(pairs: Any, contract_types: Any, intervals: Any) -> list[str]:
    types = _choices(contract_types, "contract_types", CONTRACT_TYPES)
    checked = _choices(intervals, "intervals", INTERVALS)
    return [
        f"{p}_{c}@continuousKline_{i}"
        for p in _symbols(pairs, "pairs")
        for c in types
        for i in checked
    ]


def _partial_book_depth(symbols: Any, levels: Any, update_speed: Any = 250) -> list[str]:
    _one_of(levels, "levels", DEPTH_LEVELS)
    suffix = _speed_suffix(update_speed)
    return [f"{s}@depth{levels}{suffix}" for s in _symbols(symbols, "symbols")]


def _diff_book_depth(symbols: Any, update_speed: Any = 250) -> list[str]:
    suffix = _speed_suffix(update_speed)
    return [f"{s}@depth{suffix}" for s in _symbols(symbols, "symbols")]


_BUILDERS: dict[str, Any] = {
    "aggregate_trade": _per_symbol("aggTrade"),
    "mark_price": _mark_price,
    "all_mark_price": _all_mark_price,
    "kline": _kline,
    "continuous_kline": _continuous_kline,
    "mini_ticker": _per_symbol("miniTicker"),
    "all_market_tickers": _fixed("!ticker@arr"),
    "symbol_ticker": _per_symbol("ticker"),
    "all_market_mini_tickers": _fixed("!miniTicker@arr"),
    "book_ticker": _per_symbol("bookTicker"),
    "all_book_tickers": _fixed("!bookTicker"),
    "liquidation_order": _per_symbol("forceOrder"),
    "all_liquidation_orders": _fixed("!forceOrder@arr"),
    "partial_book_depth": _partial_book_depth,
    "diff_book_depth": _diff_book_depth,
    "composite_index": _per_symbol("compositeIndex"),
    "contract_info": _fixed("!contractInfo"),
    "asset_index_array": _fixed("!assetIndex@arr"),
    "asset_index": _per_symbol("assetIndex", "asset_symbols"),
}
