"""One Wyoming connection (kokorod.frontends.wyoming explains the event
mapping and the error rule): Wyoming events in, ``speak`` messages to a
``LocalPeer`` session; its events out as Wyoming events."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error as WyomingError
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from kokorod.daemon.connection_slots import RESERVE_HEAD_S
from kokorod.daemon.idle import wait_until_idle
from kokorod.daemon.local_peer import LocalPeer
from kokorod.errors import InputError
from kokorod.frontends.sockets import bound_send_buffer
from kokorod.frontends.wyoming_info import resolve_voice
from kokorod.frontends.wyoming_linger import DISCARD_MAX_S, Linger
from kokorod.frontends.wyoming_reader import WyomingReadError, max_event_bytes, read_event
from kokorod.logs import kv
from kokorod.protocol.messages import Audio, Cancelled, Done, Error, ErrorCode, Speak, Warning
from kokorod.text.detect import AUTO



class WyomingServer(Protocol):
    """What a connection's handler reads of ``kokorod.frontends.wyoming.WyomingFrontend``
    (which imports this module, so it is described here rather than imported)."""

    config: Any
    door: Any
    handlers: set[Any]

    def refusal(self, slot: Any) -> Any: ...

    def info_event(self) -> Any: ...


log = logging.getLogger("kokorod.wyoming")
RATE, WIDTH, CHANNELS = 24000, 2, 1  # s16le mono at the model's rate: the session's default format
# Stream fragments are coalesced into at most one `speak` per interval: an LLM
# can emit hundreds of tokens a second, past the session's messages_per_s rate
# limit (whose excess would be dropped). 20 ms adds no audible latency.
SPEAK_INTERVAL_S = 0.02


def max_speak_chars(max_message_bytes: int) -> int:
    """Text per `speak`, so that one stays under the session's max_message_bytes
    however it is escaped (JSON: at most 12 bytes per character, plus the rest
    of the message)."""
    return max(64, (max_message_bytes - 4096) // 12)



@dataclass
class _Request:
    """One Wyoming request: a ``synthesize``, or a ``synthesize-start``…``stop`` stream."""

    uid: str
    streaming: bool
    text: list[str] = field(default_factory=list)  # what a stream was sent (its start, bounded)
    text_chars: int = 0
    stopped: bool = False                           # synthesize-stop seen (streams)
    audio_started: bool = False


class KokorodWyomingHandler(AsyncEventHandler):
    """One Wyoming connection = one LocalPeer session."""

    _ids = itertools.count(1)

    def __init__(self, frontend: WyomingServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.frontend = frontend
        self.peer: LocalPeer | None = None
        self.task: asyncio.Task[Any] | None = None
        self.name = f"wy{next(self._ids)}"
        self._requests: dict[str, _Request] = {}
        self._stream: _Request | None = None  # the open synthesize-start … synthesize-stop
        self._last_stream: _Request | None = None
        self._uids = itertools.count(1)
        self._pending = ""  # stream text not yet handed to the session (coalescing)
        self._max_chars = max_speak_chars(frontend.config.limits.max_message_bytes)
        self._flush_timer: asyncio.TimerHandle | None = None
        self._linger = Linger(reader, writer)  # after an error: end without resetting the client
        self._error_written = False  # an `error` event was sent
        self._flushed_at = float("-inf")
        config = frontend.config
        self._max_event_bytes = max_event_bytes(config.limits.max_text_chars)
        # The WebSocket's keepalive allowance: a client that reads nothing for this long is cut.
        self._stall_s = (config.ping_interval_s + config.ping_timeout_s
                         if config.ping_interval_s and config.ping_timeout_s else None)
        # As on the WebSocket: keep the kernel from buffering a minute of audio.
        bound_send_buffer(writer.get_extra_info("socket"))
        loop = asyncio.get_running_loop()
        self._loop, self._last_event = loop, loop.time()

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        self.task = asyncio.current_task()
        # Counted with every connection of every protocol, before anything is read.
        slot = self.frontend.door.admit(self.writer.get_extra_info("peername"), "wyoming")
        if slot is None:  # no room even to say why
            self.writer.transport.abort()
            return
        slot.on_evict = self.writer.transport.abort
        if slot.refusal is not None:  # a reserve slot: told why, within its short life
            asyncio.get_running_loop().call_later(RESERVE_HEAD_S, self.writer.transport.abort)
        refusal = self.frontend.refusal(slot)
        try:
            if refusal is not None:
                await self.write_event(WyomingError(text=refusal[1], code=refusal[0]).event())
                await self._linger.finish()
                return
            self.frontend.handlers.add(self)
            async with self.frontend.door.local_peer() as peer:
                self.peer = peer
                tasks = [asyncio.create_task(self._pump(peer), name=f"kokorod-wyoming-pump-{self.name}"),
                         asyncio.create_task(self._close_when_idle(peer), name=f"kokorod-wyoming-idle-{self.name}")]
                try:
                    await self._read_events()
                finally:
                    if self._flush_timer is not None:
                        self._flush_timer.cancel()
                    for task in tasks:
                        task.cancel()
                    await asyncio.wait(tasks)  # never swallows our own cancellation
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("wyoming %s: connection lost: %s", self.name, exc)
        except Exception:  # nobody awaits this task: say what went wrong
            log.exception("wyoming %s: connection failed", self.name)
        finally:
            self.frontend.handlers.discard(self)
            slot.release()
            self.writer.close()

    async def _read_events(self) -> None:
        """AsyncEventHandler.run's loop, reading through our bounded reader
        (kokorod.frontends.wyoming_reader) instead of the package's."""
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await read_event(self.reader, self._max_event_bytes)
                except WyomingReadError as exc:
                    # One line, no client data: a flood of bad headers must not flood the log.
                    log.info("wyoming %s: %s; closing", self.name, exc.reason)
                    if exc.oversized:
                        self.frontend.door.metrics.connections_cut.labels(reason="oversized_event").inc()
                    await self.write_event(WyomingError(text=exc.reason, code=str(ErrorCode.BAD_MESSAGE)).event())
                    break
                if event is None or not await self.handle_event(event):
                    break
        finally:
            await self.disconnect()
            self.writer.close()

    async def disconnect(self) -> None:
        """AsyncEventHandler.run calls this before it closes the socket: after an
        error, drop what the client still sends first (kokorod.frontends.wyoming_linger)."""
        if self._error_written:
            await self._linger.finish()

    async def write_event(self, event: Event) -> None:
        if WyomingError.is_type(event.type):
            self._error_written = True
        if self._stall_s is None:
            await super().write_event(event)
            return
        try:
            await asyncio.wait_for(super().write_event(event), self._stall_s)
        except asyncio.TimeoutError:
            # The WebSocket's rule (kokorod.frontends.guarded_connection): read nothing
            # for the keepalive allowance and the connection is cut, its buffers freed.
            log.info("wyoming %s: read nothing for %g s; closing", self.name, self._stall_s)
            self.frontend.door.metrics.connections_cut.labels(reason="not_reading").inc()
            self.writer.transport.abort()
            raise ConnectionResetError("client not reading") from None

    async def _close_when_idle(self, peer: LocalPeer) -> None:
        """The WebSocket's idle rule (kokorod.daemon.idle)."""
        timeout = self.frontend.config.idle_timeout_s
        await wait_until_idle(peer.session, lambda: self._last_event, timeout)
        log.info("wyoming %s: idle for %g s, closing", self.name, timeout)
        await self.stop()

    # -- Wyoming → kokorod ---------------------------------------------------

    async def handle_event(self, event: Event) -> bool:
        self._last_event = self._loop.time()
        if self._linger.ending:  # an error was sent: the rest of the request is read and dropped (bounded)
            return self._linger.dropped(event)
        try:
            return await self._dispatch(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed event, not our bug
            log.debug("wyoming %s: malformed %s event", self.name, event.type, exc_info=True)
            await self.write_event(WyomingError(text=f"malformed {event.type} event: {type(exc).__name__}: {exc}",
                                                code=str(ErrorCode.BAD_MESSAGE)).event())
            return True

    async def _dispatch(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.frontend.info_event())
        elif Synthesize.is_type(event.type):
            synthesize = Synthesize.from_event(event)
            if self._stream is not None or self._is_compat_repeat(synthesize.text):
                log.debug("wyoming %s: ignoring synthesize inside a stream (sent for compatibility)", self.name)
                return True
            return await self._begin(synthesize.voice, synthesize.text, streaming=False)
        elif SynthesizeStart.is_type(event.type):
            if self._stream is not None:  # a new stream without a stop: end the old one first
                log.warning("wyoming %s: synthesize-start inside a stream; ending the previous one", self.name)
                self._stop_stream()
            return await self._begin(SynthesizeStart.from_event(event).voice, "", streaming=True)
        elif SynthesizeChunk.is_type(event.type):
            text = SynthesizeChunk.from_event(event).text
            if self._stream is None:
                await self.write_event(WyomingError(text="synthesize-chunk outside synthesize-start … synthesize-stop; "
                                                         "text not spoken", code=str(ErrorCode.INVALID_FIELD)).event())
            elif text:
                stream = self._stream
                if stream.text_chars < self.frontend.config.limits.max_text_chars:  # bounded: only for _is_compat_repeat
                    stream.text.append(text)
                    stream.text_chars += len(text)
                self._queue_text(text)
        elif SynthesizeStop.is_type(event.type):
            if self._stream is None:
                log.debug("wyoming %s: synthesize-stop without a stream; ignored", self.name)
            else:
                self._stop_stream()
        else:
            log.debug("wyoming %s: ignoring %s", self.name, event.type)
        return True

    def _is_compat_repeat(self, text: str) -> bool:
        """A client that sends the compatibility ``synthesize`` after ``synthesize-stop``
        rather than before: the same text as the stream just spoken."""
        last = self._last_stream
        return last is not None and last.uid in self._requests and "".join(last.text).strip() == text.strip()

    async def _begin(self, voice: SynthesizeVoice | None, text: str, *, streaming: bool) -> bool:
        assert self.frontend.door.services is not None
        try:
            choice = resolve_voice(voice, self.frontend.door.services)
        except InputError as exc:
            code = ErrorCode.UNKNOWN_VOICE if voice is not None and voice.name else ErrorCode.INVALID_FIELD
            log.info("wyoming %s: refused: %s", self.name, exc.message)
            await self.write_event(WyomingError(text=str(exc), code=str(code)).event())
            return False  # close (see the module docstring), cleanly: disconnect() reads what the client still sends
        request = _Request(f"w{next(self._uids)}", streaming)
        self._requests[request.uid] = request
        if streaming:
            self._stream = self._last_stream = request
        # The first `speak` creates the utterance (a stream's at once, so that
        # admission answers now rather than at its first words).
        step = self._max_chars
        pieces = [text[i:i + step] for i in range(0, len(text), step)] or [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            # A one-shot synthesize is a request (it waits for a slot); a stream plays as it comes.
            # No language named (Home Assistant never names one): detect it from the text.
            self._send(Speak(request.uid, piece, voice=choice.voice, lang=choice.lang or AUTO,
                             final=last and not streaming, mode="queue",
                             admission=None if streaming else "queue") if i == 0 else
                       Speak(request.uid, piece, final=last and not streaming))
        return True

    def _queue_text(self, text: str) -> None:
        self._pending += text
        if len(self._pending) >= self._max_chars:
            self._flush_text()
        elif self._flush_timer is None:
            delay = max(0.0, self._flushed_at + SPEAK_INTERVAL_S - self._loop.time())
            self._flush_timer = self._loop.call_later(delay, self._flush_text)

    def _flush_text(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        pending, self._pending = self._pending, ""
        if self._stream is not None:
            for i in range(0, len(pending), self._max_chars):
                self._send(Speak(self._stream.uid, pending[i:i + self._max_chars]))
            self._flushed_at = self._loop.time()

    def _stop_stream(self) -> None:
        assert self._stream is not None
        self._flush_text()
        self._stream.stopped = True
        self._send(Speak(self._stream.uid, "", final=True))
        self._stream = None

    def _send(self, message: Speak) -> None:
        assert self.peer is not None
        self.peer.send(message)

    # -- kokorod → Wyoming ---------------------------------------------------

    async def _pump(self, peer: LocalPeer) -> None:
        try:
            async for event in peer.events():
                if not await self._relay(event):
                    break
            # Events end when the daemon drains or closes this session.
        except (ConnectionError, OSError) as exc:
            log.debug("wyoming %s: client gone while sending: %s", self.name, exc)
        if self._linger.ending:  # the reader drops the client's remaining events until it closes, briefly
            await asyncio.sleep(DISCARD_MAX_S)
        await self.stop()

    async def _relay(self, event: Any) -> bool:
        """Write what ``event`` means to the client; False ends the connection."""
        request = self._requests.get(getattr(event, "utterance", None) or "")
        if isinstance(event, Audio):
            if request is not None:
                await self._audio_start(request, event.sample_rate)
                await self.write_event(AudioChunk(rate=event.sample_rate, width=WIDTH, channels=CHANNELS, audio=event.pcm,
                                                  timestamp=event.offset * 1000 // event.sample_rate).event())
        elif isinstance(event, Done):
            if request is not None:
                await self._finish(request, int(event.duration * 1000))
        elif isinstance(event, Warning):
            # Wyoming has no warning event, so the operator's log says what was not
            # spoken: how much, never the text itself (it may be private).
            fields = {"code": event.code, "message": event.message, "chars": len(event.text), "request": event.utterance}
            log.warning("wyoming %s: %s", self.name, kv(fields), extra={"event": "wyoming_warning", "fields": fields})
        elif isinstance(event, Error):
            if event.code == ErrorCode.NOTHING_TO_SPEAK and request is not None:
                # Not a failure of the request (Piper answers empty text with
                # empty audio too): its warnings were logged above.
                log.warning("wyoming %s: nothing to speak: %s", self.name, event.message)
                await self._finish(request, 0)
                return True
            log.info("wyoming %s: error %s: %s", self.name, event.code, event.message)
            await self.write_event(WyomingError(text=event.message, code=str(event.code)).event())
            await self._linger.half_close()
            return False
        elif isinstance(event, Cancelled):
            if request is not None:
                why = {"shutdown": "kokorod is shutting down", "slow_consumer": "the client is not reading its audio"}
                await self.write_event(WyomingError(text=f"synthesis cancelled: {why.get(event.reason, event.reason)}",
                                                    code=str(event.reason)).event())
                await self._linger.half_close()
                return False
        return True  # Ready, Configured, Chunk, WordEvent: nothing Wyoming carries

    async def _audio_start(self, request: _Request, rate: int) -> None:
        if not request.audio_started:
            request.audio_started = True
            await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS, timestamp=0).event())

    async def _finish(self, request: _Request, duration_ms: int) -> None:
        self._requests.pop(request.uid, None)
        await self._audio_start(request, RATE)  # an empty answer still says its format
        await self.write_event(AudioStop(timestamp=duration_ms).event())
        if request.streaming:
            await self.write_event(SynthesizeStopped().event())
