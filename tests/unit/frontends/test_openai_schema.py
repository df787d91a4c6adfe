"""OpenAI speech API: request validation, the voice table, speed clamping,
input splitting and the error mapping (no sockets, no model)."""

from __future__ import annotations

import json

import pytest

from kokorod.frontends.openai_schema import (
    MODELS, OPENAI_VOICES, ApiError, error_for, max_body_bytes, parse_speech_request, resolve_voice, split_input,
)
from kokorod.protocol.codec import JsonCodec
from kokorod.protocol.messages import SPEED_MAX, SPEED_MIN, Speak

KOKORO_VOICES = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky am_adam "
    "am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa bf_alice bf_emma bf_isabella bf_lily "
    "bm_daniel bm_fable bm_george bm_lewis").split()


def parse(max_text_chars: int = 1000, **body: object) -> object:
    body = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", **body}
    return parse_speech_request(json.dumps({k: v for k, v in body.items() if v is not ...}).encode(),
                                max_text_chars=max_text_chars)


def error_of(raw: bytes | None = None, **body: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        if raw is not None:
            parse_speech_request(raw, max_text_chars=1000)
        else:
            parse(**body)
    return info.value


def test_defaults_follow_openai() -> None:
    req = parse()
    assert (req.model, req.voice, req.voice_requested) == ("tts-1", "af_alloy", "alloy")
    assert (req.response_format, req.stream_format, req.timestamps, req.speed) == ("mp3", "audio", False, None)
    assert not req.speed_clamped


@pytest.mark.parametrize("model", MODELS)
def test_every_model_is_accepted(model: str) -> None:
    assert parse(model=model).model == model


def test_other_models_are_refused_with_the_list() -> None:
    err = error_of(model="gpt-4o-mini-tts")
    assert (err.status, err.param, err.code) == (400, "model", "model_not_found")
    assert all(m in err.message for m in MODELS)


def test_openai_voice_table_maps_to_real_kokoro_voices() -> None:
    for name in ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"):
        assert OPENAI_VOICES[name] in KOKORO_VOICES, name
    assert all(v in KOKORO_VOICES for v in OPENAI_VOICES.values())
    # By gender: OpenAI's male voices get Kokoro's male ones.
    for name in ("ash", "ballad", "echo", "fable", "onyx", "verse", "cedar"):
        assert OPENAI_VOICES[name][1] == "m", name
    for name in ("coral", "nova", "sage", "shimmer", "marin"):
        assert OPENAI_VOICES[name][1] == "f", name


def test_voice_names_and_blends_pass_through() -> None:
    assert resolve_voice("Nova") == "af_nova"
    assert resolve_voice("bf_emma") == "bf_emma"
    assert resolve_voice("af_heart:0.7,af_bella:0.3") == "af_heart:0.7,af_bella:0.3"
    assert parse(voice={"id": "shimmer"}).voice == "af_bella"


@pytest.mark.parametrize("speed,kokoro,clamped", [(1.0, 1.0, False), (0.25, SPEED_MIN, True), (4.0, SPEED_MAX, True),
                                                  (3, SPEED_MAX, True), (1.5, 1.5, False)])
def test_speed_is_clamped_to_kokoro_range(speed: float, kokoro: float, clamped: bool) -> None:
    req = parse(speed=speed)
    assert req.speed == kokoro and req.speed_clamped is clamped


@pytest.mark.parametrize("speed", [0.1, 4.5, True, "fast"])
def test_speed_outside_openai_range_is_refused(speed: object) -> None:
    assert error_of(speed=speed).param == "speed"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_response_formats(fmt: str) -> None:
    assert parse(response_format=fmt).response_format == fmt


@pytest.mark.parametrize("body,param", [
    ({"response_format": "ogg"}, "response_format"),
    ({"stream_format": "json"}, "stream_format"),
    ({"timestamps": True}, "timestamps"),          # needs sse
    ({"timestamps": "yes", "stream_format": "sse"}, "timestamps"),
    ({"input": ""}, "input"),
    ({"input": "   "}, "input"),
    ({"input": 5}, "input"),
    ({"input": ...}, "input"),
    ({"model": ...}, "model"),
    ({"voice": ...}, "voice"),
    ({"voice": ""}, "voice"),
    ({"voice": "x" * 300}, "voice"),
    ({"voice": {"name": "x"}}, "voice"),
    ({"lang": "xx"}, "lang"),
])
def test_bad_fields_are_400_naming_the_param(body: dict[str, object], param: str) -> None:
    err = error_of(**body)
    assert err.status == 400 and err.param == param, err.message
    shape = json.loads(err.body())
    assert set(shape["error"]) == {"message", "type", "param", "code"}
    assert shape["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"model": NaN'])
def test_body_must_be_a_json_object(raw: bytes) -> None:
    assert error_of(raw).status == 400


def test_sse_timestamps_instructions_and_lang() -> None:
    req = parse(stream_format="sse", timestamps=True, instructions="cheerful", lang="es")
    assert (req.stream_format, req.timestamps, req.lang) == ("sse", True, "es")


def test_input_over_the_limit_is_413_never_truncated() -> None:
    assert len(parse(max_text_chars=20, input="a" * 20).input) == 20
    with pytest.raises(ApiError) as info:
        parse(max_text_chars=20, input="a" * 21)
    assert (info.value.status, info.value.param, info.value.code) == (413, "input", "text_too_long")


def test_body_limit_fits_the_longest_escaped_input() -> None:
    limit = 1000
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "\u00e9" * limit}).encode()  # \u00e9: 6 bytes each
    assert len(body) <= max_body_bytes(limit)


@pytest.mark.parametrize("text", ["plain ascii words " * 3000, "\u00e9t\u00e9 " * 20000, "\U0001F600" * 30000])
def test_split_input_keeps_text_and_every_message_fits(text: str) -> None:
    max_bytes = 64 * 1024
    parts = split_input(text, max_bytes)
    assert "".join(parts) == text
    codec = JsonCodec(max_bytes)
    for i, part in enumerate(parts):
        frame = codec.encode_message(Speak("speech", part, voice="af_heart:0.5,bf_emma:0.5", final=i == len(parts) - 1))
        assert len(frame.encode()) <= max_bytes
        assert codec.decode(frame).text == part


@pytest.mark.parametrize("code,status,param", [
    ("unknown_voice", 400, "voice"), ("invalid_field", 400, None), ("language_unavailable", 400, "voice"),
    ("nothing_to_speak", 400, "input"), ("text_too_long", 413, "input"), ("rate_limited", 429, None),
    ("too_many_utterances", 429, None), ("overloaded", 503, None), ("engine_error", 500, None),
    ("something_new", 500, None),
])
def test_session_errors_map_to_http(code: str, status: int, param: str | None) -> None:
    err = error_for(code, "why")
    assert (err.status, err.param, err.code) == (status, param, code)
    headers = dict(err.headers())
    assert headers["Content-Type"] == "application/json"
    if status in (429, 503):
        assert headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in headers
    assert json.loads(err.body())["error"]["message"] == "why"


def test_error_types() -> None:
    assert ApiError(401, "x").type == "authentication_error"
    assert dict(ApiError(401, "x").headers())["WWW-Authenticate"] == "Bearer"
    assert ApiError(429, "x").type == "rate_limit_error"
    assert ApiError(503, "x").type == "server_error"
    assert ApiError(413, "x").type == "invalid_request_error"
