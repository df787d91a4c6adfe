"""Audio post-processing between the engine and the wire: chunk seams, sample
rate conversion, wire formats, WAV files.

The names below load their module on first use (PEP 562), so importing one
submodule (say ``kokorod.audio.formats``, which the client needs) does not load
soxr or soundfile through this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "FORMATS": "formats", "bytes_per_sample": "formats", "decode_pcm": "formats", "encode_pcm": "formats",
    "StreamResampler": "resample", "rescale_offset": "resample", "resample_oneshot": "resample",
    "DEFAULT_FADE_SAMPLES": "seams", "DEFAULT_MARGIN_SAMPLES": "seams", "DEFAULT_SILENCE_THRESHOLD": "seams",
    "PAUSE_MS": "seams", "pause_for_boundary": "seams", "shape_chunk": "seams", "speech_bounds": "seams",
    "read_wav": "wav", "write_wav": "wav",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
