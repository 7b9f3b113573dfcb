"""Fixtures: a FakeExchange per test, keys of each kind, services that always get closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from bfsync import WebSocketService
from bfsync.testing import FakeExchange

from .rawclient import Client

KEY_KINDS = ("HMAC", "RSA", "Ed25519")
Credentials = tuple[str, str]
# Every thread a bfsync client may start (FakeExchange's own threads are not among them).
CLIENT_THREADS = (
    "bfsync-io",
    "bfsync-dispatch",
    "bfsync-rest",
    "bfsync-connect",
    "bfsync-deadline",
    "bfsync-deliver",
    "bfsync-market",
    "bfsync-book",
    "bfsync-excel",
    "bfsync-user",
)


def client_threads() -> list[str]:
    """Names of bfsync's client threads still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith(CLIENT_THREADS)]


@pytest.fixture
def fx() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        yield exchange


@pytest.fixture
def credentials(fx: FakeExchange, tmp_path: Path) -> dict[str, Credentials]:
    """An (api_key, private_key_path) pair of each kind, registered with the exchange."""
    return {
        "HMAC": fx.add_hmac_key(),
        "RSA": fx.add_rsa_key(tmp_path),
        "Ed25519": fx.add_ed25519_key(tmp_path),
    }


@pytest.fixture
def make_service(
    fx: FakeExchange, credentials: dict[str, Credentials]
) -> Iterator[Callable[..., WebSocketService]]:
    """Build connected services; every one is closed after the test, leaving no thread."""
    services: list[WebSocketService] = []

    def make(kind: str = "HMAC", validation: bool = False, **config: Any) -> WebSocketService:
        api_key, key = credentials[kind]
        settings = {
            "ws_url": fx.url,
            "rest_url": fx.rest_url,
            "request_timeout": 5,
            "connection_timeout": 5,
            **config,
        }
        service = WebSocketService(api_key, key, validation, settings)
        services.append(service)
        service.connect()
        fx.clear_requests()  # connect() measured the clock with session.status
        return service

    yield make
    for service in services:
        service.close()
    assert client_threads() == []


@pytest.fixture
def connect(fx: FakeExchange) -> Iterator[Callable[..., Client]]:
    """Open raw clients to the exchange; all are closed after the test."""
    clients: list[Client] = []

    def make(url: Optional[str] = None) -> Client:
        client = Client(url or fx.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(connect: Callable[..., Client]) -> Client:
    """One raw client."""
    return connect()
