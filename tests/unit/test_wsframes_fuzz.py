"""Property tests of the frame reader: random valid streams split anywhere, random bytes."""

from __future__ import annotations

from typing import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websocket import ABNF
from websocket._abnf import continuous_frame, frame_buffer

from bfsync._wsframes import FrameReader, ProtocolError

Event = tuple[int, bytes]

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTROL_OPCODES = [ABNF.OPCODE_PING, ABNF.OPCODE_PONG]


def encode(fin: int, opcode: int, data: bytes) -> bytes:
    """One unmasked frame, as websocket-client writes it."""
    encoded: bytes = ABNF(fin, 0, 0, 0, opcode, 0, data).format()
    return encoded


# Mostly small payloads, sometimes right at a length boundary.
payloads = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([125, 126, 127, 65535, 65536]).map(lambda n: b"\xa5" * n),
)
control = st.tuples(st.sampled_from(CONTROL_OPCODES), st.binary(max_size=125))
controls = st.lists(control, max_size=2)


# An expected event and the stream offset at which its last frame is complete.
Expected = tuple[Event, int]


@st.composite
def messages(draw: st.DrawFn, offset: int) -> tuple[bytes, list[Expected]]:
    """One text/binary message, randomly fragmented, with pings/pongs between fragments."""
    opcode = draw(st.sampled_from([ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY]))
    payload = draw(payloads)
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    bounds = [0, *cuts, len(payload)]
    pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:])]
    stream = b""
    expected: list[Expected] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        stream += encode(int(last), opcode if index == 0 else ABNF.OPCODE_CONT, piece)
        if not last:
            for control_opcode, data in draw(controls):
                stream += encode(1, control_opcode, data)
                expected.append(((control_opcode, data), offset + len(stream)))
    expected.append(((opcode, payload), offset + len(stream)))
    return stream, expected


@st.composite
def valid_streams(draw: st.DrawFn) -> tuple[bytes, list[Expected]]:
    """Messages and pings/pongs between them, maybe a close at the end; and what they give."""
    stream = b""
    expected: list[Expected] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            part, more = draw(messages(len(stream)))
        else:
            opcode, data = draw(control)
            part = encode(1, opcode, data)
            more = [((opcode, data), len(stream) + len(part))]
        stream += part
        expected.extend(more)
    if draw(st.booleans()):
        reason = draw(st.sampled_from([b"", b"\x03\xe8", b"\x03\xe9going away", b"\x0f\xa0x"]))
        stream += encode(1, ABNF.OPCODE_CLOSE, reason)
        expected.append(((ABNF.OPCODE_CLOSE, reason), len(stream)))
    return stream, expected


def split(draw: Callable[..., object], stream: bytes) -> list[bytes]:
    """Cut the stream at random points into chunks (some may be a single byte)."""
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert isinstance(cuts, list)
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


@FUZZ
@given(valid_streams(), st.data())
def test_valid_stream_split_anywhere_gives_the_expected_events(
    case: tuple[bytes, list[Expected]], data: st.DataObject
) -> None:
    """Split into random chunks, every events() call returns exactly the newly complete events."""
    stream, expected = case
    reader = FrameReader()
    events: list[Event] = []
    fed = 0
    for chunk in split(data.draw, stream):
        reader.feed(chunk)
        fed += len(chunk)
        if data.draw(st.booleans()):
            events.extend(reader.events())
            assert [event for event, end in expected if end <= fed] == events
    events.extend(reader.events())

    assert [event for event, _ in expected] == events
    assert 0 == reader.buffered


@FUZZ
@given(valid_streams(), st.data())
def test_valid_stream_over_max_message_fails_with_1009(
    case: tuple[bytes, list[Expected]], data: st.DataObject
) -> None:
    """With max_message one under the largest message, the stream fails with 1009 on it."""
    stream, expected = case
    largest = max((len(payload) for (opcode, payload), _ in expected if opcode < 3), default=0)
    reader = FrameReader(max_message=largest - 1 if largest else 0)
    events: list[Event] = []
    try:
        for chunk in split(data.draw, stream):
            reader.feed(chunk)
            events.extend(reader.events())
    except ProtocolError as error:
        assert 1009 == error.close_code
        events.extend(error.events)
        assert [event for event, _ in expected][: len(events)] == events
        assert all(len(payload) < largest for opcode, payload in events if opcode < 3)
    else:
        assert 0 == largest
        assert [event for event, _ in expected] == events


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        valid_streams().map(lambda case: case[0][:400]),
    ),
    st.lists(st.tuples(st.integers(0, 399), st.integers(0, 255)), max_size=4),
    st.integers(0, 400),
    st.booleans(),
    st.data(),
)
def test_random_bytes_give_events_or_a_protocol_error(
    stream: bytes,
    flips: list[tuple[int, int]],
    max_message: int,
    allow_masked: bool,
    data: st.DataObject,
) -> None:
    """Random (or corrupted valid) bytes give events or ProtocolError, never anything else."""
    corrupted = bytearray(stream)
    for position, byte in flips:
        if position < len(corrupted):
            corrupted[position] = byte
    reader = FrameReader(max_message=max_message, allow_masked=allow_masked)
    try:
        for chunk in split(data.draw, bytes(corrupted)):
            reader.feed(chunk)
            for opcode, payload in reader.events():
                assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA)
                assert isinstance(payload, bytes)
                assert opcode > 2 or len(payload) <= max_message
    except ProtocolError as error:
        assert error.close_code in (1002, 1009)
        assert str(error)
        assert reader.buffered == 0
        try:
            reader.events()
        except ProtocolError as again:
            assert error.close_code == again.close_code
        else:
            raise AssertionError("events() after a ProtocolError did not raise")
    else:
        assert reader.buffered <= len(corrupted)


def websocket_client_events(stream: bytes, chunks: list[bytes]) -> list[Event]:
    """Parse with websocket-client's frame_buffer + continuous_frame, as recv_data_frame does."""
    pending = list(reversed(chunks))

    def recv(size: int) -> bytes:
        chunk = pending.pop()
        if len(chunk) > size:
            pending.append(chunk[size:])
            chunk = chunk[:size]
        return chunk

    frames = frame_buffer(recv, True)
    messages = continuous_frame(False, True)
    events: list[Event] = []
    while pending:
        frame = frames.recv_frame()
        if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
            messages.validate(frame)
            messages.add(frame)
            if messages.is_fire(frame):
                opcode, whole = messages.extract(frame)
                events.append((opcode, whole.data))
        else:
            assert isinstance(frame.data, bytes)
            events.append((frame.opcode, frame.data))
    return events


@FUZZ
@given(valid_streams(), st.data())
def test_same_messages_as_websocket_client(
    case: tuple[bytes, list[Expected]], data: st.DataObject
) -> None:
    """A valid stream gives the same messages here as through websocket-client's reader."""
    stream, _ = case
    chunks = [chunk for chunk in split(data.draw, stream) if chunk]
    reader = FrameReader()
    for chunk in chunks:
        reader.feed(chunk)

    assert websocket_client_events(stream, chunks) == reader.events()
