"""Don't decode silence: the frame arithmetic of a trimmed Kokoro run.

Kokoro gives the leading pad (token 0) 13-15 duration frames and the final
punctuation and end pad 7-8 more: 0.5 s of near-silence per chunk that the
decoder (85-90% of a run's CPU) renders only for the seam shaper
(kokorod/speech/seams.py) to throw most of it away. The ONNX engine can run the
graph in two parts, split where the decoder starts (``CUTS``), and feed the
second part only the frames between the edges, keeping some frames of each
edge's silence as context (8 before the speech, 2 after it): the decoder's
convolutions and its instance norms (which average over time) need some of it,
or the output blows up (no context: peak 18.7 against 0.44).

The audio a trimmed run returns keeps the full run's length and timeline:
exact zeros where the dropped frames were, the decoded frames where they were.
So ``len(audio) == durations.sum() * SAMPLES_PER_FRAME`` still holds and word
times (computed from the durations) need no shift.

Sans-I/O: plain functions over token ids, durations and arrays; the sessions
live in onnx_engine.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLES_PER_FRAME

# Vocabulary symbols that are pauses, not sounds: a run of them at an edge
# (with the pad) is rendered as silence.
SILENT_SYMBOLS = frozenset(';:,.!?—…"()“” ')
PAD_ID = 0

# Where the graph is cut (tensor names of the Kokoro v1.0 export), with how
# many of each tensor's time steps one duration frame is, and how many extra
# steps follow the last frame (the sine source is reflect-padded for its STFT).
DURATIONS = "/encoder/Cast_output_0"
CUTS: dict[str, dict[str, tuple[int, int]]] = {
    # The decoder's inputs: aligned text features (1, 512, frames), F0 and
    # energy (1, 2*frames). Everything after the encoder is trimmed.
    "decoder": {
        "/encoder/MatMul_1_output_0": (1, 0),
        "/encoder/Reshape_output_0": (2, 0),
        "/encoder/Reshape_1_output_0": (2, 0),
    },
    # The generator's inputs: features after the decoder blocks (1, 512,
    # 2*frames) and the padded sine source (1, 1, 600*frames + 20). The decoder
    # blocks and the source's phase are then the full run's.
    "generator": {
        "/decoder/decoder/decode.3/Div_4_output_0": (2, 0),
        "/decoder/decoder/generator/Pad_output_0": (SAMPLES_PER_FRAME, 20),
    },
    # The decoder's inputs and the generator's harmonic source after its STFT
    # (magnitude and phase, (1, 22, 120*frames + 1)): what the split engine
    # computes in onnxruntime before OpenVINO decodes (openvino_engine.py).
    "source": {
        "/encoder/MatMul_1_output_0": (1, 0),
        "/encoder/Reshape_output_0": (2, 0),
        "/encoder/Reshape_1_output_0": (2, 0),
        "/decoder/decoder/generator/Concat_3_output_0": (SAMPLES_PER_FRAME // 5, 1),
    },
}
# Channels of the cut tensors (0: (1, time)), for those the export left without a shape.
CUT_CHANNELS = {"/encoder/MatMul_1_output_0": 512, "/encoder/Reshape_output_0": 0, "/encoder/Reshape_1_output_0": 0,
                "/decoder/decoder/generator/Concat_3_output_0": 22}
DEFAULT_CUT = "decoder"
# Context frames kept at each edge. Fewer blow up or soften the speech: at K=2
# "Sure." peaked at 19.8 (0.49 in full); at K=6 its speech level was -1.0 dB
# even with the norms weighted (trim_norms.py); at K=8 within 0.12 dB
# (bench/trim_silence.py has the curve).
DEFAULT_CONTEXT_FRAMES = 8
# Context frames kept after the speech, at most. This export's trailing edge
# (final punctuation and end pad) is only 4-10 frames, so 8 trimmed almost
# nothing there. With 2, on 21 sentences in 8 languages against the full
# decode: DNSMOS OVRL -0.011 on average (8 on both edges: -0.006; DNSMOS's own
# noise on these clips is 0.064), the recogniser's error equal to the full
# decode's, the speech level within 0.21 dB. A shorter *lead* did not hold (at
# 6 the level moved by up to 1.07 dB). bench/experiments/trim_context,
# docs/experiments.md.
TRAIL_CONTEXT_FRAMES = 2
# Below this many frames saved, a trim is not worth a second session call.
MIN_SAVED_FRAMES = 2


@dataclass(frozen=True)
class TrimPlan:
    """Decode frames ``[start_frame, end_frame)`` of ``total_frames``."""

    start_frame: int
    end_frame: int
    total_frames: int

    @property
    def trimmed(self) -> bool:
        return self.start_frame > 0 or self.end_frame < self.total_frames

    @property
    def decoded_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def lead_samples(self) -> int:
        """Zeros before the decoded audio (the samples not decoded at the start)."""
        return self.start_frame * SAMPLES_PER_FRAME

    @property
    def total_samples(self) -> int:
        return self.total_frames * SAMPLES_PER_FRAME


def silent_ids(vocab: Mapping[str, int]) -> frozenset[int]:
    """The ids of the pad and of the vocabulary's pause symbols."""
    return frozenset({PAD_ID, *(i for s, i in vocab.items() if s in SILENT_SYMBOLS)})


def edge_frames(token_ids: Sequence[int], durations: npt.ArrayLike, silent: Collection[int]) -> tuple[int, int]:
    """Frames of the leading and of the trailing run of silent tokens (pads
    included). A chunk of nothing but silent tokens has no edges to trim: (0, 0)."""
    d = np.asarray(durations, dtype=np.int64).reshape(-1)
    if len(token_ids) != d.shape[0]:
        raise ValueError(f"{len(token_ids)} token ids but {d.shape[0]} durations")
    sounding = [i for i, t in enumerate(token_ids) if t not in silent]
    if not sounding:
        return 0, 0
    return int(d[:sounding[0]].sum()), int(d[sounding[-1] + 1:].sum())


def trail_context(context_frames: int) -> int:
    """The trailing edge's context for a leading context of ``context_frames``."""
    return min(context_frames, TRAIL_CONTEXT_FRAMES)


def plan_trim(token_ids: Sequence[int], durations: npt.ArrayLike, silent: Collection[int], context_frames: int,
              trail_frames: int | None = None) -> TrimPlan:
    """Drop each edge's silent frames but the ``context_frames`` nearest the
    speech before it and the ``trail_frames`` (default ``trail_context``) after
    it; no trim when it would save fewer than ``MIN_SAVED_FRAMES``."""
    if trail_frames is None:
        trail_frames = trail_context(context_frames)
    if context_frames < 0 or trail_frames < 0:
        raise ValueError("context frames must be >= 0")
    total = int(np.asarray(durations, dtype=np.int64).sum())
    lead, trail = edge_frames(token_ids, durations, silent)
    start = max(0, lead - context_frames)
    end = total - max(0, trail - trail_frames)
    if start + (total - end) < MIN_SAVED_FRAMES:
        return TrimPlan(0, total, total)
    return TrimPlan(start, end, total)


def slice_inputs(cut: str, tensors: Mapping[str, Any], plan: TrimPlan) -> dict[str, np.ndarray]:
    """The cut's tensors restricted to the plan's frames (time is the last axis)."""
    out: dict[str, np.ndarray] = {}
    for name, (per_frame, extra) in CUTS[cut].items():
        x = np.asarray(tensors[name])
        out[name] = np.ascontiguousarray(x[..., plan.start_frame * per_frame:plan.end_frame * per_frame + extra])
    return out


def place(plan: TrimPlan, decoded: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The decoded frames on the full run's timeline, exact zeros elsewhere."""
    audio = np.asarray(decoded, dtype=np.float32).reshape(-1)
    want = plan.decoded_frames * SAMPLES_PER_FRAME
    if audio.shape[0] != want:
        raise ValueError(f"decoded {audio.shape[0]} samples for {plan.decoded_frames} frames ({want} expected)")
    if not plan.trimmed:
        return audio
    out = np.zeros(plan.total_samples, dtype=np.float32)
    out[plan.lead_samples:plan.lead_samples + want] = audio
    return out


def split_model(model: Any, cut: str) -> tuple[Any, Any]:
    """(front, back) ``onnx.ModelProto``s of a prepared Kokoro graph (durations
    already an output): front = tokens/style/speed → durations + the cut's
    tensors; back = the cut's tensors + style → audio."""
    import onnx.utils

    from onnx import TensorProto, helper

    names = list(CUTS[cut])
    extractor = onnx.utils.Extractor(model)
    front = extractor.extract_model(["tokens", "style", "speed"], [DURATIONS, *names])
    back = extractor.extract_model([*names, "style"], ["audio"])
    # The export declares no shape for some cut tensors (the harmonic source);
    # trim_norms.norm_rates and OpenVINO's reader need at least their rank.
    for i, value in enumerate(back.graph.input):
        if value.name in CUT_CHANNELS and not value.type.tensor_type.shape.dim:
            channels = CUT_CHANNELS[value.name]
            value.CopyFrom(helper.make_tensor_value_info(
                value.name, TensorProto.FLOAT, [1, *([channels] if channels else []), f"time{i}"]))
    return front, back
