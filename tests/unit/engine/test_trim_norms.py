"""Weighted instance norms (kokorod/engine/trim_norms.py) on a one-norm graph:
with the dropped frames' weight on the outermost kept frames, a trimmed input
is normalised exactly as the full one when the dropped frames equal those."""

from __future__ import annotations

import numpy as np
import pytest

from kokorod.engine.trim import TrimPlan
from kokorod.engine.trim_norms import frame_weights, rates_of, weigh_norms, weight_feed, weight_input

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def norm_model():  # type: ignore[no-untyped-def]
    """x (1, C, T) → instance norm over T, as the Kokoro export writes it."""
    from onnx import TensorProto, helper, numpy_helper

    n = helper.make_node
    nodes = [
        n("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
        n("Sub", ["x", "m"], ["d"]),
        n("Mul", ["d", "d"], ["sq"]),
        n("ReduceMean", ["sq", "axes"], ["v"], keepdims=1),
        n("Add", ["v", "eps"], ["ve"]),
        n("Sqrt", ["ve"], ["sd"]),
        n("Div", ["d", "sd"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None])],
        [numpy_helper.from_array(np.array([2], np.int64), "axes"), numpy_helper.from_array(np.array(1e-5, np.float32), "eps")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model, feed):  # type: ignore[no-untyped-def]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], feed)[0]


def test_weights_put_the_dropped_frames_on_the_outermost_kept_ones() -> None:
    plan = TrimPlan(6, 20, 25)  # 6 frames dropped before, 5 after, 14 decoded
    w = frame_weights(plan, outer=2)
    assert w.shape == (14,)
    assert list(w[:2]) == [4.0, 4.0] and list(w[-2:]) == [3.5, 3.5] and (w[2:-2] == 1).all()
    assert (frame_weights(TrimPlan(0, 9, 9)) == 1).all()
    feed = weight_feed(w, [(2, 0), (3, 1), (2, 0)])
    assert set(feed) == {weight_input((2, 0)), weight_input((3, 1))}
    x = feed[weight_input((3, 1))].reshape(-1)
    assert x.shape == (3 * 14 + 1,) and abs(x.mean() - 1) < 1e-6 and x[-1] == x[-2]
    assert rates_of(["style", weight_input((120, 1)), weight_input((1, 0))]) == [(120, 1), (1, 0)]


def test_a_weighted_norm_of_the_trimmed_input_is_the_full_inputs() -> None:
    rng = np.random.default_rng(3)
    speech = rng.normal(size=(1, 3, 10)).astype(np.float32)
    edge_lead = np.repeat(rng.normal(size=(1, 3, 1)).astype(np.float32), 8, axis=2)
    edge_trail = np.repeat(rng.normal(size=(1, 3, 1)).astype(np.float32), 6, axis=2)
    whole = np.concatenate([edge_lead, speech, edge_trail], axis=2)  # 24 frames
    reference = run(norm_model(), {"x": whole})
    plan = TrimPlan(5, 20, 24)  # keeps 3 of the 8 leading and 2 of the 6 trailing
    weighted = norm_model()
    weigh_norms(weighted, [(1, 0)])
    feed = {"x": whole[:, :, 5:20], **weight_feed(frame_weights(plan, outer=2), [(1, 0)])}
    np.testing.assert_allclose(run(weighted, feed), reference[:, :, 5:20], rtol=1e-4, atol=1e-5)
    ones = {"x": whole, **weight_feed(np.ones(24), [(1, 0)])}
    np.testing.assert_allclose(run(weighted, ones), reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        weigh_norms(norm_model(), [(1, 0), (2, 0)])
