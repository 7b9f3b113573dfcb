"""fetch_exchange_info: the REST call, served by `responses`, with bfsync's exceptions only."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
import requests
import responses

from bfsync.exceptions import (
    ConnectionError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)
from bfsync.filters import ExchangeFilters, fetch_exchange_info

REST_URL = "https://fapi.example.test"
URL = f"{REST_URL}/fapi/v1/exchangeInfo"
FIXTURE: dict[str, Any] = json.loads(
    (files("bfsync") / "testing" / "exchange_info.json").read_text(encoding="utf-8")
)


@responses.activate
def test_success_returns_the_decoded_body() -> None:
    """A 200 answer is returned as the dict it encodes, ready for ExchangeFilters."""
    responses.add(responses.GET, URL, json=FIXTURE, status=200)

    data = fetch_exchange_info(REST_URL, timeout=5.0)

    assert FIXTURE == data
    assert 3 == len(ExchangeFilters.from_exchange_info(data, 0.0))


@responses.activate
def test_trailing_slash_and_timeout_are_passed_through() -> None:
    """The URL is joined without a double slash and the timeout reaches requests."""
    responses.add(responses.GET, URL, json=FIXTURE)

    fetch_exchange_info(REST_URL + "/", timeout=2.5)

    request: Any = responses.calls[0].request  # responses adds req_kwargs to the request
    assert (URL, 2.5) == (request.url, request.req_kwargs["timeout"])


@responses.activate
def test_the_given_session_is_used() -> None:
    """With a session, the request goes through it (its headers are sent)."""
    responses.add(responses.GET, URL, json=FIXTURE)
    with requests.Session() as session:
        session.headers["X-Test"] = "bfsync"
        fetch_exchange_info(REST_URL, timeout=1.0, session=session)

    assert "bfsync" == responses.calls[0].request.headers["X-Test"]


@pytest.mark.parametrize(
    ("status", "code", "msg"),
    [
        (418, -1003, "Way too many requests; IP banned until 1767229200000."),
        (429, -1003, "Too many requests; current limit is 2400 requests per minute."),
    ],
)
@responses.activate
def test_rate_limit_answers_raise_rate_limit_error(status: int, code: int, msg: str) -> None:
    """418 and 429 with Binance's body raise RateLimitError with status, code, msg, retry."""
    responses.add(
        responses.GET,
        URL,
        json={"code": code, "msg": msg},
        status=status,
        headers={"Retry-After": "120"},
    )

    with pytest.raises(RateLimitError) as caught:
        fetch_exchange_info(REST_URL, timeout=5.0)

    error = caught.value
    assert isinstance(error, RequestError)
    assert (status, code, msg, 120.0) == (error.status, error.code, error.msg, error.retry_after)
    assert {"code": code, "msg": msg} == error.response
    assert f"HTTP {status} ({code}: {msg})" in str(error)


@responses.activate
def test_server_error_raises_request_error() -> None:
    """A 500 with Binance's body raises a RequestError with status, code and msg."""
    body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
    responses.add(responses.GET, URL, json=body, status=500)

    with pytest.raises(RequestError) as caught:
        fetch_exchange_info(REST_URL, timeout=5.0)

    error = caught.value
    assert not isinstance(error, RateLimitError)
    assert (500, -1000, body["msg"]) == (error.status, error.code, error.msg)


@responses.activate
def test_error_without_binance_body_has_no_code() -> None:
    """A 502 with an HTML page raises RequestError with the status and code None."""
    responses.add(responses.GET, URL, body="<html>Bad Gateway</html>", status=502)

    with pytest.raises(RequestError) as caught:
        fetch_exchange_info(REST_URL, timeout=5.0)

    assert (502, None, None) == (caught.value.status, caught.value.code, caught.value.response)


@responses.activate
def test_success_with_a_body_that_is_not_an_object_raises() -> None:
    """A 200 whose body is not a JSON object is a RequestError, not a crash."""
    responses.add(responses.GET, URL, body="[1, 2]", status=200)

    with pytest.raises(RequestError, match="not a JSON object") as caught:
        fetch_exchange_info(REST_URL, timeout=5.0)

    assert 200 == caught.value.status


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("Connection refused"),
        requests.ConnectTimeout("connect timed out"),
        requests.exceptions.ChunkedEncodingError("connection broken"),
    ],
)
@responses.activate
def test_network_failure_raises_bfsync_connection_error(failure: Exception) -> None:
    """Network failures become bfsync's ConnectionError, never a requests exception."""
    responses.add(responses.GET, URL, body=failure)

    with pytest.raises(ConnectionError) as caught:
        fetch_exchange_info(REST_URL, timeout=5.0)

    assert not isinstance(caught.value, requests.RequestException)
    assert str(failure) in str(caught.value)


@responses.activate
def test_read_timeout_raises_request_timeout_error() -> None:
    """No answer within the timeout raises bfsync's RequestTimeoutError."""
    responses.add(responses.GET, URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(RequestTimeoutError) as caught:
        fetch_exchange_info(REST_URL, timeout=0.5)

    assert not isinstance(caught.value, requests.RequestException)
    assert "no answer within 0.5 s" in str(caught.value)
