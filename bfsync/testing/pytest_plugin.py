"""
A pytest plugin with the ``fake_exchange`` fixture.

Enable it in ``conftest.py``::

    pytest_plugins = ["bfsync.testing.pytest_plugin"]

then::

    def test_my_script(fake_exchange):
        api_key, secret = fake_exchange.add_hmac_key()
        run_my_script(url=fake_exchange.url, api_key=api_key, secret=secret)
        assert fake_exchange.requests_for("order.place")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import FakeExchange

__all__ = ["fake_exchange"]


@pytest.fixture
def fake_exchange() -> Iterator[FakeExchange]:
    """A started ``FakeExchange`` (function scope), stopped after the test."""
    fx = FakeExchange()
    fx.start()
    try:
        yield fx
    finally:
        fx.stop()
