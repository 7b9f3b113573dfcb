"""The incremental RFC 6455 reader, on frames built by websocket-client's ABNF and by hand."""

from __future__ import annotations

import struct

import pytest
from websocket import ABNF

from bfsync._wsframes import FrameReader, ProtocolError

MASK_KEY = b"\x37\xfa\x21\x3d"


def frame(
    opcode: int,
    data: bytes = b"",
    fin: int = 1,
    mask: bool = False,
    rsv: tuple[int, int, int] = (0, 0, 0),
) -> bytes:
    """One frame as websocket-client writes it, unmasked unless ``mask``."""
    abnf = ABNF(fin, *rsv, opcode, 1 if mask else 0, data)
    abnf.get_mask_key = lambda _n: MASK_KEY
    encoded: bytes = abnf.format()
    return encoded


def parse(*chunks: bytes, **options: object) -> list[tuple[int, bytes]]:
    """Feed every chunk to a fresh reader, then return its events."""
    reader = FrameReader(**options)  # type: ignore[arg-type]
    for chunk in chunks:
        reader.feed(chunk)
    return reader.events()


def protocol_error(*chunks: bytes, **options: object) -> ProtocolError:
    """Feed every chunk to a fresh reader and return the ProtocolError events() raises."""
    with pytest.raises(ProtocolError) as caught:
        parse(*chunks, **options)
    return caught.value


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """A close frame payload: the 2-byte code, then the reason."""
    return struct.pack("!H", code) + reason


# Lengths and framing


def test_one_text_frame() -> None:
    """A small text frame comes back as (0x1, its bytes), not decoded."""
    assert [(0x1, b'{"id":1}')] == parse(frame(ABNF.OPCODE_TEXT, b'{"id":1}'))


def test_one_binary_frame() -> None:
    """A binary frame comes back as (0x2, its bytes)."""
    assert [(0x2, b"\x00\xff\x10")] == parse(frame(ABNF.OPCODE_BINARY, b"\x00\xff\x10"))


def test_text_is_not_utf8_validated() -> None:
    """Bad UTF-8 in a text frame is returned as is; the caller's JSON decode rejects it."""
    assert [(0x1, b"\xff\xfe")] == parse(frame(ABNF.OPCODE_TEXT, b"\xff\xfe"))


@pytest.mark.parametrize(
    ("size", "header"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70000, 10)],
)
def test_length_encodings_at_the_boundaries(size: int, header: int) -> None:
    """7-bit up to 125, 16-bit from 126 to 65535, 64-bit from 65536: each parses back."""
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    encoded = frame(ABNF.OPCODE_TEXT, payload)

    assert (header, [(0x1, payload)]) == (len(encoded) - size, parse(encoded))


def test_16_bit_length_that_is_not_minimal_is_accepted() -> None:
    """A 5-byte payload declared with the 16-bit form is accepted."""
    assert [(0x1, b"hello")] == parse(b"\x81\x7e\x00\x05hello")


@pytest.mark.parametrize("encoded", [b"\x81\x7e\x00\x00", b"\x82\x7f" + bytes(8)])
def test_empty_payload_with_an_extended_length_fed_byte_by_byte(encoded: bytes) -> None:
    """An empty frame declared with a 16- or 64-bit length is returned by its last byte."""
    reader = FrameReader()
    calls = []
    for i in range(len(encoded)):
        reader.feed(encoded[i : i + 1])
        calls.append(reader.events())

    assert [[]] * (len(encoded) - 1) + [[(encoded[0] & 0xF, b"")]] == calls


def test_64_bit_length_that_is_not_minimal_is_accepted() -> None:
    """A 5-byte payload declared with the 64-bit form is accepted."""
    assert [(0x2, b"hello")] == parse(b"\x82\x7f" + struct.pack("!Q", 5) + b"hello")


def test_64_bit_length_with_the_top_bit_set_is_refused_on_the_header() -> None:
    """A 64-bit length with its most significant bit set fails from the 10 header bytes alone."""
    error = protocol_error(b"\x82\x7f" + struct.pack("!Q", (1 << 63) | 5))

    assert (1002, True) == (error.close_code, "most significant bit" in str(error))


def test_several_frames_in_one_feed() -> None:
    """Frames fed together come back together, in order."""
    stream = frame(ABNF.OPCODE_TEXT, b"a") + frame(ABNF.OPCODE_BINARY, b"b" * 300)
    stream += frame(ABNF.OPCODE_PING, b"p") + frame(ABNF.OPCODE_TEXT, b"c" * 70000)

    assert [(0x1, b"a"), (0x2, b"b" * 300), (0x9, b"p"), (0x1, b"c" * 70000)] == parse(stream)


# Fragmentation


def test_three_text_fragments_are_joined() -> None:
    """Text, continuation, continuation (FIN) come back as one text message."""
    stream = (
        frame(ABNF.OPCODE_TEXT, b'{"a":', fin=0)
        + frame(ABNF.OPCODE_CONT, b"1,", fin=0)
        + frame(ABNF.OPCODE_CONT, b'"b":2}')
    )

    assert [(0x1, b'{"a":1,"b":2}')] == parse(stream)


def test_binary_fragments_are_joined_including_empty_ones() -> None:
    """Binary fragments, some empty, come back as one binary message."""
    stream = (
        frame(ABNF.OPCODE_BINARY, b"", fin=0)
        + frame(ABNF.OPCODE_CONT, b"x" * 200, fin=0)
        + frame(ABNF.OPCODE_CONT, b"")
    )

    assert [(0x2, b"x" * 200)] == parse(stream)


def test_control_frames_between_fragments_come_first_in_arrival_order() -> None:
    """Ping, pong and close between fragments come back in order, before the message."""
    stream = (
        frame(ABNF.OPCODE_TEXT, b"one ", fin=0)
        + frame(ABNF.OPCODE_PING, b"p1")
        + frame(ABNF.OPCODE_CONT, b"two ", fin=0)
        + frame(ABNF.OPCODE_PONG, b"p2")
        + frame(ABNF.OPCODE_CLOSE, close_payload(1000))
        + frame(ABNF.OPCODE_CONT, b"three")
        + frame(ABNF.OPCODE_TEXT, b"next")
    )

    assert [
        (0x9, b"p1"),
        (0xA, b"p2"),
        (0x8, b"\x03\xe8"),
        (0x1, b"one two three"),
        (0x1, b"next"),
    ] == parse(stream)


def test_control_frame_between_fragments_is_returned_before_the_message_completes() -> None:
    """A ping inside a fragmented message is an event while the message is still incomplete."""
    reader = FrameReader()
    reader.feed(frame(ABNF.OPCODE_TEXT, b"ab", fin=0) + frame(ABNF.OPCODE_PING, b"p"))
    first = reader.events()
    reader.feed(frame(ABNF.OPCODE_CONT, b"cd"))

    assert ([(0x9, b"p")], [(0x1, b"abcd")]) == (first, reader.events())


def test_continuation_without_a_message_in_progress() -> None:
    """A continuation frame with no fragmented message in progress is a protocol error."""
    error = protocol_error(frame(ABNF.OPCODE_CONT, b"x"))

    assert (1002, True) == (error.close_code, "continuation" in str(error))


def test_continuation_after_a_finished_message() -> None:
    """A continuation right after an unfragmented message is a protocol error too."""
    error = protocol_error(frame(ABNF.OPCODE_TEXT, b"a") + frame(ABNF.OPCODE_CONT, b"x"))

    assert 1002 == error.close_code


@pytest.mark.parametrize("opcode", [ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY])
def test_new_message_during_a_fragmented_one(opcode: int) -> None:
    """A text or binary frame while a fragmented message is in progress is a protocol error."""
    stream = frame(ABNF.OPCODE_TEXT, b"a", fin=0) + frame(opcode, b"b")
    error = protocol_error(stream)

    assert (1002, True) == (error.close_code, "fragmented message" in str(error))


# Masking


def test_masked_frame_is_refused() -> None:
    """A masked frame from the server is a protocol error (RFC 6455 §5.1)."""
    error = protocol_error(frame(ABNF.OPCODE_TEXT, b"hello", mask=True))

    assert (1002, True) == (error.close_code, "masked" in str(error))


def test_masked_frame_is_refused_on_its_first_two_bytes() -> None:
    """The mask bit is refused before the key and the payload arrive."""
    assert 1002 == protocol_error(frame(ABNF.OPCODE_TEXT, b"x" * 500, mask=True)[:2]).close_code


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 1000, 65536])
def test_masked_frame_is_unmasked_with_allow_masked(size: int) -> None:
    """With allow_masked=True a masked frame is accepted and unmasked."""
    payload = bytes(i * 7 % 256 for i in range(size))
    stream = frame(ABNF.OPCODE_BINARY, payload, mask=True) + frame(ABNF.OPCODE_TEXT, b"after")

    assert [(0x2, payload), (0x1, b"after")] == parse(stream, allow_masked=True)


def test_masked_control_and_fragments_with_allow_masked() -> None:
    """Masked fragments and a masked ping between them are unmasked with allow_masked=True."""
    stream = (
        frame(ABNF.OPCODE_TEXT, b"abc", fin=0, mask=True)
        + frame(ABNF.OPCODE_PING, b"ping", mask=True)
        + frame(ABNF.OPCODE_CONT, b"def", mask=True)
    )

    assert [(0x9, b"ping"), (0x1, b"abcdef")] == parse(stream, allow_masked=True)


# Reserved bits and opcodes


@pytest.mark.parametrize("rsv", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)])
def test_reserved_bits_are_refused(rsv: tuple[int, int, int]) -> None:
    """Any of RSV1-3 set, with no extension negotiated, is a protocol error."""
    error = protocol_error(frame(ABNF.OPCODE_TEXT, b"x", rsv=rsv))

    assert (1002, True) == (error.close_code, "reserved bits" in str(error))


def test_reserved_bits_are_refused_on_a_control_frame() -> None:
    """RSV1 on a ping is a protocol error as well."""
    assert 1002 == protocol_error(frame(ABNF.OPCODE_PING, b"", rsv=(1, 0, 0))).close_code


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_are_refused(opcode: int) -> None:
    """Opcodes 3-7 and 0xB-0xF are protocol errors, from the first two bytes."""
    error = protocol_error(bytes([0x80 | opcode, 0x00]))

    assert (1002, True) == (error.close_code, "reserved opcode" in str(error))


@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x8, 0x9, 0xA])
def test_known_opcodes_are_accepted(opcode: int) -> None:
    """Text, binary, close, ping and pong with an empty payload are accepted."""
    assert [(opcode, b"")] == parse(bytes([0x80 | opcode, 0x00]))


# Control frames


@pytest.mark.parametrize("opcode", [ABNF.OPCODE_PING, ABNF.OPCODE_PONG, ABNF.OPCODE_CLOSE])
def test_control_frame_of_125_bytes_is_accepted(opcode: int) -> None:
    """A control frame of exactly 125 bytes is accepted."""
    payload = close_payload(1000, b"r" * 123) if opcode == ABNF.OPCODE_CLOSE else b"p" * 125

    assert [(opcode, payload)] == parse(frame(opcode, payload))


@pytest.mark.parametrize("opcode", [ABNF.OPCODE_PING, ABNF.OPCODE_PONG, ABNF.OPCODE_CLOSE])
def test_control_frame_over_125_bytes_is_refused_on_the_header(opcode: int) -> None:
    """A 126-byte control frame fails from its 4 header bytes, before the payload."""
    error = protocol_error(frame(opcode, b"\x03\xe8" + b"p" * 124)[:4])

    assert (1002, True) == (error.close_code, "over 125" in str(error))


def test_control_frame_with_a_64_bit_length_is_refused_on_two_bytes() -> None:
    """A ping declaring a 64-bit length fails from its first two bytes."""
    assert 1002 == protocol_error(b"\x89\x7f").close_code


def test_control_frame_with_a_non_minimal_length_of_at_most_125_is_accepted() -> None:
    """A 4-byte ping declared with the 16-bit form is accepted, like data frames."""
    assert [(0x9, b"ping")] == parse(b"\x89\x7e\x00\x04ping")


@pytest.mark.parametrize("opcode", [ABNF.OPCODE_PING, ABNF.OPCODE_PONG, ABNF.OPCODE_CLOSE])
def test_fragmented_control_frame_is_refused(opcode: int) -> None:
    """A control frame with FIN=0 is a protocol error."""
    error = protocol_error(frame(opcode, b"", fin=0))

    assert (1002, True) == (error.close_code, "fragmented control" in str(error))


@pytest.mark.parametrize(
    "payload",
    [b"", close_payload(1000), close_payload(1001, b"going away"), close_payload(4999, b"x")],
)
def test_close_payload_shapes(payload: bytes) -> None:
    """Close frames with no payload, a code, or a code and a reason come back raw."""
    assert [(0x8, payload)] == parse(frame(ABNF.OPCODE_CLOSE, payload))


def test_close_with_a_one_byte_payload_is_refused() -> None:
    """A close frame with a 1-byte payload is a protocol error."""
    error = protocol_error(b"\x88\x01\x03")

    assert (1002, True) == (error.close_code, "1-byte" in str(error))


@pytest.mark.parametrize("code", [1000, 1003, 1007, 1011, 1014, 3000, 4999])
def test_close_codes_allowed_on_the_wire(code: int) -> None:
    """Close codes RFC 6455 §7.4 allows on the wire are accepted."""
    assert [(0x8, close_payload(code))] == parse(frame(ABNF.OPCODE_CLOSE, close_payload(code)))


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535])
def test_close_codes_not_allowed_on_the_wire(code: int) -> None:
    """Reserved, local-only and out-of-range close codes are protocol errors."""
    error = protocol_error(b"\x88\x02" + close_payload(code))

    assert (1002, True) == (error.close_code, str(code) in str(error))


def test_close_reason_is_not_utf8_validated() -> None:
    """A close reason that is not UTF-8 is returned raw."""
    assert [(0x8, close_payload(1000, b"\xff"))] == parse(
        b"\x88\x03" + close_payload(1000, b"\xff")
    )


# max_message


def test_single_frame_at_max_message_is_accepted() -> None:
    """A frame of exactly max_message bytes is accepted."""
    assert [(0x1, b"x" * 300)] == parse(frame(ABNF.OPCODE_TEXT, b"x" * 300), max_message=300)


@pytest.mark.parametrize(("size", "header"), [(100, 2), (301, 4), (70000, 10)])
def test_single_frame_over_max_message_fails_on_its_header(size: int, header: int) -> None:
    """A frame over max_message fails with 1009 once its header is in, before any payload."""
    error = protocol_error(frame(ABNF.OPCODE_BINARY, b"x" * size)[:header], max_message=99)

    assert (1009, True) == (error.close_code, "max_message" in str(error))


def test_small_text_frame_over_a_tiny_max_message() -> None:
    """A 7-bit text frame over a max_message under 125 fails with 1009 too."""
    assert 1009 == protocol_error(b"\x81\x05", max_message=4).close_code


def test_fragments_summing_to_max_message_are_accepted() -> None:
    """Fragments adding up to exactly max_message are accepted."""
    stream = frame(ABNF.OPCODE_TEXT, b"a" * 60, fin=0) + frame(ABNF.OPCODE_CONT, b"b" * 40)

    assert [(0x1, b"a" * 60 + b"b" * 40)] == parse(stream, max_message=100)


def test_fragments_over_max_message_fail_on_the_header_of_the_fragment_that_crosses() -> None:
    """The continuation that takes the message over max_message fails on its header alone."""
    stream = frame(ABNF.OPCODE_TEXT, b"a" * 60, fin=0) + frame(ABNF.OPCODE_CONT, b"b" * 40, fin=0)
    stream += frame(ABNF.OPCODE_CONT, b"c" * 200)[:4]
    error = protocol_error(stream, max_message=200)

    assert (1009, True) == (error.close_code, "300 bytes" in str(error))


def test_control_frames_are_not_counted_in_max_message() -> None:
    """A ping inside a fragmented message does not count towards its size."""
    stream = (
        frame(ABNF.OPCODE_TEXT, b"a" * 5, fin=0)
        + frame(ABNF.OPCODE_PING, b"p" * 100)
        + frame(ABNF.OPCODE_CONT, b"b" * 5)
    )

    assert [(0x9, b"p" * 100), (0x1, b"a" * 5 + b"b" * 5)] == parse(stream, max_message=10)


def test_negative_max_message_is_a_value_error() -> None:
    """max_message must not be negative."""
    with pytest.raises(ValueError, match="max_message"):
        FrameReader(max_message=-1)


# Incremental feeding


MIXED_EVENTS = [
    (0x1, b'{"id":"1"}'),
    (0x2, bytes(range(256))),
    (0x9, b"ping"),
    (0xA, b""),
    (0x1, b"f1" + b"f2" * 100 + b"f3"),
    (0x1, b"z" * 65536),
    (0x8, b"\x03\xe8bye"),
]


def mixed_stream() -> bytes:
    """Every kind of frame and length, fragments with controls between them."""
    return (
        frame(ABNF.OPCODE_TEXT, b'{"id":"1"}')
        + frame(ABNF.OPCODE_BINARY, bytes(range(256)))
        + frame(ABNF.OPCODE_TEXT, b"f1", fin=0)
        + frame(ABNF.OPCODE_PING, b"ping")
        + frame(ABNF.OPCODE_CONT, b"f2" * 100, fin=0)
        + frame(ABNF.OPCODE_PONG, b"")
        + frame(ABNF.OPCODE_CONT, b"f3")
        + frame(ABNF.OPCODE_TEXT, b"z" * 65536)
        + frame(ABNF.OPCODE_CLOSE, close_payload(1000, b"bye"))
    )


def test_byte_by_byte_gives_the_same_events_as_one_feed() -> None:
    """Feeding one byte at a time, with events() after each, gives the same events."""
    stream = mixed_stream()
    reader = FrameReader()
    events: list[tuple[int, bytes]] = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        events.extend(reader.events())

    assert MIXED_EVENTS == parse(stream)
    assert MIXED_EVENTS == events


def test_byte_by_byte_feeding_then_one_events_call() -> None:
    """Feeding one byte at a time and calling events() once gives the same events."""
    stream = mixed_stream()

    assert MIXED_EVENTS == parse(*(stream[i : i + 1] for i in range(len(stream))))


def test_incomplete_frame_is_kept_until_complete() -> None:
    """A frame split over feeds is returned only once complete, and only once."""
    encoded = frame(ABNF.OPCODE_TEXT, b"x" * 1000)
    reader = FrameReader()
    calls = []
    for start in range(0, len(encoded), 100):
        reader.feed(encoded[start : start + 100])
        calls.append(reader.events())

    assert [[]] * 10 + [[(0x1, b"x" * 1000)]] == calls
    assert [] == reader.events()


@pytest.mark.parametrize("size", [10, 125, 126, 300, 70000])
@pytest.mark.parametrize("cut", [1, 2, 3, 5, 11])
def test_frame_split_in_two_is_returned_when_its_last_byte_arrives(size: int, cut: int) -> None:
    """A frame whose last `cut` bytes arrive later is returned by the events() after them."""
    encoded = frame(ABNF.OPCODE_TEXT, b"y" * size)
    reader = FrameReader()
    reader.feed(encoded[:-cut])
    before = reader.events()
    reader.feed(encoded[-cut:])

    assert ([], [(0x1, b"y" * size)], 0) == (before, reader.events(), reader.buffered)


def test_bytearray_and_memoryview_are_accepted() -> None:
    """feed() accepts any bytes-like object and events hold bytes."""
    encoded = frame(ABNF.OPCODE_TEXT, b"hello")
    events = parse(bytearray(encoded[:3]), memoryview(encoded[3:]))  # type: ignore[arg-type]

    assert ([(0x1, b"hello")], bytes) == (events, type(events[0][1]))


def test_no_data_no_events() -> None:
    """A fresh reader, or one fed empty bytes, has no events and nothing buffered."""
    reader = FrameReader()
    reader.feed(b"")

    assert ([], 0) == (reader.events(), reader.buffered)


def test_buffered_counts_bytes_not_yet_a_complete_frame() -> None:
    """buffered counts fed bytes until they form a complete frame, then drops them."""
    first = frame(ABNF.OPCODE_TEXT, b"a" * 10)
    second = frame(ABNF.OPCODE_TEXT, b"b" * 300)
    reader = FrameReader()
    seen = []
    reader.feed(first + second[:3])
    seen.append(reader.buffered)
    reader.events()
    seen.append(reader.buffered)
    reader.feed(second[3:100])
    seen.append(reader.buffered)
    reader.events()
    seen.append(reader.buffered)
    reader.feed(second[100:])
    reader.events()
    seen.append(reader.buffered)

    assert [len(first) + 3, 3, 100, 100, 0] == seen


def test_buffered_does_not_count_completed_fragments() -> None:
    """Complete fragments of an unfinished message are not counted in buffered."""
    reader = FrameReader()
    reader.feed(frame(ABNF.OPCODE_TEXT, b"a" * 50, fin=0) + b"\x80")
    reader.events()

    assert 1 == reader.buffered


# After an error


def test_reader_is_unusable_after_an_error() -> None:
    """After a ProtocolError every events() and feed() raises again, with the same code."""
    reader = FrameReader(max_message=10)
    reader.feed(frame(ABNF.OPCODE_TEXT, b"x" * 11))
    with pytest.raises(ProtocolError):
        reader.events()

    with pytest.raises(ProtocolError, match="unusable") as again:
        reader.events()
    with pytest.raises(ProtocolError, match="unusable") as fed:
        reader.feed(frame(ABNF.OPCODE_TEXT, b"ok"))
    assert (1009, 1009, 0) == (again.value.close_code, fed.value.close_code, reader.buffered)


def test_events_before_the_violation_are_carried_by_the_error() -> None:
    """The valid events parsed before the violation are on the error's events attribute."""
    stream = frame(ABNF.OPCODE_TEXT, b"reply") + frame(ABNF.OPCODE_PING, b"p")
    stream += frame(ABNF.OPCODE_TEXT, b"bad", rsv=(1, 0, 0))

    assert [(0x1, b"reply"), (0x9, b"p")] == protocol_error(stream).events


def test_error_raised_again_carries_no_events() -> None:
    """The error raised by later calls has an empty events list."""
    reader = FrameReader()
    reader.feed(frame(ABNF.OPCODE_TEXT, b"ok") + b"\x83\x00")
    with pytest.raises(ProtocolError):
        reader.events()
    with pytest.raises(ProtocolError) as again:
        reader.events()

    assert [] == again.value.events
