"""The public surface: __all__ lists, the exception tree."""

from __future__ import annotations

import importlib

import pytest

import bfsync
from bfsync import exceptions


def test_top_level_all_is_sorted_and_unique() -> None:
    """bfsync.__all__ is sorted, without duplicates, and every name exists."""
    assert sorted(set(bfsync.__all__)) == bfsync.__all__
    for name in bfsync.__all__:
        assert hasattr(bfsync, name)


def test_every_exception_is_exported() -> None:
    """Every exception class is in bfsync.exceptions.__all__ and at the top level."""
    classes = {
        name
        for name, value in vars(exceptions).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == "bfsync.exceptions"
    }

    assert classes == set(exceptions.__all__)
    assert classes <= set(bfsync.__all__)


@pytest.mark.parametrize(
    "name",
    [
        "ConnectionError",
        "AuthenticationError",
        "RequestError",
        "UserStreamError",
        "OrderValidationError",
    ],
)
def test_async_library_names_derive_from_the_root(name: str) -> None:
    """The async library's exception names exist and derive from BinanceWebSocketError."""
    assert issubclass(getattr(exceptions, name), exceptions.BinanceWebSocketError)


def test_unknown_outcome_errors_are_request_errors_with_an_id() -> None:
    """Both unknown-outcome errors are RequestErrors, and ConnectionError/timeout by cause."""
    lost = exceptions.OrderConnectionLostError("x", client_order_id="c1")
    late = exceptions.OrderTimeoutError("x", client_order_id="c2")

    assert isinstance(lost, exceptions.RequestError)
    assert isinstance(lost, exceptions.ConnectionError)
    assert isinstance(late, exceptions.RequestError)
    assert isinstance(late, exceptions.RequestTimeoutError)
    assert ("c1", "c2") == (lost.client_order_id, late.client_order_id)


def test_server_failure_and_revoked_key_errors_are_unknown_outcomes() -> None:
    """OrderServerError and OrderAuthenticationLostError carry the id; the second is auth."""
    server = exceptions.OrderServerError("x", client_order_id="c3", status=503)
    revoked = exceptions.OrderAuthenticationLostError("x", client_order_id="c4", status=401)

    assert isinstance(server, exceptions.OrderStatusUnknownError)
    assert isinstance(revoked, exceptions.OrderStatusUnknownError)
    assert isinstance(revoked, exceptions.AuthenticationError)
    assert not isinstance(server, exceptions.AuthenticationError)
    assert ("c3", 503, "c4", 401) == (
        server.client_order_id,
        server.status,
        revoked.client_order_id,
        revoked.status,
    )


@pytest.mark.parametrize(
    "module",
    [
        "bfsync.calls",
        "bfsync.client",
        "bfsync.clock",
        "bfsync.config",
        "bfsync.exceptions",
        "bfsync.filters",
        "bfsync.limits",
        "bfsync.livebook",
        "bfsync.orderbook",
        "bfsync.orders",
        "bfsync.protocol",
        "bfsync.service",
        "bfsync.signing",
        "bfsync.transport",
        "bfsync.types",
    ],
)
def test_every_module_declares_all(module: str) -> None:
    """Every public module says what it exports."""
    assert isinstance(importlib.import_module(module).__all__, list)


def test_types_module_exports_every_public_type() -> None:
    """bfsync.types lists every public name it defines, and nothing private."""
    from bfsync import types

    public = {name for name in vars(types) if name[0].isupper() and not name.startswith("_")}
    public -= {"Future", "Decimal", "Generic", "Literal", "Optional", "TypeVar", "Union"}
    public -= {"NotRequired", "TypedDict", "SupportsFloat", "SupportsIndex"}

    assert sorted(public) == sorted(types.__all__)
