"""
The server's clock, as seen from ours (pure: no sockets, threads started or clock read).

Signed requests carry ``timestamp`` in ms, which the server accepts only when
``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow`` (§4.2). A
local clock that is off by a second or more gets ``-1021`` on every signed request, so bfsync
stamps requests with the local time plus an offset measured from ``session.status`` replies.

Theory of operation
-------------------

A measurement is a request sent at ``t_send`` and answered at ``t_recv`` (local ms), whose
reply says ``serverTime``. Assuming the server read its clock half-way through the round trip,
``offset = serverTime - (t_send + t_recv) / 2``; the error is at most half the round trip. So
the sample with the smallest round trip is the best one:

- the last :data:`SAMPLES` accepted samples are kept, and the estimate is the one with the
  smallest round trip among them (ties: the newest);
- a sample whose round trip is over :data:`OUTLIER_FACTOR` times the best kept one (and over
  it by more than :data:`OUTLIER_SLACK_MS`) is an outlier and is discarded, so one slow reply
  cannot displace good samples;
- :data:`SAMPLES` outliers in a row mean the network changed, not that the replies were
  unlucky: they replace the kept samples, so the estimate never stays stuck on old ones.

What one measurement may change is bounded, so that a server sending an absurd time (a
``serverTime`` of 5, say) cannot throw every timestamp off:

- a measurement implying an offset over :data:`MAX_OFFSET_MS` (a day) is refused and logged:
  a local clock that far off needs fixing, not compensating;
- a measurement that would move the estimate by more than :data:`MAX_STEP_MS` is held, and
  logged, until the next one agrees with it (within their round trips plus
  :data:`AGREEMENT_SLACK_MS`): then the server's clock did jump, and the two replace the kept
  samples. Anything else in between drops the held one. After :meth:`ServerClock.reset` (a
  ``-1021`` from the server) the next measurement is taken as it is, within the day.

The caller passes the times in; nothing here reads a clock. The local clock must be the
wall clock in ms (``time.time() * 1000``), the same for :meth:`ServerClock.update` and
:meth:`ServerClock.timestamp`: before the first measurement the offset is 0, that is, the
local clock is trusted. A step of the wall clock (NTP) makes the offset stale until the next
measurement, so measure again from time to time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import NamedTuple, Optional

__all__ = [
    "AGREEMENT_SLACK_MS",
    "MAX_OFFSET_MS",
    "MAX_STEP_MS",
    "OUTLIER_FACTOR",
    "OUTLIER_SLACK_MS",
    "SAMPLES",
    "ServerClock",
]

#: How many accepted samples are kept; the estimate is the best of them.
SAMPLES = 5
#: A round trip over this many times the best kept one is an outlier...
OUTLIER_FACTOR = 5.0
#: ... if it is also more than this many ms over it (a 0.1 ms best would refuse 0.6 ms).
OUTLIER_SLACK_MS = 1.0
#: An offset larger than this (a day, in ms) is refused: no clock skew is that large.
MAX_OFFSET_MS = 86_400_000.0
#: A measurement moving the estimate by more than this (ms) waits for a second one to agree.
MAX_STEP_MS = 60_000.0
#: Two measurements agree when their offsets differ by at most half their round trips summed
#: plus this many ms.
AGREEMENT_SLACK_MS = 1_000.0

log = logging.getLogger("bfsync.clock")


class _Sample(NamedTuple):
    round_trip_ms: float
    offset_ms: float


class ServerClock:
    """
    Offset between the server's clock and ours, from ``session.status`` ``serverTime`` replies.

    ``offset = serverTime - (t_send + t_recv) / 2``, in ms; see the module docstring for which
    measurement is used.

    Thread-safety: :meth:`update` holds a lock, so several threads may feed samples. Readers
    take no lock: the estimate is one immutable ``(round_trip_ms, offset_ms)`` tuple held in a
    single attribute, and rebinding an attribute is atomic in CPython, so a reader sees either
    the old estimate or the new one, never a mix of the two.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: deque[_Sample] = deque(maxlen=SAMPLES)
        self._outliers: deque[_Sample] = deque(maxlen=SAMPLES)
        self._best: Optional[_Sample] = None  # read without the lock; rebound atomically
        self._held: Optional[_Sample] = None  # a jump waiting for a second measurement

    # Public methods

    def update(self, server_time_ms: int, sent_at_ms: float, received_at_ms: float) -> bool:
        """
        Take in one measurement.

        Args:
            server_time_ms: the reply's ``serverTime``, ms of the server's clock.
            sent_at_ms: when the request was sent, ms of the local clock.
            received_at_ms: when the reply arrived, ms of the same local clock.

        Returns:
            Whether the measurement was kept: ``False`` for an outlier, an offset beyond
            :data:`MAX_OFFSET_MS`, or a jump held until a second measurement confirms it.

        Raises:
            ValueError: ``received_at_ms`` is before ``sent_at_ms``.
        """
        round_trip = received_at_ms - sent_at_ms
        if round_trip < 0:
            raise ValueError(
                f"received_at_ms ({received_at_ms}) is before sent_at_ms ({sent_at_ms})"
            )
        sample = _Sample(round_trip, server_time_ms - (sent_at_ms + received_at_ms) / 2)
        if not abs(sample.offset_ms) <= MAX_OFFSET_MS:  # also NaN
            log.warning(
                "ignored a clock measurement: serverTime %r is %.0f ms from the local clock "
                "(more than a day); check the local clock",
                server_time_ms,
                sample.offset_ms,
            )
            return False
        with self._lock:
            best = self._best
            if best is not None and abs(sample.offset_ms - best.offset_ms) > MAX_STEP_MS:
                held, self._held = self._held, None
                if held is None or not _agree(held, sample):
                    self._held = sample
                    log.warning(
                        "a clock measurement would move the offset by %.0f ms: held until "
                        "another one confirms it",
                        sample.offset_ms - best.offset_ms,
                    )
                    return False
                log.warning(
                    "the server's clock jumped: offset %.0f ms -> %.0f ms (two measurements)",
                    best.offset_ms,
                    sample.offset_ms,
                )
                self._kept.clear()
                self._outliers.clear()
                self._kept.append(held)
                self._kept.append(sample)
            else:
                self._held = None
                if best is not None and _is_outlier(round_trip, best.round_trip_ms):
                    self._outliers.append(sample)
                    if len(self._outliers) < SAMPLES:
                        return False
                    self._kept.clear()
                    self._kept.extend(self._outliers)  # the network changed: start over
                else:
                    self._kept.append(sample)
                self._outliers.clear()
            new_best = self._kept[0]
            for kept in self._kept:  # newest wins a tie
                if kept.round_trip_ms <= new_best.round_trip_ms:
                    new_best = kept
            self._best = new_best
            return True

    def reset(self) -> None:
        """
        Forget every measurement: the next one is taken as it is.

        For when the server has shown the estimate is wrong (a ``-1021`` reply): its clock
        may have jumped, and a new measurement with a longer round trip must not lose to old
        ones with shorter round trips.
        """
        with self._lock:
            self._kept.clear()
            self._outliers.clear()
            self._best = None
            self._held = None

    @property
    def offset_ms(self) -> float:
        """Server time minus local time, in ms; ``0.0`` before the first measurement."""
        best = self._best
        return 0.0 if best is None else best.offset_ms

    @property
    def round_trip_ms(self) -> Optional[float]:
        """The round trip of the measurement in use, in ms; ``None`` before the first one."""
        best = self._best
        return None if best is None else best.round_trip_ms

    def timestamp(self, local_ms: float) -> int:
        """
        A ``timestamp`` for a request: the server's time when the local clock says ``local_ms``.

        Args:
            local_ms: the local wall-clock time in ms (the clock of the measurements).

        Returns:
            ``int(local_ms + offset_ms)``.
        """
        return int(local_ms + self.offset_ms)


def _agree(first: _Sample, second: _Sample) -> bool:
    """Whether two measurements give the same offset, within what their round trips allow."""
    tolerance = (first.round_trip_ms + second.round_trip_ms) / 2 + AGREEMENT_SLACK_MS
    return abs(first.offset_ms - second.offset_ms) <= tolerance


def _is_outlier(round_trip_ms: float, best_ms: float) -> bool:
    return round_trip_ms > best_ms * OUTLIER_FACTOR and round_trip_ms > best_ms + OUTLIER_SLACK_MS
