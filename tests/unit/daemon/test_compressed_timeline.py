"""Compressed audio on the protocol (opus, mp3): the timeline's frame bookkeeping
against what PyAV actually decodes, cancel, the wire fields, and a Session with
a fake engine. No sockets, no model."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from support.session_fakes import FakeSynth, start, stop, utt_events
from kokorod.audio.compressed import FrameEncoder, decode_stream
from kokorod.daemon.outbox import Outbox
from kokorod.protocol.codec import JsonCodec, MsgpackCodec
from kokorod.protocol.messages import (
    FORMATS, Audio, Cancel, format_rate_problem, Cancelled, Chunk, Config, Configured, Done, Error, Speak, WordEvent,
)
from kokorod.daemon.timeline import OutputFormat, UtteranceTimeline
from kokorod.speech.chunk import SpeechChunk, Word

SR = 24000
COMPRESSED = ("opus", "mp3")
LEAD = {"opus": 0, "mp3": 1105}


def _chunk(seconds: float, words: list[tuple[str, float, float]], f0: float = 220.0) -> SpeechChunk:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    # A chirp with an envelope: aligns unambiguously by correlation.
    audio = 0.3 * np.sin(2 * np.pi * (f0 * t + 150 * t * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t))
    return SpeechChunk(audio.astype(np.float32), [Word(w, int(s * SR), int(e * SR)) for w, s, e in words])


CHUNKS = [
    ("Hello there,", _chunk(1.0, [("Hello", 0.1, 0.4), ("there", 0.45, 0.9)])),
    ("my friend.", _chunk(0.83, [("my", 0.0, 0.2), ("friend", 0.25, 0.8)], 330.0)),
    ("Bye.", _chunk(0.61, [("Bye", 0.3, 0.6)], 180.0)),
]
TOTAL = sum(c.samples for _, c in CHUNKS)


def _render(fmt: str, frame_ms: int) -> tuple[UtteranceTimeline, list[object]]:
    tl = UtteranceTimeline("u", OutputFormat(fmt, SR, frame_ms))
    events: list[object] = []
    for text, chunk in CHUNKS:
        events += tl.render(text, chunk)
    events += tl.finish()
    return tl, events


def _input() -> np.ndarray:
    from kokorod.audio.formats import float_to_int16, int16_to_float

    return int16_to_float(float_to_int16(np.concatenate([c.audio for _, c in CHUNKS])))


@pytest.mark.parametrize("frame_ms", [20, 100, 1000])
@pytest.mark.parametrize("fmt", COMPRESSED)
def test_frames_tile_the_timeline_and_words_precede_the_frame_completing_them(fmt: str, frame_ms: int) -> None:
    tl, events = _render(fmt, frame_ms)
    audio = [e for e in events if isinstance(e, Audio)]
    done = events[-1]
    assert isinstance(done, Done) and isinstance(events[0], Chunk)
    offset = 0
    for i, frame in enumerate(audio):
        assert (frame.seq, frame.offset) == (i, offset)
        assert frame.format == fmt and frame.sample_rate == SR and frame.lead == LEAD[fmt]
        assert frame.pcm, "a compressed frame always carries bytes"
        # Frames start on a page / MP3 frame boundary.
        if fmt == "opus":
            assert frame.pcm[:4] == b"OggS"
        else:
            assert frame.pcm[0] == 0xFF and frame.pcm[1] & 0xE0 == 0xE0
        assert frame.samples > 0 or i == len(audio) - 1, "only the flush frame may complete nothing new"
        offset += frame.samples
    # done counts timeline samples, exactly what PCM would: the sum of the frames.
    assert done.samples == offset == TOTAL
    assert done.duration == pytest.approx(TOTAL / SR)
    assert tl.bytes_out == sum(len(f.pcm) for f in audio)
    # Every word goes out before the frame whose samples hold its start, and after
    # every frame that ends before its start.
    completed = 0
    for e in events:
        if isinstance(e, Audio):
            completed = e.offset + e.samples
        elif isinstance(e, WordEvent):
            assert e.start * SR >= completed - 1e-6, (e, completed)
    words = [e for e in events if isinstance(e, WordEvent)]
    assert [w.text for w in words] == ["Hello", "there", "my", "friend", "Bye"]
    # The same word times as PCM: the codec does not move the timeline.
    _, pcm_events = _render("pcm_s16le", frame_ms)
    assert [(w.start, w.end) for w in words] == [(w.start, w.end) for w in pcm_events if isinstance(w, WordEvent)]
    # Frames are about frame_ms long, give or take the codec's framing and delay.
    if frame_ms >= 100:
        assert all(f.samples <= SR * frame_ms // 1000 + 2400 for f in audio)


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_concatenated_frames_decode_to_the_timeline_after_lead(fmt: str) -> None:
    _, events = _render(fmt, 100)
    audio = [e for e in events if isinstance(e, Audio)]
    done = events[-1]
    assert isinstance(done, Done)
    raw, rate = decode_stream(b"".join(f.pcm for f in audio), fmt)
    scale = rate // SR
    if fmt == "opus":
        # Pre-skip and the end granule are applied by the decoder: exactly the timeline.
        assert rate == 48000 and len(raw) == done.samples * scale
    else:
        # MP3: lead samples first, and the end padded to whole 576-sample frames.
        assert rate == SR
        assert done.samples + LEAD[fmt] <= len(raw) < done.samples + LEAD[fmt] + 2 * 576
    y, _ = decode_stream(b"".join(f.pcm for f in audio), fmt, lead=LEAD[fmt], samples=done.samples)
    if scale > 1:
        y = y[::scale]
    x = _input()
    assert len(y) == len(x)
    # Aligned to the sample: the best correlation lag is 0, and the error is codec-small.
    lags = range(-8, 9)
    score = [float(np.dot(x[100 + max(0, -k): len(x) - 100 - max(0, k)],
                          y[100 + max(0, k): len(y) - 100 - max(0, -k)][: len(x) - 200 - abs(k)])) for k in lags]
    assert lags[int(np.argmax(score))] == 0, score
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 8, snr


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_each_prefix_of_frames_decodes_the_samples_it_claims(fmt: str) -> None:
    _, events = _render(fmt, 100)
    audio = [e for e in events if isinstance(e, Audio)]
    data = b""
    for frame in audio[:-1]:  # before the flush: the stream is still open
        data += frame.pcm
        raw, rate = decode_stream(data, fmt)
        decoded = len(raw) * SR // rate - LEAD[fmt]
        # The bytes so far complete at least what they claim; Ogg Opus exactly
        # (complete pages to the last granule), MP3 up to its frame size.
        if fmt == "opus":
            assert decoded == frame.offset + frame.samples
        else:
            assert frame.offset + frame.samples <= decoded < frame.offset + frame.samples + 2 * 576


def test_mp3_priming_bytes_are_carried_into_the_first_frame() -> None:
    enc = FrameEncoder("mp3")
    first = None
    fed = 0
    while first is None:
        first = enc.encode(np.zeros(480, np.float32))
        fed += 480
    # LAME's first packet decodes to lead only: its bytes went out with the next one.
    assert first.offset == 0 and first.samples > 0 and first.data
    assert enc.lead == 1105


def test_close_discards_the_encoder_and_nothing_follows() -> None:
    tl = UtteranceTimeline("u", OutputFormat("opus", SR, 100))
    events = tl.render(*CHUNKS[0])
    assert any(isinstance(e, Audio) for e in events)
    encoder = tl._encoder
    assert encoder is not None and encoder.encoder.samples_out < encoder.encoder.samples_in  # holds some back
    tl.close()
    assert encoder.encoder.closed  # its PyAV container is closed
    assert tl.render(*CHUNKS[1]) == [] and tl.finish() == []
    tl.close()  # idempotent


def test_an_utterance_that_never_encodes_opens_no_encoder() -> None:
    tl = UtteranceTimeline("u", OutputFormat("mp3", SR, 100))
    tl.close()
    assert tl._encoder is not None and tl._encoder._encoder is None


def test_discard_from_another_thread_while_encoding_is_safe() -> None:
    enc = FrameEncoder("opus")
    enc.encode(np.zeros(4800, np.float32))
    started, results = threading.Event(), []

    def work() -> None:
        started.set()
        for _ in range(20):
            results.append(enc.encode(np.random.default_rng(1).normal(0, 0.1, 24000).astype(np.float32)))

    thread = threading.Thread(target=work)
    thread.start()
    started.wait()
    enc.discard()
    thread.join(10)
    assert not thread.is_alive()
    assert enc.closed and enc.encoder.closed
    assert results[-1] is None  # encode after discard makes nothing
    assert enc.finish() is None


def test_cancel_purges_every_compressed_frame_of_the_utterance() -> None:
    outbox = Outbox()
    _, events_a = _render("opus", 100)
    _, events_b = _render("mp3", 100)
    for a, b in zip(events_a, events_b):
        outbox.put(a)
        outbox.put(type(b)(*[("v" if f == "utterance" else getattr(b, f)) for f in b.__dataclass_fields__]))  # type: ignore[call-overload]
    b_audio_s = sum(e.samples for e in events_b if isinstance(e, Audio)) / SR
    outbox.purge("u")
    left = [outbox._items.popleft()[0] for _ in range(len(outbox))]
    assert left and all(e.utterance == "v" for e in left)
    assert outbox.audio_s == pytest.approx(b_audio_s, abs=1e-5)


# --- wire ------------------------------------------------------------------


def test_formats_and_rates_on_the_wire() -> None:
    assert {"opus", "mp3"} <= set(FORMATS)
    codec = JsonCodec()
    assert codec.decode('{"type":"config","format":"opus"}') == Config(format="opus")
    assert codec.decode('{"type":"config","format":"mp3","sample_rate":24000}') == Config(format="mp3", sample_rate=24000)
    # Each field is valid on its own; the session judges the pair (with its own
    # current settings), see test_session_speaks_opus_and_rejects_a_rate_it_cannot_carry.
    assert format_rate_problem("opus", 24000) is None and format_rate_problem("pcm_s16le", 8000) is None
    for rate in (8000, 16000, 22050, 44100, 48000):
        for fmt in COMPRESSED:
            assert "24000" in (format_rate_problem(fmt, rate) or "")


@pytest.mark.parametrize("codec", [JsonCodec(), MsgpackCodec()])
def test_lead_round_trips_and_is_absent_for_pcm(codec: JsonCodec | MsgpackCodec) -> None:
    event = Audio("u", 0, 0, 1764, SR, "opus", b"OggS\x00junk", 0)
    back = codec.decode_event(codec.encode(event))
    assert back == event and "lead" in event.header()
    pcm = Audio("u", 0, 0, 2, SR, "pcm_s16le", b"\0\0\0\0")
    assert "lead" not in pcm.header() and codec.decode_event(codec.encode(pcm)).lead is None


# --- session (fake engine) ---------------------------------------------------


async def test_session_speaks_opus_and_rejects_a_rate_it_cannot_carry() -> None:
    session, peer, task, sched = await start(FakeSynth())
    await peer.say(Config(sample_rate=16000))
    await peer.wait_for(lambda e: isinstance(e, Configured) and e.sample_rate == 16000)
    await peer.say(Config(format="opus", voice="af_heart"))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "invalid_field" and "24000" in error.message
    assert session.fmt.format == "pcm_s16le" and session.fmt.sample_rate == 16000  # nothing changed
    await peer.say(Config(format="opus", sample_rate=24000))
    await peer.wait_for(lambda e: isinstance(e, Configured) and e.format == "opus")
    await peer.say(Config(sample_rate=48000))
    error = await peer.wait_for(lambda e: isinstance(e, Error) and e is not error)
    assert error.code == "invalid_field" and session.fmt.sample_rate == 24000

    await peer.say(Speak("u", "One two three. Four five six seven.", final=True))
    done = await peer.wait_for(lambda e: isinstance(e, Done))
    events = utt_events(peer, "u")
    frames = [e for e in events if isinstance(e, Audio)]
    assert all(f.format == "opus" and f.lead == 0 for f in frames)
    assert done.samples == sum(f.samples for f in frames) >= 7 * int(0.3 * SR)
    raw, rate = decode_stream(b"".join(f.pcm for f in frames), "opus")
    assert len(raw) * SR // rate == done.samples
    await stop(peer, task, sched)


async def test_session_cancel_sends_nothing_of_a_compressed_utterance_after_cancelled() -> None:
    session, peer, task, sched = await start(FakeSynth(delay_s=0.05))
    await peer.say(Config(format="mp3"))
    await peer.say(Speak("old", "word " * 40 + ". More words here. " * 10, final=True))
    await peer.wait_for(lambda e: isinstance(e, Audio))
    timeline = session.utterances["old"].timeline
    await peer.say(Speak("new", "Fresh start now.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "new")
    idx = next(i for i, e in enumerate(peer.events) if isinstance(e, Cancelled))
    assert peer.events[idx].utterance == "old" and peer.events[idx].reason == "barge_in"
    assert all(getattr(e, "utterance", None) != "old" for e in peer.events[idx + 1:])
    assert timeline.closed and timeline._encoder is not None and timeline._encoder.closed
    new = [e for e in utt_events(peer, "new") if isinstance(e, Audio)]
    assert new and new[0].seq == 0 and new[0].offset == 0 and new[0].format == "mp3"
    await peer.say(Cancel())
    await asyncio.sleep(0)
    await stop(peer, task, sched)
