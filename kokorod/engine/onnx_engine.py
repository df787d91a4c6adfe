"""Kokoro-82M on onnxruntime, the offline default engine.

Loading, fast path: onnxruntime's own optimised graph of the model, saved once
in the cache directory (``<cache>/onnx/``) and loaded with graph optimisation
off, so a start neither imports the ``onnx`` package nor re-runs the optimiser.
The entry's name is a digest of everything the saved graph depends on: the
model's sha256, our graph edit's version, the dequantisation choice, the
onnxruntime version, the optimisation level and the CPU's instruction-set flags
(onnxruntime's NCHWc layout, part of the optimised graph, is sized for the
ISA). Anything else, or a failure to load a cached entry, takes the slow path:
``onnx.load``, our graph edit (below), a session that optimises the graph and
writes the entry for the next start.

The graph edit: the export only declares ``audio`` as an output. The
per-phoneme durations (round(sum(sigmoid)/speed), clamped to ≥ 1) are an
internal tensor, which we add to the graph outputs so one run returns both.
Optionally (``dequantize="conv"``) the int8 convolutions (DynamicQuantizeLinear
→ ConvInteger → bias add → rescale) become fp32 ``Conv`` nodes with the
dequantised weights; see ``DEQUANTIZE_CHOICES``.

Trimmed runs (``trim_context``, the daemon's default): the edited graph is split
where the decoder starts into two sessions, each with its own cache entry, and
the second decodes only the frames next to the speech (trim.py, trim_norms.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kokorod.engine.base import SAMPLE_RATE, SAMPLES_PER_FRAME, CancelToken, EngineOutput, SynthesisCancelled
from kokorod.engine.trim import CUTS, DEFAULT_CUT, TrimPlan, place, plan_trim, silent_ids, slice_inputs, split_model
from kokorod.engine.trim_norms import frame_weights, norm_rates, rates_of, weigh_norms, weight_feed
from kokorod.errors import AssetError, InputError
from kokorod.model_facts import kokoro_config_path, load_vocab  # noqa: F401  (moved to the leaf; re-exported)

log = logging.getLogger("kokorod.engine")

DURATIONS_TENSOR = "/encoder/Cast_output_0"
# Bump whenever prepare_model's output changes, so cached graphs are rebuilt.
GRAPH_EDIT_VERSION = 1
# Bump whenever the trimmed parts' edit (trim.py, trim_norms.py) changes.
TRIM_EDIT_VERSION = 1
# "none": run the int8 export as it is (the default: on the AVX2 machine we
# measured, an AMD EPYC without VNNI, onnxruntime's int8 ConvInteger was faster
# than fp32 Conv with the dequantised weights, RTF 0.80-0.90 vs 0.98-1.04 by
# CPU time; a VNNI CPU gives int8 more hardware help, not less). "conv": fp32
# weights for the 87 int8 convolutions (same durations, log-spectrogram
# correlation 0.97-0.99 with the int8 model's audio; ~150 MB more resident
# memory), for CPUs where fp32 convolutions turn out faster.
DEQUANTIZE_CHOICES = ("none", "conv")
GRAPH_CACHE_DIR = "onnx"
GRAPH_CACHE_KEEP = 6  # entries kept in the cache directory (least recently used go)
# Instruction-set extensions that change which kernels or graph layout
# onnxruntime picks; part of the cache key.
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_isa() -> str:
    """The CPU's architecture and the instruction-set flags in ``_ISA_FLAGS`` it has."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = set(line.partition(":")[2].split())
                    break
    except OSError:  # not Linux: the architecture alone
        pass
    return "+".join([platform.machine() or "unknown", *sorted(flags & set(_ISA_FLAGS))])


# -- the graph edit ---------------------------------------------------------------


def prepare_model(model: Any, *, dequantize: str = "none") -> dict[str, int]:
    """Edit an ``onnx.ModelProto`` in place: add the durations output and, for
    ``dequantize="conv"``, replace the int8 convolutions by fp32 ones. Returns
    how many nodes of each kind were rewritten."""
    import onnx

    if dequantize not in DEQUANTIZE_CHOICES:
        raise InputError(f"unknown dequantize choice {dequantize!r}", f"use one of {', '.join(DEQUANTIZE_CHOICES)}")
    if DURATIONS_TENSOR not in {o.name for o in model.graph.output}:
        model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS_TENSOR, onnx.TensorProto.INT64, None))
    if dequantize == "conv":
        return {"ConvInteger": _dequantize_convs(model)}
    return {}


def _dequantize_convs(model: Any) -> int:
    """onnxruntime's dynamic quantisation writes each convolution as

        x ─ DynamicQuantizeLinear ─ xq, xs, xz
        ConvInteger(xq, Wq, xz, Wz) [─ Add(bias_q)] ─ Cast(float) ─ Mul(xs·Ws)

    with ``bias_q = Reshape(Cast(Floor(bias / (xs·Ws))))``. That is
    ``Conv(x, (Wq - Wz)·Ws, bias)`` up to int8 rounding; we write that node in
    place of the pattern (same attributes) and drop what nothing reads any more.
    Patterns that do not match exactly are left as they are."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def sole(name: str, op: str) -> Any:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def made_by(name: str, op: str) -> Any:
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    replaced: dict[int, Any] = {}  # id(last node of a pattern) -> its Conv
    dropped: set[int] = set()
    new_weights: dict[str, Any] = {}
    for conv in list(graph.node):
        if conv.op_type != "ConvInteger" or len(conv.input) != 4:
            continue
        xq, wq, xz, wz = conv.input
        dql = made_by(xq, "DynamicQuantizeLinear")
        if dql is None or dql.output[2] != xz or wq not in inits or wz not in inits:
            continue
        x, xs = dql.input[0], dql.output[1]
        pattern = [conv]
        last = conv
        bias = None
        add = sole(conv.output[0], "Add")
        if add is not None:
            other = add.input[1] if add.input[0] == conv.output[0] else add.input[0]
            reshape = made_by(other, "Reshape")
            cast_b = made_by(reshape.input[0], "Cast") if reshape is not None else None
            floor = made_by(cast_b.input[0], "Floor") if cast_b is not None else None
            div = made_by(floor.input[0], "Div") if floor is not None else None
            if div is None or div.input[0] not in inits:
                continue
            bias = div.input[0]
            pattern.append(add)
            last = add
        cast = sole(last.output[0], "Cast")
        mul = sole(cast.output[0], "Mul") if cast is not None else None
        if mul is None:
            continue
        scale = mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0]
        scale_mul = made_by(scale, "Mul")
        if scale_mul is None or xs not in scale_mul.input:
            continue
        ws = scale_mul.input[1] if scale_mul.input[0] == xs else scale_mul.input[0]
        if ws not in inits or numpy_helper.to_array(inits[wz]).size != 1 or numpy_helper.to_array(inits[ws]).size != 1:
            continue  # per-channel scales: not the pattern we know
        weight_name = f"{wq}_dequantized"
        if weight_name not in new_weights:
            w = numpy_helper.to_array(inits[wq]).astype(np.float32) - np.float32(numpy_helper.to_array(inits[wz]))
            new_weights[weight_name] = numpy_helper.from_array(
                (w * np.float32(numpy_helper.to_array(inits[ws]))).astype(np.float32), weight_name)
        node = helper.make_node("Conv", [x, weight_name, *([bias] if bias else [])], [mul.output[0]],
                                name=f"{mul.output[0]}_dequantized")  # output names are unique
        node.attribute.extend(conv.attribute)
        replaced[id(mul)] = node
        dropped.update(id(n) for n in (*pattern, cast))
    if not replaced:
        return 0
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_weights.values())
    _prune(graph, onnx)
    return len(replaced)


def _prune(graph: Any, onnx: Any) -> None:
    """Drop nodes and initializers that no graph output depends on."""
    needed = {o.name for o in graph.output}

    def subgraph_inputs(node: Any) -> set[str]:
        names: set[str] = set()
        for attr in node.attribute:
            subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                for inner in sub.node:
                    names.update(inner.input)
                    names.update(subgraph_inputs(inner))
        return names

    kept = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
            needed.update(subgraph_inputs(node))
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


# -- sessions ---------------------------------------------------------------------


def graph_key(model_sha256: str, dequantize: str) -> dict[str, str]:
    """Everything the optimised graph, and so the audio, depends on: the
    GraphCache's key, and part of the rendered-chunk cache's engine identity."""
    import onnxruntime as ort

    return {
        "model_sha256": model_sha256,
        "graph_edit": str(GRAPH_EDIT_VERSION),
        "dequantize": dequantize,
        "onnxruntime": ort.__version__,
        "optimization": "all",
        "cpu": cpu_isa(),
    }


@dataclass(frozen=True)
class GraphCache:
    """Where onnxruntime's optimised graph for one (model, options, machine) lives."""

    directory: Path
    key: dict[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:20]

    @property
    def path(self) -> Path:
        return self.directory / f"kokoro-{self.digest}.onnx"

    def save_key(self) -> None:
        _atomic_write_text(self.path.with_suffix(".json"), json.dumps(self.key, indent=1, sort_keys=True) + "\n")

    def prune(self, keep: int = GRAPH_CACHE_KEEP) -> None:
        """Keep the ``keep`` most recently used entries (ours is touched on use)."""
        try:
            entries = sorted(self.directory.glob("kokoro-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return
        for old in entries[keep:]:
            for path in (old, old.with_suffix(".json")):
                path.unlink(missing_ok=True)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class OnnxEngine:
    name = "onnx"
    sample_rate = SAMPLE_RATE

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
        parts and decode only ``trim_context`` frames of each edge's silence
        (kokorod/engine/trim.py; None: one part, everything decoded); ``trim_cut``:
        where the graph is split (``trim.CUTS``)."""
        import onnxruntime as ort

        if dequantize not in DEQUANTIZE_CHOICES:
            raise InputError(f"unknown dequantize choice {dequantize!r}", f"use one of {', '.join(DEQUANTIZE_CHOICES)}")
        self._ort = ort
        self.model_path = Path(model_path)
        self.dequantize = dequantize
        self.threads = threads
        self.spinning = spinning
        if trim_cut not in CUTS:
            raise InputError(f"unknown trim cut {trim_cut!r}", f"use one of {', '.join(CUTS)}")
        if trim_context is not None and trim_context < 0:
            raise InputError("trim_context must be >= 0 frames", "use a small number of frames, e.g. 4, or None")
        self.trim_context = trim_context
        self.trim_cut = trim_cut
        # One cache entry per session: the whole graph, or the two parts of a
        # trimmed run (each part's key names it and the cut).
        self.parts = ("whole",) if trim_context is None else (f"{trim_cut}-front", f"{trim_cut}-back")
        self.graph_caches: dict[str, GraphCache] = {}
        if cache_dir is not None:
            if model_sha256 is None:
                from kokorod.assets.model import sha256_file

                model_sha256 = sha256_file(self.model_path)
            key = graph_key(model_sha256, dequantize)
            for part in self.parts:
                self.graph_caches[part] = GraphCache(
                    Path(cache_dir) / GRAPH_CACHE_DIR, key if part == "whole" else {**key, "part": part,
                                                                                      "trim_edit": str(TRIM_EDIT_VERSION)})
        # The first part's entry is the one `kokorod doctor` reports.
        self.graph_cache: GraphCache | None = self.graph_caches.get(self.parts[0])
        self._split: dict[str, bytes] = {}  # the parts' graphs while they load (slow path only)
        self.loaded_from_cache = True
        sessions = [self._load(part) for part in self.parts]
        self._split.clear()
        self._session = sessions[0]
        self._back = sessions[1] if len(sessions) > 1 else None
        self._rates = rates_of([i.name for i in self._back.get_inputs()]) if self._back is not None else []
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

    def _load(self, part: str) -> Any:
        ort = self._ort
        cache = self.graph_caches.get(part)
        if cache is not None and cache.path.is_file():
            try:
                session = ort.InferenceSession(str(cache.path), self._options(optimize=False),
                                               providers=["CPUExecutionProvider"])
            except Exception as exc:  # a damaged or foreign entry: rebuild it
                log.warning("cached ONNX graph %s unusable (%s); rebuilding it", cache.path, type(exc).__name__)
                with contextlib.suppress(OSError):
                    cache.path.unlink(missing_ok=True)
            else:
                with contextlib.suppress(OSError):
                    os.utime(cache.path)  # most recently used: kept by prune()
                return session
        self.loaded_from_cache = False
        model_bytes = self._prepared_bytes(part)
        options = self._options(optimize=True)
        # Saving an ORT_ENABLE_ALL graph logs that it is specific to this CPU;
        # the cache key says so already (cpu_isa), so only errors are logged.
        options.log_severity_level = 3
        tmp: Path | None = None
        if cache is not None:
            try:
                cache.directory.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(prefix=".graph-", suffix=".onnx", dir=cache.directory)
                os.close(fd)
                tmp = Path(tmp_name)
                options.optimized_model_filepath = str(tmp)
            except OSError as exc:  # a read-only cache only costs start-up time
                log.warning("cannot cache the ONNX graph in %s: %s", cache.directory, exc)
                tmp = None
        try:
            try:
                session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                if tmp is None:
                    raise
                # onnxruntime writes the optimised graph while it builds the
                # session and fails the whole session when it cannot (a full
                # disk: "InvalidProtobuf: Protobuf serialization failed", not
                # an OSError). The graph in memory is fine: build it again
                # without the file, so a full cache only costs start-up time.
                log.warning("cannot cache the ONNX graph in %s (%s); running without the cache",
                            cache.directory if cache is not None else "-", type(exc).__name__)
                options.optimized_model_filepath = ""
                tmp.unlink(missing_ok=True)
                tmp = None
                session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
            if cache is not None and tmp is not None and tmp.stat().st_size > 0:
                try:
                    os.replace(tmp, cache.path)  # atomic: a concurrent start sees all of it or nothing
                    cache.save_key()
                    cache.prune()
                except OSError as exc:
                    log.warning("cannot cache the ONNX graph in %s: %s", cache.directory, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
        return session

    def _prepared_bytes(self, part: str) -> bytes:
        """The edited graph, or one part of it split at ``self.trim_cut``."""
        import onnx

        if part in self._split:
            return self._split.pop(part)
        try:
            model = onnx.load(str(self.model_path))
        except Exception as exc:
            raise AssetError(f"cannot read ONNX model {self.model_path}: {exc}", "delete it and run: kokorod fetch") from exc
        prepare_model(model, dequantize=self.dequantize)
        if part == "whole":
            return bytes(model.SerializeToString())
        front, back = split_model(model, self.trim_cut)
        weigh_norms(back, norm_rates(back, self.trim_cut))
        self._split = {f"{self.trim_cut}-front": front.SerializeToString(),
                       f"{self.trim_cut}-back": back.SerializeToString()}
        return self._split.pop(part)

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
                if self._back is None:
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
        (decoded,) = self._back.run(["audio"], back_feed, run_options)
        return place(plan, decoded), durations

    def plan(self, token_ids: list[int], durations: Any) -> TrimPlan:
        """Which frames of a run this engine decodes (all of them when not trimming)."""
        d = np.asarray(durations, dtype=np.int64).reshape(-1)
        if self.trim_context is None:
            total = int(d.sum())
            return TrimPlan(0, total, total)
        return plan_trim(token_ids, d, self._silent, self.trim_context)

    @property
    def overhead_frames(self) -> int | None:
        """Duration frames a trimmed run decodes beyond the speech itself (each
        ``SAMPLES_PER_FRAME`` samples): the context kept at both edges, or fewer
        when an edge is shorter. None when not trimming: then every run decodes
        its whole edge silence, which depends on the run (``edge_frames``)."""
        return None if self.trim_context is None else 2 * self.trim_context

    @property
    def overhead_samples(self) -> int | None:
        """``overhead_frames`` in samples at 24 kHz."""
        frames = self.overhead_frames
        return None if frames is None else frames * SAMPLES_PER_FRAME
