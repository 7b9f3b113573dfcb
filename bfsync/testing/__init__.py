"""
Testing helpers: ``FakeExchange``, a local Binance USD-M Futures WebSocket API server.

Needs the optional ``websockets`` package (version 13 or later)::

    pip install 'bfsync[testing]'

Pytest users get a ``fake_exchange`` fixture with
``pytest_plugins = ["bfsync.testing.pytest_plugin"]`` in their ``conftest.py``.
See ``docs/fake_exchange.md``.
"""

from __future__ import annotations

try:
    import websockets.asyncio.server  # noqa: F401 - needs websockets >= 13
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "bfsync.testing needs the 'websockets' package, version 13 or later: "
        "pip install 'bfsync[testing]'"
    ) from exc

from .fake_exchange import FakeExchange

__all__ = ["FakeExchange"]
