"""A plain websocket-client connection speaking ws-fapi frames, for driving FakeExchange."""

from __future__ import annotations

import json
from typing import Any, Optional

import websocket

__all__ = ["Client"]


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
