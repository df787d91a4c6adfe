"""How the pipecat service keeps its contexts going across connections: the
connection itself (several URLs, round robin), sending under one lock, the
replay of unfinished contexts onto a new connection, and the retry of contexts
refused as ``overloaded``. ``KokorodTTSService`` (pipecat.py) adds pipecat's
hooks and what each daemon event does to a context on top of this.

What to resend and how events map back is decided by the pure ``ContextBook``
(_pipecat_wire.py); this module does the I/O around it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from loguru import logger
from pipecat.frames.frames import TTSStoppedFrame
from pipecat.services.tts_service import WebsocketTTSService
from websockets.protocol import State

from kokorod.client.failover import FailoverPolicy, RetryState
from kokorod.integrations._pipecat_wire import (
    Attached, ContextBook, SendPacer, Voice, WireContext, auth_headers, decode, handshake, max_chars_per_message,
)
from kokorod.protocol.codec import MsgpackCodec, ProtocolError
from kokorod.protocol.messages import SAMPLE_RATE, Ready, ServerEvent

# The daemon's largest message is `ready` (every voice and language): tens of KiB.
_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
_DEFAULT_MESSAGES_PER_S: Final = 200  # the daemon's default, until its `ready` says
_DEFAULT_MAX_MESSAGE_BYTES: Final = 256 * 1024


class ResumingTTSService(WebsocketTTSService):
    """A ``WebsocketTTSService`` whose audio contexts survive a lost connection."""

    def __init__(self, *, urls: list[str], token: str | None, frame_ms: int | None, connect_timeout_s: float,
                 overload_policy: FailoverPolicy | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token = token
        self._frame_ms = frame_ms
        self._connect_timeout_s = connect_timeout_s
        self._codec = MsgpackCodec()
        self._pacer = SendPacer(_DEFAULT_MESSAGES_PER_S)  # replaced by the daemon's own limit on connect
        self._wire_rate_hz = SAMPLE_RATE  # set on setup, from the pipeline's rate
        self._ready: Ready | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._down_reported = False
        # One connect at a time: run_tts and the receive loop's reconnect may race.
        self._connect_lock = asyncio.Lock()
        # Held by every send and by the replay onto a new connection, so contexts
        # are re-created there in order before any new text goes out.
        self._send_lock = asyncio.Lock()
        self._generation = 0       # bumped per connection; a context's wire id is valid on one
        self._book = ContextBook()
        self._policy = overload_policy or FailoverPolicy()
        self._retry = RetryState(urls)  # the URL in use, and the streak of overloaded refusals
        self._cycle_task: asyncio.Task[None] | None = None  # the backoff before retrying refused contexts
        self._cycle_now = False    # the receive loop is to open a new connection itself

    @property
    def url(self) -> str:
        """The daemon URL in use (or tried next)."""
        return self._retry.url

    def _voice(self) -> Voice:
        """What a new utterance is created with (the service's settings)."""
        raise NotImplementedError

    async def _on_event(self, event: ServerEvent) -> None:
        raise NotImplementedError

    async def _end_context(self, ctx: str) -> None:
        self._book.pop(ctx)
        await self.stop_ttfb_metrics()
        await self.append_to_audio_context(ctx, TTSStoppedFrame(context_id=ctx))
        await self.remove_audio_context(ctx)

    # -- sending -------------------------------------------------------------------

    def _is_open(self) -> bool:
        return self._websocket is not None and self._websocket.state is State.OPEN

    def _receiving(self) -> bool:
        """Whether the receive loop runs (connected, or the base reconnecting)."""
        return self._receive_task is not None and not self._receive_task.done()

    async def _send(self, message: Any) -> None:
        while (wait_s := self._pacer.wait_s(time.monotonic())) > 0:
            await asyncio.sleep(wait_s)
        if self._websocket is None:
            raise ConnectionError("not connected to kokorod")
        await self._websocket.send(self._codec.encode_message(message))
        self._pacer.sent(time.monotonic())

    async def _pump(self, wc: WireContext) -> None:
        """Send what ``wc`` has that its utterance on this connection lacks."""
        async with self._send_lock:
            if not self._is_open() or wc.context_id not in self._book:
                return  # the replay onto the next connection sends it
            if wc.generation != self._generation:  # new, or its connection is gone
                if self._book.attach(wc, self._generation) is Attached.NOTHING_LEFT:
                    await self._end_context(wc.context_id)
                    return
            try:
                await self._send_pending(wc)
            except Exception as e:  # the receive loop sees the lost connection; the replay resends
                logger.debug(f"{self}: sending to kokorod failed: {e}")

    async def _send_pending(self, wc: WireContext) -> None:
        limit = max_chars_per_message(self._ready.limits.max_message_bytes if self._ready
                                      else _DEFAULT_MAX_MESSAGE_BYTES)
        while (msg := self._book.next_message(wc, self._generation, limit)) is not None:
            await self._send(msg)
            self._book.sent(wc, msg)

    async def _replay(self) -> None:
        """On a new connection (send lock held): every unfinished context, in
        creation order, under a new wire id with the text not heard yet."""
        for wc in self._book.contexts():
            if not self.audio_context_available(wc.context_id):
                self._book.pop(wc.context_id)
                continue
            resumed = wc.tracker.segments > 0
            if self._book.attach(wc, self._generation) is Attached.NOTHING_LEFT:
                await self._end_context(wc.context_id)
                continue
            if resumed and wc.tracker.has_audio:
                logger.info(f"{self}: utterance {wc.context_id} resumes on {self.url} as {wc.wire} "
                            f"at {wc.tracker.samples / wc.tracker.sample_rate:.2f} s")
            elif resumed:
                logger.info(f"{self}: utterance {wc.context_id} sent again on {self.url} as {wc.wire}")
            await self._send_pending(wc)  # a failure: the receive loop sees the loss and replays again

    # -- connection ---------------------------------------------------------------

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._websocket is not None and not self._receiving():
            self._receive_task = self.create_task(self._receive_until_given_up())

    async def _disconnect(self) -> None:
        await super()._disconnect()
        await self._cancel_cycle()
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _receive_until_given_up(self) -> None:
        await self._receive_task_handler(self._report_error)
        if not self._disconnecting:
            # The base gave up reconnecting: what was in flight cannot go on.
            await self._close_connection_contexts()

    async def _reconnect_websocket(self, attempt_number: int) -> bool:
        # Not the base's version, which first ends every context: here they go on
        # on the new connection (_replay). Each attempt starts at the next URL.
        await self._cancel_cycle()
        self._retry.next_url()
        return await super(WebsocketTTSService, self)._reconnect_websocket(attempt_number)

    async def _connect_websocket(self) -> None:
        async with self._connect_lock:
            if self._is_open():
                return
            urls = self._retry.urls
            errors: list[str] = []
            for i in [(self._retry.index + k) % len(urls) for k in range(len(urls))]:
                try:
                    ws, ready = await self._open(urls[i])
                except Exception as e:
                    errors.append(f"{urls[i]}: {e}")
                    continue
                self._retry.index = i
                async with self._send_lock:
                    self._websocket, self._ready, self._generation = ws, ready, self._generation + 1
                    self._pacer = SendPacer(ready.limits.messages_per_s)
                    await self._replay()
                self._down_reported = False
                await self._call_event_handler("on_connected")
                return
            self._websocket = None
            error = "; ".join(errors)
            await self.push_error(error_msg=f"{self}: cannot connect to kokorod ({error})")
            await self._call_event_handler("on_connection_error", error)

    async def _open(self, url: str) -> tuple[Any, Ready]:
        """A configured session on ``url``, or an exception."""
        logger.debug(f"{self}: connecting to kokorod at {url}")
        ws = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                ws = await self._websocket_connect(
                    url, subprotocols=[self._codec.subprotocol], additional_headers=auth_headers(self._token),
                    max_size=_MAX_MESSAGE_BYTES,
                )
                ready = await handshake(ws, self._codec, self._voice().config(self._wire_rate_hz, self._frame_ms))
            return ws, ready
        except BaseException:
            if ws is not None:
                await ws.close()
            raise

    async def _disconnect_websocket(self) -> None:
        try:
            await self.stop_all_metrics()
            if self._websocket is not None:
                logger.debug(f"{self}: disconnecting from kokorod")
                await self._websocket.close()
        except Exception as e:
            await self.push_error(error_msg=f"{self}: error closing the kokorod connection: {e}", exception=e)
        finally:
            self._websocket = None
            await self._call_event_handler("on_disconnected")

    # -- overloaded: retry on a new connection ------------------------------------------

    def _retry_overloaded(self, wc: WireContext) -> bool:
        """Park a context refused before any audio and schedule a new connection
        for it after a jittered backoff; False once retries are used up."""
        if wc.tracker.has_audio or self._retry.exhausted(self._policy):
            self._retry.progress()  # given up for this one: the next starts afresh
            return False
        self._book.park(wc)
        if self._cycle_task is None or self._cycle_task.done():
            delay_s = self._policy.delay_s(self._retry.attempts, len(self._retry.urls) > 1, True, self._retry.rng)
            self._retry.fail()
            logger.info(f"{self}: utterance {wc.context_id} refused as overloaded by {self.url}; "
                        f"retrying in {delay_s:.2f} s")
            self._cycle_task = self.create_task(self._cycle_after(delay_s, self._generation))
        return True

    async def _cycle_after(self, delay_s: float, generation: int) -> None:
        await asyncio.sleep(delay_s)
        ws = self._websocket
        if generation != self._generation or ws is None or not self._book.parked(generation):
            return  # replaced meanwhile (its replay took the parked ones along), or nothing left to retry
        # The receive loop, which owns the socket, sees it close and reconnects.
        self._cycle_now = True
        await ws.close()

    async def _cancel_cycle(self) -> None:
        self._cycle_now = False
        task, self._cycle_task = self._cycle_task, None
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)

    # -- receiving -----------------------------------------------------------------

    async def _receive_messages(self) -> None:
        # Returns (or raises) when the socket is lost; the base then reconnects.
        # A close of our own for an overloaded retry is followed here instead,
        # without the base's backoff and its count of short-lived connections.
        while True:
            async for frame in self._get_websocket():
                try:
                    event = decode(self._codec, frame)
                except ProtocolError as e:
                    logger.warning(f"{self}: undecodable kokorod event: {e.message}")
                    continue
                if event is not None:
                    await self._on_event(event)
            if not self._cycle_now:
                return
            self._cycle_now = False
            self._cycle_task = None
            await self._disconnect_websocket()
            self._retry.next_url()
            await self._connect_websocket()
            if not self._is_open():
                raise ConnectionError("no kokorod daemon to retry the refused utterances on")

    def _get_websocket(self) -> Any:
        if self._websocket is None:
            raise ConnectionError("not connected to kokorod")
        return self._websocket
