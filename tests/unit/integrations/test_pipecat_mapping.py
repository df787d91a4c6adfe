"""The pure half of the pipecat service (kokorod/integrations/_pipecat_wire.py):
which daemon events end a context, language and rate choices, the wire messages,
and which daemon-side utterance speaks a context across connections (what is
sent again, how its events map back, which words are shown). None of it needs
pipecat installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kokorod.integrations._pipecat_wire import (
    MODEL_SAMPLE_RATE, Attached, ContextBook, Outcome, SendPacer, Voice, WireContext, auth_headers, classify,
    describe, kokorod_language, max_chars_per_message, wire_sample_rate, words_are_unspaced,
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


# -- contexts across connections -----------------------------------------------------

RATE = 24000


def audio(wire: str, seq: int, start_s: float, end_s: float) -> Audio:
    samples = round((end_s - start_s) * RATE)
    return Audio(wire, seq, round(start_s * RATE), samples, RATE, "pcm_s16le", b"\0\0" * samples)


def shown(book: ContextBook, wc: WireContext, *events: object) -> list[tuple[int, str, float]]:
    """(index, word, start) of the words the events let pipecat show."""
    out: list[tuple[int, str, float]] = []
    for event in events:
        words, _ = book.observe(wc, event)  # type: ignore[arg-type]
        out += [(w.index, w.text, round(w.start, 3)) for w in words]
    return out


def test_a_context_is_its_own_utterance_until_a_connection_is_lost() -> None:
    book = ContextBook(RATE)
    wc = book.open("ctx", Voice(voice="af_heart"))
    wc.tracker.add_text("Hello there")
    assert book.next_message(wc, 1, 100) is None  # not on a connection yet
    assert book.attach(wc, 1) is Attached.SPEAK and wc.wire == "ctx"
    msg = book.next_message(wc, 1, 100)
    assert msg == Speak("ctx", "Hello there", voice="af_heart", final=False, mode="queue")
    book.sent(wc, msg)
    assert book.next_message(wc, 1, 100) is None  # nothing new
    wc.tracker.add_text(" my friend.", final=True)
    end = book.next_message(wc, 1, 100)
    assert end is not None and (end.text, end.final) == (" my friend.", True)
    book.sent(wc, end)
    assert book.next_message(wc, 1, 100) is None and book.next_message(wc, 2, 100) is None
    assert book.by_wire("ctx") is wc and "ctx" in book


def test_long_text_goes_in_pieces_under_the_message_limit_with_final_on_the_last() -> None:
    book = ContextBook(RATE)
    wc = book.open("c", Voice())
    wc.tracker.add_text("abcdefghijkl", final=True)
    book.attach(wc, 1)
    pieces = []
    while (msg := book.next_message(wc, 1, 5)) is not None:
        pieces.append((msg.text, msg.final))
        book.sent(wc, msg)
    assert pieces == [("abcde", False), ("fghij", False), ("kl", True)]
    assert max_chars_per_message(262144) == 65024 and max_chars_per_message(10) == 1


def test_resume_speaks_the_unheard_rest_under_a_new_id_and_shows_each_word_once() -> None:
    book = ContextBook(RATE)
    wc = book.open("ctx", Voice())
    wc.tracker.add_text("Hello there my friend.", final=True)
    book.attach(wc, 1)
    book.sent(wc, book.next_message(wc, 1, 1000))  # type: ignore[arg-type]
    words = [WordEvent("ctx", 0, "Hello", 0.0, 0.3), WordEvent("ctx", 1, "there", 0.3, 0.6),
             WordEvent("ctx", 2, "my", 0.6, 0.8), WordEvent("ctx", 3, "friend", 0.8, 1.2)]
    # A chunk's words come before its audio: each is shown once audio holding its start has come.
    assert shown(book, wc, *words) == []
    assert shown(book, wc, audio("ctx", 0, 0.0, 0.5)) == [(0, "Hello", 0.0), (1, "there", 0.3)]
    # The connection is lost half-way through "there": the new connection gets the
    # rest from "there" on, under a fresh id, on the same timeline.
    assert book.attach(wc, 2) is Attached.SPEAK
    assert wc.wire == "ctx#1" and book.by_wire("ctx") is None and book.by_wire("ctx#1") is wc
    msg = book.next_message(wc, 2, 1000)
    assert msg is not None and (msg.utterance, msg.text, msg.final) == ("ctx#1", "there my friend.", True)
    book.sent(wc, msg)
    again = [WordEvent("ctx#1", 0, "there", 0.1, 0.4), WordEvent("ctx#1", 1, "my", 0.4, 0.6),
             WordEvent("ctx#1", 2, "friend", 0.6, 1.0)]
    # "there" was shown already (its start was heard): its repeat, with the same index, is not.
    assert shown(book, wc, *again, audio("ctx#1", 0, 0.0, 0.5)) == [(2, "my", 0.9)]
    # "friend" starts past the audio so far (1.1 s on the context's timeline); the
    # end of the utterance brings it.
    words, done = book.observe(wc, Done("ctx#1", 1.2, round(1.2 * RATE)))
    assert [(w.index, w.text, round(w.start, 3)) for w in words] == [(3, "friend", 1.1)]
    assert isinstance(done, Done) and done.utterance == "ctx" and done.samples == round(1.7 * RATE)
    assert wc.next_word == 4


def test_words_whose_audio_never_came_are_shown_when_the_next_daemon_speaks_them() -> None:
    book = ContextBook(RATE)
    wc = book.open("c", Voice())
    wc.tracker.add_text("one two three", final=True)
    book.attach(wc, 1)
    book.sent(wc, book.next_message(wc, 1, 100))  # type: ignore[arg-type]
    first = shown(book, wc, WordEvent("c", 0, "one", 0.0, 0.3), WordEvent("c", 1, "two", 0.4, 0.7),
                  WordEvent("c", 2, "three", 0.8, 1.1), audio("c", 0, 0.0, 0.35))
    assert first == [(0, "one", 0.0)]
    book.attach(wc, 2)  # "two" and "three" were held, never shown: they come from the new segment
    later = shown(book, wc, WordEvent("c#1", 0, "two", 0.05, 0.35), WordEvent("c#1", 1, "three", 0.4, 0.7),
                  audio("c#1", 0, 0.0, 0.8), Done("c#1", 0.8, round(0.8 * RATE)))
    assert later == [(1, "two", 0.4), (2, "three", 0.75)]  # after the 0.35 s heard before the seam


def test_a_context_heard_to_its_end_has_nothing_left_on_a_new_connection() -> None:
    book = ContextBook(RATE)
    wc = book.open("c", Voice())
    wc.tracker.add_text("Hi.", final=True)
    book.attach(wc, 1)
    book.sent(wc, book.next_message(wc, 1, 100))  # type: ignore[arg-type]
    shown(book, wc, WordEvent("c", 0, "Hi", 0.0, 0.2), audio("c", 0, 0.0, 0.4))
    assert book.attach(wc, 2) is Attached.NOTHING_LEFT


def test_a_refused_context_is_parked_until_the_next_connection_and_text_keeps_arriving() -> None:
    book = ContextBook(RATE)
    wc = book.open("c", Voice())
    wc.tracker.add_text("Good morning")
    book.attach(wc, 1)
    book.sent(wc, book.next_message(wc, 1, 100))  # type: ignore[arg-type]
    book.park(wc)  # overloaded: nothing more goes out for it on this connection
    wc.tracker.add_text(" everyone.", final=True)
    assert book.next_message(wc, 1, 100) is None and book.parked(1) == [wc] and book.by_wire("c") is None
    assert book.attach(wc, 2) is Attached.SPEAK and book.parked(2) == []
    msg = book.next_message(wc, 2, 100)
    assert msg is not None and (msg.utterance, msg.text, msg.final) == ("c#1", "Good morning everyone.", True)


def test_an_ended_context_is_remembered_so_late_text_is_not_a_new_utterance() -> None:
    book = ContextBook(RATE)
    for i in range(100):
        book.open(f"c{i}", Voice())
        book.pop(f"c{i}")
    assert book.ended("c99") and not book.ended("c0")  # bounded: the oldest are forgotten
    assert book.get("c99") is None and book.contexts() == []
