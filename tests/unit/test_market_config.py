"""The market service's config keys and URLs (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from bfsync import BinanceClient
from bfsync.config import PROD_STREAM_URL, TESTNET_STREAM_URL, Config
from bfsync.market import MarketService


def test_defaults() -> None:
    """stream_url is Binance's, queue_size 10,000, stale_after off."""
    config = Config.from_dict(None)
    assert (PROD_STREAM_URL, 10_000, None) == (
        config.stream_url,
        config.queue_size,
        config.stale_after,
    )


def test_testnet_selects_the_testnet_stream_host() -> None:
    """BinanceClient(testnet=True) uses the testnet's stream URL (configurable)."""
    assert TESTNET_STREAM_URL == BinanceClient(testnet=True).stream_url
    assert PROD_STREAM_URL == BinanceClient().stream_url


def test_a_trailing_slash_is_dropped() -> None:
    """Routes are appended to stream_url, so a trailing '/' is removed."""
    assert "ws://127.0.0.1:9" == Config.from_dict({"stream_url": "ws://127.0.0.1:9/"}).stream_url


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stream_url", "http://fstream.binance.com"),
        ("stream_url", 7),
        ("queue_size", 0),
        ("queue_size", 2.5),
        ("queue_size", True),
        ("stale_after", 0),
        ("stale_after", "5"),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    """A bad value raises ValueError naming the key."""
    with pytest.raises(ValueError, match=key):
        Config.from_dict({key: value})


def test_a_misspelt_key_gets_a_suggestion() -> None:
    """An unknown key is refused with the nearest known one."""
    with pytest.raises(ValueError, match="did you mean 'stale_after'"):
        MarketService(None, {"stale_afer": 3})


def test_a_handler_that_is_not_callable_is_refused() -> None:
    """message_handler must be callable or None."""
    with pytest.raises(ValueError, match="message_handler"):
        MarketService("print")  # type: ignore[arg-type]


def test_calls_before_connect_raise_connection_error() -> None:
    """A service never connected refuses calls with ConnectionError; close() is harmless."""
    from bfsync.exceptions import ConnectionError

    ms = MarketService()
    with pytest.raises(ConnectionError):
        ms.subscribe_book_ticker(["BTCUSDT"])
    assert [] == list(ms.events(timeout=0))
    ms.close()
    assert "closed" == ms.state
