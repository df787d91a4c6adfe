"""Protocol v1 codec: round trips, every error code, JSON-mode audio framing."""

from __future__ import annotations

import json
import re
import struct
from array import array
from pathlib import Path
from typing import Any

import msgpack
import pytest

from kokorod.protocol import (
    FORMATS,
    SAMPLE_RATES,
    SUBPROTOCOLS,
    Audio,
    Cancel,
    Cancelled,
    CancelReason,
    Chunk,
    Codec,
    Config,
    Configured,
    Done,
    Error,
    ErrorCode,
    JsonCodec,
    LanguageInfo,
    Limits,
    MsgpackCodec,
    ProtocolError,
    Ready,
    Speak,
    Warning,
    WarningCode,
    WordEvent,
    codec_for_subprotocol,
)

SPEC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
CODECS = [MsgpackCodec, JsonCodec]


@pytest.fixture(params=CODECS, ids=lambda c: c.encoding)
def codec(request: pytest.FixtureRequest) -> Codec:
    return request.param(max_message_bytes=4096)


def frame_of(codec: Codec, obj: Any) -> bytes | str:
    """Any value as a frame of the codec's client encoding (bypassing validation)."""
    if codec.encoding == "msgpack":
        return msgpack.packb(obj, use_bin_type=True)
    return json.dumps(obj)


def decode_error(codec: Codec, frame: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        codec.decode(frame)
    return info.value


LIMITS = Limits(max_text_chars=100000, max_message_bytes=262144, max_utterances=16, messages_per_s=200)
READY = Ready(version="0.1.0", session="c9f0", encoding="msgpack", sample_rate=24000, format="pcm_s16le",
              frame_ms=100, voice="af_heart", speed=1.0, voices=("af_alloy", "af_heart"), limits=LIMITS)
PCM = bytes(range(256)) * 19  # 4864 bytes: valid for every format's sample width
EVENTS = [
    READY,
    Configured(voice="af_bella", speed=1.1, format="pcm_f32le", sample_rate=16000, frame_ms=40,
               on_new_utterance="queue"),
    Chunk(utterance="u1", index=0, text="Hello there.", start=0.0, end=1.12),
    WordEvent(utterance="u1", index=3, text="$3.50", start=0.1, end=0.41),
    WordEvent(utterance="ü✓", index=0, text="naïve — 日本", start=0.0, end=0.5),
    Audio(utterance="u1", seq=0, offset=0, samples=2432, sample_rate=24000, format="pcm_s16le", pcm=PCM),
    Audio(utterance="u1", seq=7, offset=99, samples=1216, sample_rate=48000, format="pcm_f32le", pcm=PCM),
    Audio(utterance="u2", seq=1, offset=5, samples=4864, sample_rate=8000, format="mulaw", pcm=PCM),
    Audio(utterance="u2", seq=1, offset=5, samples=0, sample_rate=8000, format="alaw", pcm=b""),
    Done(utterance="u1", duration=3.52, samples=84480),
    Cancelled(utterance="u1", reason=CancelReason.BARGE_IN),
    Error(code=ErrorCode.UNKNOWN_VOICE, message="unknown voice 'xx'", utterance="u1"),
    Error(code=ErrorCode.RATE_LIMITED, message="slow down"),
    Warning(utterance="u1", code="unspeakable", message="not spoken", text="😀"),
    Configured(voice="ef_dora", speed=1.0, format="pcm_s16le", sample_rate=24000, frame_ms=100,
               on_new_utterance="interrupt", lang="es"),
    Ready(version="0.1.0", session="c9f0", encoding="msgpack", sample_rate=24000, format="pcm_s16le",
          frame_ms=100, voice="af_heart", speed=1.0, voices=("ef_dora", "jf_alpha"), limits=LIMITS, lang="es",
          languages=(LanguageInfo("es", "Spanish", ("ef_dora",)),
                     LanguageInfo("ja", "Japanese", ("jf_alpha",), available=False, fix="pip install x"))),
]
MESSAGES = [
    Speak(utterance="u1", text="Hello there. How"),
    Speak(utterance="x" * 128, text="", voice="af_heart:0.7,af_bella:0.3", speed=0.5, final=True, mode="queue"),
    Speak(utterance="é", text="  Hel\n", speed=2.0, mode="interrupt"),
    Cancel(),
    Cancel(utterance="u1"),
    Cancel(all=True),
    Config(),
    Config(voice="af_bella", speed=1.1, format="alaw", sample_rate=44100, frame_ms=1000, on_new_utterance="queue"),
    Config(frame_ms=10, sample_rate=8000, format="pcm_f32le"),
    Speak(utterance="u1", text="¿Qué tal?", voice="ef_dora", lang="es"),
    Config(lang="ja"),
    Config(lang=""),
]


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("message", MESSAGES, ids=repr)
def test_client_message_round_trip(codec: Codec, message: Any) -> None:
    frame = codec.encode_message(message)
    assert isinstance(frame, bytes if codec.encoding == "msgpack" else str)
    assert codec.decode(frame) == message


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_server_event_round_trip(codec: Codec, event: Any) -> None:
    frame = codec.encode(event)
    binary = codec.encoding == "msgpack" or isinstance(event, Audio)
    assert isinstance(frame, bytes if binary else str)
    assert codec.decode_event(frame) == event


def test_to_dict_wire_fields() -> None:
    assert Error("bad_message", "x").to_dict() == {"type": "error", "code": "bad_message", "message": "x"}
    assert Error("engine_error", "x", "u").to_dict()["utterance"] == "u"
    assert Done("u1", 3.52, 84480).to_dict() == {"type": "done", "utterance": "u1", "duration": 3.52,
                                                  "samples": 84480}
    assert Cancelled("u1", CancelReason.CANCEL).to_dict() == {"type": "cancelled", "utterance": "u1",
                                                              "reason": "cancel"}
    ready = READY.to_dict()
    assert set(ready) == {"type", "protocol", "version", "session", "encoding", "sample_rate", "format",
                          "frame_ms", "voice", "speed", "voices", "formats", "sample_rates", "limits",
                          "languages", "lang"}
    assert ready["protocol"] == "kokorod.v1"
    assert ready["formats"] == list(FORMATS) and ready["sample_rates"] == list(SAMPLE_RATES)
    assert set(ready["limits"]) == {"max_text_chars", "max_message_bytes", "max_utterances", "messages_per_s",
                                    "speed_min", "speed_max"}
    audio = EVENTS[5]
    assert audio.to_dict() == {**audio.header(), "pcm": PCM}
    assert "pcm" not in audio.header()


def test_msgpack_audio_carries_pcm_as_bin() -> None:
    frame = MsgpackCodec().encode(EVENTS[5])
    raw = msgpack.unpackb(frame, raw=True)  # raw=True would turn str into bytes too, so check the type byte
    assert raw[b"pcm"] == PCM
    assert msgpack.unpackb(frame)["pcm"] == PCM
    assert b"\xc5" + struct.pack(">H", len(PCM)) + PCM in frame  # bin16 marker, not str


@pytest.mark.parametrize("make", [bytes, bytearray, memoryview])
def test_audio_pcm_buffer_types_encode_identically(codec: Codec, make: Any) -> None:
    ref = codec.encode(EVENTS[5])
    event = Audio("u1", 0, 0, 2432, 24000, "pcm_s16le", make(PCM))
    assert codec.encode(event) == ref


# ------------------------------------------------------- JSON audio framing

@pytest.mark.parametrize("id_len", range(1, 9))  # shifts the header length through all 4 residues
def test_json_audio_frame_as_a_browser_reads_it(id_len: int) -> None:
    samples = array("f", [0.0, 0.5, -0.25, 1.0, -1.0])
    event = Audio("u" * id_len, 3, 4800, len(samples), 24000, "pcm_f32le", samples.tobytes())
    buf = JsonCodec().encode(event)
    assert isinstance(buf, bytes)
    (h,) = struct.unpack("<I", buf[:4])  # DataView.getUint32(0, true)
    assert (4 + h) % 4 == 0
    head_text = buf[4:4 + h].decode("utf-8")  # TextDecoder
    assert head_text == head_text.rstrip(" ") + " " * (len(head_text) - len(head_text.rstrip(" ")))
    assert len(head_text) - len(head_text.rstrip(" ")) < 4
    assert json.loads(head_text) == event.header()  # JSON.parse tolerates the padding
    pcm = memoryview(buf)[4 + h:]
    assert pcm.tobytes() == samples.tobytes()
    assert pcm.cast("f").tolist() == samples.tolist()  # Float32Array view over the same buffer


def test_json_audio_header_is_ascii_even_for_unicode_ids() -> None:
    buf = JsonCodec().encode(Audio("日本", 0, 0, 1, 24000, "pcm_s16le", b"\x01\x02"))
    (h,) = struct.unpack("<I", buf[:4])
    assert json.loads(buf[4:4 + h].decode())["utterance"] == "日本"
    assert buf[4 + h:] == b"\x01\x02"


def test_json_events_are_text_frames() -> None:
    frame = JsonCodec().encode(EVENTS[2])
    assert isinstance(frame, str) and json.loads(frame) == EVENTS[2].to_dict()


# ------------------------------------------------------------- lenient input

def test_unknown_fields_and_nulls_are_ignored(codec: Codec) -> None:
    msg = {"type": "speak", "utterance": "u1", "text": "hi", "voice": None, "speed": None, "final": None,
           "mode": None, "future": {"nested": [1, 2, {"x": None}]}, "extra": "field"}
    assert codec.decode(frame_of(codec, msg)) == Speak("u1", "hi")
    assert codec.decode(frame_of(codec, {"type": "cancel", "all": False, "utterance": None})) == Cancel()
    assert codec.decode(frame_of(codec, {"type": "config", "voice": None, "x": 1})) == Config()


def test_int_speed_becomes_float(codec: Codec) -> None:
    msg = codec.decode(frame_of(codec, {"type": "speak", "utterance": "u", "text": "", "speed": 2}))
    assert isinstance(msg, Speak) and msg.speed == 2.0 and type(msg.speed) is float


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_rate_accepted(codec: Codec, rate: int, fmt: str) -> None:
    assert codec.decode(frame_of(codec, {"type": "config", "sample_rate": rate, "format": fmt})) == Config(
        format=fmt, sample_rate=rate)  # type: ignore[arg-type]


def test_message_at_exact_limit_is_accepted(codec: Codec) -> None:
    base = frame_of(codec, {"type": "speak", "utterance": "u", "text": ""})
    pad = 4096 - len(base) - (2 if codec.encoding == "msgpack" else 0)  # str8 -> str16 header grows by 2
    frame = frame_of(codec, {"type": "speak", "utterance": "u", "text": "a" * pad})
    assert len(frame) == 4096
    assert codec.decode(frame) == Speak("u", "a" * pad)
    too_big = frame_of(codec, {"type": "speak", "utterance": "u", "text": "a" * (pad + 1)})
    assert decode_error(codec, too_big).code == ErrorCode.MESSAGE_TOO_LARGE


# ------------------------------------------------------------------- errors

def test_wrong_frame_kind(codec: Codec) -> None:
    other = json.dumps({"type": "cancel"}) if codec.encoding == "msgpack" else msgpack.packb({"type": "cancel"})
    assert decode_error(codec, other).code == ErrorCode.BAD_MESSAGE
    for junk in (None, 42, ["x"], object()):
        assert decode_error(codec, junk).code == ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("frame", [
    b"\xc1", b"", b"\x82\xa4type", b"\x81\xa4type\xa6cancel\x00",  # never-used byte, empty, truncated, extra data
    b"\x81\xa4type\xa2\xff\xfe",  # invalid UTF-8 in a str
    b"\x81\xa4type\xd9\x03\xed\xa0\x80",  # CESU/surrogate bytes are invalid UTF-8 too
    msgpack.packb(["type", "cancel"]), msgpack.packb(7), msgpack.packb("cancel"), msgpack.packb(None),
    msgpack.packb({"type": "cancel", "x": msgpack.ExtType(1, b"ab")}),
    msgpack.packb({"type": "cancel", "x": msgpack.Timestamp(1, 0)}),
    msgpack.packb({b"type": "cancel"}), msgpack.packb({1: "cancel"}),
    msgpack.packb({"type": "cancel", "x": [{"ok": 1}, {b"bytes": 1}]}),
    b"\x81\xa4type\xdd\x7f\xff\xff\xff",  # array claiming 2**31 elements: refused before allocating
    b"\x91" * 2000 + b"\xc0",  # nested deeper than msgpack's stack
])
def test_msgpack_bad_message(frame: bytes) -> None:
    assert decode_error(MsgpackCodec(), frame).code == ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("frame", [
    "", "{", '{"type": "cancel"} x', "[]", '"cancel"', "null", "1", '{"type": NaN}', '{"speed": Infinity}',
    '{"type": "cancel", "n": ' + "9" * 100 + "}", "[" * 100000 + "]" * 100000, "\ufeff{}", "{'type': 1}",
])
def test_json_bad_message(frame: str) -> None:
    assert decode_error(JsonCodec(max_message_bytes=1 << 20), frame).code == ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("msg", [
    {}, {"type": None}, {"type": 5}, {"type": ["speak"]}, {"type": "SPEAK"}, {"type": "audio"},
    {"type": "ready"}, {"type": "speak "}, {"utterance": "u1", "text": "x"},
])
def test_unknown_type(codec: Codec, msg: dict[str, Any]) -> None:
    err = decode_error(codec, frame_of(codec, msg))
    assert err.code == ErrorCode.UNKNOWN_TYPE
    assert err.utterance == msg.get("utterance")


SPEAK = {"type": "speak", "utterance": "u1", "text": "hi"}
INVALID = [
    # (message, field named in the error, utterance carried by the error)
    ({"type": "speak", "text": "hi"}, "utterance", None),
    ({**SPEAK, "utterance": ""}, "utterance", None),
    ({**SPEAK, "utterance": "x" * 129}, "utterance", None),
    ({**SPEAK, "utterance": 12}, "utterance", None),
    ({**SPEAK, "utterance": True}, "utterance", None),
    ({"type": "speak", "utterance": "u1"}, "text", "u1"),
    ({**SPEAK, "text": None}, "text", "u1"),
    ({**SPEAK, "text": 3}, "text", "u1"),
    ({**SPEAK, "text": ["hi"]}, "text", "u1"),
    ({**SPEAK, "voice": ""}, "voice", "u1"),
    ({**SPEAK, "voice": 1}, "voice", "u1"),
    ({**SPEAK, "voice": "a" * 257}, "voice", "u1"),
    ({**SPEAK, "speed": "1.0"}, "speed", "u1"),
    ({**SPEAK, "speed": True}, "speed", "u1"),
    ({**SPEAK, "speed": 0.49}, "speed", "u1"),
    ({**SPEAK, "speed": 2.01}, "speed", "u1"),
    ({**SPEAK, "speed": 0}, "speed", "u1"),
    ({**SPEAK, "speed": 10**18}, "speed", "u1"),
    ({**SPEAK, "speed": 1e400}, "speed", "u1"),  # inf; json.dumps writes Infinity, which is itself rejected
    ({**SPEAK, "final": "yes"}, "final", "u1"),
    ({**SPEAK, "final": 1}, "final", "u1"),
    ({**SPEAK, "mode": "barge_in"}, "mode", "u1"),
    ({**SPEAK, "mode": 0}, "mode", "u1"),
    ({**SPEAK, "admission": "wait"}, "admission", "u1"),
    ({**SPEAK, "admission": True}, "admission", "u1"),
    ({**SPEAK, "priority": "low"}, "priority", "u1"),
    ({**SPEAK, "priority": 1}, "priority", "u1"),
    ({"type": "cancel", "utterance": 5}, "utterance", None),
    ({"type": "cancel", "utterance": ""}, "utterance", None),
    ({"type": "cancel", "all": "true"}, "all", None),
    ({"type": "cancel", "all": 1}, "all", None),
    ({"type": "cancel", "all": True, "utterance": "u9"}, "all", "u9"),
    ({"type": "config", "format": "wav"}, "format", None),
    ({"type": "config", "format": 1}, "format", None),
    ({"type": "config", "sample_rate": 12345}, "sample_rate", None),
    ({"type": "config", "sample_rate": 16000.0}, "sample_rate", None),
    ({"type": "config", "sample_rate": True}, "sample_rate", None),
    ({"type": "config", "sample_rate": "16000"}, "sample_rate", None),
    ({"type": "config", "frame_ms": 9}, "frame_ms", None),
    ({"type": "config", "frame_ms": 1001}, "frame_ms", None),
    ({"type": "config", "frame_ms": 40.0}, "frame_ms", None),
    ({"type": "config", "frame_ms": False}, "frame_ms", None),
    ({"type": "config", "speed": 3}, "speed", None),
    ({"type": "config", "speed": [1]}, "speed", None),
    ({"type": "config", "voice": {}}, "voice", None),
    ({"type": "config", "on_new_utterance": "drop"}, "on_new_utterance", None),
    ({"type": "config", "utterance": "u1", "frame_ms": 0}, "frame_ms", None),  # config concerns no utterance
]


@pytest.mark.parametrize(("msg", "field", "utterance"), INVALID, ids=lambda v: str(v)[:60])
def test_invalid_field(codec: Codec, msg: dict[str, Any], field: str, utterance: str | None) -> None:
    frame = frame_of(codec, msg)
    err = decode_error(codec, frame)
    expected = ErrorCode.BAD_MESSAGE if "Infinity" in str(frame) else ErrorCode.INVALID_FIELD
    assert err.code == expected, err.message
    if expected == ErrorCode.INVALID_FIELD:
        assert f"'{field}'" in err.message
        assert err.utterance == utterance


def test_msgpack_nan_and_inf_speed() -> None:
    codec = MsgpackCodec()
    for value in (float("nan"), float("inf"), float("-inf")):
        err = decode_error(codec, msgpack.packb({**SPEAK, "speed": value}))
        assert (err.code, err.utterance) == (ErrorCode.INVALID_FIELD, "u1")
    err = decode_error(codec, msgpack.packb({**SPEAK, "text": b"hi"}))  # bin is not str
    assert err.code == ErrorCode.INVALID_FIELD and "'text'" in err.message


def test_json_lone_surrogates_rejected() -> None:
    codec = JsonCodec()
    err = decode_error(codec, '{"type":"speak","utterance":"u1","text":"a\\ud800b"}')
    assert (err.code, err.utterance) == (ErrorCode.INVALID_FIELD, "u1") and "'text'" in err.message
    err = decode_error(codec, '{"type":"speak","utterance":"\\udc00","text":""}')
    assert (err.code, err.utterance) == (ErrorCode.INVALID_FIELD, None)
    # A valid pair of escapes is just a non-BMP character.
    assert codec.decode('{"type":"speak","utterance":"u1","text":"\\ud83d\\ude00"}').text == "\U0001F600"


def test_message_too_large(codec: Codec) -> None:
    err = decode_error(codec, frame_of(codec, {**SPEAK, "text": "a" * 5000}))
    assert err.code == ErrorCode.MESSAGE_TOO_LARGE and "4096" in err.message


def test_json_limit_counts_utf8_bytes() -> None:
    codec = JsonCodec(max_message_bytes=4096)
    frame = json.dumps({**SPEAK, "text": "€" * 1500}, ensure_ascii=False)  # ~1.5k chars, ~4.5k bytes
    assert len(frame) < 4096 < len(frame.encode())
    assert decode_error(codec, frame).code == ErrorCode.MESSAGE_TOO_LARGE
    assert codec.decode(json.dumps({**SPEAK, "text": "€" * 1300}, ensure_ascii=False)).text == "€" * 1300


def test_error_messages_stay_short_and_printable(codec: Codec) -> None:
    err = decode_error(codec, frame_of(codec, {**SPEAK, "voice": 5, "text": "x" * 3000, "mode": "q" * 3000}))
    assert len(err.message) < 200
    err = decode_error(codec, frame_of(codec, {**SPEAK, "mode": "q" * 3000}))
    assert len(err.message) < 200
    # The error must itself be encodable, whatever the client sent.
    assert codec.decode_event(codec.encode(err.to_event())) == err.to_event()


def test_protocol_error_to_event() -> None:
    err = ProtocolError(ErrorCode.INVALID_FIELD, "invalid field 'speed'", "u1")
    assert err.to_event() == Error("invalid_field", "invalid field 'speed'", "u1")
    assert str(err) == "invalid field 'speed'"


def _code_table(section: str) -> set[str]:
    table = SPEC.read_text().split(section, 1)[1].split("| code | when |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", table, re.M))


def test_error_codes_match_the_spec_table() -> None:
    assert _code_table("### `error`") == {c.value for c in ErrorCode}


def test_warning_codes_match_the_spec_table() -> None:
    assert _code_table("### `warning`") == {c.value for c in WarningCode}


def test_cancel_reasons_match_the_spec() -> None:
    section = SPEC.read_text().split("### `cancelled`", 1)[1].split("###", 1)[0]
    for reason in CancelReason:
        assert f"`{reason.value}`" in section


# ------------------------------------------------------------- client side

def test_decode_event_errors(codec: Codec) -> None:
    def err(frame: Any) -> str:
        with pytest.raises(ProtocolError) as info:
            codec.decode_event(frame)
        return info.value.code

    assert err(frame_of(codec, {"type": "telemetry", "x": 1})) == ErrorCode.UNKNOWN_TYPE
    assert err(frame_of(codec, {"type": "done", "utterance": "u", "duration": "1", "samples": 1})) == \
        ErrorCode.INVALID_FIELD
    bad_audio = Audio("u", 0, 0, 3, 24000, "pcm_s16le", b"\x00" * 5)  # 5 bytes is not 3 samples
    assert err(codec.encode(bad_audio)) == ErrorCode.INVALID_FIELD
    assert err(frame_of(codec, [1])) == ErrorCode.BAD_MESSAGE


def test_decode_event_ignores_unknown_fields(codec: Codec) -> None:
    d = {**EVENTS[9].to_dict(), "future": [1, 2]}
    assert codec.decode_event(frame_of(codec, d)) == EVENTS[9]


@pytest.mark.parametrize("frame", [b"", b"\x01\x00", b"\xff\xff\xff\xff{}", b"\x02\x00\x00\x00{}",
                                   b"\x02\x00\x00\x00\xff\xfe", b"\x04\x00\x00\x00[1] ",
                                   b"\x10\x00\x00\x00" + b'{"type":"done"} '])
def test_json_binary_frame_errors(frame: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        JsonCodec().decode_event(frame)
    assert info.value.code in (ErrorCode.BAD_MESSAGE, ErrorCode.INVALID_FIELD)


def test_subprotocols() -> None:
    assert set(SUBPROTOCOLS) == {"kokorod.v1.msgpack", "kokorod.v1.json"}
    assert type(codec_for_subprotocol(None)) is MsgpackCodec
    assert type(codec_for_subprotocol("kokorod.v1.msgpack")) is MsgpackCodec
    json_codec = codec_for_subprotocol("kokorod.v1.json", max_message_bytes=100)
    assert type(json_codec) is JsonCodec and json_codec.max_message_bytes == 100
    assert (json_codec.encoding, json_codec.subprotocol) == ("json", "kokorod.v1.json")
    with pytest.raises(ValueError):
        codec_for_subprotocol("kokorod.v2.json")
    with pytest.raises(ValueError):
        MsgpackCodec(max_message_bytes=0)


@pytest.mark.parametrize("alias,code", [("es", "es"), ("ES", "es"), ("pt", "pt-br"), ("pt_BR", "pt-br"),
                                        ("zh-CN", "zh"), ("en", "en-us"), ("fr-fr", "fr"), ("j", "ja")])
def test_lang_aliases_decode_to_the_canonical_code(codec: Codec, alias: str, code: str) -> None:
    msg = codec.decode(frame_of(codec, {"type": "speak", "utterance": "u1", "text": "x", "lang": alias}))
    assert msg.lang == code
    assert codec.decode(frame_of(codec, {"type": "config", "lang": alias})).lang == code


@pytest.mark.parametrize("bad", ["klingon", "", 5, "x" * 40])
def test_unknown_lang_is_invalid_field_naming_the_codes(codec: Codec, bad: Any) -> None:
    err = decode_error(codec, frame_of(codec, {"type": "speak", "utterance": "u1", "text": "x", "lang": bad}))
    assert err.code == ErrorCode.INVALID_FIELD and "'lang'" in err.message and err.utterance == "u1"
    if bad == "klingon":
        assert "pt-br" in err.message


@pytest.mark.parametrize("admission", ["queue", "stream"])
def test_speak_admission_round_trips(codec: Codec, admission: str) -> None:
    msg = codec.decode(frame_of(codec, {**SPEAK, "admission": admission}))
    assert isinstance(msg, Speak) and msg.admission == admission
    assert msg.to_dict()["admission"] == admission
    assert "admission" not in codec.decode(frame_of(codec, SPEAK)).to_dict()  # absent: a stream, as before


@pytest.mark.parametrize("priority", ["live", "background"])
def test_speak_priority_round_trips(codec: Codec, priority: str) -> None:
    msg = codec.decode(frame_of(codec, {**SPEAK, "priority": priority}))
    assert isinstance(msg, Speak) and msg.priority == priority
    assert msg.to_dict()["priority"] == priority
    assert "priority" not in codec.decode(frame_of(codec, SPEAK)).to_dict()  # absent: live, as before
