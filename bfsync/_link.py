"""
One WebSocket connection (a *link*), and the handshake that opens it.

The only module that imports websocket-client. Its ``WebSocket`` does the opening handshake
and its ``ABNF`` formats frames; bfsync's ``FrameReader`` reads them. Errors of
websocket-client, ``OSError``, ``ssl`` and RFC 6455 violations are mapped into
:class:`LinkLost` here, at one boundary (:func:`link_errors`); any other
exception (a ``ValueError`` from a bug, say) passes through untouched, so it is never mistaken
for a lost connection.

A :class:`Link` never blocks: its socket is non-blocking, reads take what has arrived and
writes go to a buffer that :meth:`Link.flush` empties as far as the socket allows. Only the
I/O thread uses a link. :class:`Handshake` opens one on a helper thread (``bfsync-connect-N``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union

from ._policy import LinkPolicy, Liveness
from ._wsframes import OP_CLOSE, OP_PING, OP_PONG, FrameReader, ProtocolError

__all__ = ["Handshake", "Link", "LinkLost", "link_errors", "load_websocket_client"]

# websocket-client (and ssl), imported with the first link: ``import bfsync`` stays cheap.
websocket: Any = None
ABNF: Any = None
# What a non-blocking socket raises when it must wait (plain, or TLS wanting to read or write).
_WOULD_BLOCK: tuple[type[BaseException], ...] = (BlockingIOError,)
# What means "this connection is gone" (filled in by load_websocket_client).
_LINK_ERRORS: tuple[type[BaseException], ...] = (OSError, ProtocolError)

_READ_CHUNK = 1 << 16
_MAX_READS = 16  # recv calls per link and loop turn: 1 MiB, then the loop serves the others
_MAX_MESSAGE = 64 << 20  # a message larger than this ends the link (close code 1009)
_link_numbers = itertools.count(1)
_connect_numbers = itertools.count(1)


class LinkLost(Exception):
    """
    A link is gone; ``__cause__`` (when set) is the socket, TLS or protocol error.

    ``events`` holds the valid frames read just before a protocol violation (delivered first).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.events: list[tuple[int, bytes]] = []


def load_websocket_client() -> None:
    """Import websocket-client and ssl (once)."""
    global websocket, ABNF, _WOULD_BLOCK, _LINK_ERRORS  # lazily imported modules
    if websocket is None:
        import ssl

        import websocket as module

        _WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        _LINK_ERRORS = (OSError, ProtocolError, module.WebSocketException)
        ABNF = module.ABNF
        websocket = module


@contextlib.contextmanager
def link_errors(what: str) -> Iterator[None]:
    """The one boundary: socket, TLS, websocket-client and protocol errors become ``LinkLost``."""
    try:
        yield
    except LinkLost:
        raise
    except _LINK_ERRORS as exc:
        raise LinkLost(f"{what}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _MaskKeys:
    """
    Masking keys for client frames (RFC 6455 §5.3): from ``os.urandom``, 1024 at a time.

    websocket-client calls ``os.urandom(4)`` for every frame: one system call a request.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self, length: int) -> bytes:
        pos = self._pos
        if pos + length > len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + length
        return self._pool[pos : pos + length]


class Link:
    """
    One open WebSocket connection, used by the I/O thread only. Never blocks.

    Attributes:
        number: unique in the process, increasing.
        opened_at: ``time.monotonic()`` when the handshake completed.
        liveness: its own ping/pong bookkeeping (``_policy.Liveness``).
        failure: set by :meth:`fail`; the I/O thread then drops the link.
        retiring: a close frame was queued; nothing else is sent.
    """

    __slots__ = (
        "_mask_keys",
        "_out",
        "_stalled_since",
        "failure",
        "liveness",
        "number",
        "opened_at",
        "reader",
        "retiring",
        "sock",
        "ws",
    )

    def __init__(self, ws: Any, policy: LinkPolicy, now: float) -> None:
        self.ws = ws
        self.sock: socket.socket = ws.sock
        self.sock.settimeout(0)
        self.number = next(_link_numbers)
        self.opened_at = now
        self.reader = FrameReader(max_message=_MAX_MESSAGE)
        self.liveness = Liveness(policy.ping_interval, policy.pong_timeout, now)
        self._out = bytearray()
        self._stalled_since: Optional[float] = None
        self._mask_keys = _MaskKeys()
        self.failure: Optional[BaseException] = None
        self.retiring = False

    def __repr__(self) -> str:
        return f"<Link {self.number}>"

    # LinkView

    @property
    def last_received(self) -> float:
        return self.liveness.last_received

    @property
    def buffered(self) -> int:
        return len(self._out)

    def fail(self, cause: BaseException) -> None:
        if self.failure is None:
            self.failure = cause

    # Writing

    def queue_texts(self, texts: Iterable[Union[str, bytes]]) -> int:
        """Frame, mask and buffer text messages; returns how many. Nothing is sent yet."""
        out = self._out
        count = 0
        for text in texts:
            frame = ABNF.create_frame(text, ABNF.OPCODE_TEXT)
            frame.get_mask_key = self._mask_keys
            out += frame.format()
            count += 1
        return count

    def queue_control(self, opcode: int, payload: bytes = b"") -> None:
        """Buffer a ping, pong or close frame."""
        frame = ABNF(1, 0, 0, 0, opcode, 1, payload)
        frame.get_mask_key = self._mask_keys
        self._out += frame.format()

    def queue_close(self, code: int = 1000) -> None:
        """Buffer a close frame; nothing is queued after it."""
        if not self.retiring:
            self.retiring = True
            self.queue_control(OP_CLOSE, code.to_bytes(2, "big"))

    def flush(self, now: float) -> None:
        """
        Send what the socket takes now, without waiting.

        Raises:
            LinkLost: the socket failed.
        """
        out = self._out
        if not out:
            self._stalled_since = None
            return
        sent = 0
        with link_errors("sending failed"):
            view = memoryview(out)
            try:
                while sent < len(out):
                    n = self.sock.send(view[sent:])
                    if not n:
                        break
                    sent += n
            except _WOULD_BLOCK:
                pass
            finally:
                view.release()
        if sent:
            del out[:sent]
        self._stalled_since = None if (sent or not out) else (self._stalled_since or now)

    def write_stalled(self, now: float, bound: float) -> bool:
        """Whether unsent bytes have not moved for ``bound`` seconds."""
        since = self._stalled_since
        return since is not None and now - since >= bound

    def stall_deadline(self, bound: float) -> Optional[float]:
        since = self._stalled_since
        return None if since is None else since + bound

    # Reading

    def read(self, now: float) -> list[tuple[int, bytes]]:
        """
        The frames that have arrived, complete; ``[]`` if none is complete yet. Pings are
        answered here (a pong is buffered); anything received counts as life.

        Raises:
            LinkLost: the server closed the connection, broke RFC 6455, or the socket failed;
                ``LinkLost.events`` holds the valid frames that came before the violation.
        """
        sock = self.sock
        reader = self.reader
        got = False
        try:
            with link_errors("reading failed"):
                for _ in range(_MAX_READS):  # then the other links get their turn
                    try:
                        data = sock.recv(_READ_CHUNK)
                    except _WOULD_BLOCK:
                        break
                    if not data:
                        raise LinkLost("the server closed the TCP connection")
                    got = True
                    reader.feed(data)
                    if len(data) < _READ_CHUNK and not self.tls_pending():
                        break
                events = reader.events() if got else []
        except LinkLost as lost:
            cause = lost.__cause__
            if isinstance(cause, ProtocolError):
                lost.events = cause.events
            if got:
                self.liveness.received(now)
            raise
        if got:
            self.liveness.received(now)
        return events

    def tls_pending(self) -> bool:
        """Whether ``ssl`` holds decrypted bytes that ``select`` cannot see."""
        pending = getattr(self.sock, "pending", None)
        return bool(pending and pending())

    def answer_ping(self, payload: bytes) -> None:
        self.queue_control(OP_PONG, payload)

    def ping(self) -> None:
        self.queue_control(OP_PING)

    def abort(self) -> None:
        """Shut the socket down (wakes any blocked call on it) and close it. Idempotent."""
        _shutdown(self.ws)


def _shutdown(ws: Any) -> None:
    sock = getattr(ws, "sock", None)
    if sock is not None:
        with contextlib.suppress(Exception):  # not connected, or closed already
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        ws.shutdown()


class Handshake:
    """
    One opening handshake on a short-lived helper thread (``bfsync-connect-N``).

    websocket-client's ``connect`` blocks (TCP, TLS, the HTTP upgrade), each step bounded by
    ``policy.connection_timeout``; here it blocks a helper thread, never the I/O thread.
    ``on_done(self)`` runs on the helper thread when it ends, successful or not: then
    :attr:`link` or :attr:`error` is set. :meth:`abort` (any thread) shuts its socket down;
    a link completed after an abort is closed by the helper itself, never handed over.
    """

    def __init__(
        self,
        url: str,
        policy: LinkPolicy,
        on_done: Callable[[Handshake], None],
        rotation: bool = False,
    ) -> None:
        load_websocket_client()
        self._url = url
        self._policy = policy
        self._on_done = on_done
        self.rotation = rotation
        self.started_at = time.monotonic()
        self.link: Optional[Link] = None
        self.error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._aborted = False
        self._ws: Any = websocket.WebSocket(enable_multithread=False, skip_utf8_validation=True)
        self._thread = threading.Thread(
            target=self._run, name=f"bfsync-connect-{next(_connect_numbers)}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        ws = self._ws
        try:
            with link_errors("handshake failed"):
                ws.connect(self._url, timeout=self._policy.connection_timeout)
                link = Link(ws, self._policy, time.monotonic())
        except BaseException as exc:  # LinkLost, or a bug: the I/O thread decides
            _shutdown(ws)
            self.error = exc
        else:
            with self._lock:
                if self._aborted:
                    link.abort()
                    self.error = LinkLost("aborted")
                else:
                    self.link = link
        finally:
            self._url = ""
        self._on_done(self)

    def abort(self) -> None:
        """Shut the handshake's socket down; the helper thread ends soon after."""
        with self._lock:
            self._aborted = True
            link = self.link
        if link is None:
            _shutdown(self._ws)

    @property
    def running(self) -> bool:
        """Whether the helper thread still runs (it may, briefly, after ``on_done``)."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait for the helper thread; True if it ended."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
