"""Audio post-processing between the engine and the wire: chunk seams, sample
rate conversion, wire formats, WAV files."""

from kokorod.audio.formats import FORMATS, bytes_per_sample, decode_pcm, encode_pcm
from kokorod.audio.resample import StreamResampler, rescale_offset, resample_oneshot
from kokorod.audio.seams import (
    DEFAULT_FADE_SAMPLES,
    DEFAULT_MARGIN_SAMPLES,
    DEFAULT_SILENCE_THRESHOLD,
    PAUSE_MS,
    pause_for_boundary,
    shape_chunk,
    speech_bounds,
)
from kokorod.audio.wav import read_wav, write_wav

__all__ = [
    "DEFAULT_FADE_SAMPLES",
    "DEFAULT_MARGIN_SAMPLES",
    "DEFAULT_SILENCE_THRESHOLD",
    "FORMATS",
    "PAUSE_MS",
    "StreamResampler",
    "bytes_per_sample",
    "decode_pcm",
    "encode_pcm",
    "pause_for_boundary",
    "read_wav",
    "rescale_offset",
    "resample_oneshot",
    "shape_chunk",
    "speech_bounds",
    "write_wav",
]
