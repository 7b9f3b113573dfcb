"""
An incremental RFC 6455 frame reader for the client side (pure: no sockets, no clock).

This is the read half of the transport: the I/O thread reads raw bytes from the socket,
:meth:`FrameReader.feed` s them here and takes complete messages from
:meth:`FrameReader.events`. Writing frames (and the opening handshake) stays with
websocket-client and its ``ABNF``. websocket-client's own reader (``recv_data_frame``) costs
several microseconds per small frame (locks, an ``ABNF`` object per frame, the
``continuous_frame`` bookkeeping) and blocks on a half-received frame; this one parses many
frames per call from one buffer and never waits: an incomplete frame just stays buffered.

Theory of operation
-------------------

- :meth:`~FrameReader.feed` only queues the bytes. :meth:`~FrameReader.events` joins what is
  queued behind the incomplete rest of the previous call into one ``bytes`` buffer and walks
  it with a read offset, slicing each payload straight out of it (one copy per payload, no
  per-frame objects besides the result tuple). What is left, an incomplete frame, is kept for
  the next call. Once a frame's header is known the reader also knows how many more bytes it
  needs, and does not join or parse again until that many are queued: a large message
  arriving in many small reads is copied a bounded number of times, not once per read.
- Headers are checked as soon as their bytes are in, before the payload arrives: reserved
  bits, opcodes, the mask bit, control frame rules, the fragmentation state and the size
  limit. The first violation raises :class:`ProtocolError`.
- Data messages are returned whole: fragments are joined. Control frames (close, ping, pong)
  that arrive between the fragments of a message are returned in arrival order, that is,
  before the message they interrupt.

What is *not* checked: text payloads are returned as ``bytes`` without UTF-8 validation (the
caller decodes JSON, which fails on bad UTF-8 anyway), nor is the reason of a close frame.
Frames after a close frame are parsed like any other; the caller stops reading at the close.
"""

from __future__ import annotations

from struct import Struct

__all__ = [
    "ProtocolError",
    "FrameReader",
    "OP_CONTINUATION",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_TOO_BIG",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007  # bad UTF-8; this reader does not validate UTF-8, see the docstring
CLOSE_TOO_BIG = 1009

_U16 = Struct("!H")
_U64 = Struct("!Q")


class ProtocolError(Exception):
    """
    The server broke RFC 6455; the message says how.

    ``close_code`` is the status to close the connection with: 1002 (protocol error) or 1009
    (message too big). ``events`` holds the complete, valid events that preceded the violation
    in the same :meth:`FrameReader.events` call (those frames were fine and may be delivered
    before closing); it is empty when the error is raised again by a later call.
    """

    def __init__(
        self,
        message: str,
        close_code: int = CLOSE_PROTOCOL_ERROR,
        events: list[tuple[int, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.events: list[tuple[int, bytes]] = [] if events is None else events


def _valid_close_code(code: int) -> bool:
    """RFC 6455 §7.4: the codes a peer may send in a close frame."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _unmask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated, as one big-integer XOR."""
    length = len(data)
    if not length:
        return data
    keys = (key * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")).to_bytes(length, "big")


def _again(failure: ProtocolError) -> ProtocolError:
    """The error every call raises after the first violation."""
    return ProtocolError(f"reader unusable after a protocol error: {failure}", failure.close_code)


class FrameReader:
    """
    Incremental RFC 6455 reader for a CLIENT (frames from the server). Pure: no sockets, no clock.

    :meth:`feed` the bytes read from the socket, split anywhere, then call :meth:`events` for
    ``[(opcode, payload), ...]`` in arrival order:

    - ``0x1`` text and ``0x2`` binary: one complete message, fragments joined; a text payload is
      ``bytes``, not decoded and not checked for UTF-8 (decoding the JSON fails on bad UTF-8);
    - ``0x8`` close: the raw payload, empty or a 2-byte code and a reason (a code that RFC 6455
      §7.4 does not allow on the wire is a protocol error);
    - ``0x9`` ping and ``0xA`` pong: the payload; answering pings is the caller's business.

    A message larger than ``max_message`` bytes (a single frame or the sum of the fragments)
    raises :class:`ProtocolError` with ``close_code`` 1009 as soon as the header declaring it
    is read, before its payload is buffered. Frames from a server must not be masked (§5.1);
    ``allow_masked=True`` accepts and unmasks them instead.

    The first violation raises :class:`ProtocolError`, with the valid events before it in its
    ``events``. The reader is unusable after that: every later :meth:`feed` and :meth:`events`
    raises :class:`ProtocolError` again (with the same ``close_code``).

    Not thread-safe: one thread (the I/O thread) feeds and reads.
    """

    __slots__ = (
        "_allow_masked",
        "_failure",
        "_fragment_op",
        "_fragment_size",
        "_fragments",
        "_max_message",
        "_queued",
        "_queued_size",
        "_rest",
        "_want",
    )

    def __init__(self, max_message: int = 16 * 1024 * 1024, *, allow_masked: bool = False) -> None:
        if max_message < 0:
            raise ValueError(f"max_message must be >= 0, not {max_message}")
        self._max_message = max_message
        self._allow_masked = allow_masked
        # The incomplete frame left by the last events() call, and the bytes fed since.
        self._rest = b""
        self._queued: list[bytes] = []
        self._queued_size = 0
        # How many queued bytes the incomplete frame needs before parsing can progress.
        self._want = 1
        # The fragmented message in progress: its opcode (0: none), parts and size so far.
        self._fragment_op = 0
        self._fragments: list[bytes] = []
        self._fragment_size = 0
        self._failure: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet a complete frame (fragments of a message not counted)."""
        return len(self._rest) + self._queued_size

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server; they are parsed by :meth:`events`."""
        if self._failure is not None:
            raise _again(self._failure)
        if data:
            if type(data) is not bytes:
                data = bytes(data)
            self._queued.append(data)
            self._queued_size += len(data)

    def events(self) -> list[tuple[int, bytes]]:
        """Parse every complete frame buffered so far: ``[(opcode, payload), ...]`` in order."""
        if self._failure is not None:
            raise _again(self._failure)
        if self._queued_size < self._want:
            return []
        queued = self._queued
        if self._rest:
            queued.insert(0, self._rest)
        buf = queued[0] if len(queued) == 1 else b"".join(queued)
        queued.clear()
        self._queued_size = 0

        out: list[tuple[int, bytes]] = []
        append = out.append
        n = len(buf)
        pos = 0
        fragment_op = self._fragment_op
        max_message = self._max_message
        # A frame needs at least 2 bytes; `want` is how many more the incomplete one needs.
        want = 1
        try:
            while True:
                avail = n - pos
                if avail < 2:
                    want = 2 - avail
                    break
                b0 = buf[pos]
                length = buf[pos + 1]
                # The hot path: an unfragmented, unmasked text frame of up to 125 bytes.
                if b0 == 0x81 and length <= 125 and not fragment_op and length <= max_message:
                    end = pos + 2 + length
                    if end > n:
                        want = end - n
                        break
                    append((1, buf[pos + 2 : end]))
                    pos = end
                    continue

                if b0 & 0x70:
                    raise ProtocolError(
                        f"reserved bits set ({b0 & 0x70:#04x}) with no extension negotiated"
                    )
                opcode = b0 & 0x0F
                masked = length & 0x80
                length &= 0x7F
                if opcode > 2:
                    if opcode < 8 or opcode > 10:
                        raise ProtocolError(f"reserved opcode {opcode:#x}")
                    if not b0 & 0x80:
                        raise ProtocolError(f"fragmented control frame (opcode {opcode:#x})")
                    if length == 127:  # a 64-bit length; 16-bit ones are checked below
                        raise ProtocolError(f"control frame (opcode {opcode:#x}) over 125 bytes")
                elif opcode:
                    if fragment_op:
                        raise ProtocolError(
                            f"new data frame (opcode {opcode:#x}) inside a fragmented message"
                        )
                elif not fragment_op:
                    raise ProtocolError("continuation frame without a message in progress")
                if masked and not self._allow_masked:
                    raise ProtocolError("masked frame from the server (RFC 6455 §5.1)")

                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if avail < 4:
                        want = 4 - avail
                        break
                    length = _U16.unpack_from(buf, pos + 2)[0]
                    start = pos + 4
                else:
                    if avail < 10:
                        want = 10 - avail
                        break
                    length = _U64.unpack_from(buf, pos + 2)[0]
                    if length >> 63:
                        raise ProtocolError(
                            "64-bit payload length with the most significant bit set"
                        )
                    start = pos + 10
                if opcode > 2:
                    if length > 125:  # a longer (not minimal) encoding of <= 125 is accepted
                        raise ProtocolError(
                            f"control frame (opcode {opcode:#x}) of {length} bytes, over 125"
                        )
                else:
                    total = length + self._fragment_size if fragment_op else length
                    if total > max_message:
                        raise ProtocolError(
                            f"message of {total} bytes over max_message ({max_message})",
                            CLOSE_TOO_BIG,
                        )
                if masked:
                    start += 4
                end = start + length
                if end > n:
                    want = end - n
                    break
                payload = buf[start:end]
                if masked:
                    payload = _unmask(buf[start - 4 : start], payload)
                pos = end

                if opcode >= 8:
                    if opcode == 8 and length:
                        if length == 1:
                            raise ProtocolError("close frame with a 1-byte payload")
                        code = _U16.unpack_from(payload)[0]
                        if not _valid_close_code(code):
                            raise ProtocolError(f"close frame with invalid status code {code}")
                    append((opcode, payload))
                elif b0 & 0x80:
                    if fragment_op:
                        self._fragments.append(payload)
                        append((fragment_op, b"".join(self._fragments)))
                        self._fragments = []
                        self._fragment_size = 0
                        fragment_op = 0
                    else:
                        append((opcode, payload))
                else:
                    if not fragment_op:
                        fragment_op = opcode
                    self._fragments.append(payload)
                    self._fragment_size += length
        except ProtocolError as error:
            error.events = out
            self._fail(error)
            raise
        finally:
            self._fragment_op = fragment_op
        self._rest = buf[pos:] if pos < n else b""
        self._want = want
        return out

    def _fail(self, error: ProtocolError) -> None:
        """Make the reader unusable and drop what it holds."""
        self._failure = error
        self._rest = b""
        self._queued.clear()
        self._queued_size = 0
        self._fragments = []
        self._fragment_size = 0
