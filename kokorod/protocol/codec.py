"""Frames <-> message objects for protocol v1, for both subprotocols (msgpack
and JSON): the framing, the size and shape bounds a frame must meet before it
is read, and the audio frame layout. What the fields of a client message must
be is checked in validation.py; a server event's fields, for clients, in
event_parsing.py. ``decode`` raises nothing but ``ProtocolError``, whatever the
input (tests/unit/protocol/test_protocol_fuzz.py holds it to that).
"""

from __future__ import annotations

import json
import struct
from typing import Any, ClassVar, Final, NoReturn

import msgpack

from .event_parsing import event_from_map
from .messages import DEFAULT_MAX_MESSAGE_BYTES, Audio, ClientMessage, ErrorCode, ServerEvent
from .validation import ProtocolError, check_keys, message_from_map, message_from_object, show_value, too_large

__all__ = [
    "SUBPROTOCOLS", "Codec", "Frame", "JsonCodec", "MsgpackCodec", "ProtocolError", "codec_for_subprotocol",
    "event_from_map", "message_from_map", "message_from_object",
]

Frame = bytes | bytearray | memoryview | str


def _bad(what: str, exc: BaseException | None = None) -> ProtocolError:
    detail = f": {str(exc)[:120]}" if exc is not None else ""
    return ProtocolError(ErrorCode.BAD_MESSAGE, what + detail)


def _require_map(obj: Any, what: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"a {what} message must be a map, got {show_value(obj)}")
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
        return too_large(size, self.max_message_bytes)

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
        check_keys(d)
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

