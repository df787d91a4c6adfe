"""A pipecat TTS service that speaks through a kokorod daemon (``pip install 'kokorod[pipecat]'``).

    from kokorod.integrations.pipecat import KokorodTTSService
    tts = KokorodTTSService(url="ws://127.0.0.1:8765/v1/stream",
                            settings=KokorodTTSService.Settings(voice="af_heart"))

One pipecat audio context is one kokorod utterance (the context id is the
utterance id): each piece of text pipecat hands over is a ``speak`` fragment,
the end of the turn is ``final``, the daemon's ``audio`` goes into the context,
its ``word`` events go through pipecat's word-timestamp API (so the
``TTSTextFrame``s keep pace with what is heard), and an interrupted context is
a ``cancel`` of that utterance. A lost connection is reopened by pipecat's
websocket base class; the contexts of the old connection end with what they
already received (the daemon does not carry utterances across connections).
docs/pipecat.md has the details.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Final

from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TextAggregationMode, WebsocketTTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given
from websockets.protocol import State

from kokorod.integrations._pipecat_wire import (
    Outcome, SendPacer, Voice, auth_headers, classify, describe, kokorod_language, wire_sample_rate, words_are_unspaced,
)
from kokorod.protocol.codec import MsgpackCodec, ProtocolError
from kokorod.protocol.messages import (
    FRAME_MS_MAX, FRAME_MS_MIN, Audio, Cancel, Configured, Error, ErrorCode, Ready, ServerEvent, WordEvent,
)

__all__ = ["DEFAULT_URL", "KokorodTTSService", "KokorodTTSSettings"]

DEFAULT_URL: Final = "ws://127.0.0.1:8765/v1/stream"
# The daemon's largest message is `ready` (every voice and language): tens of KiB.
_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
# Ids of contexts already sent `final`, kept so a second flush of one is not a
# protocol error; contexts are short-lived, so a few dozen cover every open one.
_FINALIZED_KEPT: Final = 64
_DEFAULT_MESSAGES_PER_S: Final = 200  # the daemon's default, until its `ready` says


@dataclass
class KokorodTTSSettings(TTSSettings):
    """Runtime-updatable settings. ``voice`` is a kokorod voice or blend
    (``"af_heart"``, ``"af_heart:0.7,af_bella:0.3"``), ``language`` a pipecat
    ``Language`` (default: the voice's own), ``speed`` 0.5-2.0. They apply from
    the next utterance on: a change mid-turn ends the current utterance there."""

    speed: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class KokorodTTSService(WebsocketTTSService):
    """pipecat TTS over a kokorod daemon's WebSocket, with word timestamps."""

    Settings = KokorodTTSSettings
    _settings: KokorodTTSSettings

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        token: str | None = None,
        sample_rate: int | None = None,
        frame_ms: int | None = 20,
        settings: KokorodTTSSettings | None = None,
        text_aggregation_mode: TextAggregationMode | None = TextAggregationMode.TOKEN,
        connect_timeout_s: float = 30.0,
        retry_interval_s: float = 5.0,
        stop_frame_timeout_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            url: the daemon's stream endpoint.
            token: the daemon's auth token (``--token``), sent as a bearer header.
            sample_rate: output rate; default the pipeline's. Rates the daemon
                cannot make (docs/protocol.md, ``config``) come at 24 kHz and are
                resampled here.
            frame_ms: duration of the daemon's audio frames (10-1000, None: the
                daemon's 100). Audio already on its way when an interruption comes
                is cut at frame granularity, so 20 ms frames keep what leaks past a
                barge-in to a few tens of milliseconds.
            settings: voice, language and speed.
            text_aggregation_mode: ``TOKEN`` (default) streams the LLM's tokens as
                they come: kokorod segments and speaks incremental text itself.
                ``SENTENCE`` waits for pipecat's own sentence boundaries.
            connect_timeout_s: bound on opening the socket and the ready/configured
                exchange.
            retry_interval_s: with no connection (the daemon down and the base
                class's reconnects given up), text to speak tries to reconnect at
                most this often.
            stop_frame_timeout_s: how long a context may go without audio before
                pipecat ends it. Generous, because a busy daemon may take seconds to
                start a sentence; a context normally ends with the daemon's ``done``,
                this is only the safety net.
        """
        defaults = KokorodTTSSettings(model=None, voice=None, language=None, speed=None)
        if settings is not None:
            defaults.apply_update(settings)
        if frame_ms is not None and not FRAME_MS_MIN <= frame_ms <= FRAME_MS_MAX:
            raise ValueError(f"frame_ms must be {FRAME_MS_MIN}-{FRAME_MS_MAX}, got {frame_ms}")
        super().__init__(
            text_aggregation_mode=text_aggregation_mode,
            # Word frames come from the daemon's word times, aligned with the audio,
            # so the base must not push the text frames itself.
            push_text_frames=False,
            push_start_frame=True,
            pause_frame_processing=False,
            sample_rate=sample_rate,
            stop_frame_timeout_s=stop_frame_timeout_s,
            settings=defaults,
            **kwargs,
        )
        self._url = url
        self._token = token
        self._frame_ms = frame_ms
        self._connect_timeout_s = connect_timeout_s
        self._retry_interval_s = retry_interval_s
        self._last_reopen_at = -float("inf")  # time.monotonic() of run_tts's last reconnect
        self._down_reported = False
        self._codec = MsgpackCodec()
        self._pacer = SendPacer(_DEFAULT_MESSAGES_PER_S)  # replaced by the daemon's own limit on connect
        self._wire_rate_hz = 0     # set on setup, from the pipeline's rate
        self._ready: Ready | None = None
        self._receive_task: asyncio.Task[None] | None = None
        # One connect at a time: run_tts and the receive loop's reconnect may race.
        self._connect_lock = asyncio.Lock()
        self._finalized: OrderedDict[str, None] = OrderedDict()
        # Contexts whose utterance the daemon has not ended (no done/cancelled/error
        # yet): the ones a lost connection leaves without their TTSStoppedFrame.
        # Entries leave when the utterance or the context ends.
        self._speaking: set[str] = set()

    # -- pipecat hooks -----------------------------------------------------------

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: Language) -> str | None:
        lang = kokorod_language(str(language))
        if lang is None:
            logger.warning(f"{self}: no Kokoro voice speaks {language}; using the voice's own language")
        return lang

    @property
    def ready(self) -> Ready | None:
        """The daemon's ``ready`` event of the current connection (voices, limits, capacity)."""
        return self._ready

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._wire_rate_hz = wire_sample_rate(self.sample_rate)
        await self._connect()

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        # voice/speed/lang are taken when an utterance is created, so a change ends
        # the turn's current utterance and the rest of the turn opens a new one.
        if changed.keys() & {"voice", "speed", "language"} and self._turn_context_id:
            old = self._turn_context_id
            await self._push_sequencer_frames(await self._aggregated_frame_sequencer.finalize(old), old)
            if self.audio_context_available(old):
                await self.flush_audio(context_id=old)
            self._turn_context_id = None
            self._turn_context_id = self.create_context_id()
        return changed

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Send ``text`` as the next fragment of the context's utterance; the audio
        arrives on the receive task."""
        if not self._is_open():
            await self._reopen()
        if not self._is_open():
            # Token mode calls this per token: say it once per outage, not per token.
            if not self._down_reported:
                self._down_reported = True
                logger.warning(f"{self}: not connected to kokorod at {self._url}; text is not spoken until it is")
            return
        try:
            await self._send(self._voice().speak(context_id, text))
            self._speaking.add(context_id)
            await self.start_tts_usage_metrics(text)
        except Exception as e:
            # The receive loop sees the same lost connection and reconnects.
            yield ErrorFrame(error=f"{self}: could not send text to kokorod: {e}")
            yield TTSStoppedFrame(context_id=context_id)
            return
        yield None

    async def _reopen(self) -> None:
        """Reconnect for run_tts, at most once per ``retry_interval_s``: with a
        daemon down, a turn's every token would otherwise be a connection attempt."""
        now = time.monotonic()
        if now - self._last_reopen_at < self._retry_interval_s:
            return
        self._last_reopen_at = now
        await self._connect()

    async def flush_audio(self, context_id: str | None = None) -> None:
        """End the context's utterance: what remains of its text is spoken even
        without a sentence terminator."""
        flush_id = context_id or self.get_active_audio_context_id()
        if not flush_id or flush_id in self._finalized or not self._is_open():
            return
        self._finalized[flush_id] = None
        while len(self._finalized) > _FINALIZED_KEPT:
            self._finalized.popitem(last=False)
        try:
            await self._send(self._voice().speak(flush_id, "", final=True))
        except Exception as e:  # the receive loop sees the lost connection and reconnects
            logger.warning(f"{self}: could not finish utterance {flush_id}: {e}")

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: cancel the context's utterance, speaking or queued. Audio of it
        still in flight is dropped on arrival, since the context is gone."""
        await self.stop_all_metrics()
        if self._is_open():
            try:
                await self._send(Cancel(utterance=context_id))
            except Exception as e:
                logger.warning(f"{self}: could not cancel utterance {context_id}: {e}")
        self._speaking.discard(context_id)
        await super().on_audio_context_interrupted(context_id)

    async def on_audio_context_completed(self, context_id: str) -> None:
        self._speaking.discard(context_id)
        await super().on_audio_context_completed(context_id)

    async def _close_connection_contexts(self) -> None:
        # The base ends every context of a dropped connection with the audio it
        # got; those cut short also get the TTSStoppedFrame the daemon's done
        # would have brought, so downstream sees every started context stop.
        for ctx in self.get_audio_contexts():
            if ctx in self._speaking:
                self._speaking.discard(ctx)
                await self.append_to_audio_context(ctx, TTSStoppedFrame(context_id=ctx))
        await super()._close_connection_contexts()

    # -- connection ---------------------------------------------------------------

    def _voice(self) -> Voice:
        def given(value: Any) -> Any:
            return value if is_given(value) else None

        speed = given(self._settings.speed)
        # pipecat passes a language it cannot convert on as it is ("de"); the daemon
        # would refuse the utterance, so such a language means "the voice's own".
        lang = given(self._settings.language)
        return Voice(voice=given(self._settings.voice), speed=float(speed) if speed is not None else None,
                     lang=kokorod_language(str(lang)) if lang else None)

    def _is_open(self) -> bool:
        return self._websocket is not None and self._websocket.state is State.OPEN

    async def _send(self, message: Any) -> None:
        while (wait_s := self._pacer.wait_s(time.monotonic())) > 0:
            await asyncio.sleep(wait_s)
        if self._websocket is None:
            raise ConnectionError("not connected to kokorod")
        await self._websocket.send(self._codec.encode_message(message))
        self._pacer.sent(time.monotonic())

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._websocket is not None and (self._receive_task is None or self._receive_task.done()):
            self._receive_task = self.create_task(self._receive_task_handler(self._report_error))

    async def _disconnect(self) -> None:
        await super()._disconnect()
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        async with self._connect_lock:
            if self._is_open():
                return
            ws = None
            try:
                logger.debug(f"{self}: connecting to kokorod at {self._url}")
                async with asyncio.timeout(self._connect_timeout_s):
                    ws = await self._websocket_connect(
                        self._url, subprotocols=[self._codec.subprotocol],
                        additional_headers=auth_headers(self._token), max_size=_MAX_MESSAGE_BYTES,
                    )
                    await self._handshake(ws)
                self._websocket = ws
                self._down_reported = False
                await self._call_event_handler("on_connected")
            except Exception as e:
                if ws is not None:
                    await ws.close()
                self._websocket = None
                await self.push_error(error_msg=f"{self}: cannot connect to kokorod at {self._url}: {e}", exception=e)
                await self._call_event_handler("on_connection_error", f"{e}")

    async def _handshake(self, ws: Any) -> None:
        """``ready``, then the session's format, rate and voice, confirmed by
        ``configured``. Runs before the receive loop reads this socket."""
        ready = self._codec.decode_event(await ws.recv())
        if not isinstance(ready, Ready):
            raise ConnectionError(f"expected ready, got {type(ready).__name__}")
        self._ready = ready
        self._pacer = SendPacer(ready.limits.messages_per_s)
        await ws.send(self._codec.encode_message(self._voice().config(self._wire_rate_hz, self._frame_ms)))
        while True:
            event = self._decode(await ws.recv())
            if isinstance(event, Configured):
                return
            if isinstance(event, Error):
                raise ConnectionError(describe(event))

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

    # -- events --------------------------------------------------------------------

    def _decode(self, frame: Any) -> ServerEvent | None:
        try:
            return self._codec.decode_event(frame)
        except ProtocolError as e:
            if e.code != ErrorCode.UNKNOWN_TYPE:  # unknown types are a newer daemon's additions
                logger.warning(f"{self}: undecodable kokorod event: {e.message}")
            return None

    async def _receive_messages(self) -> None:
        # Returns when the socket closes; the base's receive handler then reconnects.
        async for frame in self._get_websocket():
            event = self._decode(frame)
            if event is not None:
                await self._on_event(event)

    def _get_websocket(self) -> Any:
        if self._websocket is None:
            raise ConnectionError("not connected to kokorod")
        return self._websocket

    async def _on_event(self, event: ServerEvent) -> None:
        outcome = classify(event)
        ctx: str | None = getattr(event, "utterance", None)
        live = ctx is not None and self.audio_context_available(ctx)
        if outcome is Outcome.AUDIO and live:
            assert isinstance(event, Audio)
            await self.append_to_audio_context(ctx, await self._audio_frame(event))
        elif outcome is Outcome.WORD and live:
            assert isinstance(event, WordEvent)
            await self.add_word_timestamps(
                [(event.text, event.start)], ctx,
                includes_inter_frame_spaces=True if words_are_unspaced(self._voice().lang) else None,
            )
        elif outcome in (Outcome.DONE, Outcome.FAILED, Outcome.STOPPED) and live:
            self._speaking.discard(ctx)
            if outcome is Outcome.FAILED:
                await self.push_error(error_msg=describe(event))
            await self.stop_ttfb_metrics()
            await self.append_to_audio_context(ctx, TTSStoppedFrame(context_id=ctx))
            await self.remove_audio_context(ctx)
        elif outcome is Outcome.PROBLEM and (ctx is None or live):
            await self.push_error(error_msg=describe(event))
        elif outcome is Outcome.NOTE:
            logger.warning(f"{self}: {describe(event)}")
        elif outcome in (Outcome.FAILED, Outcome.PROBLEM):
            # About a context pipecat has already let go of (interrupted, ended):
            # usually a fragment that crossed our own cancel in flight.
            logger.debug(f"{self}: {describe(event)}")

    async def _audio_frame(self, event: Audio) -> TTSAudioRawFrame:
        pcm = bytes(event.pcm)
        if event.sample_rate != self.sample_rate:
            pcm = await self._resampler.resample(pcm, event.sample_rate, self.sample_rate)
        return TTSAudioRawFrame(audio=pcm, sample_rate=self.sample_rate, num_channels=1, context_id=event.utterance)
