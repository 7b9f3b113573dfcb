"""From a notebook: numpy numbers, logging, close_all() and a thread running an asyncio loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest

import bfsync
from bfsync import State, WebSocketService
from bfsync.exceptions import ConnectionError, OrderValidationError
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .conftest import Credentials, client_threads

MakeService = Callable[..., WebSocketService]


@pytest.mark.parametrize("validation", [True, False])
def test_numpy_numbers_reach_the_exchange_exactly(
    make_service: MakeService, fx: FakeExchange, validation: bool
) -> None:
    """np.float64 / np.int64 orders and depth limits are taken and sent as exact text / ints."""
    ws = make_service(validation=validation)

    order = ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity=np.float64(0.002),
        price=np.int64(50000),
        timeInForce="GTC",
        recvWindow=np.int64(5000),
    )
    depth = ws.get_depth("BTCUSDT", limit=np.int64(5))

    placed = fx.requests_for("order.place")[0]["params"]
    assert (200, 200) == (order["status"], depth["status"])
    assert ("0.002", "50000", 5000) == (
        placed["quantity"],
        placed["price"],
        placed["recvWindow"],
    )
    assert 5 == fx.requests_for("depth")[0]["params"]["limit"]


def test_unsendable_value_is_refused_in_the_callers_thread(
    make_service: MakeService, fx: FakeExchange
) -> None:
    """Without validation an object JSON cannot carry is refused by name, nothing sent."""
    ws = make_service(validation=False)

    with pytest.raises(OrderValidationError, match=r"^limit must be a number, text or a bool"):
        ws.get_depth("BTCUSDT", limit=object())  # type: ignore[call-overload]

    assert [] == fx.requests
    assert 200 == ws.get_depth("BTCUSDT", limit=5)["status"]  # the I/O thread is fine


def test_get_depth_limit_validated_as_an_integer(make_service: MakeService) -> None:
    """With validation, a depth limit must be one of Binance's values, as any int type."""
    ws = make_service(validation=True)

    with pytest.raises(OrderValidationError, match="limit must be one of 5, 10, 20"):
        ws.get_depth("BTCUSDT", limit=np.int64(7))
    assert 200 == ws.get_depth("BTCUSDT", limit=np.int32(10))["status"]


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_logging_shows_connect_state_calls_and_close_without_secrets(
    fx: FakeExchange, credentials: dict[str, Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    """INFO: connect, states, close; DEBUG: each call with its client order id; no key."""
    api_key, secret = credentials["HMAC"]
    caplog.set_level(logging.DEBUG, logger="bfsync")
    ws = WebSocketService(api_key, secret, config={"ws_url": fx.url, "request_timeout": 5})
    ws.connect()
    reply = ws.place_limit_order(
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.002",
        price="50000",
        timeInForce="GTC",
        newClientOrderId="nb-1",
    )
    ws.close()

    def messages() -> list[tuple[str, str, str]]:
        return [(r.name, r.levelname, r.getMessage()) for r in caplog.records]

    assert wait_until(lambda: ("bfsync.service", "INFO", "state: closed") in messages(), 5)
    service = [(level, text) for name, level, text in messages() if name == "bfsync.service"]
    assert 200 == reply["status"]
    assert ("INFO", f"connecting to {fx.url} (HMAC key)") in service
    assert ("INFO", f"connected to {fx.url}") in service
    assert ("INFO", "state: connected") in service
    assert ("INFO", f"closing the connection to {fx.url}") in service
    assert ("DEBUG", "submit order.place symbol=BTCUSDT client_order_id=nb-1 wait=True") in service
    assert ("DEBUG", "submit session.status symbol=None client_order_id=None wait=True") in service
    assert [] == [text for _, _, text in messages() if api_key in text or secret in text]


def test_close_all_closes_every_open_service(make_service: MakeService) -> None:
    """close_all() closes what is open (a re-run cell's old service) and counts it."""
    first, second, closed = make_service(), make_service(), make_service()
    closed.close()

    count = bfsync.close_all()

    assert 2 == count
    assert (State.CLOSED, State.CLOSED) == (first.state, second.state)
    with pytest.raises(ConnectionError):
        first.get_ticker_price("BTCUSDT")
    assert 0 == bfsync.close_all()
    assert wait_until(lambda: client_threads() == [], 5)


def test_close_all_counts_reconnected_and_forgets_collected_services(
    make_service: MakeService, fx: FakeExchange, credentials: dict[str, Credentials]
) -> None:
    """A service connected again is open again; one dropped and collected is forgotten."""
    ws = make_service()
    ws.close()
    ws.connect()
    dropped = WebSocketService(*credentials["HMAC"], config={"ws_url": fx.url})
    dropped.connect()
    del dropped
    gc.collect()  # its finalizer stops its threads

    assert 1 == bfsync.close_all()
    assert State.CLOSED == ws.state


def test_calls_from_a_thread_running_an_asyncio_loop(make_service: MakeService) -> None:
    """In a running loop: await wrap_future(...) and to_thread(...) work and do not block it."""
    ws = make_service()
    results: dict[str, Any] = {}

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        beat = asyncio.ensure_future(ticker())
        futures = [
            asyncio.wrap_future(ws.get_ticker_price(symbol, wait_for_response=False))
            for symbol in ("BTCUSDT", "ETHUSDT")
        ]
        prices = await asyncio.wait_for(asyncio.gather(*futures), scaled(10))
        depth = await asyncio.wait_for(asyncio.to_thread(ws.get_depth, "BTCUSDT", 5), scaled(10))
        beat.cancel()
        results["prices"] = [reply["result"]["symbol"] for reply in prices]
        results["depth"] = depth["status"]
        results["ticks"] = ticks

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread
            results["error"] = exc

    thread = threading.Thread(target=run, name="user-asyncio-loop")
    thread.start()
    thread.join(scaled(20))

    assert not thread.is_alive()
    assert "error" not in results, results.get("error")
    assert (["BTCUSDT", "ETHUSDT"], 200) == (results["prices"], results["depth"])
    assert results["ticks"] > 0  # the loop ran while it waited
