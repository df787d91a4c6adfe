"""What is true of the Kokoro-82M model itself, whichever engine runs it.

A leaf: it imports nothing of kokorod but errors, so text, engines, audio,
protocol, daemon and clients can all use the same numbers without importing one
another (text reads the phoneme vocabulary here, not through an engine).
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from kokorod.errors import AssetError

# The model's output rate; stream time everywhere is counted in samples of it.
SAMPLE_RATE: Final = 24_000
# Kokoro's decoder emits 600 samples per predicted duration frame (25 ms at 24 kHz).
SAMPLES_PER_FRAME: Final = 600
# Kokoro's context window, in phonemes (the voice pack has one style row per length).
MAX_PHONEMES: Final = 510
# The speed range the model was trained to follow (its duration predictor's scale).
SPEED_MIN: Final = 0.5
SPEED_MAX: Final = 2.0

# Mono float32 audio in [-1, 1] at SAMPLE_RATE: what every engine returns.
FloatAudio = npt.NDArray[np.float32]


def kokoro_config_path() -> Path:
    """kokoro-onnx's copy of the hub's config.json, found without importing
    ``kokoro_onnx`` (its ``__init__`` imports phonemizer and friends: ~0.2 s)."""
    spec = importlib.util.find_spec("kokoro_onnx")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError("kokoro-onnx is not installed (it ships Kokoro's config.json)", "pip install kokoro-onnx")
    return Path(list(spec.submodule_search_locations)[0]) / "config.json"


def load_vocab(config_path: Path | None = None) -> dict[str, int]:
    """Kokoro's 114-symbol phoneme vocabulary (kokoro-onnx ships the hub's config.json)."""
    config_text = Path(config_path or kokoro_config_path()).read_text()
    vocab = json.loads(config_text)["vocab"]
    return {str(k): int(v) for k, v in vocab.items()}


@lru_cache(maxsize=1)
def model_vocab() -> frozenset[str]:
    """The phonemes the model knows (the keys of ``load_vocab``), read once: a
    lexicon entry or inline phonemes outside it would be silently dropped."""
    return frozenset(load_vocab())
