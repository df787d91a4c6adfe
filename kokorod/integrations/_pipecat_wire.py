"""The framework-free half of the pipecat service: what a kokorod event means for
a pipecat audio context, how pipecat's settings become kokorod messages, the
opening exchange of a connection, and which daemon-side utterance speaks which
pipecat context across connections (``ContextBook``).

Nothing here imports pipecat, so it is unit-tested without it
(tests/unit/integrations/test_pipecat_mapping.py) and the service module stays about pipecat.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from kokorod.client.resume import ResumeTracker, speakable
from kokorod.protocol.codec import MsgpackCodec, ProtocolError
from kokorod.protocol.messages import (
    SAMPLE_RATE, SAMPLE_RATES, Audio, Cancelled, CancelReason, Config, Configured, Done, Error, ErrorCode, Ready,
    ServerEvent, Speak, WarningEvent, WordEvent,
)

# The model's own rate: audio at any other pipeline rate the daemon cannot make
# is asked for at this rate and resampled on our side.
MODEL_SAMPLE_RATE: Final = SAMPLE_RATE

# Errors that reject one fragment while the utterance goes on (docs/protocol.md,
# "Which errors end an utterance"); every other error naming an utterance ends it.
_FRAGMENT_ERRORS: Final = frozenset({ErrorCode.TEXT_TOO_LONG, ErrorCode.RATE_LIMITED, ErrorCode.MESSAGE_TOO_LARGE,
                                     ErrorCode.INVALID_FIELD})

# pipecat Language values are BCP 47 strings ("en", "en-US", "pt-BR", "zh-CN"...).
# Exact regional codes kokorod has a voice set for come first, then the base language.
_REGIONAL: Final = {"en-us": "en-us", "en-gb": "en-gb", "pt-br": "pt-br"}
_BASE: Final = {"en": "en-us", "es": "es", "fr": "fr", "hi": "hi", "it": "it", "pt": "pt-br", "ja": "ja", "zh": "zh",
                "cmn": "zh"}
# Languages whose words carry no spaces between them (word events are tokens).
_UNSPACED: Final = frozenset({"ja", "zh"})


def kokorod_language(code: str) -> str | None:
    """kokorod's language code for a pipecat/BCP 47 language, or None if no
    Kokoro voice speaks it."""
    lowered = code.strip().lower().replace("_", "-")
    if lowered in _REGIONAL:
        return _REGIONAL[lowered]
    return _BASE.get(lowered.split("-")[0])


def words_are_unspaced(lang: str | None) -> bool:
    """Whether word events of this kokorod language are written without spaces
    between them (pipecat must then not insert any)."""
    return lang in _UNSPACED


def wire_sample_rate(pipeline_rate_hz: int) -> int:
    """The rate to ask the daemon for: the pipeline's own when the daemon can
    resample to it (its resampler keeps chunk seams continuous), else the model's."""
    return pipeline_rate_hz if pipeline_rate_hz in SAMPLE_RATES else MODEL_SAMPLE_RATE


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True, slots=True)
class Voice:
    """What kokorod takes from pipecat's settings when an utterance is created."""

    voice: str | None = None
    speed: float | None = None
    lang: str | None = None

    def config(self, sample_rate_hz: int, frame_ms: int | None) -> Config:
        # `queue`: pipecat plays its audio contexts one after another and says
        # itself when one is interrupted, so a new utterance must never barge in.
        return Config(voice=self.voice, speed=self.speed, lang=self.lang, format="pcm_s16le",
                      sample_rate=sample_rate_hz, frame_ms=frame_ms, on_new_utterance="queue")

    def speak(self, utterance: str, text: str, *, final: bool = False) -> Speak:
        return Speak(utterance=utterance, text=text, voice=self.voice, speed=self.speed, lang=self.lang, final=final,
                     mode="queue")


class SendPacer:
    """Keeps our messages under the daemon's ``limits.messages_per_s``: past it the
    daemon drops messages (``rate_limited``), which for text means words never
    spoken. A fast LLM in token mode can go past it, so sends wait instead.

    A sliding one-second window holding at most ``headroom`` of the limit; the
    window is the only state, bounded by its size."""

    def __init__(self, messages_per_s: float, headroom: float = 0.8) -> None:
        self.per_window = max(1, int(messages_per_s * headroom))
        self._sent_at_s: deque[float] = deque()

    def wait_s(self, now_s: float) -> float:
        """How long to wait before the next send may go out (0: now)."""
        while self._sent_at_s and now_s - self._sent_at_s[0] >= 1.0:
            self._sent_at_s.popleft()
        if len(self._sent_at_s) < self.per_window:
            return 0.0
        return 1.0 - (now_s - self._sent_at_s[0])

    def sent(self, now_s: float) -> None:
        self._sent_at_s.append(now_s)
        while len(self._sent_at_s) > self.per_window:  # concurrent senders may overshoot by one
            self._sent_at_s.popleft()


class Outcome(Enum):
    AUDIO = "audio"          # PCM for the context
    WORD = "word"            # a word time for the context
    DONE = "done"            # the context's utterance was spoken to its end
    FAILED = "failed"        # the utterance ended early for a reason the app should hear of
    STOPPED = "stopped"      # ended by our own cancel: nothing to report
    PROBLEM = "problem"      # an error that ends nothing (a rejected fragment, a session error)
    NOTE = "note"            # worth a log line only (a warning)
    IGNORE = "ignore"        # ready, configured, chunk, phonemes, ...


def classify(event: ServerEvent) -> Outcome:
    """What one daemon event does to the pipecat audio context of its utterance."""
    if isinstance(event, Audio):
        return Outcome.AUDIO
    if isinstance(event, WordEvent):
        return Outcome.WORD
    if isinstance(event, Done):
        return Outcome.DONE
    if isinstance(event, Cancelled):
        return Outcome.STOPPED if event.reason == CancelReason.CANCEL else Outcome.FAILED
    if isinstance(event, Error):
        if event.utterance is not None and event.code not in _FRAGMENT_ERRORS:
            return Outcome.FAILED
        return Outcome.PROBLEM
    if isinstance(event, WarningEvent):
        return Outcome.NOTE
    return Outcome.IGNORE


def describe(event: ServerEvent) -> str:
    """One line for an error frame or a log about ``event``."""
    if isinstance(event, Cancelled):
        return f"kokorod stopped utterance {event.utterance!r} ({event.reason})"
    if isinstance(event, Error):
        about = f" (utterance {event.utterance!r})" if event.utterance else ""
        return f"kokorod error {event.code}{about}: {event.message}"
    if isinstance(event, WarningEvent):
        return f"kokorod warning {event.code} (utterance {event.utterance!r}): {event.message}"
    return f"kokorod event {type(event).__name__}"


def decode(codec: MsgpackCodec, frame: Any) -> ServerEvent | None:
    """One daemon event; None for a type this version does not know (a newer
    daemon's addition). Any other undecodable frame raises ``ProtocolError``."""
    try:
        return codec.decode_event(frame)
    except ProtocolError as e:
        if e.code == ErrorCode.UNKNOWN_TYPE:
            return None
        raise


async def handshake(ws: Any, codec: MsgpackCodec, config: Config) -> Ready:
    """``ready``, then the session's ``config``, confirmed by ``configured``; on a
    fresh socket, before anything else reads it. Raises ``ConnectionError``."""
    ready = codec.decode_event(await ws.recv())
    if not isinstance(ready, Ready):
        raise ConnectionError(f"expected ready, got {type(ready).__name__}")
    await ws.send(codec.encode_message(config))
    while True:
        try:
            event = decode(codec, await ws.recv())
        except ProtocolError:
            continue  # not this exchange's business: the answer to config is what counts
        if isinstance(event, Configured):
            return ready
        if isinstance(event, Error):
            raise ConnectionError(describe(event))


# -- contexts across connections ----------------------------------------------------------
#
# A context's text is kept in a ``ResumeTracker`` (kokorod/client/resume.py), fed
# everything given for it and every event received for it. The daemon does not
# carry utterances across connections, so when a connection is replaced each
# unfinished context is *attached* to the new one under a fresh daemon-side
# ("wire") id, ``<context>#1``, ``#2``... (an id cannot be reused on a connection),
# and what the listener has not heard is sent there again. The tracker maps the
# events of every wire id back onto the context's one timeline (times, offsets
# and word indices continue).
#
# Words are handed to pipecat only once audio holding their start has arrived: a
# word whose audio never came (cut off with the connection) is not shown then,
# but when the new daemon speaks it. A word re-spoken because its audio was cut
# comes again with the index it had, and is not shown twice.


# Ids of contexts whose utterance ended, kept so a late flush or fragment for one
# is not sent as a new utterance; contexts are short-lived, so a few dozen cover
# every one pipecat may still name.
_ENDED_KEPT: Final = 64
# Words waiting for their audio: the words of the chunk being spoken (the daemon
# sends a chunk's words just before its audio). Past this, the oldest are handed
# on without waiting rather than dropped.
_HELD_WORDS_MAX: Final = 2048
_WIRE_ID_MAX_CHARS: Final = 118  # leaves room for "#n" under the protocol's 128


def max_chars_per_message(max_message_bytes: int) -> int:
    """Characters of text one ``speak`` may carry under the daemon's message
    limit, at the worst case of 4 UTF-8 bytes a character."""
    return max(1, (max_message_bytes - 2048) // 4)


class Attached(Enum):
    SPEAK = "speak"          # created (or to be created) on the connection with its unheard text
    NOTHING_LEFT = "done"    # everything was heard already: the context ends here


@dataclass(slots=True)
class WireContext:
    """One pipecat audio context and the utterance speaking it now."""

    context_id: str
    voice: Voice                 # taken when the context's first text came; every segment uses it
    tracker: ResumeTracker
    wire: str | None = None      # its id on the current connection; None: not there (yet, or refused)
    generation: int = -1         # the connection ``wire`` lives on
    created: bool = False        # a speak went out under ``wire``
    sent: int = 0                # characters of ``tracker.text`` sent under ``wire``
    final_sent: bool = False
    next_word: int = 0           # the lowest word index pipecat has not been given
    held: deque[WordEvent] = field(default_factory=deque)

    @property
    def resumed(self) -> bool:
        return self.tracker.segments > 1


class ContextBook:
    """The contexts with an utterance the daemon has not ended, in creation order."""

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._open: dict[str, WireContext] = {}
        self._by_wire: dict[str, WireContext] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    # -- contexts ----------------------------------------------------------------

    def get(self, context_id: str) -> WireContext | None:
        return self._open.get(context_id)

    def ended(self, context_id: str) -> bool:
        return context_id in self._ended

    def open(self, context_id: str, voice: Voice) -> WireContext:
        wc = self._open.get(context_id)
        if wc is None:
            wc = self._open[context_id] = WireContext(context_id, voice,
                                                      ResumeTracker(context_id, self.sample_rate_hz))
        return wc

    def contexts(self) -> list[WireContext]:
        return list(self._open.values())

    def __contains__(self, context_id: object) -> bool:
        return context_id in self._open

    def pop(self, context_id: str) -> WireContext | None:
        """Forget a context (its utterance ended, or pipecat let go of it)."""
        wc = self._open.pop(context_id, None)
        if wc is not None and wc.wire is not None:
            self._by_wire.pop(wc.wire, None)
        self._ended[context_id] = None
        while len(self._ended) > _ENDED_KEPT:
            self._ended.popitem(last=False)
        return wc

    def clear(self) -> None:
        for context_id in list(self._open):
            self.pop(context_id)

    def by_wire(self, wire: str) -> WireContext | None:
        return self._by_wire.get(wire)

    # -- connections -------------------------------------------------------------

    def attach(self, wc: WireContext, generation: int) -> Attached:
        """Put ``wc`` on connection ``generation``: a new segment of its tracker,
        starting at the first word not heard in full, under a new wire id."""
        point = wc.tracker.resume_point()
        wc.tracker.start_segment(point)
        if wc.wire is not None:
            self._by_wire.pop(wc.wire, None)
        n = wc.tracker.segments - 1
        wc.wire = wc.context_id if n == 0 else f"{wc.context_id[:_WIRE_ID_MAX_CHARS]}#{n}"
        wc.generation, wc.created, wc.sent, wc.final_sent = generation, False, point.source_offset, False
        wc.held.clear()  # their audio never came: the new segment speaks them again
        self._by_wire[wc.wire] = wc
        if n > 0 and point.final and wc.tracker.has_audio and not speakable(point.text):
            return Attached.NOTHING_LEFT
        return Attached.SPEAK

    def park(self, wc: WireContext) -> None:
        """The daemon refused ``wc`` (``overloaded``): nothing more is sent for it
        on this connection; the next connection attaches it again."""
        if wc.wire is not None:
            self._by_wire.pop(wc.wire, None)
        wc.wire = None

    def parked(self, generation: int) -> list[WireContext]:
        return [wc for wc in self._open.values() if wc.wire is None and wc.generation == generation]

    def next_message(self, wc: WireContext, generation: int, max_chars: int) -> Speak | None:
        """The next ``speak`` to send for ``wc`` on connection ``generation``; None
        when there is nothing new, or ``wc`` has no utterance there."""
        if wc.wire is None or wc.generation != generation:
            return None
        text = wc.tracker.text
        piece = text[wc.sent:wc.sent + max_chars]
        final = wc.tracker.final and wc.sent + len(piece) >= len(text)
        if not piece and (wc.final_sent or not final):
            return None
        return wc.voice.speak(wc.wire, piece, final=final)

    def sent(self, wc: WireContext, message: Speak) -> None:
        if message.utterance == wc.wire:
            wc.created, wc.sent = True, wc.sent + len(message.text)
            wc.final_sent = wc.final_sent or message.final

    # -- events --------------------------------------------------------------------

    def observe(self, wc: WireContext, event: ServerEvent) -> tuple[list[WordEvent], ServerEvent]:
        """``event`` of ``wc``'s current wire id on the context's timeline, and the
        words that may be shown now (in order, each index once)."""
        out = wc.tracker.observe(event)
        if isinstance(out, WordEvent):
            if out.index >= wc.next_word and not any(w.index == out.index for w in wc.held):
                wc.held.append(out)
            # A runaway buffer hands on its oldest word early rather than losing it.
            return self._release(wc, wc.held[0].start + 1e-9 if len(wc.held) > _HELD_WORDS_MAX else None), out
        if isinstance(out, Audio):
            return self._release(wc, (out.offset + out.samples) / out.sample_rate), out
        if isinstance(out, Done):
            return self._release(wc, float("inf")), out
        return [], out

    @staticmethod
    def _release(wc: WireContext, until_s: float | None) -> list[WordEvent]:
        """Held words that start before ``until_s`` (None: none)."""
        words: list[WordEvent] = []
        while until_s is not None and wc.held and wc.held[0].start < until_s:
            word = wc.held.popleft()
            if word.index >= wc.next_word:
                words.append(word)
                wc.next_word = word.index + 1
        return words
