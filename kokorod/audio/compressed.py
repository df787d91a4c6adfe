"""Compressed audio frames on the wire (``opus``, ``mp3``), sans I/O.

One :class:`FrameEncoder` per utterance wraps one streaming encoder from
:mod:`kokorod.audio.encode` and turns its byte output into protocol ``audio``
frames, each with an exact place on the utterance timeline (docs/protocol.md,
*Compressed audio*):

- ``offset`` is the timeline index (24 kHz) of the first sample the frame's
  bytes complete, and ``samples`` how many they complete: appended to every
  earlier frame of the utterance, the frame's bytes let a decoder reconstruct
  timeline samples ``[0, offset + samples)`` and no more. Both come from the
  encoder's ``samples_out`` bookkeeping (Ogg granule positions for Opus, packet
  pts + duration for MP3), so frames are contiguous and their ``samples`` add up
  to ``done.samples``, the number of samples synthesized, exactly as in PCM.
- ``lead`` is what a decoder outputs before timeline sample 0: 0 for Ogg Opus
  (the OpusHead pre-skip, which decoders drop), 1105 for MP3 (LAME's delay; a
  bare MP3 stream cannot signal it, so the client drops it).

Bytes the encoder returns without completing a new sample (MP3's first packet
is all priming) are carried into the next frame instead of going out as a
frame of 0 samples. Only the last frame of an utterance (the encoder's flush)
may have 0 ``samples``, when what it completes was already counted.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Final

import numpy as np

from kokorod.audio.encode import StreamEncoder, open_encoder
from kokorod.audio.formats import COMPRESSED_FORMATS, COMPRESSED_SAMPLE_RATE, float_to_int16
from kokorod.model_facts import FloatAudio

# What the protocol's format names mean to kokorod.audio.encode (the same names).
_ENCODER_FORMAT: Final = {fmt: fmt for fmt in COMPRESSED_FORMATS}


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    offset: int   # timeline sample (input rate) of the first sample these bytes complete
    samples: int  # timeline samples these bytes complete
    data: bytes


class FrameEncoder:
    """Float audio at 24 kHz in, :class:`EncodedFrame` s out, for one utterance.

    The encoder is opened on the first :meth:`encode` (an utterance that makes no
    sound never opens one), finished by :meth:`finish` and thrown away by
    :meth:`discard` (cancel): after either, nothing more comes out of it.

    Encoding costs ~10-20 ms of CPU per second of audio, so the session runs
    :meth:`encode`/:meth:`finish` on a worker thread (kokorod/daemon/utterance.py), one
    call at a time. :meth:`discard` may come from the event loop meanwhile: it
    never waits for that call, which frees the encoder itself when it returns.
    """

    def __init__(self, fmt: str, sample_rate: int = COMPRESSED_SAMPLE_RATE, bitrate: int | None = None) -> None:
        if fmt not in _ENCODER_FORMAT:
            raise ValueError(f"not a compressed wire format: {fmt!r}; expected one of {COMPRESSED_FORMATS}")
        if sample_rate != COMPRESSED_SAMPLE_RATE:
            raise ValueError(f"{fmt} frames are {COMPRESSED_SAMPLE_RATE} Hz, got {sample_rate}")
        self.fmt = fmt
        self.sample_rate = sample_rate
        self._bitrate = bitrate
        self._encoder: StreamEncoder | None = None
        self._carry = bytearray()   # bytes returned that completed no new sample yet
        self.sent = 0               # samples completed by frames returned so far
        self.bytes_out = 0          # bytes in frames returned so far
        self.closed = False
        self._lock = threading.Lock()  # guards closed/_busy, never held while encoding
        self._busy = False

    @property
    def encoder(self) -> StreamEncoder:
        if self._encoder is None:
            self._encoder = open_encoder(_ENCODER_FORMAT[self.fmt], self.sample_rate, self._bitrate)
        return self._encoder

    @property
    def lead(self) -> int:
        """Samples a decoder outputs before timeline sample 0 (at ``sample_rate``)."""
        return self.encoder.lead_samples

    @property
    def samples_in(self) -> int:
        return 0 if self._encoder is None else self._encoder.samples_in

    def encode(self, audio: FloatAudio) -> EncodedFrame | None:
        """Feed audio; a frame if the bytes now ready complete new samples.
        None as well once discarded (the caller's utterance has ended)."""
        if not self._enter():
            return None
        try:
            encoder = self.encoder
            self._carry += encoder.encode(float_to_int16(audio))
            frame = self._frame(encoder.samples_out) if encoder.samples_out > self.sent else None
        finally:
            discarded = self._leave()
        return None if discarded else frame

    def finish(self) -> EncodedFrame | None:
        """Flush the encoder: the last frame (None if it would be empty, or if
        already finished or discarded)."""
        if not self._enter():
            return None
        try:
            encoder = self.encoder  # a stream of no audio is still a valid (header-only) stream
            self._carry += encoder.flush()
            frame = self._frame(encoder.samples_out) if self._carry or encoder.samples_out > self.sent else None
        finally:
            with self._lock:
                discarded = self.closed
                self.closed = True
                self._busy = False
        return None if discarded else frame

    def discard(self) -> None:
        """Cancelled: free the encoder, nothing more goes out. Safe to call from
        another thread while :meth:`encode` runs (that call then frees it)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._busy:
                return
        self._free()

    def _enter(self) -> bool:
        with self._lock:
            if self.closed:
                return False
            if self._busy:
                raise RuntimeError("FrameEncoder calls must not overlap")
            self._busy = True
            return True

    def _leave(self) -> bool:
        """End of an encode call; True if discarded meanwhile (then freed here)."""
        with self._lock:
            self._busy = False
            discarded = self.closed
        if discarded:
            self._free()
        return discarded

    def _free(self) -> None:
        self._carry.clear()
        if self._encoder is not None and not self._encoder.closed:
            try:
                self._encoder.flush()  # the only way to close its container; output dropped
            except Exception:  # pragma: no cover - best effort on the way out
                pass

    def _frame(self, samples_out: int) -> EncodedFrame:
        frame = EncodedFrame(self.sent, samples_out - self.sent, bytes(self._carry))
        self._carry.clear()
        self.sent = samples_out
        self.bytes_out += len(frame.data)
        return frame


def decode_stream(data: bytes, fmt: str, *, lead: int = 0, samples: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an utterance's concatenated frames with PyAV (FFmpeg), for tests and
    tools: (mono float32 on the utterance timeline, decoder output rate).

    ``lead`` decoder samples (at 24 kHz, scaled to the output rate) are dropped
    from the start and the result is cut at ``samples`` (24 kHz) when given, so
    index ``i`` of the result is timeline sample ``i * rate / 24000``. Ogg Opus
    decodes at 48 kHz in FFmpeg (pre-skip and end trimming already applied).
    """
    import av

    pieces: list[np.ndarray] = []
    rate = COMPRESSED_SAMPLE_RATE
    with av.open(io.BytesIO(data), format={"opus": "ogg", "mp3": "mp3"}.get(fmt)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            rate = frame.sample_rate
            a = frame.to_ndarray()
            a = a[0] if a.ndim == 2 and a.shape[0] == 1 else a.reshape(-1)
            if a.dtype == np.int16:
                a = a.astype(np.float32) / 32768.0
            elif a.dtype == np.int32:
                a = a.astype(np.float32) / 2.0**31
            pieces.append(a.astype(np.float32))
    out = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    scale = rate / COMPRESSED_SAMPLE_RATE
    out = out[round(lead * scale):]
    if samples is not None:
        out = out[: round(samples * scale)]
    return out, rate
