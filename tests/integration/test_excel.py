"""bfsync.excel against FakeExchange: shared services, cached reads, outages, reloads, orders."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

import bfsync.excel as bx
from bfsync.excel import _cache, _shared
from bfsync.exceptions import RequestError
from bfsync.testing import FakeExchange
from bfsync.transport import State
from tests.timing import scaled

SYMBOL = "BTCUSDT"


def bfsync_threads() -> list[str]:
    """Names of bfsync's client threads still alive (I/O, dispatcher, REST pool)."""
    prefixes = ("bfsync-io", "bfsync-dispatch", "bfsync-rest-")
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(prefixes))


def urls(fx: FakeExchange, **more: Any) -> dict[str, Any]:
    """A config that points at the fake, with short timeouts."""
    return {
        "ws_url": fx.url,
        "rest_url": fx.rest_url,
        "connection_timeout": scaled(5),
        "request_timeout": scaled(5),
        **more,
    }


def reset() -> None:
    """Close every shared service and forget names, options and cache counters."""
    bx.close()
    registry = _shared.registry()
    registry.entries.clear()
    registry.cache = _cache.TtlCache()
    bx.set_options(errors="value", ttl=1.0, reconnect_interval=5.0)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (scaled) passed."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def keys(fx: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """An HMAC key of the fake; no keys in the environment; bfsync.excel reset around."""
    monkeypatch.delenv(bx.API_KEY_ENV, raising=False)
    monkeypatch.delenv(bx.PRIVATE_KEY_ENV, raising=False)
    reset()
    yield fx.add_hmac_key()
    reset()
    assert [] == bfsync_threads()


@pytest.fixture
def excel(fx: FakeExchange, keys: tuple[str, str]) -> FakeExchange:
    """The default shared service configured for the fake (not connected yet)."""
    bx.configure(*keys, config=urls(fx))
    return fx


class TestReads:
    """What each read returns."""

    def test_price_is_a_number(self, excel: FakeExchange) -> None:
        """BF_PRICE's function returns the last price as a float; lower case is accepted."""
        excel.set_price(SYMBOL, "43210.5")

        assert 43210.5 == bx.price("btcusdt")

    def test_book_is_a_table_or_one_field(self, excel: FakeExchange) -> None:
        """book() is a header row and one row of numbers; with a field, that number."""
        table = bx.book(SYMBOL)

        assert ["bidPrice", "bidQty", "askPrice", "askQty"] == table[0]
        assert 2 == len(table)
        assert all(isinstance(v, float) for v in table[1])
        assert table[1][0] == bx.book(SYMBOL, "bid") == bx.book(SYMBOL, "BID_PRICE")
        assert table[1][3] == bx.book(SYMBOL, "askQty")

    def test_depth_is_a_table_with_a_header(self, excel: FakeExchange) -> None:
        """depth() has a header row and one row per level, bids falling, asks rising."""
        table = bx.depth(SYMBOL, 5.0)  # Excel passes numbers as floats

        assert list(bx.DEPTH_COLUMNS) == table[0]
        assert 6 == len(table)
        bids = [row[0] for row in table[1:]]
        asks = [row[2] for row in table[1:]]
        assert sorted(bids, reverse=True) == bids
        assert sorted(asks) == asks
        assert bids[0] < asks[0]

    def test_positions_lists_open_positions_only(self, excel: FakeExchange) -> None:
        """positions() is a header row plus one row per non-zero position."""
        assert [list(bx.POSITION_COLUMNS)] == bx.positions()

        excel.set_position(SYMBOL, "0.5", entry_price="40000")
        bx.set_options(ttl=0)
        table = bx.positions()

        assert 2 == len(table)
        row = dict(zip(table[0], table[1]))
        assert (SYMBOL, 0.5, 40000.0) == (row["symbol"], row["positionAmt"], row["entryPrice"])
        assert [list(bx.POSITION_COLUMNS)] == bx.positions("ETHUSDT")

    def test_balances_table_and_one_asset(self, excel: FakeExchange) -> None:
        """balances() is a table of non-zero assets; with an asset, one of its numbers."""
        excel.set_balance("USDT", "1234.5")
        table = bx.balances()

        assert list(bx.BALANCE_COLUMNS) == table[0]
        assert ["USDT"] == [row[0] for row in table[1:]]
        assert 1234.5 == bx.balances("usdt")
        assert 1234.5 == bx.balances("USDT", "availableBalance")
        assert "#BF! invalid: no balance of asset 'XYZ'" == bx.balances("XYZ")

    def test_open_orders_after_an_order(self, excel: FakeExchange) -> None:
        """open_orders() shows an order placed a moment ago (the cache is refreshed)."""
        assert [list(bx.ORDER_COLUMNS)] == bx.open_orders()

        client_id = bx.place_order(SYMBOL, "BUY", "LIMIT", 0.01, 45000.0, confirm=True)
        table = bx.open_orders(SYMBOL)

        assert 2 == len(table)
        row = dict(zip(table[0], table[1]))
        assert (client_id, "BUY", 45000.0, "NEW") == (
            row["clientOrderId"],
            row["side"],
            row["price"],
            row["status"],
        )
        assert [list(bx.ORDER_COLUMNS)] == bx.open_orders("ETHUSDT")

    def test_an_exchange_error_is_a_value(self, excel: FakeExchange) -> None:
        """A refused symbol shows Binance's code and message."""
        assert "#BF! -1121 Invalid symbol." == bx.price("NOPEUSDT")

    def test_raise_mode_raises_the_exchange_error(self, excel: FakeExchange) -> None:
        """With errors='raise' the same call raises RequestError with the code."""
        bx.set_options(errors="raise")

        with pytest.raises(RequestError) as caught:
            bx.price("NOPEUSDT")
        assert -1121 == caught.value.code

    def test_a_refused_symbol_is_not_asked_again_within_ttl(self, excel: FakeExchange) -> None:
        """The exchange's refusal is cached like a value: 100 cells, one request."""
        bx.set_options(ttl=scaled(30))
        texts = {bx.price("NOPEUSDT") for _ in range(100)}

        assert {"#BF! -1121 Invalid symbol."} == texts
        assert 1 == len(excel.requests_for("ticker.price"))


class TestSharing:
    """One connection per name, whatever the threads."""

    def test_sixteen_threads_make_one_connection(self, excel: FakeExchange) -> None:
        """16 threads asking at once for a service that does not exist yet: one connection."""
        barrier = threading.Barrier(16)

        def cell(i: int) -> list[Any]:
            barrier.wait(scaled(5))
            return [bx.price(SYMBOL), bx.book(SYMBOL, "ask"), bx.balances("USDT"), bx.status()]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(cell, range(16)))

        assert 1 == excel.total_connections
        assert 1 == len({tuple(r) for r in results})
        assert isinstance(results[0][0], float)
        assert "connected" == results[0][3]
        services = set()
        with ThreadPoolExecutor(16) as pool:
            services = set(pool.map(lambda _: id(bx.service()), range(64)))
        assert 1 == len(services)

    def test_concurrent_identical_reads_share_one_request(self, excel: FakeExchange) -> None:
        """While one price request is on its way, 15 more cells asking join it (ttl 0)."""
        bx.service()  # connected first: this test is about the request, not the connection
        excel.clear_requests()
        bx.set_options(ttl=0)
        excel.delay("ticker.price", scaled(0.5))
        barrier = threading.Barrier(16)

        def cell(i: int) -> Any:
            barrier.wait(scaled(5))
            return bx.price(SYMBOL)

        with ThreadPoolExecutor(16) as pool:
            prices = list(pool.map(cell, range(16)))

        assert 1 == len(set(prices))
        assert isinstance(prices[0], float)
        assert 1 == len(excel.requests_for("ticker.price"))

    def test_a_recalculation_storm_makes_a_few_requests(self, excel: FakeExchange) -> None:
        """1,000 calls over five questions from 16 threads: about one request per question."""
        bx.set_options(ttl=scaled(5))
        calls: list[Callable[[], Any]] = [
            lambda: bx.price(SYMBOL),
            lambda: bx.price("ETHUSDT"),
            lambda: bx.book(SYMBOL),
            lambda: bx.depth(SYMBOL, 20),
            lambda: bx.positions(),
        ]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: calls[i % 5](), range(1000)))

        assert not [r for r in results if isinstance(r, str) and r.startswith("#BF!")]
        methods = [r["method"] for r in excel.requests if r["method"] != "session.status"]
        assert 5 <= len(methods) <= 10
        assert 1 == excel.total_connections

    def test_names_are_separate_services(self, fx: FakeExchange, keys: tuple[str, str]) -> None:
        """Two names, two services and connections; each name made once."""
        bx.configure(*keys, config=urls(fx), name="a")
        bx.configure(*keys, config=urls(fx), name="b")

        assert bx.price(SYMBOL, "a") == bx.price(SYMBOL, "b")
        assert bx.service("a") is not bx.service("b")
        assert 2 == fx.total_connections

    def test_an_unconfigured_name_uses_the_environment(
        self, fx: FakeExchange, keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Keys from BINANCE_API_KEY / BINANCE_PRIVATE_KEY (an HMAC secret) when not given."""
        monkeypatch.setenv(bx.API_KEY_ENV, keys[0])
        monkeypatch.setenv(bx.PRIVATE_KEY_ENV, keys[1])
        bx.configure(config=urls(fx))

        assert 1234.0 == (fx.set_balance("USDT", "1234"), bx.balances("USDT"))[1]

    def test_a_key_file_path_from_the_environment(
        self,
        fx: FakeExchange,
        keys: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """BINANCE_PRIVATE_KEY may be the path of an Ed25519 key file."""
        api_key, path = fx.add_ed25519_key(tmp_path)
        monkeypatch.setenv(bx.API_KEY_ENV, api_key)
        monkeypatch.setenv(bx.PRIVATE_KEY_ENV, str(path))
        bx.configure(config=urls(fx))

        assert isinstance(bx.balances("USDT"), float)
        assert "Ed25519" == bx.service().key_type

    def test_no_keys_is_a_clear_value_and_no_connection(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """Without keys anywhere, the cell says which variables to set; nothing connects."""
        bx.configure(config=urls(fx))

        text = bx.price(SYMBOL)

        assert text.startswith("#BF! key: no keys: set BINANCE_API_KEY and BINANCE_PRIVATE_KEY")
        assert 0 == fx.total_connections

    def test_secrets_never_show_in_a_cell(self, fx: FakeExchange, keys: tuple[str, str]) -> None:
        """A wrong secret gives the exchange's refusal; neither key nor secret is in it."""
        api_key, _ = keys
        wrong = "S" * 64
        bx.configure(api_key, wrong, urls(fx))

        text = bx.balances("USDT")

        assert text.startswith("#BF! -1022")
        assert wrong not in text
        assert wrong not in repr(bx.service())
        assert wrong not in repr(_shared.registry().entries["default"].settings)

    def test_configure_again_with_the_same_settings_keeps_the_service(
        self, excel: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """The same configure() again keeps the connection; new settings make a new one."""
        first = bx.service()
        bx.configure(*keys, config=urls(excel))
        assert first is bx.service()
        assert 1 == excel.total_connections

        bx.configure(*keys, config=urls(excel, request_timeout=scaled(6)))
        second = bx.service()

        assert second is not first
        assert State.CLOSED == first.state
        assert 2 == excel.total_connections

    def test_from_a_thread_running_an_asyncio_loop(self, excel: FakeExchange) -> None:
        """Called inside a coroutine and from the loop's executor, the functions just work."""
        out: dict[str, Any] = {}

        async def main() -> None:
            out["direct"] = bx.price(SYMBOL)  # blocks the loop briefly, as a sync UDF would
            loop = asyncio.get_running_loop()
            out["executor"] = await loop.run_in_executor(None, bx.depth, SYMBOL, 5)
            out["status"] = bx.status()

        thread = threading.Thread(target=lambda: asyncio.run(main()))
        thread.start()
        thread.join(scaled(10))

        assert not thread.is_alive()
        assert isinstance(out["direct"], float)
        assert 6 == len(out["executor"])
        assert "connected" == out["status"]
        assert 1 == excel.total_connections


class TestRecovery:
    """After an outage the next call brings the service back by itself."""

    def test_a_failed_service_comes_back_after_a_restart(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """Exchange stopped: the cell shows why; restarted: the next call succeeds."""
        bx.configure(*keys, config=urls(fx, max_reconnect_attempts=1))
        bx.set_options(reconnect_interval=scaled(0.3))
        service = bx.service()
        assert isinstance(bx.price(SYMBOL), float)

        fx.stop()
        assert wait_until(lambda: service.state is State.FAILED)
        down = bx.price("ETHUSDT")
        assert down.startswith("#BF! not connected: ")
        assert "not connected: " in bx.status()

        fx.start()
        time.sleep(scaled(0.3))
        assert isinstance(bx.price("ETHUSDT"), float)
        assert service is bx.service()
        assert "connected" == bx.status()
        assert 1 == fx.connection_count

    def test_a_reconnecting_service_is_not_waited_for(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """A service in a long reconnection backoff answers at once, then is reconnected."""
        bx.configure(*keys, config=urls(fx, reconnect_delay=600))
        bx.set_options(reconnect_interval=scaled(0.3))
        service = bx.service()

        fx.stop()
        assert wait_until(lambda: service.state is State.RECONNECTING)
        down = bx.price(SYMBOL)  # answered before any request is queued: no timeout text
        assert down.startswith("#BF! not connected: reconnecting")

        fx.start()
        time.sleep(scaled(0.3))
        assert isinstance(bx.price(SYMBOL), float)
        assert service is bx.service()
        assert 1 == fx.connection_count

    def test_connection_attempts_are_rate_limited(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """While the exchange refuses handshakes, 200 calls make one attempt, not 200."""
        bx.configure(*keys, config=urls(fx, max_reconnect_attempts=1))
        bx.set_options(reconnect_interval=scaled(60))
        service = bx.service()
        fx.refuse_handshakes()
        fx.drop_connections()
        assert wait_until(lambda: service.state is State.FAILED)
        refused = fx.handshakes_refused

        texts = {bx.price(SYMBOL) for _ in range(200)}

        assert fx.handshakes_refused - refused <= 1
        assert all(t.startswith("#BF! not connected: ") for t in texts)
        assert any("next attempt in" in t for t in texts)

    def test_a_closed_service_is_opened_again(self, excel: FakeExchange) -> None:
        """Someone closed the shared service: the next call opens it again."""
        bx.service().close()

        assert isinstance(bx.price(SYMBOL), float)
        assert 2 == excel.total_connections


class TestReload:
    """State lives in bfsync.excel, so reloading modules keeps the connection."""

    def test_reloading_the_users_module_keeps_the_connection(
        self, excel: FakeExchange, keys: tuple[str, str], tmp_path: Path
    ) -> None:
        """A user module that configures at import, reloaded three times: one connection."""
        module = tmp_path / "my_workbook_udfs.py"
        module.write_text(
            textwrap.dedent(
                f"""
                import bfsync.excel as bx

                bx.configure({keys[0]!r}, {keys[1]!r}, {urls(excel)!r})

                def my_price(symbol):
                    return bx.price(symbol)
                """
            )
        )
        sys.path.insert(0, str(tmp_path))
        try:
            user = importlib.import_module("my_workbook_udfs")
            first = user.my_price(SYMBOL)
            threads = bfsync_threads()
            for _ in range(3):
                user = importlib.reload(user)
                assert first == user.my_price(SYMBOL)
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("my_workbook_udfs", None)

        assert isinstance(first, float)
        assert 1 == excel.total_connections
        assert threads == bfsync_threads()

    def test_reloading_bfsync_excel_keeps_services_cache_and_options(
        self, excel: FakeExchange
    ) -> None:
        """importlib.reload of bfsync.excel and of its registry module keeps everything."""
        service = bx.service()
        bx.set_options(ttl=scaled(30))
        bx.price(SYMBOL)
        threads = bfsync_threads()

        importlib.reload(_shared)
        reloaded = importlib.reload(bx)
        reloaded.price(SYMBOL)

        assert service is reloaded.service()
        assert scaled(30) == reloaded.get_options()["ttl"]
        assert 1 == len(excel.requests_for("ticker.price"))
        assert 1 == excel.total_connections
        assert threads == bfsync_threads()


class TestOrders:
    """place_order: confirmed, validated, never cached or re-sent."""

    def test_a_confirmed_order_returns_its_client_order_id(self, excel: FakeExchange) -> None:
        """A confirmed LIMIT order is placed (GTC by default) and its client id returned."""
        client_id = bx.place_order(SYMBOL, "buy", "limit", 0.01, 45000.0, confirm="yes")

        [order] = excel.orders.values()
        assert client_id == order["clientOrderId"]
        assert ("BUY", "LIMIT", "GTC") == (order["side"], order["type"], order["timeInForce"])

    def test_a_conditional_order_returns_its_client_algo_id(self, excel: FakeExchange) -> None:
        """A STOP_MARKET order goes to algoOrder.place; its clientAlgoId comes back."""
        client_id = bx.place_order(
            SYMBOL, "SELL", "STOP_MARKET", 0.01, confirm=True, stopPrice=40000.0
        )

        [algo] = excel.algo_orders.values()
        assert client_id == algo["clientAlgoId"]

    def test_an_unconfirmed_order_is_not_sent(self, excel: FakeExchange) -> None:
        """Without confirm, nothing reaches the exchange."""
        text = bx.place_order(SYMBOL, "BUY", "MARKET", 0.01)

        assert text.startswith("#BF! not confirmed")
        assert [] == excel.requests_for("order.place")

    def test_validation_refuses_before_sending(self, excel: FakeExchange) -> None:
        """A keyword MARKET orders do not take is refused by name, before sending."""
        text = bx.place_order(SYMBOL, "BUY", "MARKET", 0.01, confirm=True, stopPrice=40000.0)

        assert text.startswith("#BF! invalid: stopPrice is not a parameter of MARKET orders")
        assert [] == excel.requests_for("order.place")

    def test_an_unanswered_order_says_its_outcome_is_unknown(
        self, fx: FakeExchange, keys: tuple[str, str]
    ) -> None:
        """No reply in time: the text says 'outcome unknown' with the id to look it up by."""
        bx.configure(*keys, config=urls(fx, request_timeout=scaled(0.5)))
        bx.service()
        fx.withhold("order.place")

        text = bx.place_order(SYMBOL, "BUY", "LIMIT", 0.01, 45000.0, confirm=True)

        [order] = fx.orders.values()
        assert text.startswith(f"#BF! outcome unknown, client order id {order['clientOrderId']}")
        assert 1 == len(fx.requests_for("order.place"))

    def test_raise_mode_raises_not_confirmed(self, excel: FakeExchange) -> None:
        """With errors='raise', a missing confirmation raises NotConfirmedError."""
        bx.set_options(errors="raise")

        with pytest.raises(bx.NotConfirmedError):
            bx.place_order(SYMBOL, "BUY", "MARKET", 0.01)

    def test_an_order_row(self, excel: FakeExchange) -> None:
        """A sheet row under a loose header places the order it describes."""
        header = ["Symbol", "Side", "Type", "Quantity", "Price", "Reduce Only", "Confirm", "Result"]
        values = ["BTCUSDT", "SELL", "LIMIT", 0.01, 55000.0, None, "YES", None]

        client_id = bx.place_order_row(header, values)

        [order] = excel.orders.values()
        assert client_id == order["clientOrderId"]
        # The fake answers prices at the symbol's precision, as Binance does.
        assert ("SELL", "55000.00") == (order["side"], order["price"])

    def test_a_misspelt_column_is_refused_by_name(self, excel: FakeExchange) -> None:
        """A column 'Stop Prce' is not silently dropped: validation names it."""
        header = ["Symbol", "Side", "Type", "Quantity", "Stop Prce", "Confirm"]
        values = ["BTCUSDT", "SELL", "STOP_MARKET", 0.01, 40000.0, True]

        text = bx.place_order_row(header, values)

        assert text.startswith("#BF! invalid: unknown parameter 'Stop Prce'")
        assert [] == excel.requests_for("algoOrder.place")


def test_shared_services_are_closed_at_exit(fx: FakeExchange, keys: tuple[str, str]) -> None:
    """A process that used a shared service closes it at exit (atexit), leaving no thread."""
    script = textwrap.dedent(
        f"""
        import atexit, threading

        def after():  # registered first, so it runs after bfsync.excel's own handler
            from bfsync.excel import _shared
            entry = _shared.registry().entries["default"]
            alive = [t.name for t in threading.enumerate() if t.name.startswith("bfsync-io")]
            print("service", entry.service, "io", alive)

        atexit.register(after)

        import bfsync.excel as bx

        bx.configure({keys[0]!r}, {keys[1]!r}, {urls(fx)!r})
        print("price", bx.price("BTCUSDT"))
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(60)
    )

    assert "" == done.stderr
    assert ["price 50000.0", "service None io []"] == done.stdout.split("\n")[:2]


def test_bfsync_excel_imports_without_xlwings() -> None:
    """With xlwings made unimportable, bfsync.excel imports and works; the UDF module says why."""
    script = textwrap.dedent(
        """
        import sys

        class NoXlwings:
            def find_spec(self, name, path=None, target=None):
                if name == "xlwings" or name.startswith("xlwings."):
                    raise ImportError("xlwings is hidden in this test")
                return None

        sys.meta_path.insert(0, NoXlwings())
        import bfsync.excel as bx
        print(bx.price(None))
        print("xlwings" in sys.modules)
        try:
            import bfsync.excel.xlwings_udfs
        except ImportError as exc:
            print("ImportError", exc)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(60)
    )

    assert "" == done.stderr
    assert [
        "#BF! invalid: symbol must be text, got None",
        "False",
        "ImportError bfsync.excel.xlwings_udfs needs xlwings: pip install 'bfsync[excel]'",
    ] == done.stdout.split("\n")[:3]


# xlwings (the excel extra). Excel and COM do not exist here. What is tested: the module
# imports and its functions work with the real xlwings of this platform; xlwings' own Windows
# decorators (xlwings/udfs.py, loaded with stand-ins for the three pywin32 modules it imports)
# register every function and generate the VBA wrappers "Import Python UDFs" would write; the
# macro's cell logic runs on a stand-in for a workbook. Only Windows with Excel runs the COM
# calls themselves.

UDFS = ["BF_BALANCE", "BF_BOOK", "BF_DEPTH", "BF_ORDERS", "BF_POSITIONS", "BF_PRICE", "BF_STATUS"]

# xlwings' Windows UDF code (xlwings/udfs.py) imports pythoncom, pywintypes and
# win32com.client at the top; registration and VBA generation use none of them.
WINDOWS_DECORATORS = """
import io, json, sys, types

pythoncom = types.ModuleType("pythoncom")
pythoncom.CoInitialize = lambda: None
win32com = types.ModuleType("win32com")
win32com.client = types.ModuleType("win32com.client")
win32com.client.Dispatch = None
sys.modules.update(
    pythoncom=pythoncom,
    pywintypes=types.ModuleType("pywintypes"),
    win32com=win32com,
    **{"win32com.client": win32com.client},
)
import xlwings, xlwings.udfs as udfs

xlwings.func, xlwings.arg, xlwings.ret = udfs.xlfunc, udfs.xlarg, udfs.xlret
xlwings.sub = udfs.xlsub
"""


@pytest.fixture
def udfs() -> Any:
    """bfsync.excel.xlwings_udfs; these tests need the excel extra (xlwings) installed."""
    pytest.importorskip("xlwings", reason="the excel extra (xlwings) is not installed")
    return importlib.import_module("bfsync.excel.xlwings_udfs")


def run(script: str) -> str:
    """Run ``script`` in a new interpreter; return its stdout (stderr must be empty)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(60)
    )
    assert "" == done.stderr
    return done.stdout


def test_the_functions_work_with_this_platforms_xlwings(udfs: Any, excel: FakeExchange) -> None:
    """With the real xlwings imported, each BF_ function returns what bfsync.excel does."""
    assert bx.price(SYMBOL) == udfs.BF_PRICE(SYMBOL)
    assert bx.book(SYMBOL) == udfs.BF_BOOK(SYMBOL)
    assert bx.depth(SYMBOL, 5) == udfs.BF_DEPTH(SYMBOL, 5.0)
    assert [list(bx.POSITION_COLUMNS)] == udfs.BF_POSITIONS()
    assert bx.balances("USDT") == udfs.BF_BALANCE("USDT", None, None)
    assert [list(bx.ORDER_COLUMNS)] == udfs.BF_ORDERS(None)
    assert "connected" == udfs.BF_STATUS(None)
    assert "#BF! -1121 Invalid symbol." == udfs.BF_PRICE("NOPEUSDT")
    assert 1 == excel.total_connections


def test_windows_registration_metadata(udfs: Any) -> None:
    """xlwings' Windows decorators see seven volatile functions in 'bfsync' and one macro."""
    script = WINDOWS_DECORATORS + textwrap.dedent(
        """
        import bfsync.excel.xlwings_udfs as m

        out = {}
        for name in dir(m):
            info = getattr(getattr(m, name), "__xlfunc__", None)
            if info is not None:
                out[name] = {
                    "sub": info["sub"],
                    "args": [(a["name"], a.get("optional", "required")) for a in info["args"]],
                    "volatile": info.get("volatile"),
                    "category": info.get("category"),
                    "async_mode": info.get("async_mode"),
                }
        print(json.dumps(out))
        """
    )
    found = json.loads(run(script))

    assert [*UDFS, "BF_PLACE_ORDER"] == sorted(found, key=lambda n: (n == "BF_PLACE_ORDER", n))
    for name in UDFS:
        assert (False, True, "bfsync", None) == (
            found[name]["sub"],
            found[name]["volatile"],
            found[name]["category"],
            found[name]["async_mode"],
        ), name
    assert found["BF_PLACE_ORDER"]["sub"] is True
    assert [["symbol", "required"], ["limit", 10], ["name", "default"]] == found["BF_DEPTH"]["args"]
    assert [["asset", None], ["field", None], ["name", "default"]] == found["BF_BALANCE"]["args"]


def test_windows_vba_wrappers_of_a_users_module(udfs: Any, tmp_path: Path) -> None:
    """A user module that star-imports the UDFs gets a VBA wrapper per function, in its name."""
    (tmp_path / "mybook.py").write_text("from bfsync.excel.xlwings_udfs import *\n")
    script = WINDOWS_DECORATORS + textwrap.dedent(
        f"""
        sys.path.insert(0, {str(tmp_path)!r})
        import mybook

        vba = io.StringIO()
        workbook = types.SimpleNamespace(Name="mybook.xlsm")
        udfs.generate_vba_wrapper("mybook", mybook, vba, workbook)
        print(vba.getvalue())
        """
    )
    vba = run(script)

    for line in [
        "Function BF_PRICE(symbol, Optional name)",
        "Function BF_BOOK(symbol, Optional field, Optional name)",
        "Function BF_DEPTH(symbol, Optional limit, Optional name)",
        "Function BF_POSITIONS(Optional symbol, Optional name)",
        "Function BF_BALANCE(Optional asset, Optional field, Optional name)",
        "Function BF_ORDERS(Optional symbol, Optional name)",
        "Function BF_STATUS(Optional name)",
        "Sub BF_PLACE_ORDER()",
        'BF_PRICE = XLPy.CallUDF("mybook", "BF_PRICE", Array(symbol, name), ThisWorkbook, '
        "Application.Caller)",
    ]:
        assert line in vba
    assert 7 == vba.count("Application.Volatile")
    assert "place_order(" not in vba  # no cell function can place an order


def test_reloading_the_udf_module_keeps_the_connection(
    udfs: Any, excel: FakeExchange, tmp_path: Path
) -> None:
    """What "Import Python UDFs" does (reload the modules) makes no new connection."""
    (tmp_path / "mybook_reload.py").write_text("from bfsync.excel.xlwings_udfs import *\n")
    sys.path.insert(0, str(tmp_path))
    try:
        user = importlib.import_module("mybook_reload")
        first = user.BF_PRICE(SYMBOL)
        threads = bfsync_threads()
        importlib.reload(udfs)
        user = importlib.reload(user)
        again = user.BF_PRICE(SYMBOL)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mybook_reload", None)

    assert isinstance(first, float)
    assert first == again
    assert 1 == excel.total_connections
    assert threads == bfsync_threads()


class Cell:
    """A stand-in for xlwings' Range over a cell or part of one row."""

    def __init__(self, sheet: Sheet, first: tuple[int, int], last: Any) -> None:
        self.sheet, self.first = sheet, first
        self.last = last if last is not None else first

    @property
    def value(self) -> Any:
        row, col = self.first
        values = [self.sheet.cells.get((row, c)) for c in range(col, self.last[1] + 1)]
        return values if len(values) > 1 else values[0]

    @value.setter
    def value(self, value: Any) -> None:
        self.sheet.cells[self.first] = value


class Sheet:
    """A stand-in for an xlwings Sheet: cells by (row, column), 1-based."""

    def __init__(self, rows: list[list[Any]]) -> None:
        self.cells = {(r, c): v for r, row in enumerate(rows, 1) for c, v in enumerate(row, 1)}

    def range(self, first: tuple[int, int], last: Any = None) -> Cell:
        return Cell(self, first, last)


class Book:
    """A stand-in for xlwings' Book with an active sheet and a selected row."""

    def __init__(self, sheet: Sheet, selected_row: int) -> None:
        self.sheets = type("Sheets", (), {"active": sheet})()
        self.app = type("App", (), {"selection": type("Selection", (), {"row": selected_row})})()


ORDER_SHEET = [
    ["Symbol", "Side", "Type", "Quantity", "Price", "Confirm", "Result"],
    ["BTCUSDT", "BUY", "LIMIT", 0.01, 45000.0, "YES", None],
    ["BTCUSDT", "BUY", "LIMIT", 0.01, 45000.0, None, None],
]


def test_the_macro_places_the_selected_rows_order(udfs: Any, excel: FakeExchange) -> None:
    """The macro's logic: the order of the selected row is placed, its id written back."""
    sheet = Sheet(ORDER_SHEET)

    outcome = udfs.place_order_from_selection(Book(sheet, 2))

    [order] = excel.orders.values()
    assert order["clientOrderId"] == outcome == sheet.cells[(2, 7)]


def test_the_macro_writes_the_refusal_of_an_unconfirmed_row(udfs: Any, excel: FakeExchange) -> None:
    """A row without confirmation gets the 'not confirmed' text; nothing is sent."""
    sheet = Sheet(ORDER_SHEET)

    udfs.place_order_from_selection(Book(sheet, 3))

    assert sheet.cells[(3, 7)].startswith("#BF! not confirmed")
    assert [] == excel.requests_for("order.place")


def test_the_macro_on_the_header_row_sends_nothing(udfs: Any, excel: FakeExchange) -> None:
    """With the header row selected, the macro explains and sends nothing."""
    sheet = Sheet(ORDER_SHEET)

    outcome = udfs.place_order_from_selection(Book(sheet, 1))

    assert outcome.startswith("#BF! select a cell in an order row")
    assert [] == excel.requests_for("order.place")


def test_without_a_result_column_the_outcome_goes_after_the_header(
    udfs: Any, excel: FakeExchange
) -> None:
    """No 'result' header: the outcome is written in the first column after the header."""
    sheet = Sheet([row[:6] for row in ORDER_SHEET])

    outcome = udfs.place_order_from_selection(Book(sheet, 2))

    assert outcome == sheet.cells[(2, 7)]
    assert 1 == len(excel.orders)
