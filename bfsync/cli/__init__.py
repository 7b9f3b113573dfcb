"""
``bfsync`` (and ``python -m bfsync``): quick looks and safe actions from a terminal.

See docs/cli.md. The pure parts are separate from the I/O: ``_args`` (the grammar),
``_format`` (tables, CSV, JSON), ``_profiles`` (keys and config file); ``_commands`` talks to
the exchange.

Exit status: 0 ok; 1 an error from the exchange or the connection (one line on stderr), or an
action not confirmed; 2 bad usage (arguments, profile or config file, an order refused by
validation before sending); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import IO, Optional

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    stdin: Optional[IO[str]] = None,
    stdout: Optional[IO[str]] = None,
    stderr: Optional[IO[str]] = None,
) -> int:
    """
    Run one command line (``sys.argv[1:]`` by default) and return its exit status.

    Never raises (``--help`` returns 0); every service it opened is closed before it returns,
    also after Ctrl-C. ``BFSYNC_DEBUG=1`` in the environment adds the traceback of an
    unexpected error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        if args and args[0] == "demo":
            return _demo(args[1:])
        return _main(args, env, stdin, stdout, stderr)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _demo(args: list[str]) -> int:
    from .._demo import main as demo

    if "-h" in args or "--help" in args:
        # The demo's help is its docstring, in reST markup: show it without the backquotes.
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            demo(["--help"])
        sys.stdout.write(text.getvalue().replace("``", ""))
        return EXIT_OK
    try:
        return demo(args)
    except SystemExit as exc:  # argparse's usage errors and --help, or a message
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        sys.stderr.write(f"{exc.code}\n")  # as the interpreter shows SystemExit("text")
        return EXIT_ERROR


def _main(
    args: list[str], env: Mapping[str, str], stdin: IO[str], stdout: IO[str], stderr: IO[str]
) -> int:
    from ._args import UsageError, parse

    try:
        invocation = parse(args)
    except UsageError as exc:
        stderr.write(exc.usage)
        stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help was printed
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if invocation.command == "demo":
        return _demo([])

    from ..exceptions import BinanceWebSocketError, OrderValidationError
    from ._commands import Context, NotConfirmed, run_command
    from ._profiles import ConfigError

    name = f"bfsync {invocation.command}"
    ctx = Context(invocation, env, stdin, stdout, stderr)
    try:
        return run_command(ctx)
    except (ConfigError, UsageError) as exc:
        text = _one_line(exc)
        ctx.say(text if text.startswith("bfsync") else f"{name}: error: {text}")
        return EXIT_USAGE
    except OrderValidationError as exc:
        ctx.say(f"{name}: refused before sending: {_one_line(exc)}")
        return EXIT_USAGE
    except NotConfirmed as exc:
        ctx.say(f"{name}: {exc}")
        return EXIT_ERROR
    except BinanceWebSocketError as exc:
        ctx.say(f"{name}: {type(exc).__name__}: {_one_line(exc)}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        if invocation.command in ("order", "cancel", "cancel-all"):
            ctx.say(
                f"{name}: interrupted; what was sent may have taken effect: see 'bfsync orders'"
            )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`bfsync watch ... | head`): not an error of ours.
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:
        if env.get("BFSYNC_DEBUG"):
            traceback.print_exc(file=stderr)
        ctx.say(
            f"{name}: unexpected error: {type(exc).__name__}: {_one_line(exc)} "
            "(BFSYNC_DEBUG=1 shows the traceback)"
        )
        return EXIT_ERROR
    finally:
        ctx.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
