#!/usr/bin/env python3
"""The int8 convolutions as signed-weight matrix products (kokorod/engine/
conv_gemm.py) against onnxruntime's ``ConvInteger``, in one run.

1. Single convolutions of the generator's shapes, alone: ``ConvInteger``
   (uint8 weights) against the edit's nodes (transposes, im2col, ``MatMulInteger``
   with int8 weights), median of ``--reps`` runs each.
2. The whole engine: two ONNX engines with today's trimmed decoding and Snake
   edit, one built as if the CPU had no VNNI (before: no convolution edit) and
   one as this CPU is (after). The audio of the 21 sentences of
   bench/trim_silence.py and the bench's first chunks must be **bit-identical**
   (the edit changes no integer); the speed is wall and process time of the
   two alternated ``--reps`` times on the timed chunks, as the median of
   per-pair ratios so other load hits both alike.

Without VNNI the edit is off (onnxruntime's uint8 x int8 kernel would saturate),
so part 2 has nothing to compare and says so.

    PYTHONPATH=. .venv/bin/python bench/conv_gemm.py [--reps 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fast_kernels import FIRST_CHUNKS  # noqa: E402
from trim_silence import SENTENCES, TIMED, ids_and_style, machine_model_and_synth  # noqa: E402

# (channels, kernel, dilation, steps): the generator's two resblock stages
# (steps for about 1.5 s of audio) and the decoder's 1,090-channel blocks.
SHAPES = [(256, 3, 1, 1200), (256, 7, 3, 1200), (256, 11, 5, 1200), (128, 3, 1, 7200), (128, 7, 3, 7200),
          (128, 11, 5, 7200), (1090, 3, 1, 60)]


def session(model: Any, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # the unedited weights left in the tiny test graphs are not news
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def median_ms(sess: Any, feed: dict[str, np.ndarray], reps: int) -> float:
    sess.run(None, feed)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def single_convs(reps: int, threads: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "engine"))
    from test_conv_gemm import conv_model

    from kokorod.engine.conv_gemm import rewrite_convs

    rng = np.random.default_rng(0)
    print("single convolutions (ms, median): ConvInteger -> product")
    for channels, kernel, dil, steps in SHAPES:
        w = rng.integers(0, 256, (channels, channels, kernel)).astype(np.uint8)
        before, after = conv_model(w, 128, dilation=dil), conv_model(w, 128, dilation=dil)
        rewrite_convs(after)
        feed = {"x": rng.standard_normal((1, channels, steps)).astype(np.float32)}
        a, b = median_ms(session(before, threads), feed, reps), median_ms(session(after, threads), feed, reps)
        print(f"  {channels:4d} ch, kernel {kernel:2d}, dilation {dil}, {steps:5d} steps: "
              f"{a:6.2f} -> {b:6.2f} (x{b / a:.2f})", flush=True)


def engines(model: Path, threads: int) -> dict[str, Any]:
    from kokorod.engine.onnx_engine import OnnxEngine
    from kokorod.engine.trim import DEFAULT_CONTEXT_FRAMES

    def build() -> Any:  # no graph cache: its key cannot tell the patched graph apart
        return OnnxEngine(model, threads=threads, cache_dir=None, trim_context=DEFAULT_CONTEXT_FRAMES, kernels="fast")

    with mock.patch("kokorod.engine.onnx_graph.has_vnni", return_value=False):
        before = build()  # the graph is edited and loaded here, while patched
    return {"before": before, "after": build()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from kokorod.engine.conv_gemm import has_vnni
    from kokorod.engine.onnx_graph import cpu_isa

    info, model, synth = machine_model_and_synth()
    single_convs(args.reps, args.threads)
    if not has_vnni(cpu_isa()):
        print("this CPU has no VNNI: the edit is off here, the engine is unchanged")
        return
    pair = engines(model, args.threads)
    identical = 0
    for label, lang, voice, text in [*SENTENCES, *FIRST_CHUNKS]:
        ids, style = ids_and_style(synth, text, voice, lang)
        outs = {k: e.run(ids, style, 1.0) for k, e in pair.items()}
        same = bool(np.array_equal(outs["before"].audio, outs["after"].audio)
                    and np.array_equal(outs["before"].durations, outs["after"].durations))
        identical += same
        if not same:
            print(f"  {label}: audio differs", flush=True)
        if label in TIMED or label.startswith("first chunk"):
            walls: dict[str, list[float]] = {k: [] for k in pair}
            cpus: dict[str, list[float]] = {k: [] for k in pair}
            for r in range(args.reps):
                for k in (("before", "after") if r % 2 == 0 else ("after", "before")):
                    w, c = time.perf_counter(), time.process_time()
                    pair[k].run(ids, style, 1.0)
                    walls[k].append(1000 * (time.perf_counter() - w))
                    cpus[k].append(1000 * (time.process_time() - c))
            print(f"  {label:14s} wall {statistics.median(walls['before']):5.0f} -> "
                  f"{statistics.median(walls['after']):5.0f} ms "
                  f"(x{statistics.median(a / b for a, b in zip(walls['after'], walls['before'])):.3f}), CPU "
                  f"{statistics.median(cpus['before']):5.0f} -> {statistics.median(cpus['after']):5.0f} ms "
                  f"(x{statistics.median(a / b for a, b in zip(cpus['after'], cpus['before'])):.3f})", flush=True)
    total = len(SENTENCES) + len(FIRST_CHUNKS)
    print(f"\naudio and durations bit-identical on {identical}/{total} chunks")


if __name__ == "__main__":
    main()
