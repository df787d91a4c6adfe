"""Fakes for driving a daemon Session in-process: a synthesizer that makes a
tone per word (``WORD_S`` each), its voices and G2P, a ``Peer`` that plays the
client's side of the transport, and ``start``/``stop`` around a session.

They exist only to test scheduling and lifecycle fast and deterministically;
everything audible is tested against the real model in e2e/.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import numpy as np

from kokorod.config import ServerConfig
from kokorod.daemon.admission import Capacity, RtfEstimator
from kokorod.daemon.request_queue import RequestAdmission, RequestQueue
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.session import Services, Session
from kokorod.engine.base import CancelToken
from kokorod.errors import InputError
from kokorod.metrics import Metrics
from kokorod.protocol.codec import MsgpackCodec
from kokorod.protocol.messages import Cancelled, Done, Error, Ready
from kokorod.text.g2p import LanguageUnavailable
from kokorod.text.languages import Language
from kokorod.speech.chunk import SpeechChunk, Word

WORD_S = 0.3


class FakeVoices:
    def parse(self, spec: str) -> list[tuple[str, float]]:
        if spec != "af_heart":
            raise InputError(f"unknown voice {spec!r}", "kokorod voices")
        return [(spec, 1.0)]


class FakeG2P:
    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing

    def unavailable(self, lang: Language) -> LanguageUnavailable | None:
        return LanguageUnavailable(lang, "not here", "pip install it") if lang.code in self.missing else None


class FakeSynth:
    """Each word becomes WORD_S of tone; synthesis takes ``delay_s`` per call.
    A word written "#x" is one the G2P cannot say (reported as unspeakable)."""

    def __init__(self, delay_s: float = 0.01, fail_on: str | None = None, missing: tuple[str, ...] = ()) -> None:
        self.voices = FakeVoices()
        self.g2p = FakeG2P(missing)
        self.langs: list[str] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls = 0
        self.audio_s = 0.0

    def synthesize(self, text: str, *, voice: str, speed: float, cancel: CancelToken | None = None,
                   replacements: Any = (), lang: Language | None = None) -> SpeechChunk:
        self.calls += 1
        self.langs.append(lang.code if lang else "?")
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("model blew up")
        deadline = time.monotonic() + self.delay_s
        while time.monotonic() < deadline:
            if cancel is not None:
                cancel.raise_if_cancelled()
            time.sleep(0.001)
        all_words = [w.strip(".,!?") for w in text.split()]
        words = [w for w in all_words if not w.startswith("#")]
        n = int(WORD_S * 24000)
        t = np.arange(n * len(words)) / 24000
        audio = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
        self.audio_s += len(audio) / 24000
        return SpeechChunk(audio, [Word(w, i * n, (i + 1) * n) for i, w in enumerate(words)],
                           unspeakable=[w for w in all_words if w.startswith("#")])


class Peer:
    """In-process transport + message source for a Session."""

    def __init__(self, *, block_sends: bool = False) -> None:
        self.codec = MsgpackCodec()
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.events: list[Any] = []
        self.arrived = asyncio.Event()
        self.block = asyncio.Event()
        if not block_sends:
            self.block.set()

    async def send(self, frame: bytes | str) -> None:
        await self.block.wait()
        self.events.append(self.codec.decode_event(frame))
        self.arrived.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inbox.put(None)

    async def frames(self) -> AsyncIterator[bytes]:
        while (frame := await self.inbox.get()) is not None:
            yield frame

    async def say(self, message: Any) -> None:
        await self.inbox.put(self.codec.encode_message(message))

    async def wait_for(self, predicate: Any, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; got {[type(e).__name__ for e in self.events]}")
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass


async def start(synth: FakeSynth, *, config: ServerConfig | None = None, peer: Peer | None = None,
                capacity: Capacity | None = None, scheduler: EngineScheduler | None = None) -> tuple[Session, Peer, asyncio.Task[None], EngineScheduler]:
    config = config or ServerConfig()
    sched = scheduler or EngineScheduler()
    sched.start()
    services = Services(config, sched, synth, Metrics(), capacity or Capacity(config.limits.max_active_streams), ("af_heart",))  # type: ignore[arg-type]
    peer = peer or Peer()
    session = Session(services, MsgpackCodec(), peer, "test")
    task = asyncio.create_task(session.run(peer.frames()))
    await peer.wait_for(lambda e: isinstance(e, Ready))
    return session, peer, task, sched


async def stop(peer: Peer, task: asyncio.Task[None], sched: EngineScheduler) -> None:
    await peer.close()
    await asyncio.wait_for(task, 10)
    await sched.aclose()


def utt_events(peer: Peer, uid: str) -> list[Any]:
    return [e for e in peer.events if getattr(e, "utterance", None) == uid]


class PacedSynth(FakeSynth):
    """Takes at least ``rtf`` seconds per second of audio it makes."""

    def __init__(self, rtf: float) -> None:
        super().__init__()
        self.rtf = rtf

    def synthesize(self, text: str, **kwargs: Any) -> SpeechChunk:  # type: ignore[override]
        words = [w for w in text.split() if not w.startswith("#")]
        self.delay_s = self.rtf * WORD_S * len(words)
        return super().synthesize(text, **kwargs)


def seeded(rtf: float, *, slope: float = 0.0) -> RtfEstimator:
    est = RtfEstimator(slope=slope)
    est.seed(rtf * 10, 10.0)
    return est


class RequestDaemon:
    """Sessions sharing one stream slot, one request queue and one scheduler."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.capacity = Capacity(1)
        self.metrics = Metrics()
        self.requests = RequestAdmission(self.capacity, RequestQueue(4, timeout_s), self.metrics)
        self.sched = EngineScheduler()
        self.sched.start()
        self.tasks: list[tuple[Peer, asyncio.Task[None]]] = []

    async def connect(self, synth: FakeSynth) -> Peer:
        services = Services(ServerConfig(), self.sched, synth, self.metrics, self.capacity,  # type: ignore[arg-type]
                            ("af_heart",), (), self.requests)
        peer = Peer()
        session = Session(services, MsgpackCodec(), peer, f"s{len(self.tasks)}")
        self.tasks.append((peer, asyncio.create_task(session.run(peer.frames()))))
        await peer.wait_for(lambda e: isinstance(e, Ready))
        return peer

    async def close(self) -> None:
        for peer, task in self.tasks:
            await peer.close()
            await asyncio.wait_for(task, 10)
        await self.sched.aclose()


def ended(uid: str) -> Any:
    return lambda e: isinstance(e, (Done, Error, Cancelled)) and getattr(e, "utterance", None) == uid


async def local_services(synth: Any, config: ServerConfig | None = None) -> tuple[Services, EngineScheduler]:
    """Services for a ``LocalPeer`` over a fake engine, and the scheduler to stop after."""
    config = config or ServerConfig()
    sched = EngineScheduler()
    sched.start()
    return Services(config, sched, synth, Metrics(), Capacity(config.limits.max_active_streams), ("af_heart",)), sched  # type: ignore[arg-type]


async def collect_until(peer: Any, until: type, utterance: str) -> list[Any]:
    """A ``LocalPeer``'s events up to and including ``until`` for ``utterance``."""
    out: list[Any] = []
    async for event in peer.events():
        out.append(event)
        if isinstance(event, until) and getattr(event, "utterance", None) == utterance:
            break
    return out
