"""onnxruntime's slow CPU kernels written as fast ones (a graph edit).

``kernels="fast"`` (the ONNX engine's default) rewrites the generator's Snake
activations; ``"export"`` runs the export's nodes. That changes the samples by
float rounding only, and the int8 graph then rounds differently downstream
(bench/fast_kernels.py judges the audio).

**Snake without ``Sin``.** Kokoro's iSTFTNet generator applies Snake,
``x + sin²(αx)/α`` with a learnt α per channel, 48 times per run (its residual
blocks and noise blocks), on tensors of (channels × upsampled frames). The export writes the square as

    Mul(α, x) ─ Sin ─ Pow(·, 2) ─ Mul(1/α) ─ Add(x)

onnxruntime's CPU ``Sin`` is scalar and runs on one thread whatever the
session's thread count: on the 2-core AMD EPYC we measured it was 12.7% of the
decoder's time for a short chunk, 2.9 ms for 1.5 M elements against 0.16 ms
for a ``Mul``, and no faster with 2 threads than with 1.

sin² has period π, so with ``t = αx/π`` and ``f = t - round(t)`` in [-½, ½],
``sin²(αx) = sin²(πf)``, an even function of f that a polynomial in ``v = f²``
fits closely. We write ``Mul(x, α/π) ─ Round ─ Sub ─ Mul(f, f) ─ Horner`` in
place of ``Mul ─ Sin ─ Pow``: 13 elementwise nodes that onnxruntime vectorises
and spreads over its threads. The fit's largest error on sin² is 1.3e-6 (the
degree-5 least-squares fit below; sin² is in [0, 1]), far below the int8
convolutions' own rounding (their activations are quantised to 1/255 of the
range). The harmonic source's ``Sin`` nodes (the F0 sine, its phase summed over
the whole chunk) are a different pattern and are left exact.

The generator's STFT is not rewritten, though onnxruntime's is slow too: see
docs/experiments.md, "The STFT as a convolution".

Only the onnxruntime graphs take this edit; OpenVINO's split engine writes its
back part without it (its bf16 decoder would lose the polynomial's precision).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KERNEL_CHOICES = ("fast", "export")

# sin²(πf) ≈ v·(c1 + c2·v + c3·v² + c4·v³ + c5·v⁴), v = f², f in [-½, ½]: a
# least-squares fit on 200,001 even points; largest error 1.30e-6.
_COEFFS = (9.8695413, -32.46588579, 42.6536136, -29.48005164, 10.67783667)


def poly_sin_squared(f: np.ndarray) -> np.ndarray:
    """The polynomial the edit writes, in numpy (for tests): sin²(πf) on [-½, ½]."""
    v = f * f
    h = np.float32(_COEFFS[-1])
    for c in reversed(_COEFFS[:-1]):
        h = h * v + np.float32(c)
    return h * v


def rewrite_snakes(model: Any) -> int:
    """Edit an ``onnx.ModelProto`` in place: every ``Mul(α, x) ─ Sin ─ Pow(·, 2)``
    whose α is a constant and whose intermediate tensors have no other reader
    becomes the polynomial above. Returns how many were rewritten; a pattern
    that does not match exactly is left as it is."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    # One list of the node objects for every lookup and both passes: ids of
    # protobuf wrappers that are not held alive can be reused by the next one.
    nodes = list(graph.node)
    producer = {out: node for node in nodes for out in node.output}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    consumer = {name: node for node in nodes for name in node.input}
    outputs = {o.name for o in graph.output}

    def constant(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def only_reader(name: str, op: str) -> Any:
        node = consumer.get(name)
        ok = node is not None and node.op_type == op and readers.get(name) == 1 and name not in outputs
        return node if ok else None

    new_inits: list[Any] = []
    for c_index, c in enumerate(_COEFFS):
        new_inits.append(numpy_helper.from_array(np.array(c, dtype=np.float32), f"snake_poly_c{c_index + 1}"))
    replaced: dict[int, list[Any]] = {}  # id(the Pow) -> its nodes
    dropped: set[int] = set()
    for sin in nodes:
        if sin.op_type != "Sin":
            continue
        mul = producer.get(sin.input[0])
        if mul is None or mul.op_type != "Mul" or only_reader(mul.output[0], "Sin") is not sin:
            continue
        alpha_name = next((i for i in mul.input if i in inits), None)
        if alpha_name is None:
            continue
        x = mul.input[1] if mul.input[0] == alpha_name else mul.input[0]
        alpha = numpy_helper.to_array(inits[alpha_name])
        power = only_reader(sin.output[0], "Pow")
        exponent = constant(power.input[1]) if power is not None else None
        if power is None or exponent is None or exponent.size != 1 or float(exponent.reshape(-1)[0]) != 2.0:
            continue
        if alpha.dtype != np.float32:
            continue
        scale = f"{alpha_name}_over_pi"
        if scale not in inits:
            inits[scale] = numpy_helper.from_array((alpha / np.float32(math.pi)).astype(np.float32), scale)
            new_inits.append(inits[scale])
        p = sin.output[0] + "_poly"  # prefix of the new tensors' names (the Sin's output is unique)
        chain = [
            helper.make_node("Mul", [x, scale], [f"{p}_t"], name=f"{p}_t"),
            helper.make_node("Round", [f"{p}_t"], [f"{p}_k"], name=f"{p}_k"),
            helper.make_node("Sub", [f"{p}_t", f"{p}_k"], [f"{p}_f"], name=f"{p}_f"),
            helper.make_node("Mul", [f"{p}_f", f"{p}_f"], [f"{p}_v"], name=f"{p}_v"),
        ]
        h = f"snake_poly_c{len(_COEFFS)}"
        for step in range(len(_COEFFS) - 1, 0, -1):  # Horner: h = h·v + c_step
            chain.append(helper.make_node("Mul", [h, f"{p}_v"], [f"{p}_m{step}"], name=f"{p}_m{step}"))
            chain.append(helper.make_node("Add", [f"{p}_m{step}", f"snake_poly_c{step}"], [f"{p}_h{step}"],
                                          name=f"{p}_h{step}"))
            h = f"{p}_h{step}"
        chain.append(helper.make_node("Mul", [h, f"{p}_v"], [power.output[0]], name=f"{p}_out"))
        replaced[id(power)] = chain
        dropped.update((id(mul), id(sin)))
    if not replaced:
        return 0
    edited: list[Any] = []
    for node in nodes:
        if id(node) in dropped:
            continue
        edited.extend(replaced.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(edited)
    graph.initializer.extend(new_inits)
    return len(replaced)
