"""Windowed decoding of the Kokoro-82M int8 ONNX model: audio out before a chunk is done.

The graph is split in memory into
* a *front* (text encoder, durations, F0/energy, the decoder's 40/80 Hz AdaIN
  blocks and the harmonic sine source), run once over the whole chunk, so
  prosody, the decoder blocks' instance norms and the source's phase (a
  cumulative sum of F0) are exactly the full model's; 10-15% of a full run;
* the *generator* (iSTFTNet: source STFT, upsampling convs, AdaIN resblocks,
  iSTFT), the rest of the cost, run over windows of its 80 Hz input ("steps",
  300 samples each) with a few steps of context either side.

The generator's 44 AdaIN instance norms take mean/variance over *time*, so a
window's audio depends on the whole chunk. Normalised by its own statistics a
window sounds different (DNSMOS down 0.1-0.2: the BOS/EOS silence carries much of
the variance); normalised by *estimates* of the chunk's statistics, as this module
once did for every window, levels drifted ±20-28% per window and DNSMOS OVRL fell
0.15-0.25 on 2 of 5 bench sentences. So only the start is windowed:
* the first run (the "probe") decodes, concatenated, the head (first window), the
  chunk's last steps and short islands sampled from the middle, with every norm's
  mean/variance replaced by a weighted mean over that concatenation (a clean
  position weighs its share of the chunk, positions near a junction zero); each
  layer's estimate is made from activations normalised by the estimates above it.
  Its head is the first audio; it reports the head's moments per norm;
* optional middle windows (``windowed`` > ``first``) are normalised with those
  moments plus the probe's estimate for the steps not decoded yet, and report theirs;
* the rest of the chunk is decoded in one run whose norms pool its own positions
  with the decoded steps' moments: those are most of the chunk and exact, so its
  statistics, hence its audio, are nearly the full decode's (the int8 dynamic
  quantisation of a shorter run still differs: ~16 dB SNR against it).
The cost: later pieces come only after that run (the bench's ``stall_s``).
Seams get a short cross-fade.
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
Moments = tuple[np.ndarray, np.ndarray, np.ndarray]  # count, mean, sum of squared deviations (per channel)


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
    """In steps. ``probe``: the first run's (span, clean span, weight) triples;
    ``middle``: the windows normalised with estimated statistics after the head;
    ``rest`` (from the last window's end to the chunk's end) is decoded in one run
    with the pooled statistics; None when the whole chunk is one run (no windows)."""

    probe: list[tuple[tuple[int, int], tuple[int, int], float]]
    head: tuple[int, int]
    middle: Spans
    rest: tuple[int, int] | None

    @property
    def edges(self) -> list[int]:
        """Where one piece's audio meets the next's, in steps."""
        return [e for _s, e in [self.head, *self.middle]] if self.rest else []


def plan_windows(steps: int, *, first: int, tail: int, islands: int, island: int, margin: int,
                 island_margin: int, growth: float, largest: int, windowed: int) -> WindowPlan:
    """First window ``first`` steps; then windows growing by ``growth`` up to ``largest``
    until ``windowed`` steps are covered; the rest in one run."""
    if steps <= 2 * (first + tail) + islands * (island + 2 * island_margin):
        # Too short to gain anything: one run over the whole chunk, i.e. the full decode.
        return WindowPlan([((0, steps), (0, steps), 1.0)], (0, steps), [], None)
    end = steps - tail
    probe = [((0, first + margin), (0, first), 1.0)]
    gap = (end - first) / islands
    share = (end - first) / (islands * island)  # middle steps each clean island step stands for
    for i in range(islands):
        c = int(first + (i + 0.5) * gap - island / 2)
        probe.append(((c - island_margin, c + island + island_margin), (c, c + island), share))
    probe.append(((end - margin, steps), (end, steps), 1.0))
    middle: Spans = []
    size, s, split = float(first), first, min(max(windowed, first), end)
    while s < split:
        size = min(size * growth, float(largest))
        e = split if split - (s + int(size)) < size / 2 else s + int(size)  # no stub at the end
        middle.append((s, e))
        s = e
    return WindowPlan(probe, (0, first), middle, (s, steps))


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


def _mask(rate: tuple[int, int]) -> str:
    return "/windowed/mask_{}x{}".format(*rate)


def _frac(rate: tuple[int, int]) -> str:
    return "/windowed/frac_{}x{}".format(*rate)


def _combine(parts: list[Moments]) -> Moments:
    """Pooled count, mean and squared deviations of disjoint parts (Chan et al.)."""
    n = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / n
    m2 = sum(p[2] + p[0] * (p[1] - mean) ** 2 for p in parts)
    return n, mean, m2


class WindowedOnnxDecoder:
    """``front`` once per chunk, then ``decode`` yields 24 kHz float32 pieces whose
    concatenation is ``sum(durations) * 600`` samples, like ``OnnxEngine.run``.

    Sizes are in steps (12.5 ms). Use from one thread at a time; ``CancelToken.cancel``
    may come from another and stops the run in flight."""

    def __init__(self, model_path: Path, *, threads: int | None = None, spinning: bool = True,
                 first: int = 40, tail: int = 32, islands: int = 6, island: int = 4, margin: int = 4,
                 island_margin: int = 2, crossfade: int = 240, growth: float = 2.0, largest: int = 240,
                 windowed: int = 40) -> None:
        import onnx
        import onnx.utils
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        if crossfade % 2 or crossfade // 2 > (margin - 2) * STEP or islands < 1 or island < 1:
            raise ValueError("crossfade must be even and leave 2 steps of context in the margin; islands >= 1")
        try:
            model = onnx.load(str(model_path))
        except Exception as exc:
            raise AssetError(f"cannot read ONNX model {model_path}: {exc}", "delete it and run: kokorod fetch") from exc
        self._ort = ort
        self._layout: dict[str, Any] = dict(first=first, tail=tail, islands=islands, island=island, margin=margin,
                                            island_margin=island_margin, growth=growth, largest=largest,
                                            windowed=windowed)
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
        stat = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, 1])  # noqa: E731
        series = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, None])  # noqa: E731

        def with_moments(m: Any) -> None:
            """Outputs mean(dev * mask) and mean(sq * mask): a region's moments about
            the mean the norm used, from which regions are pooled in float64."""
            m.graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), "/windowed/time"))
            for norm, rate in zip(self._norms, self._rate):
                for src in (norm.dev, norm.sq):
                    m.graph.node.append(helper.make_node("Mul", [src, _mask(rate)], [src + "/windowed/masked"]))
                    m.graph.node.append(helper.make_node("ReduceMean", [src + "/windowed/masked", "/windowed/time"],
                                                         [src + "/windowed/moment"], keepdims=1))
                    m.graph.output.append(stat(src + "/windowed/moment"))
            m.graph.input.extend(series(_mask(r)) for r in rates)

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
        probe.graph.output.extend(stat(t) for n in self._norms for t in (n.mean, n.var))
        with_moments(probe)
        # The window graph: each norm's mean and variance are inputs.
        window = onnx.ModelProto()
        window.CopyFrom(generator)
        given = {t for n in self._norms for t in (n.mean, n.var)}
        kept = [n for n in window.graph.node if not (n.op_type == "ReduceMean" and n.output[0] in given)]
        del window.graph.node[:]
        window.graph.node.extend(kept)
        window.graph.input.extend(stat(t) for t in sorted(given))
        with_moments(window)
        _prune(window.graph)
        # The rest graph: each norm pools its own clean positions (mask scaled to
        # ReduceMean(x * w) = sum / n over the whole chunk) with what is known of the
        # steps before them: their mean and m2 / n, and the share ``frac`` of the
        # chunk's positions they are. Var = own + known m2 / n + frac (known mean - mean)^2.
        rest = onnx.ModelProto()
        rest.CopyFrom(generator)
        norm_of = {t: n for n in self._norms for t in (n.mean, n.var)}
        nodes = []
        for n in rest.graph.node:
            out = n.output[0]
            if not (n.op_type == "ReduceMean" and out in norm_of):
                nodes.append(n)
                continue
            norm, rate, x = norm_of[out], rate_of[out], n.input[0]
            known, m2, frac = norm.mean + "/windowed/known", norm.mean + "/windowed/known_m2", _frac(rate)
            n.input[0], n.output[0] = x + "/windowed/weighted", out + "/windowed/own"
            nodes += [helper.make_node("Mul", [x, _weights(rate)], [n.input[0]]), n]
            if out == norm.mean:
                nodes += [helper.make_node("Mul", [frac, known], [out + "/windowed/fk"]),
                          helper.make_node("Add", [n.output[0], out + "/windowed/fk"], [out])]
            else:
                t = out + "/windowed/"
                nodes += [helper.make_node("Sub", [known, norm.mean], [t + "d"]),
                          helper.make_node("Mul", [t + "d", t + "d"], [t + "d2"]),
                          helper.make_node("Mul", [frac, t + "d2"], [t + "fd2"]),
                          helper.make_node("Add", [n.output[0], t + "fd2"], [t + "sum"]),
                          helper.make_node("Add", [t + "sum", m2], [out])]
        del rest.graph.node[:]
        rest.graph.node.extend(nodes)
        rest.graph.input.extend(series(_weights(r)) for r in rates)
        rest.graph.input.extend(helper.make_tensor_value_info(_frac(r), TensorProto.FLOAT, [1, 1, 1]) for r in rates)
        rest.graph.input.extend(stat(n.mean + "/windowed/" + k) for n in self._norms for k in ("known", "known_m2"))
        sessions = [self._session(m) for m in (front, probe, window, rest)]
        self._front, self._probe, self._window, self._rest = sessions

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

    def _region(self, outputs: list[np.ndarray], centers: list[np.ndarray], mask: np.ndarray) -> list[Moments]:
        """Per norm, the moments of a run's ``mask``ed steps, from its moment outputs."""
        parts = []
        for i, (c, (a, b)) in enumerate(zip(centers, self._rate)):
            total = a * len(mask) + b
            s1 = outputs[2 * i].reshape(-1).astype(np.float64) * total
            s2 = outputs[2 * i + 1].reshape(-1).astype(np.float64) * total
            n = np.full_like(c, a * mask.sum() + b * mask[-1])
            parts.append((n, c + s1 / n, s2 - s1 ** 2 / n))
        return parts

    def decode(self, state: DecodeState, cancel: CancelToken | None = None) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the chunk's audio: the head after the probe run, one piece per middle
        window, then the rest. Raises SynthesisCancelled when cancelled."""
        plan = self.plan(state)
        spans = [r for r, _c, _w in plan.probe]
        pos = [np.arange(a, z) for a, z in spans]
        raw = np.concatenate([np.where((p >= c0) & (p < c1), w, 0.0) for p, (_r, (c0, c1), w) in zip(pos, plan.probe)])
        head = np.concatenate([np.where((p < plan.head[1]) & (j == 0), 1.0, 0.0) for j, p in enumerate(pos)])
        audio, *out = self._run(self._probe, self._inputs(state, spans, {"weights": raw / raw.mean(), "mask": head}), cancel)
        audio = audio.reshape(-1)
        if plan.rest is None:
            yield audio.astype(np.float32)
            return
        k, steps = len(self._norms), state.steps  # outputs: audio, (mean, var) per norm, (dev, sq) moments per norm
        centers = [out[2 * i].reshape(-1).astype(np.float64) for i in range(k)]
        variances = [out[2 * i + 1].reshape(-1).astype(np.float64) for i in range(k)]
        known = [[part] for part in self._region(out[2 * k:], centers, head)]  # exact-ish moments, per norm
        half, margin = self._fade // 2, int(self._layout["margin"])
        held = yield from self._emit(None, audio[:plan.head[1] * STEP + half])
        done = plan.head[1]
        for s, e in plan.middle:
            # Normalised with what is known, the steps not decoded yet standing at the probe's estimate.
            feed_stats, means = {}, []
            for i, norm in enumerate(self._norms):
                a, b = self._rate[i]
                n_left = np.full_like(centers[i], a * (steps - done) + b)
                n, mean, m2 = _combine([*known[i], (n_left, centers[i], variances[i] * n_left)])
                feed_stats[norm.mean] = mean.astype(np.float32).reshape(1, -1, 1)
                feed_stats[norm.var] = (m2 / n).astype(np.float32).reshape(1, -1, 1)
                means.append(mean)
            a0, z0 = max(0, s - margin), min(steps, e + margin)
            mask = ((np.arange(a0, z0) >= s) & (np.arange(a0, z0) < e)).astype(np.float64)
            feed = self._inputs(state, [(a0, z0)], {"mask": mask})
            feed.update(feed_stats)
            piece, *moments = self._run(self._window, feed, cancel)
            for i, part in enumerate(self._region(moments, means, mask)):
                known[i].append(part)
            done = e
            held = yield from self._emit(held, piece.reshape(-1)[(s - a0) * STEP - half:(e - a0) * STEP + half])
        # The rest in one run: its norms' statistics are its own positions' (most of
        # the chunk) pooled with the decoded steps', so they are nearly the full decode's.
        a0 = done - margin
        feed = self._inputs(state, [(a0, steps)], {"weights": (np.arange(a0, steps) >= done).astype(np.float64)})
        for a, b in set(self._rate):
            feed[_weights((a, b))] *= (a * (steps - a0) + b) / (a * steps + b)
            feed[_frac((a, b))] = np.full((1, 1, 1), a * done / (a * steps + b), np.float32)
        for i, norm in enumerate(self._norms):
            n, mean, m2 = _combine(known[i])
            a, b = self._rate[i]
            feed[norm.mean + "/windowed/known"] = mean.astype(np.float32).reshape(1, -1, 1)
            feed[norm.mean + "/windowed/known_m2"] = (m2 / (a * steps + b)).astype(np.float32).reshape(1, -1, 1)
        piece = self._run(self._rest, feed, cancel)[0].reshape(-1)
        yield from self._emit(held, piece[(done - a0) * STEP - half:], last=True)

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
