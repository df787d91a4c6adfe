"""kokorod.integrations.livekit.TTS driven with LiveKit Agents' own API against a
real daemon and the real model: stream() with push_text / flush / end_input,
aclose() as barge-in, synthesize(); audio judged by Whisper, word times
against where Whisper hears the words."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc  # noqa: E402
from livekit.agents import APIConnectionError, APIConnectOptions  # noqa: E402
from livekit.agents.tts import SynthesizedAudio  # noqa: E402
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, TimedString  # noqa: E402
from livekit.agents.utils import is_given  # noqa: E402
from livekit.agents.voice import io  # noqa: E402

from support.asr import median_start_error_s, transcribe, word_error_rate  # noqa: E402
from support.daemon import DaemonProcess, free_port  # noqa: E402
from kokorod.integrations.livekit import TTS  # noqa: E402

pytestmark = pytest.mark.slow
WAIT_S = 240.0  # waits only; a loaded 2-core box is slow

TEXT = ("The museum opens early in the morning. Tickets are cheaper for students, "
        "and children under five get in for free.")
LONG = ("This is a long story about a lighthouse keeper who lived alone on a rocky island. "
        "Every night he climbed the stairs, lit the lamp and watched the ships pass by in the dark. "
        "He counted them one by one until the morning came, and then he slept until noon.")


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess()
    yield d
    assert d.stop() == 0, d.log()[-3000:]


@pytest.fixture
async def tts(daemon: DaemonProcess):  # type: ignore[no-untyped-def]
    engine = TTS(url=daemon.url)
    yield engine
    await engine.aclose()  # closes the pooled connections, even after a failure


def metric(daemon: DaemonProcess, series: str) -> float:
    body = urllib.request.urlopen(daemon.http + "/metrics", timeout=5).read().decode()
    found = re.search("^" + re.escape(series) + r" (\S+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def split_mid_word(text: str, sizes: tuple[int, ...] = (3, 1, 5, 2, 7, 4)) -> list[str]:
    """Fragments as an LLM streams them: cut anywhere, even inside words."""
    pieces, i, k = [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        pieces.append(text[i:i + n])
        i, k = i + n, k + 1
    return pieces


def pcm_of(events: list[SynthesizedAudio]) -> np.ndarray:
    if not events:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.frombuffer(e.frame.data, dtype=np.int16) for e in events]).astype(np.float32) / 32768


def timed_of(events: list[SynthesizedAudio]) -> list[TimedString]:
    return [t for e in events for t in e.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


async def collect(stream: Any) -> list[SynthesizedAudio]:
    async def run() -> list[SynthesizedAudio]:
        return [ev async for ev in stream]
    return await asyncio.wait_for(run(), WAIT_S)


def check_frames(events: list[SynthesizedAudio], sample_rate: int = 24000) -> None:
    assert events
    assert {(e.frame.sample_rate, e.frame.num_channels) for e in events} == {(sample_rate, 1)}
    assert len({e.segment_id for e in events}) == 1 and events[0].segment_id
    assert [e.is_final for e in events].count(True) == 1 and events[-1].is_final


def check_heard_and_timed(events: list[SynthesizedAudio], reference: str) -> None:
    """Whisper hears the text; the TimedStrings add up to it, their times are
    monotonic, inside the audio, and where Whisper hears each word."""
    audio = pcm_of(events)
    duration_s = audio.size / 24000
    heard_text, heard = transcribe(audio, 24000)
    wer = word_error_rate(reference, heard_text)
    timed = timed_of(events)
    words = [t for t in timed if is_given(t.start_time)]
    median, matched = median_start_error_s([(str(t).strip(" ,.!?;:"), float(t.start_time)) for t in words], heard)
    print(f"WER {wer:.3f}, {len(words)} timed words over {duration_s:.2f} s, start vs Whisper median "
          f"{median * 1000:.0f} ms over {matched} words; heard: {heard_text}")
    assert wer < 0.2, heard_text
    assert "".join(timed).split() == reference.split()
    starts = [float(t.start_time) for t in words]
    assert starts == sorted(starts)
    for t in words:
        assert is_given(t.end_time)
        assert 0 <= t.start_time <= t.end_time <= duration_s + 0.01, (str(t), t.start_time, t.end_time, duration_s)
    assert matched >= len(words) // 2
    assert median < 0.25


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_stream_speaks_fragments_split_mid_word_with_aligned_words(tts: TTS) -> None:
    assert tts.capabilities.streaming and tts.capabilities.aligned_transcript and tts.sample_rate == 24000
    async with tts.stream() as stream:
        for piece in split_mid_word(TEXT):
            stream.push_text(piece)
        stream.end_input()
        events = await collect(stream)
    check_frames(events)
    check_heard_and_timed(events, TEXT)


async def test_text_pushed_while_audio_plays_and_flush_ends_the_segment(tts: TTS) -> None:
    """Text keeps coming after audio started; flush() (no sentence terminator)
    makes the daemon speak the tail and ends the segment before end_input.
    livekit-agents 1.8 ignores text pushed after a flush (one segment a
    stream), so it is not spoken; a second segment is a second stream, on the
    pooled connection."""
    # The first clause is long enough for the daemon to speak it before the rest exists.
    first, rest = "Good morning to all of you, and welcome to our show. Today we will talk", " about the mountains"
    stream = tts.stream()
    events: list[SynthesizedAudio] = []
    stream.push_text(first)
    it = stream.__aiter__()
    events.append(await asyncio.wait_for(it.__anext__(), WAIT_S))  # audio before the rest of the text exists
    for piece in split_mid_word(rest):
        stream.push_text(piece)
    stream.flush()
    while not events[-1].is_final:  # the segment ends without end_input
        events.append(await asyncio.wait_for(it.__anext__(), WAIT_S))
    stream.push_text(" and this is never spoken.")
    stream.end_input()
    events += [ev async for ev in it]
    await stream.aclose()
    check_frames(events)
    spoken = first + rest
    heard_text, _ = transcribe(pcm_of(events), 24000)
    assert "spoken" not in heard_text.lower() and word_error_rate(spoken, heard_text) < 0.2, heard_text

    async with tts.stream() as second:  # the next segment
        second.push_text("See you tomorrow.")
        second.end_input()
        more = await collect(second)
    check_frames(more)
    assert more[0].segment_id != events[0].segment_id
    check_heard_and_timed(more, "See you tomorrow.")


async def test_aclose_mid_utterance_is_a_barge_in(daemon: DaemonProcess) -> None:
    before_tasks = other_tasks()
    tts = TTS(url=daemon.url)
    try:
        await barge_in(daemon, tts)
    finally:
        await tts.aclose()
    await asyncio.sleep(0)
    assert other_tasks() <= before_tasks


async def barge_in(daemon: DaemonProcess, tts: TTS) -> None:
    cancelled_key = 'kokorod_utterances_cancelled_total{reason="cancel"}'
    cancelled_before = metric(daemon, cancelled_key)
    stream = tts.stream()
    stream.push_text(LONG)
    stream.end_input()
    it = stream.__aiter__()
    got = [await asyncio.wait_for(it.__anext__(), WAIT_S)]
    await stream.aclose()  # what AgentSession does when the user interrupts
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(it.__anext__(), WAIT_S)
    assert sum(e.frame.duration for e in got) < 5.0  # far less than the text's ~15 s
    mine = ("kokorod-livekit", "TTS.", "AudioEmitter")  # the stream's tasks (ours and the framework's)
    assert not [t for t in other_tasks() if t.get_name().startswith(mine)]

    deadline = asyncio.get_running_loop().time() + WAIT_S
    while metric(daemon, cancelled_key) < cancelled_before + 1:
        assert asyncio.get_running_loop().time() < deadline, "the daemon never cancelled"
        await asyncio.sleep(0.1)
    assert metric(daemon, cancelled_key) == cancelled_before + 1

    # Nothing of the stream is left running; the idle pooled connection is
    # what remains until the TTS is closed, and it still works.
    async with tts.stream() as after:
        after.push_text("Yes?")
        after.end_input()
        check_frames(await collect(after))


class PlayingSink(io.AudioOutput):
    """An audio device stand-in: plays each frame in real time (LiveKit's
    transcript follows playback), and reports playback as a room's output does."""

    def __init__(self) -> None:
        super().__init__(label="test-sink", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=24000)
        self.frames: list[rtc.AudioFrame] = []
        self._playing = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        await asyncio.sleep(frame.duration)

    def flush(self) -> None:
        super().flush()
        self._playing = False
        played_s = sum(f.duration for f in self.frames)
        asyncio.get_running_loop().call_soon(
            lambda: self.on_playback_finished(playback_position=played_s, interrupted=False))

    def clear_buffer(self) -> None:
        self._playing = False
        self.on_playback_finished(playback_position=sum(f.duration for f in self.frames), interrupted=True)


class TranscriptSink(io.TextOutput):
    def __init__(self) -> None:
        super().__init__(label="test-transcript", next_in_chain=None)
        self.parts: list[str] = []

    async def capture_text(self, text: str) -> None:
        self.parts.append(str(text))

    def flush(self) -> None:
        pass


async def test_agent_session_speaks_with_the_tts_aligned_transcript(tts: TTS) -> None:
    """The whole voice pipeline without a room: AgentSession.say() with an
    LLM-like token stream goes through the framework's tts_node into our
    stream, and its transcript synchronizer shows our timed words."""
    from livekit.agents import Agent, AgentSession
    from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

    session = AgentSession(tts=tts, use_tts_aligned_transcript=True)
    sink, transcript = PlayingSink(), TranscriptSink()
    sync = TranscriptSynchronizer(next_in_chain_audio=sink, next_in_chain_text=transcript)
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    said = "Hello there, my friend. This is kokorod speaking through LiveKit."

    async def tokens() -> AsyncIterator[str]:
        for piece in split_mid_word(said):
            await asyncio.sleep(0.02)
            yield piece

    await session.start(agent=Agent(instructions="say what you are told"))
    try:
        await asyncio.wait_for(session.say(tokens()).wait_for_playout(), WAIT_S)
    finally:
        await session.aclose()
    audio = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in sink.frames]).astype(np.float32) / 32768
    assert {f.sample_rate for f in sink.frames} == {24000}
    heard_text, _ = transcribe(audio, 24000)
    assert word_error_rate(said, heard_text) < 0.2, heard_text
    assert "".join(transcript.parts).split() == said.split()  # as written, word by word
    assert len(transcript.parts) >= len(said.split())


async def test_synthesize_gives_one_chunked_utterance(tts: TTS) -> None:
    async with tts.synthesize(TEXT) as chunked:
        events = await collect(chunked)
    assert {(e.frame.sample_rate, e.frame.num_channels) for e in events} == {(24000, 1)}
    assert events[-1].is_final
    check_heard_and_timed(events, TEXT)


async def test_other_sample_rates_come_resampled_by_the_daemon(daemon: DaemonProcess) -> None:
    tts = TTS(url=daemon.url, sample_rate=16000)
    try:
        frame = await asyncio.wait_for(tts.synthesize("A telephone line carries less.").collect(), WAIT_S)
    finally:
        await tts.aclose()
    assert frame.sample_rate == 16000 and frame.duration > 0.3
    heard_text, _ = transcribe(np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768, 16000)
    assert word_error_rate("a telephone line carries less", heard_text) < 0.2, heard_text


async def test_no_daemon_is_a_connection_error_livekit_understands() -> None:
    tts = TTS(url=f"ws://127.0.0.1:{free_port()}/v1/stream")
    stream = tts.stream(conn_options=APIConnectOptions(max_retry=0, timeout=5))
    stream.push_text("Hello.")
    stream.end_input()
    with pytest.raises(APIConnectionError, match="no kokorod daemon"):
        await collect(stream)
    await stream.aclose()
    await tts.aclose()


async def test_a_daemon_that_dies_mid_utterance_is_resumed_on_the_next(daemon: DaemonProcess) -> None:
    """kokorod's client fails over inside the stream: LiveKit sees one segment,
    one timeline, the whole text heard and every word shown once."""
    doomed = DaemonProcess()
    tts = TTS(url=[doomed.url, daemon.url])
    started_key = "kokorod_utterances_started_total"
    spare_before = metric(daemon, started_key)
    try:
        stream = tts.stream()
        stream.push_text(LONG)
        stream.end_input()
        it = stream.__aiter__()
        events = [await asyncio.wait_for(it.__anext__(), WAIT_S)]
        while sum(e.frame.duration for e in events) < 1.0:
            events.append(await asyncio.wait_for(it.__anext__(), WAIT_S))
        doomed.proc.kill()  # gone without a goodbye, mid-sentence
        events += await collect(it)
        await stream.aclose()
    finally:
        await tts.aclose()
        doomed.stop()
    assert metric(daemon, started_key) == spare_before + 1  # the rest was spoken by the other daemon
    check_frames(events)
    check_heard_and_timed(events, LONG)
