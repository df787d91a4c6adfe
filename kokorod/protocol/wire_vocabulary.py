"""The words of protocol v1 (docs/protocol.md): its bounds, formats, modes and
codes. The messages made of them are in client_messages.py and
server_events.py; messages.py gathers all three for importers.
"""

from __future__ import annotations

import sys
from typing import Final, Literal

# Facts of the model and of the sample formats, defined once below the protocol
# (re-exported: the protocol's users import them from it).
from kokorod.audio.formats import BYTES_PER_SAMPLE  # noqa: F401
from kokorod.model_facts import SAMPLE_RATE, SPEED_MAX, SPEED_MIN  # noqa: F401

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10 has no StrEnum
    from enum import Enum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)


PROTOCOL: Final = "kokorod.v1"

FORMATS: Final = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw", "opus", "mp3")
# Ogg Opus pages / MP3 frames, one encoder per utterance (docs/protocol.md, *Compressed audio*).
COMPRESSED_FORMATS: Final = ("opus", "mp3")
SAMPLE_RATES: Final = (8000, 16000, 22050, SAMPLE_RATE, 44100, 48000)
# The only rate each compressed format carries: Opus encodes 24 kHz natively, and
# MP3 at the model's rate needs no resampling.
FORMAT_SAMPLE_RATES: Final = {"opus": (SAMPLE_RATE,), "mp3": (SAMPLE_RATE,)}
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
