"""The ONNX engine's load options on a tiny model with Kokoro's interface:
the durations output, int8 convolutions made fp32, onnxruntime's optimised
graph cached on disk, and cancellation; and torch kept out of spaCy's import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kokorod.engine import CancelToken, SynthesisCancelled
from kokorod.engine.onnx_engine import OnnxEngine
from kokorod.engine.onnx_graph import DURATIONS_TENSOR, GraphCache, cpu_isa, prepare_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(8, 4, 3)).astype(np.float32)
B1 = RNG.normal(size=(8,)).astype(np.float32)
W2 = RNG.normal(size=(8, 8, 3)).astype(np.float32)


def _quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 weights, 7-bit like Kokoro's export (0…127), one scale and zero point."""
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = np.float32((hi - lo) / 127)
    zero = np.uint8(round(-lo / scale))
    q = np.clip(np.round(w / scale) + zero, 0, 127).astype(np.uint8)
    return q, np.array(scale, np.float32), np.array(zero, np.uint8)


def tiny_model(path: Path) -> Path:
    """tokens → two 1-D convolutions in onnxruntime's dynamic-quantisation form
    (the first with Kokoro's int32 bias, the second without bias) → ``audio``;
    ``DURATIONS_TENSOR`` is an internal tensor, as in the Kokoro export."""
    from onnx import TensorProto, helper, numpy_helper

    q1, s1, z1 = _quantize(W1)
    q2, s2, z2 = _quantize(W2)
    n = helper.make_node
    nodes = [
        n("Cast", ["tokens"], ["tf"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["tf", "axis1"], ["t3"]),
        n("Tile", ["t3", "reps"], ["x"]),  # [1, 4, N]
        n("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        n("ConvInteger", ["xq", "W1_q", "xz", "W1_z"], ["c1_i"], pads=[1, 1], kernel_shape=[3]),
        n("Mul", ["xs", "W1_s"], ["c1_scale"]),
        n("Div", ["B1", "c1_scale"], ["b1_tmp"]),
        n("Floor", ["b1_tmp"], ["b1_floor"]),
        n("Cast", ["b1_floor"], ["b1_q"], to=TensorProto.INT32),
        n("Reshape", ["b1_q", "bias_shape"], ["b1_r"]),
        n("Add", ["c1_i", "b1_r"], ["c1_b"]),
        n("Cast", ["c1_b"], ["c1_f"], to=TensorProto.FLOAT),
        n("Mul", ["c1_f", "c1_scale"], ["c1"]),
        n("DynamicQuantizeLinear", ["c1"], ["c1q", "c1s", "c1z"]),
        n("ConvInteger", ["c1q", "W2_q", "c1z", "W2_z"], ["c2_i"], pads=[1, 1], kernel_shape=[3]),
        n("Cast", ["c2_i"], ["c2_f"], to=TensorProto.FLOAT),
        n("Mul", ["c1s", "W2_s"], ["c2_scale"]),
        n("Mul", ["c2_f", "c2_scale"], ["c2"]),
        n("ReduceMean", ["c2", "axis1"], ["m"], keepdims=0),
        n("ReduceSum", ["style", "axis1"], ["style_sum"], keepdims=0),
        n("Mul", ["m", "speed"], ["m_speed"]),
        n("Add", ["m_speed", "style_sum"], ["audio"]),
        n("Add", ["tokens", "one"], [DURATIONS_TENSOR]),
    ]
    inits = {
        "W1_q": q1, "W1_s": s1, "W1_z": z1, "B1": B1, "W2_q": q2, "W2_s": s2, "W2_z": z2,
        "axis1": np.array([1], np.int64), "reps": np.array([1, 4, 1], np.int64),
        "bias_shape": np.array([1, -1, 1], np.int64), "one": np.array(1, np.int64),
    }
    graph = helper.make_graph(
        nodes, "tiny-kokoro",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, None]),
         helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
         helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def dequantised(w: np.ndarray) -> np.ndarray:
    q, scale, zero = _quantize(w)
    return (q.astype(np.float32) - np.float32(zero)) * scale


def fp32_reference(tokens: list[int], speed: float) -> np.ndarray:
    """The same network in numpy, fp32, with the dequantised weights."""
    def conv1d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        xp = np.pad(x, ((0, 0), (1, 1)))
        return np.stack([sum(w[o, i] @ np.lib.stride_tricks.sliding_window_view(xp[i], 3).T
                             for i in range(x.shape[0])) for o in range(w.shape[0])])

    x = np.tile(np.asarray(tokens, np.float32), (4, 1))
    c1 = conv1d(x, dequantised(W1)) + B1[:, None]
    return conv1d(c1, dequantised(W2)).mean(axis=0) * speed


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "tiny.onnx")


TOKENS = [0, 5, 9, 3, 7, 0]
STYLE = np.zeros((1, 256), np.float32)


def test_durations_come_back_with_the_audio(model_path: Path) -> None:
    out = OnnxEngine(model_path).run(TOKENS, STYLE, 1.0)
    assert out.durations.tolist() == [t + 1 for t in TOKENS]
    assert out.audio.shape == (len(TOKENS),)
    # int8: activations are rounded too, so close rather than equal.
    np.testing.assert_allclose(out.audio, fp32_reference(TOKENS, 1.0), rtol=0.05, atol=0.5)


def test_dequantised_convolutions_match_the_int8_graph(model_path: Path) -> None:
    model = onnx.load(str(model_path))
    assert prepare_model(model, dequantize="conv") == {"ConvInteger": 2}
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 2
    assert not {"ConvInteger", "DynamicQuantizeLinear", "Floor"} & set(ops)
    assert DURATIONS_TENSOR in {o.name for o in model.graph.output}

    int8 = OnnxEngine(model_path, dequantize="none").run(TOKENS, STYLE, 1.3)
    fp32 = OnnxEngine(model_path, dequantize="conv").run(TOKENS, STYLE, 1.3)
    assert fp32.durations.tolist() == int8.durations.tolist()
    # Exactly the network with the dequantised weights, in fp32 ...
    np.testing.assert_allclose(fp32.audio, fp32_reference(TOKENS, 1.3), rtol=1e-4, atol=1e-3)
    # ... which the int8 graph approximates (its activations are rounded too).
    np.testing.assert_allclose(fp32.audio, int8.audio, rtol=0.05, atol=0.5)


def test_unknown_dequantize_choice_is_an_input_error(model_path: Path) -> None:
    from kokorod.errors import InputError

    with pytest.raises(InputError, match="dequantize"):
        OnnxEngine(model_path, dequantize="fp16")


def test_optimised_graph_is_cached_and_reused(model_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = OnnxEngine(model_path, cache_dir=cache)
    assert not first.loaded_from_cache
    assert first.graph_cache is not None and first.graph_cache.path.is_file()
    key = json.loads(first.graph_cache.path.with_suffix(".json").read_text())
    assert key["onnxruntime"] == ort.__version__ and key["cpu"] == cpu_isa() and key["dequantize"] == "none"

    second = OnnxEngine(model_path, cache_dir=cache)
    assert second.loaded_from_cache
    a, b = first.run(TOKENS, STYLE, 1.0), second.run(TOKENS, STYLE, 1.0)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.durations, b.durations)

    # Another graph edit is another entry, not a stale hit.
    other = OnnxEngine(model_path, cache_dir=cache, dequantize="conv")
    assert not other.loaded_from_cache and other.graph_cache is not None
    assert other.graph_cache.path != first.graph_cache.path
    assert len(list((cache / "onnx").glob("kokoro-*.onnx"))) == 2


def test_a_damaged_cache_entry_is_rebuilt(model_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    engine = OnnxEngine(model_path, cache_dir=cache)
    assert engine.graph_cache is not None
    engine.graph_cache.path.write_bytes(b"not a graph")
    again = OnnxEngine(model_path, cache_dir=cache)
    assert not again.loaded_from_cache
    assert again.run(TOKENS, STYLE, 1.0).durations.tolist() == [t + 1 for t in TOKENS]
    assert OnnxEngine(model_path, cache_dir=cache).loaded_from_cache


def test_a_full_disk_under_the_cache_costs_only_the_cache(model_path: Path, tmp_path: Path) -> None:
    """A full disk, made honestly: the child may write no byte to any file
    (RLIMIT_FSIZE 0, SIGXFSZ ignored, so a write fails with EFBIG as on a full
    file system). onnxruntime then fails the session it is building while it
    writes the optimised graph ("Protobuf serialization failed", no OSError);
    the engine must still load from memory and say why there is no cache."""
    proc = _python(f"""
        import logging, resource, signal, sys
        import numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(levelname)s %(message)s")
        from kokorod.engine.onnx_engine import OnnxEngine
        engine = OnnxEngine({str(model_path)!r}, cache_dir={str(tmp_path / "cache")!r})
        out = engine.run({TOKENS!r}, np.zeros((1, 256), np.float32), 1.0)
        print("durations", out.durations.tolist())
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"durations {[t + 1 for t in TOKENS]}" in proc.stdout
    assert "WARNING cannot cache the ONNX graph" in proc.stdout
    assert not list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # no partial entry left behind


def test_cache_keys_differ_by_every_part() -> None:
    base = {"model_sha256": "a" * 64, "graph_edit": "1", "dequantize": "none", "kernels": "fast", "onnxruntime": "1.0",
            "optimization": "all", "cpu": "x86_64+avx2"}
    digests = {GraphCache(Path("/c"), base).digest}
    for field in base:
        digests.add(GraphCache(Path("/c"), {**base, field: base[field] + "x"}).digest)
    assert len(digests) == len(base) + 1


def test_cache_keeps_the_most_recent_entries(tmp_path: Path) -> None:
    import os

    directory = tmp_path / "onnx"
    directory.mkdir()
    for i in range(6):
        (directory / f"kokoro-{i}.onnx").write_bytes(b"x")
        (directory / f"kokoro-{i}.json").write_text("{}")
        os.utime(directory / f"kokoro-{i}.onnx", (1000 + i, 1000 + i))
    GraphCache(directory, {}).prune(keep=4)
    assert sorted(p.name for p in directory.glob("*.onnx")) == [f"kokoro-{i}.onnx" for i in range(2, 6)]
    assert not (directory / "kokoro-0.json").exists()


def test_cancel_before_the_run_raises(model_path: Path) -> None:
    engine = OnnxEngine(model_path)
    token = CancelToken()
    token.cancel()
    with pytest.raises(SynthesisCancelled):
        engine.run(TOKENS, STYLE, 1.0, token)
    # The engine still works afterwards.
    assert engine.run(TOKENS, STYLE, 1.0, CancelToken()).audio.shape == (len(TOKENS),)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_torch_blocked_is_scoped() -> None:
    proc = _python("""
        import sys
        from kokorod.engine import torch_blocked
        with torch_blocked():
            try:
                import torch
            except ImportError:
                print("blocked")
        assert "torch" not in sys.modules
        import importlib.util
        print("findable" if importlib.util.find_spec("torch") is not None else "absent")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "blocked"


def test_spacy_loads_without_torch_and_torch_still_imports_afterwards() -> None:
    """The ONNX engine's spaCy load: tagger only, no torch, no plugin imports;
    a torch engine in the same process can still import torch."""
    proc = _python("""
        import importlib.util, sys
        from kokorod.text.g2p.english import load_nlp
        nlp = load_nlp(without_torch=True)
        print(nlp.pipe_names)
        print([t.tag_ for t in nlp("I read the book.")])
        print(sorted(m for m in ("torch", "transformers", "spacy_curated_transformers") if m in sys.modules))
        import thinc.compat
        print(thinc.compat.has_torch)
        if importlib.util.find_spec("torch") is not None:
            import torch
        print("torch ok")
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['tok2vec', 'tagger']"
    assert lines[1] == "['PRP', 'VBD', 'DT', 'NN', '.']"
    assert lines[2] == "[]"
    assert lines[3] == "False"
    assert lines[4] == "torch ok"


def test_trim_options_are_checked_before_loading(tmp_path: Path) -> None:
    from kokorod.errors import InputError

    missing = tmp_path / "no-model.onnx"  # never read: the options fail first
    with pytest.raises(InputError):
        OnnxEngine(missing, trim_cut="encoder")
    with pytest.raises(InputError):
        OnnxEngine(missing, trim_context=-1)


def test_every_command_takes_its_engine_options_from_one_place() -> None:
    import argparse

    from kokorod.speech.build import EngineOptions

    args = argparse.Namespace(engine="onnx", cache_dir="/c", model=None, config=None, device="auto", trim_silence="off")
    opts = EngineOptions.from_args(args, threads=3)
    assert (opts.engine, opts.cache_dir, opts.threads, opts.trim_silence) == ("onnx", "/c", 3, "off")
