"""BinanceClient: production and testnet URLs, and overriding them."""

from __future__ import annotations

from bfsync import BinanceClient, WebSocketService
from bfsync.config import PROD_REST_URL, PROD_WS_URL, TESTNET_REST_URL, TESTNET_WS_URL

SECRET = "S" * 64  # an HMAC secret has Binance's form: 64 letters and digits


def test_production_urls_by_default() -> None:
    """BinanceClient() uses the production endpoints."""
    client = BinanceClient()

    assert (PROD_WS_URL, PROD_REST_URL) == (client.ws_url, client.rest_url)
    assert "wss://ws-fapi.binance.com/ws-fapi/v1" == PROD_WS_URL


def test_testnet_urls() -> None:
    """BinanceClient(testnet=True) uses the testnet endpoints of the reference."""
    client = BinanceClient(testnet=True)

    assert ("wss://testnet.binancefuture.com/ws-fapi/v1", "https://demo-fapi.binance.com") == (
        client.ws_url,
        client.rest_url,
    )
    assert (TESTNET_WS_URL, TESTNET_REST_URL) == (client.ws_url, client.rest_url)


def test_service_config_defaults_to_production() -> None:
    """A service built directly (not connected) targets production unless configured."""
    ws = WebSocketService("key", SECRET)

    assert PROD_WS_URL == ws.config.ws_url


def test_config_overrides_the_endpoint() -> None:
    """ws_url and rest_url in config win over the defaults."""
    ws = WebSocketService(
        "key", SECRET, config={"ws_url": "ws://127.0.0.1:1/x", "rest_url": "http://h"}
    )

    assert ("ws://127.0.0.1:1/x", "http://h") == (ws.config.ws_url, ws.config.rest_url)
