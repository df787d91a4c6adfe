"""Compressed audio (opus, mp3) from the real daemon with the real model: the
concatenated frames of an utterance decode (PyAV) to the same timeline as
pcm_s16le, a recognizer hears the text, word times fit the decoded audio, and
the bytes are several times fewer. docs/protocol.md, *Compressed audio*."""

from __future__ import annotations

import numpy as np
import pytest

from support.asr import median_start_error_s, transcribe, word_error_rate
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.audio.compressed import decode_stream
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, Cancelled, Chunk, Config, Configured, Done, Speak

pytestmark = pytest.mark.slow

# No numbers: the recognizer writes "ten" as "10", which would cost WER for nothing.
TEXT = (
    "The museum opens early in the morning. Tickets are cheap for adults, "
    "and young children get in for free. Please leave large bags at the front desk."
)
SR = 24000
LEAD = {"opus": 0, "mp3": 1105}
FORMATS = ("pcm_s16le", "opus", "mp3")


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess("--stream-utilisation", "inf")
    yield d
    assert d.stop() == 0, d.log()[-3000:]


@pytest.fixture(scope="module")
async def runs(daemon: DaemonProcess) -> dict[str, Utterance]:
    """The same text once per format, one after the other, on one connection."""
    peer = await Peer.connect(daemon.url)
    out: dict[str, Utterance] = {}
    for fmt in FORMATS:
        await peer.send(Config(format=fmt))  # type: ignore[arg-type]
        await peer.until(lambda e, f=fmt: isinstance(e, Configured) and e.format == f, timeout=10)
        await peer.send(Speak(f"u-{fmt}", TEXT, final=True))
        out[fmt] = await peer.utterance(f"u-{fmt}")
    await peer.close()
    return out


def _bytes(utt: Utterance) -> int:
    return sum(len(f.pcm) for f in utt.of(Audio))


def _wire_bytes(utt: Utterance) -> int:
    """The audio events as msgpack frames, headers included."""
    return sum(len(MsgpackCodec().encode(f)) for f in utt.of(Audio))


def _decoded(utt: Utterance, fmt: str) -> tuple[np.ndarray, int, int]:
    """(timeline audio decoded from the concatenated frames, its rate, raw decoded length)."""
    data = b"".join(f.pcm for f in utt.of(Audio))
    done = utt.of(Done)[0]
    raw, rate = decode_stream(data, fmt)
    audio, _ = decode_stream(data, fmt, lead=LEAD[fmt], samples=done.samples)
    return audio, rate, len(raw)


def _same_chunks(a: Utterance, b: Utterance) -> bool:
    return [c.text for c in a.of(Chunk)] == [c.text for c in b.of(Chunk)]


@pytest.mark.parametrize("fmt", ["opus", "mp3"])
async def test_compressed_utterance_decodes_to_the_pcm_timeline(runs: dict[str, Utterance], fmt: str) -> None:
    utt, pcm = runs[fmt], runs["pcm_s16le"]
    assert isinstance(utt.events[-1], Done), utt.events[-5:]
    check_stream_invariants(utt)  # contiguous offsets, words before their frame, done = sum of samples
    frames = utt.of(Audio)
    assert all(f.format == fmt and f.sample_rate == SR and f.lead == LEAD[fmt] for f in frames)
    done = utt.of(Done)[0]
    audio, rate, raw_len = _decoded(utt, fmt)
    scale = rate // SR
    # Duration vs done.samples, within the documented priming.
    if fmt == "opus":
        assert rate == 48000 and raw_len == done.samples * scale  # pre-skip and end trimmed by the decoder
    else:
        assert rate == SR and done.samples + 1105 <= raw_len < done.samples + 1105 + 2 * 576
    assert len(audio) == done.samples * scale
    timeline_s = len(audio) / rate

    # A recognizer hears the text in the decoded audio, and our word times match where it hears them.
    heard_text, heard = transcribe(audio, rate)
    wer = word_error_rate(TEXT, heard_text)
    median, matched = median_start_error_s([(w.text, w.start) for w in words_of(utt)], heard)
    ratio = _bytes(pcm) / _bytes(utt)
    wire_ratio = _wire_bytes(pcm) / _wire_bytes(utt)
    print(f"{fmt}: {_bytes(utt)} bytes vs pcm_s16le {_bytes(pcm)}: {ratio:.1f}x smaller "
          f"({_wire_bytes(utt)} vs {_wire_bytes(pcm)} as msgpack frames: {wire_ratio:.1f}x); "
          f"{len(frames)} frames for {done.duration:.2f} s; WER {wer:.3f}; word start vs ASR median "
          f"{median * 1000:.0f} ms over {matched} words; heard: {heard_text}")
    assert wer <= 0.10, heard_text
    assert median <= 0.150

    # Words lie inside the decoded audio, in order.
    words = words_of(utt)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= timeline_s + 1 / SR for w in words)

    # The model's output is the same as the pcm_s16le run's (same text, same
    # chunks): same word times, and the decoded audio lines up with the PCM to the sample.
    assert [w.text for w in words] == [w.text for w in words_of(pcm)]
    same = _same_chunks(utt, pcm)
    print(f"{fmt}: chunks {'identical to' if same else 'differ from'} the pcm_s16le run's")
    if same:
        assert done.samples == pcm.of(Done)[0].samples
        diffs = [abs(a.start - b.start) + abs(a.end - b.end) for a, b in zip(words, words_of(pcm))]
        assert max(diffs) <= 0.003, diffs
        ref = pcm.audio()
        y = audio[::scale]
        lags = list(range(-30, 31))
        core = slice(2000, len(ref) - 2000)
        score = [float(np.dot(ref[core], np.roll(y, -k)[core])) for k in lags]
        assert lags[int(np.argmax(score))] == 0, "decoded audio is shifted against the timeline"
    else:  # the segmenter's pace follows the measured speed; compare chunk by chunk
        pairs = [(c, d) for c, d in zip(utt.of(Chunk), pcm.of(Chunk)) if c.text == d.text]
        assert pairs, "no chunk in common with the pcm_s16le run"

    # Bandwidth: several times smaller than 16-bit PCM.
    assert ratio >= 5.0, ratio


async def test_opus_barge_in_sends_nothing_after_cancelled(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Config(format="opus"))
    await peer.send(Speak("old", TEXT + " " + TEXT, final=True))
    await peer.until(lambda e: isinstance(e, Audio) and e.utterance == "old")
    await peer.send(Speak("new", "Fresh start.", final=True))
    new = await peer.utterance("new")
    cut = next(i for i, e in enumerate(peer.events) if isinstance(e, Cancelled) and e.utterance == "old")
    assert peer.events[cut].reason == "barge_in"
    assert not [e for e in peer.events[cut + 1:] if getattr(e, "utterance", None) == "old"]
    check_stream_invariants(new)
    audio, rate, _ = _decoded(new, "opus")
    assert len(audio) == new.of(Done)[0].samples * rate // SR
    await peer.close()


async def test_a_rate_opus_cannot_carry_is_invalid_field(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    assert {"opus", "mp3"} <= set(peer.ready.formats)  # type: ignore[union-attr]
    await peer.send(Config(format="opus", sample_rate=16000))
    error = await peer.expect_error("invalid_field")
    assert "24000" in error.message
    await peer.send(Config(sample_rate=16000))
    await peer.until(lambda e: isinstance(e, Configured))
    await peer.send(Config(format="mp3"))
    await peer.expect_error("invalid_field")
    await peer.close()
