"""UtteranceTimeline: event order, one timeline across chunks, every output rate."""

from __future__ import annotations

import numpy as np
import pytest

from kokorod.audio.formats import decode_pcm
from kokorod.protocol.messages import Audio, Chunk, Done, WordEvent
from kokorod.daemon.timeline import OutputFormat, UtteranceTimeline
from kokorod.speech.chunk import SpeechChunk, Word


def _chunk(seconds: float, words: list[tuple[str, float, float]]) -> SpeechChunk:
    n = int(seconds * 24000)
    t = np.arange(n) / 24000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return SpeechChunk(audio, [Word(w, int(s * 24000), int(e * 24000)) for w, s, e in words])


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("fmt", ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"])
def test_words_precede_their_audio_and_offsets_are_contiguous(rate: int, fmt: str) -> None:
    tl = UtteranceTimeline("u", OutputFormat(fmt, rate, 40))
    events = tl.render("Hello there,", _chunk(1.0, [("Hello", 0.1, 0.4), ("there", 0.45, 0.9)]))
    events += tl.render("friend.", _chunk(0.8, [("friend", 0.05, 0.6)]))
    events += tl.finish()
    assert isinstance(events[0], Chunk) and isinstance(events[-1], Done)
    audio = [e for e in events if isinstance(e, Audio)]
    offset = 0
    for i, frame in enumerate(audio):
        assert frame.seq == i and frame.offset == offset
        assert len(decode_pcm(frame.pcm, fmt)) == frame.samples
        offset += frame.samples
    done = events[-1]
    assert done.samples == offset
    assert abs(done.samples - 1.8 * rate) <= 2  # resampling keeps the length
    # Each word is sent before the frame containing its start.
    sent = 0
    for e in events:
        if isinstance(e, Audio):
            sent = e.offset + e.samples
        if isinstance(e, WordEvent):
            assert e.start * rate >= sent - 1, (e, sent)
    words = [e for e in events if isinstance(e, WordEvent)]
    assert [w.text for w in words] == ["Hello", "there", "friend"]
    # The second chunk's words sit after the first chunk on one timeline.
    assert words[2].start == pytest.approx(1.05, abs=1e-6)


def test_chunk_events_tile_the_timeline() -> None:
    tl = UtteranceTimeline("u", OutputFormat())
    chunks = [e for e in tl.render("a", _chunk(0.5, [])) + tl.render("b", _chunk(0.25, [])) if isinstance(e, Chunk)]
    assert chunks[0].start == 0 and chunks[0].end == chunks[1].start == 0.5 and chunks[1].end == 0.75


def test_frames_have_the_requested_duration() -> None:
    tl = UtteranceTimeline("u", OutputFormat("pcm_s16le", 16000, 20))
    frames = [e for e in tl.render("x", _chunk(0.5, [])) if isinstance(e, Audio)]
    assert all(f.samples == 320 for f in frames[:-1])
    assert 0 < frames[-1].samples <= 320
