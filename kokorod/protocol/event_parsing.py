"""Server events (maps) -> event objects, for clients: types are checked,
ranges are not, unknown fields are ignored (a newer daemon may add some)."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from .messages import (
    BYTES_PER_SAMPLE, Audio, Cancelled, CapacityInfo, Chunk, Configured, Done, Error, ErrorCode, LanguageInfo, ClientLimits,
    PhonemeWord, Phonemes, Ready, ServerEvent, WarningEvent, WordEvent,
)
from .validation import ProtocolError, invalid_field, show_value


def _need(d: dict[str, Any], name: str, kind: type) -> Any:
    v = d.get(name)
    ok = (
        type(v) in (int, float) if kind is float
        else type(v) is int if kind is int
        else isinstance(v, (bytes, bytearray)) if kind is bytes
        else type(v) is kind
    )
    if not ok:
        invalid_field(name, f"must be {kind.__name__}", v, None)
    return float(v) if kind is float else v


def _need_list(d: dict[str, Any], name: str, kind: type) -> tuple[Any, ...]:
    v = _need(d, name, list)
    if not all(type(x) is kind for x in v):
        invalid_field(name, f"must be a list of {kind.__name__}", v, None)
    return tuple(v)


_S, _I, _F = str, int, float
_SIMPLE_EVENTS: Final[dict[str, tuple[type, tuple[tuple[str, type], ...]]]] = {
    "configured": (Configured, (("voice", _S), ("speed", _F), ("format", _S), ("sample_rate", _I),
                                ("frame_ms", _I), ("on_new_utterance", _S))),
    "chunk": (Chunk, (("utterance", _S), ("index", _I), ("text", _S), ("start", _F), ("end", _F))),
    "word": (WordEvent, (("utterance", _S), ("index", _I), ("text", _S), ("start", _F), ("end", _F))),
    "done": (Done, (("utterance", _S), ("duration", _F), ("samples", _I))),
    "cancelled": (Cancelled, (("utterance", _S), ("reason", _S))),
    "warning": (WarningEvent, (("utterance", _S), ("code", _S), ("message", _S), ("text", _S))),
}


def _optional_str(d: dict[str, Any], name: str) -> str | None:
    v = d.get(name)
    if v is not None and type(v) is not str:
        invalid_field(name, "must be str", v, None)
    return v


def _languages(d: dict[str, Any]) -> tuple[LanguageInfo, ...]:
    raw = d.get("languages") or {}
    if type(raw) is not dict:
        invalid_field("languages", "must be a map", raw, None)
    return tuple(
        LanguageInfo(code, _need(info, "name", _S), _need_list(info, "voices", _S), bool(info.get("available", True)),
                     _optional_str(info, "fix"))
        for code, info in raw.items() if type(info) is dict
    )


def _optional(d: dict[str, Any], name: str, kind: type) -> Any:
    return None if d.get(name) is None else _need(d, name, kind)


def _capacity(d: dict[str, Any]) -> CapacityInfo | None:
    raw = d.get("capacity")
    if raw is None:
        return None
    if type(raw) is not dict:
        invalid_field("capacity", "must be a map", raw, None)
    return CapacityInfo(_optional(raw, "rtf", _F), _optional(raw, "max_streams", _I), _need(raw, "active", _I),
                        _optional(raw, "workers", _I) or 1, _optional(raw, "utilisation", _F),
                        _optional(raw, "queued", _I), _optional(raw, "max_queued", _I),
                        _optional(raw, "queue_timeout_s", _F), _optional(raw, "admission_rtf", _F),
                        _optional(raw, "margin", _F), _optional(raw, "background", _I), _optional_str(raw, "engine"))


def event_from_map(d: dict[str, Any], pcm: bytes | None = None) -> ServerEvent:
    """Build a server event from its wire map; `pcm` comes from outside the map
    in JSON mode's binary frames."""
    t = d.get("type")
    if type(t) is not str:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "event has no string 'type'")
    simple = _SIMPLE_EVENTS.get(t)
    if simple is not None:
        cls, fields = simple
        event = cls(*(_need(d, name, kind) for name, kind in fields))
        if cls is Chunk:  # its optional field (servers before lang "auto" do not send it)
            event = dataclasses.replace(event, lang=_optional_str(d, "lang"))
        if cls is Configured:  # its optional fields
            event = dataclasses.replace(event, lang=_optional_str(d, "lang"), lexicon=_optional(d, "lexicon", _I) or 0)
        return event  # type: ignore[no-any-return]
    if t == "audio":
        if pcm is None:
            pcm = bytes(_need(d, "pcm", bytes))
        ev = Audio(*(_need(d, n, k) for n, k in (("utterance", _S), ("seq", _I), ("offset", _I),
                                                  ("samples", _I), ("sample_rate", _I), ("format", _S))), pcm=pcm,
                   lead=_optional(d, "lead", _I))
        width = BYTES_PER_SAMPLE.get(ev.format)
        if width is not None and len(pcm) != ev.samples * width:
            invalid_field("pcm", f"must hold {ev.samples} {ev.format} samples", f"{len(pcm)} bytes", None)
        return ev
    if t == "error":
        utt = d.get("utterance")
        if utt is not None and type(utt) is not str:
            invalid_field("utterance", "must be str", utt, None)
        return Error(code=_need(d, "code", _S), message=_need(d, "message", _S), utterance=utt,
                     id=_optional_str(d, "id"))
    if t == "phonemes":
        raw = _need(d, "words", list)
        words = tuple(PhonemeWord(_need(w, "text", _S), _need(w, "phonemes", _S), _need(w, "source", _S))
                      for w in raw if type(w) is dict)
        return Phonemes(id=_need(d, "id", _S), lang=_need(d, "lang", _S), words=words)
    if t == "ready":
        lim = _need(d, "limits", dict)
        limits = ClientLimits(*(_need(lim, n, k) for n, k in (
            ("max_text_chars", _I), ("max_message_bytes", _I), ("max_utterances", _I),
            ("messages_per_s", _I), ("speed_min", _F), ("speed_max", _F))))
        return Ready(
            protocol=_need(d, "protocol", _S), version=_need(d, "version", _S),
            session=_need(d, "session", _S), encoding=_need(d, "encoding", _S),
            sample_rate=_need(d, "sample_rate", _I), format=_need(d, "format", _S),
            frame_ms=_need(d, "frame_ms", _I), voice=_need(d, "voice", _S), speed=_need(d, "speed", _F),
            voices=_need_list(d, "voices", _S), formats=_need_list(d, "formats", _S),
            sample_rates=_need_list(d, "sample_rates", _I), limits=limits,
            languages=_languages(d), lang=_optional_str(d, "lang"), capacity=_capacity(d),
        )
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown event type {show_value(t)}")


