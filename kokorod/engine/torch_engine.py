"""Kokoro-82M on PyTorch (``kokoro.KModel``), which returns durations natively.

Weights come from the Hugging Face hub (``hexgrad/Kokoro-82M``) when no local
``--model``/``--config`` is given, so this engine needs either network access or
local files; the ONNX engine is the offline default.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLE_RATE, CancelToken, EngineOutput
from kokorod.errors import AssetError

HF_REPO = "hexgrad/Kokoro-82M"


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class TorchEngine:
    name = "torch"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        config_path: Path | None = None,
        device: str = "auto",
        repo_id: str = HF_REPO,
    ) -> None:
        import torch
        from kokoro import KModel

        for label, path in (("model", model_path), ("config", config_path)):
            if path is not None and not Path(path).is_file():
                raise AssetError(f"torch {label} file {path} not found", f"pass an existing --{label} path")
        try:
            model = KModel(
                repo_id=repo_id,
                config=str(config_path) if config_path else None,
                model=str(model_path) if model_path else None,
            )
        except AssetError:
            raise
        except Exception as exc:
            raise AssetError(
                f"cannot load the torch model ({type(exc).__name__}: {str(exc)[:120]})",
                "pass --model/--config for local weights, or use --engine onnx (offline default)",
            ) from exc
        self.device = pick_device(device)
        self._model = model.to(self.device).eval()
        self._torch = torch
        self.vocab: dict[str, int] = {str(k): int(v) for k, v in model.vocab.items()}
        self._lock = threading.Lock()

    def run(
        self,
        token_ids: list[int],
        style: npt.NDArray[np.float32],
        speed: float,
        cancel: CancelToken | None = None,
    ) -> EngineOutput:
        torch = self._torch
        # A torch forward cannot be interrupted from outside; we check the token
        # before and after, and the caller drops stale output by generation id.
        if cancel is not None:
            cancel.raise_if_cancelled()
        ids = torch.tensor([token_ids], dtype=torch.long, device=self.device)
        ref_s = torch.from_numpy(np.asarray(style, dtype=np.float32).reshape(1, -1)).to(self.device)
        with self._lock, torch.inference_mode():
            audio, pred_dur = self._model.forward_with_tokens(ids, ref_s, speed)
        if cancel is not None:
            cancel.raise_if_cancelled()
        durations = pred_dur.reshape(-1).cpu().numpy().astype(np.int64)
        return EngineOutput(audio.reshape(-1).float().cpu().numpy(), durations)
