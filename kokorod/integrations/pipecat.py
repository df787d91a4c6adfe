"""A pipecat TTS service that speaks through a kokorod daemon (``pip install 'kokorod[pipecat]'``).

    from kokorod.integrations.pipecat import KokorodTTSService
    tts = KokorodTTSService(url="ws://127.0.0.1:8765/v1/stream",
                            settings=KokorodTTSService.Settings(voice="af_heart"))

One pipecat audio context is one kokorod utterance: each piece of text pipecat
hands over is a ``speak`` fragment, the end of the turn is ``final``, the
daemon's ``audio`` goes into the context, its ``word`` events go through
pipecat's word-timestamp API, and an interrupted context is a ``cancel``.

A lost connection is reopened by pipecat's websocket base class (the next URL
when there are several), and every unfinished context goes on there: its
unheard text is spoken again under a new daemon-side id, on the context's one
timeline (kokorod/integrations/_pipecat_resume.py). A context refused as
``overloaded`` before it made a sound is retried on a new connection after a
jittered backoff. docs/pipecat.md has the details.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from loguru import logger
from pipecat.frames.frames import Frame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TextAggregationMode
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given

from kokorod.client.failover import FailoverPolicy
from kokorod.integrations._pipecat_resume import ResumingTTSService
from kokorod.integrations._pipecat_wire import (
    Outcome, Voice, classify, describe, kokorod_language, wire_sample_rate, words_are_unspaced,
)
from kokorod.protocol.messages import FRAME_MS_MAX, FRAME_MS_MIN, Audio, Cancel, Error, ErrorCode, Ready, ServerEvent

__all__ = ["DEFAULT_URL", "KokorodTTSService", "KokorodTTSSettings"]

DEFAULT_URL: Final = "ws://127.0.0.1:8765/v1/stream"


@dataclass
class KokorodTTSSettings(TTSSettings):
    """Runtime-updatable settings. ``voice`` is a kokorod voice or blend
    (``"af_heart"``, ``"af_heart:0.7,af_bella:0.3"``), ``language`` a pipecat
    ``Language`` (default: the voice's own), ``speed`` 0.5-2.0. They apply from
    the next utterance on: a change mid-turn ends the current utterance there."""

    speed: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class KokorodTTSService(ResumingTTSService):
    """pipecat TTS over a kokorod daemon's WebSocket, with word timestamps."""

    Settings = KokorodTTSSettings
    _settings: KokorodTTSSettings

    def __init__(
        self,
        *,
        url: str | Sequence[str] = DEFAULT_URL,
        token: str | None = None,
        sample_rate: int | None = None,
        frame_ms: int | None = 20,
        settings: KokorodTTSSettings | None = None,
        text_aggregation_mode: TextAggregationMode | None = TextAggregationMode.TOKEN,
        connect_timeout_s: float = 30.0,
        retry_interval_s: float = 5.0,
        stop_frame_timeout_s: float = 30.0,
        overload_policy: FailoverPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            url: the daemon's stream endpoint, or several (tried in order; each
                reconnect moves on to the next, round robin).
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
                start a sentence (or a reconnect to complete); a context normally
                ends with the daemon's ``done``, this is only the safety net.
            overload_policy: retries of a context refused as ``overloaded`` before
                any audio (kokorod.client's policy; default 4 retries in 30 s,
                backoff from 0.2 s doubling to 5 s, times a random 0.5-1).
        """
        defaults = KokorodTTSSettings(model=None, voice=None, language=None, speed=None)
        if settings is not None:
            defaults.apply_update(settings)
        if frame_ms is not None and not FRAME_MS_MIN <= frame_ms <= FRAME_MS_MAX:
            raise ValueError(f"frame_ms must be {FRAME_MS_MIN}-{FRAME_MS_MAX}, got {frame_ms}")
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("no kokorod URL given")
        super().__init__(
            urls=urls, token=token, frame_ms=frame_ms, connect_timeout_s=connect_timeout_s,
            overload_policy=overload_policy,
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
        self._retry_interval_s = retry_interval_s
        self._last_reopen_at = -float("inf")  # time.monotonic() of run_tts's last reconnect

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
        self._book.sample_rate_hz = self._wire_rate_hz
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
        """Add ``text`` to the context's utterance and send it; the audio arrives
        on the receive task. While a reconnect is under way the text waits for it."""
        if not self._is_open() and not self._receiving():
            await self._reopen()
        if not self._is_open() and not self._receiving():
            # Token mode calls this per token: say it once per outage, not per token.
            if not self._down_reported:
                self._down_reported = True
                logger.warning(f"{self}: not connected to kokorod at {self.url}; text is not spoken until it is")
            return
        wc = self._book.get(context_id)
        if wc is None and self._book.ended(context_id):
            logger.debug(f"{self}: text for utterance {context_id}, which has ended, is not spoken")
            return
        wc = wc or self._book.open(context_id, self._voice())
        if wc.tracker.final:
            logger.warning(f"{self}: text after the end of utterance {context_id} is not spoken")
            return
        wc.tracker.add_text(text)
        await self._pump(wc)
        await self.start_tts_usage_metrics(text)
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
        if not flush_id or self._book.ended(flush_id):
            return
        wc = self._book.get(flush_id)
        if wc is None:
            if not self._is_open():
                return
            wc = self._book.open(flush_id, self._voice())
        if not wc.tracker.final:
            wc.tracker.add_text("", final=True)
            await self._pump(wc)

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: cancel the context's utterance, speaking or queued. Audio of it
        still in flight is dropped on arrival, since the context is gone."""
        await self.stop_all_metrics()
        async with self._send_lock:
            wc = self._book.pop(context_id)
            if wc is not None and wc.created and wc.generation == self._generation and self._is_open():
                try:
                    await self._send(Cancel(utterance=wc.wire))
                except Exception as e:
                    logger.warning(f"{self}: could not cancel utterance {wc.wire}: {e}")
        await super().on_audio_context_interrupted(context_id)

    async def on_audio_context_completed(self, context_id: str) -> None:
        self._book.pop(context_id)
        await super().on_audio_context_completed(context_id)

    async def _close_connection_contexts(self) -> None:
        # Closing, or reconnecting given up: the base ends every context with the
        # audio it got; those cut short also get the TTSStoppedFrame the daemon's
        # done would have brought, so downstream sees every started context stop.
        for ctx in self.get_audio_contexts():
            if ctx in self._book:
                await self.append_to_audio_context(ctx, TTSStoppedFrame(context_id=ctx))
        self._book.clear()
        await super()._close_connection_contexts()

    # -- sending -------------------------------------------------------------------

    def _voice(self) -> Voice:
        def given(value: Any) -> Any:
            return value if is_given(value) else None

        speed = given(self._settings.speed)
        # pipecat passes a language it cannot convert on as it is ("de"); the daemon
        # would refuse the utterance, so such a language means "the voice's own".
        lang = given(self._settings.language)
        return Voice(voice=given(self._settings.voice), speed=float(speed) if speed is not None else None,
                     lang=kokorod_language(str(lang)) if lang else None)

    # -- events --------------------------------------------------------------------

    async def _on_event(self, event: ServerEvent) -> None:
        wire: str | None = getattr(event, "utterance", None)
        wc = self._book.by_wire(wire) if wire is not None else None
        outcome = classify(event)
        if wc is None or not self.audio_context_available(wc.context_id):
            if outcome is Outcome.PROBLEM and wire is None:
                await self.push_error(error_msg=describe(event))
            elif outcome is Outcome.NOTE:
                logger.warning(f"{self}: {describe(event)}")
            elif outcome in (Outcome.FAILED, Outcome.PROBLEM):
                # About a context pipecat has already let go of (interrupted, ended):
                # usually a fragment that crossed our own cancel in flight.
                logger.debug(f"{self}: {describe(event)}")
            return
        if isinstance(event, Error) and event.code == ErrorCode.OVERLOADED and self._retry_overloaded(wc):
            return
        ctx = wc.context_id
        words, event = self._book.observe(wc, event)
        if words:
            await self.add_word_timestamps(
                [(w.text, w.start) for w in words], ctx,
                includes_inter_frame_spaces=True if words_are_unspaced(wc.voice.lang) else None,
            )
        if outcome is Outcome.AUDIO:
            assert isinstance(event, Audio)
            self._retry.progress()
            await self.append_to_audio_context(ctx, await self._audio_frame(event, ctx))
        elif outcome in (Outcome.DONE, Outcome.FAILED, Outcome.STOPPED):
            if outcome is Outcome.FAILED:
                await self.push_error(error_msg=describe(event))
            await self._end_context(ctx)
        elif outcome is Outcome.PROBLEM:
            await self.push_error(error_msg=describe(event))
        elif outcome is Outcome.NOTE:
            logger.warning(f"{self}: {describe(event)}")

    async def _audio_frame(self, event: Audio, ctx: str) -> TTSAudioRawFrame:
        pcm = bytes(event.pcm)
        if event.sample_rate != self.sample_rate:
            pcm = await self._resampler.resample(pcm, event.sample_rate, self.sample_rate)
        return TTSAudioRawFrame(audio=pcm, sample_rate=self.sample_rate, num_channels=1, context_id=ctx)
