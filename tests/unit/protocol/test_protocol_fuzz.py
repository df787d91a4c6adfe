"""Fuzzing the codec: whatever arrives, `decode` returns a message or raises
ProtocolError with a spec'd code, and never anything else."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kokorod.protocol import (
    BYTES_PER_SAMPLE,
    Audio,
    Cancel,
    CancelReason,
    Cancelled,
    Chunk,
    Codec,
    Config,
    Done,
    Error,
    ErrorCode,
    JsonCodec,
    MsgpackCodec,
    ProtocolError,
    Speak,
    WordEvent,
)

LIMIT = 4096
CODECS: list[Codec] = [MsgpackCodec(LIMIT), JsonCodec(LIMIT)]
MSGPACK, JSON = CODECS
CODES = {c.value for c in ErrorCode}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_decode(codec: Codec, frame: Any) -> None:
    try:
        msg = codec.decode(frame)
    except ProtocolError as err:
        event(f"{codec.encoding}: {err.code}")
        assert err.code in CODES
        assert isinstance(err.message, str) and err.message
        assert err.utterance is None or isinstance(err.utterance, str)
        # Whatever went wrong must be reportable back in both encodings.
        for c in CODECS:
            c.decode_event(c.encode(err.to_event()))
        return
    event(f"{codec.encoding}: accepted {type(msg).__name__}")
    assert isinstance(msg, (Speak, Cancel, Config))
    # Anything accepted survives a re-encode unchanged, in both encodings.
    for c in CODECS:
        assert type(c)(1 << 20).decode(c.encode_message(msg)) == msg


def check_decode_event(codec: Codec, frame: Any) -> None:
    try:
        codec.decode_event(frame)
    except ProtocolError as err:
        assert err.code in CODES


FIELDS = ["type", "utterance", "text", "voice", "speed", "final", "mode", "all", "format", "sample_rate",
          "frame_ms", "on_new_utterance"]
TYPES = st.sampled_from(["speak", "cancel", "config", "audio", "", "Speak"])
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.sampled_from(["u1", "queue", "interrupt", "pcm_s16le", "af_heart", "mulaw"])
    | st.sampled_from([0.5, 2.0, 1, 10, 1000, 8000, 24000, 48000, 129, 1e400])
)
JSON_VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
MSGPACK_VALUES = st.recursive(
    SCALARS | st.binary(max_size=20) | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.binary(max_size=4) | st.integers(-(2**63), 2**64 - 1), kids, max_size=4),
    max_leaves=12,
)


def message_maps(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """Maps shaped like client messages, with fields of arbitrary values: this is
    where the validation code gets exercised, rather than the parsers."""
    return st.builds(
        lambda t, fields, drop_type: ({} if drop_type else {"type": t}) | fields,
        TYPES, st.dictionaries(st.sampled_from(FIELDS[1:]), values, max_size=6), st.booleans(),
    )


VALID = {
    "utterance": st.text(min_size=1, max_size=128),
    "text": st.text(max_size=50),
    "voice": st.text(min_size=1, max_size=30),
    "speed": st.floats(0.5, 2.0) | st.integers(1, 2),
    "final": st.booleans(),
    "mode": st.sampled_from(["interrupt", "queue"]),
    "on_new_utterance": st.sampled_from(["interrupt", "queue"]),
    "format": st.sampled_from(["pcm_s16le", "pcm_f32le", "mulaw", "alaw"]),
    "sample_rate": st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000]),
    "frame_ms": st.integers(10, 1000),
}
SHAPES = {
    "speak": (("utterance", "text"), ("voice", "speed", "final", "mode")),
    "cancel": ((), ("utterance",)),
    "config": ((), ("voice", "speed", "format", "sample_rate", "frame_ms", "on_new_utterance")),
}


@st.composite
def nearly_valid(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A valid message with, sometimes, a field or two replaced by anything."""
    kind = draw(st.sampled_from(sorted(SHAPES)))
    required, optional = SHAPES[kind]
    msg: dict[str, Any] = draw(st.fixed_dictionaries(
        {"type": st.just(kind), **{f: VALID[f] for f in required}},
        optional={f: VALID[f] for f in optional},
    ))
    if kind == "cancel" and "utterance" not in msg:
        msg["all"] = draw(st.booleans())
    msg.update(draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=2)))
    return msg


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, strict_types=False)


# ------------------------------------------------------------- structured

@FAST
@given(message_maps(MSGPACK_VALUES))
def test_msgpack_message_shaped(obj: dict[Any, Any]) -> None:
    check_decode(MSGPACK, pack(obj))


@FAST
@given(message_maps(JSON_VALUES))
def test_json_message_shaped(obj: dict[str, Any]) -> None:
    check_decode(JSON, json.dumps(obj))


@FAST
@given(MSGPACK_VALUES)
def test_msgpack_any_value(obj: Any) -> None:
    check_decode(MSGPACK, pack(obj))


@FAST
@given(JSON_VALUES)
def test_json_any_value(obj: Any) -> None:
    check_decode(JSON, json.dumps(obj))


@FAST
@given(nearly_valid(MSGPACK_VALUES))
def test_msgpack_nearly_valid(obj: dict[str, Any]) -> None:
    check_decode(MSGPACK, pack(obj))


@FAST
@given(nearly_valid(JSON_VALUES), st.booleans())
def test_json_nearly_valid(obj: dict[str, Any], ascii_only: bool) -> None:
    check_decode(JSON, json.dumps(obj, ensure_ascii=ascii_only))


# ------------------------------------------------------------ raw frames

@FAST
@given(st.binary(max_size=200))
def test_random_bytes(frame: bytes) -> None:
    for codec in CODECS:
        check_decode(codec, frame)
        check_decode_event(codec, frame)


@FAST
@given(st.text(max_size=200))
def test_random_text(frame: str) -> None:  # includes lone surrogates
    for codec in CODECS:
        check_decode(codec, frame)
        check_decode_event(codec, frame)


@FAST
@given(nearly_valid(JSON_VALUES), st.data())
def test_truncated_and_corrupted(obj: dict[str, Any], data: st.DataObject) -> None:
    packed, text = pack(obj), json.dumps(obj, ensure_ascii=False)
    cut = data.draw(st.integers(0, len(packed)))
    check_decode(MSGPACK, packed[:cut])
    check_decode(JSON, text[: data.draw(st.integers(0, len(text)))])
    # Flip one byte: msgpack type markers and lengths become lies, UTF-8 breaks.
    if packed:
        i = data.draw(st.integers(0, len(packed) - 1))
        flipped = packed[:i] + bytes([data.draw(st.integers(0, 255))]) + packed[i + 1:]
        check_decode(MSGPACK, flipped)
        check_decode_event(MSGPACK, flipped)


@FAST
@given(st.binary(min_size=1, max_size=6), st.integers(0, 3))
def test_invalid_utf8_inside_strings(junk: bytes, where: int) -> None:
    # A msgpack str (0xa0|len) whose payload is arbitrary bytes, in every position.
    bad = bytes([0xA0 | len(junk)]) + junk
    good = {"type": "speak", "utterance": "u1", "text": "x"}
    parts = [pack(k) + pack(v) for k, v in good.items()]
    parts[min(where, 2)] = bad + pack("v") if where < 3 else parts[2][:-2] + bad
    check_decode(MSGPACK, bytes([0x83]) + b"".join(parts))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3 * LIMIT), st.sampled_from(["utterance", "text", "voice", "mode", "junk"]),
       st.sampled_from(["a", "é", "日", "\U0001F600"]))
def test_huge_strings(n: int, field: str, char: str) -> None:
    obj = {"type": "speak", "utterance": "u1", "text": "", field: char * n}
    check_decode(MSGPACK, pack(obj))
    check_decode(JSON, json.dumps(obj, ensure_ascii=False))
    check_decode(JSON, json.dumps(obj))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([0x91, 0x81, 0xDC, 0xDD, 0xDE, 0xDF]), st.integers(1, 3000), st.binary(max_size=8))
def test_hostile_container_headers(marker: int, depth: int, tail: bytes) -> None:
    # Deep nesting and collections that claim huge lengths in a handful of bytes.
    head = bytes([marker]) + (b"\xff\xff" if marker in (0xDC, 0xDE) else b"\x7f\xff\xff\xff" if marker in
                              (0xDD, 0xDF) else b"")
    check_decode(MSGPACK, head * min(depth, 1000) + tail)
    check_decode(JSON, "[" * depth + "]" * depth)
    check_decode(JSON, '{"a":' * depth + "1" + "}" * depth)


# ------------------------------------------------------------ server side

IDS = st.text(min_size=1, max_size=128)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def audio_events(draw: st.DrawFn) -> Audio:
    fmt = draw(st.sampled_from(sorted(BYTES_PER_SAMPLE)))
    n = draw(st.integers(0, 64))
    pcm = draw(st.binary(min_size=n * BYTES_PER_SAMPLE[fmt], max_size=n * BYTES_PER_SAMPLE[fmt]))
    return Audio(draw(IDS), draw(st.integers(0, 2**31)), draw(st.integers(0, 2**40)), n,
                 draw(st.sampled_from([8000, 24000, 48000])), fmt, pcm)


SERVER_EVENTS = st.one_of(
    audio_events(),
    st.builds(Chunk, IDS, st.integers(0, 2**31), st.text(), FINITE, FINITE),
    st.builds(WordEvent, IDS, st.integers(0, 2**31), st.text(), FINITE, FINITE),
    st.builds(Done, IDS, FINITE, st.integers(0, 2**40)),
    st.builds(Cancelled, IDS, st.sampled_from(list(CancelReason))),
    st.builds(Error, st.sampled_from(list(ErrorCode)), st.text(), st.none() | IDS),
)


@FAST
@given(SERVER_EVENTS)
def test_server_events_round_trip(ev: Any) -> None:
    for codec in CODECS:
        frame = codec.encode(ev)
        if isinstance(frame, bytes) and codec is JSON:
            assert (4 + int.from_bytes(frame[:4], "little")) % 4 == 0
        assert codec.decode_event(frame) == ev


EVENT_FIELDS = ["utterance", "index", "text", "start", "end", "seq", "offset", "samples", "sample_rate",
                "format", "pcm", "duration", "reason", "code", "message", "voice", "speed", "frame_ms",
                "on_new_utterance", "limits", "voices"]


@FAST
@given(st.sampled_from(["ready", "configured", "chunk", "word", "audio", "done", "cancelled", "error", "x"]),
       st.dictionaries(st.sampled_from(EVENT_FIELDS), MSGPACK_VALUES, max_size=8), st.binary(max_size=16))
def test_event_shaped_garbage(kind: str, fields: dict[str, Any], pcm: bytes) -> None:
    obj = {"type": kind, **fields}
    check_decode_event(MSGPACK, pack(obj))
    try:
        head = json.dumps({k: v for k, v in obj.items() if k != "pcm"}).encode()
    except TypeError:  # bytes or ExtType somewhere: not JSON-representable
        return
    check_decode_event(JSON, head.decode())
    check_decode_event(JSON, len(head).to_bytes(4, "little") + head + pcm)
