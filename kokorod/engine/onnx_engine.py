"""Kokoro-82M on onnxruntime, the offline default engine."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLE_RATE, CancelToken, EngineOutput, SynthesisCancelled
from kokorod.errors import AssetError

# The export only declares ``audio`` as an output. The per-phoneme durations
# (round(sum(sigmoid)/speed), clamped to ≥ 1) are this internal tensor; we add it
# to the graph outputs in memory so one run returns both.
DURATIONS_TENSOR = "/encoder/Cast_output_0"


def load_vocab(config_path: Path | None = None) -> dict[str, int]:
    """Kokoro's 114-symbol phoneme vocabulary (kokoro-onnx ships the hub's config.json)."""
    if config_path is None:
        import importlib.resources

        config_text = importlib.resources.files("kokoro_onnx").joinpath("config.json").read_text()
    else:
        config_text = Path(config_path).read_text()
    vocab = json.loads(config_text)["vocab"]
    return {str(k): int(v) for k, v in vocab.items()}


class OnnxEngine:
    name = "onnx"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_path: Path, *, threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        try:
            model = onnx.load(str(model_path))
        except Exception as exc:
            raise AssetError(f"cannot read ONNX model {model_path}: {exc}", "delete it and run: kokorod fetch") from exc
        if DURATIONS_TENSOR not in {o.name for o in model.graph.output}:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(DURATIONS_TENSOR, onnx.TensorProto.INT64, None)
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # One synthesis at a time per engine (the scheduler serialises), so the
        # inter-op pool would only add idle threads.
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self._ort = ort
        self.vocab = load_vocab()
        self._lock = threading.Lock()

    def run(
        self,
        token_ids: list[int],
        style: npt.NDArray[np.float32],
        speed: float,
        cancel: CancelToken | None = None,
    ) -> EngineOutput:
        run_options = self._ort.RunOptions()

        def terminate() -> None:
            run_options.terminate = True

        if cancel is not None:
            cancel.raise_if_cancelled()
            cancel.add_hook(terminate)
        try:
            with self._lock:
                audio, durations = self._session.run(
                    ["audio", DURATIONS_TENSOR],
                    {
                        "tokens": np.asarray([token_ids], dtype=np.int64),
                        "style": np.asarray(style, dtype=np.float32).reshape(1, -1),
                        "speed": np.asarray([speed], dtype=np.float32),
                    },
                    run_options,
                )
        except Exception as exc:
            # onnxruntime reports a terminated run as a generic failure; the token
            # tells us whether it was our doing.
            if cancel is not None and cancel.cancelled:
                raise SynthesisCancelled() from exc
            raise
        finally:
            if cancel is not None:
                cancel.remove_hook(terminate)
        if cancel is not None:
            cancel.raise_if_cancelled()
        return EngineOutput(np.asarray(audio, dtype=np.float32).reshape(-1), np.asarray(durations, dtype=np.int64).reshape(-1))
