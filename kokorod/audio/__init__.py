"""Audio between the speech pipeline and the wire: sample rate conversion,
wire formats, WAV files (chunk seams are part of rendering: kokorod.speech.seams).

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
    "read_wav": "wav", "write_wav": "wav",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
