"""Wire messages of protocol v1 (docs/protocol.md) as plain frozen dataclasses.

This module knows nothing about encodings or validation: `codec.py` turns frames
into these objects (checking every field) and back. Server events carry a
`to_dict()` that yields exactly the wire map, so both encodings share one shape.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final, Literal, Union

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10 has no StrEnum
    from enum import Enum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)


PROTOCOL: Final = "kokorod.v1"

FORMATS: Final = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw", "opus", "mp3")
# Consumers need this to size frames and to check `samples` against `pcm`.
# The compressed formats have no fixed size per sample, so they are not here.
BYTES_PER_SAMPLE: Final = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}
# Ogg Opus pages / MP3 frames, one encoder per utterance (docs/protocol.md, *Compressed audio*).
COMPRESSED_FORMATS: Final = ("opus", "mp3")
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
# The only rate each compressed format carries: Opus encodes 24 kHz natively, and
# MP3 at the model's rate needs no resampling.
FORMAT_SAMPLE_RATES: Final = {"opus": (24000,), "mp3": (24000,)}
MODES: Final = ("interrupt", "queue")
# How a new utterance is admitted when the daemon is at capacity: "stream"
# (real-time: refused with `overloaded`) or "queue" (a request: waits in the
# daemon's FIFO for a slot, up to its --max-queued and --queue-timeout-s).
ADMISSIONS: Final = ("stream", "queue")
# Whose work the engine does first: "live" (someone is listening: the default)
# or "background" (a long job, e.g. a book: runs only on engine time no live
# stream needs, in small chunks, never refused for capacity, never counted in it).
PRIORITIES: Final = ("live", "background")

FRAME_MS_MIN: Final = 10
FRAME_MS_MAX: Final = 1000
SPEED_MIN: Final = 0.5
SPEED_MAX: Final = 2.0
UTTERANCE_ID_MIN_CHARS: Final = 1
UTTERANCE_ID_MAX_CHARS: Final = 128
# A blend of a dozen voices stays far below this; the bound only stops a client
# from making the voice parser chew on a 256 KiB string.
VOICE_MAX_CHARS: Final = 256

DEFAULT_MAX_MESSAGE_BYTES: Final = 262144
# `phonemize`: its id as an utterance id, its text at most this long.
PHONEMIZE_MAX_CHARS: Final = 4000

Format = Literal["pcm_s16le", "pcm_f32le", "mulaw", "alaw", "opus", "mp3"]
Mode = Literal["interrupt", "queue"]
Admission = Literal["stream", "queue"]
Priority = Literal["live", "background"]


def format_rate_problem(fmt: str, sample_rate: int) -> str | None:
    """Why ``fmt`` cannot carry ``sample_rate`` (None: it can)."""
    rates = FORMAT_SAMPLE_RATES.get(fmt)
    if rates is None or sample_rate in rates:
        return None
    return f"format {fmt!r} carries only {' or '.join(map(str, rates))} Hz audio"


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_VOICE = "unknown_voice"
    UNKNOWN_UTTERANCE = "unknown_utterance"
    TEXT_TOO_LONG = "text_too_long"
    MESSAGE_TOO_LARGE = "message_too_large"
    TOO_MANY_UTTERANCES = "too_many_utterances"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    ENGINE_ERROR = "engine_error"
    LANGUAGE_UNAVAILABLE = "language_unavailable"
    NOTHING_TO_SPEAK = "nothing_to_speak"


class WarningCode(StrEnum):
    UNSPEAKABLE = "unspeakable"   # text the voice cannot say (another script, emoji, unknown symbols)
    SKIPPED = "skipped"           # text deliberately not spoken (code blocks)
    MARKUP = "markup"             # inline control not taken as written (a <break/> time clamped or not understood)


class CancelReason(StrEnum):
    CANCEL = "cancel"
    BARGE_IN = "barge_in"
    OVERLOAD = "overload"
    SLOW_CONSUMER = "slow_consumer"
    SHUTDOWN = "shutdown"


# --------------------------------------------------------------------------
# Client -> server


@dataclass(frozen=True, slots=True)
class Speak:
    utterance: str
    text: str
    voice: str | None = None
    speed: float | None = None
    final: bool = False
    mode: Mode | None = None
    lang: str | None = None  # canonical language code (the codec resolves aliases)
    admission: Admission | None = None  # None: "stream"; read when the speak starts an utterance
    priority: Priority | None = None    # None: "live"; read when the speak starts an utterance

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "speak", "utterance": self.utterance, "text": self.text}
        if self.voice is not None:
            d["voice"] = self.voice
        if self.lang is not None:
            d["lang"] = self.lang
        if self.speed is not None:
            d["speed"] = self.speed
        if self.final:
            d["final"] = True
        if self.mode is not None:
            d["mode"] = self.mode
        if self.admission is not None:
            d["admission"] = self.admission
        if self.priority is not None:
            d["priority"] = self.priority
        return d


@dataclass(frozen=True, slots=True)
class Cancel:
    """`utterance=None, all=False` means "whatever is speaking now"."""

    utterance: str | None = None
    all: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "cancel"}
        if self.utterance is not None:
            d["utterance"] = self.utterance
        if self.all:
            d["all"] = True
        return d


@dataclass(frozen=True, slots=True)
class Config:
    """Only the fields that are not None change the session defaults."""

    voice: str | None = None
    speed: float | None = None
    format: Format | None = None
    sample_rate: int | None = None
    frame_ms: int | None = None
    on_new_utterance: Mode | None = None
    lang: str | None = None  # "" resets to "from the voice"
    # The session's pronunciation lexicon, replaced whole ({} clears it). Decoded:
    # a kokorod.text.lexicon.Lexicon; a client may build the message with a plain map.
    lexicon: Any = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "config"}
        for name in _CONFIG_FIELDS:
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        if self.lexicon is not None:
            d["lexicon"] = self.lexicon.to_wire() if hasattr(self.lexicon, "to_wire") else dict(self.lexicon)
        return d


_CONFIG_FIELDS: Final = ("voice", "speed", "format", "sample_rate", "frame_ms", "on_new_utterance", "lang")


@dataclass(frozen=True, slots=True)
class Phonemize:
    """Ask for each word's phonemes and their source; answered by `phonemes`."""

    id: str
    text: str
    lang: str | None = None   # canonical code; default: the session's, else the voice's
    voice: str | None = None  # whose language is the default (default: the session's voice)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "phonemize", "id": self.id, "text": self.text}
        if self.lang is not None:
            d["lang"] = self.lang
        if self.voice is not None:
            d["voice"] = self.voice
        return d


ClientMessage = Union[Speak, Cancel, Config, Phonemize]


# --------------------------------------------------------------------------
# Server -> client


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int
    max_message_bytes: int
    max_utterances: int
    messages_per_s: int
    speed_min: float = SPEED_MIN
    speed_max: float = SPEED_MAX

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_text_chars": self.max_text_chars,
            "max_message_bytes": self.max_message_bytes,
            "max_utterances": self.max_utterances,
            "messages_per_s": self.messages_per_s,
            "speed_min": self.speed_min,
            "speed_max": self.speed_max,
        }


@dataclass(frozen=True, slots=True)
class LanguageInfo:
    code: str
    name: str
    voices: tuple[str, ...]
    available: bool = True
    fix: str | None = None  # what makes an unavailable language available

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "voices": list(self.voices), "available": self.available}
        if self.fix is not None:
            d["fix"] = self.fix
        return d


@dataclass(frozen=True, slots=True)
class CapacityInfo:
    """How much this daemon serves, as measured (``ready.capacity``)."""

    rtf: float | None          # engine seconds per second of audio at 1x; None: not measured
    max_streams: int | None    # 1x streams admitted at once now; None: no bound
    active: int                # streams admitted now (connections speaking or queued)
    workers: int = 1           # engine workers
    utilisation: float | None = None  # planned fraction of each worker; None: measured admission off
    # Requests ("admission": "queue") waiting for a slot now, and the bounds
    # past which one is refused. None: an older daemon, no request queue.
    queued: int | None = None
    max_queued: int | None = None
    queue_timeout_s: float | None = None
    # What max_streams comes from: the conservative RTF admission plans with
    # and the margin over it learnt from late streams (docs/operations.md,
    # *Measured admission*). None: an older daemon.
    admission_rtf: float | None = None
    margin: float | None = None
    # Background requests ("priority": "background") running or waiting now.
    background: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rtf": self.rtf, "max_streams": self.max_streams, "active": self.active,
                             "workers": self.workers, "utilisation": self.utilisation}
        if self.max_queued is not None:
            d.update(queued=self.queued or 0, max_queued=self.max_queued, queue_timeout_s=self.queue_timeout_s)
        for key in ("admission_rtf", "margin", "background"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass(frozen=True, slots=True)
class Ready:
    version: str
    session: str
    encoding: str
    sample_rate: int
    format: str
    frame_ms: int
    voice: str
    speed: float
    voices: tuple[str, ...]
    limits: Limits
    formats: tuple[str, ...] = FORMATS
    sample_rates: tuple[int, ...] = SAMPLE_RATES
    protocol: str = PROTOCOL
    languages: tuple[LanguageInfo, ...] = ()
    lang: str | None = None  # the session's language; None = each voice's own
    capacity: CapacityInfo | None = None  # optional: absent from older daemons

    def to_dict(self) -> dict[str, Any]:
        d = {
            "type": "ready",
            "protocol": self.protocol,
            "version": self.version,
            "session": self.session,
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "format": self.format,
            "frame_ms": self.frame_ms,
            "voice": self.voice,
            "speed": self.speed,
            "voices": list(self.voices),
            "formats": list(self.formats),
            "sample_rates": list(self.sample_rates),
            "limits": self.limits.to_dict(),
            "languages": {info.code: info.to_dict() for info in self.languages},
            "lang": self.lang,
        }
        if self.capacity is not None:
            d["capacity"] = self.capacity.to_dict()
        return d


@dataclass(frozen=True, slots=True)
class Configured:
    voice: str
    speed: float
    format: str
    sample_rate: int
    frame_ms: int
    on_new_utterance: str
    lang: str | None = None
    lexicon: int = 0  # entries in the session's pronunciation lexicon

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "configured",
            "voice": self.voice,
            "speed": self.speed,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "frame_ms": self.frame_ms,
            "on_new_utterance": self.on_new_utterance,
            "lang": self.lang,
            "lexicon": self.lexicon,
        }


@dataclass(frozen=True, slots=True)
class PhonemeWord:
    text: str      # the word as written (as the G2P cut it, after normalisation)
    phonemes: str  # what the model gets for it
    source: str    # session, file, built-in, inline, misaki, espeak

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "phonemes": self.phonemes, "source": self.source}


@dataclass(frozen=True, slots=True)
class Phonemes:
    """The answer to `phonemize`."""

    id: str
    lang: str
    words: tuple[PhonemeWord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "phonemes", "id": self.id, "lang": self.lang, "words": [w.to_dict() for w in self.words]}


@dataclass(frozen=True, slots=True)
class Chunk:
    utterance: str
    index: int
    text: str
    start: float
    end: float
    lang: str | None = None  # the language it was spoken in (with lang "auto": the detected one)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "chunk",
            "utterance": self.utterance,
            "index": self.index,
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }
        if self.lang is not None:
            d["lang"] = self.lang
        return d


@dataclass(frozen=True, slots=True)
class WordEvent:
    utterance: str
    index: int
    text: str
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "word",
            "utterance": self.utterance,
            "index": self.index,
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class Audio:
    """One frame of audio. `pcm` may also be a bytearray/memoryview: the encoders
    read it in place, which saves a copy on the hot path.

    For the compressed formats (`opus`, `mp3`) `pcm` holds the encoder's bytes
    (Ogg pages, MP3 frames), `offset`/`samples` are the timeline samples those
    bytes complete, and `lead` is what a decoder outputs before timeline sample 0
    (None, and absent on the wire, for PCM formats)."""

    utterance: str
    seq: int
    offset: int
    samples: int
    sample_rate: int
    format: str
    pcm: bytes
    lead: int | None = None

    def header(self) -> dict[str, Any]:
        """The wire map without `pcm` (the JSON-mode binary frame header)."""
        return {
            "type": "audio",
            "utterance": self.utterance,
            "seq": self.seq,
            "offset": self.offset,
            "samples": self.samples,
            "sample_rate": self.sample_rate,
            "format": self.format,
            **({} if self.lead is None else {"lead": self.lead}),
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.header()
        d["pcm"] = self.pcm
        return d


@dataclass(frozen=True, slots=True)
class Done:
    utterance: str
    duration: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "done",
            "utterance": self.utterance,
            "duration": self.duration,
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class Cancelled:
    utterance: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "cancelled", "utterance": self.utterance, "reason": str(self.reason)}


@dataclass(frozen=True, slots=True)
class Warning:
    """Something of an utterance's text was not spoken; the utterance goes on."""

    utterance: str
    code: str
    message: str
    text: str  # the written text that was not spoken

    def to_dict(self) -> dict[str, Any]:
        return {"type": "warning", "utterance": self.utterance, "code": str(self.code), "message": self.message,
                "text": self.text}


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    utterance: str | None = None
    id: str | None = None  # the `phonemize` request it answers

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "error", "code": str(self.code), "message": self.message}
        if self.utterance is not None:
            d["utterance"] = self.utterance
        if self.id is not None:
            d["id"] = self.id
        return d


ServerEvent = Union[Ready, Configured, Chunk, WordEvent, Audio, Done, Cancelled, Warning, Error, Phonemes]
