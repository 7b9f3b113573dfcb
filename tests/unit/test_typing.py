"""The public API's types, as a user's mypy sees them: mistakes reported, no Any leaking out."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.timing import scaled

# A user's script; each line marked `# E: text` must get a mypy error containing `text`, and
# no other line may get one (numpy values, a str side, a bool wait_for_response are fine).
MISTAKES = """
from __future__ import annotations

import numpy as np

from bfsync import BinanceClient
from bfsync.exceptions import OrderStatusUnknownError


def main(api_key: str, secret: str, flag: bool) -> None:
    ws = BinanceClient().websocket_service(api_key, secret, enable_validation=True)
    ws.place_limit_order(symbl="X", side="BUY", quantity=1, price=1, timeInForce="GTC")  # E: place_
    ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity=[0.1])  # E: place_market_order
    ws.place_market_order(symbol="BTCUSDT", side="BUY")  # E: place_market_order
    ws.place_stop_market_order(symbol="X", side="SELL", stopPrice=1, reduceOnly=3)  # E: place_stop
    future = ws.get_depth("BTCUSDT", limit=5, wait_for_response=False)
    print(future["result"])  # E: not indexable
    ws.get_depth("BTCUSDT").result()  # E: has no attribute "result"
    order = ws.place_limit_order(
        symbol="BTCUSDT", side="BUY", quantity=0.002, price=50000, timeInForce="GTC"
    )
    print(order["result"]["orderID"])  # E: has no key "orderID"
    price: float = ws.get_ticker_price("BTCUSDT")["result"]["price"]  # E: Incompatible types
    ws.get_ticker_price(123)  # E: get_ticker_price
    ws.round_quantity("BTCUSDT", [1])  # E: round_quantity
    ws.cancel_order(symbol="BTCUSDT", orderID=1)  # E: cancel_order

    side = "BUY" if flag else "SELL"
    ok = ws.place_limit_order(
        symbol="BTCUSDT",
        side=side,
        quantity=np.float64(0.002),
        price=np.int64(50000),
        timeInForce="GTC",
        recvWindow=np.int64(5000),
        reduceOnly=None,
    )
    print(ok["result"]["orderId"] + 1, price)
    either = ws.get_account_balance(wait_for_response=flag)
    print(either)
    ws.place_stop_order(symbol="X", side="SELL", quantity="1", triggerPrice=np.float32(1), price=1)
    ws.place_trailing_stop_market_order(symbol="X", side="SELL", quantity=1, callbackRate=1)
    ws.round_price("BTCUSDT", np.float32(0.5))

    # REST calls and resolve_unknown
    ws.get_klines("BTCUSDT", "1h", limt=3)  # E: get_klines
    ws.get_klines("BTCUSDT", "1h", startTime="yesterday")  # E: get_klines
    candles = ws.get_klines("BTCUSDT", "1h", limit=3)["result"]
    print(candles[-1][4] + 1)  # E: Unsupported operand types
    ws.change_leverage("BTCUSDT", "5")  # E: change_leverage
    ws.cancel_all_open_orders()  # E: cancel_all_open_orders
    ws.get_open_algo_orders("BTCUSDT", algoType="TWAP")  # E: get_open_algo_orders
    ws.get_income_history(incomeType=1)  # E: get_income_history
    print(ws.get_mark_price("BTCUSDT")["result"][0])  # E: TypedDict key must be
    print(ws.get_open_orders(wait_for_response=False)["result"])  # E: not indexable
    print(ws.get_position_mode()["result"]["dualSide"])  # E: has no key "dualSide"
    ws.resolve_unknown(RuntimeError("lost"))  # E: resolve_unknown
    try:
        ok = ws.place_market_order(symbol="BTCUSDT", side="BUY", quantity=1)
    except OrderStatusUnknownError as exc:
        found = ws.resolve_unknown(exc)["result"]
        print(found["algoStatus"])  # E: has no key "algoStatus"
        if "algoId" in found:
            print(found["algoStatus"], found["actualOrderId"])
        else:
            print(found["status"] + found["side"])
        later = ws.resolve_unknown(exc, "BTCUSDT", wait_for_response=False)
        print(later.result(10)["result"]["symbol"])
    interval = "1h" if flag else "4h"
    close: str = candles[-1][4]
    opened, *_ = candles[0]
    print(close, opened + 1, interval)
    trades = ws.get_account_trades("BTCUSDT", limit=10, startTime=0, wait_for_response=False)
    print(sum(float(t["qty"]) for t in trades.result(10)["result"]))
    ws.get_income_history(incomeType="FUNDING_FEE", limit=100, recvWindow=5000)
    ws.get_funding_rate_history(symbol="BTCUSDT", limit=10)
    ws.get_continuous_klines("BTCUSDT", "PERPETUAL", interval, endTime=1, limit=None)
    for item in ws.get_leverage_brackets()["result"]:
        print(item["symbol"], item["brackets"][0]["initialLeverage"] + 1)
    print(ws.get_mark_price()["result"][0]["markPrice"])
    ws.get_open_algo_orders(algoType="CONDITIONAL", algoId=1)
    ws.change_margin_type("BTCUSDT", "ISOLATED")
    ws.change_position_mode(True, wait_for_response=flag)

    # MarketService: array streams' payloads are lists
    ms = BinanceClient().market_service()
    print((ms.latest("!ticker@arr") or [])["e"])  # E: "__getitem__" of "list"
    print(ms.latest("btcusdt@bookTicker")["b"])  # E: not indexable
    print((ms.latest("btcusdt@bookTicker") or {}).get("b"), ms.order_book("BTCUSDT").bids(5))
"""

# Every value a user gets from the API; none may be Any or contain it.
REVEALED = """
from __future__ import annotations

from bfsync import BinanceClient, WebSocketService
from bfsync.exceptions import OrderStatusUnknownError


def main(ws: WebSocketService) -> None:
    reveal_type(BinanceClient().websocket_service("k", "s"))
    reveal_type(ws.login())
    reveal_type(ws.login(wait_for_response=False))
    reveal_type(ws.logout())
    reveal_type(ws.get_depth("BTCUSDT", limit=5))
    reveal_type(ws.get_depth("BTCUSDT", wait_for_response=False))
    reveal_type(ws.get_depth("BTCUSDT", wait_for_response=False).result())
    reveal_type(ws.get_ticker_price("BTCUSDT"))
    reveal_type(ws.get_ticker_price())
    reveal_type(ws.get_ticker_price(wait_for_response=False))
    reveal_type(ws.get_ticker_book("BTCUSDT"))
    reveal_type(ws.get_ticker_book(wait_for_response=False))
    reveal_type(ws.get_position_info())
    reveal_type(ws.get_account_balance())
    reveal_type(ws.get_account_status())
    reveal_type(ws.get_account_status()["result"]["assets"][0])
    reveal_type(ws.place_limit_order(
        symbol="X", side="BUY", quantity=1, price=1, timeInForce="GTC"
    ))
    reveal_type(ws.place_market_order(False, symbol="X", side="BUY", quantity=1))
    reveal_type(ws.place_stop_order(symbol="X", side="SELL", quantity=1, stopPrice=1, price=1))
    reveal_type(ws.place_stop_market_order(symbol="X", side="SELL", stopPrice=1, quantity=1))
    reveal_type(ws.place_take_profit_order(symbol="X", side="SELL", quantity=1, stopPrice=1))
    reveal_type(ws.place_take_profit_market_order(symbol="X", side="SELL", closePosition=True))
    reveal_type(ws.place_trailing_stop_market_order(
        symbol="X", side="SELL", quantity=1, callbackRate=1
    ))
    reveal_type(ws.modify_order(symbol="X", side="BUY", quantity=1, price=1, orderId=1))
    reveal_type(ws.cancel_order(symbol="X", orderId=1))
    reveal_type(ws.get_order_status(symbol="X", origClientOrderId="c"))
    reveal_type(ws.cancel_algo_order(algoId=1))
    reveal_type(ws.get_session_status())
    reveal_type(ws.start_user_data_stream())
    reveal_type(ws.ping_user_data_stream())
    reveal_type(ws.stop_user_data_stream(wait_for_response=False))
    reveal_type(ws.get_depth("BTCUSDT")["rateLimits"][0])
    reveal_type(ws.rate_limits)
    reveal_type(ws.state)
    reveal_type(ws.round_price("X", 1.5))
    reveal_type(ws.load_exchange_info())
    reveal_type(ws.get_open_orders())
    reveal_type(ws.get_open_orders("BTCUSDT", wait_for_response=False))
    reveal_type(ws.get_open_algo_orders(algoType="CONDITIONAL"))
    reveal_type(ws.get_algo_order(clientAlgoId="c"))
    reveal_type(ws.get_algo_order(1, wait_for_response=False))
    reveal_type(ws.cancel_all_open_orders("BTCUSDT"))
    reveal_type(ws.cancel_all_algo_orders("BTCUSDT", False))
    reveal_type(ws.change_leverage("BTCUSDT", 5))
    reveal_type(ws.change_margin_type("BTCUSDT", "CROSSED"))
    reveal_type(ws.get_position_mode())
    reveal_type(ws.change_position_mode(False))
    reveal_type(ws.get_multi_assets_mode(False))
    reveal_type(ws.change_multi_assets_mode(True))
    reveal_type(ws.get_klines("BTCUSDT", "1m", limit=5))
    reveal_type(ws.get_klines("BTCUSDT", "1m", False, startTime=0))
    reveal_type(ws.get_continuous_klines("BTCUSDT", "PERPETUAL", "1d"))
    reveal_type(ws.get_mark_price("BTCUSDT"))
    reveal_type(ws.get_mark_price())
    reveal_type(ws.get_mark_price(wait_for_response=False))
    reveal_type(ws.get_funding_rate_history(symbol="BTCUSDT"))
    reveal_type(ws.get_server_time())
    reveal_type(ws.get_account_trades("BTCUSDT", fromId=1))
    reveal_type(ws.get_income_history(incomeType="COMMISSION"))
    reveal_type(ws.get_commission_rate("BTCUSDT"))
    reveal_type(ws.get_leverage_brackets("BTCUSDT"))
    reveal_type(ws.get_leverage_brackets())
    reveal_type(ws.get_leverage_brackets("BTCUSDT", wait_for_response=False))
    reveal_type(ws.resolve_unknown(OrderStatusUnknownError("x")))
    reveal_type(ws.resolve_unknown(OrderStatusUnknownError("x"), wait_for_response=False))
    reveal_type(ws.get_klines("BTCUSDT", "1m")["rateLimits"][0])
"""

# MarketService: payloads are Binance's dicts (dict[str, Any] is expected there), the rest
# is exact; each line's expected type follows `# T: `, as mypy 2.x prints it.
MARKET = """
from __future__ import annotations

from bfsync import BinanceClient


def main() -> None:
    ms = BinanceClient().market_service()
    reveal_type(ms)  # T: bfsync.market.MarketService
    reveal_type(ms.events(timeout=1))  # T: typing.Iterator[dict[str, Any]]
    reveal_type(ms.latest("btcusdt@bookTicker"))  # T: dict[str, Any] | None
    reveal_type(ms.latest("!markPrice@arr@1s"))  # T: list[dict[str, Any]] | None
    reveal_type(ms.order_book("BTCUSDT", 100))  # T: bfsync.livebook.OrderBook
    reveal_type(ms.order_book("X").bids(5))  # T: list[tuple[decimal.Decimal, decimal.Decimal]]
    reveal_type(ms.subscribe_book_ticker(["BTCUSDT"]))  # T: dict[str, Any]
    reveal_type(ms.subscriptions)  # T: list[str]
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_ERROR_RE = re.compile(r"^[^:]+:(\d+): error: (.*)$")
_NOTE_RE = re.compile(r"^[^:]+:(\d+): note: Revealed type is \"(.*)\"$")


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One mypy --strict run over both scripts (a fresh cache); its output per script."""
    directory = tmp_path_factory.mktemp("typing")
    scripts = {"mistakes": MISTAKES, "revealed": REVEALED, "market": MARKET}
    for name, text in scripts.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--show-error-codes",
            "--cache-dir",
            str(directory / ".cache"),
            *(str(directory / f"{name}.py") for name in scripts),
            *map(str, sorted(EXAMPLES.glob("*.py"))),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(300),
        cwd=EXAMPLES.parent,  # bfsync found from the checkout, as in pyproject's mypy run
        check=False,
    )
    assert "" == result.stderr
    lines = result.stdout.splitlines()
    output = {name: [line for line in lines if f"{name}.py:" in line] for name in scripts}
    output["examples"] = [line for line in lines if line.startswith(str(EXAMPLES))]
    return {name: "\n".join(found) for name, found in output.items()}


def test_mypy_reports_each_mistake_and_nothing_else(mypy_output: dict[str, str]) -> None:
    """A misspelt keyword, wrong types, a Future used as a dict, ...: each is an error."""
    lines = textwrap.dedent(MISTAKES).lstrip().splitlines()
    expected = {
        number: line.split("# E: ")[1]
        for number, line in enumerate(lines, start=1)
        if "# E: " in line
    }
    errors: dict[int, list[str]] = {}
    for line in mypy_output["mistakes"].splitlines():
        match = _ERROR_RE.match(line)
        if match:
            errors.setdefault(int(match.group(1)), []).append(match.group(2))

    assert sorted(expected) == sorted(errors), mypy_output["mistakes"]
    for number, fragment in expected.items():
        assert any(fragment in message for message in errors[number]), (number, errors[number])


def test_no_any_leaks_from_the_public_api(mypy_output: dict[str, str]) -> None:
    """Every value a call hands back has a type without Any, and mypy --strict is clean."""
    revealed = [_NOTE_RE.match(line) for line in mypy_output["revealed"].splitlines()]
    types = {int(match.group(1)): match.group(2) for match in revealed if match}
    calls = REVEALED.count("reveal_type(")

    assert [] == [line for line in mypy_output["revealed"].splitlines() if ": error:" in line]
    assert calls == len(types)
    assert {} == {line: text for line, text in types.items() if "Any" in text}
    source = textwrap.dedent(REVEALED).lstrip().splitlines()
    depth = source.index('    reveal_type(ws.get_depth("BTCUSDT", limit=5))') + 1
    future = source.index('    reveal_type(ws.get_depth("BTCUSDT", wait_for_response=False))') + 1
    # mypy 1.x writes 'builtins.int' and quotes names; mypy 2.x neither
    shown = {line: re.sub(r"builtins\.|'", "", text) for line, text in types.items()}
    assert shown[depth].startswith("TypedDict(bfsync.types.ReplyFrame, ")
    assert "result: TypedDict(bfsync.types.Depth, " in shown[depth]
    assert "bids: list[list[str]]" in shown[depth]
    assert shown[future].startswith(
        "concurrent.futures._base.Future[TypedDict(bfsync.types.ReplyFrame, "
    )
    klines = source.index('    reveal_type(ws.get_klines("BTCUSDT", "1m", limit=5))') + 1
    candle = "tuple[int, str, str, str, str, str, int, str, int, str, str, str]"
    assert f"result: list[{candle}]" in shown[klines]
    resolved = source.index('    reveal_type(ws.resolve_unknown(OrderStatusUnknownError("x")))') + 1
    assert "Future" not in shown[resolved]
    assert "result: TypedDict(bfsync.types.Order, " in shown[resolved]
    assert "result: TypedDict(bfsync.types.AlgoOrder, " in shown[resolved]


def test_examples_pass_mypy_strict(mypy_output: dict[str, str]) -> None:
    """The runnable examples type-check under --strict, with the API's real types."""
    assert "" == mypy_output["examples"]


def _mypy2(text: str) -> str:
    """A revealed type as mypy 2.x prints it (mypy 1.x: Union[...], Optional, builtins.)."""
    text = re.sub(r"builtins\.|'", "", text)
    union = re.fullmatch(r"Union\[(.*), None\]", text)
    return f"{union.group(1)} | None" if union else text


def test_market_service_types(mypy_output: dict[str, str]) -> None:
    """MarketService's public surface has the documented types (Any only inside payloads)."""
    source = textwrap.dedent(MARKET).lstrip().splitlines()
    expected = {n: line.split("# T: ")[1] for n, line in enumerate(source, 1) if "# T: " in line}
    lines = mypy_output["market"].splitlines()
    revealed = [_NOTE_RE.match(line) for line in lines]
    shown = {int(match.group(1)): _mypy2(match.group(2)) for match in revealed if match}

    assert [] == [line for line in lines if ": error:" in line]
    assert expected == shown
