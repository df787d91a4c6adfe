"""A session's state, and its outbox/emit path: events out, and how an
utterance ends (done, failed, cancelled), counted and logged once.

The first layer of ``Session`` (kokorod/daemon/session.py): the utterance
runner (kokorod/daemon/speaking.py) builds on it, the message handling on both.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from kokorod.daemon.outbox import Outbox
from kokorod.daemon.services import MessageRateLimiter, Services, Transport
from kokorod.daemon.timeline import OutputFormat
from kokorod.daemon.utterance import State, Utterance, describe
from kokorod.logs import kv
from kokorod.protocol.codec import Codec
from kokorod.protocol.messages import Audio, Cancelled, CancelReason, Error, ErrorCode, Warning
from kokorod.text.languages import Language

log = logging.getLogger("kokorod.daemon.session")
_ENDED_IDS_KEPT = 4096  # remembered to refuse reuse; bounded so long sessions don't grow


class SessionEvents:
    """A connection's state (its settings, utterances, outbox) and the one way
    events and endings leave it."""

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
        self._limiter = MessageRateLimiter(cfg.limits.messages_per_s, cfg.limits.message_burst, self._loop.time())
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # closing the transport after _on_outbox_full

    @property
    def holds_stream(self) -> bool:
        """Whether this connection needs its stream slot: a live utterance is
        queued or speaking (background ones take none; Capacity asks)."""
        return any(not u.background for u in self.utterances.values())

    def _error(self, code: str, message: str, utterance: str | None = None) -> None:
        self.s.metrics.protocol_errors.labels(code=str(code)).inc()
        self.outbox.put(Error(str(code), message, utterance))

    def refuse(self, code: str, message: str, utterance: str | None = None) -> None:
        """A message its transport refused before the session read it (a local
        peer's full queue): the client hears it as an error event, never silence."""
        self._error(code, message, utterance)

    def _warn(self, utt: Utterance, code: str, text: str, message: str) -> None:
        if utt.state.ended:
            return
        utt.warned = True
        self.s.metrics.warnings.labels(code=str(code)).inc()
        self.outbox.put(Warning(utt.id, str(code), message, text))

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

    def _remember_ended(self, uid: str, how: str) -> None:
        self._ended[uid] = how
        while len(self._ended) > _ENDED_IDS_KEPT:
            self._ended.popitem(last=False)
