"""Frames <-> message objects for protocol v1, for both subprotocols.

Every check a client message goes through lives here, so the server can treat a
decoded message as well-formed. `decode` raises nothing but `ProtocolError`,
whatever the input (tests/unit/test_protocol_fuzz.py holds it to that).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from typing import Any, Callable, ClassVar, Final, NoReturn

import msgpack

from .messages import (
    ADMISSIONS, BYTES_PER_SAMPLE, DEFAULT_MAX_MESSAGE_BYTES, FORMATS, FRAME_MS_MAX, FRAME_MS_MIN, MODES,
    PHONEMIZE_MAX_CHARS, PRIORITIES, SAMPLE_RATES, SPEED_MAX, SPEED_MIN, UTTERANCE_ID_MAX_CHARS, UTTERANCE_ID_MIN_CHARS, VOICE_MAX_CHARS,
    Audio, Cancel, Cancelled, CapacityInfo, Chunk, ClientMessage, Config, Configured, Done, Error, ErrorCode, LanguageInfo, Limits,
    PhonemeWord, Phonemes, Phonemize, Ready, ServerEvent, Speak, Warning, WordEvent,
)

Frame = bytes | bytearray | memoryview | str


class ProtocolError(Exception):
    """A frame that breaks the protocol; maps 1:1 onto an `error` event."""

    def __init__(self, code: str, message: str, utterance: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.utterance = utterance

    def to_event(self) -> Error:
        return Error(code=self.code, message=self.message, utterance=self.utterance)

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, utterance={self.utterance!r})"


# --------------------------------------------------------------------------
# Field checks, shared by client messages and (more leniently) server events.

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CONTAINERS: Final = (dict, list)


def _show(value: Any) -> str:
    # Only scalars are repr'd: repr of a 1000-deep list would raise RecursionError,
    # and a 256 KiB string would make a useless error message.
    if isinstance(value, (str, bytes)):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return "a " + ("map" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__)


def _invalid(name: str, what: str, value: Any, utt: str | None) -> NoReturn:
    raise ProtocolError(ErrorCode.INVALID_FIELD, f"invalid field '{name}': {what}, got {_show(value)}", utt)


def _is_valid_unicode(s: str) -> bool:
    # JSON "\ud800" escapes decode to lone surrogates, which cannot be encoded
    # back to UTF-8 and would blow up later when the text is echoed or spoken.
    return s.isascii() or _SURROGATE.search(s) is None


def _str(d: dict[str, Any], name: str, utt: str | None, *, required: bool = False, min_len: int = 0,
         max_len: int | None = None, choices: tuple[str, ...] | None = None) -> str | None:
    v = d.get(name)
    if v is None:
        if required:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"invalid field '{name}': a string is required", utt)
        return None
    if type(v) is not str:
        _invalid(name, "must be a string", v, utt)
    if choices is not None:
        if v not in choices:
            _invalid(name, "must be one of " + ", ".join(choices), v, utt)
        return v
    if len(v) < min_len or (max_len is not None and len(v) > max_len):
        limit = f"{min_len}-{max_len}" if max_len is not None else f"at least {min_len}"
        _invalid(name, f"must be {limit} characters long", v, utt)
    if not _is_valid_unicode(v):
        _invalid(name, "must be valid Unicode (no lone surrogates)", v, utt)
    return v


def _int(d: dict[str, Any], name: str, utt: str | None, *, lo: int | None = None, hi: int | None = None,
         choices: tuple[int, ...] | None = None) -> int | None:
    v = d.get(name)
    if v is None:
        return None
    if type(v) is not int:  # also rules out bool, which is an int subclass
        _invalid(name, "must be an integer", v, utt)
    if choices is not None and v not in choices:
        _invalid(name, "must be one of " + ", ".join(map(str, choices)), v, utt)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        _invalid(name, f"must be between {lo} and {hi}", v, utt)
    return v


def _float(d: dict[str, Any], name: str, utt: str | None, *, lo: float, hi: float) -> float | None:
    v = d.get(name)
    if v is None:
        return None
    # Range-check before float(): float() of a huge int raises OverflowError.
    if (type(v) is float and not math.isfinite(v)) or type(v) not in (int, float):
        _invalid(name, "must be a finite number", v, utt)
    if not lo <= v <= hi:
        _invalid(name, f"must be between {lo} and {hi}", v, utt)
    return float(v)


def _bool(d: dict[str, Any], name: str, utt: str | None) -> bool:
    v = d.get(name)
    if v is None:
        return False
    if type(v) is not bool:
        _invalid(name, "must be true or false", v, utt)
    return v


def _lang(d: dict[str, Any], utt: str | None, *, allow_reset: bool = False, allow_auto: bool = False) -> str | None:
    """A language code or alias ("es", "pt", "zh-CN"), returned canonical; with
    ``allow_auto`` also "auto" / "auto-keep-voice" (detect it from the text)."""
    from kokorod.errors import InputError
    from kokorod.text.detect import AUTO_MODES
    from kokorod.text.languages import CODES, resolve

    v = _str(d, "lang", utt, max_len=16)
    if v is None or (allow_reset and v == ""):
        return v
    if allow_auto and v.strip().lower() in AUTO_MODES:
        return v.strip().lower()
    try:
        return resolve(v).code
    except InputError:
        _invalid("lang", "must be one of " + ", ".join(CODES + (AUTO_MODES if allow_auto else ())), v, utt)


def _peek_utterance(d: dict[str, Any]) -> str | None:
    """The message's utterance id if it is a valid one, to tag errors with it."""
    v = d.get("utterance")
    if type(v) is str and UTTERANCE_ID_MIN_CHARS <= len(v) <= UTTERANCE_ID_MAX_CHARS and _is_valid_unicode(v):
        return v
    return None


# --------------------------------------------------------------------------
# Client messages (dict -> dataclass), strict.

_UTT: Final = {"min_len": UTTERANCE_ID_MIN_CHARS, "max_len": UTTERANCE_ID_MAX_CHARS}


def _speak(d: dict[str, Any], utt: str | None) -> Speak:
    return Speak(
        utterance=_str(d, "utterance", utt, required=True, **_UTT),  # type: ignore[arg-type]
        text=_str(d, "text", utt, required=True),  # type: ignore[arg-type]
        voice=_str(d, "voice", utt, min_len=1, max_len=VOICE_MAX_CHARS),
        speed=_float(d, "speed", utt, lo=SPEED_MIN, hi=SPEED_MAX),
        final=_bool(d, "final", utt),
        mode=_str(d, "mode", utt, choices=MODES),  # type: ignore[arg-type]
        lang=_lang(d, utt, allow_auto=True),
        admission=_str(d, "admission", utt, choices=ADMISSIONS),  # type: ignore[arg-type]
        priority=_str(d, "priority", utt, choices=PRIORITIES),  # type: ignore[arg-type]
    )


def _cancel(d: dict[str, Any], utt: str | None) -> Cancel:
    utterance = _str(d, "utterance", utt, **_UTT)  # type: ignore[arg-type]
    everything = _bool(d, "all", utt)
    if everything and utterance is not None:
        _invalid("all", "cannot be combined with 'utterance'", True, utt)
    return Cancel(utterance=utterance, all=everything)


def _config(d: dict[str, Any], utt: str | None) -> Config:
    config = Config(
        voice=_str(d, "voice", utt, min_len=1, max_len=VOICE_MAX_CHARS),
        speed=_float(d, "speed", utt, lo=SPEED_MIN, hi=SPEED_MAX),
        format=_str(d, "format", utt, choices=FORMATS),  # type: ignore[arg-type]
        sample_rate=_int(d, "sample_rate", utt, choices=SAMPLE_RATES),
        frame_ms=_int(d, "frame_ms", utt, lo=FRAME_MS_MIN, hi=FRAME_MS_MAX),
        on_new_utterance=_str(d, "on_new_utterance", utt, choices=MODES),  # type: ignore[arg-type]
        lang=_lang(d, utt, allow_reset=True, allow_auto=True),
        lexicon=_lexicon(d),
    )
    # Whether format and sample_rate fit together (opus and mp3 carry 24000 only)
    # depends on the session's current settings too: Session checks it
    # (messages.format_rate_problem), so one rule lives in one place.
    return config


def _strings_valid(obj: Any) -> bool:
    """Every string in a (shallow, at most two levels) lexicon map is valid Unicode."""
    stack = [obj]
    while stack:
        o = stack.pop()
        for k, v in o.items():
            if type(k) is str and not _is_valid_unicode(k):
                return False
            if type(v) is str and not _is_valid_unicode(v):
                return False
            if type(v) is dict:
                stack.append(v)
    return True


def _lexicon(d: dict[str, Any]) -> Any:
    """`config.lexicon`: validated entry by entry (kokorod.text.lexicon, the
    same rules as the daemon's file); the error names the bad entry."""
    from kokorod.text.lexicon import SESSION, SESSION_MAX_ENTRIES, LexiconError, parse_lexicon

    v = d.get("lexicon")
    if v is None:
        return None
    if type(v) is not dict:
        _invalid("lexicon", "must be a map of word to phonemes (or language to such a map)", v, None)
    if not _strings_valid(v):
        _invalid("lexicon", "must be valid Unicode (no lone surrogates)", "a map", None)
    try:
        return parse_lexicon(v, source=SESSION, max_entries=SESSION_MAX_ENTRIES)
    except LexiconError as exc:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"invalid field 'lexicon': {exc.message}") from None


def _phonemize(d: dict[str, Any], utt: str | None) -> Phonemize:
    return Phonemize(
        id=_str(d, "id", None, required=True, **_UTT),  # type: ignore[arg-type]
        text=_str(d, "text", None, required=True, max_len=PHONEMIZE_MAX_CHARS),  # type: ignore[arg-type]
        lang=_lang(d, None),
        voice=_str(d, "voice", None, min_len=1, max_len=VOICE_MAX_CHARS),
    )


_CLIENT_PARSERS: Final[dict[str, Callable[[dict[str, Any], str | None], ClientMessage]]] = {
    "speak": _speak, "cancel": _cancel, "config": _config, "phonemize": _phonemize,
}


def message_from_map(d: dict[str, Any]) -> ClientMessage:
    """Validate an already-parsed client message map."""
    t = d.get("type")
    # A config never concerns an utterance, so its errors carry none.
    utt = None if t in ("config", "phonemize") else _peek_utterance(d)
    if t is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "message has no 'type'", utt)
    parser = _CLIENT_PARSERS.get(t) if type(t) is str else None
    if parser is None:
        expected = "expected speak, cancel, config or phonemize"
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {_show(t)}; {expected}", utt)
    return parser(d, utt)


# --------------------------------------------------------------------------
# Server events (dict -> dataclass), for clients: types are checked, ranges are
# not, unknown fields are ignored.

def _need(d: dict[str, Any], name: str, kind: type) -> Any:
    v = d.get(name)
    ok = (
        type(v) in (int, float) if kind is float
        else type(v) is int if kind is int
        else isinstance(v, (bytes, bytearray)) if kind is bytes
        else type(v) is kind
    )
    if not ok:
        _invalid(name, f"must be {kind.__name__}", v, None)
    return float(v) if kind is float else v


def _need_list(d: dict[str, Any], name: str, kind: type) -> tuple[Any, ...]:
    v = _need(d, name, list)
    if not all(type(x) is kind for x in v):
        _invalid(name, f"must be a list of {kind.__name__}", v, None)
    return tuple(v)


_S, _I, _F = str, int, float
_SIMPLE_EVENTS: Final[dict[str, tuple[type, tuple[tuple[str, type], ...]]]] = {
    "configured": (Configured, (("voice", _S), ("speed", _F), ("format", _S), ("sample_rate", _I),
                                ("frame_ms", _I), ("on_new_utterance", _S))),
    "chunk": (Chunk, (("utterance", _S), ("index", _I), ("text", _S), ("start", _F), ("end", _F))),
    "word": (WordEvent, (("utterance", _S), ("index", _I), ("text", _S), ("start", _F), ("end", _F))),
    "done": (Done, (("utterance", _S), ("duration", _F), ("samples", _I))),
    "cancelled": (Cancelled, (("utterance", _S), ("reason", _S))),
    "warning": (Warning, (("utterance", _S), ("code", _S), ("message", _S), ("text", _S))),
}


def _optional_str(d: dict[str, Any], name: str) -> str | None:
    v = d.get(name)
    if v is not None and type(v) is not str:
        _invalid(name, "must be str", v, None)
    return v


def _languages(d: dict[str, Any]) -> tuple[LanguageInfo, ...]:
    raw = d.get("languages") or {}
    if type(raw) is not dict:
        _invalid("languages", "must be a map", raw, None)
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
        _invalid("capacity", "must be a map", raw, None)
    return CapacityInfo(_optional(raw, "rtf", _F), _optional(raw, "max_streams", _I), _need(raw, "active", _I),
                        _optional(raw, "workers", _I) or 1, _optional(raw, "utilisation", _F),
                        _optional(raw, "queued", _I), _optional(raw, "max_queued", _I),
                        _optional(raw, "queue_timeout_s", _F), _optional(raw, "admission_rtf", _F),
                        _optional(raw, "margin", _F), _optional(raw, "background", _I))


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
            _invalid("pcm", f"must hold {ev.samples} {ev.format} samples", f"{len(pcm)} bytes", None)
        return ev
    if t == "error":
        utt = d.get("utterance")
        if utt is not None and type(utt) is not str:
            _invalid("utterance", "must be str", utt, None)
        return Error(code=_need(d, "code", _S), message=_need(d, "message", _S), utterance=utt,
                     id=_optional_str(d, "id"))
    if t == "phonemes":
        raw = _need(d, "words", list)
        words = tuple(PhonemeWord(_need(w, "text", _S), _need(w, "phonemes", _S), _need(w, "source", _S))
                      for w in raw if type(w) is dict)
        return Phonemes(id=_need(d, "id", _S), lang=_need(d, "lang", _S), words=words)
    if t == "ready":
        lim = _need(d, "limits", dict)
        limits = Limits(*(_need(lim, n, k) for n, k in (
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
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown event type {_show(t)}")


# --------------------------------------------------------------------------
# Codecs

def _bad(what: str, exc: BaseException | None = None) -> ProtocolError:
    detail = f": {str(exc)[:120]}" if exc is not None else ""
    return ProtocolError(ErrorCode.BAD_MESSAGE, what + detail)


def _require_map(obj: Any, what: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"a {what} message must be a map, got {_show(obj)}")
    return obj


class Codec:
    """One encoding of protocol v1. Stateless, so one instance can serve many
    connections; `max_message_bytes` bounds what `decode` accepts."""

    encoding: ClassVar[str]
    subprotocol: ClassVar[str]

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        self.max_message_bytes = max_message_bytes

    def _too_large(self, size: int) -> ProtocolError:
        return ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds the limit of {self.max_message_bytes}"
        )

    def decode(self, frame: Frame) -> ClientMessage:
        """Parse and validate one client frame. Raises only ProtocolError."""
        raise NotImplementedError

    def encode(self, event: ServerEvent) -> bytes | str:
        """One server event as one WebSocket frame (bytes: binary, str: text)."""
        raise NotImplementedError

    def encode_message(self, message: ClientMessage) -> bytes | str:
        """Client side: one client message as one frame."""
        raise NotImplementedError

    def decode_event(self, frame: Frame) -> ServerEvent:
        """Client side: one server frame back into its event. Raises only ProtocolError;
        an unknown event type gives code `unknown_type`, which clients should ignore."""
        raise NotImplementedError


# Only maps, strings and numbers are expected, so collections beyond these sizes
# are hostile: msgpack preallocates arrays at their declared length, and nesting
# (up to msgpack's depth limit) would multiply that from a frame of a few KiB.
_MAX_CONTAINER_LEN: Final = 1024


def _unpack(frame: bytes | bytearray | memoryview, max_len: int) -> Any:
    try:
        return msgpack.unpackb(
            frame, raw=False, strict_map_key=True, use_list=True, max_str_len=max_len, max_bin_len=max_len,
            max_array_len=_MAX_CONTAINER_LEN, max_map_len=_MAX_CONTAINER_LEN, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises ValueError subclasses, UnicodeDecodeError, ...
        raise _bad("not valid msgpack", exc) from None


def _check_keys(root: dict[str, Any]) -> None:
    # strict_map_key still lets bytes keys through; walk iteratively because the
    # nesting can go as deep as msgpack's own stack allows.
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if type(obj) is dict:
            for k, v in obj.items():
                if type(k) is not str:
                    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"map keys must be strings, got {_show(k)}")
                if type(v) in _CONTAINERS:
                    stack.append(v)
        else:
            stack.extend(x for x in obj if type(x) in _CONTAINERS)


class MsgpackCodec(Codec):
    encoding = "msgpack"
    subprotocol = "kokorod.v1.msgpack"

    def decode(self, frame: Frame) -> ClientMessage:
        return message_from_map(self._load(frame, self.max_message_bytes, "client"))

    def encode(self, event: ServerEvent) -> bytes:
        return msgpack.packb(event.to_dict(), use_bin_type=True)  # type: ignore[no-any-return]

    def encode_message(self, message: ClientMessage) -> bytes:
        return msgpack.packb(message.to_dict(), use_bin_type=True)  # type: ignore[no-any-return]

    def decode_event(self, frame: Frame) -> ServerEvent:
        return event_from_map(self._load(frame, None, "server"))

    def _load(self, frame: Frame, limit: int | None, side: str) -> dict[str, Any]:
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "kokorod.v1.msgpack expects binary frames")
        size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
        if limit is not None and size > limit:
            raise self._too_large(size)
        d = _require_map(_unpack(frame, size), side)
        _check_keys(d)
        return d


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(digits: str) -> int:
    # No field needs more than 64 bits; this keeps int() off quadratic inputs
    # even if the interpreter's int_max_str_digits guard has been lifted.
    if len(digits) > 24:
        raise ValueError("integer too long")
    return int(digits)


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:
        raise _bad("not valid JSON", exc) from None


def _dumps(obj: dict[str, Any]) -> str:
    # ASCII output: nothing can fail later when websockets encodes the frame.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


_PADDING: Final = (b"", b"   ", b"  ", b" ")  # indexed by (4 + len(header)) % 4
_U32: Final = struct.Struct("<I")


class JsonCodec(Codec):
    encoding = "json"
    subprotocol = "kokorod.v1.json"

    def decode(self, frame: Frame) -> ClientMessage:
        if not isinstance(frame, str):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "kokorod.v1.json expects text frames")
        n = len(frame)
        if n > self.max_message_bytes:
            raise self._too_large(n)
        # UTF-8 takes 1-4 bytes per code point: only encode when the count matters.
        if 4 * n > self.max_message_bytes and not frame.isascii():
            size = len(frame.encode("utf-8", "surrogatepass"))
            if size > self.max_message_bytes:
                raise self._too_large(size)
        return message_from_map(_require_map(_loads(frame), "client"))

    def encode(self, event: ServerEvent) -> bytes | str:
        if type(event) is Audio:
            return self.encode_audio(event)
        return _dumps(event.to_dict())

    def encode_audio(self, event: Audio) -> bytes:
        """The binary audio frame: u32 LE header length, padded JSON header, PCM."""
        head = _dumps(event.header()).encode("ascii")
        pad = _PADDING[(4 + len(head)) % 4]
        return b"".join((_U32.pack(len(head) + len(pad)), head, pad, event.pcm))

    def encode_message(self, message: ClientMessage) -> str:
        return _dumps(message.to_dict())

    def decode_event(self, frame: Frame) -> ServerEvent:
        if isinstance(frame, str):
            return event_from_map(_require_map(_loads(frame), "server"))
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "not a WebSocket frame")
        buf = bytes(frame)
        if len(buf) < 4:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "binary frame shorter than its header length")
        (h,) = _U32.unpack_from(buf)
        if h > len(buf) - 4:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"header length {h} exceeds the frame")
        try:
            text = buf[4:4 + h].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad("audio header is not UTF-8", exc) from None
        d = _require_map(_loads(text), "server")
        if d.get("type") != "audio":
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "binary frames in kokorod.v1.json carry only audio")
        return event_from_map(d, pcm=buf[4 + h:])


SUBPROTOCOLS: Final[dict[str, type[Codec]]] = {
    MsgpackCodec.subprotocol: MsgpackCodec,
    JsonCodec.subprotocol: JsonCodec,
}


def codec_for_subprotocol(name: str | None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Codec:
    """The codec for a negotiated subprotocol; None (nothing offered) is msgpack."""
    if name is None:
        return MsgpackCodec(max_message_bytes)
    cls = SUBPROTOCOLS.get(name)
    if cls is None:
        raise ValueError(f"unsupported subprotocol {name!r}; supported: {', '.join(SUBPROTOCOLS)}")
    return cls(max_message_bytes)
