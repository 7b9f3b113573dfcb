"""``python -m bfsync demo``: run the complete usage example (see ``bfsync._demo``)."""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] != "demo":
        print("usage: python -m bfsync demo [--testnet | --live] [--api-key KEY --key PATH]")
        return 2
    from ._demo import main as demo

    return demo(args[1:])


if __name__ == "__main__":
    sys.exit(main())
