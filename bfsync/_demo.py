"""
``python -m bfsync demo``: the documented "Complete Usage Example", synchronous.

By default it runs against an embedded FakeExchange on 127.0.0.1 with a freshly generated
Ed25519 key, so it needs no keys and no network. ``--testnet`` (with ``--api-key`` and
``--key``) runs it on Binance's testnet; production needs ``--live`` as well, because the
example places real orders.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Optional

from .client import BinanceClient
from .exceptions import (
    AuthenticationError,
    ConnectionError,
    OrderValidationError,
    RequestError,
)
from .service import WebSocketService
from .signing import ED25519

__all__ = ["main"]


def _show(step: str, reply: Any) -> None:
    result = reply.get("result") if isinstance(reply, dict) else reply
    text = json.dumps(result, separators=(",", ":"))
    print(f"{step}: {text[:160]}{'...' if len(text) > 160 else ''}")


def run_example(ws: WebSocketService) -> None:
    """The complete usage example's steps on a connected service."""
    if ws.key_type == ED25519:
        _show("login", ws.login())
    balance = ws.get_account_balance()
    _show("balance", balance)
    positions = ws.get_position_info()
    _show("positions", positions)
    limit_order = ws.place_limit_order(
        symbol="BTCUSDT", side="BUY", quantity="0.001", price="50000", timeInForce="GTC"
    )
    _show("limit order", limit_order)
    stop_loss = ws.place_stop_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.001", stopPrice="48000"
    )
    _show("stop loss", stop_loss)
    take_profit = ws.place_take_profit_market_order(
        symbol="BTCUSDT", side="SELL", quantity="0.001", stopPrice="52000"
    )
    _show("take profit", take_profit)


@contextlib.contextmanager
def _embedded_exchange() -> Iterator[tuple[str, str, str]]:
    try:
        from .testing import FakeExchange
    except ImportError as exc:
        raise SystemExit(
            f"{exc}\nthe embedded exchange needs: pip install 'bfsync[testing]'"
        ) from None
    with tempfile.TemporaryDirectory() as directory, FakeExchange() as exchange:
        api_key, key_path = exchange.add_ed25519_key(directory)
        # The documented example orders 0.001 BTC (about 50 USDT); Binance's BTCUSDT
        # minimum notional, which the embedded exchange copies, is 100 USDT.
        exchange.add_symbol(
            "BTCUSDT", 50000, tick_size="0.10", step_size="0.001", max_qty="1000", min_notional="5"
        )
        print(
            f"embedded FakeExchange at {exchange.url}, Ed25519 key generated, "
            "BTCUSDT minimum notional lowered to 5 USDT for the example's 0.001 BTC orders"
        )
        yield exchange.url, api_key, key_path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bfsync demo", description=__doc__)
    parser.add_argument("--testnet", action="store_true", help="use Binance's testnet")
    parser.add_argument("--live", action="store_true", help="use production: places REAL orders")
    parser.add_argument("--api-key", default=os.environ.get("BINANCE_API_KEY"))
    parser.add_argument(
        "--key",
        default=os.environ.get("BINANCE_PRIVATE_KEY_PATH"),
        help="path to an Ed25519/RSA PEM key, or the HMAC secret",
    )
    parser.add_argument("--ws-url", help="override the WebSocket URL")
    args = parser.parse_args(argv)

    remote = args.testnet or args.live or args.ws_url
    if args.live and args.testnet:
        parser.error("choose --testnet or --live, not both")
    if remote and not (args.api_key and args.key):
        parser.error("--api-key and --key (or BINANCE_API_KEY, BINANCE_PRIVATE_KEY_PATH) needed")
    if not (args.testnet or args.live or args.ws_url):
        with _embedded_exchange() as (url, api_key, key_path):
            return _run(BinanceClient(), api_key, key_path, {"ws_url": url})
    config = {"ws_url": args.ws_url} if args.ws_url else {}
    return _run(BinanceClient(testnet=args.testnet), args.api_key, args.key, config)


def _run(client: BinanceClient, api_key: str, key: str, config: dict[str, Any]) -> int:
    ws = None
    try:
        ws = client.websocket_service(
            api_key=api_key, private_key_path=key, enable_validation=True, config=config
        )
        print(f"connected: {ws!r}")
        run_example(ws)
    except ConnectionError as e:
        print(f"Connection error: {e}")
    except AuthenticationError as e:
        print(f"Authentication error: {e}")
    except RequestError as e:
        print(f"Request error: {e}")
    except OrderValidationError as e:
        print(f"Order validation error: {e}")
    else:
        print("done: every step of the complete usage example succeeded")
        return 0
    finally:
        if ws is not None:
            ws.close()
            print("closed")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
