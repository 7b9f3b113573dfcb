"""
One factor for every timing in the tests, so slow machines do not flake.

Set ``BFSYNC_TEST_TIME_SCALE=3`` (say) to stretch every timeout, delay and wait the tests use.
Tests never assert that something was fast: speed is for ``benchmarks/``.
"""

from __future__ import annotations

import os

__all__ = ["SCALE", "scaled"]

SCALE = float(os.environ.get("BFSYNC_TEST_TIME_SCALE", "1") or "1")


def scaled(seconds: float) -> float:
    """``seconds`` stretched by ``BFSYNC_TEST_TIME_SCALE``."""
    return seconds * SCALE
