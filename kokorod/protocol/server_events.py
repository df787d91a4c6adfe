"""Server -> client events of protocol v1 as plain frozen dataclasses. Each has
a `to_dict()` that yields exactly the wire map, so both encodings share one
shape (event_parsing.py reads them back, for clients)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .wire_vocabulary import FORMATS, PROTOCOL, SAMPLE_RATES, SPEED_MAX, SPEED_MIN



@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What a client must keep to, announced in `ready` (the daemon's own,
    fuller settings are kokorod.config.ServerLimits)."""

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
    # The engine synthesizing (--engine, or what auto chose here: onnx, onnx-fp32,
    # openvino-split, torch). None: an older daemon.
    engine: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rtf": self.rtf, "max_streams": self.max_streams, "active": self.active,
                             "workers": self.workers, "utilisation": self.utilisation}
        if self.max_queued is not None:
            d.update(queued=self.queued or 0, max_queued=self.max_queued, queue_timeout_s=self.queue_timeout_s)
        for key in ("admission_rtf", "margin", "background", "engine"):
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
    limits: ClientLimits
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
class WarningEvent:
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


ServerEvent = Union[Ready, Configured, Chunk, WordEvent, Audio, Done, Cancelled, WarningEvent, Error, Phonemes]

# The names these classes had, for code written before: ``Warning`` shadowed the
# builtin, and two classes were named ``Limits`` (the other is kokorod.config's).
Warning = WarningEvent  # noqa: A001
Limits = ClientLimits
