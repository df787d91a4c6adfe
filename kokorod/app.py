"""The composition root: the only module that imports both the core
(kokorod.daemon) and its adapters (kokorod.frontends).

It builds the core, hands its ``FrontDoor`` to each adapter at construction
(WebSocket and the OpenAI HTTP API on the daemon's port, Wyoming when asked
for), starts the listeners before the model loads (so ``/healthz`` answers and
a busy port fails at once), and shuts down in order: the core drains while the
listeners still answer ``/readyz`` with 503, then they close.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from kokorod.config import ServerConfig
from kokorod.daemon.core import Daemon
from kokorod.daemon.connection_slots import fds_needed
from kokorod.daemon.lexicon_service import on_sighup
from kokorod.fd_limit import AcceptErrors, raise_fd_limit
from kokorod.frontends.openai import OpenAIFrontend
from kokorod.frontends.websocket import STREAM_PATH, WebSocketFrontend
from kokorod.metrics import Metrics
from kokorod.speech.synthesizer import Synthesizer

if TYPE_CHECKING:
    from kokorod.speech.build import EngineOptions

log = logging.getLogger("kokorod.daemon.server")

Loader = Callable[[], "Synthesizer | Sequence[Synthesizer]"]


class App:
    """A daemon and its front-ends. ``await app.start(loader)`` ... ``await app.shutdown()``."""

    def __init__(self, config: ServerConfig, *, synth: Any = None, scheduler: Any = None,
                 metrics: Metrics | None = None) -> None:
        kwargs: dict[str, Any] = {"synth": synth, "scheduler": scheduler}
        if metrics is not None:
            kwargs["metrics"] = metrics
        self.config = config
        self.daemon = Daemon(config, **kwargs)
        self.http = OpenAIFrontend(self.daemon)
        self.websocket = WebSocketFrontend(self.daemon, self.http.protocol)
        self.wyoming: Any = None  # kokorod.frontends.wyoming.WyomingFrontend with --wyoming-uri
        self.accept_errors = AcceptErrors(lambda name: self.daemon.metrics.accept_errors.labels(errno=name).inc())
        self._fd_watch: asyncio.Task[None] | None = None

    async def start(self, loader: Loader | None = None) -> None:
        await self.listen()
        await self.load(loader)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        raise_fd_limit(fds_needed(self.config.limits.max_connections))
        loop.set_exception_handler(self.accept_errors.exception_handler)
        self._fd_watch = loop.create_task(self.accept_errors.watch(), name="kokorod-fd-watch")
        self.daemon.scheduler.start()
        await self.websocket.listen()
        if self.config.wyoming_uri:
            # Before the model loads, so a busy port fails at once; its clients
            # are told `not_ready` until the daemon is.
            from kokorod.frontends.wyoming import start_wyoming  # wyoming and zeroconf load only when asked for

            try:
                self.wyoming = await start_wyoming(self.daemon, self.config)
            except BaseException:
                await self.websocket.aclose()
                raise

    async def load(self, loader: Loader | None = None) -> None:
        await self.daemon.load(loader)

    @property
    def port(self) -> int:
        return self.websocket.port

    @property
    def sessions(self) -> Any:
        return self.daemon.sessions

    async def shutdown(self) -> None:
        """Drain the core (listeners open: new sessions are refused, /readyz is
        503), then close idle HTTP connections and the listeners, then the engine."""
        self.http.close_idle()
        await self.daemon.drain()
        self.http.close_idle()  # those that finished a response while draining
        await self.websocket.aclose()
        if self.wyoming is not None:  # its sessions were drained above with the others
            await self.wyoming.aclose()
            self.wyoming = None
        if self._fd_watch is not None:
            self._fd_watch.cancel()
            await asyncio.wait([self._fd_watch])  # never swallows our own cancellation
        await self.daemon.aclose()


async def serve_until_signalled(app: App, loader: Loader | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread / Windows
            pass
    try:  # SIGHUP: reload the --lexicon file without dropping a stream
        loop.add_signal_handler(signal.SIGHUP, on_sighup, app.daemon)
    except (NotImplementedError, RuntimeError, AttributeError):  # no SIGHUP on Windows
        pass
    await app.listen()
    where = {"url": f"ws://{app.config.host}:{app.port}{STREAM_PATH}", "page": f"http://{app.config.host}:{app.port}/"}
    if app.config.log_json:  # keep the output machine-readable end to end
        log.info("listening on %s", where["url"], extra={"event": "listening", "fields": where})
    else:
        print(f"kokorod listening on {where['url']} (page {where['page']})", flush=True)
    try:
        await app.load(loader)
    except BaseException:
        await app.shutdown()
        raise
    await stop.wait()
    log.info("signal received: draining")
    await app.shutdown()
    log.info("stopped")


def run_server(config: ServerConfig, options: "EngineOptions", *, verbose: bool = False) -> int:
    """``kokorod serve`` (kokorod.cli.serve reads the flags into ``config`` and ``options``)."""
    from kokorod.auth import check_bind
    from kokorod.daemon.workers import build_worker_synthesizers
    from kokorod.frontends.wyoming import check_wyoming_config
    from kokorod.logs import setup_logging

    setup_logging(json_lines=config.log_json, verbose=verbose)
    check_bind(config)
    check_wyoming_config(config)
    # The daemon measures --engine auto's candidates once per machine (then
    # recorded), after it is ready, while idle (kokorod.daemon.engine_tuning).
    options = dataclasses.replace(options, measure="later", max_rss_mb=config.engine_max_rss_mb)

    def load() -> list[Synthesizer]:
        started = time.perf_counter()
        synths = build_worker_synthesizers(options, config.engine_workers)
        synths[0].voices.parse(config.voice)
        log.info("model loaded in %.1f s (%d engine session%s)", time.perf_counter() - started, len(synths),
                 "" if len(synths) == 1 else "s")
        return synths

    app = App(config)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is optional (e.g. Windows)
        runner = asyncio.run
    runner(serve_until_signalled(app, load))
    return 0
