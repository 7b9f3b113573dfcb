"""``python -m bfsync``: the ``bfsync`` command line (``python -m bfsync demo``: the demo)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
