"""
The services open in this process, weakly held, for :func:`bfsync.close_all`.

Re-running a notebook cell that opens a service leaves the previous one open (its variable
now names the new one, and the old one may still be referenced from the output history).
``close_all()`` closes every service that was connected and not closed since; a service that
is garbage-collected leaves the registry by itself.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

__all__ = ["close_all"]

log = logging.getLogger("bfsync")


class _Closable(Protocol):
    def close(self) -> None: ...


_open: weakref.WeakSet[_Closable] = weakref.WeakSet()
_lock = threading.Lock()


def register(service: _Closable) -> None:
    """Count ``service`` as open (its ``connect()`` succeeded)."""
    with _lock:
        _open.add(service)


def unregister(service: _Closable) -> None:
    """``service`` was closed."""
    with _lock:
        _open.discard(service)


def close_all() -> int:
    """
    Close every bfsync service opened in this process and not closed since.

    Meant for notebooks and interactive sessions: put ``bfsync.close_all()`` at the top of the
    cell that opens a service, so that running the cell again does not leave the previous
    connection (and its threads) behind. Each ``close()`` is bounded (a few seconds at most)
    and errors are logged, not raised, so one failing service does not keep the others open.
    Callable from any thread, a bfsync callback included.

    Returns:
        How many services were closed.

    .. versionadded:: 0.2
    """
    with _lock:
        services = list(_open)
        _open.clear()
    for service in services:
        try:
            service.close()
        except Exception:
            log.exception("close_all: closing %r failed", service)
    if services:
        log.info("close_all: closed %d service(s)", len(services))
    return len(services)
