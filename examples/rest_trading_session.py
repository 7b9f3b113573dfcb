"""
A trading session with the REST calls ws-fapi lacks: leverage first, an order whose answer
is lost and then resolved, and everything cancelled at shutdown.
"""

from __future__ import annotations

from bfsync import WebSocketService
from bfsync.exceptions import OrderNotFoundError, OrderStatusUnknownError
from bfsync.testing import FakeExchange


def main() -> None:
    with FakeExchange() as fx:
        api_key, secret = fx.add_hmac_key()
        config = {"ws_url": fx.url, "rest_url": fx.rest_url, "request_timeout": 2}
        with WebSocketService(api_key, secret, enable_validation=True, config=config) as ws:
            print("leverage:", ws.change_leverage("BTCUSDT", 5)["result"]["leverage"])
            mark = ws.get_mark_price("BTCUSDT")["result"]["markPrice"]
            print("mark price:", mark)

            ws.place_limit_order(
                symbol="BTCUSDT", side="BUY", quantity="0.01", price="45000", timeInForce="GTC"
            )
            fx.withhold("algoOrder.place", times=1)  # the stop is placed, its answer is lost
            try:
                ws.place_stop_market_order(
                    symbol="BTCUSDT", side="SELL", quantity="0.01", stopPrice="44000"
                )
            except OrderStatusUnknownError as exc:
                try:
                    stop = ws.resolve_unknown(exc)["result"]
                    if "algoId" in stop:  # a conditional order (tells mypy: an AlgoOrder)
                        print("the stop exists:", stop["clientAlgoId"], stop["algoStatus"])
                except OrderNotFoundError:
                    print("the stop was not placed")

            open_orders = ws.get_open_orders("BTCUSDT")["result"]
            open_stops = ws.get_open_algo_orders("BTCUSDT")["result"]
            print(f"open: {len(open_orders)} order(s), {len(open_stops)} stop(s)")

            # Shutdown: cancel both kinds at once, then check.
            for future in [
                ws.cancel_all_open_orders("BTCUSDT", wait_for_response=False),
                ws.cancel_all_algo_orders("BTCUSDT", wait_for_response=False),
            ]:
                future.result(10)
            left = len(ws.get_open_orders()["result"]) + len(ws.get_open_algo_orders()["result"])
            print("left open after shutdown:", left)
            assert left == 0


if __name__ == "__main__":
    main()
