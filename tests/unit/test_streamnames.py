"""Stream names of the twenty subscribe pairs, their argument checks, routing and suggestions."""

from __future__ import annotations

from typing import Any

import pytest

from bfsync._streamnames import (
    INTERVALS,
    MARKET,
    PUBLIC,
    canonical,
    canonical_all,
    names_for,
    route,
)

# (pair, arguments, wire names, route): the table the integration tests reuse.
PAIRS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("aggregate_trade", {"symbols": ["BTCUSDT"]}, ["btcusdt@aggTrade"], MARKET),
    ("mark_price", {"symbols": ["BTCUSDT"]}, ["btcusdt@markPrice"], MARKET),
    (
        "mark_price",
        {"symbols": ["BTCUSDT"], "update_speed": "1000ms"},
        ["btcusdt@markPrice@1s"],
        MARKET,
    ),
    ("all_mark_price", {}, ["!markPrice@arr"], MARKET),
    ("all_mark_price", {"update_speed": "1000ms"}, ["!markPrice@arr@1s"], MARKET),
    (
        "kline",
        {"symbols": ["BTCUSDT", "ETHUSDT"], "intervals": ["1m", "1M"]},
        ["btcusdt@kline_1m", "btcusdt@kline_1M", "ethusdt@kline_1m", "ethusdt@kline_1M"],
        MARKET,
    ),
    (
        "continuous_kline",
        {"pairs": ["BTCUSDT"], "contract_types": ["perpetual"], "intervals": ["5m"]},
        ["btcusdt_perpetual@continuousKline_5m"],
        MARKET,
    ),
    ("mini_ticker", {"symbols": ["BTCUSDT"]}, ["btcusdt@miniTicker"], MARKET),
    ("all_market_tickers", {}, ["!ticker@arr"], MARKET),
    ("symbol_ticker", {"symbols": ["BTCUSDT"]}, ["btcusdt@ticker"], MARKET),
    ("all_market_mini_tickers", {}, ["!miniTicker@arr"], MARKET),
    ("book_ticker", {"symbols": ["BTCUSDT"]}, ["btcusdt@bookTicker"], PUBLIC),
    ("all_book_tickers", {}, ["!bookTicker"], PUBLIC),
    ("liquidation_order", {"symbols": ["BTCUSDT"]}, ["btcusdt@forceOrder"], MARKET),
    ("all_liquidation_orders", {}, ["!forceOrder@arr"], MARKET),
    (
        "partial_book_depth",
        {"symbols": ["BTCUSDT"], "levels": 10},
        ["btcusdt@depth10"],
        PUBLIC,
    ),
    (
        "partial_book_depth",
        {"symbols": ["BTCUSDT"], "levels": 5, "update_speed": 100},
        ["btcusdt@depth5@100ms"],
        PUBLIC,
    ),
    ("diff_book_depth", {"symbols": ["BTCUSDT"]}, ["btcusdt@depth"], PUBLIC),
    (
        "diff_book_depth",
        {"symbols": ["BTCUSDT"], "update_speed": 500},
        ["btcusdt@depth@500ms"],
        PUBLIC,
    ),
    ("composite_index", {"symbols": ["DEFIUSDT"]}, ["defiusdt@compositeIndex"], MARKET),
    ("contract_info", {}, ["!contractInfo"], MARKET),
    ("asset_index_array", {}, ["!assetIndex@arr"], MARKET),
    ("asset_index", {"asset_symbols": ["BTC"]}, ["btc@assetIndex"], MARKET),
]


@pytest.mark.parametrize(("kind", "args", "names", "where"), PAIRS)
def test_each_pair_builds_its_names_and_routes_them(
    kind: str, args: dict[str, Any], names: list[str], where: str
) -> None:
    """Every pair gives Binance's wire names, each routed where Binance serves it."""
    assert names == names_for(kind, **args)
    assert [where] * len(names) == [route(n) for n in names]


def test_the_table_covers_all_nineteen_stream_kinds() -> None:
    """The twenty pairs (nineteen kinds plus the generic subscribe) are all in the table."""
    assert 19 == len({kind for kind, *_ in PAIRS})


@pytest.mark.parametrize(
    ("kind", "args", "fragment"),
    [
        ("kline", {"symbols": ["BTCUSDT"], "intervals": ["2m"]}, "intervals"),
        ("kline", {"symbols": ["BTCUSDT"], "intervals": []}, "intervals"),
        (
            "continuous_kline",
            {"pairs": ["BTCUSDT"], "contract_types": ["perp"], "intervals": ["1m"]},
            "contract_types",
        ),
        (
            "continuous_kline",
            {"pairs": ["BTCUSDT"], "contract_types": ["perpetual"], "intervals": ["1s"]},
            "intervals",
        ),
        ("partial_book_depth", {"symbols": ["BTCUSDT"], "levels": 50}, "levels"),
        (
            "partial_book_depth",
            {"symbols": ["BTCUSDT"], "levels": 5, "update_speed": 1000},
            "update_speed",
        ),
        ("diff_book_depth", {"symbols": ["BTCUSDT"], "update_speed": "100ms"}, "update_speed"),
        ("mark_price", {"symbols": ["BTCUSDT"], "update_speed": "1s"}, "update_speed"),
        ("all_mark_price", {"update_speed": 1000}, "update_speed"),
        ("book_ticker", {"symbols": []}, "symbols"),
        ("book_ticker", {"symbols": ["BTC USDT"]}, "symbols"),
        ("book_ticker", {"symbols": ["btcusdt@depth"]}, "symbols"),
        ("book_ticker", {"symbols": [None]}, "symbols"),
        ("book_ticker", {"symbols": 42}, "symbols"),
        (
            "continuous_kline",
            {"pairs": [""], "contract_types": ["perpetual"], "intervals": ["1m"]},
            "pairs",
        ),
        ("asset_index", {"asset_symbols": ["B/TC"]}, "asset_symbols"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    kind: str, args: dict[str, Any], fragment: str
) -> None:
    """A bad argument raises ValueError whose message names that argument."""
    with pytest.raises(ValueError, match=fragment):
        names_for(kind, **args)


def test_one_symbol_as_a_string_is_a_list_of_one() -> None:
    """A single symbol string is not iterated character by character."""
    assert ["btcusdt@aggTrade"] == names_for("aggregate_trade", symbols="BTCUSDT")


def test_coin_margined_and_non_latin_symbols_are_accepted() -> None:
    """BTCUSD_PERP-style and non-Latin symbol names (allowed since 2025-10) are lowercased."""
    assert ["btcusd_perp@bookTicker"] == names_for("book_ticker", symbols=["BTCUSD_PERP"])
    assert ["币安人生usdt@aggTrade"] == names_for("aggregate_trade", symbols=["币安人生USDT"])


def test_all_kline_intervals_are_accepted() -> None:
    """Every interval of reference §7.2 builds a kline name."""
    names = names_for("kline", symbols=["BTCUSDT"], intervals=list(INTERVALS))
    assert [f"btcusdt@kline_{i}" for i in INTERVALS] == names


@pytest.mark.parametrize(
    ("given", "wire", "where"),
    [
        ("BTCUSDT@bookTicker", "btcusdt@bookTicker", PUBLIC),
        ("btcusdt@depth@100ms", "btcusdt@depth@100ms", PUBLIC),
        ("ethusdt@depth20@500ms", "ethusdt@depth20@500ms", PUBLIC),
        ("btcusdt@rpiDepth@500ms", "btcusdt@rpiDepth@500ms", PUBLIC),
        ("!bookTicker", "!bookTicker", PUBLIC),
        ("BTCUSD_PERP@aggTrade", "btcusd_perp@aggTrade", MARKET),
        ("btcusdt@kline_1M", "btcusdt@kline_1M", MARKET),
        (
            "btcusdt_next_quarter@continuousKline_1d",
            "btcusdt_next_quarter@continuousKline_1d",
            MARKET,
        ),
        ("tradingSession", "tradingSession", MARKET),
        ("!markPrice@arr@1s", "!markPrice@arr@1s", MARKET),
    ],
)
def test_canonical_names_and_routes(given: str, wire: str, where: str) -> None:
    """A known stream name is lowercased in its symbol only, and routed."""
    assert wire == canonical(given)
    assert where == route(wire)


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [
        ("btcusdt@bookticker", "btcusdt@bookTicker"),
        ("btcusdt@aggTrades", "btcusdt@aggTrade"),
        ("btcusdt@kline_2m", "btcusdt@kline_"),
        ("!tickers@arr", "!ticker@arr"),
        ("btcusdt@depth@250", "btcusdt@depth"),
        ("btcusdt_perpetual@continuousKline_1s", "btcusdt_perpetual@continuousKline_1"),
    ],
)
def test_misspelt_names_are_refused_with_a_suggestion(given: str, suggestion: str) -> None:
    """An unknown name close to a real one is refused with 'did you mean'."""
    with pytest.raises(ValueError, match="did you mean '" + suggestion.replace("!", "!")):
        canonical(given)


def test_far_off_names_are_refused_without_a_suggestion() -> None:
    """A name like nothing Binance serves is refused and names the argument."""
    with pytest.raises(ValueError, match="streams: unknown stream name") as info:
        canonical("hello world")
    assert "did you mean" not in str(info.value)


def test_canonical_all_dedups_and_checks_the_container() -> None:
    """A list keeps its order without duplicates; empty lists and non-strings are refused."""
    assert ["btcusdt@aggTrade", "btcusdt@ticker"] == canonical_all(
        ["BTCUSDT@aggTrade", "btcusdt@aggTrade", "btcusdt@ticker"]
    )
    assert ["btcusdt@ticker"] == canonical_all("btcusdt@ticker")
    with pytest.raises(ValueError, match="at least one"):
        canonical_all([])
    with pytest.raises(ValueError, match="must be a string"):
        canonical_all([1])
    with pytest.raises(ValueError, match="list of stream names"):
        canonical_all(7)


def test_route_refuses_unknown_names() -> None:
    """route() of an unknown name raises ValueError."""
    with pytest.raises(ValueError, match="unknown stream name"):
        route("btcusdt@nothing")
