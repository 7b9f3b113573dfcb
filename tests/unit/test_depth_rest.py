"""fetch_depth_snapshot / rest_snapshot_fetcher: a real local HTTP server, faults by responses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from bfsync.exceptions import ConnectionError, RateLimitError, RequestError, RequestTimeoutError
from bfsync.livebook import OrderBook, fetch_depth_snapshot, rest_snapshot_fetcher
from tests.timing import scaled

BODY = {"lastUpdateId": 10, "E": 1, "T": 1, "bids": [["100", "1"]], "asks": [["101", "2"]]}
REST_URL = "https://fapi.example.test"
URL = f"{REST_URL}/fapi/v1/depth"


class DepthHandler(BaseHTTPRequestHandler):
    requests_seen: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.requests_seen.append((parts.path, parse_qs(parts.query)))
        body = json.dumps(BODY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    DepthHandler.requests_seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), DepthHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(scaled(5))


def test_fetch_gets_the_depth_path_with_symbol_and_limit(server: str) -> None:
    """GET /fapi/v1/depth?symbol=BTCUSDT&limit=500 returns the decoded body."""
    body = fetch_depth_snapshot(server, "btcusdt", 500, timeout=scaled(5))

    assert BODY == body
    assert [("/fapi/v1/depth", {"symbol": ["BTCUSDT"], "limit": ["500"]})] == (
        DepthHandler.requests_seen
    )


def test_an_order_book_syncs_over_rest(server: str) -> None:
    """OrderBook with rest_snapshot_fetcher against a local server gets in sync."""
    book = OrderBook("BTCUSDT", rest_snapshot_fetcher(server, timeout=scaled(5)))
    try:
        book.feed({"e": "depthUpdate", "U": 9, "u": 11, "pu": 8, "b": [], "a": []})
        assert book.wait_synced(scaled(5))
    finally:
        book.close(scaled(5))
    assert [("/fapi/v1/depth", {"symbol": ["BTCUSDT"], "limit": ["1000"]})] == (
        DepthHandler.requests_seen
    )


@responses.activate
def test_the_timeout_reaches_requests() -> None:
    """The timeout is passed to requests (connect and read)."""
    responses.add(responses.GET, URL, json=BODY)

    fetch_depth_snapshot(REST_URL, "BTCUSDT", timeout=2.5)

    request: Any = responses.calls[0].request
    assert 2.5 == request.req_kwargs["timeout"]


@responses.activate
def test_rate_limit_answers_raise_rate_limit_error() -> None:
    """429 with Binance's body: RateLimitError with code, status and Retry-After."""
    responses.add(
        responses.GET,
        URL,
        json={"code": -1003, "msg": "Too many requests."},
        status=429,
        headers={"Retry-After": "7"},
    )

    with pytest.raises(RateLimitError) as caught:
        fetch_depth_snapshot(REST_URL, "BTCUSDT")

    assert (-1003, 429, 7.0) == (caught.value.code, caught.value.status, caught.value.retry_after)


@responses.activate
def test_an_error_answer_raises_request_error_with_the_code() -> None:
    """400 -1121 (bad symbol): RequestError with Binance's code and message."""
    responses.add(responses.GET, URL, json={"code": -1121, "msg": "Invalid symbol."}, status=400)

    with pytest.raises(RequestError, match=r"HTTP 400 \(-1121: Invalid symbol.\)") as caught:
        fetch_depth_snapshot(REST_URL, "NOPE")

    assert (-1121, "Invalid symbol.", 400) == (
        caught.value.code,
        caught.value.msg,
        caught.value.status,
    )


@responses.activate
def test_a_200_that_is_not_json_raises_request_error() -> None:
    """A 200 whose body is not a JSON object is an error, not a snapshot."""
    responses.add(responses.GET, URL, body="<html>maintenance</html>", status=200)

    with pytest.raises(RequestError, match="not a JSON object"):
        fetch_depth_snapshot(REST_URL, "BTCUSDT")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.ConnectionError("refused"), ConnectionError),
        (requests.ReadTimeout("slow"), RequestTimeoutError),
        (requests.TooManyRedirects("loop"), ConnectionError),
    ],
)
@responses.activate
def test_transport_failures_become_bfsync_errors(error: Exception, expected: type) -> None:
    """requests' exceptions never reach the caller: each maps to a bfsync exception."""
    responses.add(responses.GET, URL, body=error)

    with pytest.raises(expected):
        fetch_depth_snapshot(REST_URL, "BTCUSDT")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rest_url": "ftp://x"}, "rest_url must be an http"),
        ({"timeout": 0}, "timeout must be a number > 0"),
    ],
)
def test_fetcher_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    """rest_snapshot_fetcher refuses a bad URL or timeout at once."""
    args: dict[str, Any] = {"rest_url": REST_URL, "timeout": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        rest_snapshot_fetcher(args.pop("rest_url"), **args)
