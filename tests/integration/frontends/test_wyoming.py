"""The Wyoming server on an in-process daemon with a fake engine (tones), driven
by the wyoming package's own client: event mapping, voice mapping, streaming,
the legacy ``synthesize`` inside a stream, errors, disconnects, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error as WyomingError
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from kokorod.assets.voices import VoiceStore
from kokorod.config import Limits, ServerConfig
from kokorod.frontends.wyoming import WyomingFrontend, start_wyoming
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.core import Daemon, language_catalog
from kokorod.daemon.session import Services

from support.session_fakes import WORD_S, FakeSynth

VOICES = ("af_bella", "af_heart", "am_adam", "bf_emma", "ef_dora", "em_alex", "jf_alpha", "zf_xiaobei")


class RecordingSynth(FakeSynth):  # type: ignore[misc,valid-type]
    """The fake engine over real voice-name parsing (blends included), recording
    each call's voice and text."""

    def __init__(self, voice_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        voice_dir.mkdir(parents=True, exist_ok=True)
        for name in VOICES:
            (voice_dir / f"{name}.bin").touch()
        self.voices = VoiceStore(voice_dir, fetch_missing=False)
        self.voices_used: list[str] = []
        self.texts: list[str] = []

    def synthesize(self, text: str, *, voice: str, **kwargs: Any) -> Any:
        self.voices_used.append(voice)
        self.texts.append(text)
        return super().synthesize(text, voice=voice, **kwargs)


@contextlib.asynccontextmanager
async def wyoming_daemon(tmp_path: Path, *, config: ServerConfig | None = None, missing: tuple[str, ...] = ("ja",),
                         **synth_kwargs: Any) -> AsyncIterator[tuple[Daemon, WyomingFrontend, RecordingSynth]]:
    """A Daemon whose services are the fake engine (no model, no warm-up), with
    the Wyoming server on a free loopback port."""
    config = config or ServerConfig(wyoming_uri="tcp://127.0.0.1:0")
    synth = RecordingSynth(tmp_path / "voices", missing=missing, **synth_kwargs)
    scheduler = EngineScheduler()
    daemon = Daemon(config, scheduler=scheduler)
    scheduler.start()
    daemon.services = Services(config, scheduler, synth, daemon.metrics, daemon.capacity, VOICES,  # type: ignore[arg-type]
                               language_catalog(VOICES, synth))  # type: ignore[arg-type]
    daemon.ready = True
    frontend = await start_wyoming(daemon, config)
    try:
        yield daemon, frontend, synth
    finally:
        await daemon.shutdown()
        await frontend.aclose()


def client(frontend: WyomingFrontend) -> AsyncTcpClient:
    return AsyncTcpClient("127.0.0.1", frontend.port, read_timeout=10)


async def read_until(c: AsyncTcpClient, *types: Any) -> list[Event]:
    """Events until one of ``types`` (or the connection's end, then None is last)."""
    events: list[Any] = []
    while True:
        event = await c.read_event()
        events.append(event)
        if event is None or any(t.is_type(event.type) for t in types):
            return events


def audio_of(events: list[Any]) -> bytes:
    return b"".join(AudioChunk.from_event(e).audio for e in events if e is not None and AudioChunk.is_type(e.type))


def kinds(events: list[Any]) -> list[str]:
    out: list[str] = []
    for e in events:
        kind = "EOF" if e is None else e.type
        if not (out and out[-1] == kind == "audio-chunk"):
            out.append(kind)
    return out


def samples_for(words: int) -> int:
    return words * int(WORD_S * 24000)


def assert_spoken_once(events: list[Any], words: int) -> None:
    """The fake engine makes WORD_S of tone per word; the timeline adds short
    pauses between chunks, so twice the text would be twice the length."""
    samples = len(audio_of(events)) // 2
    assert samples_for(words) <= samples < 1.5 * samples_for(words), (samples, samples_for(words))


async def test_describe_lists_every_voice_with_its_language(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(Describe().event())
            event = await c.read_event()
    assert event is not None and Info.is_type(event.type)
    info = Info.from_event(event)
    (program,) = info.tts
    assert program.name == "kokorod" and program.installed and program.supports_synthesize_streaming
    assert program.version and program.attribution.url
    voices = {v.name: v for v in program.voices}
    assert set(voices) == set(VOICES)
    assert voices["af_heart"].languages == ["en_US"] and voices["bf_emma"].languages == ["en_GB"]
    assert voices["ef_dora"].languages == ["es_ES"] and voices["zf_xiaobei"].languages == ["zh_CN"]
    assert voices["af_heart"].installed and voices["af_heart"].description == "Heart (American English, female)"
    assert not voices["jf_alpha"].installed  # its G2P is "missing" here: Home Assistant hides it


async def test_one_shot_synthesize_streams_audio_start_chunks_stop(tmp_path: Path) -> None:
    text = "One two three four. Five six seven."
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, synth):
        async with client(frontend) as c:
            await c.write_event(Synthesize(text=text).event())
            events = await read_until(c, AudioStop)
            # A second request on the same connection works too.
            await c.write_event(Synthesize(text="Eight nine.").event())
            second = await read_until(c, AudioStop)
    assert kinds(events) == ["audio-start", "audio-chunk", "audio-stop"]
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    assert all((ch.rate, ch.width, ch.channels) == (24000, 2, 1) for ch in chunks)
    assert max(ch.samples for ch in chunks) == 2400  # the session's 100 ms frames
    assert_spoken_once(events, 7)
    assert AudioStop.from_event(events[-1]).timestamp == len(audio_of(events)) // 2 * 1000 // 24000
    assert set(synth.voices_used) == {"af_heart"}
    assert_spoken_once(second, 2)


async def test_streaming_feeds_one_utterance_speaks_sentences_as_they_complete_and_ignores_legacy(tmp_path: Path) -> None:
    first = "The first sentence is here. "
    rest = ["And ", "then ", "the ", "second ", "one ", "follows."]
    async with wyoming_daemon(tmp_path) as (daemon, frontend, synth):
        async with client(frontend) as c:
            await c.write_event(SynthesizeStart(voice=SynthesizeVoice(name="af_bella")).event())
            for word in first.split(" "):
                await c.write_event(SynthesizeChunk(text=word + " ").event())
            await c.write_event(SynthesizeChunk(text="And ").event())
            # The first sentence is heard before the stream ends.
            early = await read_until(c, AudioChunk)
            assert kinds(early) == ["audio-start", "audio-chunk"]
            for word in rest[1:]:
                await c.write_event(SynthesizeChunk(text=word).event())
            # What Home Assistant sends inside a stream "for compatibility": ignored.
            await c.write_event(Synthesize(text=first + "".join(rest), voice=SynthesizeVoice(name="af_bella")).event())
            await c.write_event(SynthesizeStop().event())
            events = early + await read_until(c, SynthesizeStopped)
    assert kinds(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    words = len((first + "".join(rest)).split())
    assert_spoken_once(events, words)
    assert set(synth.voices_used) == {"af_bella"}
    assert daemon.metrics.utterances_started._value.get() == 1  # ONE utterance for the whole stream


async def test_compat_synthesize_after_stop_is_ignored_too(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path, delay_s=0.2) as (_daemon, frontend, synth):
        async with client(frontend) as c:
            await c.write_event(SynthesizeStart().event())
            for word in ("Hello ", "there."):
                await c.write_event(SynthesizeChunk(text=word).event())
            await c.write_event(SynthesizeStop().event())
            await c.write_event(Synthesize(text="Hello there.").event())
            events = await read_until(c, SynthesizeStopped)
            await c.write_event(Describe().event())  # nothing else was queued before this answer...
            after = await c.read_event()
    assert_spoken_once(events, 2)
    assert after is not None and Info.is_type(after.type)
    assert len(synth.texts) == 1


@pytest.mark.parametrize(("voice", "expected_voice", "expected_lang"), [
    (SynthesizeVoice(name="af_heart:0.6,af_bella:0.4"), "af_heart:0.6,af_bella:0.4", "en-us"),
    (SynthesizeVoice(name="ef_dora"), "ef_dora", "es"),
    (SynthesizeVoice(language="es_ES"), "ef_dora", "es"),
    (SynthesizeVoice(language="en-gb"), "bf_emma", "en-gb"),
    (SynthesizeVoice(language="zh"), "zf_xiaobei", "zh"),
    (SynthesizeVoice(name="bf_emma", speaker="whoever"), "bf_emma", "en-gb"),
])
async def test_voice_selection(tmp_path: Path, voice: SynthesizeVoice, expected_voice: str, expected_lang: str) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, synth):
        async with client(frontend) as c:
            await c.write_event(Synthesize(text="Hola amigos.", voice=voice).event())
            events = await read_until(c, AudioStop)
    assert audio_of(events)
    assert synth.voices_used == [expected_voice] and synth.langs == [expected_lang]


@pytest.mark.parametrize(("voice", "code"), [
    (SynthesizeVoice(name="xx_nobody"), "unknown_voice"),
    (SynthesizeVoice(name="af_heart:0.5,zz_who:0.5"), "unknown_voice"),
    (SynthesizeVoice(language="de_DE"), "invalid_field"),
])
async def test_unknown_voice_or_language_is_an_error_event_then_close(tmp_path: Path, voice: SynthesizeVoice, code: str) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, synth):
        for start in (Synthesize(text="Hello.", voice=voice), SynthesizeStart(voice=voice)):
            async with client(frontend) as c:
                await c.write_event(start.event())
                events = await read_until(c, WyomingError)
                error = WyomingError.from_event(events[-1])
                assert error.code == code, error
                assert await c.read_event() is None  # closed, so Home Assistant does not wait for audio
        # The server is fine: the next connection is served.
        async with client(frontend) as c:
            await c.write_event(Synthesize(text="Still here.").event())
            assert audio_of(await read_until(c, AudioStop))
    assert synth.calls == 1


async def test_language_unavailable_is_an_error_event(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(Synthesize(text="こんにちは。", voice=SynthesizeVoice(name="jf_alpha")).event())
            events = await read_until(c, WyomingError)
    assert WyomingError.from_event(events[-1]).code == "language_unavailable"


async def test_overloaded_is_an_error_event(tmp_path: Path) -> None:
    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", limits=Limits(max_active_streams=1))
    async with wyoming_daemon(tmp_path, config=config) as (_daemon, frontend, _synth):
        async with client(frontend) as holder:
            await holder.write_event(SynthesizeStart().event())  # an open stream holds the one slot
            await holder.write_event(SynthesizeChunk(text="Waiting for the rest").event())
            await asyncio.sleep(0.1)
            async with client(frontend) as c:
                await c.write_event(Synthesize(text="Me too.").event())
                events = await read_until(c, WyomingError)
                assert WyomingError.from_event(events[-1]).code == "overloaded"
                assert await c.read_event() is None


async def test_disconnect_cancels_synthesis_in_flight(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path, delay_s=0.3) as (daemon, frontend, synth):
        c = client(frontend)
        await c.connect()
        await c.write_event(Synthesize(text="word " * 200).event())
        await read_until(c, AudioChunk)
        await c.disconnect()
        await asyncio.sleep(0.2)
        calls = synth.calls
        await asyncio.sleep(1.0)
        assert synth.calls <= calls + 1  # at most the one in flight when we left... which is cancelled
        assert not daemon.capacity.active and not frontend.handlers and not daemon.sessions
        assert daemon.metrics.utterances_cancelled.labels(reason="disconnect")._value.get() == 1


async def test_unspeakable_text_is_logged_and_empty_text_answers_empty_audio(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "kokorod.wyoming")
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(Synthesize(text="Hello #glyph world.").event())
            events = await read_until(c, AudioStop)
            assert_spoken_once(events, 2)
            await c.write_event(Synthesize(text="").event())
            empty = await read_until(c, AudioStop)
            assert kinds(empty) == ["audio-start", "audio-stop"]
            await c.write_event(SynthesizeStart().event())
            await c.write_event(SynthesizeStop().event())
            assert kinds(await read_until(c, SynthesizeStopped)) == ["audio-start", "audio-stop", "synthesize-stopped"]
    # Logged as what and how much, never the text itself.
    assert any("unspeakable" in r.getMessage() and "chars=6" in r.getMessage() for r in caplog.records)
    assert not any("#glyph" in r.getMessage() for r in caplog.records)


async def test_chunk_outside_a_stream_is_an_error_but_the_connection_stays(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(SynthesizeChunk(text="stray").event())
            events = await read_until(c, WyomingError)
            assert WyomingError.from_event(events[-1]).code == "invalid_field"
            await c.write_event(Synthesize(text="Fine.").event())
            assert audio_of(await read_until(c, AudioStop))


async def test_shutdown_drains_then_closes_and_refuses_new_connections(tmp_path: Path) -> None:
    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", drain_timeout_s=0.3)
    async with wyoming_daemon(tmp_path, config=config, delay_s=0.2) as (daemon, frontend, _synth):
        c = client(frontend)
        await c.connect()
        await c.write_event(Synthesize(text="word " * 100).event())
        await read_until(c, AudioChunk)
        shutdown = asyncio.create_task(daemon.shutdown())
        events = await read_until(c, WyomingError)
        assert WyomingError.from_event(events[-1]).code == "shutdown"
        assert (await read_until(c))[-1] is None
        await c.disconnect()
        await shutdown
        async with client(frontend) as late:  # still listening until aclose: refused politely
            refused = await read_until(late, WyomingError)
            assert WyomingError.from_event(refused[-1]).code == "shutdown"
        await frontend.aclose()
        with pytest.raises(OSError):
            async with client(frontend):
                pass


async def test_idle_connection_is_closed(tmp_path: Path) -> None:
    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", idle_timeout_s=0.3)
    async with wyoming_daemon(tmp_path, config=config) as (daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(SynthesizeStart().event())
            await c.write_event(SynthesizeChunk(text="and then nothing").event())  # never stopped
            assert (await read_until(c))[-1] is None
        await asyncio.sleep(0.1)
        assert not daemon.capacity.active


async def test_a_burst_of_tiny_fragments_is_coalesced_not_rate_limited(tmp_path: Path) -> None:
    """An LLM emitting faster than the session's messages_per_s: nothing dropped."""
    text = " ".join(f"Word{i}" for i in range(150)) + "."
    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", max_ahead_s=1000.0,
                          limits=Limits(messages_per_s=20.0, message_burst=20))
    async with wyoming_daemon(tmp_path, config=config) as (daemon, frontend, synth):
        async with client(frontend) as c:
            await c.write_event(SynthesizeStart().event())
            for i in range(0, len(text), 2):  # ~570 fragments in one burst
                await c.write_event(SynthesizeChunk(text=text[i:i + 2]).event())
            await c.write_event(SynthesizeStop().event())
            events = await read_until(c, SynthesizeStopped, WyomingError)
    assert kinds(events)[-1] == "synthesize-stopped", kinds(events)
    assert_spoken_once(events, 150)
    assert " ".join(synth.texts).split() == text.split()
    assert not list(daemon.metrics.protocol_errors.collect()[0].samples)


async def test_long_text_is_split_under_the_message_size_limit(tmp_path: Path) -> None:
    text = "Many words follow here. " * 100  # 2400 characters, 400 words
    config = ServerConfig(wyoming_uri="tcp://127.0.0.1:0", max_ahead_s=1000.0, limits=Limits(max_message_bytes=4096 + 12 * 100))
    async with wyoming_daemon(tmp_path, config=config) as (_daemon, frontend, _synth):
        async with client(frontend) as c:
            await c.write_event(Synthesize(text=text).event())
            one_shot = await read_until(c, AudioStop, WyomingError)
            await c.write_event(SynthesizeStart().event())
            await c.write_event(SynthesizeChunk(text=text).event())
            await c.write_event(SynthesizeStop().event())
            streamed = await read_until(c, SynthesizeStopped, WyomingError)
    assert kinds(one_shot)[-1] == "audio-stop" and kinds(streamed)[-1] == "synthesize-stopped"
    assert_spoken_once(one_shot, 400)
    assert_spoken_once(streamed, 400)


async def test_malformed_events_are_error_events_and_the_connection_stays(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path) as (_daemon, frontend, synth):
        async with client(frontend) as c:
            for bad in (Event("synthesize", {}), Event("synthesize-chunk", {}),
                        Event("synthesize", {"text": "Hi.", "voice": 5})):
                await c.write_event(bad)
                events = await read_until(c, WyomingError)
                assert WyomingError.from_event(events[-1]).code == "bad_message", bad
            await c.write_event(Event("ping-of-some-kind", {"x": 1}))  # unknown events are ignored
            await c.write_event(Synthesize(text="Fine.").event())
            assert_spoken_once(await read_until(c, AudioStop), 1)
    assert synth.calls == 1


async def test_before_the_model_is_ready_connections_get_not_ready(tmp_path: Path) -> None:
    async with wyoming_daemon(tmp_path) as (daemon, frontend, _synth):
        daemon.ready = False  # as between daemon.listen() and the end of daemon.load()
        async with client(frontend) as c:
            events = await read_until(c, WyomingError)
            assert WyomingError.from_event(events[-1]).code == "not_ready"
            assert await c.read_event() is None
        daemon.ready = True
        async with client(frontend) as c:
            await c.write_event(Describe().event())
            assert Info.is_type((await c.read_event()).type)  # type: ignore[union-attr]
