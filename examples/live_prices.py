"""
Live prices and a local order book from Binance's market streams, without asyncio.

Runs as it stands against an embedded FakeExchange that publishes a random walk of book
tickers, trades and depth diffs. Against Binance, drop the FakeExchange and the config:
``BinanceClient().market_service(on_event)``; the book's snapshots come over REST (no key).
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from typing import Any

from bfsync import BinanceClient
from bfsync.testing import FakeExchange


def publish(fx: FakeExchange, stop: threading.Event) -> None:
    """The fake market: quantities come and go on the ten levels each side of the spread."""
    rng = random.Random(7)  # noqa: S311 - a simulated market, not crypto
    while not stop.is_set():
        tick = Decimal(rng.randint(0, 9)) / 10
        qty = "0" if rng.random() < 0.4 else str(Decimal(rng.randint(1, 30)) / 10)  # 0: gone
        fx.publish_depth(
            "BTCUSDT",
            bids=[(str(Decimal("49999.0") + tick), qty)],
            asks=[(str(Decimal("50000.1") + tick), qty)],
        )
        fx.publish_book_ticker("BTCUSDT")
        fx.publish_agg_trade("BTCUSDT", quantity="0.010")
        time.sleep(0.02)


def main() -> None:
    with FakeExchange() as fx:
        stop = threading.Event()
        publisher = threading.Thread(target=publish, args=(fx, stop), daemon=True)
        publisher.start()
        trades: list[Decimal] = []

        def on_event(event: dict[str, Any]) -> None:
            # Runs on a bfsync delivery thread, never on the socket's thread.
            if event["e"] == "aggTrade":
                trades.append(Decimal(event["p"]))
            elif event["e"].startswith("bfsync."):
                print("notice:", event)

        # Against Binance leave the config out: these are the fake's URLs.
        config = {"stream_url": fx.stream_url, "rest_url": fx.rest_url}
        with BinanceClient().market_service(on_event, config) as ms:
            ms.subscribe_book_ticker(["BTCUSDT"])
            ms.subscribe_aggregate_trade(["BTCUSDT"])
            # The local book: diffs of btcusdt@depth@100ms, snapshots over REST.
            book = ms.order_book("BTCUSDT", depth=100)
            if not book.wait_synced(timeout=10):
                raise SystemExit(f"the book did not sync: {book.last_error}")
            for _ in range(5):
                time.sleep(0.5)
                ticker = ms.latest("btcusdt@bookTicker") or {}
                update_id, bids, asks = book.levels(3)
                print(
                    f"bookTicker bid {ticker['b']} ask {ticker['a']} | "
                    f"book @{update_id}: bids {[str(p) for p, _ in bids]} "
                    f"asks {[str(p) for p, _ in asks]} | trades so far {len(trades)}"
                )
        stop.set()
        publisher.join()


if __name__ == "__main__":
    main()
