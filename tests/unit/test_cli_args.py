"""The command line's grammar (bfsync.cli._args): plain calls, no I/O."""

from __future__ import annotations

import pytest

from bfsync.cli._args import Invocation, UsageError, order_keywords, parse


def test_price_defaults() -> None:
    """A bare command gets table output, no profile, no URLs, no timeout."""
    assert Invocation("price", {"symbol": "BTCUSDT"}) == parse(["price", "btcusdt"])


def test_common_options_before_or_after_the_command() -> None:
    """--json, --testnet and the URLs are taken on either side of the command's name."""
    before = parse(["--json", "--testnet", "--ws-url", "ws://h/x", "depth", "ETHUSDT"])
    after = parse(["depth", "ETHUSDT", "--json", "--testnet", "--ws-url", "ws://h/x"])
    assert before == after
    assert ("json", True, {"ws_url": "ws://h/x"}, 10) == (
        after.output,
        after.testnet,
        dict(after.urls),
        after.args["limit"],
    )


def test_every_url_and_timeout() -> None:
    """--ws-url, --rest-url, --stream-url and --timeout land in urls and timeout."""
    inv = parse(
        ["balance", "--ws-url", "a", "--rest-url", "b", "--stream-url", "c", "--timeout", "2.5"]
    )
    assert ({"ws_url": "a", "rest_url": "b", "stream_url": "c"}, 2.5) == (
        dict(inv.urls),
        inv.timeout,
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "required: COMMAND"),
        (["price"], "SYMBOL"),
        (["nosuch"], "invalid choice"),
        (["depth", "BTCUSDT", "--limit", "7"], "--limit"),
        (["price", "BTCUSDT", "--json", "--csv"], "--json or --csv"),
        (["watch", "btcusdt@bookTicker", "--csv"], "--csv is for tables"),
        (["watch"], "STREAM"),
        (["watch", "x", "--count", "0"], "at least 1"),
        (["price", "BTCUSDT", "--yes"], "--yes"),
        (["--yes", "price", "BTCUSDT"], "--yes is for"),
        (["cancel", "BTCUSDT"], "exactly one"),
        (["cancel", "BTCUSDT", "12", "--client-id", "c"], "exactly one"),
        (["order", "BTCUSDT", "HOLD", "LIMIT", "1"], "SIDE"),
        (["order", "BTCUSDT", "BUY", "ICEBERG", "1"], "TYPE"),
        (["order", "BTCUSDT", "BUY", "LIMIT", "1", "--param", "price"], "NAME=VALUE"),
        (["order", "BTCUSDT", "BUY", "LIMIT", "1", "--price", "2", "--param", "price=3"], "price"),
        (["balance", "--timeout", "-1"], "positive"),
    ],
)
def test_bad_usage_raises_usage_error(argv: list[str], needle: str) -> None:
    """Bad usage raises UsageError (never exits) with a message naming the problem."""
    with pytest.raises(UsageError, match="error") as info:
        parse(argv)
    assert needle in str(info.value)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--help on a command prints its help and exits with status 0."""
    with pytest.raises(SystemExit) as info:
        parse(["order", "--help"])
    assert 0 == info.value.code
    assert "--stop-price" in capsys.readouterr().out


def test_order_keywords_by_binance_names() -> None:
    """order's flags become place_*_order keywords spelt as Binance spells them."""
    inv = parse(
        [
            "order",
            "btcusdt",
            "sell",
            "stop_market",
            "0.01",
            "--stop-price",
            "44000",
            "--reduce-only",
            "--working-type",
            "mark_price",
            "--client-id",
            "mine-1",
            "--param",
            "priceProtect=true",
            "-y",
        ]
    )
    assert inv.yes
    assert {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.01",
        "stopPrice": "44000",
        "reduceOnly": "true",
        "workingType": "MARK_PRICE",
        "newClientOrderId": "mine-1",
        "priceProtect": "true",
    } == order_keywords(inv.args)


def test_limit_order_defaults_to_gtc() -> None:
    """A LIMIT order without --time-in-force is sent GTC; a MARKET order has none."""
    limit = parse(["order", "BTCUSDT", "BUY", "LIMIT", "1", "--price", "2"])
    market = parse(["order", "BTCUSDT", "BUY", "MARKET", "1"])
    assert "GTC" == order_keywords(limit.args)["timeInForce"]
    assert "timeInForce" not in order_keywords(market.args)


def test_cancel_by_client_id_and_algo() -> None:
    """cancel takes a client id instead of an id, and --algo."""
    inv = parse(["cancel", "BTCUSDT", "--client-id", "abc", "--algo", "--yes"])
    assert (None, "abc", True, True) == (
        inv.args["order_id"],
        inv.args["client_id"],
        inv.args["algo"],
        inv.yes,
    )


def test_demo_is_listed() -> None:
    """demo parses as a command of its own (its flags are the demo's business)."""
    assert "demo" == parse(["demo"]).command


def test_demo_exit_statuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo's usage error exits 2; its SystemExit('text') shows the text and exits 1."""
    import bfsync._demo
    from bfsync.cli import main

    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_PRIVATE_KEY_PATH", raising=False)
    assert 2 == main(["demo", "--testnet"])  # --testnet without keys: the demo's usage error

    def needs_extra(argv: object) -> int:
        raise SystemExit("the embedded exchange needs: pip install 'bfsync[testing]'")

    monkeypatch.setattr(bfsync._demo, "main", needs_extra)
    assert 1 == main(["demo"])
    assert "bfsync[testing]" in capsys.readouterr().err
