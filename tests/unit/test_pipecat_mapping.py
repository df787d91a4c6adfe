"""The pure half of the pipecat service (kokorod/integrations/_pipecat_wire.py):
which daemon events end a context, language and rate choices, the wire messages.
None of it needs pipecat installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kokorod.integrations._pipecat_wire import (
    MODEL_SAMPLE_RATE, Outcome, SendPacer, Voice, auth_headers, classify, describe, kokorod_language, wire_sample_rate,
    words_are_unspaced,
)
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import (
    Audio, Cancelled, Chunk, Configured, Done, Error, ErrorCode, Speak, Warning, WordEvent,
)


def test_importing_the_integrations_package_pulls_in_no_framework() -> None:
    code = ("import sys, kokorod.integrations, kokorod.integrations._pipecat_wire; "
            "bad = [m for m in ('pipecat', 'livekit') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("code, lang", [
    ("en", "en-us"), ("en-US", "en-us"), ("en-GB", "en-gb"), ("en-AU", "en-us"), ("es-MX", "es"), ("fr-CA", "fr"),
    ("pt", "pt-br"), ("pt-PT", "pt-br"), ("pt-BR", "pt-br"), ("zh-CN", "zh"), ("ja-JP", "ja"), ("hi-IN", "hi"),
    ("it", "it"), ("de", None), ("ko-KR", None), ("", None),
])
def test_pipecat_languages_map_to_kokorod(code: str, lang: str | None) -> None:
    assert kokorod_language(code) == lang


def test_only_chinese_and_japanese_words_come_without_spaces() -> None:
    assert words_are_unspaced("zh") and words_are_unspaced("ja")
    assert not words_are_unspaced("en-us") and not words_are_unspaced(None)


@pytest.mark.parametrize("pipeline_hz, wire_hz", [
    (24000, 24000), (16000, 16000), (8000, 8000), (48000, 48000), (44100, 44100), (32000, MODEL_SAMPLE_RATE),
    (11025, MODEL_SAMPLE_RATE),
])
def test_rate_asked_of_the_daemon(pipeline_hz: int, wire_hz: int) -> None:
    assert wire_sample_rate(pipeline_hz) == wire_hz


def test_auth_header_only_with_a_token() -> None:
    assert auth_headers(None) == {} and auth_headers("") == {}
    assert auth_headers("s3cret") == {"Authorization": "Bearer s3cret"}


def test_config_queues_so_contexts_never_barge_in_on_each_other() -> None:
    cfg = Voice(voice="af_bella", speed=1.2, lang="en-gb").config(16000, 20)
    wire = MsgpackCodec().encode_message(cfg)
    assert MsgpackCodec().decode(wire) == cfg  # valid on the daemon's side too
    assert (cfg.on_new_utterance, cfg.format, cfg.sample_rate, cfg.frame_ms) == ("queue", "pcm_s16le", 16000, 20)
    assert Voice().config(24000, None).to_dict() == {"type": "config", "format": "pcm_s16le", "sample_rate": 24000,
                                                    "on_new_utterance": "queue"}


def test_speak_fragments_and_final() -> None:
    voice = Voice(voice="af_heart", lang="en-us")
    frag = voice.speak("ctx-1", " world")
    assert frag == Speak("ctx-1", " world", voice="af_heart", lang="en-us", final=False, mode="queue")
    end = voice.speak("ctx-1", "", final=True)
    assert end.final and end.text == ""
    assert MsgpackCodec().decode(MsgpackCodec().encode_message(end)) == end


def test_events_to_context_outcomes() -> None:
    audio = Audio("u", 0, 0, 480, 24000, "pcm_s16le", b"\0\0" * 480)
    assert classify(audio) is Outcome.AUDIO
    assert classify(WordEvent("u", 0, "Hello", 0.1, 0.4)) is Outcome.WORD
    assert classify(Done("u", 1.0, 24000)) is Outcome.DONE
    # Our own cancel ends the context silently; the daemon stopping it is news.
    assert classify(Cancelled("u", "cancel")) is Outcome.STOPPED
    for reason in ("barge_in", "overload", "slow_consumer", "shutdown"):
        assert classify(Cancelled("u", reason)) is Outcome.FAILED
    # Errors that end the utterance they name, versus ones that reject one fragment.
    for code in (ErrorCode.ENGINE_ERROR, ErrorCode.NOTHING_TO_SPEAK, ErrorCode.UNKNOWN_VOICE, ErrorCode.OVERLOADED,
                 ErrorCode.UNKNOWN_UTTERANCE, ErrorCode.LANGUAGE_UNAVAILABLE, ErrorCode.TOO_MANY_UTTERANCES):
        assert classify(Error(code, "x", utterance="u")) is Outcome.FAILED, code
    for code in (ErrorCode.TEXT_TOO_LONG, ErrorCode.RATE_LIMITED, ErrorCode.MESSAGE_TOO_LARGE,
                 ErrorCode.INVALID_FIELD):
        assert classify(Error(code, "x", utterance="u")) is Outcome.PROBLEM, code
    assert classify(Error(ErrorCode.OVERLOADED, "busy")) is Outcome.PROBLEM  # no utterance: the session's
    assert classify(Warning("u", "unspeakable", "skipped", "😀")) is Outcome.NOTE
    assert classify(Chunk("u", 0, "Hi.", 0.0, 0.5)) is Outcome.IGNORE
    assert classify(Configured("af_heart", 1.0, "pcm_s16le", 24000, 100, "queue", None, 0)) is Outcome.IGNORE


def test_descriptions_name_the_utterance_and_the_reason() -> None:
    assert "overload" in describe(Cancelled("u7", "overload")) and "'u7'" in describe(Cancelled("u7", "overload"))
    line = describe(Error(ErrorCode.ENGINE_ERROR, "boom", utterance="u7"))
    assert "engine_error" in line and "boom" in line and "'u7'" in line
    assert "utterance" not in describe(Error(ErrorCode.OVERLOADED, "busy"))


def test_pacer_keeps_any_second_under_the_daemons_rate() -> None:
    pacer = SendPacer(messages_per_s=10)  # 8 a second with the headroom
    now, sent = 0.0, []
    while len(sent) < 40:
        wait = pacer.wait_s(now)
        if wait > 0:
            now += wait
            continue
        pacer.sent(now)
        sent.append(now)
    assert sent[:8] == [0.0] * 8  # a burst up to the window goes at once
    for i in range(len(sent)):
        assert sum(1 for t in sent[i:] if t - sent[i] < 1.0) <= 8
    assert sent[-1] == pytest.approx(4.0)  # 40 messages at 8/s: no slower than needed
    assert SendPacer(messages_per_s=0.5).per_window == 1


def test_service_settings_become_what_each_utterance_is_created_with() -> None:
    pytest.importorskip("pipecat")
    from pipecat.transcriptions.language import Language

    from kokorod.integrations.pipecat import KokorodTTSService as Service

    def voice(**settings: object) -> Voice:
        return Service(settings=Service.Settings(**settings))._voice()  # type: ignore[arg-type]

    assert voice() == Voice()
    assert voice(voice="bf_emma", language=Language.EN_GB, speed=1.25) == Voice("bf_emma", 1.25, "en-gb")
    assert voice(language="zh").lang == "zh"
    # A language no Kokoro voice speaks: the voice's own, not a refused utterance.
    assert voice(language=Language.DE).lang is None
    with pytest.raises(ValueError, match="frame_ms"):
        Service(frame_ms=5)
