"""kokorod's chunk and word events → LiveKit's timed transcript pieces (pure;
kokorod/integrations/livekit_transcript.py imports no LiveKit), and the error
mapping the framework's retries rely on (skipped without livekit-agents)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from kokorod.integrations.livekit_transcript import TimedPiece, TranscriptAligner


def run(chunks: list[tuple[str, list[str]]]) -> list[TimedPiece]:
    """Feed chunks with their words (timed 1 s apart) as the daemon sends them."""
    aligner = TranscriptAligner()
    pieces: list[TimedPiece] = []
    t = 0.0
    for text, words in chunks:
        pieces += aligner.chunk(text, t)
        for word in words:
            pieces += aligner.word(word, t, t + 0.5)
            t += 1.0
    return pieces + aligner.finish(t)


def test_pieces_add_up_to_the_written_text_with_punctuation() -> None:
    pieces = run([("Hello, there.", ["Hello", "there"]), (" How are you?", ["How", "are", "you"])])
    assert [p.text for p in pieces] == ["Hello, ", "there. ", "How ", "are ", "you? "]
    assert [p.start_s for p in pieces] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [p.end_s for p in pieces] == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_leading_text_and_unspoken_words_stay_in_the_transcript() -> None:
    # An opening quote before the first word, an emoji the daemon skipped (no
    # word event): both are kept, shown with the word that follows them.
    pieces = run([('"Yes," she said 😀 twice.', ["Yes", "she", "said", "twice"])])
    assert "".join(p.text for p in pieces) == '"Yes," she said 😀 twice. '
    assert pieces[0].text == '"Yes," '
    assert pieces[-1].text == "😀 twice. "


def test_a_word_the_chunk_does_not_hold_is_still_shown() -> None:
    pieces = run([("ok.", ["okay"])])
    assert [p.text for p in pieces][0] == "okay "


def test_a_chunk_without_words_is_shown_at_its_start() -> None:
    pieces = run([("...", []), ("Then.", ["Then"])])
    assert pieces[0] == TimedPiece("... ", 0.0, None)
    assert pieces[1].text == "Then. "


def test_chinese_chunks_get_no_space_between_them() -> None:
    pieces = run([("你好。", ["你好"]), ("再见。", ["再见"])])
    assert [p.text for p in pieces] == ["你好。", "再见。"]


def test_case_differences_still_match() -> None:
    pieces = run([("NASA said so.", ["nasa", "said", "so"])])
    assert [p.text for p in pieces] == ["NASA ", "said ", "so. "]


words = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=6), min_size=1, max_size=8)
punct = st.sampled_from(["", ",", ".", "!", " -", ";"])


@given(st.lists(st.tuples(words, st.lists(punct, min_size=8, max_size=8)), min_size=1, max_size=4))
def test_any_sentences_reassemble_exactly_in_order(sentences: list[tuple[list[str], list[str]]]) -> None:
    chunks = []
    for ws, ps in sentences:
        text = " ".join(w + p for w, p in zip(ws, ps)) + "."
        chunks.append((text, ws))
    pieces = run(chunks)
    joined = "".join(p.text for p in pieces)
    assert joined.split() == " ".join(text for text, _ in chunks).split()
    starts = [p.start_s for p in pieces if p.start_s is not None]
    assert starts == sorted(starts)
    assert sum(1 for p in pieces if p.start_s is not None) == sum(len(ws) for _, ws in chunks)


def test_a_short_word_is_not_found_inside_a_longer_one() -> None:
    # "a" is the article, not the letter in "cat" (which the daemon skipped here).
    pieces = run([("cat a dog.", ["a", "dog"])])
    assert [p.text for p in pieces] == ["cat a ", "dog. "]


def test_words_re_spoken_after_a_resume_are_not_shown_twice() -> None:
    aligner = TranscriptAligner()
    shown = aligner.chunk("One two three four.", 0.0)
    shown += aligner.word("One", 0.0, 0.3) + aligner.word("two", 0.4, 0.7)
    aligner.drop_rest()  # the connection was lost after "two"; the rest is re-sent
    shown += aligner.chunk("two three four.", 0.8)
    aligner.seen_word("two")  # re-spoken from the first word not fully heard
    shown += aligner.word("three", 0.9, 1.2) + aligner.word("four", 1.3, 1.6) + aligner.finish(1.7)
    assert "".join(p.text for p in shown) == "One two three four. "
    assert [p.start_s for p in shown] == [0.0, 0.4, 0.9, 1.3]


def test_kokorod_failures_map_to_livekit_errors_its_retries_understand() -> None:
    pytest.importorskip("livekit.agents")
    from livekit.agents import APIConnectionError, APIStatusError

    from kokorod.client import ConnectionLost, DaemonUnavailable, KokorodServerError
    from kokorod.integrations.livekit import api_error, event_error
    from kokorod.protocol.messages import Cancelled, Error

    assert isinstance(api_error(DaemonUnavailable("nothing there")), APIConnectionError)
    assert api_error(ConnectionLost("gone")).retryable
    busy = api_error(KokorodServerError(Error("overloaded", "busy", "u1")))
    assert isinstance(busy, APIStatusError) and busy.retryable
    assert not api_error(KokorodServerError(Error("unknown_voice", "no such voice", "u1"))).retryable
    assert event_error(Cancelled("u1", "shutdown")).retryable
    assert not event_error(Cancelled("u1", "slow_consumer")).retryable
    assert not event_error(Error("nothing_to_speak", "only emoji", "u1")).retryable


def test_the_tts_declares_streaming_and_aligned_transcripts() -> None:
    pytest.importorskip("livekit.agents")
    from kokorod.integrations.livekit import TTS

    tts = TTS(url=["ws://127.0.0.1:1/v1/stream", "ws://127.0.0.1:2/v1/stream"], sample_rate=16000)
    assert tts.capabilities.streaming and tts.capabilities.aligned_transcript
    assert (tts.sample_rate, tts.num_channels, tts.provider) == (16000, 1, "kokorod")
    with pytest.raises(ValueError):
        TTS(sample_rate=12345)
