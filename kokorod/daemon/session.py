"""One client connection: messages in, events out.

The session owns its utterances and their tasks (only it cancels them), one
writer task, and a bounded outbox. It talks to the socket through a two-method
``Transport``, so tests can drive it with an in-process peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Any, AsyncIterable, Mapping, Protocol

from kokorod import __version__
from kokorod.daemon.admission import Capacity
from kokorod.daemon.chunk_cache import ChunkCache
from kokorod.config import ServerConfig
from kokorod.engine.base import SAMPLE_RATE
from kokorod.errors import InputError, KokorodError
from kokorod.logs import kv
from kokorod.metrics import Metrics
from kokorod.daemon.outbox import Outbox
from kokorod.daemon.pacing import SpeechRates
from kokorod.daemon.request_queue import QueueRefused, RequestAdmission, Ticket
from kokorod.protocol.codec import Codec, ProtocolError
from kokorod.protocol.messages import (
    Audio, Cancel, Cancelled, CancelReason, Config, Configured, Error, ErrorCode, LanguageInfo, Limits, PhonemeWord,
    Phonemes, Phonemize, Ready, Speak, Warning, WarningCode, format_rate_problem,
)
from kokorod.daemon.scheduler import EngineScheduler
from kokorod.synthesizer import Synthesizer
from kokorod.text import languages
from kokorod.text.detect import AUTO_KEEP_VOICE, AUTO_MODES, DEFAULT_VOICE_FOR, Choice, LanguageDetector, PendingChoice
from kokorod.text.g2p import LanguageUnavailable
from kokorod.text.languages import Language
from kokorod.text.segmenter import Segment
from kokorod.daemon.timeline import OutputFormat
from kokorod.daemon.utterance import Rendered, State, Utterance, describe, render_segment

log = logging.getLogger("kokorod.daemon.session")
_ENDED_IDS_KEPT = 4096  # remembered to refuse reuse; bounded so long sessions don't grow
_PHONEMIZE_IN_FLIGHT = 4  # `phonemize` requests a connection may have waiting for the engine


class Transport(Protocol):
    async def send(self, frame: bytes | str) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass
class Services:
    """What every session shares."""

    config: ServerConfig
    scheduler: EngineScheduler
    synth: Synthesizer
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


class _RateLimiter:
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


class Session:
    def __init__(self, services: Services, codec: Codec, transport: Transport, session_id: str) -> None:
        self.s = services
        self.codec = codec
        self.transport = transport
        self.id = session_id
        cfg = services.config
        self.voice, self.speed, self.mode = cfg.voice, 1.0, "interrupt"
        self.lang: Language | None = None  # None: each utterance speaks its voice's language
        self.lang_auto: str | None = None  # config lang "auto"/"auto-keep-voice": detected per utterance
        self.lexicon: Any = None  # the session's pronunciation lexicon (kokorod.text.lexicon.Lexicon)
        self._phonemizing: set[asyncio.Task[None]] = set()
        self.fmt = OutputFormat()
        self.utterances: OrderedDict[str, Utterance] = OrderedDict()  # queued or speaking, in play order
        self._ended: OrderedDict[str, str] = OrderedDict()  # id -> how it ended, for the error
        self._tasks_owned: set[Utterance] = set()  # utterances whose task has not finished
        self.outbox = Outbox(cfg.limits.max_connection_buffer_bytes, self._on_outbox_full)
        self._loop = asyncio.get_running_loop()
        self.play_end = 0.0  # loop time at which the client's queued audio runs out
        self._limiter = _RateLimiter(cfg.limits.messages_per_s, cfg.limits.message_burst, self._loop.time())
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # closing the transport after _on_outbox_full

    @property
    def holds_stream(self) -> bool:
        """Whether this connection needs its stream slot: a live utterance is
        queued or speaking (background ones take none; Capacity asks)."""
        return any(not u.background for u in self.utterances.values())

    # -- lifecycle -----------------------------------------------------------

    async def run(self, incoming: AsyncIterable[bytes | str]) -> None:
        limits = self.s.config.limits
        self.outbox.put(Ready(
            version=__version__, session=self.id, encoding=self.codec.encoding, sample_rate=self.fmt.sample_rate,
            format=self.fmt.format, frame_ms=self.fmt.frame_ms, voice=self.voice, speed=self.speed,
            voices=self.s.voices, languages=self.s.languages, lang=None,
            limits=Limits(limits.max_text_chars, limits.max_message_bytes, limits.max_utterances, int(limits.messages_per_s)),
        ))
        self._writer = asyncio.create_task(self._write_loop(), name=f"kokorod-writer-{self.id}")
        try:
            async for frame in incoming:
                self.on_frame(frame)
        finally:
            for task in list(self._phonemizing):
                task.cancel()
            await self.close_utterances(None)
            await self._stop_writer()

    async def close_utterances(self, reason: CancelReason | None) -> None:
        """Cancel everything (``reason`` None: the client is gone, tell nobody)."""
        for utt in list(self.utterances.values()):
            # A vanished client is counted (metrics, log) as "disconnect", not "shutdown".
            self._cancel(utt, reason or CancelReason.SHUTDOWN, notify=reason is not None,
                         label=None if reason is not None else "disconnect")
        tasks = [u.task for u in self._tasks_owned if u.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout_s: float) -> None:
        """Graceful shutdown: let current speech finish, up to ``timeout_s``."""
        waits = [u.finished.wait() for u in self.utterances.values()]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
            except asyncio.TimeoutError:
                pass
        await self.close_utterances(CancelReason.SHUTDOWN)
        # Give the writer a moment to deliver what is queued (``done``/``cancelled``).
        for _ in range(50):
            if not len(self.outbox):
                break
            await asyncio.sleep(0.01)

    async def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            # asyncio.wait, not `await task` + `except CancelledError`: the latter
            # would also swallow a cancellation of *this* task.
            await asyncio.wait([self._writer])
            self._writer = None

    async def _write_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                event = await self.outbox.get()
                await self.transport.send(self.codec.encode(event))
        except ConnectionClosed:
            # The reader side sees the close too and ends the session; nothing to do here.
            return

    # -- incoming ------------------------------------------------------------

    def on_frame(self, frame: bytes | str) -> None:
        now = self._loop.time()
        if not self._limiter.allow(now):
            if now - self._limiter.last_error >= 1.0:
                self._limiter.last_error = now
                self._error(ErrorCode.RATE_LIMITED, f"more than {self.s.config.limits.messages_per_s:g} messages/s; message dropped")
            return
        try:
            message = self.codec.decode(frame)
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.utterance)
            return
        try:
            if isinstance(message, Speak):
                self._on_speak(message)
            elif isinstance(message, Cancel):
                self._on_cancel(message)
            elif isinstance(message, Config):
                self._on_config(message)
            elif isinstance(message, Phonemize):
                self._on_phonemize(message)
        except Exception:  # a bug in one handler must not end the connection
            log.exception("session %s: handler failed", self.id)
            self._error(ErrorCode.ENGINE_ERROR, "internal error handling the message")

    def _error(self, code: str, message: str, utterance: str | None = None) -> None:
        self.s.metrics.protocol_errors.labels(code=str(code)).inc()
        self.outbox.put(Error(str(code), message, utterance))

    def _on_config(self, msg: Config) -> None:
        voice = self.voice
        if msg.voice is not None:
            try:
                self.s.synth.voices.parse(msg.voice)
            except InputError as exc:
                self._error(ErrorCode.UNKNOWN_VOICE, exc.message)
                return
            voice = msg.voice
        fmt = OutputFormat(
            msg.format or self.fmt.format,
            msg.sample_rate or self.fmt.sample_rate,
            msg.frame_ms or self.fmt.frame_ms,
        )
        problem = format_rate_problem(fmt.format, fmt.sample_rate)
        if problem is not None:  # e.g. format opus while the session's rate is 16000
            field = "sample_rate" if msg.sample_rate else "format"
            self._error(ErrorCode.INVALID_FIELD, f"invalid field '{field}': {problem}; the session's sample_rate "
                        f"would be {fmt.sample_rate} (send sample_rate 24000 with it)")
            return
        self.voice = voice
        if msg.lang is not None:
            self.lang_auto = msg.lang if msg.lang in AUTO_MODES else None
            self.lang = languages.resolve(msg.lang) if msg.lang and self.lang_auto is None else None
        self.speed = msg.speed if msg.speed is not None else self.speed
        self.mode = msg.on_new_utterance or self.mode
        self.fmt = fmt
        if msg.lexicon is not None:  # validated by the codec; replaces the whole lexicon ({} clears it)
            self.lexicon = msg.lexicon if len(msg.lexicon) else None
        self.outbox.put(Configured(self.voice, self.speed, self.fmt.format, self.fmt.sample_rate, self.fmt.frame_ms,
                                   self.mode, self.lang.code if self.lang else self.lang_auto,
                                   len(self.lexicon) if self.lexicon is not None else 0))

    def _on_phonemize(self, msg: Phonemize) -> None:
        voice = msg.voice or self.voice
        if msg.voice is not None:
            try:
                self.s.synth.voices.parse(msg.voice)
            except InputError as exc:
                self.outbox.put(Error(ErrorCode.UNKNOWN_VOICE, exc.message, id=msg.id))
                return
        lang = languages.resolve(msg.lang) if msg.lang else self.lang or languages.for_voice(voice)
        missing = self.s.synth.g2p.unavailable(lang)
        if missing is not None:
            self.outbox.put(Error(ErrorCode.LANGUAGE_UNAVAILABLE, str(missing), id=msg.id))
            return
        if len(self._phonemizing) >= _PHONEMIZE_IN_FLIGHT:
            self.outbox.put(Error(ErrorCode.OVERLOADED, f"at most {_PHONEMIZE_IN_FLIGHT} phonemize requests may "
                                  "wait at once; send the next after a phonemes event", id=msg.id))
            return
        task = asyncio.create_task(self._phonemize(msg, lang, self.lexicon), name=f"kokorod-phonemize-{self.id}")
        self._phonemizing.add(task)
        task.add_done_callback(self._phonemizing.discard)

    async def _phonemize(self, msg: Phonemize, lang: Language, lexicon: Any) -> None:
        synth = self.s.synth

        def job(_token: Any) -> list[Any]:
            # On an engine thread: G2P (and a language's first load) never runs on the loop.
            target = synth.current() if hasattr(synth, "current") else synth
            return target.phonemize(msg.text, lang=lang, lexicon=lexicon)  # type: ignore[no-any-return]

        try:
            # Behind any stream that is short of audio, ahead of lookahead work.
            words = await self.s.scheduler.submit(job, urgency=lambda: self.s.config.max_ahead_s)
        except asyncio.CancelledError:
            raise
        except LanguageUnavailable as exc:
            self.outbox.put(Error(ErrorCode.LANGUAGE_UNAVAILABLE, str(exc), id=msg.id))
            return
        except Exception as exc:
            log.exception("phonemize %s failed", msg.id)
            self.outbox.put(Error(ErrorCode.ENGINE_ERROR, f"phonemize failed: {type(exc).__name__}: {str(exc)[:200]}",
                                  id=msg.id))
            return
        self.outbox.put(Phonemes(msg.id, lang.code, tuple(PhonemeWord(w.text, w.phonemes, w.source) for w in words)))

    def _on_cancel(self, msg: Cancel) -> None:
        if msg.all:
            targets = list(self.utterances.values())
        elif msg.utterance is not None:
            targets = [self.utterances[msg.utterance]] if msg.utterance in self.utterances else []
        else:
            targets = list(self.utterances.values())[:1]
        for utt in targets:
            self._cancel(utt, CancelReason.CANCEL)

    def _on_speak(self, msg: Speak) -> None:
        utt = self.utterances.get(msg.utterance)
        if utt is None:
            if msg.utterance in self._ended:
                # Usually a fragment that crossed a refusal or cancel in flight:
                # say how it ended, and that this text was not spoken.
                how = self._ended[msg.utterance]
                self._error(ErrorCode.UNKNOWN_UTTERANCE,
                            f"utterance {msg.utterance!r} has ended ({how}); {len(msg.text)} characters not spoken;"
                            " use a new id", msg.utterance)
                return
            utt = self._create(msg)
            if utt is None:
                return
        elif utt.final:
            self._error(ErrorCode.INVALID_FIELD, f"utterance {msg.utterance!r} was already marked final", msg.utterance)
            return
        limit = self.s.config.limits.max_text_chars
        if utt.pending_chars + len(msg.text) > limit:
            self._error(ErrorCode.TEXT_TOO_LONG,
                        f"utterance {utt.id!r} would hold more than {limit} unspoken characters; fragment rejected", utt.id)
            if msg.final:  # still honour the end of the utterance
                utt.add_text("", True)
            return
        # Chunk sizes follow what the engine can make: the first within the
        # latency budget, later ones while earlier chunks play.
        self._budget(utt)
        utt.add_text(msg.text, msg.final)
        if msg.text and not msg.final:
            self._loop.call_later(self.s.config.stall_flush_s, self._flush_if_stalled, utt, utt.chars)

    def _budget(self, utt: Utterance) -> None:
        if utt.background:  # no listener waiting: the profile's word counts, in small chunks
            return
        first_ms = self.s.config.first_audio_ms
        utt.segmenter.budget = self.s.rates.budget(
            utt.lang.code, utt.segmenter.profile.unit, speed=utt.speed, pace=self.s.capacity.pace(utt.speed),
            first_audio_s=first_ms / 1000 if first_ms > 0 else None)

    def _flush_if_stalled(self, utt: Utterance, chars_then: int) -> None:
        """No text for a while and the buffer ends a sentence: speak it now
        rather than waiting for the next word (which may be seconds away)."""
        if utt.state.ended or utt.final or utt.chars != chars_then:
            return
        if utt.segmenter.ends_with_sentence():
            utt.segments.extend(utt.segmenter.flush())
            utt.changed.set()

    def _refuse(self, uid: str, code: str, message: str) -> None:
        """Refuse a new utterance. Its id counts as ended, so later fragments of
        it are refused too instead of starting it from the middle of the text."""
        self._error(code, message, uid)
        self._remember_ended(uid, f"refused: {code}")

    def _remember_ended(self, uid: str, how: str) -> None:
        self._ended[uid] = how
        while len(self._ended) > _ENDED_IDS_KEPT:
            self._ended.popitem(last=False)

    def _create(self, msg: Speak) -> Utterance | None:
        limits = self.s.config.limits
        voice = msg.voice if msg.voice is not None else self.voice
        try:
            self.s.synth.voices.parse(voice)
        except InputError as exc:
            self._refuse(msg.utterance, ErrorCode.UNKNOWN_VOICE, exc.message)
            return None
        # lang auto: the utterance starts in its voice's language and switches
        # (language and voice) once its first text is known (kokorod.text.detect).
        auto = msg.lang if msg.lang in AUTO_MODES else (self.lang_auto if not msg.lang and self.lang is None else None)
        if auto is not None:
            lang = languages.for_voice(voice)
        else:
            lang = languages.resolve(msg.lang) if msg.lang else self.lang or languages.for_voice(voice)
        missing = self.s.synth.g2p.unavailable(lang)
        if missing is not None:
            self._refuse(msg.utterance, ErrorCode.LANGUAGE_UNAVAILABLE, str(missing))
            return None
        if (msg.mode or self.mode) == "interrupt":
            for old in list(self.utterances.values()):
                self._cancel(old, CancelReason.BARGE_IN)
        if len(self.utterances) >= limits.max_utterances:
            self.s.metrics.utterances_refused.labels(reason="too_many").inc()
            self._refuse(msg.utterance, ErrorCode.TOO_MANY_UTTERANCES, f"at most {limits.max_utterances} utterances may be queued")
            return None
        speed = msg.speed if msg.speed is not None else self.speed
        ticket: Ticket | None = None
        background = msg.priority == "background"
        # Background work is never admitted or refused for capacity: it waits
        # for engine time no stream needs (EngineScheduler). A live one needs the
        # connection's slot, unless it holds it (or its place in the request queue).
        if not background and not self.holds_stream:
            admitted, ticket = self._admit(msg, speed)
            if not admitted:
                return None
        previous = next(reversed(self.utterances.values()), None)
        utt = Utterance(msg.utterance, voice, msg.speed if msg.speed is not None else self.speed, self.fmt,
                        self._loop.time(), lang, background=background)
        if background:
            self.s.capacity.background += 1
        utt.ticket = ticket
        if auto is not None:
            utt.pending = PendingChoice(self.s.detector, voice, keep_voice=auto == AUTO_KEEP_VOICE,
                                        voices=self.s.voice_for)
            utt.on_choice = self._on_choice
        self.utterances[utt.id] = utt
        self._tasks_owned.add(utt)
        self.s.metrics.utterances_started.inc()
        self.s.metrics.active_streams.set(self.s.capacity.active)
        utt.task = asyncio.create_task(self._speak(utt, previous), name=f"kokorod-utt-{self.id}-{utt.id}")
        utt.task.add_done_callback(lambda _t, u=utt: self._tasks_owned.discard(u))
        return utt

    def _on_choice(self, utt: Utterance, choice: Choice) -> None:
        """lang auto decided: the new segmenter's budget in its language's rates; counted."""
        self._budget(utt)
        outcome = "undecided" if choice.detected is None else "switched" if choice.switched else "same"
        self.s.metrics.language_auto.labels(outcome=outcome, lang=choice.lang.code).inc()
        if choice.switched:
            log.info("utterance %s: text in %s, not its voice's %s: spoken by %s", utt.id, choice.lang.code,
                     choice.voice_lang.code, choice.voice)

    def _admit(self, msg: Speak, speed: float) -> tuple[bool, Ticket | None]:
        """A stream slot for a new utterance: now, a place in the request queue
        (a request, ``admission: queue``), or a refusal sent to the client."""
        requests = self.s.requests
        if msg.admission == "queue" and requests is not None:
            try:
                return True, requests.enter(self, speed)
            except QueueRefused as exc:
                self.s.metrics.utterances_refused.labels(reason="queue_full").inc()
                self._refuse(msg.utterance, ErrorCode.OVERLOADED, exc.message)
                return False, None
        if self.s.capacity.try_acquire(self, speed):
            return True, None
        self.s.metrics.utterances_refused.labels(reason="overloaded").inc()
        self._refuse(msg.utterance, ErrorCode.OVERLOADED, "the daemon is at capacity; try again shortly with a new "
                     "utterance id (or send a request with \"admission\": \"queue\" to wait for a slot)")
        return False, None

    async def _await_slot(self, utt: Utterance) -> bool:
        """Wait for a queued request's slot; False (and the utterance failed) at its deadline."""
        assert self.s.requests is not None
        try:
            await self.s.requests.wait(utt.ticket)
        except QueueRefused as exc:
            self.s.metrics.utterances_refused.labels(reason="queue_timeout").inc()
            self._fail(utt, ErrorCode.OVERLOADED, exc.message)
            return False
        utt.ticket = None
        # Time to first audio counts from the slot: the wait has its own histogram.
        utt.created_at = self._loop.time()
        return True

    # -- speaking ------------------------------------------------------------

    def _urgency(self) -> float:
        return self.play_end - self._loop.time()

    async def _speak(self, utt: Utterance, previous: Utterance | None) -> None:
        try:
            if utt.ticket is not None and not await self._await_slot(utt):
                return
            if previous is not None:
                await previous.finished.wait()
            utt.state = State.SPEAKING
            self.play_end = max(self.play_end, self._loop.time())
            while True:
                if not utt.segments:
                    if utt.final:
                        break
                    utt.changed.clear()
                    await utt.changed.wait()
                    continue
                segment = utt.segments.popleft()
                self._report_unspoken(utt, segment)
                if segment.spoken.strip():
                    await self._speak_segment(utt, segment)
                if segment.pause_after_ms:  # a <break/>: exact silence, after whatever the text made
                    await self._await_lookahead(utt)
                    self._emit(utt, await utt.silence(segment.pause_after_ms * SAMPLE_RATE // 1000))
            if utt.timeline.pos_24k == 0:
                # Never a bare `done` for text that made no sound: say so.
                self._fail(utt, ErrorCode.NOTHING_TO_SPEAK,
                           f"nothing in this utterance's text can be spoken as {utt.lang.name}"
                           + (" (see its warnings)" if utt.warned else ""))
                return
            self._emit(utt, await utt.finish())
            self._retire(utt, State.DONE)
        except asyncio.CancelledError:
            raise
        except LanguageUnavailable as exc:
            self._fail(utt, ErrorCode.LANGUAGE_UNAVAILABLE, str(exc))
        except Exception as exc:  # any synthesis failure ends this utterance only
            log.exception("utterance %s failed", utt.id)
            self.s.metrics.engine_errors.inc()
            # Our own errors say what to fix; a library's message may quote the
            # text (num2words quotes the number), and frontends log this message.
            detail = f": {str(exc)[:200]}" if isinstance(exc, KokorodError) else ""
            self._fail(utt, ErrorCode.ENGINE_ERROR, f"synthesis failed: {type(exc).__name__}{detail}")

    async def _speak_segment(self, utt: Utterance, segment: Segment) -> None:
        await self._await_lookahead(utt)
        # Text that came after the listener's audio ran out (an LLM slower than
        # speech): a gap, but not the engine's, so admission does not learn from it.
        starved = self.play_end < self._loop.time()
        last = utt.final and not utt.segments
        cache = self.s.chunk_cache
        # Looked up on the loop: a hit neither runs the engine nor queues for it.
        lookup = None if cache is None else cache.lookup(
            segment, voice=utt.voice, speed=utt.speed, lang=utt.lang, last=last, session_lexicon=self.lexicon,
            daemon_lexicons=getattr(getattr(self.s.synth, "g2p", None), "lexicons", None))
        rendered: Rendered | None = None if lookup is None else lookup.rendered
        hit = rendered is not None
        if rendered is None:
            job = partial(self._job, segment=segment, voice=utt.voice, speed=utt.speed, lang=utt.lang, last=last,
                          lexicon=self.lexicon)
            rendered = await self.s.scheduler.submit(job, urgency=self._urgency, background=utt.background)
            if lookup is not None:
                lookup.store(rendered)
        else:
            # Yield once, as waiting for the engine would: a cancel of this
            # utterance (barge-in, or _emit's slow-consumer verdict on the
            # previous chunk) lands here instead of the utterance running on.
            await asyncio.sleep(0)
        utt.synth_s += rendered.synth_s
        if rendered.unspeakable:
            self._warn(utt, WarningCode.UNSPEAKABLE, " ".join(rendered.unspeakable),
                       f"{utt.lang.name} G2P gave no sounds the model knows for this text")
        if not rendered.chunk.samples:
            return
        utt.chunks += 1
        if not hit:  # the engine's speed and the model's speaking rate: only from real runs
            self.s.metrics.rtf.observe(rendered.synth_s / (rendered.chunk.samples / SAMPLE_RATE))
            self.s.rates.observe(utt.lang.code, utt.segmenter.profile.unit, spoken_chars=len(segment.spoken),
                                 speech_samples=rendered.speech_samples, decoded_samples=rendered.decoded_samples,
                                 sample_rate=SAMPLE_RATE, speed=utt.speed)
        else:
            await self._let_writer_catch_up(utt, rendered.chunk.samples / SAMPLE_RATE)
        self._emit(utt, await utt.render(segment.text, rendered.chunk), judge=not starved)

    async def _let_writer_catch_up(self, utt: Utterance, audio_s: float) -> None:
        """A cached chunk is ready at once. The engine would have taken a while
        to render it, time in which a reading client takes the audio queued for
        it; give the writer that long before ``_emit`` judges the backlog, so a
        hit never makes a reading client look like a slow consumer."""
        limit = self.s.config.limits.max_send_buffer_s
        if self.outbox.audio_s <= limit:
            return
        estimator = self.s.capacity.estimator
        rtf = estimator.rtf(utt.speed) if estimator is not None else None
        await self.outbox.wait_below(limit, audio_s * (rtf if rtf is not None else 1.0))

    def _job(self, token: Any, *, segment: Any, voice: str, speed: float, lang: Language, last: bool,
             lexicon: Any = None) -> Rendered:
        return render_segment(self.s.synth, segment, voice=voice, speed=speed, lang=lang, last=last, token=token,
                              lexicon=lexicon)

    def _report_unspoken(self, utt: Utterance, segment: Segment) -> None:
        """Text the normaliser removed, or a code block skipped: said, never silent."""
        if segment.dropped:
            self._warn(utt, WarningCode.UNSPEAKABLE, " ".join(segment.dropped),
                       f"not speakable as {utt.lang.name}; skipped")
        if segment.code and segment.text.strip():
            self._warn(utt, WarningCode.SKIPPED, segment.text.strip(), "code block not spoken")
        for note in segment.notes:  # markup not taken as written, e.g. a clamped <break/>
            self._warn(utt, WarningCode.MARKUP, segment.text.strip(), note)

    def _warn(self, utt: Utterance, code: str, text: str, message: str) -> None:
        if utt.state.ended:
            return
        utt.warned = True
        self.s.metrics.warnings.labels(code=str(code)).inc()
        self.outbox.put(Warning(utt.id, str(code), message, text))

    async def _await_lookahead(self, utt: Utterance) -> None:
        if utt.background:
            # Made as fast as the engine's spare time allows, not at 1x: bounded
            # by the client reading (half the send buffer, so a chunk always fits).
            while not await self.outbox.wait_below(self.s.config.limits.max_send_buffer_s / 2, 30.0):
                pass
            return
        max_ahead = self.s.config.max_ahead_s
        while (ahead := self.play_end - self._loop.time()) > max_ahead:
            await asyncio.sleep(ahead - max_ahead)

    def _emit(self, utt: Utterance, events: list[Any], *, judge: bool = False) -> None:
        """Queue ``events``; ``judge``: an engine run made them, so whether they
        came in time teaches admission (Capacity.late / on_time)."""
        if utt.state.ended:  # stale: cancelled while this chunk was being made
            return
        # Judge the backlog before adding a chunk's audio: a fresh chunk is often
        # seconds of audio put here at once, which a reading client drains while
        # the next one is synthesized; audio still queued from earlier chunks
        # means it is not reading.
        if self.outbox.audio_s > self.s.config.limits.max_send_buffer_s and any(isinstance(e, Audio) for e in events):
            for victim in list(self.utterances.values()):
                self._cancel(victim, CancelReason.SLOW_CONSUMER)
            self._error(ErrorCode.OVERLOADED, "the client is not reading its audio; stream cancelled")
            return
        now = self._loop.time()
        late, first_frame = False, True
        for event in events:
            if isinstance(event, Audio):
                audio_s = event.samples / event.sample_rate
                if utt.background:
                    # Nobody plays it in real time: no first audio, no underrun,
                    # and no playback for a live utterance after it to wait for.
                    self.s.metrics.background_audio.inc(audio_s)
                    self.s.metrics.audio_seconds.inc(audio_s)
                    self.outbox.put(event)
                    continue
                if utt.first_audio_at is None:
                    utt.first_audio_at = now
                    self.s.metrics.ttfa.observe(now - utt.created_at)
                elif self.play_end < now and first_frame:
                    # Judged on the batch's first frame only (the rest follow it
                    # at once); word events may come before it, so not by index.
                    late = True
                    self.s.metrics.underruns.inc()
                    if judge:
                        self.s.capacity.late(now)  # admission learns its margin from this
                elif judge and not late:
                    self.s.capacity.on_time(audio_s)
                first_frame = False
                self.play_end = max(self.play_end, now) + audio_s
                self.s.metrics.audio_seconds.inc(audio_s)
            self.outbox.put(event)

    def _on_outbox_full(self) -> None:
        """More events queued than --max-connection-buffer-bytes: a client that
        does not read (``_emit``'s check sees only audio; a flood of warnings or
        phonemize answers is caught here). Everything it asked for stops and the
        connection is closed: nothing more can reach it anyway."""
        limit = self.s.config.limits.max_connection_buffer_bytes
        for victim in list(self.utterances.values()):
            self._cancel(victim, CancelReason.SLOW_CONSUMER, notify=False)
        for task in list(self._phonemizing):
            task.cancel()
        why = f"not reading: more than {limit} bytes of events held (--max-connection-buffer-bytes)"
        cut = getattr(self.transport, "cut", None)
        if cut is not None:  # the WebSocket: its connection logs and counts the cut
            cut(why)
            return
        self.s.metrics.connections_cut.labels(reason="buffer_bytes").inc()
        log.warning("session %s: %s; closing", self.id, why)
        self._closing = asyncio.create_task(self.transport.close(1008, why), name=f"kokorod-close-{self.id}")

    def _fail(self, utt: Utterance, code: str, message: str) -> None:
        if utt.state.ended:
            return
        self.outbox.put(Error(str(code), message, utt.id))
        self.s.metrics.protocol_errors.labels(code=str(code)).inc()
        self._retire(utt, State.FAILED)

    def _cancel(self, utt: Utterance, reason: CancelReason, *, notify: bool = True, label: str | None = None) -> None:
        if utt.state.ended:
            return
        was_speaking = utt.state == State.SPEAKING
        self._retire(utt, State.CANCELLED, reason=label or str(reason))
        if utt.task is not None and not utt.task.done():
            utt.task.cancel()
        self.outbox.purge(utt.id)
        if notify:
            self.outbox.put(Cancelled(utt.id, str(reason)))
        if was_speaking:
            # The client drops what it buffered of this utterance, so our estimate
            # of its queued audio restarts from now.
            self.play_end = self._loop.time()

    def _retire(self, utt: Utterance, state: State, reason: str | None = None) -> None:
        utt.state = state
        utt.timeline.close()  # a compressed format's encoder: discarded unless finished
        self.utterances.pop(utt.id, None)
        self._remember_ended(utt.id, state.value if reason is None else f"{state.value}: {reason}")
        if utt.ticket is not None and self.s.requests is not None:
            self.s.requests.leave(utt.ticket)  # abandoned while waiting: its place frees at once
        if utt.background:
            self.s.capacity.background -= 1
        elif not self.holds_stream:  # its last live one: the connection's stream slot is free
            self.s.capacity.release()
            if self.s.requests is not None:
                self.s.requests.pump_soon()  # to the request that waited longest (after a barge-in's own)
        m = self.s.metrics
        m.active_streams.set(self.s.capacity.active)
        if state == State.DONE:
            m.utterances_done.inc()
        elif state == State.CANCELLED:
            m.utterances_cancelled.labels(reason=reason or "cancel").inc()
        else:
            m.utterances_failed.inc()
        utt.finished.set()
        info = describe(utt, reason or state.value, self._loop.time())
        info["session"] = self.id
        # Text logs read "utterance k=v ..."; --log-json emits the fields as JSON keys.
        log.info("utterance %s", kv(info), extra={"event": "utterance", "fields": info})
