"""The utterance runner: one task per utterance walks its segments through
the speech pipeline (kokorod.speech: plan, render on an engine worker, or a
chunk-cache hit) and puts the events on the session's outbox, never further
ahead of the listener than the lookahead allows.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from kokorod.daemon.request_queue import QueueRefused
from kokorod.daemon.session_events import SessionEvents
from kokorod.daemon.utterance import State, Utterance
from kokorod.engine.base import SAMPLE_RATE
from kokorod.errors import KokorodError
from kokorod.protocol.messages import ErrorCode
from kokorod.speech.plan import Synthesize, Warn, is_last, plan_segment, unspeakable_warning
from kokorod.speech.render import Rendered, render_segment
from kokorod.text.g2p import LanguageUnavailable
from kokorod.text.languages import Language
from kokorod.text.segmenter import Segment

log = logging.getLogger("kokorod.daemon.session")


class UtteranceRunner(SessionEvents):
    """Each utterance's task (``_speak``): wait for its turn, then its segments."""

    def _urgency(self) -> float:
        return self.play_end - self._loop.time()

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
                # The one pipeline's steps (kokorod.speech.plan), as say and pipe run them.
                for step in plan_segment(utt.segments.popleft(), utt.lang):
                    if isinstance(step, Warn):  # text not spoken as written: said, never silent
                        self._warn(utt, step.code, step.text, step.message)
                    elif isinstance(step, Synthesize):
                        await self._speak_segment(utt, step.segment)
                    else:  # a <break/>: exact silence, after whatever the text made
                        await self._await_lookahead(utt)
                        self._emit(utt, await utt.silence(step.samples))
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
        last = is_last(utt.final, utt.segments)
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
        warn = unspeakable_warning(rendered.unspeakable, utt.lang)
        if warn is not None:
            self._warn(utt, warn.code, warn.text, warn.message)
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
