"""Kokoro-82M's ONNX graph: edited, optimised once and cached (the engine's loading half).

Fast path: onnxruntime's own optimised graph of the model, saved once in the
cache directory (``<cache>/onnx/``) and loaded with graph optimisation off, so
a start neither imports the ``onnx`` package nor re-runs the optimiser. The
entry's name is a digest of everything the saved graph depends on: the model's
sha256, our graph edit's version, the dequantisation choice, the onnxruntime
version, the optimisation level and the CPU's instruction-set flags
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

For trimmed runs the edited graph is split where the decoder starts into two
parts, each with its own cache entry (trim.py, trim_norms.py). Running the
sessions is kokorod/engine/onnx_engine.py's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kokorod.engine.conv_gemm import has_vnni, rewrite_convs
from kokorod.engine.fast_ops import KERNEL_CHOICES, rewrite_snakes
from kokorod.engine.trim import split_model
from kokorod.engine.trim_norms import norm_rates, weigh_norms
from kokorod.errors import AssetError, InputError
from kokorod.model_facts import kokoro_config_path, load_vocab  # noqa: F401  (the leaf's; re-exported)

log = logging.getLogger("kokorod.engine")

DURATIONS_TENSOR = "/encoder/Cast_output_0"
# Bump whenever prepare_model's output changes, so cached graphs are rebuilt.
GRAPH_EDIT_VERSION = 3
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
GRAPH_CACHE_KEEP = 8  # entries kept (least recently used go): two engine candidates of two parts each, and more
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


def prepare_model(model: Any, *, dequantize: str = "none", kernels: str = "export",
                  cpu: str | None = None) -> dict[str, int]:
    """Edit an ``onnx.ModelProto`` in place: add the durations output and, for
    ``dequantize="conv"``, replace the int8 convolutions by fp32 ones; for
    ``kernels="fast"``, the Snake activations' ``Sin`` by nodes onnxruntime
    runs faster (kokorod/engine/fast_ops.py) and, where ``cpu`` (default: this
    machine's ``cpu_isa()``) has VNNI, the int8 convolutions by signed-weight
    matrix products (kokorod/engine/conv_gemm.py, bit-identical output).
    Returns how many nodes of each kind were rewritten."""
    import onnx

    if dequantize not in DEQUANTIZE_CHOICES:
        raise InputError(f"unknown dequantize choice {dequantize!r}", f"use one of {', '.join(DEQUANTIZE_CHOICES)}")
    if kernels not in KERNEL_CHOICES:
        raise InputError(f"unknown kernels choice {kernels!r}", f"use one of {', '.join(KERNEL_CHOICES)}")
    if DURATIONS_TENSOR not in {o.name for o in model.graph.output}:
        model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS_TENSOR, onnx.TensorProto.INT64, None))
    counts: dict[str, int] = {}
    if dequantize == "conv":
        counts["ConvInteger"] = _dequantize_convs(model)
    if kernels == "fast" and (snakes := rewrite_snakes(model)):
        counts["Sin"] = snakes
    if kernels == "fast" and has_vnni(cpu_isa() if cpu is None else cpu) and (convs := rewrite_convs(model)):
        counts["ConvInteger"] = convs
    if counts:
        _prune(model.graph, onnx)  # what the edits left unread: the squares' exponent, the uint8 weights
    return counts


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


def graph_key(model_sha256: str, dequantize: str, kernels: str = "export") -> dict[str, str]:
    """Everything the optimised graph, and so the audio, depends on: the
    GraphCache's key, and part of the rendered-chunk cache's engine identity."""
    import onnxruntime as ort

    return {
        "model_sha256": model_sha256,
        "graph_edit": str(GRAPH_EDIT_VERSION),
        "dequantize": dequantize,
        "kernels": kernels,
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
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class GraphLoader:
    """Sessions for the graph's parts ("whole", or a trimmed run's front and
    back): each from its cache entry, else edited, optimised and cached."""

    def __init__(self, ort: Any, model_path: Path, *, dequantize: str, trim_cut: str,
                 graph_caches: dict[str, GraphCache], options: Callable[..., Any], kernels: str = "export") -> None:
        self._ort = ort
        self.model_path = model_path
        self.dequantize = dequantize
        self.kernels = kernels
        self.trim_cut = trim_cut
        self.graph_caches = graph_caches
        self._options = options  # the engine's SessionOptions (optimize=True/False)
        self._split: dict[str, bytes] = {}  # the parts' graphs while they load (slow path only)
        self.loaded_from_cache = True

    def load_all(self, parts: tuple[str, ...]) -> list[Any]:
        try:
            return [self._load(part) for part in parts]
        finally:
            self._split.clear()

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
        prepare_model(model, dequantize=self.dequantize, kernels=self.kernels)
        if part == "whole":
            return bytes(model.SerializeToString())
        front, back = split_model(model, self.trim_cut)
        weigh_norms(back, norm_rates(back, self.trim_cut))
        self._split = {f"{self.trim_cut}-front": front.SerializeToString(),
                       f"{self.trim_cut}-back": back.SerializeToString()}
        return self._split.pop(part)
