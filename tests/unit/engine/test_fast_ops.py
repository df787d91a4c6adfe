"""kokorod/engine/fast_ops.py: Snake's square of a sine as a polynomial.

A tiny graph in the export's form, ``x + sin²(αx)/α`` written as
``Mul(α, x) ─ Sin ─ Pow(·, 2) ─ Mul(1/α) ─ Add(x)``, run by onnxruntime before
and after the edit, against numpy's exact value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kokorod.engine.onnx_graph import graph_key, prepare_model
from kokorod.engine.fast_ops import poly_sin_squared, rewrite_snakes
from kokorod.errors import InputError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CHANNELS = 4
ALPHA = np.array([0.3, 1.0, 2.5, 7.0], dtype=np.float32).reshape(1, CHANNELS, 1)


def snake_model(*, alpha_is_input: bool = False, exponent: float = 2.0, sin_read_twice: bool = False) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(exponent, np.float32), "two")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, None])]
    if alpha_is_input:
        inputs.append(helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, CHANNELS, 1]))
    else:
        inits.append(numpy_helper.from_array(ALPHA, "alpha"))
    nodes = [
        helper.make_node("Mul", ["alpha", "x"], ["ax"]),
        helper.make_node("Sin", ["ax"], ["s"]),
        helper.make_node("Pow", ["s", "two"], ["s2"]),
        helper.make_node("Reciprocal", ["alpha"], ["inv"]),
        helper.make_node("Mul", ["inv", "s2"], ["scaled"]),
        helper.make_node("Add", ["x", "scaled"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if sin_read_twice:
        outputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "snake", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: Any, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def exact_snake(x: np.ndarray) -> np.ndarray:
    a = ALPHA.astype(np.float64)
    return (x + np.sin(a * x) ** 2 / a).astype(np.float32)


def test_the_polynomial_is_sin_squared_on_its_interval() -> None:
    f = np.linspace(-0.5, 0.5, 100_001, dtype=np.float32)
    err = np.abs(poly_sin_squared(f).astype(np.float64) - np.sin(np.pi * f.astype(np.float64)) ** 2)
    assert err.max() < 2e-6


def test_the_edit_computes_snake_without_sin() -> None:
    # Values the generator sees and far beyond them: the period is reduced first.
    x = (np.random.default_rng(3).normal(size=(1, CHANNELS, 4000)) * 20).astype(np.float32)
    model = snake_model()
    before = run(model, x)
    assert rewrite_snakes(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "Sin" not in ops and "Pow" not in ops and "Round" in ops
    after = run(model, x)
    # |x|·α reaches 400 here, where float32 itself carries ~3e-5 of phase.
    np.testing.assert_allclose(after, exact_snake(x), rtol=0, atol=1e-4)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-4)


def test_patterns_that_are_not_the_exports_are_left_alone() -> None:
    for model in (snake_model(alpha_is_input=True), snake_model(exponent=3.0), snake_model(sin_read_twice=True)):
        assert rewrite_snakes(model) == 0
        assert "Sin" in [n.op_type for n in model.graph.node]


def test_prepare_model_takes_the_choice_and_checks_it() -> None:
    model = snake_model()
    assert prepare_model(model, kernels="fast") == {"Sin": 1}
    assert "two" not in {i.name for i in model.graph.initializer}  # the exponent, read by nothing now
    assert prepare_model(snake_model()) == {}  # exact unless asked
    with pytest.raises(InputError, match="kernels"):
        prepare_model(snake_model(), kernels="poly")


def test_the_choice_is_part_of_the_graphs_key() -> None:
    assert graph_key("a" * 64, "none", "fast") != graph_key("a" * 64, "none", "export")
    assert graph_key("a" * 64, "none")["kernels"] == "export"

