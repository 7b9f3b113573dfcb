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
"""

# Every value a user gets from the API; none may be Any or contain it.
REVEALED = """
from __future__ import annotations

from bfsync import BinanceClient, WebSocketService


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
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_ERROR_RE = re.compile(r"^[^:]+:(\d+): error: (.*)$")
_NOTE_RE = re.compile(r"^[^:]+:(\d+): note: Revealed type is \"(.*)\"$")


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One mypy --strict run over both scripts (a fresh cache); its output per script."""
    directory = tmp_path_factory.mktemp("typing")
    scripts = {"mistakes": MISTAKES, "revealed": REVEALED}
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


def test_examples_pass_mypy_strict(mypy_output: dict[str, str]) -> None:
    """The runnable examples type-check under --strict, with the API's real types."""
    assert "" == mypy_output["examples"]
