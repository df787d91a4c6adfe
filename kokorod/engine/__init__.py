"""Engines: one contract (``Engine``), two implementations (ONNX default, torch)."""

from __future__ import annotations

import os
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
from kokorod.torch_free import torch_blocked  # noqa: F401  (re-exported)

# auto: the ONNX candidate measured fastest here (kokorod.engine.selection);
# onnx: the int8 graph; onnx-fp32: fp32 convolutions; openvino-split: int8
# front in onnxruntime, bf16 decoder in OpenVINO (extra kokorod[openvino]);
# torch: the PyTorch model.
ENGINE_CHOICES = ("auto", "onnx", "onnx-fp32", "openvino-split", "torch")
# Environment overrides for the ONNX engine's load options (no CLI flags yet).
DEQUANTIZE_ENV = "KOKOROD_ONNX_DEQUANTIZE"    # none | conv
GRAPH_CACHE_ENV = "KOKOROD_ONNX_GRAPH_CACHE"  # 0 turns the optimised-graph cache off
SPINNING_ENV = "KOKOROD_ONNX_SPINNING"        # 1: intra-op threads spin-wait between operators (default: sleep)
TRIM_SILENCE_ENV = "KOKOROD_ONNX_TRIM_SILENCE"  # off | context frames K (default: on, kokorod.engine.trim)
KERNELS_ENV = "KOKOROD_ONNX_KERNELS"          # fast (default) | export: the export's nodes (engine/fast_ops.py, conv_gemm.py)


def load_engine(
    kind: str = "auto",
    *,
    cache_dir: Path,
    model_path: Path | None = None,
    config_path: Path | None = None,
    device: str = "auto",
    threads: int | None = None,
    dequantize: str | None = None,
    graph_cache: bool | None = None,
    spinning: bool | None = None,
    trim_silence: str | None = None,
) -> Engine:
    """``auto`` is the ONNX engine over the offline model unless a torch checkpoint
    (``.pth``) is given; ``--model`` with an ``.onnx`` file runs that file.
    (Choosing among the ONNX candidates by measurement is the caller's:
    kokorod.speech.build, kokorod.engine.selection; here ``auto`` is int8.)
    ``onnx-fp32`` is ``onnx`` with ``dequantize="conv"``.

    ONNX only: ``dequantize`` ("none" or "conv", default $KOKOROD_ONNX_DEQUANTIZE
    or "none"), ``graph_cache`` (keep onnxruntime's optimised graph under
    ``cache_dir``; default on unless $KOKOROD_ONNX_GRAPH_CACHE=0) and
    ``spinning`` (default off unless $KOKOROD_ONNX_SPINNING=1), ``trim_silence``
    ("off" or context frames K, default $KOKOROD_ONNX_TRIM_SILENCE, else
    ``trim.DEFAULT_CONTEXT_FRAMES``: see ``trim_context``); the Snake
    activations' nodes and, on a CPU with VNNI, the int8 convolutions',
    $KOKOROD_ONNX_KERNELS ("fast" by default, or "export")."""
    from kokorod.errors import InputError

    if kind not in ENGINE_CHOICES:
        raise InputError(f"unknown engine {kind!r}", f"use one of {', '.join(ENGINE_CHOICES)}")
    if kind == "auto":
        kind = "torch" if model_path is not None and Path(model_path).suffix in (".pth", ".pt") else "onnx"
    if kind == "onnx-fp32":
        kind, dequantize = "onnx", "conv"
    if kind == "torch":
        from kokorod.engine.torch_engine import TorchEngine

        return TorchEngine(model_path=model_path, config_path=config_path, device=device)
    from kokorod.assets.model import MODEL_SHA256, ensure_model
    from kokorod.engine.onnx_engine import OnnxEngine

    sha: str | None = None
    if model_path is not None:
        if not Path(model_path).is_file():
            from kokorod.errors import AssetError

            raise AssetError(f"model file {model_path} not found", "pass an existing --model path, or omit it for the default")
        path = Path(model_path)
    else:
        path = ensure_model(cache_dir)  # verifies the sha256
        sha = MODEL_SHA256
    if kind == "openvino-split":
        from kokorod.engine.openvino_engine import OpenVinoSplitEngine

        return OpenVinoSplitEngine(path, cache_dir=cache_dir, model_sha256=sha, threads=threads,
                                   trim_context=trim_context(trim_silence if trim_silence is not None
                                                             else os.environ.get(TRIM_SILENCE_ENV)))
    if dequantize is None:
        dequantize = os.environ.get(DEQUANTIZE_ENV) or "none"
    if graph_cache is None:
        graph_cache = os.environ.get(GRAPH_CACHE_ENV, "1") != "0"
    if spinning is None:
        spinning = os.environ.get(SPINNING_ENV, "0") == "1"
    return OnnxEngine(path, threads=threads, dequantize=dequantize, cache_dir=cache_dir if graph_cache else None,
                      model_sha256=sha, spinning=spinning, kernels=os.environ.get(KERNELS_ENV) or "fast",
                      trim_context=trim_context(trim_silence if trim_silence is not None else os.environ.get(TRIM_SILENCE_ENV)))


def trim_context(setting: str | None) -> int | None:
    """``--trim-silence``'s value as ``OnnxEngine``'s ``trim_context``: None
    (or empty) is the default K, "off" is None (decode all the silence)."""
    from kokorod.engine.trim import DEFAULT_CONTEXT_FRAMES
    from kokorod.errors import InputError

    text = (setting or "").strip().lower()
    if not text:
        return DEFAULT_CONTEXT_FRAMES
    if text in ("off", "no", "false"):
        return None
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        raise InputError(f"--trim-silence {setting!r} is neither off nor a number of frames",
                         f"use off, or K >= 0 (default {DEFAULT_CONTEXT_FRAMES})")
    return k


__all__ = [
    "CancelToken", "Engine", "EngineOutput", "SynthesisCancelled", "load_engine", "torch_blocked",
    "MAX_PHONEMES", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "ENGINE_CHOICES",
]
