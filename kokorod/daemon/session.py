"""One client connection: messages in, events out.

The session owns its utterances and their tasks (only it cancels them), one
writer task, and a bounded outbox. It talks to the socket through a two-method
``Transport``, so tests can drive it with an in-process peer. Three layers, one
concern each: the state and the outbox/emit path (``session_events.py``), the
utterance runner (``speaking.py``), and here the messages: speak, cancel,
config, phonemize, and admitting a new utterance.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterable

from kokorod import __version__
from kokorod.daemon.request_queue import QueueRefused, Ticket
from kokorod.daemon.services import Services, Transport
from kokorod.daemon.speaking import UtteranceRunner
from kokorod.daemon.timeline import OutputFormat
from kokorod.daemon.utterance import Utterance
from kokorod.errors import InputError
from kokorod.protocol.codec import ProtocolError
from kokorod.protocol.messages import (
    Cancel, CancelReason, Config, Configured, Error, ErrorCode, Limits, PhonemeWord, Phonemes, Phonemize, Ready,
    Speak, format_rate_problem,
)
from kokorod.speech.synthesizer import WordPhonemes
from kokorod.text import languages
from kokorod.text.detect import AUTO_KEEP_VOICE, AUTO_MODES, Choice, PendingChoice
from kokorod.text.g2p import LanguageUnavailable
from kokorod.text.languages import Language

__all__ = ["Services", "Session", "Transport"]  # Services and Transport: where the server and front-ends look

log = logging.getLogger("kokorod.daemon.session")
_PHONEMIZE_IN_FLIGHT = 4  # `phonemize` requests a connection may have waiting for the engine


class Session(UtteranceRunner):
    async def run(self, incoming: AsyncIterable[bytes | str]) -> None:
        limits = self.s.config.limits
        self.outbox.put(Ready(
            version=__version__, session=self.id, encoding=self.codec.encoding, sample_rate=self.fmt.sample_rate,
            format=self.fmt.format, frame_ms=self.fmt.frame_ms, voice=self.voice, speed=self.speed,
            voices=self.s.voices, languages=self.s.languages, lang=None,
            limits=Limits(limits.max_text_chars, limits.max_message_bytes, limits.max_utterances, int(limits.messages_per_s)),
            capacity=self.s.capacity_info(),
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

        def job(_token: Any) -> list[WordPhonemes]:
            # On an engine thread: G2P (and a language's first load) never runs on the loop.
            return synth.phonemize(msg.text, lang=lang, lexicon=lexicon)

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
            first_audio_s=first_ms / 1000 if first_ms > 0 else None, first_pace=self.s.capacity.first_pace(utt.speed))

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
