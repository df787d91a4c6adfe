"""The daemon: websockets' asyncio server, HTTP endpoints, startup and draining.

Everything protocol-shaped lives in ``protocol/`` and ``session.py``; this
module only wires sockets to sessions and answers plain HTTP through
websockets' ``process_request`` hook.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.resources
import logging
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, AsyncIterator, Callable, Sequence

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kokorod.daemon.admission import RtfEstimator
from kokorod.daemon.headroom import Headroom
from kokorod.auth import AuthPolicy, load_token
from kokorod.config import ServerConfig, limits_from_args
from kokorod.errors import KokorodError
from kokorod.daemon.guarded_connection import REASON_BUFFER, ConnectionBudget, GuardedConnection, guarded_connection
from kokorod.frontends.local import LocalPeer
from kokorod.frontends.openai import OpenAIFrontend
from kokorod.daemon.lexicon_service import install_lexicon, on_sighup
from kokorod.metrics import Metrics
from kokorod.protocol.codec import SUBPROTOCOLS, Codec, codec_for_subprotocol
from kokorod.protocol.messages import LanguageInfo, Ready
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.daemon.admission import Capacity
from kokorod.daemon.request_queue import RequestAdmission, RequestQueue
from kokorod.daemon.session import Services, Session
from kokorod.synthesizer import Synthesizer
from kokorod.text.detect import DEFAULT_VOICE_FOR, LanguageDetector
from kokorod.text.languages import LANGUAGES
from kokorod.daemon.warmup import Probe, measure_slope, release_free_heap, warm_up
from kokorod.daemon.workers import WorkerSynthesizers
from kokorod.daemon.chunk_cache import build_chunk_cache

log = logging.getLogger("kokorod.daemon.server")
STREAM_PATH = "/v1/stream"
# Kernel send buffer per client socket. Left alone, Linux grows it up to
# tcp_wmem's maximum (4 MiB here) even for a client that never reads: a minute
# of audio out of reach of --max-send-buffer-s. A fixed size keeps that bound
# honest (and kernel memory per stuck client small) while leaving room for far
# more than real-time audio over any sane link. Linux doubles the value given.
SOCKET_SEND_BUFFER_BYTES = 128 * 1024
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/player-worklet.js": ("player-worklet.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def language_catalog(voices: tuple[str, ...], synth: Synthesizer) -> tuple[LanguageInfo, ...]:
    """Every language, its voices, and whether its G2P can load here (for ``ready``)."""
    out = []
    for lang in LANGUAGES:
        problem = synth.g2p.unavailable(lang)
        out.append(LanguageInfo(lang.code, lang.name, tuple(v for v in voices if v[:1] == lang.letter),
                                problem is None, None if problem is None else str(problem)))
    return tuple(out)


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": "no-store"})
    for key, value in (extra or {}).items():
        headers[key] = value
    return Response(status, HTTPStatus(status).phrase, headers, body)


@dataclass
class _Activity:
    """When the client last sent a message (loop time), for the idle timeout."""

    last_message: float


@dataclass
class Daemon:
    """A running kokorod: one engine, one scheduler, many sessions.

    It listens before the model is loaded, so /healthz answers (and a busy port
    fails) at once; /readyz and the WebSocket wait for warm-up.
    """

    config: ServerConfig
    synth: Synthesizer | Sequence[Synthesizer] | None = None  # one per engine worker, or one for all
    metrics: Metrics = field(default_factory=Metrics)
    scheduler: EngineScheduler = None  # type: ignore[assignment]  # built from the config when not given
    sessions: set[Session] = field(default_factory=set)
    ready: bool = False
    draining: bool = False
    server: Server | None = None

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
        self.wyoming: Any = None  # kokorod.frontends.wyoming.WyomingFrontend when --wyoming-uri is given
        self.services: Services | None = None
        self.auth = AuthPolicy(self.config.token, self.config.allowed_origins, self.config.port,
                               bind_host=self.config.host, insecure=self.config.insecure)
        # The OpenAI-compatible HTTP API on the same port (docs/openai.md).
        self.http = OpenAIFrontend(self, plain=lambda request: self._process_request(None, request))  # type: ignore[arg-type]

    async def start(self, loader: Callable[[], Synthesizer | Sequence[Synthesizer]] | None = None) -> None:
        await self.listen()
        await self.load(loader)

    async def listen(self) -> None:
        self.scheduler.start()
        limits = self.config.limits
        try:
            self.server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                select_subprotocol=self._select_subprotocol,
                compression=None,  # PCM does not compress; deflate would only cost CPU
                max_size=limits.hard_max_message_bytes,
                ping_interval=self.config.ping_interval_s or None,
                ping_timeout=self.config.ping_timeout_s or None,
                max_queue=32,
                create_connection=guarded_connection(self.http.protocol, self._connection_budget()),
            )
        except OSError as exc:
            raise KokorodError(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}",
                               "is another kokorod running? pick another --port") from None
        if self.config.wyoming_uri:
            # Before the model loads, so a busy port fails at once; its clients
            # are told `not_ready` until the daemon is.
            from kokorod.frontends.wyoming import start_wyoming  # wyoming and zeroconf load only when asked for

            try:
                self.wyoming = await start_wyoming(self, self.config)
            except BaseException:
                self.server.close()
                await self.server.wait_closed()
                raise

    def _connection_budget(self) -> ConnectionBudget:
        interval, timeout = self.config.ping_interval_s, self.config.ping_timeout_s
        return ConnectionBudget(self.config.limits.max_connection_buffer_bytes,
                                interval + timeout if interval and timeout else None,
                                on_cut=lambda reason: self.metrics.connections_cut.labels(reason=reason).inc())

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
        self.services = Services(self.config, self.scheduler, workers, self.metrics, self.capacity,  # type: ignore[arg-type]
                                 voices, language_catalog(voices, workers), requests=self.requests,
                                 chunk_cache=cache)  # type: ignore[arg-type]
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
        services.detector = LanguageDetector(tuple(info.code for info in services.languages if info.available))
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
        log.info("ready (warm-up %.2f s): RTF %.3f at 1x (admission plans with %s x margin %.2f%s); "
                 "%d engine worker%s x %s; admits %s stream%s at 1x (utilisation bound %g%s)",
                 probe.warmup_s, probe.rtf, "?" if plan.admission_rtf is None else f"{plan.admission_rtf:.3f}",
                 plan.margin, ", fixed" if self.capacity.headroom.fixed else ", learnt", plan.workers, "" if plan.workers == 1 else "s",
                 "default threads" if threads is None else f"{threads} thread{'' if threads == 1 else 's'}",
                 plan.max_streams if plan.max_streams is not None else "any",
                 "" if plan.max_streams == 1 else "s", plan.utilisation,
                 "" if self.config.limits.max_active_streams is None else f", capped at {self.config.limits.max_active_streams}",
                 extra={"event": "ready", "fields": fields})
        if plan.rtf is not None and plan.rtf > plan.utilisation:
            log.warning("this machine synthesizes a stream at RTF %.3f, above the %g bound: even a lone stream "
                        "may underrun (a less busy or faster machine helps; docs/operations.md, Capacity)",
                        plan.rtf, plan.utilisation)

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

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def shutdown(self) -> None:
        """Stop accepting, let streams finish (bounded), close clients with 1001."""
        self.ready, self.draining = False, True
        if self.server is not None:
            self.server.close(close_connections=False)
        self.http.close_idle()
        sessions = list(self.sessions)
        await asyncio.gather(*(s.drain(self.config.drain_timeout_s) for s in sessions), return_exceptions=True)
        await asyncio.gather(*(s.transport.close(1001, "kokorod is shutting down") for s in sessions), return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        if self.wyoming is not None:  # its sessions were drained above with the others
            await self.wyoming.aclose()
            self.wyoming = None
        if self._slope_task is not None:
            self._slope_task.cancel()
            await asyncio.wait([self._slope_task])  # never swallows our own cancellation
        await self.scheduler.aclose()

    # -- HTTP ----------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            return self._route(request)
        except Exception as exc:
            # Not websockets' own handler: its log line would carry the request,
            # and a request can carry a token.
            log.error("HTTP request failed: %s", type(exc).__name__)
            return _response(500, b"internal error\n")

    def _route(self, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/healthz":
            return _response(200, b"ok\n")
        if path == "/readyz":
            return _response(200, b"ready\n") if self.ready else _response(503, b"draining\n" if self.draining else b"loading\n")
        if path == "/metrics":
            denied = self._deny(request, origin=False)
            if denied is not None:
                return denied
            self.metrics.sample_runtime(queue_depth=self.scheduler.queue_depth, ready=self.ready,
                                        send_backlog_s=sum(s.outbox.audio_s for s in self.sessions),
                                        background_jobs=self.scheduler.background_jobs,
                                        background_preemptions=self.scheduler.background_preemptions)
            self.metrics.sample_capacity(self.capacity.plan())
            return _response(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path in _STATIC and "upgrade" not in request.headers.get("Connection", "").lower():
            name, ctype = _STATIC[path]
            try:
                body = importlib.resources.files("kokorod.web").joinpath(name).read_bytes()
            except (FileNotFoundError, ModuleNotFoundError):
                return _response(404, b"not found\n")
            return _response(200, body, ctype)
        if path != STREAM_PATH:
            return _response(404, f"not found; the WebSocket endpoint is {STREAM_PATH}\n".encode())
        denied = self._deny(request, origin=True)
        if denied is not None:
            self.metrics.connections_refused.labels(reason="auth").inc()
            return denied
        if not self.ready:
            self.metrics.connections_refused.labels(reason="not_ready").inc()
            why = b"kokorod is shutting down\n" if self.draining else b"kokorod is loading its model; try again shortly\n"
            return _response(503, why, extra={"Retry-After": "1"})
        # Counted by websockets' own set of open connections: it includes ones
        # whose handler has not started yet, and process_request and the switch
        # to OPEN happen without a yield in between, so the bound is exact.
        assert self.server is not None
        if len(self.server.connections) >= self.config.limits.max_connections:
            self.metrics.connections_refused.labels(reason="capacity").inc()
            return _response(503, b"kokorod is at its connection limit; try again shortly\n", extra={"Retry-After": "1"})
        return None

    def _deny(self, request: Request, *, origin: bool) -> Response | None:
        """The 401/403 for a request that may not use the daemon, else None."""
        why = self.auth.check_token(request)
        if why is not None:
            return _response(401, why.encode() + b"\n", extra={"WWW-Authenticate": "Bearer"})
        why = self.auth.check_host(request) or (self.auth.check_origin(request) if origin else None)
        if why is not None:
            return _response(403, why.encode(errors="replace") + b"\n")
        return None

    def _select_subprotocol(self, connection: ServerConnection, offered: list[str]) -> str | None:
        for name in offered:
            if name in SUBPROTOCOLS:
                return name
        # No subprotocol (or only a token entry): msgpack, the default. Answering
        # with none is allowed, and a token entry must never be echoed back.
        return None

    # -- WebSocket -----------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        assert self.services is not None
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER_BYTES)
            except OSError:  # not fatal: only the slow-consumer bound gets looser
                pass
        codec = _WithCapacity(codec_for_subprotocol(connection.subprotocol, self.config.limits.max_message_bytes),
                              self.capacity, self.requests)
        session = Session(self.services, codec, _Transport(connection), uuid.uuid4().hex[:12])  # type: ignore[arg-type]
        activity = _Activity(asyncio.get_running_loop().time())
        if isinstance(connection, GuardedConnection):  # its budget counts the session's queued events too
            connection.held_elsewhere_bytes = lambda: session.outbox.nbytes
        self.sessions.add(session)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        idle = asyncio.create_task(self._close_when_idle(connection, session, activity), name=f"kokorod-idle-{session.id}")
        try:
            await session.run(_frames(connection, activity))
        finally:
            idle.cancel()
            await asyncio.wait([idle])  # unlike `await idle`, never swallows our own cancellation
            self.sessions.discard(session)
            self.metrics.connections.dec()

    async def _close_when_idle(self, connection: ServerConnection, session: Session, activity: _Activity) -> None:
        """Close a connection that sent nothing and had nothing to hear for
        ``idle_timeout_s``. Busy: an utterance with text still to speak (or
        final, so it ends by itself) and audio still playing on the client
        (``play_end``). An utterance waiting for text the client never sends is
        not activity: it would otherwise hold a stream slot forever."""
        timeout = self.config.idle_timeout_s
        if timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        # Polling keeps this independent of the session's internals; a few wakeups
        # per timeout per connection cost nothing.
        step = min(5.0, max(0.05, timeout / 4))
        busy_at = loop.time()
        while True:
            now = loop.time()
            if any(u.final or u.segments for u in session.utterances.values()):
                busy_at = now
            remaining = max(activity.last_message, busy_at, session.play_end) + timeout - now
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, step))
        self.metrics.idle_closed.inc()
        log.info("session %s: idle for %g s, closing", session.id, timeout)
        await connection.close(1000, f"idle for {timeout:g} s")


async def _frames(connection: ServerConnection, activity: _Activity) -> Any:
    loop = asyncio.get_running_loop()
    try:
        async for frame in connection:
            activity.last_message = loop.time()
            yield frame
    except ConnectionClosed:
        return


class _WithCapacity:
    """A connection's codec that adds the daemon's capacity (measured here, not
    known to the session) to the ``ready`` event it encodes."""

    def __init__(self, codec: Codec, capacity: Capacity, requests: RequestAdmission | None = None) -> None:
        self._codec, self._capacity, self._requests = codec, capacity, requests

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codec, name)

    def encode(self, event: Any) -> bytes | str:
        if isinstance(event, Ready) and event.capacity is None:
            info = self._capacity.info()
            if self._requests is not None:
                queue = self._requests.queue
                info = dataclasses.replace(info, queued=len(queue), max_queued=queue.max_queued,
                                           queue_timeout_s=queue.timeout_s)
            event = dataclasses.replace(event, capacity=info)
        return self._codec.encode(event)


class _Transport:
    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    async def send(self, frame: bytes | str) -> None:
        await self._connection.send(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)

    def cut(self, why: str) -> None:
        """Drop the connection at once (a close frame would queue behind what the client does not read)."""
        if isinstance(self._connection, GuardedConnection):
            self._connection.cut(REASON_BUFFER, why)
        else:
            self._connection.transport.abort()


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port, voice=args.voice, max_ahead_s=args.max_ahead_s,
        first_audio_ms=args.first_audio_ms,
        token=load_token(args.token, args.token_file), insecure=args.insecure,
        allowed_origins=tuple(args.allow_origin), log_json=args.log_json, limits=limits_from_args(args),
        idle_timeout_s=args.idle_timeout_s, ping_interval_s=args.ping_interval_s,
        ping_timeout_s=args.ping_timeout_s, drain_timeout_s=args.drain_timeout_s,
        engine_workers=args.engine_workers, engine_threads=args.engine_threads,
        stream_utilisation=args.stream_utilisation, admission_margin=args.admission_margin, wyoming_uri=args.wyoming_uri, zeroconf=args.zeroconf,
        lexicon_path=args.lexicon, voice_for=tuple(args.voice_for), chunk_cache_mb=args.cache_mb,
    )


async def serve_until_signalled(daemon: Daemon, loader: Callable[[], Synthesizer | Sequence[Synthesizer]] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread / Windows
            pass
    try:  # SIGHUP: reload the --lexicon file without dropping a stream
        loop.add_signal_handler(signal.SIGHUP, on_sighup, daemon)
    except (NotImplementedError, RuntimeError, AttributeError):  # no SIGHUP on Windows
        pass
    await daemon.listen()
    where = {"url": f"ws://{daemon.config.host}:{daemon.port}{STREAM_PATH}", "page": f"http://{daemon.config.host}:{daemon.port}/"}
    if daemon.config.log_json:  # keep the output machine-readable end to end
        log.info("listening on %s", where["url"], extra={"event": "listening", "fields": where})
    else:
        print(f"kokorod listening on {where['url']} (page {where['page']})", flush=True)
    try:
        await daemon.load(loader)
    except BaseException:
        await daemon.shutdown()
        raise
    await stop.wait()
    log.info("signal received: draining")
    await daemon.shutdown()
    log.info("stopped")


def run_server(args: argparse.Namespace) -> int:
    from kokorod.auth import check_bind
    from kokorod.frontends.wyoming import check_wyoming_config
    from kokorod.logs import setup_logging
    from kokorod.runtime import EngineOptions
    from kokorod.daemon.workers import build_worker_synthesizers

    setup_logging(json_lines=args.log_json, verbose=getattr(args, "verbose", False))
    config = config_from_args(args)
    check_bind(config)
    check_wyoming_config(config)
    options = EngineOptions.from_args(args, threads=config.threads_per_worker())

    def load() -> list[Synthesizer]:
        started = time.perf_counter()
        synths = build_worker_synthesizers(options, config.engine_workers)
        synths[0].voices.parse(config.voice)
        log.info("model loaded in %.1f s (%d engine session%s)", time.perf_counter() - started, len(synths),
                 "" if len(synths) == 1 else "s")
        return synths

    daemon = Daemon(config)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is optional (e.g. Windows)
        runner = asyncio.run
    runner(serve_until_signalled(daemon, load))
    return 0
