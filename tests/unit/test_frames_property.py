"""
Property tests of reply decoding: ``decode_frame`` and ``error_for`` on random input, and the
I/O thread's reply dispatch fed random frames through a real FakeExchange connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bfsync import State, WebSocketService
from bfsync.exceptions import LoginRejectedError, RateLimitError, RequestError
from bfsync.protocol import METHODS, decode_frame, error_for
from bfsync.testing import FakeExchange

# Deterministic and without a .hypothesis directory: a failure here is a finding, not noise.
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Replies as Binance shapes them, with every field possibly of the wrong type or missing.
statuses = st.sampled_from([200, 400, 401, 403, 409, 418, 429, 500, 503]) | json_values
ban_messages = st.builds(
    "Way too many requests; IP banned until {}.".format, st.integers(0, 10**20)
)
error_objects = st.fixed_dictionaries(
    {},
    optional={
        "code": st.integers(-10000, 0) | json_values,
        "msg": st.text(max_size=40) | ban_messages | json_values,
    },
)
reply_frames = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "status": statuses,
        "error": error_objects | json_values,
        "result": json_values,
        "retryAfter": st.integers(-(10**15), 10**15) | json_values,
        "rateLimits": json_values,
    },
)


@PROPERTY
@given(data=st.binary(max_size=200) | st.text(max_size=200))
def test_decode_frame_of_random_bytes_or_text(data: Any) -> None:
    """Random bytes or text decode to a dict or raise ValueError, nothing else."""
    try:
        frame = decode_frame(data)
    except ValueError:
        return
    assert isinstance(frame, dict)


@PROPERTY
@given(value=json_values)
def test_decode_frame_of_json_values(value: Any) -> None:
    """Any JSON text decodes to the same object when it is one, else raises ValueError."""
    text = json.dumps(value)
    if isinstance(value, dict):
        assert value == decode_frame(text)
        assert value == decode_frame(text.encode())
    else:
        with pytest.raises(ValueError):
            decode_frame(text)


@pytest.mark.parametrize(
    "data",
    ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000, b"[" * 100_000],
    ids=["open-arrays", "closed-arrays", "objects", "bytes"],
)
def test_decode_frame_of_deeply_nested_json_is_value_error(data: Any) -> None:
    """JSON nested deeper than the json module can parse is a ValueError, not RecursionError."""
    with pytest.raises(ValueError):
        decode_frame(data)


def check_error(exc: Any, frame: dict[str, Any], method: str) -> None:
    assert isinstance(exc, RequestError)
    assert exc.code is None or (type(exc.code) is int)
    assert isinstance(exc.msg, str)
    assert frame.get("status") == exc.status
    assert frame is exc.response
    if isinstance(exc, RateLimitError):
        assert frame.get("status") in (418, 429)
        after = exc.retry_after
        assert after is None or (isinstance(after, float) and after >= 0)
    elif method == "session.logon":
        assert isinstance(exc, LoginRejectedError)


@PROPERTY
@given(
    frame=reply_frames,
    method=st.sampled_from(sorted(METHODS)),
    now_ms=st.none() | st.integers(0, 2**45),
)
@example(frame={"status": 429, "retryAfter": 1_700_000_000_000}, method="depth", now_ms=1)
@example(frame={"status": 418, "error": {"code": True, "msg": None}}, method="depth", now_ms=None)
def test_error_for_any_frame_is_a_request_error(
    frame: dict[str, Any], method: str, now_ms: Any
) -> None:
    """error_for never raises: it returns a RequestError with an int (or None) code."""
    check_error(error_for(frame, method, now_ms), frame, method)


@pytest.mark.parametrize(
    "frame",
    [
        {"status": 418, "error": {"code": -1003, "msg": "IP banned until 1" + "0" * 400 + "."}},
        {"status": 418, "error": {"code": -1003, "msg": "IP banned until " + "9" * 5000}},
        {"status": 429, "retryAfter": 10**400},
    ],
    ids=["ban-overflows-float", "ban-over-4300-digits", "retry-after-overflows-float"],
)
def test_error_for_absurd_ban_times_is_still_a_rate_limit_error(frame: dict[str, Any]) -> None:
    """error_for does not raise on a ban time too large for a float or for int()."""
    exc = error_for(frame, "depth", 1_700_000_000_000)
    assert isinstance(exc, RateLimitError)


# The I/O thread fed random frames over a real connection


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[FakeExchange, WebSocketService]]:
    """One FakeExchange and one connected service for every example of the module."""
    with FakeExchange() as fx:
        fx.enforce_rate_limits = False
        api_key, secret = fx.add_hmac_key()
        ws = WebSocketService(
            api_key, secret, config={"ws_url": fx.url, "request_timeout": 5, "sync_clock": False}
        )
        ws.connect()
        try:
            yield fx, ws
        finally:
            ws.close()


# An unsolicited frame must not carry an id the client could be using right now: the small
# positive integers (and true/false, which Python takes for 1/0) are the client's.
foreign_ids = (
    st.none()
    | st.integers(max_value=0).filter(lambda i: i < 0)
    | st.integers(min_value=10**12)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
    | st.lists(st.integers(), max_size=2)
)
pushed_frames = (
    st.builds(lambda frame, rid: json.dumps({**frame, "id": rid}), reply_frames, foreign_ids)
    | json_values.filter(lambda v: not isinstance(v, dict)).map(json.dumps)
    | st.text(max_size=100)
    | st.binary(max_size=100)
)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=pushed_frames)
def test_random_frames_never_break_the_service(
    live: tuple[FakeExchange, WebSocketService], data: Any
) -> None:
    """Any unsolicited frame is dropped: the next call works on the same link."""
    fx, ws = live

    assert 1 == fx.push(data)

    assert 200 == ws.get_ticker_price("BTCUSDT")["status"]
    assert State.CONNECTED == ws.state
    assert 0 == ws.reconnects
