"""The ``bfsync`` console script, run in a subprocess against a FakeExchange in this process."""

from __future__ import annotations

import _thread
import csv
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

import pytest

from bfsync.cli import main
from bfsync.testing import FakeExchange
from tests.timing import scaled

_BIN = Path(sys.executable).parent
SCRIPT = shutil.which("bfsync", path=str(_BIN))
COMMAND_TIMEOUT = scaled(60)  # a whole command, start-up included, on a loaded machine


def test_console_script_is_installed() -> None:
    """The bfsync console script sits next to this interpreter (pip install -e . made it)."""
    assert SCRIPT is not None, f"no bfsync script in {_BIN}: run pip install -e ."


class Cli:
    """Runs the console script against one FakeExchange, with an isolated config directory."""

    def __init__(self, fx: FakeExchange, home: Path) -> None:
        self.fx = fx
        self.home = home
        self.api_key, self.secret = fx.add_hmac_key()
        self.urls = ["--ws-url", fx.url, "--rest-url", fx.rest_url, "--stream-url", fx.stream_url]

    def env(self, keys: bool = True, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BFSYNC_D"))}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / "config"))
        if keys:
            env.update(BINANCE_API_KEY=self.api_key, BINANCE_PRIVATE_KEY=self.secret)
        env.update(extra)
        return env

    def argv(self, args: tuple[str, ...], urls: bool) -> list[str]:
        assert SCRIPT is not None
        return [SCRIPT, *args, *(self.urls if urls else [])]

    def run(
        self,
        *args: str,
        stdin: str = "",
        keys: bool = True,
        urls: bool = True,
        env: Optional[Mapping[str, str]] = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            self.argv(args, urls),
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else self.env(keys),
            timeout=COMMAND_TIMEOUT,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        """Run a command that must succeed; its stdout."""
        done = self.run(*args, stdin=stdin)
        assert (0, "") == (done.returncode, _errors_only(done.stderr)), done.stderr
        return done.stdout

    def json(self, *args: str, stdin: str = "") -> Any:
        return json.loads(self.ok(*args, "--json", stdin=stdin))


def _errors_only(stderr: str) -> str:
    """stderr without the order preview and prompts (which are meant for the person)."""
    return "" if "Traceback" not in stderr and "error" not in stderr.lower() else stderr


def _assert_one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert 1 == done.returncode
    assert needle in lines[-1]
    assert "Traceback" not in done.stderr


@pytest.fixture
def cli(fx: FakeExchange, tmp_path: Path) -> Cli:
    return Cli(fx, tmp_path)


@pytest.fixture(autouse=True)
def _needs_script() -> None:
    if SCRIPT is None:
        pytest.fail("the bfsync console script is not installed (pip install -e .)")


# ---- quick looks -------------------------------------------------------------------------------


def test_price_book_depth_tables(cli: Cli) -> None:
    """price, book and depth print aligned tables of the exchange's exact strings, no keys."""
    price = cli.run("price", "btcusdt", keys=False)
    book = cli.run("book", "BTCUSDT", keys=False)
    depth = cli.run("depth", "BTCUSDT", "--limit", "5", keys=False)
    assert [0, 0, 0] == [price.returncode, book.returncode, depth.returncode]
    assert ["SYMBOL", "PRICE", "TIME"] == price.stdout.splitlines()[0].split()
    assert "BTCUSDT  50000.00" == price.stdout.splitlines()[1][:17]
    assert ["BTCUSDT", "0.250", "49999.90", "50000.10", "0.500"] == book.stdout.splitlines()[
        1
    ].split()[:5]
    ladder = [line.split() for line in depth.stdout.splitlines()[1:]]
    assert ["ask", "50000.50", "1.500"] == ladder[0]
    assert ["bid", "49999.90", "0.250"] == ladder[5]
    assert 10 == len(ladder)


def test_json_and_csv_parse_back(cli: Cli) -> None:
    """--json is one document as sent; --csv parses back with the same exact strings."""
    price = cli.json("price", "BTCUSDT")
    depth_csv = cli.ok("depth", "BTCUSDT", "--limit", "5", "--csv")
    depth_json = cli.json("depth", "BTCUSDT", "--limit", "5")
    assert ("BTCUSDT", "50000.00") == (price["symbol"], price["price"])
    rows = list(csv.DictReader(io.StringIO(depth_csv)))
    assert [b for b in depth_json["bids"]] == [
        [r["PRICE"], r["QTY"]] for r in rows if r["SIDE"] == "bid"
    ]


def test_balance_and_positions(cli: Cli) -> None:
    """balance lists USDT; positions shows the position a market order opened."""
    balance = cli.ok("balance")
    cli.ok("order", "BTCUSDT", "BUY", "MARKET", "0.010", "--yes")
    positions = cli.json("positions")
    table = cli.ok("positions")
    assert "USDT" == balance.splitlines()[1].split()[0]
    assert ["0.010"] == [p["positionAmt"] for p in positions if p["symbol"] == "BTCUSDT"]
    assert ["BTCUSDT", "BOTH", "0.010"] == table.splitlines()[1].split()[:3]


# ---- orders: confirmation, cancel, cancel-all ----------------------------------------------------


def test_order_refused_sends_nothing(cli: Cli) -> None:
    """Answering n (or nothing) to the prompt sends nothing and exits 1."""
    for answer in ("n\n", ""):
        done = cli.run("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000", stdin=answer)
        assert 1 == done.returncode
        assert "Send this order? [y/N]" in done.stderr
        assert done.stderr.rstrip().endswith("not confirmed: nothing was sent")
        assert "" == done.stdout
    assert [] == cli.fx.requests_for("order.place")


def test_order_preview_then_accepted(cli: Cli) -> None:
    """The preview shows the wire params; y sends exactly that order, with its client id."""
    done = cli.run(
        "order", "BTCUSDT", "BUY", "LIMIT", "0.010", "--price", "45000.00", "--json", stdin="y\n"
    )
    assert 0 == done.returncode, done.stderr
    reply = json.loads(done.stdout)
    sent = cli.fx.requests_for("order.place")[0]["params"]
    assert ("0.010", "45000.00", "GTC") == (sent["quantity"], sent["price"], sent["timeInForce"])
    assert reply["clientOrderId"] == sent["newClientOrderId"]
    assert f"newClientOrderId  {reply['clientOrderId']}" in done.stderr
    assert "price             45000.00" in done.stderr


def test_yes_and_orders_lists_plain_and_algo(cli: Cli) -> None:
    """--yes skips the prompt; orders lists the plain and the conditional order."""
    cli.ok("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000", "--yes")
    cli.ok("order", "BTCUSDT", "SELL", "STOP_MARKET", "0.01", "--stop-price", "44000", "-y")
    listed = cli.json("orders")
    rows = list(csv.DictReader(io.StringIO(cli.ok("orders", "BTCUSDT", "--csv"))))
    assert (1, 1) == (len(listed["orders"]), len(listed["algoOrders"]))
    plain, algo = listed["orders"][0], listed["algoOrders"][0]
    assert [
        ("order", "LIMIT", plain["price"], plain["stopPrice"]),
        ("algo", "STOP_MARKET", algo["price"], algo["triggerPrice"]),
    ] == [(r["KIND"], r["TYPE"], r["PRICE"], r["STOP PRICE"]) for r in rows]
    assert algo["triggerPrice"].startswith("44000")


def test_order_refused_by_validation_exits_2(cli: Cli) -> None:
    """An order breaking the symbol's tick size is refused before sending, exit status 2."""
    done = cli.run("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000.05", "--yes")
    assert 2 == done.returncode
    assert "refused before sending" in done.stderr and "PRICE_FILTER" in done.stderr
    assert [] == cli.fx.requests_for("order.place")


def test_cancel_by_id_client_id_and_algo(cli: Cli) -> None:
    """cancel takes an order id or a client id, asks first, and --algo cancels algo orders."""
    first = cli.json("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000", "--yes")
    second = cli.json("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45100", "--yes")
    stop = cli.json(
        "order", "BTCUSDT", "SELL", "STOP_MARKET", "0.01", "--stop-price", "44000", "-y"
    )
    refused = cli.run("cancel", "BTCUSDT", str(first["orderId"]), stdin="no\n")
    by_id = cli.json("cancel", "BTCUSDT", str(first["orderId"]), stdin="y\n")
    by_client = cli.json("cancel", "BTCUSDT", "--client-id", second["clientOrderId"], "--yes")
    algo = cli.json("cancel", "BTCUSDT", str(stop["algoId"]), "--algo", "--yes")
    assert 1 == refused.returncode
    assert ("CANCELED", "CANCELED") == (by_id["status"], by_client["status"])
    assert stop["algoId"] == algo["algoId"]
    assert {"orders": [], "algoOrders": []} == cli.json("orders")


def test_cancel_all_refused_then_accepted(cli: Cli) -> None:
    """cancel-all counts what is open, cancels nothing on n, both kinds on y."""
    cli.ok("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000", "--yes")
    cli.ok("order", "BTCUSDT", "SELL", "STOP_MARKET", "0.01", "--stop-price", "44000", "--yes")
    refused = cli.run("cancel-all", "BTCUSDT", stdin="n\n")
    assert 1 == refused.returncode
    assert "1 plain and 1 conditional" in refused.stderr
    assert (1, 1) == tuple(len(v) for v in cli.json("orders").values())
    done = cli.json("cancel-all", "BTCUSDT", stdin="y\n")
    assert (200, 200) == (done["orders"]["code"], done["algoOrders"]["code"])
    assert {"orders": [], "algoOrders": []} == cli.json("orders")


# ---- errors --------------------------------------------------------------------------------------


def test_bad_keys_exit_1_with_one_line(cli: Cli) -> None:
    """An unknown key or a wrong secret: exit 1, one line on stderr with Binance's code."""
    unknown = cli.run("balance", env=cli.env(BINANCE_API_KEY="nope"))
    wrong = cli.run("balance", env=cli.env(BINANCE_PRIVATE_KEY="Wr0ng" * 12 + "abcd"))
    missing = cli.run("balance", env=cli.env(BINANCE_PRIVATE_KEY="/no/such/key.pem"))
    _assert_one_line_error(unknown, "-2015")
    _assert_one_line_error(wrong, "-1022")
    _assert_one_line_error(missing, "AuthenticationError")
    assert [1, 1, 1] == [len(d.stderr.strip().splitlines()) for d in (unknown, wrong, missing)]
    assert "Wr0ngWr0ng" not in wrong.stderr


def test_no_keys_is_usage(cli: Cli) -> None:
    """A command that needs keys, run without any: exit 2 saying how to give them."""
    done = cli.run("balance", keys=False)
    assert 2 == done.returncode
    assert "BINANCE_API_KEY" in done.stderr and "--profile" in done.stderr


def test_unreachable_exchange_exit_1(cli: Cli, tmp_path: Path) -> None:
    """Nothing listening at the URL: exit 1 with one ConnectionError line."""
    with FakeExchange() as gone:
        urls = ["--ws-url", gone.url, "--rest-url", gone.rest_url, "--stream-url", gone.stream_url]
    for args in (["price", "BTCUSDT"], ["watch", "btcusdt@bookTicker"]):
        done = cli.run(*args, *urls, "--timeout", str(scaled(5)), urls=False)
        _assert_one_line_error(done, "ConnectionError")


def test_connection_dropped_while_ordering(cli: Cli) -> None:
    """The link drops while an order awaits its answer: exit 1, outcome unknown, one line."""
    cli.fx.withhold("order.place")

    def drop_once_sent() -> None:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not cli.fx.requests_for("order.place") and time.monotonic() < deadline:
            time.sleep(0.02)
        cli.fx.drop_connections(close_frame=False)

    dropper = threading.Thread(target=drop_once_sent)
    dropper.start()
    try:
        done = cli.run("order", "BTCUSDT", "BUY", "LIMIT", "0.01", "--price", "45000", "--yes")
    finally:
        dropper.join(COMMAND_TIMEOUT)
    _assert_one_line_error(done, "OrderConnectionLostError")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["price"],
        ["depth", "BTCUSDT", "--limit", "3"],
        ["frobnicate"],
        ["watch", "btcusdt@bookTickr"],
        ["cancel", "BTCUSDT"],
        ["price", "BTCUSDT", "--profile", "nope"],
    ],
)
def test_bad_usage_exit_2(cli: Cli, args: list[str]) -> None:
    """Bad usage (arguments, stream names, profiles) exits 2 with an error line, no traceback."""
    done = cli.run(*args)
    assert 2 == done.returncode
    assert "error" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        *("", "price", "book", "depth", "balance", "positions", "orders", "order", "cancel"),
        *("cancel-all", "watch", "demo"),
    ],
)
def test_help_on_every_command(cli: Cli, command: str) -> None:
    """--help works on every command: exit 0, a usage line, no raw markup."""
    done = cli.run(*([command] if command else []), "--help", urls=False)
    assert 0 == done.returncode
    assert done.stdout.startswith("usage:")
    assert "``" not in done.stdout and "%(" not in done.stdout


# ---- profiles ------------------------------------------------------------------------------------


def test_profile_from_config_file(cli: Cli) -> None:
    """--profile reads keys and URLs from config.ini; a file others can read is refused."""
    path = cli.home / "config" / "bfsync" / "config.ini"
    path.parent.mkdir(parents=True)
    fx = cli.fx
    path.write_text(
        f"[fake]\napi_key = {cli.api_key}\nprivate_key = {cli.secret}\n"
        f"ws_url = {fx.url}\nrest_url = {fx.rest_url}\nstream_url = {fx.stream_url}\n"
    )
    path.chmod(0o600)
    done = cli.run("--profile", "fake", "balance", "--json", keys=False, urls=False)
    assert 0 == done.returncode, done.stderr
    assert "USDT" == json.loads(done.stdout)[0]["asset"]
    if os.name == "posix":
        path.chmod(0o644)
        refused = cli.run("--profile", "fake", "balance", keys=False, urls=False)
        assert 2 == refused.returncode
        assert "chmod 600" in refused.stderr and cli.secret not in refused.stderr


# ---- watch ---------------------------------------------------------------------------------------


class _Lines:
    """A subprocess's stdout lines, read on a thread so every wait can be bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[Optional[str]] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        self.thread = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self.thread.start()

    def _read(self, stdout: io.TextIOBase) -> None:
        for line in stdout:
            self.queue.put(line)
        self.queue.put(None)

    def next(self, timeout: float) -> Optional[str]:
        return self.queue.get(timeout=timeout)


@pytest.fixture
def watch(cli: Cli) -> Iterator[Any]:
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], _Lines]:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            cli.argv(("watch", *args), urls=True),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=cli.env(keys=False),
        )
        processes.append(process)
        return process, _Lines(process)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=COMMAND_TIMEOUT)


def _publish_until(fx: FakeExchange, lines: _Lines, wanted: int) -> list[dict[str, Any]]:
    """Publish book tickers until ``wanted`` lines came or stdout ended (bounded); the lines."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while len(got) < wanted and time.monotonic() < deadline:
        fx.publish_book_ticker("BTCUSDT")
        try:
            line = lines.next(0.05)
        except queue.Empty:
            continue
        if line is None:
            break
        got.append(json.loads(line))
    return got


def test_watch_count_json_lines(cli: Cli, watch: Any) -> None:
    """watch --count N prints N JSON lines ({stream, data}) while events are published, exits 0."""
    process, lines = watch("BTCUSDT@bookTicker", "--count", "3")
    got = _publish_until(cli.fx, lines, 3)
    assert 0 == process.wait(COMMAND_TIMEOUT)
    assert ["btcusdt@bookTicker"] * 3 == [event["stream"] for event in got]
    assert ("49999.90", "bookTicker") == (got[0]["data"]["b"], got[0]["data"]["e"])
    assert None is lines.next(COMMAND_TIMEOUT)  # nothing after the third line


def test_watch_survives_a_dropped_connection(cli: Cli, watch: Any) -> None:
    """A dropped stream connection shows as a bfsync.gap line; events then continue."""
    process, lines = watch("btcusdt@bookTicker", "--count", "4")
    before = _publish_until(cli.fx, lines, 2)
    cli.fx.drop_stream_connections()
    after = _publish_until(cli.fx, lines, 100)  # until watch exits, after its 4th event
    assert 0 == process.wait(COMMAND_TIMEOUT)
    streams = [e["stream"] for e in before + after]
    assert ["btcusdt@bookTicker"] * 2 == streams[:2]
    assert "bfsync.gap" in streams
    assert "btcusdt@bookTicker" == streams[-1]


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is POSIX")
def test_watch_ctrl_c_exits_130_quietly(cli: Cli, watch: Any) -> None:
    """Ctrl-C (SIGINT) ends watch with status 130 and no traceback."""
    process, lines = watch("btcusdt@bookTicker")
    assert 1 == len(_publish_until(cli.fx, lines, 1))
    process.send_signal(signal.SIGINT)
    assert 130 == process.wait(COMMAND_TIMEOUT)
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_interrupt_leaves_no_thread(fx: FakeExchange) -> None:
    """main() interrupted in watch (in this process) returns 130 and leaves no bfsync thread."""
    out = io.StringIO()
    publishing = threading.Event()

    def interrupt_once_watching() -> None:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not out.getvalue() and time.monotonic() < deadline:
            fx.publish_book_ticker("BTCUSDT")
            time.sleep(0.02)
        publishing.set()
        _thread.interrupt_main()

    helper = threading.Thread(target=interrupt_once_watching)
    helper.start()
    try:
        status = main(
            ["watch", "btcusdt@bookTicker", "--stream-url", fx.stream_url],
            env={},
            stdin=io.StringIO(),
            stdout=out,
            stderr=io.StringIO(),
        )
        # The interrupt may land only after main returned (never, with no --count): wait.
        while not publishing.is_set():
            time.sleep(0.01)
    finally:
        helper.join(COMMAND_TIMEOUT)
    assert 130 == status
    left = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("bfsync") and "FakeExchange" not in t.name
    ]
    assert [] == left


# ---- demo ----------------------------------------------------------------------------------------


def test_python_m_bfsync_demo(tmp_path: Path) -> None:
    """python -m bfsync demo still runs the complete usage example on its own exchange."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    done = subprocess.run(
        [sys.executable, "-m", "bfsync", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT,
    )
    assert 0 == done.returncode, done.stderr
    assert "done: every step of the complete usage example succeeded" in done.stdout


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")
def test_watch_on_a_terminal_draws_a_live_table(cli: Cli) -> None:
    """On a terminal, watch draws a table (one row per stream) and redraws it in place."""
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        cli.argv(("watch", "btcusdt@bookTicker", "btcusdt@aggTrade", "--count", "6"), urls=True),
        stdout=slave,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=cli.env(keys=False),
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    try:
        while process.poll() is None and time.monotonic() < deadline:
            cli.fx.publish_book_ticker("BTCUSDT")
            cli.fx.publish_agg_trade("BTCUSDT")
            while select.select([master], [], [], 0.05)[0]:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
        assert 0 == process.wait(COMMAND_TIMEOUT)
        while select.select([master], [], [], 0.2)[0]:  # what is left after the last poll
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=COMMAND_TIMEOUT)
        os.close(master)
    text = screen.decode()
    last = text.split("\x1b[J")[-1].splitlines()
    assert "\x1b[J" in text  # redrawn in place
    assert ["STREAM", "EVENT", "TIME", "LATEST"] == last[0].split()
    assert ["btcusdt@bookTicker", "bookTicker"] == last[1].split()[:2]
    assert ["btcusdt@aggTrade", "aggTrade"] == last[2].split()[:2]
    assert last[3].startswith("6 events")
