"""Reading Wyoming events with a bound on what one event may make us hold.

The ``wyoming`` package's ``async_read_event`` trusts the header: it
``readexactly``s whatever ``data_length`` and ``payload_length`` announce, so
one line saying 10^12 makes the daemon buffer everything that follows (issue
18). Wyoming has no authentication and is meant for the LAN, so we read
through this instead: the header line is bounded by the stream reader's limit,
and an event announcing more than ``max_event_bytes`` is refused before a byte
of it is read. A bad header raises ``WyomingReadError`` with a reason that
carries no client data (it is logged and sent back).
"""

from __future__ import annotations

import asyncio
import json

from wyoming.event import Event

# The largest text a client may send, in UTF-8 bytes once JSON-escaped: a
# character can take 12 (a surrogate pair as two \uXXXX escapes).
_MAX_ESCAPED_BYTES_PER_CHAR = 12
# Room for what is not the text in a legitimate event (voice, type, lengths).
_EVENT_OVERHEAD_BYTES = 64 * 1024


def max_event_bytes(max_text_chars: int) -> int:
    """The largest event a client has a reason to send to a TTS server: a
    ``synthesize`` of ``--max-text-chars`` characters, however escaped. Audio
    payloads are not sent to a TTS server, so no allowance for them."""
    return max_text_chars * _MAX_ESCAPED_BYTES_PER_CHAR + _EVENT_OVERHEAD_BYTES


class WyomingReadError(Exception):
    """The client's input cannot be an event we accept; ``oversized`` says it announced too much."""

    def __init__(self, reason: str, *, oversized: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.oversized = reason, oversized


def _length(header: dict, key: str) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WyomingReadError(f"malformed event header: {key} is not a length")
    return value


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event, or None at the end of the stream."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit (asyncio.LimitOverrunError is re-raised as this)
        raise WyomingReadError("event header line too long", oversized=True) from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the client closed mid-header: nothing to answer
    try:
        header = json.loads(line)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
        raise WyomingReadError("malformed event header: not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WyomingReadError("malformed event header: no type")
    data_length, payload_length = _length(header, "data_length"), _length(header, "payload_length")
    if len(line) + data_length + payload_length > max_bytes:
        raise WyomingReadError(f"event larger than {max_bytes} bytes (the largest a TTS client sends)", oversized=True)
    data = header.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WyomingReadError("malformed event header: data is not an object")
    if data_length:
        try:
            extra = json.loads(await reader.readexactly(data_length))
        except ValueError:
            raise WyomingReadError("malformed event data: not JSON") from None
        if not isinstance(extra, dict):
            raise WyomingReadError("malformed event data: not an object")
        data.update(extra)
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)
