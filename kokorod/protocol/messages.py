"""Wire messages of protocol v1 (docs/protocol.md) as plain frozen dataclasses,
gathered from where they are defined: the protocol's bounds, formats and codes
(wire_vocabulary.py), what a client sends (client_messages.py) and what the
daemon sends (server_events.py).

Nothing here knows about encodings or validation: `codec.py` turns frames into
these objects (validation.py checks every field of a client message) and back.
"""

from __future__ import annotations

from .wire_vocabulary import (  # noqa: F401
    ADMISSIONS, BYTES_PER_SAMPLE, COMPRESSED_FORMATS, DEFAULT_MAX_MESSAGE_BYTES, FORMATS, FORMAT_SAMPLE_RATES,
    FRAME_MS_MAX, FRAME_MS_MIN, MODES, PHONEMIZE_MAX_CHARS, PRIORITIES, PROTOCOL, SAMPLE_RATE, SAMPLE_RATES, SPEED_MAX,
    SPEED_MIN, UTTERANCE_ID_MAX_CHARS, UTTERANCE_ID_MIN_CHARS, VOICE_MAX_CHARS, Admission, CancelReason, ErrorCode,
    Format, Mode, Priority, StrEnum, WarningCode, format_rate_problem,
)
from .client_messages import (  # noqa: F401
    Cancel, ClientMessage, Config, Phonemize, Speak,
)
from .server_events import (  # noqa: F401
    Audio, Cancelled, CapacityInfo, Chunk, ClientLimits, Configured, Done, Error, LanguageInfo, Limits, PhonemeWord,
    Phonemes, Ready, ServerEvent, Warning, WarningEvent, WordEvent,
)
