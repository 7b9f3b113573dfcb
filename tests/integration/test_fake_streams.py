"""FakeExchange's stream routes driven over real sockets with a plain websocket-client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest
import websocket

from bfsync.signing import HmacSigner
from bfsync.testing import FakeExchange
from tests.timing import scaled

from .rawclient import LIMIT_BUY, Client, signed

Connect = Callable[..., "StreamClient"]


class Closed(Exception):
    """The server closed the connection (``code``: its close code)."""

    def __init__(self, code: Optional[int]) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class StreamClient:
    """A raw stream connection: send control frames, read events, with bounded waits."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=scaled(5))
        self.next_id = 0

    def send(self, method: str, params: Optional[list[Any]] = None, rid: Any = "auto") -> Any:
        if rid == "auto":
            self.next_id += 1
            rid = self.next_id
        frame: dict[str, Any] = {"method": method, "id": rid}
        if params is not None:
            frame["params"] = params
        self.ws.send(json.dumps(frame))
        return rid

    def recv(self, timeout: float = 5.0) -> Any:
        """The next text frame, decoded; ``Closed`` for a close frame (pongs are skipped)."""
        self.ws.settimeout(scaled(timeout))
        while True:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise Closed(int.from_bytes(frame.data[:2], "big") if frame.data else None)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return json.loads(frame.data)

    def call(self, method: str, params: Optional[list[Any]] = None) -> Any:
        rid = self.send(method, params)
        reply = self.recv()
        assert rid == reply.get("id"), reply
        return reply

    def close(self) -> None:
        self.ws.close(timeout=1)
        # close() leaves the socket open once the link was lost: close it in any case.
        self.ws.shutdown()  # type: ignore[no-untyped-call]


@pytest.fixture
def connect(fx: FakeExchange) -> Iterator[Connect]:
    """Open stream connections on ``fx``; all closed after the test."""
    opened: list[StreamClient] = []

    def make(path: str) -> StreamClient:
        client = StreamClient(fx.stream_url + path)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def hmac_client(fx: FakeExchange) -> tuple[Client, str, HmacSigner]:
    api_key, secret = fx.add_hmac_key()
    return Client(fx.url), api_key, HmacSigner(secret)


# ---- routes and modes ----------------------------------------------------------------------


def test_raw_mode_path_streams_get_bare_payloads(fx: FakeExchange, connect: Connect) -> None:
    """/public/ws/<s1>/<s2> subscribes both streams; events come unwrapped."""
    client = connect("/public/ws/btcusdt@bookTicker/ethusdt@bookTicker")
    fx.publish_book_ticker("ETHUSDT")
    event = client.recv()
    assert "bookTicker" == event["e"]
    assert "ETHUSDT" == event["s"]
    assert ["btcusdt@bookTicker", "ethusdt@bookTicker"] == client.call("LIST_SUBSCRIPTIONS")[
        "result"
    ]


def test_combined_mode_wraps_events(fx: FakeExchange, connect: Connect) -> None:
    """/market/stream?streams=a/b wraps each event as {"stream", "data"}."""
    client = connect("/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice")
    assert True is client.call("GET_PROPERTY", ["combined"])["result"]
    payload = fx.publish_agg_trade("BTCUSDT", price="50001.5", quantity="0.002")
    assert {"stream": "btcusdt@aggTrade", "data": payload} == client.recv()


def test_publish_counts_only_connections_on_the_right_route(
    fx: FakeExchange, connect: Connect
) -> None:
    """A stream subscribed on the wrong route is acknowledged, then silent."""
    client = connect("/public/ws")
    assert {"result": None, "id": 1} == client.call("SUBSCRIBE", ["btcusdt@aggTrade"])
    client.call("SUBSCRIBE", ["btcusdt@bookTicker"])
    assert 0 == fx.publish("btcusdt@aggTrade", {"e": "aggTrade"})
    assert 1 == fx.publish("btcusdt@bookTicker", {"e": "marker"})
    assert {"e": "marker"} == client.recv()  # the aggTrade never came
    assert ["btcusdt@aggTrade", "btcusdt@bookTicker"] == client.call("LIST_SUBSCRIPTIONS")["result"]


def test_market_route_does_not_serve_public_streams(fx: FakeExchange, connect: Connect) -> None:
    """bookTicker on /market is silent; aggTrade on /market is served."""
    client = connect("/market/ws/btcusdt@bookTicker/btcusdt@aggTrade")
    fx.publish_book_ticker("BTCUSDT")
    trade = fx.publish_agg_trade("BTCUSDT")
    assert trade == client.recv()


def test_legacy_paths_serve_public_data_only(fx: FakeExchange, connect: Connect) -> None:
    """Legacy /ws and /stream get /public data; /market streams stay silent."""
    raw = connect("/ws/btcusdt@aggTrade/btcusdt@bookTicker")
    combined = connect("/stream?streams=btcusdt@markPrice/btcusdt@depth")
    fx.publish_agg_trade("BTCUSDT")
    fx.publish_mark_price("BTCUSDT")
    ticker = fx.publish_book_ticker("BTCUSDT")
    diff = fx.publish_depth("BTCUSDT", bids=[("49999.9", "2")])
    assert ticker == raw.recv()
    assert {"stream": "btcusdt@depth", "data": diff} == combined.recv()


def test_ws_fapi_still_served_on_other_paths(fx: FakeExchange) -> None:
    """ws-fapi keeps working on its own path next to the stream routes."""
    client = Client(fx.url)
    try:
        reply = client.call("ticker.price", {"symbol": "BTCUSDT"})
        assert "50000.00" == reply["result"]["price"]
    finally:
        client.close()


# ---- control frames ----------------------------------------------------------------------


def test_subscribe_unsubscribe_list(fx: FakeExchange, connect: Connect) -> None:
    """SUBSCRIBE / UNSUBSCRIBE answer {"result": null, "id"}; LIST_SUBSCRIPTIONS lists them."""
    client = connect("/public/ws")
    assert {"result": None, "id": 1} == client.call(
        "SUBSCRIBE", ["btcusdt@bookTicker", "BTCUSDT@depth@100ms"]
    )
    assert ["btcusdt@bookTicker", "btcusdt@depth@100ms"] == client.call("LIST_SUBSCRIPTIONS")[
        "result"
    ]
    assert {"result": None, "id": 3} == client.call("UNSUBSCRIBE", ["btcusdt@bookTicker"])
    assert ["btcusdt@depth@100ms"] == client.call("LIST_SUBSCRIPTIONS")["result"]
    assert 0 == fx.publish("btcusdt@bookTicker", {"e": "x"})
    assert [["btcusdt@depth@100ms"]] == fx.stream_subscriptions("public")


def test_set_property_combined_switches_wrapping(fx: FakeExchange, connect: Connect) -> None:
    """SET_PROPERTY ["combined", true] wraps the following events; GET_PROPERTY reads it."""
    client = connect("/public/ws/btcusdt@bookTicker")
    assert False is client.call("GET_PROPERTY", ["combined"])["result"]
    assert {"result": None, "id": 2} == client.call("SET_PROPERTY", ["combined", True])
    assert True is client.call("GET_PROPERTY", ["combined"])["result"]
    fx.publish("btcusdt@bookTicker", {"e": "bookTicker"})
    assert {"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker"}} == client.recv()


@pytest.mark.parametrize(
    ("frame", "code", "echoed_id"),
    [
        ('{"method":"SET_PROPERTY","params":["speed",true],"id":7}', 0, 7),
        ('{"method":"GET_PROPERTY","params":["nope"],"id":7}', 0, 7),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":7}', 1, 7),
        ('{"method":"SET_PROPERTY","params":[1,true],"id":7}', 2, 7),
        ('{"method":"SET_PROPERTY","params":["combined",true,1],"id":7}', 2, 7),
        ('{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":7}', 2, 7),
        ('{"method":"SUBSCRIBE_ALL","params":[],"id":7}', 2, 7),
        ('{"params":[],"id":7}', 2, 7),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":-1}', 2, None),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":"7"}', 2, None),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":true}', 2, None),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"]}', 2, None),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bookTickr"],"id":7}', 2, 7),
        ('{"method":"SUBSCRIBE","params":[42],"id":7}', 2, 7),
        ('{"method":"SUBSCRIBE","params":"btcusdt@bookTicker","id":7}', 2, 7),
        ("[1, 2]", 2, None),
        ('{"method": "SUBSCRIBE", ', 3, None),
    ],
)
def test_control_frame_errors(
    connect: Connect, frame: str, code: int, echoed_id: Optional[int]
) -> None:
    """Each malformed control frame gets Binance's error code; the connection stays open."""
    client = connect("/public/ws")
    client.ws.send(frame)
    reply = client.recv()
    assert code == reply["error"]["code"]
    assert echoed_id == reply["id"]
    assert [] == client.call("LIST_SUBSCRIPTIONS")["result"]


def test_error_messages_match_binance_wording(connect: Connect) -> None:
    """The documented messages of codes 0 to 3."""
    client = connect("/public/ws")
    assert "Unknown property" == client.call("GET_PROPERTY", ["x"])["error"]["msg"]
    bad_value = client.call("SET_PROPERTY", ["combined", 1])["error"]["msg"]
    assert "Invalid value type: expected Boolean" == bad_value
    client.ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1.5}')
    bad_id = client.recv()["error"]["msg"]
    assert "Invalid request: request ID must be an unsigned integer" == bad_id
    client.ws.send("{")
    assert client.recv()["error"]["msg"].startswith("Invalid JSON: ")


def test_too_many_messages_close_the_connection(fx: FakeExchange, connect: Connect) -> None:
    """More than 10 incoming messages in a second: the server closes the connection."""
    client = connect("/public/ws")
    for i in range(11):
        client.send("LIST_SUBSCRIPTIONS", rid=i)
    replies = []
    with pytest.raises(Closed) as closed:
        for _ in range(12):
            replies.append(client.recv())  # noqa: PERF401 - the loop ends by raising
    assert 10 == len(replies)
    assert 1008 == closed.value.code
    fx.wait_for(lambda: fx.stream_stats["closed_for_rate"] == 1, timeout=scaled(5))


def test_stream_limit_refuses_the_subscription_over_it(fx: FakeExchange, connect: Connect) -> None:
    """1024 streams fit on a connection; one more is refused with code 2 and not added."""
    client = connect("/public/ws")
    names = [f"s{i}usdt@bookTicker" for i in range(1024)]
    assert {"result": None, "id": 1} == client.call("SUBSCRIBE", names)
    reply = client.call("SUBSCRIBE", ["btcusdt@bookTicker"])
    assert 2 == reply["error"]["code"]
    assert 1024 == len(client.call("LIST_SUBSCRIPTIONS")["result"])


def test_stream_limits_can_be_lowered(fx: FakeExchange, connect: Connect) -> None:
    """set_stream_limits() lowers both limits for a test."""
    fx.set_stream_limits(messages_per_second=3, streams_per_connection=2)
    client = connect("/public/ws")
    assert (
        2
        == client.call("SUBSCRIBE", ["a@bookTicker", "b@bookTicker", "c@bookTicker"])["error"][
            "code"
        ]
    )
    for _ in range(4):  # a burst of 4: over 3 per second whatever the machine's load
        client.send("LIST_SUBSCRIPTIONS")
    with pytest.raises(Closed):
        for _ in range(5):
            client.recv()
    with pytest.raises(ValueError, match="messages_per_second"):
        fx.set_stream_limits(messages_per_second=0)


def test_too_many_streams_in_the_url_refuse_the_handshake(fx: FakeExchange) -> None:
    """A URL naming more than the stream limit is refused with HTTP 400."""
    fx.set_stream_limits(streams_per_connection=2)
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(
            fx.stream_url + "/public/ws/a@bookTicker/b@bookTicker/c@bookTicker",
            timeout=scaled(5),
        )
    assert 400 == caught.value.status_code


# ---- publishing ----------------------------------------------------------------------------


def test_payload_shapes_follow_the_reference(fx: FakeExchange, connect: Connect) -> None:
    """Each helper publishes Binance's fields (reference §7.2) on its stream names."""
    client = connect(
        "/market/ws/btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@kline_5m/btcusdt@forceOrder"
        "/btcusdt@ticker/btcusdt@miniTicker/!markPrice@arr"
    )
    trade = fx.publish_agg_trade("BTCUSDT")
    mark = fx.publish_mark_price("BTCUSDT", mark_price="50010.5")
    kline = fx.publish_kline("BTCUSDT", "5m", open="49990", close="50000", closed=True)
    force = fx.publish_force_order("BTCUSDT", "BUY", "50100", "0.5")
    ticker = fx.publish_ticker("BTCUSDT")
    received = [client.recv() for _ in range(7)]
    assert {"e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"} == set(trade)
    assert {"e", "E", "s", "p", "ap", "i", "P", "r", "T"} == set(mark)
    assert "50010.50000000" == mark["p"]
    assert {
        "t",
        "T",
        "s",
        "i",
        "f",
        "L",
        "o",
        "c",
        "h",
        "l",
        "v",
        "n",
        "x",
        "q",
        "V",
        "Q",
        "B",
    } == set(kline["k"])
    assert 300_000 == kline["k"]["T"] + 1 - kline["k"]["t"]
    assert {"s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"} == set(force["o"])
    assert "24hrTicker" == ticker["e"]
    assert [trade, mark, [mark], kline, force] == [
        received[0],
        received[1],
        received[2],
        received[3],
        received[4],
    ]
    assert {"24hrMiniTicker", "24hrTicker"} == {received[5]["e"], received[6]["e"]}


def test_book_ticker_update_ids_increase(fx: FakeExchange, connect: Connect) -> None:
    """bookTicker's ``u`` grows, and the best levels default to the live book."""
    client = connect("/public/ws/btcusdt@bookTicker")
    fx.publish_depth("BTCUSDT", bids=[("49999.95", "3")])
    first = fx.publish_book_ticker("BTCUSDT")
    second = fx.publish_book_ticker("BTCUSDT", bid="49999.9", bid_qty="1")
    assert {"e", "u", "E", "T", "s", "b", "B", "a", "A"} == set(first)
    assert ["49999.95", "3.000"] == [first["b"], first["B"]]
    assert second["u"] > first["u"]
    assert [first, second] == [client.recv(), client.recv()]


def test_depth_diffs_chain_and_fit_the_snapshot(fx: FakeExchange, connect: Connect) -> None:
    """Diffs carry an unbroken U/u/pu chain; ws-fapi depth's lastUpdateId sits on it."""
    client = connect("/public/ws/btcusdt@depth@100ms")
    rest = Client(fx.url)
    try:
        first = fx.publish_depth("BTCUSDT", bids=[("49999.9", "5"), ("49999.8", "0")])
        snapshot = rest.call("depth", {"symbol": "BTCUSDT", "limit": 5})["result"]
        same = {**fx.depth_snapshot("BTCUSDT", 5), "E": snapshot["E"], "T": snapshot["T"]}
        second = fx.publish_depth("BTCUSDT", asks=[("50000.1", "0.25")])
    finally:
        rest.close()
    assert [first, second] == [client.recv(), client.recv()]
    assert first["u"] == second["pu"]
    assert second["U"] == first["u"] + 1
    assert first["u"] < snapshot["lastUpdateId"]  # a client drops ``first``...
    assert second["U"] <= snapshot["lastUpdateId"] <= second["u"]  # ...and applies ``second``
    assert ["49999.90", "5.000"] == snapshot["bids"][0]
    assert "49999.80" not in [price for price, _ in snapshot["bids"]]
    assert same == snapshot


def test_depth_gap_breaks_the_chain_and_the_snapshot_has_it(
    fx: FakeExchange, connect: Connect
) -> None:
    """After depth_gap() the next diff's pu is not the last u received; snapshots include it."""
    client = connect("/public/ws/btcusdt@depth")
    before = fx.publish_depth("BTCUSDT", bids=[("49999.9", "1")])
    lost = fx.depth_gap("BTCUSDT", bids=[("49999.9", "7")])
    after = fx.publish_depth("BTCUSDT", asks=[("50000.3", "1")])
    assert [before, after] == [client.recv(), client.recv()]
    assert before["u"] != after["pu"]
    assert lost["u"] == after["pu"]
    assert ["49999.90", "7.000"] == fx.depth_snapshot("BTCUSDT", 5)["bids"][0]


def test_partial_depth_streams_get_the_top_levels(fx: FakeExchange, connect: Connect) -> None:
    """<s>@depth5 subscribers get the best 5 levels a side with each diff."""
    client = connect("/public/ws/btcusdt@depth5@100ms")
    diff = fx.publish_depth("BTCUSDT", bids=[("49999.95", "2")])
    event = client.recv()
    assert diff["u"] == event["u"]
    assert 5 == len(event["b"]) == len(event["a"])
    assert ["49999.95", "2.000"] == event["b"][0]


def test_depth_of_symbols_without_a_live_book_is_unchanged(fx: FakeExchange) -> None:
    """ws-fapi depth keeps its fixed ladder for symbols nobody published depth for."""
    assert 7000000001 == fx.depth_snapshot("ETHUSDT", 5)["lastUpdateId"]
    assert ["2999.99", "0.250"] == fx.depth_snapshot("ETHUSDT", 5)["bids"][0]


def test_publish_many_delivers_in_order(fx: FakeExchange, connect: Connect) -> None:
    """publish_many() sends every event, in order, to raw and combined connections."""
    raw = connect("/public/ws/btcusdt@bookTicker")
    combined = connect("/public/stream?streams=btcusdt@bookTicker")
    payloads = [{"e": "bookTicker", "u": i} for i in range(2000)]
    assert 2 == fx.publish_many("btcusdt@bookTicker", payloads)
    assert list(range(2000)) == [raw.recv()["u"] for _ in range(2000)]
    assert list(range(2000)) == [combined.recv()["data"]["u"] for _ in range(2000)]
    fx.wait_for(lambda: fx.stream_stats["events_sent"] == 4000, timeout=scaled(5))


def test_publishing_rejects_bad_input(fx: FakeExchange) -> None:
    """Unknown symbols, bad levels and intervals raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="symbol"):
        fx.publish_book_ticker("NOPEUSDT")
    with pytest.raises(ValueError, match="bids"):
        fx.publish_depth("BTCUSDT", bids=[("-1", "1")])
    with pytest.raises(ValueError, match="asks quantity"):
        fx.publish_depth("BTCUSDT", asks=[("50000", "x")])
    with pytest.raises(ValueError, match="interval"):
        fx.publish_kline("BTCUSDT", "7m")
    with pytest.raises(ValueError, match="stream"):
        fx.publish("", {})
    with pytest.raises(ValueError, match="limit"):
        fx.depth_snapshot("BTCUSDT", 7)


# ---- faults and counters ---------------------------------------------------------------------


def test_drop_stream_connections_of_one_route(fx: FakeExchange, connect: Connect) -> None:
    """drop_stream_connections("market") closes /market only; ws-fapi and /public stay."""
    public = connect("/public/ws/btcusdt@bookTicker")
    market = connect("/market/ws/btcusdt@aggTrade")
    api = Client(fx.url)
    try:
        assert 1 == fx.drop_stream_connections("market")
        with pytest.raises(Closed):
            market.recv()
        fx.publish_book_ticker("BTCUSDT")
        assert "bookTicker" == public.recv()["e"]
        assert 200 == api.call("ticker.price", {"symbol": "BTCUSDT"})["status"]
        assert 1 == fx.stream_stats["connections"]
    finally:
        api.close()


def test_silence_keeps_the_connection_and_answers_pings(fx: FakeExchange, connect: Connect) -> None:
    """A silenced route sends no events but answers pings and control frames, then resumes."""
    client = connect("/public/ws/btcusdt@bookTicker")
    assert 1 == fx.silence_streams(scaled(0.5), route="public")
    assert 1 == fx.publish("btcusdt@bookTicker", {"n": 1})
    client.ws.ping("hello")
    client.ws.settimeout(scaled(5))
    opcode, frame = client.ws.recv_data_frame(control_frame=True)
    assert (websocket.ABNF.OPCODE_PONG, b"hello") == (opcode, frame.data)
    assert [] != client.call("LIST_SUBSCRIPTIONS")["result"]
    time.sleep(scaled(0.6))
    fx.publish("btcusdt@bookTicker", {"n": 2})
    assert {"n": 2} == client.recv()


def test_silence_of_new_connections_and_unsilence(fx: FakeExchange, connect: Connect) -> None:
    """With new_connections=True a reconnect is silent too, until unsilence_streams()."""
    fx.silence_streams(scaled(30), route="public", new_connections=True)
    client = connect("/public/ws/btcusdt@bookTicker")
    fx.publish("btcusdt@bookTicker", {"n": 1})
    assert [] != client.call("LIST_SUBSCRIPTIONS")["result"]  # the event did not come first
    fx.unsilence_streams()
    fx.publish("btcusdt@bookTicker", {"n": 2})
    assert {"n": 2} == client.recv()


def test_close_streams_at_age(fx: FakeExchange, connect: Connect) -> None:
    """close_streams_at_age() closes stream connections with a close frame at that age."""
    fx.close_streams_at_age(scaled(0.3))
    client = connect("/public/ws/btcusdt@bookTicker")
    client.ws.settimeout(scaled(5))
    opcode, frame = client.ws.recv_data_frame(control_frame=True)
    assert websocket.ABNF.OPCODE_CLOSE == opcode
    assert 1000 == int.from_bytes(frame.data[:2], "big")
    fx.wait_for(lambda: fx.stream_stats["aged_out"] == 1, timeout=scaled(5))
    fx.close_streams_at_age(None)


def test_counters(fx: FakeExchange, connect: Connect) -> None:
    """stream_stats counts connections, control messages and subscriptions."""
    client = connect("/public/ws/btcusdt@bookTicker")
    client.call("SUBSCRIBE", ["btcusdt@depth", "ethusdt@depth"])
    client.call("LIST_SUBSCRIPTIONS")
    stats = fx.stream_stats
    assert (1, 1, 2, 1, 3) == (
        stats["connections"],
        stats["connections_total"],
        stats["control_messages"],
        stats["subscribe_requests"],
        stats["subscriptions"],
    )


def test_stop_closes_stream_connections(connect: Connect) -> None:
    """stop() ends stream connections too, within its bound."""
    with FakeExchange() as fx:
        client = StreamClient(fx.stream_url + "/public/ws/btcusdt@bookTicker")
        started = time.monotonic()
    assert time.monotonic() - started < scaled(5)
    with pytest.raises(Closed):
        client.recv()
    client.ws.shutdown()  # type: ignore[no-untyped-call]


# ---- the private route -----------------------------------------------------------------------

ALL_EVENTS = "ORDER_TRADE_UPDATE/TRADE_LITE/ACCOUNT_UPDATE/ALGO_UPDATE"


@pytest.fixture
def account(fx: FakeExchange) -> Iterator[tuple[Client, str, HmacSigner, str]]:
    """A ws-fapi client, its key and a live listenKey."""
    client, api_key, signer = hmac_client(fx)
    listen_key = client.call("userDataStream.start", {"apiKey": api_key})["result"]["listenKey"]
    yield client, api_key, signer, listen_key
    client.close()


def place(fx: FakeExchange, account: tuple[Client, str, HmacSigner, str], **params: Any) -> Any:
    client, api_key, signer, _ = account
    reply = client.call("order.place", signed(fx, (api_key, signer), dict(LIMIT_BUY, **params)))
    assert 200 == reply["status"], reply
    return reply["result"]


def test_private_route_pushes_a_fill(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """A filled order yields ORDER_TRADE_UPDATE NEW, TRADE_LITE, TRADE and ACCOUNT_UPDATE."""
    stream = connect(f"/private/ws?listenKey={account[3]}&events={ALL_EVENTS}")
    order = place(fx, account, price="51000", newClientOrderId="fill-me")
    events = [stream.recv() for _ in range(4)]
    assert ["ORDER_TRADE_UPDATE", "TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"] == [
        e["e"] for e in events
    ]
    new, lite, trade, update = events
    assert ("NEW", "NEW", "fill-me") == (new["o"]["x"], new["o"]["X"], new["o"]["c"])
    assert ("TRADE", "FILLED", order["orderId"]) == (
        trade["o"]["x"],
        trade["o"]["X"],
        trade["o"]["i"],
    )
    assert "0.010" == trade["o"]["z"] == trade["o"]["l"] == lite["l"]
    assert {"E", "T", "s", "q", "p", "m", "c", "S", "L", "l", "t", "i", "e"} == set(lite)
    assert "0.010" == update["a"]["P"][0]["pa"]
    assert {
        "s",
        "c",
        "S",
        "o",
        "f",
        "q",
        "p",
        "ap",
        "sp",
        "x",
        "X",
        "i",
        "l",
        "z",
        "L",
        "N",
        "n",
        "T",
        "t",
        "b",
        "a",
        "m",
        "R",
        "wt",
        "ot",
        "ps",
        "cp",
        "rp",
        "pP",
        "si",
        "ss",
        "V",
        "pm",
        "gtd",
        "er",
    } == set(trade["o"])


def test_private_route_cancel_and_event_filter(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """events= limits the types delivered; a cancel sends ORDER_TRADE_UPDATE CANCELED."""
    client, api_key, signer, listen_key = account
    stream = connect(f"/private/ws?listenKey={listen_key}&events=ORDER_TRADE_UPDATE")
    order = place(fx, account)
    assert "NEW" == stream.recv()["o"]["x"]
    params = {"symbol": "BTCUSDT", "orderId": order["orderId"]}
    assert 200 == client.call("order.cancel", signed(fx, (api_key, signer), params))["status"]
    canceled = stream.recv()
    assert ("CANCELED", "CANCELED") == (canceled["o"]["x"], canceled["o"]["X"])


def test_private_route_algo_updates(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """Placing and cancelling an algo order push ALGO_UPDATE NEW then CANCELED."""
    client, api_key, signer, listen_key = account
    stream = connect(f"/private/stream?listenKey={listen_key}&events=ALGO_UPDATE")
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "0.010",
        "triggerPrice": "49000",
        "clientAlgoId": "stop-1",
    }
    placed = client.call("algoOrder.place", signed(fx, (api_key, signer), params))["result"]
    event = stream.recv()
    assert listen_key == event["stream"]
    assert ("ALGO_UPDATE", "NEW", "stop-1", placed["algoId"]) == (
        event["data"]["e"],
        event["data"]["o"]["X"],
        event["data"]["o"]["caid"],
        event["data"]["o"]["aid"],
    )
    cancel = {"algoId": placed["algoId"]}
    assert 200 == client.call("algoOrder.cancel", signed(fx, (api_key, signer), cancel))["status"]
    assert "CANCELED" == stream.recv()["data"]["o"]["X"]


def test_private_route_refuses_an_unknown_listen_key(fx: FakeExchange) -> None:
    """A listenKey that is not alive: the handshake is refused with HTTP 400 and -1125."""
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(
            fx.stream_url + "/private/ws?listenKey=nope&events=ORDER_TRADE_UPDATE",
            timeout=scaled(5),
        )
    assert 400 == caught.value.status_code
    assert b"-1125" in caught.value.resp_body


def test_expire_listen_key_sends_listen_key_expired(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """expire_listen_key() pushes listenKeyExpired; later events stop; ping gets -1125."""
    client, api_key, _, listen_key = account
    stream = connect(f"/private/ws/{listen_key}")
    assert fx.expire_listen_key(listen_key)
    expired = stream.recv()
    assert ("listenKeyExpired", listen_key) == (expired["e"], expired["listenKey"])
    reply = client.call("userDataStream.ping", {"apiKey": api_key})
    assert -1125 == reply["error"]["code"]
    assert not fx.expire_listen_key(listen_key)


def test_private_path_form_can_be_turned_off(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """With private_path_form = False a /private/ws/<key> connection gets nothing."""
    fx.private_path_form = False
    silent = connect(f"/private/ws/{account[3]}")
    served = connect(f"/private/ws?listenKey={account[3]}&events=ORDER_TRADE_UPDATE")
    place(fx, account)
    assert "ORDER_TRADE_UPDATE" == served.recv()["e"]
    assert [] == silent.call("LIST_SUBSCRIPTIONS")["result"]


def test_private_subscribe_by_listen_key(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """SUBSCRIBE with <listenKey>@EVENT binds the key; an unknown key gets -1125."""
    stream = connect("/private/ws")
    assert -1125 == stream.call("SUBSCRIBE", ["nope@ORDER_TRADE_UPDATE"])["error"]["code"]
    assert {"result": None, "id": 2} == stream.call(
        "SUBSCRIBE", [f"{account[3]}@ORDER_TRADE_UPDATE"]
    )
    place(fx, account)
    assert "ORDER_TRADE_UPDATE" == stream.recv()["e"]


def test_move_price_fills_a_resting_order(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """move_price() through a resting LIMIT fills it at its price and pushes the TRADE."""
    stream = connect(f"/private/ws?listenKey={account[3]}&events=ORDER_TRADE_UPDATE")
    order = place(fx, account, newClientOrderId="resting")
    assert "NEW" == stream.recv()["o"]["x"]
    assert (0, 0) == fx.move_price("BTCUSDT", "49500")
    assert (1, 0) == fx.move_price("BTCUSDT", "48900")
    trade = stream.recv()["o"]
    assert ("TRADE", "FILLED", "resting", "49000.00") == (
        trade["x"],
        trade["X"],
        trade["c"],
        trade["L"],
    )
    assert "FILLED" == fx.order(order["orderId"])["status"]
    with pytest.raises(ValueError, match="price"):
        fx.move_price("BTCUSDT", "-1")


def test_algo_order_triggers_when_the_price_moves(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """A STOP_MARKET whose trigger is met: ALGO_UPDATE TRIGGERING, TRIGGERED, FINISHED."""
    client, api_key, signer, listen_key = account
    stream = connect(f"/private/ws?listenKey={listen_key}&events=ALGO_UPDATE/TRADE_LITE")
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "0.010",
        "triggerPrice": "49000",
    }
    placed = client.call("algoOrder.place", signed(fx, (api_key, signer), params))["result"]
    assert "NEW" == stream.recv()["o"]["X"]
    assert (0, 1) == fx.move_price("BTCUSDT", "48999")
    events = [stream.recv() for _ in range(4)]
    assert ["TRIGGERING", "TRIGGERED", "TRADE_LITE", "FINISHED"] == [
        e["o"]["X"] if e["e"] == "ALGO_UPDATE" else e["e"] for e in events
    ]
    child = int(events[1]["o"]["ai"])
    assert (child, "SELL") == (events[2]["i"], events[2]["S"])
    assert "FINISHED" == fx.algo_order(placed["algoId"])["algoStatus"]
    with pytest.raises(ValueError, match="not NEW"):
        fx.trigger_algo_order(placed["algoId"])


def test_trigger_algo_order_places_a_resting_limit(
    fx: FakeExchange, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """trigger_algo_order() on a STOP places its LIMIT order, resting until the price comes."""
    client, api_key, signer, _ = account
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "STOP",
        "quantity": "0.010",
        "price": "49000",
        "triggerPrice": "50400",
    }
    placed = client.call("algoOrder.place", signed(fx, (api_key, signer), params))["result"]
    child = fx.trigger_algo_order(placed["algoId"])
    assert ("LIMIT", "STOP", "NEW") == (child["type"], child["origType"], child["status"])
    assert "TRIGGERED" == fx.algo_order(placed["algoId"])["algoStatus"]
    assert (1, 0) == fx.move_price("BTCUSDT", "48900")
    assert "FINISHED" == fx.algo_order(placed["algoId"])["algoStatus"]
    assert "FILLED" == fx.order(child["orderId"])["status"]


def test_listen_key_expires_after_an_hour_of_server_time(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """60 minutes without a keepalive (server clock moved on): listenKeyExpired is pushed."""
    stream = connect(f"/private/stream?listenKey={account[3]}&events=ORDER_TRADE_UPDATE")
    fx.clock_offset_ms = 3_600_001
    expired = stream.recv()
    assert (account[3], "listenKeyExpired") == (expired["stream"], expired["data"]["e"])
    fx.wait_for(lambda: fx.stream_stats["listen_keys_expired"] == 1, timeout=scaled(5))


def test_two_listen_keys_on_one_private_connection(
    fx: FakeExchange, connect: Connect, account: tuple[Client, str, HmacSigner, str]
) -> None:
    """/private/stream with two keys delivers each key's events, wrapped with that key."""
    other_client, other_key, _ = hmac_client(fx)
    try:
        other = other_client.call("userDataStream.start", {"apiKey": other_key})["result"]
    finally:
        other_client.close()
    stream = connect(
        f"/private/stream?listenKey={account[3]}&events=ORDER_TRADE_UPDATE"
        f"&listenKey={other['listenKey']}&events=ORDER_TRADE_UPDATE"
    )
    place(fx, account)
    assert {account[3], other["listenKey"]} == {stream.recv()["stream"], stream.recv()["stream"]}


def test_ping_interval_pings_stream_connections(fx: FakeExchange, connect: Connect) -> None:
    """With ping_interval set, stream connections are pinged too (websocket-client pongs)."""
    fx.ping_interval = scaled(0.1)
    client = connect("/public/ws")
    client.ws.settimeout(scaled(5))
    opcode, _ = client.ws.recv_data_frame(control_frame=True)
    assert websocket.ABNF.OPCODE_PING == opcode
    fx.wait_for(lambda: fx.pings_sent >= 1, timeout=scaled(5))


def test_ticker_book_follows_the_live_book(fx: FakeExchange) -> None:
    """ws-fapi ticker.book answers the live book's best levels and update id."""
    diff = fx.publish_depth("BTCUSDT", bids=[("49999.95", "4")], asks=[("50000.05", "2")])
    client = Client(fx.url)
    try:
        book = client.call("ticker.book", {"symbol": "BTCUSDT"})["result"]
    finally:
        client.close()
    assert ("49999.95", "4.000", "50000.05", "2.000") == (
        book["bidPrice"],
        book["bidQty"],
        book["askPrice"],
        book["askQty"],
    )
    assert diff["u"] + 1 == book["lastUpdateId"]


def test_publish_many_wait_hands_frames_to_the_socket(fx: FakeExchange, connect: Connect) -> None:
    """publish_many(wait=True) returns once written; stream_buffered_bytes shows the backlog."""
    client = connect("/public/ws/btcusdt@bookTicker")
    assert 1 == fx.publish_many("btcusdt@bookTicker", ['{"n":1}', '{"n":2}'], wait=True)
    assert 2 == fx.stream_stats["events_sent"]
    assert 0 <= fx.stream_buffered_bytes
    assert [{"n": 1}, {"n": 2}] == [client.recv(), client.recv()]


@pytest.mark.parametrize("path", ["/public", "/market/v1", "/private/listen"])
def test_route_paths_other_than_ws_and_stream_are_refused(fx: FakeExchange, path: str) -> None:
    """Under a route, only /ws... and /stream... exist: other paths get HTTP 404."""
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        websocket.create_connection(fx.stream_url + path, timeout=scaled(5))
    assert 404 == caught.value.status_code
