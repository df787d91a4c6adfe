"""Which engines --engine auto measures here, and the split engine's cut (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from kokorod.engine import measure
from kokorod.engine.trim import CUTS, TrimPlan, slice_inputs

HAR = "/decoder/decoder/generator/Concat_3_output_0"


def _status(monkeypatch: pytest.MonkeyPatch, *, openvino: bool, flags: str) -> dict[str, tuple[bool, str]]:
    monkeypatch.setattr(measure.importlib.util, "find_spec", lambda name: object() if openvino else None)
    monkeypatch.setattr(measure, "cpu_isa", lambda: "x86_64+" + flags)
    return {name: (ok, why) for name, ok, why in measure.candidate_status()}


def test_the_split_engine_is_a_candidate_only_with_openvino_and_amx_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    status = _status(monkeypatch, openvino=True, flags="amx_bf16+amx_tile+avx512_bf16")
    assert status["openvino-split"][0] and status["onnx"][0] and status["onnx-fp32"][0]
    ok, why = _status(monkeypatch, openvino=True, flags="avx512_bf16+avx512_vnni")["openvino-split"]
    assert not ok and "amx_bf16" in why
    ok, why = _status(monkeypatch, openvino=False, flags="amx_bf16")["openvino-split"]
    assert not ok and "kokorod[openvino]" in why


def test_the_source_cut_slices_the_harmonic_source_at_120_steps_a_frame() -> None:
    frames = 22
    tensors = {name: np.arange(per * frames + extra, dtype=np.float32).reshape(1, 1, -1)
               for name, (per, extra) in CUTS["source"].items()}
    assert tensors[HAR].shape[-1] == 2641  # what the export gives for 22 frames
    out = slice_inputs("source", tensors, TrimPlan(5, 15, frames))
    assert out[HAR].shape[-1] == 10 * 120 + 1 and out[HAR][0, 0, 0] == 5 * 120
    assert out["/encoder/Reshape_output_0"].shape[-1] == 20  # F0 at two steps a frame
