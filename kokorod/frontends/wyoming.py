"""Wyoming protocol server (Home Assistant's TTS), in the daemon's process.

``kokorod serve --wyoming-uri tcp://127.0.0.1:10200 [--zeroconf]``. An adapter
onto the core's ``FrontDoor`` (kokorod.daemon.front_door): each Wyoming
connection is counted with every other (``--max-connections``, per address)
and is one ``LocalPeer`` session on the daemon's shared model and scheduler,
so its limits, refusals, admission (``overloaded``), idle rule, drain on
SIGTERM and metrics are the WebSocket path's. Framing and events are the ``wyoming``
package's own (``AsyncServer``/``AsyncEventHandler``).

Event mapping (docs/home-assistant.md):

- ``describe`` → ``info``: every Kokoro voice with its language (wyoming_info).
- ``synthesize`` → one utterance, ``final``: ``audio-start``, ``audio-chunk``\\*
  (s16le, 24000 Hz, mono, the session's 100 ms frames), ``audio-stop``.
- ``synthesize-start`` / ``synthesize-chunk``\\* / ``synthesize-stop`` (Wyoming
  1.7+): the fragments feed ONE utterance as a token stream, so each sentence
  is spoken as soon as it is complete; one ``audio-start`` … ``audio-stop``,
  then ``synthesize-stopped``. The whole-text ``synthesize`` that Home
  Assistant sends inside a stream "for compatibility" is ignored.
- Requests on one connection are spoken one after the other (``queue``).

Errors: a refused or failed request (unknown voice or language, ``overloaded``,
engine failure, cancelled by shutdown or as a slow consumer...) is a Wyoming
``error`` event with kokorod's error code, and then the connection ends,
as wyoming-piper's does: Home Assistant waits for ``audio-stop`` (or
``synthesize-stopped``) and ignores ``error``, so an open connection would
leave it waiting until its timeout. It ends cleanly: we half-close (the client
reads the error, then end of stream) and drop what the client still sends,
bounded in bytes and time, before closing, so the client is not reset while
it is still writing its request. A one-shot ``synthesize`` is a request: at
capacity it waits in the daemon's request queue (kokorod.daemon.request_queue)
and is refused only past ``--max-queued`` or ``--queue-timeout-s``; a
streaming synthesis is a real-time stream, refused with ``overloaded``. Text
that is not spoken (emoji, another script) is logged as a warning. A
disconnect cancels the connection's synthesis, in flight included.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wyoming.event import Event
from wyoming.server import AsyncServer, AsyncTcpServer

from kokorod.auth import is_loopback
from kokorod.config import ServerConfig
from kokorod.daemon.front_door import FrontDoor
from kokorod.errors import KokorodError
from kokorod.frontends.wyoming_handler import KokorodWyomingHandler
from kokorod.frontends.wyoming_info import build_info

if TYPE_CHECKING:
    from kokorod.frontends.wyoming_zeroconf import ZeroconfAdvertiser

log = logging.getLogger("kokorod.wyoming")
HANDLER_STOP_TIMEOUT_S = 5.0


def check_wyoming_config(config: ServerConfig) -> None:
    """Refuse, before the model loads, what would be unsafe or cannot work.

    Wyoming has no authentication (a token cannot protect it), so a
    non-loopback host must be chosen explicitly with ``--insecure``, the flag
    that already means "anyone on the network may use this" for the WebSocket
    (``kokorod.auth.check_bind``).
    """
    if not config.wyoming_uri:
        if config.zeroconf is not None:
            raise KokorodError("--zeroconf advertises the Wyoming server, which is off",
                               "add --wyoming-uri tcp://HOST:10200, or drop --zeroconf")
        return
    parts = urlsplit(config.wyoming_uri)
    if parts.scheme == "unix":
        if config.zeroconf is not None:
            raise KokorodError("--zeroconf needs a tcp:// --wyoming-uri", "use --wyoming-uri tcp://HOST:PORT")
        return
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise KokorodError(f"bad --wyoming-uri {config.wyoming_uri!r}", "use tcp://HOST:PORT, e.g. tcp://127.0.0.1:10200")
    if not is_loopback(parts.hostname) and not config.insecure:
        raise KokorodError(
            f"refusing to serve Wyoming on {parts.hostname}: the Wyoming protocol has no authentication, "
            "so anyone on the network could use it",
            "use a loopback host (tcp://127.0.0.1:PORT), or add --insecure if you mean it "
            "(e.g. for Home Assistant on another machine on a trusted network)",
        )


class WyomingFrontend:
    """The Wyoming server of a daemon; ``start_wyoming`` makes one."""

    def __init__(self, door: FrontDoor, config: ServerConfig) -> None:
        assert config.wyoming_uri
        self.door, self.config = door, config
        self.server = AsyncServer.from_uri(config.wyoming_uri)
        self.handlers: set[KokorodWyomingHandler] = set()
        self.zeroconf: ZeroconfAdvertiser | None = None
        self._info: Event | None = None
        self._closed = False

    async def start(self) -> None:
        check_wyoming_config(self.config)
        try:
            await self.server.start(partial(KokorodWyomingHandler, self))
        except OSError as exc:
            raise KokorodError(f"cannot serve Wyoming on {self.config.wyoming_uri}: {exc.strerror or exc}",
                               "is wyoming-piper (or another kokorod) on that port? pick another --wyoming-uri") from None
        log.info("Wyoming server on %s", self.uri, extra={"event": "wyoming_listening", "fields": {"uri": self.uri}})
        if self.config.zeroconf is not None and isinstance(self.server, AsyncTcpServer):
            from kokorod.frontends.wyoming_zeroconf import ZeroconfAdvertiser

            advertiser = ZeroconfAdvertiser(self.config.zeroconf, self.server.host, self.port)
            try:
                await advertiser.register()
            except Exception as exc:  # discovery is a convenience: serve anyway, and say so
                log.warning("zeroconf: could not advertise the Wyoming server (%s: %s); add it in Home Assistant "
                            "by host and port instead", type(exc).__name__, exc)
            else:
                self.zeroconf = advertiser

    @property
    def port(self) -> int:
        """The TCP port actually bound (a ``:0`` URI picks a free one)."""
        assert isinstance(self.server, AsyncTcpServer)
        listening = getattr(self.server, "_server", None)  # wyoming keeps its asyncio.Server there
        if listening is not None and listening.sockets:
            return int(listening.sockets[0].getsockname()[1])
        return int(self.server.port)

    @property
    def uri(self) -> str:
        if isinstance(self.server, AsyncTcpServer):
            host = self.server.host
            return f"tcp://{'[' + host + ']' if ':' in host else host}:{self.port}"
        return str(self.config.wyoming_uri)

    def info_event(self) -> Event:
        if self._info is None:
            assert self.door.services is not None
            self._info = build_info(self.door.services).event()
        return self._info

    def refusal(self, slot: Any) -> tuple[str, str] | None:
        """Why a new connection cannot be served now (code, text), else None:
        the door's one rule, in Wyoming's terms."""
        if self._closed:
            return "shutdown", "kokorod is shutting down"
        refusal = self.door.refusal(slot)
        if refusal is None:
            return None
        if refusal.reason == "not_ready":
            self.door.metrics.connections_refused.labels(reason="not_ready").inc()
        return ("shutdown" if refusal.code == "shutting_down" else refusal.code), refusal.message

    async def aclose(self) -> None:
        """Withdraw the advertisement, stop listening, end every connection (their
        synthesis is cancelled) and wait for them, briefly."""
        if self._closed:
            return
        self._closed = True
        if self.zeroconf is not None:
            await self.zeroconf.aclose()
            self.zeroconf = None
        tasks = [h.task for h in self.handlers if h.task is not None]
        await self.server.stop()
        if tasks:
            await asyncio.wait(tasks, timeout=HANDLER_STOP_TIMEOUT_S)
        log.info("Wyoming server stopped")


async def start_wyoming(door: FrontDoor, config: ServerConfig) -> WyomingFrontend:
    """Serve Wyoming for ``door``; ``await handle.aclose()`` on shutdown, after
    the core drained (which drains the Wyoming sessions like the others).

    May be called before the model loads: a busy port then fails at once, and
    connections are answered with an ``error`` (``not_ready``) until the
    daemon is ready."""
    frontend = WyomingFrontend(door, config)
    await frontend.start()
    return frontend
