"""Client messages (maps, or message objects built in-process) -> message
objects for protocol v1, strict.

Every check a client message goes through lives here, so the server can treat a
decoded message as well-formed: a frame's map (codec.py) and an in-process
adapter's message object (``message_from_object``) meet the same validators.
Nothing here raises anything but ``ProtocolError``, whatever the input
(tests/unit/protocol/test_protocol_fuzz.py holds ``decode`` to that). The frames themselves are read in codec.py; the server's
events are read, for clients, in event_parsing.py.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Final, NoReturn

from .messages import (
    ADMISSIONS, PRIORITIES, FORMATS, FRAME_MS_MAX, FRAME_MS_MIN, MODES, PHONEMIZE_MAX_CHARS, SAMPLE_RATES, SPEED_MAX, SPEED_MIN,
    UTTERANCE_ID_MAX_CHARS, UTTERANCE_ID_MIN_CHARS, VOICE_MAX_CHARS,
    Cancel, ClientMessage, Config, Error, ErrorCode, Phonemize, Speak,
)


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
CONTAINER_TYPES: Final = (dict, list)


def show_value(value: Any) -> str:
    # Only scalars are repr'd: repr of a 1000-deep list would raise RecursionError,
    # and a 256 KiB string would make a useless error message.
    if isinstance(value, (str, bytes)):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return "a " + ("map" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__)


def invalid_field(name: str, what: str, value: Any, utt: str | None) -> NoReturn:
    raise ProtocolError(ErrorCode.INVALID_FIELD, f"invalid field '{name}': {what}, got {show_value(value)}", utt)


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
        invalid_field(name, "must be a string", v, utt)
    if choices is not None:
        if v not in choices:
            invalid_field(name, "must be one of " + ", ".join(choices), v, utt)
        return v
    if len(v) < min_len or (max_len is not None and len(v) > max_len):
        limit = f"{min_len}-{max_len}" if max_len is not None else f"at least {min_len}"
        invalid_field(name, f"must be {limit} characters long", v, utt)
    if not _is_valid_unicode(v):
        invalid_field(name, "must be valid Unicode (no lone surrogates)", v, utt)
    return v


def _int(d: dict[str, Any], name: str, utt: str | None, *, lo: int | None = None, hi: int | None = None,
         choices: tuple[int, ...] | None = None) -> int | None:
    v = d.get(name)
    if v is None:
        return None
    if type(v) is not int:  # also rules out bool, which is an int subclass
        invalid_field(name, "must be an integer", v, utt)
    if choices is not None and v not in choices:
        invalid_field(name, "must be one of " + ", ".join(map(str, choices)), v, utt)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        invalid_field(name, f"must be between {lo} and {hi}", v, utt)
    return v


def _float(d: dict[str, Any], name: str, utt: str | None, *, lo: float, hi: float) -> float | None:
    v = d.get(name)
    if v is None:
        return None
    # Range-check before float(): float() of a huge int raises OverflowError.
    if (type(v) is float and not math.isfinite(v)) or type(v) not in (int, float):
        invalid_field(name, "must be a finite number", v, utt)
    if not lo <= v <= hi:
        invalid_field(name, f"must be between {lo} and {hi}", v, utt)
    return float(v)


def _bool(d: dict[str, Any], name: str, utt: str | None) -> bool:
    v = d.get(name)
    if v is None:
        return False
    if type(v) is not bool:
        invalid_field(name, "must be true or false", v, utt)
    return v


def _lang(d: dict[str, Any], utt: str | None, *, allow_reset: bool = False, allow_auto: bool = False) -> str | None:
    """A language code or alias ("es", "pt", "zh-CN"), returned canonical; with
    ``allow_auto`` also "auto" / "auto-keep-voice" (detect it from the text)."""
    from kokorod.errors import InputError
    from kokorod.text.languages import AUTO_MODES, CODES, resolve

    v = _str(d, "lang", utt, max_len=16)
    if v is None or (allow_reset and v == ""):
        return v
    if allow_auto and v.strip().lower() in AUTO_MODES:
        return v.strip().lower()
    try:
        return resolve(v).code
    except InputError:
        invalid_field("lang", "must be one of " + ", ".join(CODES + (AUTO_MODES if allow_auto else ())), v, utt)


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
        invalid_field("all", "cannot be combined with 'utterance'", True, utt)
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
        invalid_field("lexicon", "must be a map of word to phonemes (or language to such a map)", v, None)
    if not _strings_valid(v):
        invalid_field("lexicon", "must be valid Unicode (no lone surrogates)", "a map", None)
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


def check_keys(root: dict[str, Any]) -> None:
    # msgpack's strict_map_key still lets bytes keys through, and an in-process
    # map may hold any key; walk iteratively because the nesting can go as deep
    # as msgpack's own stack allows.
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if type(obj) is dict:
            for k, v in obj.items():
                if type(k) is not str:
                    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"map keys must be strings, got {show_value(k)}")
                if type(v) in CONTAINER_TYPES:
                    stack.append(v)
        else:
            stack.extend(x for x in obj if type(x) in CONTAINER_TYPES)


def too_large(size: int, limit: int) -> ProtocolError:
    return ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds the limit of {limit}")


def _utf8_bytes(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def map_size_bytes(root: dict[str, Any], limit: int) -> int:
    """A lower bound of ``root``'s size as a compact JSON frame: the UTF-8 bytes
    of every string, keys included, one byte for any other value, two per
    container. Never more than its compact JSON frame (which adds quotes and
    escapes), so an in-process message the JSON wire would take is taken too. Stops
    counting once past ``limit``: a map that contains itself ends there too."""
    size = 0
    stack: list[Any] = [root]
    while stack and size <= limit:
        obj = stack.pop()
        size += 2
        items = obj.items() if type(obj) is dict else ((None, v) for v in obj)
        for k, v in items:
            if type(k) is str:
                size += _utf8_bytes(k)
            if type(v) is str:
                size += _utf8_bytes(v)
            elif type(v) in CONTAINER_TYPES or type(v) is tuple:
                stack.append(v)
            else:
                size += 1
    return size


def message_from_object(message: Any, max_message_bytes: int) -> ClientMessage:
    """Validate a message object an in-process adapter built (``Speak(...)``),
    with no JSON round trip: its wire map (``to_dict``, what an encoder sends)
    is bounded by ``max_message_bytes`` as ``map_size_bytes`` counts it and
    checked by the validators a frame's map meets, so a bad field gives the
    error event a WebSocket client would get. Raises only ProtocolError."""
    if not isinstance(message, (Speak, Cancel, Config, Phonemize)):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a client message: {type(message).__name__}")
    try:
        d = message.to_dict()
    except Exception as exc:  # a lexicon that is no map: dict() of it fails
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"message cannot be read: {str(exc)[:120]}") from None
    size = map_size_bytes(d, max_message_bytes)
    if size > max_message_bytes:
        raise too_large(size, max_message_bytes)
    check_keys(d)
    return message_from_map(d)


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
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {show_value(t)}; {expected}", utt)
    return parser(d, utt)

