"""The OpenAI speech API's request and error shapes, mapped onto kokorod's.

Pure (no I/O): validation of ``POST /v1/audio/speech`` bodies, OpenAI's voice
names, speed clamping, the split of long input into protocol-sized
fragments, and the mapping of kokorod's error codes to HTTP statuses in
OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``.
See docs/openai.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final

from kokorod.text.detect import AUTO_MODES
from kokorod.audio.encode import ENCODE_FORMATS
from kokorod.errors import InputError
from kokorod.protocol.messages import SPEED_MAX, SPEED_MIN, VOICE_MAX_CHARS, ErrorCode
from kokorod.text import languages

MODELS: Final = ("kokoro", "tts-1", "tts-1-hd")
STREAM_FORMATS: Final = ("audio", "sse")
OPENAI_SPEED_MIN: Final = 0.25
OPENAI_SPEED_MAX: Final = 4.0
DEFAULT_FORMAT: Final = "mp3"

# OpenAI's built-in voices → Kokoro voices, by gender and character (docs/openai.md).
# Kokoro ships namesakes for alloy, echo, fable, nova and onyx.
OPENAI_VOICES: Final[dict[str, str]] = {
    "alloy": "af_alloy",     # neutral, even (Kokoro's own alloy)
    "ash": "am_michael",     # male, clear and steady
    "ballad": "bm_george",   # male, warm, British
    "coral": "af_heart",     # female, warm and friendly (Kokoro's best-graded voice)
    "echo": "am_echo",       # male (Kokoro's own echo)
    "fable": "bm_fable",     # British male storyteller (Kokoro's own fable)
    "nova": "af_nova",       # female, bright (Kokoro's own nova)
    "onyx": "am_onyx",       # male, deep (Kokoro's own onyx)
    "sage": "af_sarah",      # female, calm and measured
    "shimmer": "af_bella",   # female, bright and expressive
    "verse": "am_puck",      # male, lively and versatile
    "marin": "af_kore",      # female, natural
    "cedar": "am_fenrir",    # male, natural and grounded
}

# Each Speak message must stay under the session's max_message_bytes once the
# JSON codec has encoded it (ASCII-escaped: at most 12 bytes per character,
# for a character outside the BMP); the rest is room for the other fields.
_JSON_BYTES_PER_CHAR_MAX: Final = 12
_MESSAGE_OVERHEAD_BYTES: Final = 2048 + 6 * VOICE_MAX_CHARS


class ApiError(Exception):
    """An HTTP error answer in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, type: str | None = None, param: str | None = None,
                 code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _default_type(status)
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> bytes:
        return json.dumps({"error": {"message": self.message, "type": self.type, "param": self.param,
                                     "code": self.code}}).encode()

    def headers(self) -> list[tuple[str, str]]:
        out = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if self.retry_after is not None:
            out.append(("Retry-After", str(self.retry_after)))
        if self.status == 401:
            out.append(("WWW-Authenticate", "Bearer"))
        return out


def _default_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    return "invalid_request_error"


@dataclass(frozen=True)
class SpeechRequest:
    model: str
    input: str
    voice: str                     # a Kokoro voice or blend
    voice_requested: str           # as the client named it
    speed: float | None            # None: the session default (1.0); else within Kokoro's range
    speed_requested: float | None
    response_format: str = DEFAULT_FORMAT
    stream_format: str = "audio"
    timestamps: bool = False
    lang: str | None = None        # kokorod extension: the text's language
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def speed_clamped(self) -> bool:
        return self.speed_requested is not None and self.speed != self.speed_requested


def resolve_voice(name: str) -> str:
    """An OpenAI voice name (any case) → its Kokoro voice; anything else is
    taken as a Kokoro voice or blend and checked by the session."""
    return OPENAI_VOICES.get(name.strip().lower(), name.strip())


def clamp_speed(speed: float) -> float:
    return min(SPEED_MAX, max(SPEED_MIN, speed))


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"missing required parameter: '{name}'", param=name, code="missing_required_parameter")
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "a string", bool: "a boolean"}.get(kind, "a number") if isinstance(kind, type) else "a number"
        raise ApiError(400, f"invalid type for '{name}': expected {expected}", param=name, code="invalid_type")
    return value


def parse_speech_request(raw: bytes, *, max_text_chars: int) -> SpeechRequest:
    """Validate a ``POST /v1/audio/speech`` body; ApiError when it is wrong.

    Checked here so the status is known before any audio: model, input (never
    silently truncated: over ``max_text_chars`` is 413), voice (OpenAI names
    mapped, a ``{"id": ...}`` object accepted), speed (OpenAI's 0.25-4.0,
    clamped to Kokoro's range), response_format, stream_format, timestamps.
    ``instructions`` is accepted and ignored; unknown fields are ignored.
    """
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)",
                       code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    model = _field(body, "model", str, required=True)
    if model not in MODELS:
        raise ApiError(400, f"unknown model {model[:64]!r}; use one of: {', '.join(MODELS)}", param="model",
                       code="model_not_found")
    text = _field(body, "input", str, required=True)
    if not text.strip():
        raise ApiError(400, "'input' is empty", param="input", code="nothing_to_speak")
    if len(text) > max_text_chars:
        raise ApiError(413, f"'input' has {len(text)} characters; this daemon takes at most {max_text_chars}",
                       param="input", code=str(ErrorCode.TEXT_TOO_LONG))
    voice_field = body.get("voice")
    if isinstance(voice_field, dict):  # OpenAI's custom voice reference {"id": "..."}
        voice_field = voice_field.get("id")
        if not isinstance(voice_field, str):
            raise ApiError(400, "'voice.id' must be a string", param="voice", code="invalid_type")
        body = {**body, "voice": voice_field}
    requested = _field(body, "voice", str, required=True)
    if not requested.strip() or len(requested) > VOICE_MAX_CHARS:
        raise ApiError(400, f"'voice' must be 1-{VOICE_MAX_CHARS} characters", param="voice", code="invalid_value")
    speed_in = _field(body, "speed", (int, float))
    speed: float | None = None
    if speed_in is not None:
        speed_in = float(speed_in)
        if not math.isfinite(speed_in) or not OPENAI_SPEED_MIN <= speed_in <= OPENAI_SPEED_MAX:
            raise ApiError(400, f"'speed' must be between {OPENAI_SPEED_MIN} and {OPENAI_SPEED_MAX}", param="speed",
                           code="invalid_value")
        speed = clamp_speed(speed_in)
    fmt = _field(body, "response_format", str) or DEFAULT_FORMAT
    if fmt not in ENCODE_FORMATS:
        raise ApiError(400, f"unknown response_format {fmt[:32]!r}; use one of: {', '.join(ENCODE_FORMATS)}",
                       param="response_format", code="invalid_value")
    stream_format = _field(body, "stream_format", str) or "audio"
    if stream_format not in STREAM_FORMATS:
        raise ApiError(400, f"unknown stream_format {stream_format[:32]!r}; use one of: {', '.join(STREAM_FORMATS)}",
                       param="stream_format", code="invalid_value")
    timestamps = bool(_field(body, "timestamps", bool))
    if timestamps and stream_format != "sse":
        raise ApiError(400, "'timestamps' needs \"stream_format\": \"sse\" (word events travel as SSE events)",
                       param="timestamps", code="invalid_value")
    _field(body, "instructions", str)  # accepted, ignored: Kokoro takes no style prompt
    lang = _field(body, "lang", str)
    if lang is not None and lang.strip().lower() in AUTO_MODES:
        lang = lang.strip().lower()
    elif lang is not None:
        try:
            lang = languages.resolve(lang).code
        except InputError as exc:
            raise ApiError(400, f"{exc.message}; {exc.fix}" if exc.fix else exc.message, param="lang",
                           code="invalid_value") from None
    return SpeechRequest(model, text, resolve_voice(requested), requested, speed, speed_in, fmt, stream_format,
                         timestamps, lang)


def split_input(text: str, max_message_bytes: int) -> list[str]:
    """``text`` in fragments whose ``speak`` messages each fit the session's
    ``max_message_bytes`` (the segmenter joins fragments verbatim, so a cut
    may fall anywhere)."""
    step = max(1, (max_message_bytes - _MESSAGE_OVERHEAD_BYTES) // _JSON_BYTES_PER_CHAR_MAX)
    return [text[i:i + step] for i in range(0, len(text), step)] or [""]


def max_body_bytes(max_text_chars: int) -> int:
    """Largest request body taken: the longest input in its worst real
    encoding, plus room for the other fields. ``input`` is counted in
    characters (code points) once decoded; JSON may escape one as ``\\uXXXX``
    (6 bytes), and one outside the BMP (an emoji) as a surrogate pair,
    ``\\uD83D\\uDE00``: 12 bytes. Sized from 6 bytes, 60,000 emoji (under a
    100,000-character limit) were refused with 413 (issue 18)."""
    return max_text_chars * 12 + 64 * 1024


# kokorod error code → (HTTP status, OpenAI param, Retry-After)
_ERRORS: Final[dict[str, tuple[int, str | None, int | None]]] = {
    ErrorCode.UNKNOWN_VOICE: (400, "voice", None),
    ErrorCode.INVALID_FIELD: (400, None, None),
    ErrorCode.LANGUAGE_UNAVAILABLE: (400, "voice", None),
    ErrorCode.NOTHING_TO_SPEAK: (400, "input", None),
    ErrorCode.TEXT_TOO_LONG: (413, "input", None),
    ErrorCode.MESSAGE_TOO_LARGE: (413, "input", None),
    ErrorCode.RATE_LIMITED: (429, None, 1),
    ErrorCode.TOO_MANY_UTTERANCES: (429, None, 1),
    ErrorCode.OVERLOADED: (503, None, 1),
    ErrorCode.ENGINE_ERROR: (500, None, None),
}


def error_for(code: str, message: str) -> ApiError:
    """The HTTP answer for a session ``error`` event that came before any audio."""
    status, param, retry = _ERRORS.get(code, (500, None, None))
    return ApiError(status, message, param=param, code=str(code), retry_after=retry)
