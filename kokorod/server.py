"""The daemon: websockets' asyncio server, HTTP endpoints, startup and draining.

Everything protocol-shaped lives in ``protocol/`` and ``session.py``; this
module only wires sockets to sessions and answers plain HTTP through
websockets' ``process_request`` hook.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kokorod.auth import AuthPolicy, load_token
from kokorod.config import ServerConfig, limits_from_args
from kokorod.metrics import Metrics
from kokorod.protocol.codec import SUBPROTOCOLS, codec_for_subprotocol
from kokorod.scheduler import EngineScheduler
from kokorod.session import Capacity, Services, Session
from kokorod.synthesizer import Synthesizer

log = logging.getLogger("kokorod.server")
STREAM_PATH = "/v1/stream"
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/player-worklet.js": ("player-worklet.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": "no-store"})
    for key, value in (extra or {}).items():
        headers[key] = value
    return Response(status, HTTPStatus(status).phrase, headers, body)


@dataclass
class Daemon:
    """A running kokorod: one engine, one scheduler, many sessions."""

    config: ServerConfig
    synth: Synthesizer
    metrics: Metrics = field(default_factory=Metrics)
    scheduler: EngineScheduler = field(default_factory=EngineScheduler)
    sessions: set[Session] = field(default_factory=set)
    ready: bool = False
    server: Server | None = None
    auth: AuthPolicy | None = None

    def __post_init__(self) -> None:
        self.capacity = Capacity(self.config.limits.max_active_streams)
        self.services = Services(self.config, self.scheduler, self.synth, self.metrics, self.capacity,
                                 tuple(self.synth.voices.names()))
        self.auth = AuthPolicy(self.config.token, self.config.allowed_origins, self.config.port)

    async def start(self) -> None:
        self.scheduler.start()
        # The first run of a model is several times slower than later ones; pay
        # that before the first client does, and prove synthesis works (/readyz).
        await self.scheduler.run_direct(lambda: self.synth.synthesize("Ready.", voice=self.config.voice))
        self.ready = True
        limits = self.config.limits
        self.server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            compression=None,  # PCM does not compress; deflate would only cost CPU
            max_size=limits.hard_max_message_bytes,
            ping_interval=self.config.ping_interval_s,
            ping_timeout=self.config.ping_timeout_s,
            max_queue=32,
        )

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def shutdown(self) -> None:
        """Stop accepting, let streams finish (bounded), close clients with 1001."""
        if self.server is not None:
            self.server.close(close_connections=False)
        sessions = list(self.sessions)
        await asyncio.gather(*(s.drain(self.config.drain_timeout_s) for s in sessions), return_exceptions=True)
        await asyncio.gather(*(s.transport.close(1001, "kokorod is shutting down") for s in sessions), return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        await self.scheduler.aclose()

    # -- HTTP ----------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, _query = request.path.partition("?")
        if path == "/healthz":
            return _response(200, b"ok\n")
        if path == "/readyz":
            return _response(200, b"ready\n") if self.ready else _response(503, b"loading\n")
        assert self.auth is not None
        if path == "/metrics":
            denied = self.auth.check_token(request)
            if denied:
                return _response(401, denied.encode() + b"\n", extra={"WWW-Authenticate": "Bearer"})
            self.metrics.queue_depth.set(self.scheduler.queue_depth)
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
        denied = self.auth.check_token(request) or self.auth.check_origin(request)
        if denied:
            self.metrics.connections_refused.labels(reason="auth").inc()
            status = 403 if denied.startswith("origin") else 401
            return _response(status, denied.encode() + b"\n", extra={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        if len(self.sessions) >= self.config.limits.max_connections:
            self.metrics.connections_refused.labels(reason="capacity").inc()
            return _response(503, b"kokorod is at its connection limit; try again shortly\n", extra={"Retry-After": "1"})
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
        codec = codec_for_subprotocol(connection.subprotocol, self.config.limits.max_message_bytes)
        session = Session(self.services, codec, _Transport(connection), uuid.uuid4().hex[:12])
        self.sessions.add(session)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        try:
            await session.run(_frames(connection))
        finally:
            self.sessions.discard(session)
            self.metrics.connections.dec()


async def _frames(connection: ServerConnection) -> Any:
    try:
        async for frame in connection:
            yield frame
    except ConnectionClosed:
        return


class _Transport:
    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    async def send(self, frame: bytes | str) -> None:
        await self._connection.send(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port, voice=args.voice, max_ahead_s=args.max_ahead_s,
        token=load_token(args.token, args.token_file), insecure=args.insecure,
        allowed_origins=tuple(args.allow_origin), log_json=args.log_json, limits=limits_from_args(args),
    )


async def serve_until_signalled(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread / Windows
            pass
    await daemon.start()
    print(f"kokorod listening on ws://{daemon.config.host}:{daemon.port}{STREAM_PATH} "
          f"(page http://{daemon.config.host}:{daemon.port}/)", flush=True)
    await stop.wait()
    log.info("signal received: draining")
    await daemon.shutdown()


def run_server(args: argparse.Namespace) -> int:
    from kokorod.auth import check_bind
    from kokorod.logs import setup_logging
    from kokorod.runtime import EngineOptions, build_synthesizer

    setup_logging(json_lines=args.log_json, verbose=getattr(args, "verbose", False))
    config = config_from_args(args)
    check_bind(config)
    started = time.perf_counter()
    synth = build_synthesizer(EngineOptions(engine=args.engine, cache_dir=args.cache_dir, model=args.model,
                                            config=args.config, device=args.device))
    synth.voices.parse(config.voice)
    log.info("model loaded in %.1f s", time.perf_counter() - started)
    daemon = Daemon(config, synth)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is optional (e.g. Windows)
        runner = asyncio.run
    try:
        runner(serve_until_signalled(daemon))
    except OSError as exc:
        from kokorod.errors import KokorodError

        raise KokorodError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
                           "is another kokorod running? pick another --port") from None
    return 0

