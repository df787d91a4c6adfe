"""Streaming sample-rate conversion from the model's 24 kHz to a client's rate.

One :class:`StreamResampler` lives for one utterance and sees its chunks in
order, so the filter state carries across chunk seams: resampling chunk by chunk
gives the same samples as resampling the whole utterance at once (python-soxr's
``ResampleStream`` is bit-exact with its one-shot ``resample`` for the same
quality), with no restart transient at each seam.

Latency: soxr holds back a few tens of milliseconds of output (the filter's
look-ahead) until more input arrives or the stream is flushed. Chunks end in
silence (see seams.py), so what waits inside the resampler between chunks is
normally pause, not speech; :meth:`StreamResampler.flush` at the end of the
utterance releases it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import soxr

from kokorod.model_facts import SAMPLE_RATE, FloatAudio

# soxr "HQ": 20-bit precision, passband to ~91 % of Nyquist. VHQ costs more CPU
# and latency for a difference nobody hears after 16-bit or G.711 quantisation.
DEFAULT_QUALITY: Final = "HQ"

_EMPTY: Final = np.zeros(0, dtype=np.float32)


def rescale_offset(offset_samples: int, out_rate: int, in_rate: int = SAMPLE_RATE) -> int:
    """Map a sample offset at ``in_rate`` to the same instant at ``out_rate``.

    ``floor(offset * out_rate / in_rate)`` in exact integer arithmetic. Floor,
    because soxr's output for n input samples is n * ratio rounded to nearest,
    which is never less than the floor, so a converted word end never points past
    the audio actually produced. The map is monotone and exact when the rates are
    equal. Always convert *absolute* utterance offsets; adding up converted
    per-chunk lengths would accumulate up to one sample of floor error per chunk.
    """
    if out_rate <= 0 or in_rate <= 0:
        raise ValueError("sample rates must be positive")
    return (int(offset_samples) * int(out_rate)) // int(in_rate)


class StreamResampler:
    """Resample one utterance's audio, chunk by chunk, from ``in_rate`` to ``out_rate``.

    Call :meth:`process` for each chunk in order and :meth:`flush` once after the
    last one. When the rates are equal this is an identity passthrough (no soxr
    object, no delay). After ``flush`` the stream is finished; :meth:`reset` starts
    a new one with the same rates.
    """

    def __init__(
        self, out_rate: int, in_rate: int = SAMPLE_RATE, *, quality: str = DEFAULT_QUALITY
    ) -> None:
        if out_rate <= 0 or in_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._quality = quality
        self._stream: soxr.ResampleStream | None = None
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="float32", quality=quality
            )
        self.in_samples = 0
        self.out_samples = 0
        self._finished = False

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def pending_samples(self) -> int:
        """Output samples owed for input already given (approximate until flush)."""
        return max(0, rescale_offset(self.in_samples, self.out_rate, self.in_rate) - self.out_samples)

    def process(self, chunk: FloatAudio) -> FloatAudio:
        """Feed the next piece of audio; returns whatever output is ready now
        (possibly empty, possibly more or less than ``len(chunk) * ratio``)."""
        if self._finished:
            raise RuntimeError("StreamResampler.process() after flush(); call reset() first")
        x = np.ascontiguousarray(chunk, dtype=np.float32).reshape(-1)
        self.in_samples += x.shape[0]
        if self._stream is None:
            out = x.copy()
        elif x.shape[0] == 0:
            return _EMPTY.copy()
        else:
            out = self._stream.resample_chunk(x, last=False)
        self.out_samples += out.shape[0]
        return out

    def flush(self) -> FloatAudio:
        """End the stream and return the held-back tail. Afterwards the total
        output is ``in_samples * out_rate / in_rate`` rounded to nearest
        (soxr rounds exact halves down)."""
        if self._finished:
            return _EMPTY.copy()
        self._finished = True
        if self._stream is None:
            return _EMPTY.copy()
        out = self._stream.resample_chunk(_EMPTY, last=True)
        self.out_samples += out.shape[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def reset(self) -> None:
        """Forget all state; ready for a new, unrelated signal at the same rates."""
        if self._stream is not None:
            self._stream.clear()
        self.in_samples = 0
        self.out_samples = 0
        self._finished = False


def resample_oneshot(
    audio: FloatAudio, out_rate: int, in_rate: int = SAMPLE_RATE, *, quality: str = DEFAULT_QUALITY
) -> FloatAudio:
    """Resample a whole signal at once (tests, offline rendering)."""
    x = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if in_rate == out_rate:
        return x.copy()
    return np.asarray(soxr.resample(x, in_rate, out_rate, quality=quality), dtype=np.float32)
