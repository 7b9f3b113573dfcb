"""bfsync.excel without a connection: error texts, argument checks, order rows, options."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import bfsync.excel as bx
from bfsync.excel import _cells, _shared
from bfsync.exceptions import (
    AuthenticationError,
    ConnectionError,
    OrderConnectionLostError,
    OrderValidationError,
    RateLimitError,
    RequestError,
    RequestTimeoutError,
)


@pytest.fixture(autouse=True)
def options() -> Iterator[None]:
    """Every test starts and ends with the default options."""
    saved = bx.get_options()
    yield
    bx.set_options(**saved)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionError("the link was lost"), "#BF! not connected: the link was lost"),
        (RequestError("x", code=-1121, msg="Invalid symbol."), "#BF! -1121 Invalid symbol."),
        (RequestTimeoutError("ticker.price: no reply"), "#BF! timeout: ticker.price: no reply"),
        (RateLimitError("429", code=-1003, msg="Too many"), "#BF! rate limited: 429"),
        (AuthenticationError("no keys"), "#BF! key: no keys"),
        (OrderValidationError("quantity must be > 0"), "#BF! invalid: quantity must be > 0"),
        (ValueError("limit must be"), "#BF! invalid: limit must be"),
        (_cells.NotConfirmedError("confirm"), "#BF! not confirmed: confirm"),
        (KeyError("price"), "#BF! error: KeyError: 'price'"),
    ],
)
def test_error_text_names_the_kind_of_error(exc: Exception, expected: str) -> None:
    """Each kind of error becomes a short #BF! text saying what went wrong."""
    assert expected == bx.error_text(exc)


def test_an_unknown_outcome_gives_the_client_order_id() -> None:
    """An order whose outcome is unknown shows its client order id, to look it up."""
    exc = OrderConnectionLostError("order.place: the link was lost", client_order_id="bfs-1")

    assert bx.error_text(exc).startswith("#BF! outcome unknown, client order id bfs-1: ")


def test_error_text_is_one_short_line() -> None:
    """Newlines and runs of spaces are folded; the text is cut at 255 characters."""
    text = bx.error_text(ValueError("a\n   b " + "x" * 400))

    assert text.startswith("#BF! invalid: a b x")
    assert 255 == len(text)
    assert text.endswith("...")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bx.price(None), "symbol must be text, got None"),
        (lambda: bx.price(1.0), "symbol must be text, got 1.0"),
        (lambda: bx.depth("BTCUSDT", 7), "limit must be one of 5, 10, 20"),
        (lambda: bx.depth("BTCUSDT", 10.5), "limit must be a whole number, got 10.5"),
        (lambda: bx.depth("BTCUSDT", float("nan")), "limit must be a whole number"),
        (lambda: bx.book("BTCUSDT", "mid"), "field must be one of bidPrice, bidQty"),
        (lambda: bx.price("BTCUSDT", 3), "name must be the text name of a service"),
        (lambda: bx.balances("USDT", "colour"), "field must be one of balance"),
    ],
)
def test_bad_arguments_are_refused_before_any_connection(call: object, message: str) -> None:
    """A bad argument gives an 'invalid' text naming it, without connecting anywhere."""
    entries_before = set(_shared.registry().entries)
    text = call()  # type: ignore[operator]

    assert text.startswith("#BF! invalid: ")
    assert message in text
    assert entries_before == set(_shared.registry().entries)


def test_raise_mode_raises_the_error_itself() -> None:
    """With errors='raise' a bad argument raises ValueError instead of returning text."""
    bx.set_options(errors="raise")

    with pytest.raises(ValueError, match="symbol must be text"):
        bx.price(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"errors": "quiet"}, "errors must be 'value' or 'raise', got 'quiet'"),
        ({"ttl": -1}, "ttl must be a number of seconds >= 0"),
        ({"ttl": float("inf")}, "ttl must be a number of seconds >= 0"),
        ({"reconnect_interval": 0}, "reconnect_interval must be a number of seconds > 0"),
        ({"reconnect_interval": True}, "reconnect_interval must be a number of seconds > 0"),
    ],
)
def test_set_options_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    """A bad option raises ValueError naming it, and nothing changes."""
    before = bx.get_options()

    with pytest.raises(ValueError, match=message):
        bx.set_options(**kwargs)  # type: ignore[arg-type]
    assert before == bx.get_options()


def test_set_options_returns_what_is_in_effect() -> None:
    """set_options returns every option, the changed ones included."""
    assert {"errors": "raise", "ttl": 2.5, "reconnect_interval": 5.0} == bx.set_options(
        errors="raise", ttl=2.5
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"ws_urll": "ws://x"}}, "unknown config key 'ws_urll'; did you mean 'ws_url'"),
        ({"api_key": ""}, "api_key must be a non-empty string or None"),
        ({"private_key": 5}, "private_key must be a non-empty string or None"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_configure_refuses_bad_settings_at_once(kwargs: dict[str, object], message: str) -> None:
    """configure checks its arguments (and the config dict) in the caller's thread."""
    with pytest.raises(ValueError, match=message):
        bx.configure(**kwargs)  # type: ignore[arg-type]


def test_status_of_an_unknown_name_connects_nothing() -> None:
    """status() of a service never used says so, without making one."""
    assert "not started" == bx.status("never-used")
    assert "never-used" not in _shared.registry().entries


def test_settings_never_show_the_private_key() -> None:
    """The settings kept for a name do not show the secret in their repr."""
    settings = _shared._Settings("key", "the-secret", None, False)

    assert "the-secret" not in repr(settings)


class TestOrderRows:
    """place_order_row's reading of a header and a row (no order is sent in these)."""

    def test_headers_are_matched_loosely(self) -> None:
        """Case, spaces and underscores do not matter; result and blank columns are skipped."""
        header = ["Symbol", "SIDE", "Type", "Quantity", "Stop Price", "time_in_force", None]
        header += ["Result", "Confirm"]
        values = ["btcusdt", "buy", "stop", 0.01, 40000.0, "GTC", "note", "old", "YES"]

        assert {
            "symbol": "btcusdt",
            "side": "buy",
            "order_type": "stop",
            "quantity": 0.01,
            "stopPrice": 40000.0,
            "timeInForce": "GTC",
            "confirm": "YES",
        } == _cells._row_kwargs(header, values)

    def test_an_unknown_header_is_passed_on_as_written(self) -> None:
        """A header that is not a known name is kept, so validation refuses it by name."""
        kwargs = _cells._row_kwargs(["symbol", "side", "type", "stopPrce"], ["X", "BUY", "L", 1])

        assert 1 == kwargs["stopPrce"]

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            (["symbol", "side"], "no column 'type'"),
            (["side", "type"], "no column 'symbol'"),
            (["symbol", "side", "type", "Stop Price", "stopPrice"], "two columns give 'stopPrice'"),
            (["symbol", "side", "type", 3.0], "a header must be text, got 3.0"),
        ],
    )
    def test_a_bad_header_is_refused(self, header: list[object], message: str) -> None:
        """A missing required column, a column given twice or a non-text header is an error."""
        text = bx.place_order_row(header, ["BTCUSDT", "BUY", "LIMIT", 1.0, 2.0])

        assert text.startswith("#BF! invalid: ")
        assert message in text

    @pytest.mark.parametrize("confirm", [None, False, "", "no", "Y", 1.0, "OK"])
    def test_only_true_or_yes_confirms(self, confirm: object) -> None:
        """Anything but TRUE or YES is not a confirmation."""
        assert not _cells._confirmed(confirm)

    @pytest.mark.parametrize("confirm", [True, "yes", " YES ", "true", "TRUE "])
    def test_true_and_yes_confirm(self, confirm: object) -> None:
        """TRUE (a boolean or text) and YES confirm."""
        assert _cells._confirmed(confirm)

    def test_an_unconfirmed_order_never_reaches_a_service(self) -> None:
        """Without confirmation the answer is 'not confirmed', and no service is made."""
        text = bx.place_order("BTCUSDT", "BUY", "MARKET", 0.01, name="unconfirmed")

        assert text.startswith("#BF! not confirmed: confirm must be TRUE or YES")
        assert "unconfirmed" not in _shared.registry().entries

    def test_an_unknown_order_type_is_refused(self) -> None:
        """order_type must be one of Binance's order kinds."""
        text = bx.place_order("BTCUSDT", "BUY", "ICEBERG", 1.0, confirm=True)

        assert text.startswith("#BF! invalid: order_type must be one of LIMIT, MARKET")
