"""The pure half of the pipecat service: what a kokorod event means for a pipecat
audio context, and how pipecat's settings become kokorod messages.

Nothing here imports pipecat, so it is unit-tested without it
(tests/unit/test_pipecat_mapping.py) and the service module stays about I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final

from kokorod.protocol.messages import (
    SAMPLE_RATES, Audio, Cancelled, CancelReason, Config, Done, Error, ErrorCode, ServerEvent, Speak, Warning,
    WordEvent,
)

# The model's own rate: audio at any other pipeline rate the daemon cannot make
# is asked for at this rate and resampled on our side.
MODEL_SAMPLE_RATE: Final = 24000

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
    if isinstance(event, Warning):
        return Outcome.NOTE
    return Outcome.IGNORE


def describe(event: ServerEvent) -> str:
    """One line for an error frame or a log about ``event``."""
    if isinstance(event, Cancelled):
        return f"kokorod stopped utterance {event.utterance!r} ({event.reason})"
    if isinstance(event, Error):
        about = f" (utterance {event.utterance!r})" if event.utterance else ""
        return f"kokorod error {event.code}{about}: {event.message}"
    if isinstance(event, Warning):
        return f"kokorod warning {event.code} (utterance {event.utterance!r}): {event.message}"
    return f"kokorod event {type(event).__name__}"
