"""Config: defaults, merging, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from bfsync.config import PROD_WS_URL, Config


def test_async_library_defaults_are_kept() -> None:
    """The async library's seven keys keep their defaults."""
    config = Config.from_dict(None)

    assert (True, 30, 30, 180, 5, 300, 5) == (
        config.return_rate_limits,
        config.connection_timeout,
        config.request_timeout,
        config.ping_interval,
        config.reconnect_delay,
        config.max_reconnect_delay,
        config.max_reconnect_attempts,
    )
    assert PROD_WS_URL == config.ws_url
    assert 23 * 3600 == config.max_connection_age


def test_user_dict_wins_over_defaults() -> None:
    """The user's dict is merged over given defaults."""
    config = Config.from_dict({"request_timeout": 2}, request_timeout=9, recv_window=100)

    assert (2, 100) == (config.request_timeout, config.recv_window)


def test_unknown_key_names_it_and_the_nearest() -> None:
    """A misspelt key is refused with the nearest known one."""
    with pytest.raises(ValueError, match=r"'request_timout'.*'request_timeout'"):
        Config.from_dict({"request_timout": 2})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("request_timeout", 0),
        ("request_timeout", -1),
        ("request_timeout", float("nan")),
        ("request_timeout", "30"),
        ("connection_timeout", True),
        ("max_reconnect_attempts", -1),
        ("max_reconnect_attempts", 1.5),
        ("return_rate_limits", "yes"),
        ("ws_url", "http://x"),
        ("rest_url", "ws://x"),
        ("recv_window", 0),
        ("recv_window", 5.5),
        ("private_key_password", 123),
        ("client_order_id_prefix", "has space"),
        ("client_order_id_prefix", "x" * 21),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    """A bad value raises ValueError naming the key."""
    with pytest.raises(ValueError, match=key):
        Config.from_dict({key: value})


def test_config_must_be_a_mapping() -> None:
    """A config that is not a dict is refused."""
    with pytest.raises(ValueError, match="dict"):
        Config.from_dict([("request_timeout", 1)])  # type: ignore[arg-type]


def test_password_hidden_from_repr() -> None:
    """The key password never shows in the config's repr."""
    assert "s3cret" not in repr(Config.from_dict({"private_key_password": "s3cret"}))


def test_config_is_frozen() -> None:
    """A config cannot be changed after it is built."""
    config = Config.from_dict(None)

    with pytest.raises(AttributeError):
        config.request_timeout = 1  # type: ignore[misc]
