"""The first chunk sized by a latency budget, through the real daemon with the
real model: the paragraph is spoken whole and heard, the first chunk ends at a
natural point, and ``--first-audio-ms 0`` keeps the old word counts.

Whether the budget makes the first chunk shorter depends on the machine's
measured speed (an engine that cannot keep up keeps the old rule), so the test
asserts what holds on any CPU; bench/first_audio.py measures the gain."""

from __future__ import annotations

import pytest

from support.asr import transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer, check_stream_invariants, words_of
from kokorod.protocol.messages import Chunk, Speak
from kokorod.text.segment_profiles import segment_profile

pytestmark = pytest.mark.slow

PARAGRAPH = ("The library opens at nine in the morning on weekdays. On weekends it opens an hour later, "
             "and it closes early on public holidays. Members can borrow up to ten books at a time.")
FIRST_SENTENCE = "The library opens at nine in the morning on weekdays."


async def speak(daemon: DaemonProcess, text: str) -> tuple[list[str], float, int]:
    peer = await Peer.connect(daemon.url)
    try:
        await peer.send(Speak("u", text, voice="af_heart", final=True))
        utt = await peer.utterance("u")
    finally:
        await peer.ws.close()
    check_stream_invariants(utt)
    heard, _ = transcribe(utt.audio(), utt.sample_rate)
    return [c.text for c in utt.of(Chunk)], word_error_rate(text, heard), len(words_of(utt))


@pytest.mark.parametrize("budget_ms", ["250", "0"])
async def test_the_paragraph_is_spoken_whole_from_a_natural_first_cut(budget_ms: str) -> None:
    daemon = DaemonProcess("--first-audio-ms", budget_ms)
    try:
        chunks, wer, words = await speak(daemon, PARAGRAPH)
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
    assert "".join(chunks) == PARAGRAPH
    assert words == len(PARAGRAPH.split())
    # Whisper tiny.en heard these paragraphs with WER 0.03-0.10 under both
    # policies on an AVX-512 EPYC, tiny first chunks included; 0.2 leaves room
    # for other CPUs' int8 kernels.
    assert wer <= 0.2, (wer, chunks)
    first = chunks[0].split()
    if budget_ms == "0":
        assert chunks[0] == FIRST_SENTENCE  # 4-12 words: the whole first sentence
    else:
        assert len(chunks[0]) <= len(FIRST_SENTENCE)
        # Never cut right after an article or preposition ("The", "at").
        function_words = segment_profile("en-us").function_words
        assert first[-1].strip(".,").lower() not in function_words or chunks[0] == FIRST_SENTENCE, chunks
