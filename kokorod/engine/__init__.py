"""Engines: one contract (``Engine``), two implementations (ONNX default, torch)."""

from __future__ import annotations

from pathlib import Path

from kokorod.engine.base import (
    MAX_PHONEMES,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    CancelToken,
    Engine,
    EngineOutput,
    SynthesisCancelled,
)

ENGINE_CHOICES = ("auto", "onnx", "torch")


def load_engine(
    kind: str = "auto",
    *,
    cache_dir: Path,
    model_path: Path | None = None,
    config_path: Path | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> Engine:
    """``auto`` is the ONNX engine over the offline model unless a torch checkpoint
    (``.pth``) is given; ``--model`` with an ``.onnx`` file runs that file."""
    from kokorod.errors import InputError

    if kind not in ENGINE_CHOICES:
        raise InputError(f"unknown engine {kind!r}", f"use one of {', '.join(ENGINE_CHOICES)}")
    if kind == "auto":
        kind = "torch" if model_path is not None and Path(model_path).suffix in (".pth", ".pt") else "onnx"
    if kind == "torch":
        from kokorod.engine.torch_engine import TorchEngine

        return TorchEngine(model_path=model_path, config_path=config_path, device=device)
    from kokorod.assets.model import ensure_model
    from kokorod.engine.onnx_engine import OnnxEngine

    if model_path is not None:
        if not Path(model_path).is_file():
            from kokorod.errors import AssetError

            raise AssetError(f"model file {model_path} not found", "pass an existing --model path, or omit it for the default")
        path = Path(model_path)
    else:
        path = ensure_model(cache_dir)
    return OnnxEngine(path, threads=threads)


__all__ = [
    "CancelToken", "Engine", "EngineOutput", "SynthesisCancelled", "load_engine",
    "MAX_PHONEMES", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "ENGINE_CHOICES",
]
