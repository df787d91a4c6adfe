"""Client -> server messages of protocol v1 as plain frozen dataclasses (what
their fields must be is checked in validation.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Union

from .wire_vocabulary import Admission, Format, Mode, Priority



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
