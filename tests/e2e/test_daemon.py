"""The real daemon on a loopback port with the real model: streaming, ordering,
barge-in, cancel, concurrency, encodings, formats, and speech a recognizer hears."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from support.asr import median_start_error_s, transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Chunk, Config, Configured, Done, Speak

pytestmark = pytest.mark.slow

PARAGRAPH = (
    "The museum opens at ten in the morning. Tickets cost twelve dollars for adults, "
    "and children under five get in for free. Please leave large bags at the front desk."
)


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    # Several streams at once whatever this CPU can feed: these tests are about
    # fairness and correctness, measured admission has its own (test_ops).
    d = DaemonProcess("--stream-utilisation", "inf")
    yield d
    assert d.stop() == 0, d.log()[-3000:]


# PARAGRAPH measured WER 0.000, timing median <= 109 ms, in-process with the
# int8 and conv-dequantised graphs x 3 forms (as synthesised, noise 35 dB under
# the speech, shifted 5 ms); it scored 0.100, at the limit, before the judge
# read "10" and "$12" as words.
def check_heard(utt: Utterance, reference: str, max_wer: float = 0.10) -> tuple[float, float]:
    text, heard = transcribe(utt.audio(), utt.sample_rate)
    wer = word_error_rate(reference, text)
    median, matched = median_start_error_s([(w.text, w.start) for w in words_of(utt)], heard)
    print(f"WER {wer:.3f} timing median {median * 1000:.0f} ms over {matched} words: {text}")
    assert wer <= max_wer, text
    assert median <= 0.150
    return wer, median


async def test_paragraph_streams_intelligibly_with_accurate_words(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak("p1", PARAGRAPH, final=True))
    utt = await peer.utterance("p1")
    check_stream_invariants(utt)
    assert len(utt.of(Chunk)) >= 3  # small first chunk, then sentences
    check_heard(utt, PARAGRAPH)
    await peer.close()


async def test_llm_fragment_stream(daemon: DaemonProcess) -> None:
    """Fragments as an LLM emits them: half words, lone punctuation, verbatim spaces."""
    rng = random.Random(7)
    pieces: list[str] = []
    i = 0
    while i < len(PARAGRAPH):
        n = rng.randint(1, 6)
        pieces.append(PARAGRAPH[i : i + n])
        i += n
    peer = await Peer.connect(daemon.url)
    for piece in pieces:
        await peer.send(Speak("llm", piece))
        await asyncio.sleep(0.01)
    await peer.send(Speak("llm", "", final=True))
    utt = await peer.utterance("llm")
    check_stream_invariants(utt)
    assert "".join(c.text for c in utt.of(Chunk)).split() == PARAGRAPH.split()
    check_heard(utt, PARAGRAPH)
    await peer.close()


async def test_final_flushes_text_without_terminator(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak("f", "this sentence has no full stop and waits for more"))
    with pytest.raises(asyncio.TimeoutError):
        await peer.recv(timeout=1.5)  # nothing is spoken yet: it may continue
    await peer.send(Speak("f", "", final=True))
    utt = await peer.utterance("f")
    check_stream_invariants(utt)
    text, _ = transcribe(utt.audio())
    assert word_error_rate("this sentence has no full stop and waits for more", text) <= 0.2
    await peer.close()


async def test_barge_in_cancels_and_nothing_old_follows(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak("old", PARAGRAPH * 3, final=True))
    await peer.until(lambda e: isinstance(e, Audio))
    await peer.send(Speak("new", "Sorry, a new question.", final=True))
    events = await peer.until(lambda e: isinstance(e, Done) and e.utterance == "new")
    cancel_at = next(i for i, e in enumerate(events) if isinstance(e, Cancelled))
    assert events[cancel_at].utterance == "old" and events[cancel_at].reason == "barge_in"
    assert not any(getattr(e, "utterance", None) == "old" for e in events[cancel_at + 1 :])
    new = Utterance([e for e in events if getattr(e, "utterance", None) == "new"])
    check_stream_invariants(new)
    await peer.close()


async def test_explicit_cancel_stops_speech(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Speak("c", PARAGRAPH * 3, final=True))
    await peer.until(lambda e: isinstance(e, Audio))
    await peer.send(Cancel())
    events = await peer.until(lambda e: isinstance(e, Cancelled))
    assert events[-1].utterance == "c" and events[-1].reason == "cancel"
    with pytest.raises(asyncio.TimeoutError):
        await peer.recv(timeout=1.0)  # silence: nothing of "c" follows
    # The connection still works, and the id cannot be reused.
    await peer.send(Speak("c", "again", final=True))
    await peer.expect_error("unknown_utterance")
    await peer.send(Speak("c2", "Still here.", final=True))
    check_stream_invariants(await peer.utterance("c2"))
    await peer.close()


async def test_queue_mode_plays_in_order(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Config(on_new_utterance="queue"))
    assert isinstance(await peer.recv(), Configured)
    await peer.send(Speak("q1", "First in line.", final=True))
    await peer.send(Speak("q2", "Second in line.", final=True))
    events = await peer.until(lambda e: isinstance(e, Done) and e.utterance == "q2")
    done_q1 = next(i for i, e in enumerate(events) if isinstance(e, Done) and e.utterance == "q1")
    first_q2 = next(i for i, e in enumerate(events) if isinstance(e, Audio) and e.utterance == "q2")
    assert done_q1 < first_q2
    assert not any(isinstance(e, Cancelled) for e in events)
    await peer.close()


async def test_two_concurrent_clients_both_stream(daemon: DaemonProcess) -> None:
    a, b = await Peer.connect(daemon.url), await Peer.connect(daemon.url)
    await a.send(Speak("a", PARAGRAPH * 2, final=True))
    await a.until(lambda e: isinstance(e, Audio))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await b.send(Speak("b", "Hello from the second client.", final=True))
    await b.until(lambda e: isinstance(e, Audio))
    b_first = loop.time() - t0
    ua, ub = await asyncio.gather(a.utterance("a"), b.utterance("b"))
    check_stream_invariants(ua)
    check_stream_invariants(ub)
    # B was not starved behind A's long paragraph: compared with the same text on
    # the now idle daemon, in the same run (machines differ 3x in speed, and CI
    # is loaded). Starved, B would wait for A's synthesis, which takes many times
    # longer than one short sentence. (Another text of the same length: the same
    # one would now come from the chunk cache, without the engine.)
    t1 = loop.time()
    await b.send(Speak("c", "Hello from the other client.", final=True))
    await b.until(lambda e: isinstance(e, Audio) and e.utterance == "c")
    alone = loop.time() - t1
    await b.utterance("c")
    assert b_first < 3 * alone + 1.0, (b_first, alone)
    text, _ = transcribe(ub.audio())
    assert word_error_rate("Hello from the second client.", text) <= 0.2
    await a.close()
    await b.close()


async def test_json_encoding_end_to_end(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url, encoding="json")
    assert peer.ready is not None and peer.ready.encoding == "json"
    await peer.send(Speak("j", "Browsers get binary audio frames.", final=True))
    utt = await peer.utterance("j")
    check_stream_invariants(utt)
    text, _ = transcribe(utt.audio())
    assert word_error_rate("Browsers get binary audio frames.", text) <= 0.2
    await peer.close()


@pytest.mark.parametrize("fmt", ["pcm_s16le", "pcm_f32le", "mulaw", "alaw"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
async def test_every_format_and_rate(daemon: DaemonProcess, fmt: str, rate: int) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Config(format=fmt, sample_rate=rate, frame_ms=40))
    configured = await peer.recv()
    assert isinstance(configured, Configured) and configured.format == fmt and configured.sample_rate == rate
    await peer.send(Speak("x", "Testing one two three.", final=True))
    utt = await peer.utterance("x")
    check_stream_invariants(utt)
    audio = utt.audio()
    assert all(f.format == fmt and f.sample_rate == rate for f in utt.of(Audio))
    assert all(f.samples <= rate * 40 // 1000 for f in utt.of(Audio))
    assert abs(len(audio) / rate - utt.events[-1].duration) < 1e-6
    assert 0.8 < len(audio) / rate < 4.0
    if rate >= 16000 and fmt in ("pcm_s16le", "mulaw"):  # the recognizer hears it (G.711 included)
        text, _ = transcribe(audio, rate)
        assert word_error_rate("Testing one two three.", text) <= 0.25, text
    else:
        assert float(np.sqrt(np.mean(audio**2))) > 0.01
    await peer.close()
