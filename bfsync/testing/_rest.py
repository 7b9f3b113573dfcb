"""
FakeExchange's REST side: Binance's USD-M Futures REST endpoints that bfsync calls, served
over HTTP on 127.0.0.1 from the same engine as the WebSocket side (one book, one account,
one set of orders).

A ``ThreadingHTTPServer`` runs on its own thread; each request is decoded on a handler thread
and then executed on the fake's event-loop thread with the fake's lock held
(``FakeExchange._in_loop``), exactly where WebSocket frames are executed, so the two sides
never see each other half-done.

Like Binance: SIGNED calls need ``X-MBX-APIKEY`` and a ``signature`` over ``totalParams``
(the query string as sent, then the form body, without the ``signature`` pair), checked as
HMAC hex, RSA or Ed25519 base64 (percent-decoded); ``timestamp`` and ``recvWindow`` as on
ws-fapi (-1021). Weights are counted per server (one "IP") and reported in
``X-MBX-USED-WEIGHT-1M``; over the limit (``fx.set_rate_limits``) the answer is 429 with
``Retry-After``. ``fx.script / delay / withhold`` take a REST call as ``"GET /fapi/v1/depth"``;
requests are recorded under that name too. What is simplified: ``docs/fake_exchange.md``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from ._engine import (
    DEPTH_LIMITS,
    ApiError,
    Exchange,
    Session,
    SymbolSpec,
    _lookup,
    fmt,
    int_param,
    invalid,
    mandatory,
    text_param,
)

if TYPE_CHECKING:
    from .fake_exchange import FakeExchange

__all__ = ["RestServer"]

_LOG = logging.getLogger("bfsync.testing")
JsonDict = dict[str, Any]
Handler = Callable[["_Request"], Any]

WITHHOLD_SECONDS = 120.0  # a withheld REST answer: the connection is closed after this
_INTERVAL_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d")
_FUNDING_MS = 8 * 3_600_000
_FUNDING_RATE = "0.00010000"
_SECRET = re.compile(r"(signature|listenKey)=[^&\s\"']*")
_MSG_CANCEL_ALL = "The operation of cancel all open order is done."


class _Request:
    """One decoded REST request, as the handlers see it."""

    def __init__(self, params: JsonDict, now: int, api_key: Optional[str]) -> None:
        self.params = params
        self.now = now
        self.api_key = api_key


def _kline_weight(params: Mapping[str, Any]) -> int:
    try:
        limit = int_param(params, "limit")
    except ApiError:
        limit = None
    limit = 500 if limit is None else limit
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _depth_weight(params: Mapping[str, Any]) -> int:
    try:
        limit = int_param(params, "limit")
    except ApiError:
        limit = None
    return DEPTH_LIMITS.get(500 if limit is None else limit, 10)


def _by_symbol(with_symbol: int, without: int) -> Callable[[Mapping[str, Any]], int]:
    return lambda params: with_symbol if params.get("symbol") else without


class RestServer:
    """The HTTP server of one ``FakeExchange``; ``start()`` / ``stop()`` follow the fake's."""

    def __init__(self, fx: FakeExchange, host: str) -> None:
        self._fx = fx
        self._host = host
        self._port = 0
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self.session = Session(-1, 0)  # the REQUEST_WEIGHT window of the one "IP"
        # Account settings the REST calls change (the engine itself stays one-way, cross).
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.dual_side = False
        self.multi_assets = False
        # (verb, path) -> (security, weight, handler); security NONE / USER_STREAM / SIGNED.
        w1: Callable[[Mapping[str, Any]], int] = lambda params: 1  # noqa: E731
        self.routes: dict[tuple[str, str], tuple[str, Callable[[Mapping[str, Any]], int], Any]]
        self.routes = {
            ("GET", "/fapi/v1/ping"): ("NONE", w1, lambda r: {}),
            ("GET", "/fapi/v1/time"): ("NONE", w1, lambda r: {"serverTime": r.now}),
            ("GET", "/fapi/v1/exchangeInfo"): ("NONE", w1, self._exchange_info),
            ("GET", "/fapi/v1/depth"): ("NONE", _depth_weight, self._depth),
            ("GET", "/fapi/v1/klines"): ("NONE", _kline_weight, self._klines),
            ("GET", "/fapi/v1/continuousKlines"): ("NONE", _kline_weight, self._continuous),
            ("GET", "/fapi/v1/premiumIndex"): ("NONE", _by_symbol(1, 10), self._premium),
            ("GET", "/fapi/v1/fundingRate"): ("NONE", w1, self._funding),
            ("GET", "/fapi/v1/openOrders"): ("SIGNED", _by_symbol(1, 40), self._open_orders),
            ("GET", "/fapi/v1/openAlgoOrders"): ("SIGNED", _by_symbol(1, 40), self._open_algos),
            ("GET", "/fapi/v1/algoOrder"): ("SIGNED", w1, self._algo_order),
            ("DELETE", "/fapi/v1/allOpenOrders"): ("SIGNED", w1, self._cancel_all),
            ("DELETE", "/fapi/v1/algoOpenOrders"): ("SIGNED", w1, self._cancel_all_algos),
            ("POST", "/fapi/v1/leverage"): ("SIGNED", w1, self._change_leverage),
            ("POST", "/fapi/v1/marginType"): ("SIGNED", w1, self._change_margin_type),
            ("GET", "/fapi/v1/positionSide/dual"): (
                "SIGNED",
                lambda params: 30,
                lambda r: {"dualSidePosition": self.dual_side},
            ),
            ("POST", "/fapi/v1/positionSide/dual"): ("SIGNED", w1, self._change_dual),
            ("GET", "/fapi/v1/multiAssetsMargin"): (
                "SIGNED",
                lambda params: 30,
                lambda r: {"multiAssetsMargin": self.multi_assets},
            ),
            ("POST", "/fapi/v1/multiAssetsMargin"): ("SIGNED", w1, self._change_multi),
            ("GET", "/fapi/v1/userTrades"): ("SIGNED", lambda params: 5, self._trades),
            ("GET", "/fapi/v1/income"): ("SIGNED", lambda params: 30, lambda r: []),
            ("GET", "/fapi/v1/commissionRate"): ("SIGNED", lambda p: 20, self._commission),
            ("GET", "/fapi/v1/leverageBracket"): ("SIGNED", w1, self._brackets),
            ("POST", "/fapi/v1/listenKey"): ("USER_STREAM", w1, self._stream("start")),
            ("PUT", "/fapi/v1/listenKey"): ("USER_STREAM", w1, self._stream("ping")),
            ("DELETE", "/fapi/v1/listenKey"): ("USER_STREAM", w1, self._stream("stop")),
        }

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> None:
        """Bind (the same port again after a stop) and serve on a daemon thread."""
        server = _Server((self._host, self._port), _make_handler(self))
        self._port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="bfsync-FakeExchange-rest",
            daemon=True,
        )
        self._thread = thread
        thread.start()

    def stop(self, timeout: float) -> None:
        """Stop serving, release withheld answers, join the thread (at most ``timeout``)."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections(timeout)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ---- one request ----------------------------------------------------------------------

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        verb = http.command
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        api_key = http.headers.get("X-MBX-APIKEY")
        received_at = time.time()
        fx = self._fx

        def run() -> tuple[int, Any, dict[str, str], bool, float]:
            with fx._cond:
                outcome = self._process(verb, parts.path, parts.query, body, api_key, received_at)
                fx._cond.notify_all()
                return outcome

        outcome = fx._in_loop(run, None)
        if outcome is None:
            _respond(http, 503, {"code": -1000, "msg": "FakeExchange is stopping."}, {})
            return
        status, payload, headers, withheld, delay = outcome
        if withheld:
            self._stopping.wait(WITHHOLD_SECONDS)
            http.close_connection = True
            return
        if delay > 0 and self._stopping.wait(delay):
            http.close_connection = True
            return
        _respond(http, status, payload, headers)

    def _process(
        self,
        verb: str,
        path: str,
        query: str,
        body: str,
        api_key: Optional[str],
        received_at: float,
    ) -> tuple[int, Any, dict[str, str], bool, float]:
        fx = self._fx
        engine: Exchange = fx._exchange
        now = fx._now_ms()
        label = f"{verb} {path}"
        params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        fx._requests.append(
            {
                "id": None,
                "method": label,
                "params": copy.deepcopy(params),
                "received_at": received_at,
                "connection": "rest",
            }
        )
        route = self.routes.get((verb, path))
        if route is None:
            return 404, {"code": -1000, "msg": f"No such endpoint: {label}."}, {}, False, 0.0
        security, weigh, handler = route
        window = self.session.weight
        weight = weigh(params)
        used = window.count(now)
        limit = engine.request_weight_limit
        if engine.enforce_rate_limits and weight and used + weight > limit:
            retry_ms = max(0, window.free_at(now, weight, limit) - now)
            headers = {
                "X-MBX-USED-WEIGHT-1M": str(used),
                "Retry-After": str(max(1, -(-retry_ms // 1000))),
            }
            msg = (
                f"Too many requests; current limit of IP({self.session.ip}) is {limit} "
                "requests per minute. Please use the websocket for live updates to avoid "
                "polling the API."
            )
            return 429, {"code": -1003, "msg": msg}, headers, False, 0.0
        window.add(now, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used + weight)}
        withheld = engine._take(engine.withholds, label) is not None
        script = None if withheld else engine._take(engine.scripts, label)
        delay = 0.0 if withheld else float(engine._take(engine.delays, label) or 0.0)
        if script is not None:
            payload = script.error if script.error is not None else script.result
            return script.status, copy.deepcopy(payload), headers, False, delay
        try:
            key = None
            if security == "SIGNED":
                key = self._authenticate(api_key, query, body, params, now)
            elif security == "USER_STREAM":
                key = self._known_key(api_key)
            result = handler(_Request(params, now, key))
        except ApiError as exc:
            return exc.status, {"code": exc.code, "msg": exc.msg}, headers, withheld, delay
        except Exception as exc:  # a bug of the fake: answer rather than hang the client
            _LOG.exception("FakeExchange failed on %s", label)
            error = {"code": -1000, "msg": f"FakeExchange internal error: {exc!r}"}
            return 500, error, headers, withheld, delay
        return 200, result, headers, withheld, delay

    def _known_key(self, api_key: Optional[str]) -> str:
        if not api_key:
            raise ApiError(-2014, "API-key format invalid.", 401)
        if not (api_key.isascii() and api_key.isalnum()):
            raise ApiError(-2014, "API-key format invalid.", 401)
        if api_key not in self._fx._exchange.keys:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return api_key

    def _authenticate(
        self, api_key: Optional[str], query: str, body: str, params: JsonDict, now: int
    ) -> str:
        key_name = self._known_key(api_key)
        key = self._fx._exchange.keys[key_name]
        total, signature = "", None
        for text in (query, body):
            kept = []
            for pair in text.split("&") if text else ():
                if pair.startswith("signature="):
                    signature = unquote(pair[len("signature=") :])
                else:
                    kept.append(pair)
            total += "&".join(kept)
        Exchange._check_timestamp(params, now)
        if not signature:
            raise mandatory("signature")
        if not key._verify(total.encode(), signature):
            raise ApiError(-1022, "Signature for this request is not valid.")
        return key_name

    # ---- market data ----------------------------------------------------------------------

    def _spec(self, request: _Request, required: bool = True) -> Optional[SymbolSpec]:
        return self._fx._exchange.symbol_spec(request.params, required=required)

    def _exchange_info(self, request: _Request) -> Any:
        return self._fx._exchange.exchange_info(request.now)

    def _depth(self, request: _Request) -> Any:
        engine = self._fx._exchange
        return engine.handlers["depth"][1](self.session, request.params, request.now)

    def _candles(self, spec: SymbolSpec, params: Mapping[str, Any], now: int) -> list[Any]:
        interval = text_param(params, "interval", required=True)
        if interval not in _INTERVALS and interval != "1M":
            raise ApiError(-1120, "Invalid interval.")
        assert interval is not None
        step = (
            30 * 86_400_000
            if interval == "1M"
            else (int(interval[:-1]) * _INTERVAL_MS[interval[-1]])
        )
        limit = int_param(params, "limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1500:
            raise invalid("limit")
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        end = now if end is None else min(end, now)
        if start is not None:
            first = start + (-start % step)
            opens = list(range(first, end + 1, step))[:limit]
        else:
            last = end - end % step
            opens = [last - i * step for i in range(limit)][::-1]
        price = fmt(spec.price, spec.price_precision)
        zero_qty = fmt(Decimal(0), spec.quantity_precision)
        return [
            [t, price, price, price, price, zero_qty, t + step - 1, "0", 0, zero_qty, "0", "0"]
            for t in opens
        ]

    def _klines(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        return self._candles(spec, request.params, request.now)

    def _continuous(self, request: _Request) -> Any:
        params = request.params
        pair = text_param(params, "pair", required=True)
        contract = text_param(params, "contractType", required=True)
        if contract not in ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER"):
            raise invalid("contractType")
        spec = self._fx._exchange.symbols.get(pair or "")
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        return self._candles(spec, params, request.now)

    def _premium(self, request: _Request) -> Any:
        spec = self._spec(request, required=False)
        specs = [spec] if spec is not None else self._fx._exchange.listed()
        now = request.now
        items = [
            {
                "symbol": s.symbol,
                "markPrice": fmt(s.price, 8),
                "indexPrice": fmt(s.price, 8),
                "estimatedSettlePrice": fmt(s.price, 8),
                "lastFundingRate": _FUNDING_RATE,
                "interestRate": "0.00010000",
                "nextFundingTime": now - now % _FUNDING_MS + _FUNDING_MS,
                "time": now,
            }
            for s in specs
        ]
        return items[0] if spec is not None else items

    def _funding(self, request: _Request) -> Any:
        spec = self._spec(request, required=False)
        specs = [spec] if spec is not None else self._fx._exchange.listed()
        limit = int_param(request.params, "limit")
        limit = 100 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise invalid("limit")
        last = request.now - request.now % _FUNDING_MS
        times = [last - i * _FUNDING_MS for i in range(limit)][::-1]
        return [
            {
                "symbol": s.symbol,
                "fundingRate": _FUNDING_RATE,
                "fundingTime": t,
                "markPrice": fmt(s.price, 8),
            }
            for t in times
            for s in specs
        ][-limit:]

    # ---- orders ---------------------------------------------------------------------------

    def _open_orders(self, request: _Request) -> Any:
        spec = self._spec(request, required=False)
        orders = self._fx._exchange._open_orders()
        return [dict(o) for o in orders if spec is None or o["symbol"] == spec.symbol]

    def _open_algos(self, request: _Request) -> Any:
        spec = self._spec(request, required=False)
        algo_id = int_param(request.params, "algoId")
        return [
            dict(a)
            for a in self._fx._exchange.algo_orders.values()
            if a["algoStatus"] == "NEW"
            and (spec is None or a["symbol"] == spec.symbol)
            and (algo_id is None or a["algoId"] == algo_id)
        ]

    def _algo_order(self, request: _Request) -> Any:
        engine = self._fx._exchange
        algo = _lookup(
            request.params,
            "algoId",
            engine.algo_orders,
            "clientAlgoId",
            engine.algo_orders_by_client_id,
        )
        if algo is None:
            raise ApiError(-2013, "Order does not exist.")
        return dict(algo)

    def _cancel_all(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        for order in self._fx._exchange._open_orders():
            if order["symbol"] == spec.symbol:
                order["status"] = "CANCELED"
                order["updateTime"] = request.now
        return {"code": 200, "msg": _MSG_CANCEL_ALL}

    def _cancel_all_algos(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        for algo in self._fx._exchange.algo_orders.values():
            if algo["symbol"] == spec.symbol and algo["algoStatus"] == "NEW":
                algo["algoStatus"] = "CANCELED"
                algo["updateTime"] = request.now
        return {"code": 200, "msg": _MSG_CANCEL_ALL}

    def _trades(self, request: _Request) -> Any:
        """One trade per filled (or partly filled) order: the fake keeps no trade list."""
        spec = self._spec(request)
        assert spec is not None
        trades = []
        for order in self._fx._exchange.orders.values():
            qty = Decimal(order.get("executedQty") or 0)
            if order["symbol"] != spec.symbol or qty == 0:
                continue
            price = Decimal(order.get("avgPrice") or order.get("price") or 0)
            trades.append(
                {
                    "buyer": order["side"] == "BUY",
                    "commission": "0",
                    "commissionAsset": "USDT",
                    "id": order["orderId"],
                    "maker": False,
                    "orderId": order["orderId"],
                    "price": fmt(price, spec.price_precision),
                    "qty": fmt(qty, spec.quantity_precision),
                    "quoteQty": fmt(price * qty, 8),
                    "realizedPnl": "0",
                    "side": order["side"],
                    "positionSide": order.get("positionSide", "BOTH"),
                    "symbol": spec.symbol,
                    "time": order["updateTime"],
                }
            )
        limit = int_param(request.params, "limit")
        return trades[-(limit or 500) :]

    # ---- account settings -----------------------------------------------------------------

    def _change_leverage(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        leverage = int_param(request.params, "leverage", required=True)
        assert leverage is not None
        if not 1 <= leverage <= 125:
            raise ApiError(-4028, f"Leverage {leverage} is not valid")
        self.leverage[spec.symbol] = leverage
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": spec.symbol}

    def _has_orders_or_position(self, symbol: Optional[str]) -> tuple[bool, bool]:
        engine = self._fx._exchange
        orders = any(symbol in (None, o["symbol"]) for o in engine._open_orders()) or any(
            a["algoStatus"] == "NEW" and symbol in (None, a["symbol"])
            for a in engine.algo_orders.values()
        )
        position = any(
            symbol in (None, name) and p.amount != 0 for name, p in engine.positions.items()
        )
        return orders, position

    def _change_margin_type(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        wanted = text_param(request.params, "marginType", required=True)
        if wanted not in ("ISOLATED", "CROSSED"):
            raise invalid("marginType")
        if self.margin_type.get(spec.symbol, "CROSSED") == wanted:
            raise ApiError(-4046, "No need to change margin type.")
        orders, position = self._has_orders_or_position(spec.symbol)
        if orders:
            raise ApiError(-4047, "Margin type cannot be changed if there exists open orders.")
        if position:
            raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
        self.margin_type[spec.symbol] = wanted
        return {"code": 200, "msg": "success"}

    def _flag(self, request: _Request, name: str) -> bool:
        value = text_param(request.params, name, required=True)
        if value is None or value.lower() not in ("true", "false"):
            raise invalid(name)
        return value.lower() == "true"

    def _change_dual(self, request: _Request) -> Any:
        wanted = self._flag(request, "dualSidePosition")
        if wanted == self.dual_side:
            raise ApiError(-4059, "No need to change position side.")
        orders, position = self._has_orders_or_position(None)
        if orders:
            raise ApiError(-4067, "Position side cannot be changed if there exists open orders.")
        if position:
            raise ApiError(-4068, "Position side cannot be changed if there exists position.")
        self.dual_side = wanted
        return {"code": 200, "msg": "success"}

    def _change_multi(self, request: _Request) -> Any:
        wanted = self._flag(request, "multiAssetsMargin")
        if wanted == self.multi_assets:
            raise ApiError(
                -4171,
                "Adjusted asset mode is currently set and does not need to be adjusted repeatedly.",
            )
        self.multi_assets = wanted
        return {"code": 200, "msg": "success"}

    def _commission(self, request: _Request) -> Any:
        spec = self._spec(request)
        assert spec is not None
        return {
            "symbol": spec.symbol,
            "makerCommissionRate": "0.000200",
            "takerCommissionRate": "0.000500",
        }

    def _brackets(self, request: _Request) -> Any:
        spec = self._spec(request, required=False)
        specs = [spec] if spec is not None else self._fx._exchange.listed()
        items = [
            {
                "symbol": s.symbol,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": 125,
                        "notionalCap": 50000,
                        "notionalFloor": 0,
                        "maintMarginRatio": 0.004,
                        "cum": 0.0,
                    },
                    {
                        "bracket": 2,
                        "initialLeverage": 100,
                        "notionalCap": 600000,
                        "notionalFloor": 50000,
                        "maintMarginRatio": 0.005,
                        "cum": 50.0,
                    },
                ],
            }
            for s in specs
        ]
        return items[0] if spec is not None else items

    def _stream(self, what: str) -> Handler:
        def handle(request: _Request) -> Any:
            engine = self._fx._exchange
            method = f"userDataStream.{what}"
            session = Session(-1, request.now)
            return engine.handlers[method][1](session, {"apiKey": request.api_key}, request.now)

        return handle


class _Server(ThreadingHTTPServer):
    """Connection threads named ``bfsync-FakeExchange-rest-N``, cut and joined on close."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}
        self._count = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._count += 1
            thread = threading.Thread(
                target=self._serve_one,
                args=(request, client_address),
                name=f"bfsync-FakeExchange-rest-{self._count}",
                daemon=True,
            )
            self._open[request] = thread
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(request, None)

    def close_connections(self, timeout: float) -> None:
        """Cut every open connection and wait (at most ``timeout``) for its thread."""
        with self._lock:
            items = list(self._open.items())
        for sock, _ in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in items:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


def _respond(
    http: BaseHTTPRequestHandler, status: int, payload: Any, headers: Mapping[str, str]
) -> None:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        http.send_response(status)
        http.send_header("Content-Type", "application/json;charset=UTF-8")
        http.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            http.send_header(key, value)
        http.end_headers()
        http.wfile.write(data)
    except OSError:  # the client went away
        http.close_connection = True


def _make_handler(server: RestServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            try:
                server.handle(self)
            except Exception:  # never kill the server thread; the client sees a cut
                _LOG.exception("FakeExchange REST handler failed")
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            _LOG.debug("REST %s", _SECRET.sub(r"\1=<hidden>", format % args))

    return _Handler
