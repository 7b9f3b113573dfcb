"""The user data stream's pure parts (bfsync._userdata) and typed views (bfsync.userevents)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bfsync._link import LinkLost
from bfsync._userdata import (
    DEFAULT_EVENTS,
    OrderHistory,
    Overlap,
    check_events,
    check_statuses,
    key_refused,
    mask,
    match,
    order_key,
    private_url,
)
from bfsync.config import Config
from bfsync.userevents import AccountUpdate, AlgoUpdate, OrderUpdate, typed

KEY = "pqHfT8bq2Wv0Y6Zy1kO3xJm9RrLcVdEaBnGsUi4tHw7eQpZ5lKoYj2Fx8Mb1NcD6"


def otu(client_id: str, status: str, **o: Any) -> dict[str, Any]:
    return {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"c": client_id, "X": status, **o}}


def algo(client_id: str, status: str) -> dict[str, Any]:
    return {"e": "ALGO_UPDATE", "E": 1, "T": 1, "o": {"caid": client_id, "X": status}}


def test_query_form_lists_every_event() -> None:
    """The default URL: /private/ws?listenKey=K&events=E1/E2/..., Binance's 2026 form."""
    url = private_url("wss://fstream.binance.com", KEY, DEFAULT_EVENTS, "query")

    assert (
        "wss://fstream.binance.com/private/ws?listenKey=" + KEY + "&events=ORDER_TRADE_UPDATE/"
        "TRADE_LITE/ACCOUNT_UPDATE/ALGO_UPDATE/MARGIN_CALL/ACCOUNT_CONFIG_UPDATE/STRATEGY_UPDATE/"
        "GRID_UPDATE/listenKeyExpired"
    ) == url


def test_path_form_has_the_key_in_the_path() -> None:
    """The path form: /private/ws/<key>, no event list."""
    assert f"ws://h:1/private/ws/{KEY}" == private_url("ws://h:1", KEY, ("A",), "path")


def test_an_unknown_url_form_is_refused() -> None:
    """A form other than query or path is a ValueError naming it."""
    with pytest.raises(ValueError, match="form"):
        private_url("ws://h", KEY, ("A",), "both")


def test_mask_shows_four_characters() -> None:
    """A masked key shows its first four characters and its length, never the rest."""
    assert ("pqHf...(64 chars)", "None") == (mask(KEY), mask(None))
    assert KEY[4:] not in mask(KEY)


def test_config_events_accepts_a_list_or_a_slashed_string() -> None:
    """events: a list, or "A/B"; duplicates dropped; order kept."""
    assert ("A", "B") == Config.from_dict({"events": "A/B/A"}).events
    assert DEFAULT_EVENTS == Config().events


@pytest.mark.parametrize("bad", [[], "", ["ORDER/TRADE"], [1], ["a&b"], None])
def test_config_events_refuses_bad_values(bad: Any) -> None:
    """A bad events value is a ValueError naming config['events']."""
    with pytest.raises(ValueError, match=r"config\['events'\]"):
        check_events(bad)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"keepalive_interval": 0}, "keepalive_interval"),
        ({"private_url_form": "segment"}, "private_url_form"),
        ({"reconcile": "yes"}, "reconcile"),
        ({"order_history": 0}, "order_history"),
    ],
)
def test_config_refuses_bad_user_stream_values(config: dict[str, Any], key: str) -> None:
    """Each user-stream key is validated and named in the error."""
    with pytest.raises(ValueError, match=key):
        Config.from_dict(config)


class _BadStatus(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("Handshake status")
        self.status_code = status
        self.resp_body = body


def _lost(cause: BaseException) -> LinkLost:
    lost = LinkLost("handshake failed")
    lost.__cause__ = cause
    return lost


def test_key_refused_reads_the_handshake_answer() -> None:
    """HTTP 400, or a body with -1125, means the key is gone; 503 and refusals do not."""
    assert key_refused(_lost(_BadStatus(400, b"")))
    assert key_refused(_lost(_BadStatus(410, b'{"code":-1125}')))
    assert not key_refused(_lost(_BadStatus(503, b"busy")))
    assert not key_refused(_lost(ConnectionRefusedError()))


def test_order_key_reads_both_update_types() -> None:
    """ORDER_TRADE_UPDATE by o.c, ALGO_UPDATE by o.caid; anything else is None."""
    assert ("a", "NEW") == order_key(otu("a", "NEW"))
    assert ("s", "TRIGGERED") == order_key(algo("s", "TRIGGERED"))
    assert order_key({"e": "TRADE_LITE", "c": "a"}) is None
    assert order_key({"e": "ORDER_TRADE_UPDATE", "o": "x"}) is None


def test_check_statuses_takes_one_string_as_one_status() -> None:
    """statuses="FILLED" is ("FILLED",), not five letters."""
    assert frozenset({"FILLED"}) == check_statuses("FILLED")
    assert frozenset({"FINISHED", "CANCELED"}) == check_statuses(["FINISHED", "CANCELED"])


@pytest.mark.parametrize("bad", [(), ("DONE",), 5])
def test_check_statuses_refuses_unknown_ones(bad: Any) -> None:
    """An empty or unknown status set is a ValueError naming statuses."""
    with pytest.raises(ValueError, match="statuses"):
        check_statuses(bad)


def test_history_is_bounded_per_id_and_in_ids() -> None:
    """The oldest id is forgotten first; each id keeps its last max_events events."""
    history = OrderHistory(max_ids=2, max_events=2)
    for event in (otu("a", "NEW"), otu("b", "NEW"), otu("a", "PARTIALLY_FILLED")):
        history.record(event)
    history.record(otu("a", "FILLED"))
    history.record(otu("c", "NEW"))

    assert (2, [], ["PARTIALLY_FILLED", "FILLED"]) == (
        len(history),
        history.events("b"),
        [e["o"]["X"] for e in history.events("a")],
    )
    assert history.record({"e": "TRADE_LITE"}) is None


def test_match_returns_the_first_wanted_event() -> None:
    """The first event with a wanted status wins, even after a final one of another type."""
    events = [algo("s", "NEW"), algo("s", "TRIGGERED"), otu("s", "FILLED"), algo("s", "FINISHED")]

    assert (events[1], None) == match(events, frozenset({"TRIGGERED"}))
    assert (events[2], None) == match(events, frozenset({"FILLED"}))


def test_match_ends_at_a_final_status_not_wanted() -> None:
    """CANCELED while waiting for FILLED: ended; NEW only: keep waiting."""
    cancelled = otu("a", "CANCELED")

    assert (None, cancelled) == match([otu("a", "NEW"), cancelled], frozenset({"FILLED"}))
    assert (None, None) == match([otu("a", "NEW")], frozenset({"FILLED"}))


def test_overlap_delivers_each_message_once_until_it_ends() -> None:
    """During an overlap a repeated message is dropped; before and after, all pass."""
    overlap = Overlap()
    assert overlap.admit(b"x", 0.0) and overlap.admit(b"x", 0.0)

    overlap.start(until=10.0)
    seen = [overlap.admit(m, 1.0) for m in (b"a", b"b", b"a", b"b", b"c")]

    assert [True, True, False, False, True] == seen
    assert overlap.admit(b"a", 10.0)
    assert not overlap.active


def test_overlap_remembers_what_came_while_the_new_link_was_opening() -> None:
    """Armed at the handshake: a message delivered before the new link opened is not repeated."""
    overlap = Overlap()
    overlap.arm()
    assert overlap.admit(b"early", 0.0)  # from the old link, before on_open

    overlap.start(until=5.0)

    assert [False, True] == [overlap.admit(b"early", 1.0), overlap.admit(b"late", 1.0)]


def test_typed_order_update_reads_decimals() -> None:
    """OrderUpdate: status, filled quantity, average price, realized profit as Decimals."""
    event = otu("a", "FILLED", z="0.010", ap="50000.10", rp="-1.5", l="0.010", L="50000.1")
    update = typed(event)

    assert isinstance(update, OrderUpdate)
    assert ("FILLED", Decimal("0.010"), Decimal("50000.10"), Decimal("-1.5")) == (
        update.status,
        update.filled_quantity,
        update.average_price,
        update.realized_profit,
    )
    assert update.raw is event
    assert update.commission is None


def test_typed_account_update_reads_balances_and_positions() -> None:
    """AccountUpdate: reason, balances and positions with Decimal figures."""
    event = {
        "e": "ACCOUNT_UPDATE",
        "E": "5",
        "T": 5,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "100.5", "cw": "100.5", "bc": "0"}],
            "P": [{"s": "BTCUSDT", "pa": "-0.010", "ep": "50000", "up": "1", "cr": "0",
                   "mt": "cross", "ps": "BOTH"}],
        },
    }  # fmt: skip
    update = typed(event)

    assert isinstance(update, AccountUpdate)
    assert ("ORDER", 5) == (update.reason, update.event_time)
    assert [("USDT", Decimal("100.5"))] == [(b.asset, b.wallet_balance) for b in update.balances]
    assert [("BTCUSDT", Decimal("-0.010"))] == [(p.symbol, p.amount) for p in update.positions]


def test_typed_algo_update_and_other_events() -> None:
    """AlgoUpdate reads the trigger's order id; other events come back as they are."""
    event = {"e": "ALGO_UPDATE", "o": {"caid": "s", "aid": 7, "X": "TRIGGERED", "ai": "42"}}
    update = typed(event)
    lite = {"e": "TRADE_LITE"}

    assert isinstance(update, AlgoUpdate)
    assert ("s", 7, "TRIGGERED", 42) == (
        update.client_algo_id,
        update.algo_id,
        update.status,
        update.order_id,
    )
    assert lite is typed(lite)
    with pytest.raises(ValueError, match="ORDER_TRADE_UPDATE"):
        OrderUpdate(lite)
