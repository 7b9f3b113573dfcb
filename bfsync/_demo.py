"""
``python -m bfsync demo``: the documented "Complete Usage Example", synchronous.

By default it runs against an embedded FakeExchange on 127.0.0.1 with a freshly generated
Ed25519 key, so it needs no keys and no network. ``--testnet`` (with ``--api-key`` and
``--key``) runs it on Binance's testnet; production needs ``--live`` as well, because the
example places real orders.

The orders are sized for the exchange it talks to: it reads BTCUSDT's filters (exchangeInfo
over REST; the embedded exchange's own), takes the current price, and places a LIMIT buy 2 %
below it, a STOP_MARKET sell 3 % below and a TAKE_PROFIT_MARKET sell 3 % above, each on the
tick and step grid and worth a little more than the minimum notional (100 USDT on Binance).
None of them fills at once; all three are cancelled at the end, also when a step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from typing import Any, Optional

from .client import BinanceClient
from .exceptions import (
    AuthenticationError,
    BinanceWebSocketError,
    ConnectionError,
    OrderValidationError,
    RequestError,
)
from .filters import ExchangeFilters
from .service import WebSocketService
from .signing import ED25519

__all__ = ["main"]

SYMBOL = "BTCUSDT"
# Far enough from the price not to fill or trigger, near enough for PERCENT_PRICE.
_LIMIT_BELOW = Decimal("0.98")
_STOP_BELOW = Decimal("0.97")
_TAKE_PROFIT_ABOVE = Decimal("1.03")
_NOTIONAL_MARGIN = Decimal("1.1")  # 10 % above the minimum notional


def _show(step: str, reply: Any) -> None:
    result = reply.get("result") if isinstance(reply, dict) else reply
    text = json.dumps(result, separators=(",", ":"))
    print(f"{step}: {text[:160]}{'...' if len(text) > 160 else ''}")


def order_size(filters: ExchangeFilters, symbol: str, lowest_price: Decimal) -> Decimal:
    """
    The smallest quantity on ``symbol``'s step grid worth 10 % more than its minimum notional
    at ``lowest_price`` (and at least minQty).
    """
    info = filters.get(symbol)
    target = (info.min_notional or Decimal(0)) * _NOTIONAL_MARGIN / lowest_price
    step = info.step_size or Decimal("0.001")
    quantity = max((target / step).to_integral_value(rounding=ROUND_CEILING) * step, info.min_qty)
    return filters.round_quantity(symbol, quantity)


def run_example(ws: WebSocketService, filters: Optional[ExchangeFilters] = None) -> None:
    """
    The complete usage example's steps on a connected service; cancels what it placed.

    Args:
        filters: the exchange's filters; fetched from ``rest_url`` when None.
    """
    if ws.key_type == ED25519:
        _show("login", ws.login())
    _show("balance", ws.get_account_balance())
    _show("positions", ws.get_position_info())

    if filters is None:
        filters = ws.load_exchange_info()
    price = Decimal(ws.get_ticker_price(SYMBOL)["result"]["price"])
    limit_price = filters.round_price(SYMBOL, price * _LIMIT_BELOW)
    stop_price = filters.round_price(SYMBOL, price * _STOP_BELOW)
    take_profit_price = filters.round_price(SYMBOL, price * _TAKE_PROFIT_ABOVE)
    quantity = order_size(filters, SYMBOL, min(limit_price, stop_price))
    info = filters.get(SYMBOL)
    print(
        f"sizing: {SYMBOL} at {price}, minimum notional {info.min_notional}, tick "
        f"{info.tick_size}, step {info.step_size} -> quantity {quantity}"
    )

    tag = uuid.uuid4().hex[:8]
    limit_id, stop_id, take_profit_id = (f"bfsync-demo-{tag}-{n}" for n in ("l", "s", "t"))
    placed_orders: list[str] = []
    placed_algo: list[str] = []
    try:
        placed_orders.append(limit_id)
        limit_order = ws.place_limit_order(
            symbol=SYMBOL,
            side="BUY",
            quantity=quantity,
            price=limit_price,
            timeInForce="GTC",
            newClientOrderId=limit_id,
        )
        _show("limit order", limit_order)
        placed_algo.append(stop_id)
        stop_loss = ws.place_stop_market_order(
            symbol=SYMBOL,
            side="SELL",
            quantity=quantity,
            stopPrice=stop_price,
            newClientOrderId=stop_id,
        )
        _show("stop loss", stop_loss)
        placed_algo.append(take_profit_id)
        take_profit = ws.place_take_profit_market_order(
            symbol=SYMBOL,
            side="SELL",
            quantity=quantity,
            stopPrice=take_profit_price,
            newClientOrderId=take_profit_id,
        )
        _show("take profit", take_profit)
    finally:
        _cancel(ws, placed_orders, placed_algo)


def _cancel(ws: WebSocketService, orders: list[str], algo_orders: list[str]) -> None:
    """Cancel by client order id what may have been placed; report, never raise."""
    for client_id in orders:
        try:
            _show(
                f"cancel {client_id}", ws.cancel_order(symbol=SYMBOL, origClientOrderId=client_id)
            )
        except BinanceWebSocketError as exc:
            print(f"cancel {client_id}: {exc}")
    for client_id in algo_orders:
        try:
            _show(f"cancel {client_id}", ws.cancel_algo_order(clientAlgoId=client_id))
        except BinanceWebSocketError as exc:
            print(f"cancel {client_id}: {exc}")


@contextlib.contextmanager
def _embedded_exchange() -> Iterator[tuple[str, str, str, ExchangeFilters]]:
    try:
        from .testing import FakeExchange
    except ImportError as exc:
        raise SystemExit(
            f"{exc}\nthe embedded exchange needs: pip install 'bfsync[testing]'"
        ) from None
    with tempfile.TemporaryDirectory() as directory, FakeExchange() as exchange:
        api_key, key_path = exchange.add_ed25519_key(directory)
        # The embedded exchange serves no REST: its exchangeInfo is read directly.
        filters = ExchangeFilters.from_exchange_info(exchange.exchange_info(), time.monotonic())
        print(f"embedded FakeExchange at {exchange.url}, Ed25519 key generated")
        yield exchange.url, api_key, key_path, filters


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
        with _embedded_exchange() as (url, api_key, key_path, filters):
            return _run(BinanceClient(), api_key, key_path, {"ws_url": url}, filters)
    config = {"ws_url": args.ws_url} if args.ws_url else {}
    return _run(BinanceClient(testnet=args.testnet), args.api_key, args.key, config)


def _run(
    client: BinanceClient,
    api_key: str,
    key: str,
    config: dict[str, Any],
    filters: Optional[ExchangeFilters] = None,
) -> int:
    ws = None
    try:
        ws = client.websocket_service(
            api_key=api_key, private_key_path=key, enable_validation=True, config=config
        )
        print(f"connected: {ws!r}")
        run_example(ws, filters)
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
