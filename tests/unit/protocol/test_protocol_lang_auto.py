"""The wire side of lang "auto": speak/config accept it, phonemize does not;
chunk events carry their language, and decode without it (older daemons)."""

from __future__ import annotations

import json

import pytest

from kokorod.protocol.codec import JsonCodec, MsgpackCodec, ProtocolError
from kokorod.protocol.messages import Chunk, Config, Speak


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
def test_chunk_lang_round_trips(codec: MsgpackCodec | JsonCodec) -> None:
    event = Chunk("u1", 0, "Bonjour.", 0.0, 0.8, "fr")
    assert codec.decode_event(codec.encode(event)) == event
    old = Chunk("u1", 0, "Hello.", 0.0, 0.5)
    assert "lang" not in old.to_dict() and codec.decode_event(codec.encode(old)) == old


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("AUTO", "auto"),
                                             ("auto-keep-voice", "auto-keep-voice"), ("fr-FR", "fr")])
def test_speak_and_config_accept_auto(value: str, expected: str) -> None:
    codec = JsonCodec()
    speak = codec.decode(json.dumps({"type": "speak", "utterance": "u1", "text": "x", "lang": value}))
    config = codec.decode(json.dumps({"type": "config", "lang": value}))
    assert isinstance(speak, Speak) and speak.lang == expected
    assert isinstance(config, Config) and config.lang == expected


def test_phonemize_needs_a_real_language() -> None:
    with pytest.raises(ProtocolError):
        JsonCodec().decode(json.dumps({"type": "phonemize", "id": "p1", "text": "x", "lang": "auto"}))
