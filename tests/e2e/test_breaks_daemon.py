"""<break/> pauses through a real daemon and the real model: the requested
silence sits exactly where the tag was, everything after it moves by exactly
that, the tag works split across token fragments, and the recogniser hears both
sides of the pause (the tag itself is never spoken)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from support.asr import normalize_words, transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.protocol.messages import Chunk, Speak

pytestmark = pytest.mark.slow

TEXT = 'Your table is ready now. <break time="{}"/> Please come to the front desk.'
SPOKEN = "your table is ready now please come to the front desk"


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess("--stream-utilisation", "inf")
    yield d
    assert d.stop() == 0, d.log()[-3000:]


async def say(daemon: DaemonProcess, uid: str, fragments: list[str]) -> Utterance:
    peer = await Peer.connect(daemon.url)
    for i, text in enumerate(fragments):
        await peer.send(Speak(uid, text, final=i == len(fragments) - 1))
    utt = await peer.utterance(uid)
    await peer.close()
    check_stream_invariants(utt)
    return utt


def chunk_starts(utt: Utterance) -> list[int]:
    return [round(c.start * 24000) for c in utt.of(Chunk)]


async def test_break_is_exact_silence_where_the_tag_was(daemon: DaemonProcess) -> None:
    base = await say(daemon, "zero", [TEXT.format("0ms")])
    tag = TEXT.format("1200ms")
    split = await say(daemon, "split", [tag[i:i + 4] for i in range(0, len(tag), 4)])  # an LLM's tokens
    pause = 1200 * 24
    b_words, s_words = words_of(base), words_of(split)
    assert [w.text for w in s_words] == [w.text for w in b_words]
    assert "break" not in " ".join(w.text for w in s_words).lower()
    cut = next(i for i, w in enumerate(b_words) if w.text == "Please")
    for bw, sw in zip(b_words, s_words):  # before the tag: unchanged; after it: exactly 1.2 s later
        shift = round(sw.start * 24000) - round(bw.start * 24000)
        assert shift == (pause if b_words.index(bw) >= cut else 0), (bw, sw)
    b_chunks, s_chunks = chunk_starts(base), chunk_starts(split)
    assert len(s_chunks) == len(b_chunks) == 2 and s_chunks[1] - b_chunks[1] == pause
    b_audio, s_audio = base.audio(), split.audio()
    assert s_audio.shape[0] - b_audio.shape[0] == pause
    # The inserted stretch is digital silence, just before the second chunk.
    gap = s_audio[s_chunks[1] - pause:s_chunks[1]]
    assert gap.shape[0] == pause and not np.any(gap)
    # Both sides are heard, and nothing of the tag.
    for utt in (base, split):
        text, _ = transcribe(utt.audio(), utt.sample_rate)
        assert word_error_rate(SPOKEN, normalize_words(text)) <= 0.2, text


async def test_break_at_the_start_delays_first_speech(daemon: DaemonProcess) -> None:
    utt = await say(daemon, "lead", ['<break time="500ms"/>Hello there.'])
    audio = utt.audio()
    assert not np.any(audio[:12000])  # 0.5 s of silence first
    assert words_of(utt)[0].start >= 0.5
