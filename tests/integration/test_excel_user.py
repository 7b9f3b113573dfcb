"""bfsync.excel's shared user stream and order cells against FakeExchange's private route."""

from __future__ import annotations

import asyncio
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import bfsync.excel as bx
from bfsync.excel import _shared
from bfsync.excel._livecells import NotLiveError
from bfsync.testing import FakeExchange
from bfsync.transport import State
from bfsync.userstream import GAP, SNAPSHOT
from tests.timing import scaled

from .test_excel import bfsync_threads, excel, keys, urls, wait_until

__all__ = ["excel", "keys"]  # fixtures shared with test_excel

SYMBOL = "BTCUSDT"


def private_connections(fx: FakeExchange) -> int:
    """Open connections on the fake's /private route."""
    return len(fx.stream_subscriptions("private"))


def keys_started(fx: FakeExchange) -> int:
    """userDataStream.start requests the fake answered."""
    return len(fx.requests_for("userDataStream.start"))


def resting_buy(confirm: Any = "YES", **kw: Any) -> str:
    """A BTCUSDT limit buy below the price, placed through the confirmed cell macro."""
    return bx.place_order(SYMBOL, "BUY", "LIMIT", "0.010", "49000", confirm, **kw)


def shows(cell: Any, expected: Any) -> bool:
    """Recalculate ``cell()`` until it shows ``expected`` (bounded)."""
    return wait_until(lambda: expected == cell())


class TestSharing:
    """One stream per name, on the shared service."""

    def test_sixteen_threads_one_stream_one_private_connection(self, excel: FakeExchange) -> None:
        """16 cells asking at once: one UserDataStream, one listenKey, one private connection."""
        barrier = threading.Barrier(16)

        def cell(_: int) -> tuple[Any, int]:
            barrier.wait(scaled(5))
            return bx.order_state("nothing-yet"), id(bx.user_stream())

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(cell, range(16)))

        assert {"#BF! waiting for order nothing-yet"} == {r[0] for r in results}
        assert 1 == len({r[1] for r in results})
        assert (1, 1) == (keys_started(excel), private_connections(excel))
        assert bx.user_stream() is bx.user_stream("default")
        assert State.CONNECTED == bx.user_stream().state

    def test_from_a_thread_running_an_asyncio_loop(self, excel: FakeExchange) -> None:
        """A cell called inside a running event loop starts the stream and answers."""

        async def cell() -> Any:
            return bx.order_state("in-a-loop")

        assert "#BF! waiting for order in-a-loop" == asyncio.run(cell())
        assert 1 == private_connections(excel)

    def test_the_stream_runs_on_the_shared_service(self, excel: FakeExchange) -> None:
        """Its listenKey came over the shared service's connection; it reconciles."""
        stream = bx.user_stream()

        assert [0] == [r["connection"] for r in excel.requests_for("userDataStream.start")]
        assert 1 == excel.total_connections
        assert wait_until(lambda: stream.latest(SNAPSHOT) is not None)
        assert "start" == (stream.latest(SNAPSHOT) or {})["reason"]

    def test_no_keys_is_a_readable_error(self, fx: FakeExchange, keys: tuple[str, str]) -> None:
        """Without keys, the cell says so (and names the environment variables)."""
        bx.configure(config=urls(fx))

        assert bx.order_state("x").startswith("#BF! key: no keys: set BINANCE_API_KEY")


class TestOrderState:
    """What order_state and last_fill show."""

    def test_a_cell_shows_the_fill_of_an_order_a_macro_placed(self, excel: FakeExchange) -> None:
        """place_order starts the stream; the order's NEW shows, then its fill after a move."""
        client_id = resting_buy()
        assert not client_id.startswith("#BF!")
        new = ["NEW", 0.0, 0.0, SYMBOL, "BUY", "LIMIT"]
        assert shows(lambda: bx.order_state(client_id)[1][:6], new)

        excel.move_price(SYMBOL, "48900")

        filled = ["FILLED", 0.01, 49000.0, SYMBOL, "BUY", "LIMIT"]
        assert shows(lambda: bx.order_state(client_id)[1][:6], filled)
        header, row = bx.order_state(client_id)
        assert list(bx.ORDER_STATE_COLUMNS) == header
        assert 0 <= row[6] < scaled(5)
        assert "FILLED" == bx.order_state(client_id, "status")
        assert 49000.0 == bx.order_state(client_id, "avgPrice")
        assert 0.01 == bx.order_state(client_id, "filled")
        fill = bx.last_fill(SYMBOL)
        assert list(bx.FILL_COLUMNS) == fill[0]
        assert [SYMBOL, "BUY", 49000.0, 0.01, client_id, "FILLED"] == fill[1][:6]
        assert fill == bx.last_fill()
        assert client_id == bx.last_fill(None, "clientOrderId")
        assert "#BF! no fill yet" == bx.last_fill("ETHUSDT")
        assert 1 == private_connections(excel)

    def test_an_algo_order_shows_its_algo_status(self, excel: FakeExchange) -> None:
        """A conditional order's cell shows the ALGO_UPDATE's algo status."""
        client_id = bx.place_order(
            SYMBOL, "SELL", "STOP_MARKET", "0.010", confirm=True, stopPrice="40000"
        )

        assert shows(lambda: bx.order_state(client_id, "status"), "NEW")
        assert "STOP_MARKET" == bx.order_state(client_id, "type")

    def test_an_unconfirmed_order_starts_nothing(self, excel: FakeExchange) -> None:
        """Without confirmation nothing is sent and no stream is started."""
        assert resting_buy(confirm="no").startswith("#BF! not confirmed")
        assert (0, 0) == (keys_started(excel), private_connections(excel))

    def test_bad_arguments_are_readable_errors(self, excel: FakeExchange) -> None:
        """A bad id or field is named in the cell; errors='raise' raises instead."""
        assert bx.order_state(None).startswith("#BF! invalid: client_order_id must be text")
        assert bx.order_state("x", "colour").startswith("#BF! invalid: field must be one of")
        assert bx.last_fill(3).startswith("#BF! invalid: symbol must be text")
        bx.set_options(errors="raise")
        with pytest.raises(NotLiveError, match="waiting for order 12345"):
            bx.order_state(12345.0)  # Excel hands numbers over as floats


class TestRecovery:
    """Gaps are shown, and the stream comes back by itself."""

    def test_a_dropped_private_connection_marks_open_orders_until_their_next_event(
        self, excel: FakeExchange
    ) -> None:
        """After a gap, a NEW order shows '#BF! gap'; a FILLED one stays; the next event ends it."""
        done = bx.place_order(SYMBOL, "BUY", "MARKET", "0.010", confirm="yes")
        resting = resting_buy()
        assert shows(lambda: bx.order_state(resting, "status"), "NEW")
        assert shows(lambda: bx.order_state(done, "status"), "FILLED")
        stream = bx.user_stream()

        excel.drop_stream_connections("private")
        assert wait_until(lambda: stream.latest(GAP) is not None)
        assert wait_until(lambda: str(bx.order_state(resting)).startswith("#BF! gap: NEW"))
        marker = bx.order_state(resting)
        assert "may be out of date" in marker and "connection lost" in marker
        assert "FILLED" == bx.order_state(done, "status")
        assert str(bx.last_fill()).startswith("#BF! gap: a later fill may be missing")

        excel.move_price(SYMBOL, "48900")

        assert shows(lambda: bx.order_state(resting, "status"), "FILLED")
        assert resting == bx.last_fill(SYMBOL, "clientOrderId")
        assert stream is bx.user_stream()
        assert 1 == private_connections(excel)

    def test_while_the_stream_reconnects_final_states_show_and_open_ones_are_marked(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """Reconnecting by itself: FILLED still shows; NEW, last fill, unknown ids say why."""
        bx.configure(*keys, config=urls(fx, reconnect_delay=0.05))
        bx.set_options(reconnect_interval=scaled(30))
        done = bx.place_order(SYMBOL, "BUY", "MARKET", "0.010", confirm=True)
        resting = resting_buy()
        assert shows(lambda: bx.order_state(resting, "status"), "NEW")
        assert shows(lambda: bx.order_state(done, "status"), "FILLED")
        stream = bx.user_stream()

        fx.refuse_handshakes()
        fx.drop_stream_connections("private")
        assert wait_until(lambda: stream.state is State.RECONNECTING)

        reconnecting = "the user stream is reconnecting"
        assert f"#BF! gap: NEW may be out of date, {reconnecting}" == bx.order_state(resting)
        assert "FILLED" == bx.order_state(done, "status")
        assert f"#BF! gap: a later fill may be missing, {reconnecting}" == bx.last_fill()
        assert f"#BF! waiting for order other ({reconnecting})" == bx.order_state("other")
        fx.accept_handshakes()
        assert wait_until(lambda: stream.state is State.CONNECTED)
        assert shows(
            lambda: str(bx.order_state(resting))[:37], "#BF! gap: NEW may be out of date, eve"
        )
        fx.move_price(SYMBOL, "48900")
        assert shows(lambda: bx.order_state(resting, "status"), "FILLED")
        assert stream is bx.user_stream()

    def test_an_expired_listen_key_is_replaced_and_fills_show_again(
        self, excel: FakeExchange
    ) -> None:
        """listenKeyExpired: the stream gets a new key by itself; a later fill shows."""
        resting = resting_buy()
        assert shows(lambda: bx.order_state(resting, "status"), "NEW")
        stream = bx.user_stream()
        old = stream.listen_key

        assert excel.expire_listen_key(old or "")
        assert wait_until(lambda: stream.listen_key not in (None, old))
        assert wait_until(lambda: stream.state is State.CONNECTED)
        excel.move_price(SYMBOL, "48900")

        assert shows(lambda: bx.order_state(resting, "status"), "FILLED")
        assert "listenKeyExpired" == (stream.latest(GAP) or {})["reason"]
        assert stream is bx.user_stream()
        assert wait_until(lambda: 1 == private_connections(excel))  # the old one retires

    def test_a_closed_service_brings_a_new_stream(self, excel: FakeExchange) -> None:
        """The shared service closed under it: the next cell makes both anew, one connection."""
        resting = resting_buy()
        assert shows(lambda: bx.order_state(resting, "status"), "NEW")
        old = bx.user_stream()

        bx.service().close()
        assert wait_until(lambda: old.state is State.CLOSED)

        assert str(bx.order_state(resting)).startswith("#BF! gap: NEW may be out of date")
        assert "started anew" in bx.order_state(resting)
        assert old is not bx.user_stream()
        excel.move_price(SYMBOL, "48900")
        assert shows(lambda: bx.order_state(resting, "status"), "FILLED")
        assert wait_until(lambda: 1 == private_connections(excel))
        assert 2 == keys_started(excel)

    def test_a_stream_that_cannot_start_is_retried_at_a_limited_rate(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """No stream server: the reason shows; a storm of cells costs one attempt per interval."""
        bx.configure(*keys, config=urls(fx, stream_url="ws://127.0.0.1:9"))
        bx.set_options(reconnect_interval=scaled(30))

        first = bx.order_state("x")
        storm = {bx.order_state("x") for _ in range(200)}

        assert first.startswith("#BF! not connected: cannot open the user data stream")
        assert 1 == len(storm)
        (later,) = storm
        assert "(next attempt in" in later and "cannot open the user data stream" in later
        assert 1 == keys_started(fx)
        bx.set_options(reconnect_interval=0.001)
        placed = bx.place_order(SYMBOL, "BUY", "MARKET", "0.010", confirm=True)
        assert not placed.startswith("#BF!")  # orders do not wait for a failing stream
        assert 1 == keys_started(fx)


class TestLifecycle:
    """Reloads keep it; close leaves nothing."""

    def test_reloading_keeps_the_stream_and_its_records(self, excel: FakeExchange) -> None:
        """importlib.reload of bfsync.excel and its registry: same stream, no new connection."""
        client_id = bx.place_order(SYMBOL, "BUY", "MARKET", "0.010", confirm=True)
        assert shows(lambda: bx.order_state(client_id, "status"), "FILLED")
        stream = bx.user_stream()
        threads = bfsync_threads()

        importlib.reload(_shared)
        reloaded = importlib.reload(bx)

        assert stream is reloaded.user_stream()
        assert "FILLED" == reloaded.order_state(client_id, "status")
        assert (1, 1) == (keys_started(excel), private_connections(excel))
        assert threads == bfsync_threads()

    def test_other_keys_forget_the_orders_of_the_old_ones(
        self, excel: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """configure() with another key: a new stream, and no order of the old key is shown."""
        client_id = bx.place_order(SYMBOL, "BUY", "MARKET", "0.010", confirm=True)
        assert shows(lambda: bx.order_state(client_id, "status"), "FILLED")
        old = bx.user_stream()

        bx.configure(*excel.add_hmac_key(), config=urls(excel))

        assert State.CLOSED == old.state
        assert f"#BF! waiting for order {client_id}" == bx.order_state(client_id)
        assert old is not bx.user_stream()

    def test_close_ends_the_stream_before_its_service_and_leaves_no_thread(
        self, excel: FakeExchange, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """bx.close(): the stream is closed before its service, every thread ends."""
        stream = bx.user_stream()
        service = bx.service()
        seen: list[State] = []
        close = service.close
        monkeypatch.setattr(service, "close", lambda: (seen.append(stream.state), close()))

        bx.close()

        assert [State.CLOSED] == seen  # the stream's state when its service was closed
        assert (State.CLOSED, State.CLOSED) == (stream.state, service.state)
        assert wait_until(lambda: [] == bfsync_threads())
        assert bx.user_stream() is not stream
        assert 1 == private_connections(excel)
