"""A plain websocket-client connection speaking ws-fapi frames, for driving FakeExchange."""

from __future__ import annotations

import json
from typing import Any, Optional

import websocket

from bfsync.signing import Signer, canonical_payload
from bfsync.testing import FakeExchange

__all__ = ["LIMIT_BUY", "Client", "error_of", "signed"]

# A valid resting LIMIT order for BTCUSDT, as wire params.
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "49000.0",
}


class Client:
    """A plain websocket-client connection speaking ws-fapi frames."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=5)
        self._next_id = 0

    def send(self, method: str, params: Optional[dict[str, Any]] = None, rid: Any = "auto") -> Any:
        if rid == "auto":
            self._next_id += 1
            rid = self._next_id
        frame: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        self.ws.send(json.dumps(frame))
        return rid

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        self.ws.settimeout(timeout)
        reply: dict[str, Any] = json.loads(self.ws.recv())
        return reply

    def call(self, method: str, params: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        rid = self.send(method, params)
        reply = self.recv()
        assert reply["id"] in (rid, None)  # id null: a frame the server could not tie to one
        return reply

    def close(self) -> None:
        self.ws.close(timeout=1)
        # close() leaves the socket open once the link was lost: close it in any case.
        self.ws.shutdown()  # type: ignore[no-untyped-call]


def signed(
    fx: FakeExchange,
    key: tuple[str, Signer],
    params: Optional[dict[str, Any]] = None,
    timestamp: Optional[int] = None,
) -> dict[str, Any]:
    """``params`` with apiKey, timestamp (the server's clock) and a signature."""
    api_key, signer = key
    out = dict(params or {})
    out["apiKey"] = api_key
    out["timestamp"] = fx.server_time() if timestamp is None else timestamp
    out["signature"] = signer.sign(canonical_payload(out))
    return out


def error_of(reply: dict[str, Any]) -> tuple[int, int]:
    """The status and Binance code of an error reply."""
    assert "result" not in reply, reply
    return reply["status"], reply["error"]["code"]
