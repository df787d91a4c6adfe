"""The split engine: onnxruntime's int8 front, OpenVINO's bf16 decoder.

Kokoro's run splits where the generator's harmonic source has been computed
(``trim.CUTS["source"]``): the text encoder, the duration and F0 predictor and
the harmonic source (its sine generator's CumSum phase and the source STFT,
which bf16 ruins: DNSMOS OVRL 3.4 -> 1.8-2.6 measured in issue 16) run on the
int8 graph in onnxruntime, exactly as the reference engine runs them, so the
durations are the reference's by construction. The decoder and the generator
body run in OpenVINO on fp32 weights dequantised from the same file (no new
download) with ``INFERENCE_PRECISION_HINT=bf16``: on a CPU with AMX bf16 or
AVX-512 BF16, OpenVINO's bf16 convolutions.

Edge silence is trimmed as in the ONNX engine (trim.py, trim_norms.py): the
front runs over the whole chunk, the back over the kept frames, its instance
norms weighted for the dropped ones.

The back part is written once under ``<cache>/openvino/`` as OpenVINO IR
(keyed like the graph cache, weights in fp16) and OpenVINO's compiled blob is
kept in its own ``CACHE_DIR`` beside it, so a later start neither edits nor
compiles the graph.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from kokorod.engine.base import CancelToken, SynthesisCancelled
from kokorod.engine.onnx_engine import OnnxEngine
from kokorod.engine.onnx_graph import TRIM_EDIT_VERSION, GraphCache, graph_key
from kokorod.errors import AssetError
from kokorod.heap import release_free_heap

log = logging.getLogger("kokorod.engine")

CUT = "source"
OPENVINO_CACHE_DIR = "openvino"
# Frames of context at each edge when the user turned trimming off: more than
# any chunk has, so every frame is decoded (the split always runs in two parts).
_ALL_FRAMES = 1 << 30


class OpenVinoSplitEngine(OnnxEngine):
    name = "openvino-split"
    _back_elsewhere = True

    def __init__(self, model_path: Path, *, cache_dir: Path, model_sha256: str | None = None,
                 threads: int | None = None, trim_context: int | None = None, precision: str = "bf16",
                 spinning: bool = False) -> None:
        """``precision``: OpenVINO's inference precision for the back part
        ("bf16", or "f32" to compare); ``trim_context`` as the ONNX engine's
        (None: decode every frame)."""
        import openvino as ov

        self._trim_off = trim_context is None
        self.precision = precision
        if model_sha256 is None:
            from kokorod.assets.model import sha256_file

            model_sha256 = sha256_file(Path(model_path))
        super().__init__(model_path, threads=threads, dequantize="none", cache_dir=cache_dir,
                         model_sha256=model_sha256, spinning=spinning,
                         trim_context=_ALL_FRAMES if trim_context is None else trim_context, trim_cut=CUT,
                         trim_trail=_ALL_FRAMES if trim_context is None else None)
        directory = Path(cache_dir) / OPENVINO_CACHE_DIR
        key = {**graph_key(model_sha256, "conv"), "part": f"{CUT}-back", "trim_edit": str(TRIM_EDIT_VERSION),
               "target": "openvino"}
        self.back_graph = GraphCache(directory, key)
        path = self.back_graph.path.with_suffix(".xml")
        if not (path.is_file() and path.with_suffix(".bin").is_file()):
            self.loaded_from_cache = False
            _write_back_graph(ov, self.model_path, path)
            self.back_graph.save_key()
        core = ov.Core()
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # The daemon shares its machine: no thread pinned to a core.
            "ENABLE_CPU_PINNING": False,
            "CACHE_DIR": str(directory / "compiled"),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._compile = lambda: core.compile_model(str(path), "CPU", config)
        self._compiled = self._compile()
        self._request = self._compiled.create_infer_request()
        self._back_names = [p.get_any_name() for p in self._compiled.inputs]
        from kokorod.engine.trim_norms import rates_of

        self._rates = rates_of(self._back_names)

    def _back_input_names(self) -> list[str]:
        return []  # set once the back part is compiled (after the front loads)

    def _decode(self, back_feed: dict[str, Any], run_options: Any, cancel: CancelToken | None) -> Any:
        request = self._request
        if cancel is not None:
            cancel.add_hook(request.cancel)
        try:
            request.infer({name: back_feed[name] for name in self._back_names})
        except RuntimeError as exc:
            if cancel is not None and cancel.cancelled:
                # After a cancelled run, the compiled model fails every input of
                # another length ("Eltwise shape infer input shapes ...
                # mismatch", OpenVINO 2026.4.1; a new infer request does not
                # help) until one of the cancelled length completes: compile
                # it again, from OpenVINO's cache (0.43 s measured here).
                del self._request
                self._compiled = self._compile()
                self._request = self._compiled.create_infer_request()
                raise SynthesisCancelled() from exc
            raise
        finally:
            if cancel is not None:
                cancel.remove_hook(request.cancel)
        audio = request.get_output_tensor(0).data.copy()
        # OpenVINO keeps the intermediate buffers of the longest input seen for
        # the engine's life: resident growth after runs up to a 14 s chunk was
        # +991 MB without this, +621 MB with it (fp32 weights; +530 MB with the
        # fp16 IR), CPU per audio second within the run-to-run noise.
        self._compiled.release_memory()
        release_free_heap()
        return audio

    @property
    def overhead_frames(self) -> int | None:
        return None if self._trim_off else super().overhead_frames


def _write_back_graph(ov: Any, model_path: Path, path: Path) -> None:
    """The back part of the dequantised graph, its norms weighted, as OpenVINO
    IR with its weights stored in fp16: loaded from OpenVINO's compiled cache it
    holds +173 MB resident against +351 MB for the fp32 ONNX (the decoder runs
    in bf16 anyway, whose mantissa is shorter than fp16's)."""
    import onnx

    from kokorod.engine.onnx_graph import prepare_model
    from kokorod.engine.trim import split_model
    from kokorod.engine.trim_norms import norm_rates, weigh_norms

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:
        raise AssetError(f"cannot read ONNX model {model_path}: {exc}", "delete it and run: kokorod fetch") from exc
    prepare_model(model, dequantize="conv")
    _, back = split_model(model, CUT)
    del model
    weigh_norms(back, norm_rates(back, CUT))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".back-", suffix=".onnx", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(back.SerializeToString())
        del back
        staged = path.with_name(f".{path.stem}-{os.getpid()}.xml")
        ov.save_model(ov.Core().read_model(str(tmp)), str(staged), compress_to_fp16=True)
        # The weights first, the graph last: a reader that sees the .xml sees its .bin.
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("OpenVINO back part written to %s", path)


__all__ = ["OpenVinoSplitEngine"]
