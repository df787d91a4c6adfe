"""Session with the rendered-chunk cache: a repeated utterance is served without
the engine (not even its queue), with the same frames and word times."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import numpy as np

from kokorod.config import Limits, ServerConfig
from kokorod.daemon.admission import Capacity
from kokorod.daemon.chunk_cache import ChunkCache
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.session import Services, Session
from kokorod.engine.base import CancelToken
from kokorod.metrics import Metrics
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Audio, Cancel, Cancelled, Config, Configured, Done, Ready, Speak
from kokorod.speech.chunk import SpeechChunk

from support.session_fakes import FakeSynth, Peer, stop

GREETING = "Hello there, thanks for calling. How can I help you today? #beep"


class DriftingSynth(FakeSynth):
    """FakeSynth whose every run differs a little (call-numbered noise): a
    second engine run could never reproduce the first's samples."""

    def synthesize(self, text: str, **kwargs: Any) -> SpeechChunk:
        kwargs.pop("lexicon", None)
        chunk = super().synthesize(text, **kwargs)
        noise = np.random.default_rng(self.calls).uniform(-0.01, 0.01, chunk.samples).astype(np.float32)
        return SpeechChunk(chunk.audio + noise, chunk.words, unspeakable=chunk.unspeakable)


async def _start(synth: FakeSynth, cache: ChunkCache | None, config: ServerConfig | None = None,
                 peer: Peer | None = None, sched: EngineScheduler | None = None,
                 ) -> tuple[Session, Peer, asyncio.Task[None], EngineScheduler, Metrics]:
    config = config or ServerConfig()
    if sched is None:
        sched = EngineScheduler()
        sched.start()
    metrics = Metrics()
    metrics.chunk_cache.cache = cache
    services = Services(config, sched, synth, metrics, Capacity(4), ("af_heart",), chunk_cache=cache)  # type: ignore[arg-type]
    peer = peer or Peer()
    session = Session(services, MsgpackCodec(), peer, "cached")
    task = asyncio.create_task(session.run(peer.frames()))
    if peer.block.is_set():  # a peer that never reads cannot wait for `ready`
        await peer.wait_for(lambda e: isinstance(e, Ready))
    return session, peer, task, sched, metrics


async def _speak(peer: Peer, uid: str, text: str, **fields: Any) -> list[Any]:
    await peer.say(Speak(uid, text, final=True, **fields))
    await peer.wait_for(lambda e: isinstance(e, (Done, Cancelled)) and e.utterance == uid)
    # Everything but the utterance id, in order: chunks, words, frames, warnings, done.
    return [{f.name: _plain(getattr(e, f.name)) for f in dataclasses.fields(e) if f.name != "utterance"}
            | {"type": type(e).__name__} for e in peer.events if getattr(e, "utterance", None) == uid]


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


async def test_a_repeated_utterance_does_not_run_the_engine_and_streams_the_same_events() -> None:
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    session, peer, task, sched, metrics = await _start(synth, cache)
    first = await _speak(peer, "u1", GREETING)
    calls, jobs = synth.calls, sched.jobs_run
    assert calls >= 2  # several chunks, so seams between them are covered
    second = await _speak(peer, "u2", GREETING)
    assert synth.calls == calls and sched.jobs_run == jobs  # neither run nor queued
    assert second == first  # frames, word times, chunk events, the unspeakable warning: identical
    assert any(e["type"] == "Audio" for e in first) and any(e["type"] == "WordEvent" for e in first)
    assert any(e["type"] == "WarningEvent" for e in second)  # "#beep" is still reported on a hit
    assert (cache.hits, cache.misses) == (calls, calls)
    values = metrics.render().decode()
    assert f"kokorod_chunk_cache_hits_total {float(calls)}" in values
    await stop(peer, task, sched)


async def test_anything_that_changes_the_audio_misses() -> None:
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    session, peer, task, sched, _ = await _start(synth, cache)
    await _speak(peer, "u1", "Good morning.")
    calls = synth.calls
    await _speak(peer, "u2", "Good morning.", speed=1.5)
    assert synth.calls == calls + 1
    await peer.say(Config(lexicon={"morning": "mˈɔɹnɪŋ"}))
    await peer.wait_for(lambda e: isinstance(e, Configured))
    await _speak(peer, "u3", "Good morning.")
    assert synth.calls == calls + 2
    await _speak(peer, "u4", "Good morning.")  # same lexicon: a hit again
    assert synth.calls == calls + 2
    await stop(peer, task, sched)


async def test_a_hit_does_not_wait_behind_a_busy_engine() -> None:
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    session, peer, task, sched, _ = await _start(synth, cache)
    await _speak(peer, "u1", "Please hold.")
    release = threading.Event()

    def hog(token: CancelToken) -> None:  # another stream's long job holds the only worker
        while not release.wait(0.01):
            token.raise_if_cancelled()

    hogging = asyncio.create_task(sched.submit(hog, urgency=lambda: -100.0))
    await asyncio.sleep(0.05)
    assert sched.queue_depth == 1
    events = await _speak(peer, "u2", "Please hold.")
    assert events[-1]["type"] == "Done" and not hogging.done()
    release.set()
    await hogging
    await stop(peer, task, sched)


async def test_cancelling_a_cached_utterance_still_cancels_it() -> None:
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    # A 2 s lookahead: u2 (its first chunk cached, ~10 s) is still speaking when the cancel comes.
    session, peer, task, sched, _ = await _start(synth, cache, ServerConfig(max_ahead_s=2.0))
    await _speak(peer, "u1", "Sentence number 0 is here. And more.")
    calls = synth.calls
    await peer.say(Speak("u2", "Sentence number 0 is here. " + " ".join(f"Sentence {i} is here." for i in range(8)),
                         final=True))
    await peer.wait_for(lambda e: isinstance(e, Audio) and e.utterance == "u2")
    await peer.say(Cancel(utterance="u2"))
    await peer.wait_for(lambda e: isinstance(e, Cancelled) and e.utterance == "u2")
    after = [e for e in peer.events[next(i for i, e in enumerate(peer.events) if isinstance(e, Cancelled)):]
             if getattr(e, "utterance", None) == "u2"]
    assert [type(e) for e in after] == [Cancelled]  # nothing of it after the cancel
    assert not any(isinstance(e, Done) and e.utterance == "u2" for e in peer.events)
    assert cache.hits >= 1 and synth.calls < calls + 8  # it began from the cache, and stopped early
    await stop(peer, task, sched)



SENTENCES = " ".join(f"Sentence number {i} is here." for i in range(4))  # 4 chunks of 1.2 s


async def test_hits_at_once_do_not_make_a_reading_client_look_slow() -> None:
    # Hits come faster than the writer hands frames to the socket; the backlog
    # is judged only after the time an engine run would have given the writer.
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    config = ServerConfig(limits=Limits(max_send_buffer_s=0.5))
    session, peer, task, sched, _ = await _start(synth, cache, config)
    await _speak(peer, "u1", SENTENCES)
    calls = synth.calls
    events = await _speak(peer, "u2", SENTENCES)
    assert synth.calls == calls and events[-1]["type"] == "Done"
    assert not any(e["type"] in ("Cancelled", "Error") for e in events)
    await stop(peer, task, sched)


async def test_a_client_that_does_not_read_is_still_cancelled_on_hits() -> None:
    synth = DriftingSynth()
    cache = ChunkCache(8 * 2**20, "fake")
    config = ServerConfig(limits=Limits(max_send_buffer_s=0.5))
    _, reader, task, sched, _ = await _start(synth, cache, config)
    await _speak(reader, "warm", SENTENCES)
    stuck = Peer(block_sends=True)
    session, _, stuck_task, _, _ = await _start(synth, cache, config, peer=stuck, sched=sched)
    calls = synth.calls
    await stuck.say(Speak("u", SENTENCES, final=True))
    for _ in range(1000):  # the backlog is judged after the time an engine run would take (~3 s here)
        if "u" in session._ended:
            break
        await asyncio.sleep(0.01)
    assert session._ended.get("u") == "cancelled: slow_consumer" and synth.calls == calls
    assert session.outbox.audio_s <= 0.5 + 1.2 + 0.01  # the bound, plus the chunk that found it over
    stuck.block.set()
    await stuck.wait_for(lambda e: isinstance(e, Cancelled) and e.reason == "slow_consumer")
    await asyncio.sleep(0.1)
    assert not any(isinstance(e, Done) for e in stuck.events)  # cancelled means nothing follows
    await stuck.close()
    await asyncio.wait_for(stuck_task, 10)
    await stop(reader, task, sched)
