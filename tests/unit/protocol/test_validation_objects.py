"""In-process messages (message_from_object) meet the validators frames meet,
with no JSON round trip (issue 17)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kokorod.protocol import JsonCodec, MsgpackCodec, ProtocolError, message_from_object
from kokorod.protocol.messages import Cancel, Config, ErrorCode, Phonemize, Speak
from kokorod.protocol.validation import map_size_bytes

LIMIT = 4096

# The same bad field, as an adapter would build it; each also has a JSON form.
BAD = [
    Speak("u1", "hello", speed=99.0),
    Speak("u1", "hello", speed=0.0),
    Speak("u1", "hello", voice=""),
    Speak("u1", "hello", mode="shout"),  # type: ignore[arg-type]
    Speak("u1", "hello", lang="xx"),
    Speak("u1", "hello", admission="later"),  # type: ignore[arg-type]
    Speak("", "hello"),
    Speak("u1", "lone \ud800 surrogate"),
    Speak("u1", 123),  # type: ignore[arg-type]
    Speak("u1", "x" * (LIMIT + 10)),
    Cancel(utterance="u1", all=True),
    Config(frame_ms=1),
    Config(sample_rate=12345),
    Config(format="wav"),  # type: ignore[arg-type]
    Config(lexicon={"word": 5}),
    Config(lexicon={}),  # valid: clears the lexicon
    Speak("u1", "fine", final=True),
    Phonemize("p1", "fine"),
]


def _outcome(fn: Any, arg: Any) -> Any:
    try:
        return fn(arg)
    except ProtocolError as exc:
        return (exc.code, exc.message, exc.utterance)


@pytest.mark.parametrize("message", BAD, ids=repr)
def test_same_outcome_as_the_json_frame(message: Any) -> None:
    codec = JsonCodec(LIMIT)
    frame = codec.encode_message(message)
    wire = _outcome(codec.decode, frame)
    local = _outcome(lambda m: message_from_object(m, LIMIT), message)
    if isinstance(wire, tuple) and wire[0] == ErrorCode.MESSAGE_TOO_LARGE:
        # The wire counts the frame, the peer a lower bound of it: same code, its own count.
        assert local[0] == ErrorCode.MESSAGE_TOO_LARGE
    else:
        assert local == wire


def test_no_json_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("json used")

    monkeypatch.setattr(json, "loads", boom)
    monkeypatch.setattr(json, "dumps", boom)
    assert message_from_object(Speak("u1", "hello", speed=1.5), LIMIT) == Speak("u1", "hello", speed=1.5)
    with pytest.raises(ProtocolError) as err:
        message_from_object(Speak("u1", "hello", speed=99.0), LIMIT)
    assert err.value.code == ErrorCode.INVALID_FIELD and err.value.utterance == "u1"


def test_size_counts_utf8_bytes_never_more_than_the_frame() -> None:
    text = "ü€😀a" * 100
    d = Speak("u1", text).to_dict()
    size = map_size_bytes(d, 10**9)
    assert size >= len(text.encode("utf-8"))
    assert size <= len(JsonCodec().encode_message(Speak("u1", text)))
    assert size <= len(MsgpackCodec().encode_message(Speak("u1", text))) + 8
    # Just under the limit in UTF-8 bytes: taken; just over: refused.
    n = LIMIT - 200
    assert message_from_object(Speak("u1", "€" * (n // 3)), LIMIT)
    with pytest.raises(ProtocolError) as err:
        message_from_object(Speak("u1", "€" * (LIMIT // 3 + 1)), LIMIT)
    assert err.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_hostile_objects_give_protocol_errors() -> None:
    loop: dict[str, Any] = {}
    loop["a"] = loop
    for message in (object(), "speak", {"type": "speak"}, Config(lexicon=loop), Config(lexicon=5),
                    Config(lexicon={1: "x"}), Config(lexicon={"w": {b"k": "x"}}), Speak("u1", "x", speed=float("nan"))):
        with pytest.raises(ProtocolError):
            message_from_object(message, LIMIT)
