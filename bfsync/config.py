"""
The service's configuration: a frozen, validated attrs class built from the user's dict.

``Config.from_dict(d)`` merges ``d`` over the defaults; an unknown key or a bad value raises
``ValueError`` naming the key (and, for a misspelt key, the nearest known one).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Optional

import attrs

__all__ = [
    "PROD_REST_URL",
    "PROD_STREAM_URL",
    "PROD_WS_URL",
    "TESTNET_REST_URL",
    "TESTNET_STREAM_URL",
    "TESTNET_WS_URL",
    "Config",
]

PROD_WS_URL = "wss://ws-fapi.binance.com/ws-fapi/v1"
PROD_REST_URL = "https://fapi.binance.com"
TESTNET_WS_URL = "wss://testnet.binancefuture.com/ws-fapi/v1"
TESTNET_REST_URL = "https://demo-fapi.binance.com"
# Market streams: routes (/public, /market) are appended. The testnet's stream host is
# unconfirmed (reference §7.3): the older fstream.binancefuture.com is the documented one.
PROD_STREAM_URL = "wss://fstream.binance.com"
TESTNET_STREAM_URL = "wss://fstream.binancefuture.com"

_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{0,20}$")


def _positive_number(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"config[{attribute.name!r}] must be a positive number, got {value!r}")


def _non_negative_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"config[{attribute.name!r}] must be an integer >= 0, got {value!r}")


def _bool(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"config[{attribute.name!r}] must be True or False, got {value!r}")


def _url(*schemes: str) -> Any:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value.startswith(tuple(f"{s}://" for s in schemes)):
            raise ValueError(
                f"config[{attribute.name!r}] must be a {'/'.join(schemes)}:// URL, got {value!r}"
            )

    return check


def _strip_slash(value: Any) -> Any:
    return value.rstrip("/") if isinstance(value, str) else value


def _stale_after(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _positive_number(inst, attribute, value)


def _queue_size(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config['queue_size'] must be an integer >= 1, got {value!r}")


def _private_url_form(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("query", "path"):
        raise ValueError(f"config['private_url_form'] must be 'query' or 'path', got {value!r}")


def _events(value: Any) -> Any:
    from ._userdata import check_events

    return check_events(value)


def _positive_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config[{attribute.name!r}] must be an integer >= 1, got {value!r}")


def _default_events() -> tuple[str, ...]:
    from ._userdata import DEFAULT_EVENTS

    return DEFAULT_EVENTS


def _recv_window(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"config['recv_window'] must be a positive int (ms) or None, got {value!r}"
        )


def _optional_str(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"config[{attribute.name!r}] must be a string or None")


def _rate_limit_mode(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in (None, "wait", "raise"):
        raise ValueError(f"config['rate_limit'] must be None, 'wait' or 'raise', got {value!r}")


def _prefix(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise ValueError(
            "config['client_order_id_prefix'] must be at most 20 characters of "
            f"A-Z a-z 0-9 . : / _ -, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Config:
    """
    Settings of one ``WebSocketService``. All times are in seconds.

    The first seven keys and their defaults are ``binance-futures-async``'s.
    """

    return_rate_limits: bool = attrs.field(default=True, validator=_bool)
    connection_timeout: float = attrs.field(default=30, validator=_positive_number)
    request_timeout: float = attrs.field(default=30, validator=_positive_number)
    ping_interval: float = attrs.field(default=180, validator=_positive_number)
    reconnect_delay: float = attrs.field(default=5, validator=_positive_number)
    max_reconnect_delay: float = attrs.field(default=300, validator=_positive_number)
    max_reconnect_attempts: int = attrs.field(default=5, validator=_non_negative_int)
    ws_url: str = attrs.field(default=PROD_WS_URL, validator=_url("ws", "wss"))
    rest_url: str = attrs.field(default=PROD_REST_URL, validator=_url("http", "https"))
    recv_window: Optional[int] = attrs.field(default=None, validator=_recv_window)
    private_key_password: Optional[str] = attrs.field(
        default=None, validator=_optional_str, repr=lambda v: "None" if v is None else "'***'"
    )
    max_connection_age: float = attrs.field(default=23 * 3600, validator=_positive_number)
    client_order_id_prefix: str = attrs.field(default="bfs-", validator=_prefix)
    retry_reads: bool = attrs.field(default=False, validator=_bool)
    validate_filters: bool = attrs.field(default=False, validator=_bool)
    sync_clock: bool = attrs.field(default=True, validator=_bool)
    clock_sync_interval: float = attrs.field(default=600, validator=_positive_number)
    rate_limit: Optional[str] = attrs.field(default=None, validator=_rate_limit_mode)
    exchange_info_refresh: float = attrs.field(default=3600, validator=_positive_number)
    stream_url: str = attrs.field(
        default=PROD_STREAM_URL,
        validator=_url("ws", "wss"),
        converter=_strip_slash,
    )
    queue_size: int = attrs.field(default=10_000, validator=_queue_size)
    stale_after: Optional[float] = attrs.field(default=None, validator=_stale_after)
    # User data streams (bfsync.userstream)
    keepalive_interval: float = attrs.field(default=1800, validator=_positive_number)
    events: tuple[str, ...] = attrs.field(factory=_default_events, converter=_events)
    private_url_form: str = attrs.field(default="query", validator=_private_url_form)
    reconcile: bool = attrs.field(default=False, validator=_bool)
    order_history: int = attrs.field(default=1000, validator=_positive_int)

    @classmethod
    def from_dict(cls, config: Optional[Mapping[str, Any]], **defaults: Any) -> Config:
        """
        The defaults, then ``defaults`` (e.g. testnet URLs), then ``config`` on top.

        Raises:
            ValueError: an unknown key (with the nearest known one) or a bad value.
        """
        if config is not None and not isinstance(config, Mapping):
            raise ValueError(f"config must be a dict or None, not {type(config).__name__}")
        merged = {**defaults, **(config or {})}
        known = [a.name for a in attrs.fields(cls)]
        for key in merged:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"unknown config key {key!r}{hint}")
        return cls(**merged)
