"""
Testing your own trading code with FakeExchange: scripted errors and a lost connection.
"""

from __future__ import annotations

from bfsync import BinanceClient
from bfsync.exceptions import ConnectionLostError, RequestError
from bfsync.testing import FakeExchange


def main() -> None:
    with FakeExchange() as fx:
        api_key, secret = fx.add_hmac_key()
        ws = BinanceClient().websocket_service(
            api_key, secret, config={"ws_url": fx.url, "max_reconnect_attempts": 0}
        )
        try:
            fx.script("order.place", error={"code": -2019, "msg": "Margin is insufficient."})
            try:
                ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity="1")
            except RequestError as exc:
                print("scripted rejection:", exc.code, exc.msg)

            fx.withhold("depth")
            future = ws.get_depth("BTCUSDT", wait_for_response=False)
            fx.wait_for_requests(1, method="depth", timeout=5)
            fx.drop_connections()
            try:
                future.result(timeout=5)
            except ConnectionLostError as exc:
                print("in-flight call failed at once:", type(exc).__name__)
            print("requests the exchange saw:", [r["method"] for r in fx.requests])
        finally:
            ws.close()


if __name__ == "__main__":
    main()
