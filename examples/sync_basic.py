"""
Blocking calls from a plain script.

Runs against an embedded FakeExchange; set BINANCE_WS_URL, BINANCE_API_KEY and
BINANCE_PRIVATE_KEY_PATH to run it against the testnet instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from bfsync import BinanceClient
from bfsync.exceptions import OrderValidationError


def main(ws_url: str, api_key: str, key_path: str) -> None:
    client = BinanceClient()
    with client.websocket_service(
        api_key, key_path, enable_validation=True, config={"ws_url": ws_url}
    ) as ws:
        print("price:", ws.get_ticker_price("BTCUSDT")["result"]["price"])
        book = ws.get_depth("BTCUSDT", limit=5)["result"]
        print("best bid / ask:", book["bids"][0][0], "/", book["asks"][0][0])
        try:
            # No timeInForce: refused before sending (and reported by mypy, hence the ignore).
            ws.place_limit_order(  # type: ignore[call-overload]
                symbol="BTCUSDT", side="BUY", quantity="0.003", price="50000"
            )
        except OrderValidationError as exc:
            print("refused before sending:", exc)
        order = ws.place_limit_order(
            symbol="BTCUSDT", side="BUY", quantity=0.003, price=50000.0, timeInForce="GTC"
        )
        print("order:", order["result"]["orderId"], order["result"]["clientOrderId"])


if __name__ == "__main__":
    if os.environ.get("BINANCE_WS_URL"):
        main(
            os.environ["BINANCE_WS_URL"],
            os.environ["BINANCE_API_KEY"],
            os.environ["BINANCE_PRIVATE_KEY_PATH"],
        )
    else:
        from bfsync.testing import FakeExchange

        with contextlib.ExitStack() as stack:
            fx = stack.enter_context(FakeExchange())
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            main(fx.url, *fx.add_ed25519_key(directory))
