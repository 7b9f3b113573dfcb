"""
Params of the order-management calls (pure): ``order.modify``, ``order.cancel``,
``order.status`` and ``algoOrder.cancel``.

One table, ``CALLS``: per wire method, what is required, which groups need one member, and
what else is taken. Values are checked with the same checkers as orders (``orders.py``), so
a number is "a finite number > 0" and an id "1 to 36 characters" everywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from .exceptions import OrderValidationError
from .orders import _CHECKERS, _client_order_id, _positive_int, format_params

__all__ = ["CALLS", "CallRule", "prepare_call"]


@attrs.frozen
class CallRule:
    """What one call needs (``required``), needs one of (``one_of``) and also takes."""

    required: tuple[str, ...]
    one_of: tuple[tuple[str, ...], ...]
    optional: tuple[str, ...] = ("recvWindow",)

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.required + self.optional + sum(self.one_of, ()))


_ORDER_ID = ("orderId", "origClientOrderId")

CALLS: dict[str, CallRule] = {
    "order.modify": CallRule(
        ("symbol", "side", "quantity"),
        (_ORDER_ID, ("price", "priceMatch")),
        ("recvWindow",),
    ),
    "order.cancel": CallRule(("symbol",), (_ORDER_ID,)),
    "order.status": CallRule(("symbol",), (_ORDER_ID,)),
    "algoOrder.cancel": CallRule((), (("algoId", "clientAlgoId"),)),
}

_EXTRA_CHECKERS = {
    "orderId": _positive_int("Binance's order id"),
    "algoId": _positive_int("Binance's algo order id"),
    "origClientOrderId": _client_order_id,
    "clientAlgoId": _client_order_id,
}


def prepare_call(method: str, kwargs: Mapping[str, Any], *, validate: bool) -> dict[str, Any]:
    """
    The wire params of ``method`` from the caller's keywords.

    ``None`` values count as not given; numbers and booleans are formatted exactly. With
    ``validate`` every rule of ``CALLS[method]`` is checked.

    Raises:
        OrderValidationError: with ``validate``, a missing, unknown or bad parameter, named.
    """
    given = {key: value for key, value in kwargs.items() if value is not None}
    if not validate:
        return format_params(given)
    rule = CALLS[method]
    params: dict[str, Any] = {}
    for key, value in given.items():
        checker = _EXTRA_CHECKERS.get(key) or _CHECKERS.get(key)
        if key not in rule.known or checker is None:
            near = difflib.get_close_matches(key, sorted(rule.known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise OrderValidationError(f"unknown parameter {key!r} for {method}{hint}")
        params[key] = checker(value, key)
    for key in rule.required:
        if key not in params:
            raise OrderValidationError(f"{key} is required for {method}")
    for group in rule.one_of:
        if not any(key in params for key in group):
            raise OrderValidationError(f"{' or '.join(group)} is required for {method}")
    if "price" in params and params.get("priceMatch", "NONE") != "NONE":
        raise OrderValidationError("price and priceMatch cannot be sent together")
    return params
