"""
The Python blocks of README.md and docs/*.md run as they stand (docs/README.md's convention).

A block fenced ```` ```python ```` is executed in a fresh namespace (as ``__main__``, in a
temporary directory) and must leave no bfsync thread behind; one fenced
```` ```python no-run ```` must at least compile. Other fences (``sh``, plain) are text.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from .conftest import client_threads
from .test_notebook import wait_until

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(\s*)```(.*)$")


class Block(NamedTuple):
    path: Path
    line: int  # of the opening fence, 1-based
    info: str  # the fence's info string: "python", "python no-run", "sh", ""
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file."""
    found: list[Block] = []
    opened: Optional[tuple[int, str]] = None  # line, info
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if opened is None:
            if match:
                opened, body = (number, match.group(2).strip()), []
        elif match and match.group(2).strip() == "":
            start, info = opened
            code = textwrap.dedent("\n".join(body)) + "\n"
            found.append(Block(path, start, info, code))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"{path.name}: a fence opened at line {opened[0]} is never closed"
    return found


ALL = [block for path in DOCS for block in blocks(path)]
RUNNABLE = [block for block in ALL if block.info == "python"]
NOT_RUN = [block for block in ALL if block.info == "python no-run"]


def test_every_python_fence_follows_the_convention() -> None:
    """Python blocks are fenced `python` or `python no-run`, nothing else (`py`, `python3`)."""
    odd = [
        b.name for b in ALL if b.info.startswith("py") and b.info not in ("python", "python no-run")
    ]

    assert [] == odd
    assert any(b.path.name == "README.md" for b in RUNNABLE)  # the collector finds blocks


@pytest.mark.parametrize("block", NOT_RUN, ids=[b.name for b in NOT_RUN])
def test_no_run_blocks_compile(block: Block) -> None:
    """A block that is not run is still valid Python."""
    compile(block.code, block.name, "exec")


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_python_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block runs without error and closes every service it opened."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__", "__file__": str(tmp_path / "block.py")}

    exec(compile(block.code, block.name, "exec"), namespace)  # noqa: S102 - our own docs

    assert wait_until(lambda: client_threads() == [], 5), client_threads()
