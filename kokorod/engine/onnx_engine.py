"""Kokoro-82M on onnxruntime, the offline default engine: running the model.

One run: phoneme ids, a voice's style row and the speed in; audio and the
per-phoneme durations out, cancellable mid-graph (``RunOptions.terminate``).
Trimmed runs (``trim_context``, the daemon's default) go through the graph's
two parts and decode only the frames next to the speech (trim.py,
trim_norms.py). Loading, editing and caching the graph is
kokorod/engine/onnx_graph.py's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLE_RATE, SAMPLES_PER_FRAME, CancelToken, EngineOutput, SynthesisCancelled
from kokorod.engine.onnx_graph import (
    DEQUANTIZE_CHOICES, DURATIONS_TENSOR, GRAPH_CACHE_DIR, TRIM_EDIT_VERSION, GraphCache, GraphLoader, graph_key,
    load_vocab,
)
from kokorod.engine.fast_ops import KERNEL_CHOICES
from kokorod.engine.trim import CUTS, DEFAULT_CUT, TrimPlan, place, plan_trim, silent_ids, slice_inputs, trail_context
from kokorod.engine.trim_norms import frame_weights, rates_of, weight_feed
from kokorod.errors import InputError

if TYPE_CHECKING:
    from kokorod.engine.choice import Choice

__all__ = ["OnnxEngine", "load_vocab"]  # load_vocab lives in kokorod.model_facts; re-exported for old imports


class OnnxEngine:
    name = "onnx"
    sample_rate = SAMPLE_RATE
    # Why this engine runs (--engine auto's measurement, a record, or forced);
    # set by kokorod.speech.build, reported in ready, /metrics and the log.
    choice: "Choice | None" = None

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = None,
        dequantize: str = "none",
        cache_dir: Path | None = None,
        model_sha256: str | None = None,
        spinning: bool = False,
        trim_context: int | None = None,
        trim_cut: str = DEFAULT_CUT,
        trim_trail: int | None = None,
        kernels: str = "fast",
    ) -> None:
        """``threads``: onnxruntime's intra-op threads (None: its default, one per
        physical core). ``cache_dir``: where to keep the optimised graph (None: no
        cache, the graph is optimised at every load). ``model_sha256``: the model
        file's hash when the caller already verified it (else it is computed for
        the cache key). ``spinning``: whether intra-op threads spin-wait for work
        between operators (onnxruntime's default) or sleep: off by default, since
        the daemon shares its machine (on the 2-core machine we measured, 2
        spinning threads were the slowest setting under load, and spinning burns
        CPU that other processes want). ``trim_context``: run the graph in two
        parts and decode only ``trim_context`` frames of the silence before the
        speech and ``trim_trail`` after it (default ``trim.trail_context``;
        kokorod/engine/trim.py; None: one part, everything decoded); ``trim_cut``:
        where the graph is split (``trim.CUTS``). ``kernels``: "fast" runs the
        generator's Snake activations as nodes onnxruntime runs faster
        (kokorod/engine/fast_ops.py) and, on a CPU with VNNI, the int8
        convolutions as matrix products (kokorod/engine/conv_gemm.py); "export"
        the export's nodes."""
        import onnxruntime as ort

        if dequantize not in DEQUANTIZE_CHOICES:
            raise InputError(f"unknown dequantize choice {dequantize!r}", f"use one of {', '.join(DEQUANTIZE_CHOICES)}")
        self._ort = ort
        self.model_path = Path(model_path)
        if kernels not in KERNEL_CHOICES:
            raise InputError(f"unknown kernels choice {kernels!r}", f"use one of {', '.join(KERNEL_CHOICES)}")
        self.dequantize = dequantize
        self.kernels = kernels
        self.threads = threads
        self.spinning = spinning
        if trim_cut not in CUTS:
            raise InputError(f"unknown trim cut {trim_cut!r}", f"use one of {', '.join(CUTS)}")
        if trim_context is not None and trim_context < 0:
            raise InputError("trim_context must be >= 0 frames", "use a small number of frames, e.g. 4, or None")
        if trim_trail is not None and trim_trail < 0:
            raise InputError("trim_trail must be >= 0 frames", "use a small number of frames, e.g. 2, or None")
        self.trim_context = trim_context
        self.trim_trail: int | None = None
        if trim_context is not None:
            self.trim_trail = trail_context(trim_context) if trim_trail is None else trim_trail
        self.trim_cut = trim_cut
        # One cache entry per session: the whole graph, or the two parts of a
        # trimmed run (each part's key names it and the cut).
        self.parts = ("whole",) if trim_context is None else (f"{trim_cut}-front", f"{trim_cut}-back")
        if self._back_elsewhere:  # a subclass runs the back part itself (openvino_engine.py)
            self.parts = (f"{trim_cut}-front",)
        self.graph_caches: dict[str, GraphCache] = {}
        if cache_dir is not None:
            if model_sha256 is None:
                from kokorod.assets.model import sha256_file

                model_sha256 = sha256_file(self.model_path)
            key = graph_key(model_sha256, dequantize, kernels)
            for part in self.parts:
                self.graph_caches[part] = GraphCache(
                    Path(cache_dir) / GRAPH_CACHE_DIR, key if part == "whole" else {**key, "part": part,
                                                                                      "trim_edit": str(TRIM_EDIT_VERSION)})
        # The first part's entry is the one `kokorod doctor` reports.
        self.graph_cache: GraphCache | None = self.graph_caches.get(self.parts[0])
        loader = GraphLoader(ort, self.model_path, dequantize=dequantize, trim_cut=trim_cut,
                             graph_caches=self.graph_caches, options=self._options, kernels=kernels)
        sessions = loader.load_all(self.parts)
        self.loaded_from_cache = loader.loaded_from_cache
        self._session = sessions[0]
        self._back = sessions[1] if len(sessions) > 1 else None
        self._rates = rates_of(self._back_input_names())
        self.vocab = load_vocab()
        self._silent = silent_ids(self.vocab)
        self._lock = threading.Lock()

    def _options(self, *, optimize: bool) -> Any:
        ort = self._ort
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        # One synthesis at a time per engine (the scheduler serialises), so the
        # inter-op pool would only add idle threads.
        options.inter_op_num_threads = 1
        # Every run has a new input length, so a memory pattern planned for one
        # shape is no use to the next; without it buffers are freed as soon as
        # they are consumed. Peak RSS of a 300-character chunk 818 -> 750 MB at
        # the same CPU time per audio second (3 alternating runs of each).
        options.enable_mem_pattern = False
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        return options

    def run(
        self,
        token_ids: list[int],
        style: npt.NDArray[np.float32],
        speed: float,
        cancel: CancelToken | None = None,
    ) -> EngineOutput:
        run_options = self._ort.RunOptions()
        # Give the arena's unused chunks back after each run: a long input's
        # buffers would otherwise stay resident for the daemon's life (RSS
        # 489 MB instead of 196 MB after one 250-phoneme run, at no measurable
        # speed cost).
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

        def terminate() -> None:
            run_options.terminate = True

        if cancel is not None:
            cancel.raise_if_cancelled()
            cancel.add_hook(terminate)
        feed = {
            "tokens": np.asarray([token_ids], dtype=np.int64),
            "style": np.asarray(style, dtype=np.float32).reshape(1, -1),
            "speed": np.asarray([speed], dtype=np.float32),
        }
        try:
            with self._lock:
                if self.parts == ("whole",):
                    audio, durations = self._session.run(["audio", DURATIONS_TENSOR], feed, run_options)
                else:
                    audio, durations = self._run_trimmed(token_ids, feed, run_options, cancel)
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

    def _run_trimmed(self, token_ids: list[int], feed: dict[str, Any], run_options: Any,
                     cancel: CancelToken | None) -> tuple[Any, Any]:
        """Front part over the whole chunk, then the back part over the frames
        ``plan_trim`` keeps; the audio on the whole chunk's timeline."""
        names = list(CUTS[self.trim_cut])
        durations, *cut = self._session.run([DURATIONS_TENSOR, *names], feed, run_options)
        if cancel is not None:
            cancel.raise_if_cancelled()
        plan = self.plan(token_ids, durations)
        back_feed: dict[str, Any] = slice_inputs(self.trim_cut, dict(zip(names, cut)), plan)
        back_feed["style"] = feed["style"]
        back_feed.update(weight_feed(frame_weights(plan), self._rates))
        return place(plan, self._decode(back_feed, run_options, cancel)), durations

    # The back part, here onnxruntime's; a subclass may run it elsewhere.
    _back_elsewhere = False

    def _back_input_names(self) -> list[str]:
        return [i.name for i in self._back.get_inputs()] if self._back is not None else []

    def _decode(self, back_feed: dict[str, Any], run_options: Any, cancel: CancelToken | None) -> Any:
        (decoded,) = self._back.run(["audio"], back_feed, run_options)
        return decoded

    def plan(self, token_ids: list[int], durations: Any) -> TrimPlan:
        """Which frames of a run this engine decodes (all of them when not trimming)."""
        d = np.asarray(durations, dtype=np.int64).reshape(-1)
        if self.trim_context is None:
            total = int(d.sum())
            return TrimPlan(0, total, total)
        return plan_trim(token_ids, d, self._silent, self.trim_context, self.trim_trail)

    @property
    def overhead_frames(self) -> int | None:
        """Duration frames a trimmed run decodes beyond the speech itself (each
        ``SAMPLES_PER_FRAME`` samples): the context kept at both edges, or fewer
        when an edge is shorter. None when not trimming: then every run decodes
        its whole edge silence, which depends on the run (``edge_frames``)."""
        if self.trim_context is None or self.trim_trail is None:
            return None
        return self.trim_context + self.trim_trail

    @property
    def overhead_samples(self) -> int | None:
        """``overhead_frames`` in samples at 24 kHz."""
        frames = self.overhead_frames
        return None if frames is None else frames * SAMPLES_PER_FRAME
