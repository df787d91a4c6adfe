"""Windowed decoding of the Kokoro-82M int8 ONNX model: audio out before a chunk is done.

EXPERIMENTAL, not used by the daemon: it does not yet pay. A window decoded with
estimated statistics does not hold quality (below), and the version that does
(estimate only a 0.3 s head, then decode the whole chunk exactly) gives a first
piece that is mostly the chunk's leading silence and finishes later than a plain
run (bench/experiments/windowed/windowed_bench.py: whole decode 1.2-1.7x a full run). Kept with its
bench and tests as the measured record of what was tried.

The graph is split in memory into
* a *front* (text encoder, durations, F0/energy, the decoder's 40/80 Hz AdaIN
  blocks and the harmonic sine source), run once over the whole chunk, so
  prosody, the decoder blocks' instance norms and the source's phase (a
  cumulative sum of F0) are exactly the full model's; 10-15% of a full run;
* the *generator* (iSTFTNet: source STFT, upsampling convs, AdaIN resblocks,
  iSTFT), the rest of the cost, run over its 80 Hz input ("steps", 300 samples
  each): first over a short head window (with context), then over the whole chunk.

The generator's 44 AdaIN instance norms take mean/variance over *time*, so a
window's audio depends on the whole chunk. Normalised by its own statistics a
window sounds different (DNSMOS down 0.1-0.2: the BOS/EOS silence carries much of
the variance). Normalised by *estimates* of the chunk's statistics, as this module
once did for every window, levels drifted ±20-28% per window and DNSMOS OVRL fell
0.15-0.25 on 2 of 5 bench sentences; even pooling exact moments of the decoded
steps into one run over the rest left that run ~16-20 dB SNR from the full decode
(int8 dynamic quantisation and edge context), which DNSMOS still heard (-0.06 and
-0.10 on 2 of 5 sentences). So only the start is estimated:
* the first run (the "probe") decodes, concatenated, the head (first window), the
  chunk's last steps and short islands sampled from the middle, with every norm's
  mean/variance replaced by a weighted mean over that concatenation (a clean
  position weighs its share of the chunk, positions near a junction zero); each
  layer's estimate is made from activations normalised by the estimates above it.
  Its head is the first audio;
* then the generator runs once over the whole chunk: everything after the head is
  the full model's audio bit for bit (re-decoding the head costs ~10% of a run).
The price: the second piece comes only after that run (the bench's ``stall_s``).
The seam between the head and the exact audio gets a short cross-fade.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLES_PER_FRAME, CancelToken, SynthesisCancelled
from kokorod.errors import AssetError

DURATIONS = "/encoder/Cast_output_0"
FEATURES = "/decoder/decoder/decode.3/Div_4_output_0"  # generator input: (1, 512, steps)
# The sine source, reflect-padded for its STFT: (1, 1, 300*steps + 2*PAD). Cut before
# the STFT, which is local: onnxruntime's STFT kernel then gives each window the
# full run's frames bit for bit. (A Conv with the DFT basis would be faster, but in
# silence the source is constant and the phase of its near-zero bins is rounding
# noise that only that kernel reproduces: the output moved 10 dB further away.)
SOURCE = "/decoder/decoder/generator/Pad_output_0"
PAD = 10
STEP = SAMPLES_PER_FRAME // 2  # generator input steps per duration frame: 2
Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class DecodeState:
    """What ``front`` computed for one chunk; ``decode`` consumes it."""

    durations: npt.NDArray[np.int64]
    features: npt.NDArray[np.float32]
    source: npt.NDArray[np.float32]
    style: npt.NDArray[np.float32]

    @property
    def steps(self) -> int:
        return int(self.features.shape[2])


@dataclass(frozen=True)
class WindowPlan:
    """In steps. ``probe``: the first run's (span, clean span, weight) triples, whose
    audio over ``head`` is the first piece; ``rest`` comes from the run over the
    whole chunk; None when the chunk is decoded in one run (no head piece)."""

    probe: list[tuple[tuple[int, int], tuple[int, int], float]]
    head: tuple[int, int]
    rest: tuple[int, int] | None

    @property
    def edges(self) -> list[int]:
        """Where one piece's audio meets the next's, in steps."""
        return [self.head[1]] if self.rest else []


def plan_windows(steps: int, *, first: int, tail: int, islands: int, island: int, margin: int,
                 island_margin: int) -> WindowPlan:
    """A head of ``first`` steps, estimated from itself, the last ``tail`` steps and
    ``islands`` islands of ``island`` steps (plus margins) spread over the middle."""
    if steps <= 2 * (first + tail) + islands * (island + 2 * island_margin):
        # Too short to gain anything: one run over the whole chunk, i.e. the full decode.
        return WindowPlan([((0, steps), (0, steps), 1.0)], (0, steps), None)
    end = steps - tail
    probe = [((0, first + margin), (0, first), 1.0)]
    gap = (end - first) / islands
    share = (end - first) / (islands * island)  # middle steps each clean island step stands for
    for i in range(islands):
        c = int(first + (i + 0.5) * gap - island / 2)
        probe.append(((c - island_margin, c + island + island_margin), (c, c + island), share))
    probe.append(((end - margin, steps), (end, steps), 1.0))
    return WindowPlan(probe, (0, first), (first, steps))


@dataclass(frozen=True)
class _Norm:
    mean: str  # ReduceMean(x)
    var: str   # ReduceMean(sq)
    dev: str   # x - mean
    sq: str    # dev * dev


def _instance_norms(graph: Any) -> list[_Norm]:
    """Every instance norm's tensors. The exporter merged identical norms (three
    resblocks share one input), so each is listed once: 44 in the generator."""
    users: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    found: dict[str, _Norm] = {}
    for m in graph.node:
        if m.op_type != "ReduceMean":
            continue
        for sub in users.get(m.output[0], []):
            if sub.op_type != "Sub" or list(sub.input) != [m.input[0], m.output[0]]:
                continue
            for sq in users.get(sub.output[0], []):
                if sq.op_type == "Mul" and list(sq.input) == [sub.output[0]] * 2:
                    for v in users.get(sq.output[0], []):
                        if v.op_type == "ReduceMean" and m.output[0] not in found:
                            found[m.output[0]] = _Norm(m.output[0], v.output[0], sub.output[0], sq.output[0])
    return list(found.values())


def _prune(graph: Any) -> None:
    """Drop nodes and initializers no output needs (onnxruntime warns about each)."""
    needed = {o.name for o in graph.output}
    keep = []
    for n in reversed(list(graph.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def _weights(rate: tuple[int, int]) -> str:
    return "/windowed/weights_{}x{}".format(*rate)


class WindowedOnnxDecoder:
    """``front`` once per chunk, then ``decode`` yields 24 kHz float32 pieces whose
    concatenation is ``sum(durations) * 600`` samples, like ``OnnxEngine.run``.

    Sizes are in steps (12.5 ms). ``first`` = 24 (0.3 s): the head is then mostly the
    BOS silence, whose estimate is nearly exact; heads of 32 and 40 steps carry more
    estimated speech (the bench's Spanish sentence: DNSMOS OVRL -0.050 and -0.038 against
    +0.031). Use from one thread at a time; ``CancelToken.cancel`` may come from
    another and stops the run in flight."""

    def __init__(self, model_path: Path, *, threads: int | None = None, spinning: bool = True,
                 first: int = 24, tail: int = 32, islands: int = 6, island: int = 4, margin: int = 4,
                 island_margin: int = 2, crossfade: int = 240) -> None:
        import onnx
        import onnx.utils
        import onnxruntime as ort
        from onnx import TensorProto, helper

        if crossfade % 2 or crossfade // 2 > (margin - 2) * STEP or islands < 1 or island < 1:
            raise ValueError("crossfade must be even and leave 2 steps of context in the margin; islands >= 1")
        try:
            model = onnx.load(str(model_path))
        except Exception as exc:
            raise AssetError(f"cannot read ONNX model {model_path}: {exc}", "delete it and run: kokorod fetch") from exc
        self._ort = ort
        self._layout: dict[str, Any] = dict(first=first, tail=tail, islands=islands, island=island, margin=margin,
                                            island_margin=island_margin)
        self._fade = crossfade
        self._lock = threading.Lock()
        self._options = ort.SessionOptions()
        if threads:
            self._options.intra_op_num_threads = threads
        self._options.inter_op_num_threads = 1  # one run at a time: inter-op threads would idle
        if not spinning:
            self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        extractor = onnx.utils.Extractor(model)
        front = extractor.extract_model(["tokens", "style", "speed"], [DURATIONS, FEATURES, SOURCE])
        generator = extractor.extract_model([FEATURES, SOURCE, "style"], ["audio"])
        self._norms = _instance_norms(generator.graph)
        self._rate = self._norm_rates(generator)
        rates = sorted(set(self._rate))
        series = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, None])  # noqa: E731
        # The probe: ReduceMean(x * w), w scaled to mean 1 (all ones is bit for bit the
        # original norm: a chunk decoded in one run is the full model's audio).
        probe = onnx.ModelProto()
        probe.CopyFrom(generator)
        rate_of = {t: r for n, r in zip(self._norms, self._rate) for t in (n.mean, n.var)}
        nodes = []
        for n in probe.graph.node:
            if n.op_type == "ReduceMean" and n.output[0] in rate_of:
                x = n.input[0]
                n.input[0] = x + "/windowed/weighted"
                nodes.append(helper.make_node("Mul", [x, _weights(rate_of[n.output[0]])], [n.input[0]]))
            nodes.append(n)
        del probe.graph.node[:]
        probe.graph.node.extend(nodes)
        probe.graph.input.extend(series(_weights(r)) for r in rates)
        self._front, self._probe = self._session(front), self._session(probe)

    def _session(self, model: Any, options: Any = None) -> Any:
        return self._ort.InferenceSession(model.SerializeToString(), options or self._options, providers=["CPUExecutionProvider"])

    def _norm_rates(self, generator: Any) -> list[tuple[int, int]]:
        """Each norm's time length is a*steps + b (a = 10 or 60; b = 1 after the
        reflection pad): found by an unoptimised copy that outputs the lengths."""
        import onnx
        from onnx import TensorProto, helper

        m = onnx.ModelProto()
        m.CopyFrom(generator)
        del m.graph.output[:]
        for i, norm in enumerate(self._norms):
            x = next(n.input[0] for n in m.graph.node if n.output[0] == norm.mean)
            m.graph.node.append(helper.make_node("Shape", [x], [f"/windowed/len{i}"], start=2, end=3))
            m.graph.output.append(helper.make_tensor_value_info(f"/windowed/len{i}", TensorProto.INT64, [1]))
        _prune(m.graph)
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = self._session(m, options)
        lengths = [[int(x[0]) for x in session.run(None, {
            FEATURES: np.zeros((1, 512, s), np.float32), SOURCE: np.zeros((1, 1, STEP * s + 2 * PAD), np.float32),
            "style": np.zeros((1, 256), np.float32)})] for s in (4, 6)]
        return [((l6 - l4) // 2, l4 - 2 * (l6 - l4)) for l4, l6 in zip(*lengths)]

    def _run(self, session: Any, feed: dict[str, np.ndarray], cancel: CancelToken | None) -> list[np.ndarray]:
        run_options = self._ort.RunOptions()

        def terminate() -> None:
            run_options.terminate = True

        if cancel is not None:
            cancel.raise_if_cancelled()
            cancel.add_hook(terminate)
        try:
            with self._lock:
                return session.run(None, feed, run_options)  # type: ignore[no-any-return]
        except Exception as exc:
            if cancel is not None and cancel.cancelled:  # a terminated run surfaces as a generic failure
                raise SynthesisCancelled() from exc
            raise
        finally:
            if cancel is not None:
                cancel.remove_hook(terminate)

    def front(self, token_ids: Sequence[int], style: npt.NDArray[np.float32], speed: float,
              cancel: CancelToken | None = None) -> tuple[npt.NDArray[np.int64], DecodeState]:
        """Everything but the generator, over the whole chunk (ids wrapped in BOS/EOS zeros)."""
        style = np.asarray(style, dtype=np.float32).reshape(1, -1)
        durations, features, source = self._run(self._front, {
            "tokens": np.asarray([list(token_ids)], dtype=np.int64), "style": style,
            "speed": np.asarray([speed], dtype=np.float32)}, cancel)
        durations = np.asarray(durations, dtype=np.int64).reshape(-1)
        return durations, DecodeState(durations, features, source, style)

    def plan(self, state: DecodeState) -> WindowPlan:
        return plan_windows(state.steps, **self._layout)

    def _inputs(self, state: DecodeState, spans: Spans, per_step: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Generator inputs for ``spans`` concatenated (source: each span's samples, then
        the padding after the last; STFT frames across a junction fall in margins), and
        ``per_step`` series expanded to each norm's rate."""
        feed = {FEATURES: np.concatenate([state.features[:, :, a:z] for a, z in spans], axis=2),
                SOURCE: np.concatenate([state.source[:, :, a * STEP:z * STEP] for a, z in spans]
                                       + [state.source[:, :, spans[-1][1] * STEP:spans[-1][1] * STEP + 2 * PAD]], axis=2),
                "style": state.style}
        for kind, values in per_step.items():
            for a, b in set(self._rate):
                # The extra position (reflection pad) takes the last step's value.
                feed[f"/windowed/{kind}_{a}x{b}"] = np.concatenate(
                    [np.repeat(values, a), np.repeat(values[-1:], b)]).astype(np.float32).reshape(1, 1, -1)
        return feed

    def decode(self, state: DecodeState, cancel: CancelToken | None = None) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the chunk's audio: the head after the probe run, then the rest after
        the run over the whole chunk. Raises SynthesisCancelled when cancelled."""
        plan = self.plan(state)
        spans = [r for r, _c, _w in plan.probe]
        pos = [np.arange(a, z) for a, z in spans]
        raw = np.concatenate([np.where((p >= c0) & (p < c1), w, 0.0) for p, (_r, (c0, c1), w) in zip(pos, plan.probe)])
        audio = self._run(self._probe, self._inputs(state, spans, {"weights": raw / raw.mean()}), cancel)[0].reshape(-1)
        if plan.rest is None:
            yield audio.astype(np.float32)
            return
        half = self._fade // 2
        held = yield from self._emit(None, audio[:plan.head[1] * STEP + half])
        # All ones: every norm takes the whole chunk's statistics, i.e. the full model.
        steps = state.steps
        exact = self._run(self._probe, self._inputs(state, [(0, steps)], {"weights": np.ones(steps)}), cancel)[0]
        yield from self._emit(held, exact.reshape(-1)[plan.rest[0] * STEP - half:], last=True)

    def _emit(self, held: np.ndarray | None, piece: np.ndarray, last: bool = False
              ) -> Iterator[npt.NDArray[np.float32]]:
        """Cross-fade ``piece``'s first samples with the held end of the previous piece,
        yield up to its own end (less what the next fade needs), return that end."""
        n = self._fade
        if held is not None and n:
            ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)  # raised cosine
            piece = np.concatenate([held * (1 - ramp) + piece[:n] * ramp, piece[n:]])
        if last or not n:
            yield piece.astype(np.float32)
            return None
        yield piece[:-n].astype(np.float32)
        return piece[-n:]  # type: ignore[return-value]
