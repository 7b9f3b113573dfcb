"""
The connection policies, pure: no socket, no thread, no clock (``now`` is passed in).

- :class:`LinkPolicy`: the settings one channel's links live by (timeouts, liveness,
  rotation, reconnection), built from a ``Config`` or by hand.
- :func:`backoff`: the wait before reconnection attempt *n*.
- :class:`Liveness`: one link's ping/pong bookkeeping; :meth:`Liveness.action` says whether
  to ping now, whether the link is dead, or neither.
- :func:`rotation_due`: whether a link is old enough to be replaced.

Every decision of the I/O thread about *when* lives here, so it is tested by plain calls.
"""

from __future__ import annotations

import enum
import math
import random
from typing import TYPE_CHECKING, Callable, Optional

import attrs

if TYPE_CHECKING:
    from .config import Config

__all__ = ["LinkPolicy", "Liveness", "Verdict", "backoff", "rotation_due"]

_PONG_TIMEOUT = 10.0  # after our ping, silence this long (at most ping_interval) is a dead link
_WRITE_STALL = 10.0  # a send buffer that does not move for this long is a dead link


@attrs.frozen(kw_only=True)
class LinkPolicy:
    """
    How one channel's links are opened, watched, replaced and re-opened.

    Attributes:
        connection_timeout: bound on one handshake (TCP, TLS and the HTTP upgrade).
        ping_interval: silence this long on a link makes the I/O thread ping it.
        pong_timeout: silence this long after our ping means the link is dead.
        max_age: a link this old is replaced (rotation); ``math.inf`` never.
        reconnect_delay: the wait after the first failed reconnection attempt (the first
            attempt after a loss is immediate); doubles up to ``max_reconnect_delay``.
        max_reconnect_delay: the longest wait between attempts.
        max_reconnect_attempts: failed attempts in a row before the channel fails; 0: a lost
            link fails the channel at once.
        retry_first: whether a failed *first* handshake is retried like a reconnection
            (``False``: the channel fails at once, so ``open()`` can raise).
        write_stall: a link whose send buffer has not moved for this long is dead.
        drain_timeout: after a rotation, the old link is closed at the latest this long after
            the new one opened, whatever ``can_retire`` says.
    """

    connection_timeout: float = 30.0
    ping_interval: float = 180.0
    pong_timeout: float = _PONG_TIMEOUT
    max_age: float = math.inf
    reconnect_delay: float = 5.0
    max_reconnect_delay: float = 300.0
    max_reconnect_attempts: int = 5
    retry_first: bool = False
    write_stall: float = _WRITE_STALL
    drain_timeout: float = 31.0

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> LinkPolicy:
        """The policy a service's ``Config`` describes (``overrides`` win)."""
        values: dict[str, object] = {
            "connection_timeout": float(config.connection_timeout),
            "ping_interval": float(config.ping_interval),
            "pong_timeout": min(_PONG_TIMEOUT, float(config.ping_interval)),
            "max_age": float(config.max_connection_age),
            "reconnect_delay": float(config.reconnect_delay),
            "max_reconnect_delay": float(config.max_reconnect_delay),
            "max_reconnect_attempts": int(config.max_reconnect_attempts),
            "write_stall": min(_WRITE_STALL, max(1.0, float(config.request_timeout))),
            "drain_timeout": float(config.request_timeout) + 1.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def backoff(
    policy: LinkPolicy, attempt: int, uniform: Callable[[float, float], float] = random.uniform
) -> float:
    """
    The wait after failed reconnection attempt ``attempt`` (1, 2, ...).

    ``reconnect_delay`` doubling up to ``max_reconnect_delay``, each within ±20 % (drawn
    with ``uniform``) so that many clients do not come back at the same instant.
    """
    base = min(policy.reconnect_delay * 2 ** max(0, attempt - 1), policy.max_reconnect_delay)
    return float(base * uniform(0.8, 1.2))


def rotation_due(policy: LinkPolicy, opened_at: float, now: float) -> bool:
    """Whether a link opened at ``opened_at`` should be replaced at ``now``."""
    return now - opened_at >= policy.max_age


class Verdict(enum.Enum):
    """What :meth:`Liveness.action` asks for."""

    PING = "ping"
    DEAD = "dead"


class Liveness:
    """
    One link's liveness: ping after ``ping_interval`` of silence; if nothing at all arrives
    within ``pong_timeout`` of our ping, the link is dead. Anything received counts as life.
    """

    __slots__ = ("last_received", "ping_interval", "ping_sent", "pong_timeout")

    def __init__(self, ping_interval: float, pong_timeout: float, now: float) -> None:
        self.ping_interval = ping_interval
        self.pong_timeout = min(pong_timeout, ping_interval)
        self.last_received = now
        self.ping_sent: Optional[float] = None

    def received(self, now: float) -> None:
        """Something arrived at ``now``."""
        self.last_received = now
        self.ping_sent = None

    def action(self, now: float) -> Optional[Verdict]:
        """``PING`` (and the ping counts as sent at ``now``), ``DEAD``, or ``None``."""
        if self.ping_sent is not None:
            if now - self.ping_sent >= self.pong_timeout:
                return Verdict.DEAD
            return None
        if now - self.last_received >= self.ping_interval:
            self.ping_sent = now
            return Verdict.PING
        return None

    def next_deadline(self) -> float:
        """When :meth:`action` may next have something to say."""
        if self.ping_sent is not None:
            return self.ping_sent + self.pong_timeout
        return self.last_received + self.ping_interval
