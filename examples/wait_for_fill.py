"""
Place an order and wait for its fill on the user data stream (against an embedded FakeExchange).

The same code runs against Binance: drop the FakeExchange and its URLs, give your API key and
private key, and the fill comes when the market reaches your price.
"""

from __future__ import annotations

import threading

from bfsync import BinanceClient
from bfsync.testing import FakeExchange
from bfsync.userevents import OrderUpdate


def main() -> None:
    with FakeExchange() as fx:
        api_key, secret = fx.add_hmac_key()
        config = {"ws_url": fx.url, "stream_url": fx.stream_url, "rest_url": fx.rest_url}
        ws = BinanceClient().websocket_service(api_key, secret, config=config)
        with ws, ws.user_stream() as us:
            ws.place_limit_order(
                symbol="BTCUSDT",
                side="BUY",
                quantity="0.010",
                price="49500",
                timeInForce="GTC",
                newClientOrderId="dip-buy-1",
            )
            # On the fake, the market comes down to our price in half a second.
            threading.Timer(0.5, fx.move_price, ("BTCUSDT", "49400")).start()
            event = us.wait_for_order("dip-buy-1", statuses=("FILLED",), timeout=10)
            fill = OrderUpdate(event)
            print(
                f"{fill.client_order_id}: {fill.status} {fill.filled_quantity} "
                f"{fill.symbol} at {fill.average_price}"
            )
            account = us.latest("ACCOUNT_UPDATE")
            print("position now:", account["a"]["P"] if account else "no update yet")


if __name__ == "__main__":
    main()
