"""
FakeExchange as Binance answers (issue 9): JSON numbers signed as sent, prices and
quantities written by the symbol's precision, modifyId, id rules, suspended priceMatch values.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bfsync.signing import HmacSigner, Signer, canonical_payload
from bfsync.testing import FakeExchange

from .rawclient import LIMIT_BUY, Client, error_of, signed

Key = tuple[str, Signer]


@pytest.fixture
def key(fx: FakeExchange) -> Key:
    api_key, secret = fx.add_hmac_key()
    return api_key, HmacSigner(secret)


def result_of(reply: dict[str, Any]) -> Any:
    assert 200 == reply["status"], reply
    return reply["result"]


def send_raw(client: Client, text: str) -> dict[str, Any]:
    """Send a frame written by hand (JSON numbers exactly as typed); its reply."""
    client.ws.send(text)
    return client.recv()


def test_json_numbers_are_signed_as_sent(fx: FakeExchange, client: Client, key: Key) -> None:
    """price 49000.10 and quantity 0.010 sent as JSON numbers: the signature over that text
    is valid (no false -1022), and the order is placed at that price."""
    api_key, signer = key
    params: dict[str, Any] = dict(LIMIT_BUY, apiKey=api_key, timestamp=fx.server_time())
    params.update(price="49000.10", quantity="0.010")
    signature = signer.sign(canonical_payload(params))
    body = {k: v for k, v in params.items() if k not in ("price", "quantity")}
    text = json.dumps({"id": 1, "method": "order.place", "params": body})
    text = text[:-2] + f', "price": 49000.10, "quantity": 0.010, "signature": "{signature}"}}}}'

    result = result_of(send_raw(client, text))

    assert ("49000.10", "0.010") == (result["price"], result["origQty"])
    recorded = fx.requests_for("order.place")[0]["params"]
    assert 49000.1 == recorded["price"] and "49000.10" == str(recorded["price"])
    assert "49000.10" == str(copy.deepcopy(recorded)["price"])


@pytest.mark.parametrize(
    "sent, written",
    [
        (("49000", "0.01"), ("49000.00", "0.010")),
        (("49000.1", "1"), ("49000.10", "1.000")),
        (("49000.000", "0.0100"), ("49000.00", "0.010")),
    ],
)
def test_prices_and_quantities_are_written_by_the_symbols_precision(
    fx: FakeExchange,
    client: Client,
    key: Key,
    sent: tuple[str, str],
    written: tuple[str, str],
) -> None:
    """BTCUSDT has pricePrecision 2 and quantityPrecision 3: replies use them, not the text."""
    params = dict(LIMIT_BUY, price=sent[0], quantity=sent[1])

    result = result_of(client.call("order.place", signed(fx, key, params)))

    assert written == (result["price"], result["origQty"])
    assert written == (fx.order(result["orderId"])["price"], fx.order(result["orderId"])["origQty"])


def test_modify_and_algo_replies_use_the_precision(
    fx: FakeExchange, client: Client, key: Key
) -> None:
    """order.modify and algoOrder.place write prices and quantities the same way."""
    placed = result_of(client.call("order.place", signed(fx, key, dict(LIMIT_BUY))))
    change = {"symbol": "BTCUSDT", "side": "BUY", "orderId": placed["orderId"]}
    change.update(price="48000", quantity="0.02")
    modified = result_of(client.call("order.modify", signed(fx, key, change)))
    algo = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "STOP",
        "quantity": "0.01",
        "triggerPrice": "51000",
        "price": "51100.5",
    }
    placed_algo = result_of(client.call("algoOrder.place", signed(fx, key, algo)))

    assert ("48000.00", "0.020") == (modified["price"], modified["origQty"])
    assert ("0.010", "51000.00", "51100.50") == (
        placed_algo["quantity"],
        placed_algo["triggerPrice"],
        placed_algo["price"],
    )


def test_modify_reply_always_has_a_modify_id(fx: FakeExchange, client: Client, key: Key) -> None:
    """order.modify's result carries modifyId: numbered by the fake unless one was sent."""
    placed = result_of(client.call("order.place", signed(fx, key, dict(LIMIT_BUY))))
    ids = []
    for price in ("48000.0", "48100.0"):
        change = {"symbol": "BTCUSDT", "side": "BUY", "orderId": placed["orderId"]}
        change.update(price=price, quantity="0.010")
        ids.append(result_of(client.call("order.modify", signed(fx, key, change)))["modifyId"])

    assert isinstance(ids[0], int) and ids[1] == ids[0] + 1


def test_v1_positions_have_break_even_price(fx: FakeExchange, client: Client, key: Key) -> None:
    """account.position (v1) items carry breakEvenPrice, as v2 ones do."""
    fx.set_position("BTCUSDT", "0.5", entry_price="48000")

    positions = result_of(client.call("account.position", signed(fx, key, {})))

    btc = next(p for p in positions if p["symbol"] == "BTCUSDT")
    assert "48000.00000000" == btc["breakEvenPrice"]


@pytest.mark.parametrize("match", ["OPPONENT_10", "OPPONENT_20"])
def test_suspended_price_match_values_are_refused(
    fx: FakeExchange, client: Client, key: Key, match: str
) -> None:
    """OPPONENT_10 / OPPONENT_20, removed from place and amend since 2025-10: -5037."""
    params = {k: v for k, v in LIMIT_BUY.items() if k != "price"}
    placed = client.call("order.place", signed(fx, key, dict(params, priceMatch=match)))
    resting = result_of(client.call("order.place", signed(fx, key, dict(LIMIT_BUY))))
    change = {"symbol": "BTCUSDT", "side": "BUY", "orderId": resting["orderId"]}
    modified = client.call(
        "order.modify", signed(fx, key, dict(change, quantity="0.010", priceMatch=match))
    )

    assert (400, -5037) == error_of(placed)
    assert (400, -5037) == error_of(modified)


@pytest.mark.parametrize(
    "rid",
    [2**63, -(2**63) - 1, "a" * 37, "abc.def", "", "9ca10e58 7452", "ключ"],
)
def test_ids_outside_binances_rule_are_refused(client: Client, rid: Any) -> None:
    """An id must be an int64, a string of 1-36 letters, digits, - or _, or null."""
    client.send("session.status", rid=rid)
    reply = client.recv()

    assert reply["id"] is None and (400, -1000) == error_of(reply)
    assert "^[a-zA-Z0-9-_]{1,36}$" in reply["error"]["msg"]


@pytest.mark.parametrize(
    "rid", [2**63 - 1, -(2**63), "9ca10e58-7452-467e-9454-f669bb9c764e", "a_b"]
)
def test_ids_within_binances_rule_are_echoed(client: Client, rid: Any) -> None:
    """The edges of the id rule are accepted and echoed."""
    client.send("session.status", rid=rid)

    assert rid == client.recv()["id"]
