"""kokorod/engine/conv_gemm.py: the int8 convolutions as signed-weight matrix
products.

A tiny graph in the export's form, ``DynamicQuantizeLinear ─ ConvInteger``
with uint8 weights, run by onnxruntime before and after the edit: the int32
outputs must be equal, integer for integer. Without VNNI, onnxruntime's uint8 ×
int8 kernel saturates pairs of products at 16 bits (the reason the product
gates the edit on VNNI), so on such a CPU the weights here stay within ±63 of
their zero point, where no pair can saturate, and the graph's arithmetic is
still checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kokorod.engine.conv_gemm import has_vnni, rewrite_convs, signed_weights
from kokorod.engine.onnx_graph import cpu_isa, prepare_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

VNNI_HERE = has_vnni(cpu_isa())


def conv_model(w: np.ndarray, w_zero: int, *, dilation: int = 1, pads: tuple[int, int] | None = None,
               stride: int = 1, group: int = 1, weights_as_input: bool = False) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    out_ch, per_group, kernel = w.shape
    channels = per_group * group
    if pads is None:
        pads = (dilation * (kernel - 1) // 2,) * 2
    inits = [numpy_helper.from_array(np.array(w_zero, np.uint8), "wz")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, None])]
    if weights_as_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.UINT8, list(w.shape)))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["y"], dilations=[dilation], pads=list(pads),
                         strides=[stride], group=group, kernel_shape=[kernel]),
    ]
    graph = helper.make_graph(nodes, "conv", inputs, [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], feed)[0]


def weights(rng: np.random.Generator, shape: tuple[int, ...], zero: int) -> np.ndarray:
    spread = 127 if VNNI_HERE else 63
    return np.clip(rng.integers(zero - spread, zero + spread + 1, shape), 0, 255).astype(np.uint8)


def test_signed_weights_are_the_kernel_taps_side_by_side() -> None:
    w = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) + 100  # [out, in, kernel]
    m = signed_weights(w)
    assert m.shape == (4 * 3, 2) and m.dtype == np.int8
    for o in range(2):
        for c in range(3):
            for k in range(4):
                assert int(m[k * 3 + c, o]) == int(w[o, c, k]) - 128


@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (3, 5), (7, 3), (11, 1)])
def test_the_product_gives_convinteger_s_integers(kernel: int, dilation: int) -> None:
    rng = np.random.default_rng(kernel * 10 + dilation)
    zero = int(rng.integers(100, 156))
    w = weights(rng, (6, 5, kernel), zero)
    x = (rng.standard_normal((1, 5, 57)) * 3 + 0.7).astype(np.float32)
    before = conv_model(w, zero, dilation=dilation)
    after = conv_model(w, zero, dilation=dilation)
    assert rewrite_convs(after) == 1
    assert not any(n.op_type == "ConvInteger" for n in after.graph.node)
    expected = run(before, {"x": x})
    got = run(after, {"x": x})
    assert got.shape == expected.shape == (1, 6, 57)
    np.testing.assert_array_equal(got, expected)


def test_one_step_and_all_negative_inputs_pad_with_the_inputs_zero_point() -> None:
    # All-negative input puts the zero point at 255: padding with 0 instead
    # would add large wrong sums at both edges.
    rng = np.random.default_rng(3)
    w = weights(rng, (4, 3, 5), 128)
    for x in (-np.abs(rng.standard_normal((1, 3, 9))).astype(np.float32) - 0.1,
              rng.standard_normal((1, 3, 1)).astype(np.float32)):
        after = conv_model(w, 128)
        rewrite_convs(after)
        np.testing.assert_array_equal(run(after, {"x": x}), run(conv_model(w, 128), {"x": x}))


def test_convolutions_it_cannot_write_are_left_alone() -> None:
    rng = np.random.default_rng(4)
    w = weights(rng, (4, 4, 3), 128)
    for model in (conv_model(w, 128, stride=2),
                  conv_model(weights(rng, (4, 2, 3), 128), 128, group=2),
                  conv_model(w, 128, pads=(2, 0)),          # not "same" padding
                  conv_model(w, 128, weights_as_input=True)):  # weights not constant
        assert rewrite_convs(model) == 0
        assert [n.op_type for n in model.graph.node] == ["DynamicQuantizeLinear", "ConvInteger"]


def test_prepare_model_rewrites_only_for_a_cpu_with_vnni() -> None:
    w = weights(np.random.default_rng(5), (4, 4, 3), 128)
    assert prepare_model(conv_model(w, 128), kernels="fast", cpu="x86_64+avx2+fma") == {}
    assert prepare_model(conv_model(w, 128), kernels="fast", cpu="x86_64+avx2+avx512_vnni") == {"ConvInteger": 1}
    assert prepare_model(conv_model(w, 128), kernels="fast", cpu="x86_64+avx2+avx_vnni") == {"ConvInteger": 1}
    assert prepare_model(conv_model(w, 128), kernels="export", cpu="x86_64+avx512_vnni") == {}
    edited = conv_model(w, 128)
    prepare_model(edited, kernels="fast", cpu="x86_64+avx512_vnni")
    assert "w" not in {i.name for i in edited.graph.initializer}  # the uint8 weights are not kept twice


def test_vnni_is_read_from_the_flags() -> None:
    assert has_vnni("x86_64+avx2+avx512_vnni+avx512f")
    assert has_vnni("x86_64+avx_vnni")
    assert not has_vnni("x86_64+avx2+avx512f")
    assert not has_vnni("arm64")
