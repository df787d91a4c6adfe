"""What every session of the daemon shares, and the two-method transport a
session talks to its peer through (a WebSocket, or an in-process peer)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from kokorod.config import ServerConfig
from kokorod.daemon.admission import Capacity
from kokorod.daemon.chunk_cache import ChunkCache
from kokorod.daemon.pacing import SpeechRates
from kokorod.daemon.request_queue import RequestAdmission
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.metrics import Metrics
from kokorod.protocol.messages import CapacityInfo, LanguageInfo
from kokorod.speech.backend import SpeechBackend
from kokorod.text.detect import DEFAULT_VOICE_FOR, LanguageDetector


class Transport(Protocol):
    async def send(self, frame: bytes | str) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass
class Services:
    """What every session shares."""

    config: ServerConfig
    scheduler: EngineScheduler
    synth: SpeechBackend  # a Synthesizer, or WorkerSynthesizers (one per engine worker)
    metrics: Metrics
    capacity: Capacity
    voices: tuple[str, ...]
    languages: tuple[LanguageInfo, ...] = ()
    requests: RequestAdmission | None = None  # None: no request queue, every utterance is a stream
    chunk_cache: ChunkCache | None = None  # rendered chunks by what made them (None: off)
    rates: SpeechRates = field(default_factory=SpeechRates)  # speaking rate and per-run overhead, learnt
    # lang "auto": the detector (candidates: the languages installed here) and
    # the voice of each language for text not in the caller's voice's language.
    detector: LanguageDetector = field(default_factory=LanguageDetector)
    voice_for: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VOICE_FOR))
    engine: str | None = None  # the engine in use, as ready.capacity reports it

    def capacity_info(self) -> CapacityInfo:
        """What ``ready`` tells a client of this daemon's capacity, as measured
        now: its streams and, with a request queue, how long that is."""
        info = self.capacity.info()
        if self.engine is not None:
            info = dataclasses.replace(info, engine=self.engine)
        if self.requests is not None:
            queue = self.requests.queue
            info = dataclasses.replace(info, queued=len(queue), max_queued=queue.max_queued,
                                       queue_timeout_s=queue.timeout_s)
        return info


class MessageRateLimiter:
    """Token bucket over messages; excess is dropped with at most one error a second."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate_per_s, float(burst)
        self.tokens, self.stamp, self.last_error = float(burst), now, -1e9

    def allow(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
