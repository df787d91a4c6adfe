"""The daemon's core: one engine, one scheduler, many sessions.

It implements kokorod.daemon.front_door.FrontDoor, the one interface the
front-end adapters (WebSocket, OpenAI HTTP, Wyoming) take at construction; it
never imports them. kokorod.app wires the two and owns the listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence

from kokorod.auth import AuthPolicy
from kokorod.config import ServerConfig, ServerLimits
from kokorod.daemon.admission import Capacity, RtfEstimator
from kokorod.daemon.headroom import Headroom
from kokorod.daemon.chunk_cache import build_chunk_cache, engine_identity
from kokorod.daemon.engine_tuning import Tuner, swap_engines
from kokorod.daemon.connection_slots import ConnectionSlots, Slot, address_of
from kokorod.daemon.front_door import PlainResponse, Refusal, RequestHead
from kokorod.daemon.lexicon_service import install_lexicon
from kokorod.daemon.local_peer import LocalPeer
from kokorod.daemon.request_queue import RequestAdmission, RequestQueue
from kokorod.daemon.routes import plain_route
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.session import Services, Session
from kokorod.daemon.warmup import Probe, measure_slope, release_free_heap, warm_up
from kokorod.daemon.workers import WorkerSynthesizers
from kokorod.engine.choice import Choice
from kokorod.engine.selection import pending_of
from kokorod.errors import KokorodError
from kokorod.metrics import Metrics
from kokorod.protocol.messages import CapacityInfo, LanguageInfo
from kokorod.speech.synthesizer import Synthesizer
from kokorod.text.detect import DEFAULT_VOICE_FOR, LanguageDetector
from kokorod.text.languages import LANGUAGES

log = logging.getLogger("kokorod.daemon.server")  # the name log consumers know (docs/operations.md)

_SHUTTING_DOWN = Refusal(503, "shutting_down", "not_ready", "kokorod is shutting down")
_LOADING = Refusal(503, "not_ready", "not_ready", "kokorod is loading its model; try again shortly")


def language_catalog(voices: tuple[str, ...], synth: Synthesizer) -> tuple[LanguageInfo, ...]:
    """Every language, its voices, and whether its G2P can load here (for ``ready``)."""
    out = []
    for lang in LANGUAGES:
        problem = synth.g2p.unavailable(lang)
        out.append(LanguageInfo(lang.code, lang.name, tuple(v for v in voices if v[:1] == lang.letter),
                                problem is None, None if problem is None else str(problem)))
    return tuple(out)


@dataclass
class Daemon:
    """A running kokorod's core. ``load()`` makes it ready; the adapters that
    kokorod.app starts before that answer health at once and refuse the rest
    with ``not_ready`` until then."""

    config: ServerConfig
    synth: Synthesizer | Sequence[Synthesizer] | None = None  # one per engine worker, or one for all
    metrics: Metrics = field(default_factory=Metrics)
    scheduler: EngineScheduler = None  # type: ignore[assignment]  # built from the config when not given
    sessions: set[Session] = field(default_factory=set)
    ready: bool = False
    draining: bool = False

    def __post_init__(self) -> None:
        if self.scheduler is None:
            self.scheduler = EngineScheduler(workers=self.config.engine_workers)
        # The daemon's own measurement of its speed: seeded by the warm-up, then
        # fed by every synthesis the workers complete.
        self.estimator = RtfEstimator()
        self.capacity = Capacity(self.config.limits.max_active_streams, estimator=self.estimator,
                                 workers=self.scheduler.workers, utilisation=self.config.stream_utilisation,
                                 headroom=Headroom(fixed=self.config.admission_margin))
        # Chunks run while streams share the engine teach the conservative RTF.
        self.estimator.concurrency = lambda: self.capacity.active
        # Requests (OpenAI, Wyoming synthesize) wait here for the same slots (docs/operations.md, Capacity).
        self.requests = RequestAdmission(self.capacity, RequestQueue(self.config.limits.max_queued,
                                                                     self.config.limits.queue_timeout_s), self.metrics)
        self.workers: WorkerSynthesizers | None = None
        self._slope_task: asyncio.Task[float] | None = None
        self._tuning_task: asyncio.Task[Choice | None] | None = None
        self.services: Services | None = None
        self.auth = AuthPolicy(self.config.token, self.config.allowed_origins, self.config.port,
                               bind_host=self.config.host, insecure=self.config.insecure)
        # Every connection of every protocol, one count (docs/operations.md, Limits).
        self.slots = ConnectionSlots(
            self.config.limits.max_connections, self.config.limits.max_connections_per_ip,
            on_refused=lambda reason: self.metrics.connections_refused.labels(reason=reason).inc())

    # -- FrontDoor -------------------------------------------------------------

    @property
    def limits(self) -> ServerLimits:
        return self.config.limits

    @property
    def voices(self) -> tuple[str, ...]:
        return self.services.voices if self.services is not None else ()

    @property
    def languages(self) -> tuple[LanguageInfo, ...]:
        return self.services.languages if self.services is not None else ()

    def admit(self, peer: Any, protocol: str) -> Slot | None:
        slot = self.slots.acquire(address_of(peer), protocol)
        self.metrics.connections_accepted.set(self.slots.open)
        return slot

    def refusal(self, slot: Slot | None = None) -> Refusal | None:
        if self.draining:
            return _SHUTTING_DOWN
        if not self.ready or self.services is None:
            return _LOADING
        return slot.refusal if slot is not None else None

    def plain_route(self, method: str, head: RequestHead) -> PlainResponse | None:
        if method not in ("GET", "HEAD"):
            return None
        return plain_route(head, ready=self.ready, draining=self.draining, auth=self.auth,
                           render_metrics=self._render_metrics)

    def _render_metrics(self) -> bytes:
        self.metrics.sample_runtime(queue_depth=self.scheduler.queue_depth, ready=self.ready,
                                    send_backlog_s=sum(s.outbox.audio_s for s in self.sessions),
                                    background_jobs=self.scheduler.background_jobs,
                                    background_preemptions=self.scheduler.background_preemptions)
        self.metrics.sample_capacity(self.capacity.plan())
        self.metrics.connections_accepted.set(self.slots.open)
        return self.metrics.render()

    def capacity_info(self) -> CapacityInfo:
        """What ``ready`` says of the daemon's capacity (measured here, not known to a session)."""
        info = self.capacity.info()
        queue = self.requests.queue
        return dataclasses.replace(info, queued=len(queue), max_queued=queue.max_queued,
                                   queue_timeout_s=queue.timeout_s)

    @contextlib.asynccontextmanager
    async def session(self, codec: Any, transport: Any, session_id: str) -> AsyncIterator[Session]:
        assert self.services is not None, "session() before load()"
        session = Session(self.services, codec, transport, session_id)
        self.sessions.add(session)
        self.metrics.connections.inc()
        try:
            yield session
        finally:
            self.sessions.discard(session)
            self.metrics.connections.dec()

    @contextlib.asynccontextmanager
    async def local_peer(self) -> AsyncIterator[LocalPeer]:
        """An in-process session for a front-end adapter (OpenAI HTTP, Wyoming),
        counted and drained like a WebSocket connection."""
        assert self.services is not None, "local_peer() before load()"
        peer = LocalPeer(self.services)
        self.sessions.add(peer.session)
        self.metrics.connections.inc()
        try:
            async with peer:
                yield peer
        finally:
            self.sessions.discard(peer.session)
            self.metrics.connections.dec()

    # -- life cycle -------------------------------------------------------------

    async def load(self, loader: Callable[[], Synthesizer | Sequence[Synthesizer]] | None = None) -> None:
        """Load the model (on an engine thread, so the loop keeps answering
        /healthz), then pay every worker's first run before a client does, measure
        the engine's speed and prove synthesis works: only then is the daemon ready."""
        if loader is not None:
            self.synth = await self.scheduler.run_direct(loader)
        assert self.synth is not None, "Daemon needs a synthesizer or a loader"
        synths = list(self.synth) if isinstance(self.synth, (list, tuple)) else [self.synth]
        workers = self.workers = WorkerSynthesizers(synths, self.estimator)
        voices = tuple(workers.voices.names())
        # Off the loop: without the graph cache the engine's identity hashes the model file.
        cache = await asyncio.to_thread(build_chunk_cache, self.config.chunk_cache_mb,
                                         getattr(synths[0], "engine", None))
        self.metrics.chunk_cache.cache = cache
        engine = getattr(synths[0], "engine", None)
        self.metrics.engine_choice.choice = getattr(engine, "choice", None)
        self.services = Services(self.config, self.scheduler, workers, self.metrics, self.capacity,  # type: ignore[arg-type]
                                 voices, language_catalog(voices, workers), requests=self.requests,
                                 chunk_cache=cache)  # type: ignore[arg-type]
        choice = self.metrics.engine_choice.choice
        self.services.engine = choice.name if choice is not None else getattr(engine, "name", None)
        # The --lexicon file, validated now (a bad one is a one-line error); SIGHUP reloads it.
        install_lexicon(self)
        for info in self.services.languages:
            if not info.available:
                log.warning("language %s unavailable: %s", info.code, info.fix)
        detector = self._language_detector(voices)
        try:
            probe = await warm_up(self.scheduler, workers, self.estimator, self.config.voice)
            await detector
            release_free_heap()  # the detector's load may end after the warm-up's trim
        except KokorodError:
            raise
        except Exception as exc:
            raise KokorodError(f"warm-up synthesis failed: {type(exc).__name__}: {exc}",
                               "run `kokorod doctor`; `kokorod fetch` repairs missing or corrupt assets") from exc
        self.ready = True
        self._log_ready(probe)
        # The speed slope is measured after ready, behind every listener's job.
        self._slope_task = asyncio.create_task(
            measure_slope(self.scheduler, workers, self.estimator, self.config.voice, probe), name="kokorod-measure-slope")
        pending = pending_of(self.metrics.engine_choice.choice)
        if pending is not None:  # --engine auto, no record yet: measured when idle, then applied
            tuner = Tuner(pending, self.scheduler, workers, lambda: self.capacity.active == 0, self._switch_engine)
            self._tuning_task = asyncio.create_task(self._tune(tuner), name="kokorod-engine-tuning")

    async def _tune(self, tuner: Tuner) -> Choice | None:
        try:
            return await tuner.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # never fatal: int8 keeps serving, and the next start measures again
            log.exception("measuring the engine candidates failed; int8 stays")
            return None

    async def _switch_engine(self, choice: Choice, engines: list[Any]) -> None:
        """Apply a measured choice: the workers' engines (when it is not int8), the
        chunk cache's key (cached audio is the old engine's), and every report."""
        if engines:
            assert self.workers is not None and self.services is not None
            await asyncio.to_thread(swap_engines, self.workers, engines)
            cache = self.services.chunk_cache
            if cache is not None:
                identity = await asyncio.to_thread(engine_identity, engines[0])
                if identity is None:  # nothing to key it by: off, as at load (build_chunk_cache)
                    self.services.chunk_cache = self.metrics.chunk_cache.cache = None
                else:
                    cache.rekey(identity)
        self.metrics.engine_choice.choice = choice
        if self.services is not None:
            self.services.engine = choice.name
        log.info("engine %s from now on (%s)", choice.name, choice.reason,
                 extra={"event": "engine_switched" if engines else "engine_kept", "fields": choice.to_dict()})

    def _language_detector(self, voices: tuple[str, ...]) -> "asyncio.Future[None]":
        """lang auto's detector, over the languages installed here, and its voices
        (a --voice-for naming no voice fails here); its model loads on a thread
        while the engine warms up."""
        services = self.services
        assert services is not None
        table = dict(DEFAULT_VOICE_FOR) | dict(self.config.voice_for)
        unknown = [f"{code}={voice}" for code, voice in self.config.voice_for if voice not in voices]
        if unknown:
            raise KokorodError(f"--voice-for {', '.join(unknown)}: no such voice", "kokorod voices lists them")
        services.voice_for = table
        # The model is kept mapped in the same asset cache as the synthesizer's lexicons.
        cache_dir = self.workers.synths[0].g2p.cache_dir if self.workers is not None else None
        services.detector = LanguageDetector(tuple(info.code for info in services.languages if info.available),
                                             cache_dir=cache_dir)
        return asyncio.ensure_future(asyncio.to_thread(services.detector.load))

    def _log_ready(self, probe: Probe) -> None:
        plan = self.capacity.plan()
        threads = self.config.threads_per_worker()
        cache = self.services.chunk_cache if self.services is not None else None
        fields = {
            "warmup_s": round(probe.warmup_s, 2), "rtf": round(probe.rtf, 3),
            "speed_slope": round(self.estimator.slope, 3), "engine_workers": plan.workers,
            "threads_per_worker": threads, "utilisation": plan.utilisation, "max_streams": plan.max_streams,
            "max_active_streams": self.config.limits.max_active_streams,
            "admission_rtf": None if plan.admission_rtf is None else round(plan.admission_rtf, 3),
            "admission_margin": round(plan.margin, 3),
            "chunk_cache_max_bytes": cache.max_bytes if cache is not None else 0,
        }
        choice = self.metrics.engine_choice.choice
        if choice is not None:  # the candidates' figures were logged when the engine was chosen
            fields["engine"] = choice.to_dict()
        log.info("ready (warm-up %.2f s, engine %s): RTF %.3f at 1x (admission plans with %s x margin %.2f%s); "
                 "%d engine worker%s x %s; admits %s stream%s at 1x (utilisation bound %g%s)",
                 probe.warmup_s, "?" if choice is None else f"{choice.name}, {choice.source}", probe.rtf, "?" if plan.admission_rtf is None else f"{plan.admission_rtf:.3f}",
                 plan.margin, ", fixed" if self.capacity.headroom.fixed else ", learnt", plan.workers,
                 "" if plan.workers == 1 else "s",
                 "default threads" if threads is None else f"{threads} thread{'' if threads == 1 else 's'}",
                 plan.max_streams if plan.max_streams is not None else "any",
                 "" if plan.max_streams == 1 else "s", plan.utilisation,
                 "" if self.config.limits.max_active_streams is None else f", capped at {self.config.limits.max_active_streams}",
                 extra={"event": "ready", "fields": fields})
        if plan.rtf is not None and plan.rtf > plan.utilisation:
            log.warning("this machine synthesizes a stream at RTF %.3f, above the %g bound: even a lone stream "
                        "may underrun (a less busy or faster machine helps; docs/operations.md, Capacity)",
                        plan.rtf, plan.utilisation)

    async def drain(self) -> None:
        """Shutdown, first half: refuse new sessions (``/readyz`` answers 503
        meanwhile, the listeners stay open), let streams finish (bounded),
        close every session with 1001."""
        self.ready, self.draining = False, True
        sessions = list(self.sessions)
        await asyncio.gather(*(s.drain(self.config.drain_timeout_s) for s in sessions), return_exceptions=True)
        await asyncio.gather(*(s.transport.close(1001, "kokorod is shutting down") for s in sessions),
                             return_exceptions=True)

    async def aclose(self) -> None:
        """Shutdown, last half (after the listeners closed): stop the engine."""
        for task in (self._slope_task, self._tuning_task):
            if task is not None:
                task.cancel()
                await asyncio.wait([task])  # never swallows our own cancellation
        await self.scheduler.aclose()

    async def shutdown(self) -> None:
        """Both halves, for a core without listeners (tests, in-process use)."""
        await self.drain()
        await self.aclose()
