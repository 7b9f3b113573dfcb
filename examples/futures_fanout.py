"""
Many requests in flight: futures from one thread, and blocking calls from a thread pool.
"""

from __future__ import annotations

import concurrent.futures
import time

from bfsync import BinanceClient
from bfsync.testing import FakeExchange

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def main() -> None:
    with FakeExchange() as fx:
        api_key, secret = fx.add_hmac_key()
        with BinanceClient().websocket_service(api_key, secret, config={"ws_url": fx.url}) as ws:
            start = time.perf_counter()
            futures = [
                ws.get_ticker_price(SYMBOLS[i % 2], wait_for_response=False) for i in range(500)
            ]
            done, not_done = concurrent.futures.wait(futures, timeout=30)
            elapsed = time.perf_counter() - start
            print(f"500 pipelined requests: {len(done)} done in {elapsed * 1000:.0f} ms")
            assert not not_done

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                balances = list(pool.map(lambda _: ws.get_account_balance(), range(40)))
            print(f"40 signed calls from 8 threads: {len(balances)} replies")


if __name__ == "__main__":
    main()
